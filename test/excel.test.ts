/** The annual workbook: sheets, bilingual headers, values as numbers, bold totals, formula neutralisation, deterministic bytes. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import ExcelJS from 'exceljs';
import { readCsvText, type Row } from '../pipeline/csv';
import { FIXED_DATE, buildWorkbook, fixZipTimestamps, safeText } from '../stages/excel';
import { SERIES_NOTE } from '../stages/territory';

const FIX = path.join(__dirname, 'fixtures-sdmx');
const territory = readCsvText(fs.readFileSync(path.join(FIX, 'territory-2024-03.csv'), 'utf8'));
const moveType = readCsvText(fs.readFileSync(path.join(FIX, 'move_type-2024-03.csv'), 'utf8'));
const nationality: Row[] = [
  { series: '1998-', level: 'republic', code: 'RS', nationality: '01', immigrants: '7', emigrants: '6', net: '1' },
  { series: '1998-', level: 'republic', code: 'RS', nationality: '99', immigrants: '4', emigrants: '4', net: '0' },
];
// hostile text in a key column (as if a code list had been tampered with)
const origin: Row[] = [
  { series: '1998-', level: 'municipality', code: '70645', origin: 'KM', migrants: '1' },
  { series: '1998-', level: 'municipality', code: '70645', origin: '=HYPERLINK("http://x","y")', migrants: '2' },
  { series: '1998-', level: 'municipality', code: '70645', origin: '@SUM(A1)', migrants: '3' },
  { series: '1998-', level: 'municipality', code: '70645', origin: '-5', migrants: '-5' },
];
const input = { year: 2024, series: '1998-', tables: { origin, territory, move_type: moveType, nationality } };

async function read(buf: Buffer): Promise<ExcelJS.Workbook> {
  const wb = new ExcelJS.Workbook();
  await wb.xlsx.load(buf as unknown as ArrayBuffer);
  return wb;
}

describe('annual workbook', () => {
  let buf: Buffer;
  let wb: ExcelJS.Workbook;
  beforeAll(async () => {
    buf = await buildWorkbook(input);
    wb = await read(buf);
  });

  test('one sheet per table in the release order, then the notes', () => {
    expect(wb.worksheets.map((w) => w.name)).toEqual(['territory', 'move_type', 'nationality', 'origin', 'notes']);
  });

  test('title row, Serbian and English header rows', () => {
    const ws = wb.getWorksheet('territory')!;
    expect(String(ws.getCell('A1').value)).toMatch(/2024.*Immigrants, emigrants and net migration/);
    expect(ws.getRow(2).values).toEqual([undefined, 'Serija', 'Nivo', 'Šifra', 'Pol', 'Doseljeni', 'Odseljeni', 'Migracioni saldo']);
    expect(ws.getRow(3).values).toEqual([undefined, 'Series', 'Level', 'Code', 'Sex', 'Immigrants', 'Emigrants', 'Net migration']);
    expect(ws.getRow(2).font?.bold).toBe(true);
    expect(ws.views[0]).toMatchObject({ state: 'frozen', ySplit: 3 });
  });

  test('values equal the input; numbers are numbers, codes stay text', () => {
    for (const [name, rows] of [['territory', territory], ['move_type', moveType], ['nationality', nationality]] as const) {
      const ws = wb.getWorksheet(name)!;
      const cols = Object.keys(rows[0]!);
      expect(ws.rowCount).toBe(3 + rows.length);
      rows.forEach((r, i) => {
        cols.forEach((c, j) => {
          const v = ws.getRow(4 + i).getCell(j + 1).value;
          if (['immigrants', 'emigrants', 'net', 'migrants'].includes(c)) expect(v).toBe(Number(r[c]));
          else expect(v).toBe(r[c]);
        });
      });
    }
    const nat = wb.getWorksheet('nationality')!;
    expect(nat.getCell('D4').value).toBe('01'); // not the number 1
    const terr = wb.getWorksheet('territory')!;
    expect(terr.getCell('G5').value).toBe(0);
    expect(typeof terr.getCell('G7').value).toBe('number');
  });

  test('Republic and total rows are bold, others not', () => {
    const ws = wb.getWorksheet('territory')!;
    expect(ws.getRow(4).font?.bold).toBe(true); // republic RS T
    expect(ws.getRow(7).font?.bold).toBeFalsy(); // region RS11
    const mt = wb.getWorksheet('move_type')!;
    expect(mt.getRow(7).font?.bold).toBe(true); // RS total
    expect(ws.getColumn(3).width).toBeGreaterThanOrEqual(8);
  });

  test('text cells beginning with = + - @ are neutralised; negative numbers stay numbers', () => {
    const ws = wb.getWorksheet('origin')!;
    expect(ws.getCell('D5').value).toBe(`'=HYPERLINK("http://x","y")`);
    expect(ws.getCell('D6').value).toBe(`'@SUM(A1)`);
    expect(ws.getCell('D7').value).toBe('-5'); // a plain number in a key column: text, not a formula
    expect(ws.getCell('E7').value).toBe(-5);
    for (const w of wb.worksheets) w.eachRow((row) => row.eachCell((cell) => expect(cell.type).not.toBe(ExcelJS.ValueType.Formula)));
    expect(safeText('+1+1')).toBe("'+1+1");
    expect(safeText('KM')).toBe('KM');
  });

  test('notes sheet carries the series note and the sources', () => {
    const ws = wb.getWorksheet('notes')!;
    const text: string[] = [];
    ws.eachRow((r) => r.eachCell((c) => text.push(String(c.value))));
    expect(text).toContain(SERIES_NOTE['1998-']);
    expect(text.join('\n')).toMatch(/Source/);
    expect(text.join('\n')).toMatch(/Ministry of the Interior/);
  });

  test('provisional workbooks say so', async () => {
    const p = await read(await buildWorkbook({ ...input, provisional: true }));
    expect(String(p.getWorksheet('territory')!.getCell('A1').value)).toMatch(/provisional/);
  });

  test('deterministic bytes: fixed document dates and zip entry timestamps', async () => {
    expect(wb.created.getTime()).toBe(FIXED_DATE.getTime());
    expect(wb.modified.getTime()).toBe(FIXED_DATE.getTime());
    await new Promise((r) => setTimeout(r, 2100)); // zip times have a 2-second resolution
    const again = await buildWorkbook(input);
    expect(again.equals(buf)).toBe(true);
    // every zip entry carries the fixed DOS date (1980-01-01 00:00)
    let p = buf.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]));
    let n = 0;
    while (p >= 0) {
      expect(buf.readUInt16LE(p + 12)).toBe(0);
      expect(buf.readUInt16LE(p + 14)).toBe(0x21);
      n++;
      p = buf.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]), p + 4);
    }
    expect(n).toBeGreaterThan(5);
    expect(fixZipTimestamps(buf).equals(buf)).toBe(true);
  });
});
