/**
 * CSV helpers shared by every stage: reading small reference files, writing outputs.
 * Writing neutralises spreadsheet formulas (a text cell starting with = + - @ gets a leading apostrophe),
 * except for cells that are plain numbers (e.g. a negative net migration).
 */
import * as fs from 'node:fs';
import { parse } from 'csv-parse/sync';

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

const NUMERIC = /^-?\d+(\.\d+)?$/;

/** Quote a cell per RFC 4180 and neutralise formula injection. */
export function csvCell(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'number') return String(v); // a number is never a formula (-3 stays -3)
  let s = typeof v === 'string' ? v : String(v);
  if (s.length === 0) return s;
  const c = s.charCodeAt(0); // = + - @ tab CR
  if ((c === 61 || c === 43 || c === 45 || c === 64 || c === 9 || c === 13) && !NUMERIC.test(s)) s = `'${s}`;
  // one scan for the characters that need quotes (almost every cell has none: no regex, no copy)
  for (let i = 0; i < s.length; i++) {
    const k = s.charCodeAt(i);
    if (k === 44 || k === 34 || k === 10 || k === 13) return `"${s.replace(/"/g, '""')}"`;
  }
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
