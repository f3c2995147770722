/**
 * CSV helpers shared by every stage: reading small reference files, writing outputs.
 * Writing neutralises spreadsheet formulas (a text cell starting with = + - @ gets a leading apostrophe),
 * except for cells that are plain numbers (e.g. a negative net migration).
 */
import * as fs from 'node:fs';
import { parse } from 'csv-parse/sync';
import { ByteWriter } from './bytes';

export type Row = Record<string, string>;

/**
 * Text → rows of cells. Quote-free text (every file the pipeline writes, MoI's usual extracts) is split directly,
 * several times faster than a general parser (csv-parse takes 0.1 s per MB); text with a quote goes through
 * csv-parse. A BOM is dropped. Empty lines are skipped (`skipEmpty`) or kept as [''] except a trailing one.
 */
function splitRows(text: string, skipEmpty: boolean): string[][] {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  if (body.includes('"')) return parse(body, { skip_empty_lines: true, relax_column_count: true }) as string[][];
  const lines = body.split(/\r?\n/);
  if (lines[lines.length - 1] === '') lines.pop();
  return (skipEmpty ? lines.filter((l) => l !== '') : lines).map((l) => l.split(','));
}

/** Parse a small, trusted CSV (reference data, settlements, expected results) into row objects. */
export function readCsvText(text: string): Row[] {
  const [header = [], ...rows] = splitRows(text, true);
  return rows.map((cells, i) => {
    if (cells.length !== header.length) throw new Error(`line ${i + 2}: ${cells.length} fields, expected ${header.length}`);
    const r: Row = {};
    for (let k = 0; k < header.length; k++) r[header[k]!] = cells[k]!;
    return r;
  });
}

/**
 * Read one of the pipeline's own table files (written by toCsv) into rows of cells, refusing a file whose
 * header is not `header` or whose lines have the wrong number of fields.
 */
export function readTable(file: string, header: readonly string[]): string[][] {
  const rows = splitRows(fs.readFileSync(file, 'utf8'), false);
  const head = rows.shift() ?? [];
  if (head.join(',') !== header.join(',')) throw new Error(`${file}: header is "${head.join(',')}", expected "${header.join(',')}"`);
  rows.forEach((r, i) => {
    if (r.length !== header.length) throw new Error(`${file} line ${i + 2}: ${r.length} fields, expected ${header.length}`);
  });
  return rows;
}

/** A plain decimal number (never neutralised: -3 stays -3; the workbook writes such cells as numbers). */
export const NUMERIC = /^-?\d+(\.\d+)?$/;

/** A first character that makes a spreadsheet read a cell as a formula: = + - @ tab CR. */
function formulaStart(c: number): boolean {
  return c === 61 || c === 43 || c === 45 || c === 64 || c === 9 || c === 13;
}
/** A character that makes a cell need quotes (RFC 4180): , " LF CR. */
function needsQuotes(c: number): boolean {
  return c === 44 || c === 34 || c === 10 || c === 13;
}

/**
 * Formula injection neutralised: text a spreadsheet would read as a formula gets a leading apostrophe (a plain
 * number does not). The rule of every CSV cell (csvCell) and every workbook text cell (stages/excel.ts).
 */
export function neutraliseFormula(s: string): string {
  return s.length > 0 && formulaStart(s.charCodeAt(0)) && !NUMERIC.test(s) ? `'${s}` : s;
}

/** Quote a cell per RFC 4180 and neutralise formula injection. */
export function csvCell(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'number') return String(v); // a number is never a formula (-3 stays -3)
  const s = neutraliseFormula(typeof v === 'string' ? v : String(v));
  // one scan for the characters that need quotes (almost every cell has none: no regex, no copy)
  for (let i = 0; i < s.length; i++) if (needsQuotes(s.charCodeAt(i))) return `"${s.replace(/"/g, '""')}"`;
  return s;
}

/**
 * Serialise rows (arrays of cells) with a header, LF line endings, trailing newline. One string built by
 * appending (V8 ropes, flattened once when written), without an array of lines.
 */
export function toCsv(header: readonly string[], rows: Iterable<readonly unknown[]>): string {
  let out = csvLine(header);
  for (const r of rows) out += csvLine(r);
  return out;
}

/** One CSV line with its newline. */
function csvLine(r: readonly unknown[]): string {
  let line = '';
  for (let k = 0; k < r.length; k++) line += (k ? ',' : '') + csvCell(r[k]);
  return line + '\n';
}

/** Serialise row objects in the order of `header` (no intermediate array per row). */
export function objectsToCsv(header: readonly string[], rows: Iterable<Record<string, unknown>>): string {
  let out = csvLine(header);
  for (const r of rows) {
    let line = '';
    for (let k = 0; k < header.length; k++) line += (k ? ',' : '') + csvCell(r[header[k]!]);
    out += line + '\n';
  }
  return out;
}

/**
 * CSV written straight into UTF-8 bytes, cell by cell, with exactly csvCell's quoting and formula rules: for the
 * large month files, a string built from a million pieces costs more to flatten and encode than to write.
 * An ASCII cell with nothing to quote or neutralise (nearly all) is copied byte by byte; any other goes through csvCell.
 */
export class CsvWriter extends ByteWriter {
  private first = true;

  /** null: lines only, no header (a part of a file, given to another writer's append) */
  constructor(header: readonly string[] | null) {
    super();
    if (header) this.row(header);
  }

  /** Lines written by another writer (whole lines), copied as they are. */
  append(lines: CsvWriter): void {
    this.raw(lines.result());
  }

  /** One cell of the current line. */
  cell(v: unknown): this {
    if (this.first) this.first = false;
    else this.char(44);
    if (typeof v === 'string') {
      if (!this.plain(v)) this.text(csvCell(v));
    } else if (typeof v === 'number') {
      // one digit (most table cells are 0 or small counts): one byte; other numbers as String(v) writes them
      if (v >= 0 && v <= 9 && v === Math.floor(v)) this.char(48 + v); // -0 too: "0", as String(-0)
      else this.number(v); // a number is never a formula, never quoted
    } else if (v !== null && v !== undefined) this.text(csvCell(v));
    return this;
  }

  /** End the current line. */
  end(): void {
    this.char(10);
    this.first = true;
  }

  row(cells: readonly unknown[]): void {
    for (let k = 0; k < cells.length; k++) this.cell(cells[k]);
    this.end();
  }

  /** Copy s when it is ASCII, needs no quotes and does not start like a formula; false (nothing written) otherwise. */
  private plain(s: string): boolean {
    const len = s.length;
    if (len === 0) return true;
    if (formulaStart(s.charCodeAt(0))) return false;
    this.room(len);
    const b = this.buf;
    let p = this.n;
    for (let i = 0; i < len; i++) {
      const c = s.charCodeAt(i);
      if (c >= 128 || needsQuotes(c)) return false;
      b[p++] = c;
    }
    this.n = p;
    return true;
  }
}

/** toCsv as UTF-8 bytes (the same bytes as Buffer.from(toCsv(...))). */
export function toCsvBytes(header: readonly string[], rows: Iterable<readonly unknown[]>): Buffer {
  const w = new CsvWriter(header);
  for (const r of rows) w.row(r);
  return w.result();
}

/** objectsToCsv as UTF-8 bytes. */
export function objectsToCsvBytes(header: readonly string[], rows: Iterable<Record<string, unknown>>): Buffer {
  return objectsToCsvWriter(header, rows).result();
}

/** objectsToCsv in a writer, which more lines can follow. */
export function objectsToCsvWriter(header: readonly string[], rows: Iterable<Record<string, unknown>>): CsvWriter {
  const w = new CsvWriter(header);
  const line = rowWriter(header);
  for (const r of rows) line(w, r);
  return w;
}

/**
 * A function writing the fields `header` of a row object as one line: `w.cell(r["a"]).cell(r["b"])…; w.end()`.
 * Generated once per header (names quoted with JSON.stringify), so each field is a named property read instead
 * of a keyed read with a varying name (slow in V8: the month files have a million cells).
 */
type RowWriter = (w: CsvWriter, r: Record<string, unknown>) => void;
const rowWriters = new Map<string, RowWriter>();
function rowWriter(header: readonly string[]): RowWriter {
  const key = JSON.stringify(header);
  let f = rowWriters.get(key);
  if (!f) {
    f = Function('w', 'r', `w${header.map((h) => `.cell(r[${JSON.stringify(h)}])`).join('')}; w.end();`) as RowWriter;
    rowWriters.set(key, f);
  }
  return f;
}
