/**
 * The annual release tables as an Excel workbook (years/YYYY/tables.xlsx): one sheet per table, a title row,
 * headers in Serbian and English (two rows), numbers as numbers, Republic/total rows bold, column widths,
 * frozen headers, and a notes sheet with the territorial-series note and the sources.
 *
 * Deterministic bytes: the workbook's created/modified dates are fixed, and the timestamps that exceljs's
 * zip library (JSZip) stamps on every zip entry from the clock (in local time) are rewritten to a fixed
 * DOS date (1980-01-01 00:00) in both the local and the central headers; CRCs cover only the contents,
 * so the archive stays valid.
 * Formula injection: a text cell beginning with = + - @ (or tab / CR) gets a leading apostrophe, as in
 * pipeline/csv.ts; cells that are plain numbers are written as numbers and need none.
 */
import ExcelJS from 'exceljs';
import { NUMERIC, neutraliseFormula, type Row } from '../pipeline/csv';
import { SERIES_NOTE, type Series } from './territory';

export interface WorkbookInput {
  year: number;
  series: string;
  tables: Record<string, Row[]>;
  provisional?: boolean;
  /** optional territory names (code → name); when given, a name column follows the code column */
  names?: Record<string, string>;
}

/** Sheet order of the known tables; other tables follow in alphabetical order. */
export const SHEET_ORDER = ['territory', 'move_type', 'age', 'activity', 'nationality', 'origin', 'rates'];
export const FIXED_DATE = new Date(Date.UTC(1980, 0, 1, 0, 0, 0));

const TITLES: Record<string, [string, string]> = {
  territory: ['Doseljeni, odseljeni i migracioni saldo po teritoriji i polu', 'Immigrants, emigrants and net migration by territory and sex'],
  move_type: ['Migranti prema vrsti preseljenja', 'Migrants by type of move'],
  age: ['Doseljeni, odseljeni i migracioni saldo po petogodišnjim starosnim grupama', 'Immigrants, emigrants and net migration by five-year age group'],
  activity: ['Doseljeni, odseljeni i migracioni saldo prema aktivnosti', 'Immigrants, emigrants and net migration by economic activity'],
  nationality: ['Doseljeni, odseljeni i migracioni saldo prema nacionalnoj pripadnosti', 'Immigrants, emigrants and net migration by national affiliation'],
  origin: ['Migranti prema poreklu (prethodnom prebivalištu)', 'Migrants by origin (previous residence)'],
  rates: ['Stope migracije na 1 000 stanovnika', 'Migration rates per 1 000 population'],
};

const HEADERS: Record<string, [string, string]> = {
  series: ['Serija', 'Series'],
  level: ['Nivo', 'Level'],
  code: ['Šifra', 'Code'],
  name: ['Naziv', 'Name'],
  sex: ['Pol', 'Sex'],
  immigrants: ['Doseljeni', 'Immigrants'],
  emigrants: ['Odseljeni', 'Emigrants'],
  net: ['Migracioni saldo', 'Net migration'],
  move_type: ['Vrsta preseljenja', 'Type of move'],
  migrants: ['Migranti', 'Migrants'],
  age_group: ['Starosna grupa', 'Age group'],
  activity_group: ['Grupa aktivnosti', 'Activity group'],
  nationality: ['Nacionalna pripadnost', 'National affiliation'],
  origin: ['Poreklo', 'Origin'],
  population: ['Stanovništvo', 'Population'],
  immigration_rate: ['Stopa doseljavanja (‰)', 'Immigration rate (per 1 000)'],
  emigration_rate: ['Stopa odseljavanja (‰)', 'Emigration rate (per 1 000)'],
  net_rate: ['Stopa migracionog salda (‰)', 'Net migration rate (per 1 000)'],
  immigrants_imputed: ['Doseljeni, imputirano', 'Immigrants, imputed'],
  emigrants_imputed: ['Odseljeni, imputirano', 'Emigrants, imputed'],
};

/** Classifying columns: always text (codes such as 70106 or nationality 01 must not become numbers). */
const KEY_COLUMNS = new Set(['series', 'level', 'code', 'name', 'sex', 'move_type', 'age_group', 'activity_group', 'nationality', 'origin']);

/** Neutralise a text cell that a spreadsheet could read as a formula: the CSV files' rule (pipeline/csv.ts). */
export const safeText = neutraliseFormula;

const SERIES_NOTE_SR: Record<Series, string> = {
  '1991-1997':
    'Serija 1991-1997: Republika Srbija sa AP Kosovo i Metohija. Od 1998. RZS nema podatke za AP Kosovo i Metohija, pa serija od 1998. ne obuhvata Kosovo i Metohiju; dve serije nisu uporedive.',
  '1998-':
    'Serija od 1998: Republika Srbija bez AP Kosovo i Metohija (RZS od 1998. nema podatke za nju); preseljenja na Kosovo i Metohiju nisu obuhvaćena; doseljeni sa Kosova i Metohije broje se kao doseljeni u mesto odredišta, a ni u jednoj teritoriji kao odseljeni, pa je broj doseljenih u Republiku veći od broja odseljenih za njihov broj (tabela porekla ih prikazuje kao poreklo "KM", nije obuhvaćeno). Nije uporedivo sa serijom 1991-1997.',
};

function isTotalRow(r: Row): boolean {
  if (r.level === 'republic' || r.code === 'RS') return true;
  for (const k in r) if ((r[k] === 'total' || r[k] === '_T') && KEY_COLUMNS.has(k) && k !== 'code') return true; // (no array per row)
  return false;
}

function sheetOrder(names: string[]): string[] {
  const known = SHEET_ORDER.filter((n) => names.includes(n));
  const other = names.filter((n) => !SHEET_ORDER.includes(n)).sort();
  return [...known, ...other];
}

/** Excel sheet names: at most 31 characters, none of : \ / ? * [ ] */
function sheetName(n: string): string {
  return n.replace(/[:\\/?*[\]]/g, '_').slice(0, 31) || 'table';
}

/** Shared style objects of data cells: number format (numbers only) × bold (total rows). Text and number cells never share one. */
class SharedCellStyles {
  private readonly m = new Map<string, Partial<ExcelJS.Style>>();
  constructor(private readonly bold: Partial<ExcelJS.Font>) {}
  get(numFmt: string | undefined, bold: boolean): Partial<ExcelJS.Style> {
    const k = `${numFmt ?? ''}|${bold}`;
    let st = this.m.get(k);
    if (!st) this.m.set(k, (st = { ...(numFmt === undefined ? {} : { numFmt }), ...(bold ? { font: this.bold } : {}) }));
    return st;
  }
}

/**
 * One table's sheet of the workbook: title, two header rows, the data rows, committed (written out) row by row.
 * A function of its own, not the body of a loop inside buildWorkbook (async): V8 then compiles these loops alone,
 * not the whole of buildWorkbook on the stack again every year.
 */
function writeSheet(wb: ExcelJS.stream.xlsx.WorkbookWriter, table: string, input: WorkbookInput, prov: string, bold: Partial<ExcelJS.Font>, rowStyles: Record<'plain' | 'bold', Partial<ExcelJS.Style>>, cellStyles: SharedCellStyles): void {
  const rows = input.tables[table]!;
  const ws = wb.addWorksheet(sheetName(table), { views: [{ state: 'frozen', ySplit: 3 }] });
  let cols = rows.length ? Object.keys(rows[0]!) : ['series'];
  if (input.names && cols.includes('code') && !cols.includes('name')) cols = [...cols.slice(0, cols.indexOf('code') + 1), 'name', ...cols.slice(cols.indexOf('code') + 1)];
  const raw = (r: Row, c: string): string => (c === 'name' && !(c in r) ? (input.names?.[r.code ?? ''] ?? '') : (r[c] ?? ''));
  // the column widths first: a streamed sheet writes them before its first row
  const widths = cols.map((c) => Math.max((HEADERS[c]?.[0] ?? c).length, (HEADERS[c]?.[1] ?? c).length));
  for (const r of rows) {
    for (let i = 0; i < cols.length; i++) {
      const v = raw(r, cols[i]!);
      const w = v.length + (v.includes('.') ? 0 : Math.floor(v.length / 3));
      if (w > widths[i]!) widths[i] = w;
    }
  }
  cols.forEach((_, i) => (ws.getColumn(i + 1).width = Math.min(60, Math.max(8, widths[i]! + 2))));
  const [tsr, ten] = TITLES[table] ?? [table, table];
  const title = ws.getRow(1);
  title.getCell(1).value = safeText(`${tsr}, ${input.year} / ${ten}, ${input.year} (${input.series})${prov}`);
  title.font = { bold: true, size: 12 };
  const hsr = ws.getRow(2);
  const hen = ws.getRow(3);
  cols.forEach((c, i) => {
    hsr.getCell(i + 1).value = safeText(HEADERS[c]?.[0] ?? c);
    hen.getCell(i + 1).value = safeText(HEADERS[c]?.[1] ?? c);
  });
  hsr.font = bold;
  hen.font = { bold: true, italic: true };
  // What each column decides once instead of per cell (~100 000 cells a year): key columns are always text;
  // the shared style objects of its cells, [plain, bold], for text, integers and decimals.
  const isKey = cols.map((c) => KEY_COLUMNS.has(c));
  const textStyle = [cellStyles.get(undefined, false), cellStyles.get(undefined, true)];
  const intStyle = cols.map((c) => [false, true].map((b) => cellStyles.get(c.endsWith('_rate') ? '0.0' : '#,##0', b)));
  const decStyle = cols.map((c) => [false, true].map((b) => cellStyles.get(c.endsWith('_rate') ? '0.0' : '0.00', b)));
  for (let ri = 0; ri < rows.length; ri++) {
    const r = rows[ri]!;
    const row = ws.getRow(ri + 4);
    const total = isTotalRow(r);
    const b = total ? 1 : 0;
    // The same as `cell.numFmt = …` and `row.font = bold`, with one style object per distinct style instead
    // of one per cell: exceljs then resolves each style once (its style ids are keyed by content, so the
    // bytes do not change). Never mutate these objects (no row.font / cell.font on data rows).
    (row as ExcelJS.Row & { style: Partial<ExcelJS.Style> }).style = total ? rowStyles.bold : rowStyles.plain; // (exceljs types omit Row.style)
    for (let i = 0; i < cols.length; i++) {
      const v = raw(r, cols[i]!);
      const cell = row.getCell(i + 1);
      if (!isKey[i] && NUMERIC.test(v)) {
        cell.value = Number(v);
        cell.style = (v.includes('.') ? decStyle : intStyle)[i]![b]!;
      } else {
        cell.value = safeText(v);
        cell.style = textStyle[b]!;
      }
    }
    row.commit(); // written out, and the rows before it
  }
  ws.commit();
}

export async function buildWorkbook(input: WorkbookInput): Promise<Buffer> {
  // exceljs's streaming writer: each row is written out as XML when committed, and the zip is deflated by Node's
  // zlib (archiver). The in-memory Workbook kept every cell of ~100 000 as an object until the end and deflated
  // in JavaScript (JSZip/pako): 2.5× the CPU for the same sheets (370 ms against 165 ms a year).
  const wb = new ExcelJS.stream.xlsx.WorkbookWriter({ useStyles: true, useSharedStrings: true });
  wb.creator = 'migstat';
  wb.lastModifiedBy = 'migstat';
  wb.created = FIXED_DATE;
  wb.modified = FIXED_DATE;
  const prov = input.provisional ? ' — privremeni podaci / provisional data' : '';
  const bold = { bold: true };
  const rowStyles: Record<'plain' | 'bold', Partial<ExcelJS.Style>> = { plain: {}, bold: { font: bold } };
  const cellStyles = new SharedCellStyles(bold);

  for (const table of sheetOrder(Object.keys(input.tables))) writeSheet(wb, table, input, prov, bold, rowStyles, cellStyles);

  const notes = wb.addWorksheet('notes');
  notes.getColumn(1).width = 40;
  notes.getColumn(2).width = 100;
  const series = input.series as Series;
  const lines: [string, string][] = [
    ['Napomene / Notes', ''],
    ['Godina / Year', String(input.year)],
    ['Teritorijalna serija / Territorial series', input.series],
    ['Napomena o seriji', SERIES_NOTE_SR[series] ?? ''],
    ['Series note', SERIES_NOTE[series] ?? ''],
    ...(input.provisional ? ([['Status', 'Privremeni podaci: nisu obuhvaćeni svi meseci. / Provisional data: not all months are included.']] as [string, string][]) : []),
    ['Izvor', 'Ministarstvo unutrašnjih poslova: evidencija o prijavi i odjavi prebivališta (obrasci prijave R i odjave D); obrada: Republički zavod za statistiku.'],
    ['Source', 'Ministry of the Interior: registrations and deregistrations of residence (registration forms R, deregistration forms D); processing: Statistical Office of the Republic of Serbia.'],
    ['Metodologija', 'Svako preseljenje se broji jednom kao doseljenje u odredištu i jednom kao odseljenje u polazištu, na svakom nivou; migracioni saldo = doseljeni - odseljeni. Preseljenje se pripisuje mesecu u kome je prijava evidentirana.'],
    ['Methodology', 'Each move counts once as an immigration at its destination and once as an emigration at its origin, at every level; net migration = immigrants - emigrants. A move is attributed to the month in which its registration was recorded.'],
    ['Teritorija', 'Administrativno-teritorijalna podela na dan 31. decembra referentne godine.'],
    ['Territory', 'Administrative division as of 31 December of the reference year.'],
    ['Oznake pola / Sex codes', 'T ukupno / total, M muško / male, F žensko / female'],
  ];
  lines.forEach(([k, v], i) => {
    const row = notes.getRow(i + 1);
    if (i === 0) row.font = { bold: true, size: 12 }; // (set before its cells: they take the row's style)
    row.getCell(1).value = safeText(k);
    row.getCell(2).value = safeText(v);
    if (i > 0) row.getCell(1).font = bold;
    row.getCell(2).alignment = { wrapText: true, vertical: 'top' };
    row.commit();
  });
  notes.commit();
  await wb.commit();
  // (exceljs types omit the writer's output stream: a StreamBuf when no stream or file was given)
  return fixZipTimestamps((wb as unknown as { stream: { read(): Buffer } }).stream.read()); // (it copies the bytes it rewrites)
}

/** DOS date of 1980-01-01, time 00:00:00. */
const DOS_DATE = (0 << 9) | (1 << 5) | 1;
const DOS_TIME = 0;

/**
 * Rewrite the modification time/date of every entry of a zip archive (local and central headers) to a
 * fixed value. Throws if the archive is not a plain (non-zip64) zip.
 */
export function fixZipTimestamps(zip: Buffer): Buffer {
  const out = Buffer.from(zip);
  let eocd = -1;
  for (let i = out.length - 22; i >= Math.max(0, out.length - 22 - 65535); i--) {
    if (out.readUInt32LE(i) === 0x06054b50) { eocd = i; break; }
  }
  if (eocd < 0) throw new Error('workbook: zip end-of-central-directory record not found');
  const entries = out.readUInt16LE(eocd + 10);
  let p = out.readUInt32LE(eocd + 16);
  for (let n = 0; n < entries; n++) {
    if (out.readUInt32LE(p) !== 0x02014b50) throw new Error('workbook: bad zip central directory');
    out.writeUInt16LE(DOS_TIME, p + 12);
    out.writeUInt16LE(DOS_DATE, p + 14);
    const local = out.readUInt32LE(p + 42);
    if (out.readUInt32LE(local) !== 0x04034b50) throw new Error('workbook: bad zip local header');
    out.writeUInt16LE(DOS_TIME, local + 10);
    out.writeUInt16LE(DOS_DATE, local + 12);
    p += 46 + out.readUInt16LE(p + 28) + out.readUInt16LE(p + 30) + out.readUInt16LE(p + 32);
  }
  return out;
}
