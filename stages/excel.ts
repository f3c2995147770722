/**
 * The annual release tables as an Excel workbook (years/YYYY/tables.xlsx): one sheet per table, a title row,
 * headers in Serbian and English (two rows), numbers as numbers, Republic/total rows bold, column widths,
 * frozen headers, and a notes sheet with the territorial-series note and the sources.
 *
 * Written by stages/xlsx.ts (the bytes exceljs wrote, several times cheaper; test/excel.test.ts compares).
 * Deterministic bytes: the workbook's created/modified dates are fixed, and every zip entry carries a fixed
 * DOS date (1980-01-01 00:00) instead of the clock; fixZipTimestamps does the same to any zip (as was done to
 * exceljs's output) and is kept for checks.
 * Formula injection: a text cell beginning with = + - @ (or tab / CR) gets a leading apostrophe, as in
 * pipeline/csv.ts; cells that are plain numbers are written as numbers and need none.
 */
import type { Row } from '../pipeline/csv';
import { SERIES_NOTE, type Series } from './territory';
import { type XlsxCell, type XlsxRow, type XlsxSheet, type XlsxStyle, writeXlsx } from './xlsx';

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
const NUMERIC = /^-?\d+(\.\d+)?$/;

/** Neutralise a text cell that a spreadsheet could read as a formula. */
export function safeText(s: string): string {
  return s.length > 0 && '=+-@\t\r'.includes(s[0]!) && !NUMERIC.test(s) ? `'${s}` : s;
}

const SERIES_NOTE_SR: Record<Series, string> = {
  '1991-1997':
    'Serija 1991-1997: Republika Srbija sa AP Kosovo i Metohija. Od 1998. RZS nema podatke za AP Kosovo i Metohija, pa serija od 1998. ne obuhvata Kosovo i Metohiju; dve serije nisu uporedive.',
  '1998-':
    'Serija od 1998: Republika Srbija bez AP Kosovo i Metohija (RZS od 1998. nema podatke za nju); preseljenja na Kosovo i Metohiju nisu obuhvaćena, a doseljeni sa Kosova i Metohije prikazani su kao poreklo "K&M (nije obuhvaćeno)". Nije uporedivo sa serijom 1991-1997.',
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

// Styles as the exceljs version set them (title row font, header row fonts, bold total rows, number formats).
// One object per distinct style: the writer numbers each object once.
const BOLD: XlsxStyle = { font: { bold: true } };
const TITLE: XlsxStyle = { font: { bold: true, size: 12 } };
const HEADER_EN: XlsxStyle = { font: { bold: true, italic: true } };
const WRAP_TOP = { wrapText: true, vertical: 'top' } as const;
const numberStyles = new Map<string, XlsxStyle>();
function numberStyle(numFmt: string, bold: boolean): XlsxStyle {
  const k = `${numFmt}|${bold}`;
  let st = numberStyles.get(k);
  if (!st) numberStyles.set(k, (st = bold ? { numFmt, font: BOLD.font } : { numFmt }));
  return st;
}

export async function buildWorkbook(input: WorkbookInput): Promise<Buffer> {
  const prov = input.provisional ? ' — privremeni podaci / provisional data' : '';
  const sheets: XlsxSheet[] = [];

  for (const table of sheetOrder(Object.keys(input.tables))) {
    const rows = input.tables[table]!;
    let cols = rows.length ? Object.keys(rows[0]!) : ['series'];
    if (input.names && cols.includes('code') && !cols.includes('name')) cols = [...cols.slice(0, cols.indexOf('code') + 1), 'name', ...cols.slice(cols.indexOf('code') + 1)];
    const [tsr, ten] = TITLES[table] ?? [table, table];
    const out: XlsxRow[] = [
      { style: TITLE, cells: [{ value: safeText(`${tsr}, ${input.year} / ${ten}, ${input.year} (${input.series})${prov}`), style: TITLE }] },
      { style: BOLD, cells: cols.map((c) => ({ value: safeText(HEADERS[c]?.[0] ?? c), style: BOLD })) },
      { style: HEADER_EN, cells: cols.map((c) => ({ value: safeText(HEADERS[c]?.[1] ?? c), style: HEADER_EN })) },
    ];
    const widths = cols.map((c) => Math.max((HEADERS[c]?.[0] ?? c).length, (HEADERS[c]?.[1] ?? c).length));
    for (const r of rows) {
      const total = isTotalRow(r);
      const cells: XlsxCell[] = cols.map((c, i) => {
        const raw = c === 'name' && !(c in r) ? (input.names?.[r.code ?? ''] ?? '') : (r[c] ?? '');
        widths[i] = Math.max(widths[i]!, raw.length + (raw.includes('.') ? 0 : Math.floor(raw.length / 3)));
        if (!KEY_COLUMNS.has(c) && NUMERIC.test(raw)) return { value: Number(raw), style: numberStyle(c.endsWith('_rate') ? '0.0' : raw.includes('.') ? '0.00' : '#,##0', total) };
        return { value: safeText(raw), style: total ? BOLD : undefined };
      });
      out.push({ style: total ? BOLD : undefined, cells });
    }
    sheets.push({ name: sheetName(table), rows: out, widths: widths.map((w) => Math.min(60, Math.max(8, w + 2))), frozenRows: 3 });
  }

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
  // the first line is the notes' title: larger bold, over both cells
  const notes: XlsxRow[] = lines.map(([k, v], i) => ({
    style: i === 0 ? TITLE : undefined,
    cells: [
      { value: safeText(k), style: i === 0 ? TITLE : BOLD },
      { value: safeText(v), style: i === 0 ? { font: TITLE.font, alignment: WRAP_TOP } : { alignment: WRAP_TOP } },
    ],
  }));
  sheets.push({ name: 'notes', rows: notes, widths: [40, 100], frozenRows: 0 });

  return writeXlsx(sheets, { creator: 'migstat', lastModifiedBy: 'migstat', created: FIXED_DATE, modified: FIXED_DATE });
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
