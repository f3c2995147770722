/**
 * Ingest stage: one monthly MoI extract → accepted forms (columns, pseudonymised) + quarantine + duplicates.
 *  - decoding: UTF-8 with or without BOM; Windows-1250 only when asked; otherwise the line of the first invalid byte;
 *  - syntax: RFC 4180; a quote-free file (the normal MoI extract) is split directly, which is exact for
 *    RFC 4180 without quotes; a file with quotes goes through csv-parse, which reports unbalanced quotes
 *    with their line;
 *  - header: exactly the contract's columns in order; the differences are listed;
 *  - every row against the ajv record schema (schemas/record.schema.json): failures → quarantine;
 *  - the JMBG → keyed pseudonym + derived sex, birth date and checksum validity; the clear JMBG is dropped.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isUtf8 } from 'node:buffer';
import { parse as csvParse } from 'csv-parse/sync';
import type { ValidateFunction } from 'ajv';
import { derivedValidator, validator } from '../pipeline/schemas';
import { SCHEMAS } from '../pipeline/paths';
import { packedMap } from '../pipeline/memo';
import { decodeJmbg, jmbgSex, validWithBirthDate, type Pseudonymiser } from './jmbg';

export const INPUT_COLUMNS = [
  'record_id', 'form_type', 'registration_date', 'move_date', 'person_id', 'citizenship', 'sex', 'birth_date',
  'origin_country', 'from_settlement', 'from_municipality', 'destination_country', 'to_settlement', 'to_municipality',
  'registering_office', 'nationality', 'economic_activity', 'occupation',
] as const;

/** Columns of an accepted form after ingest (person_id replaced by pid and the derived JMBG columns). */
export const FORM_COLUMNS = [
  'file', 'line', 'record_id', 'form_type', 'registration_date', 'move_date', 'pid', 'jmbg_valid', 'jmbg_sex', 'jmbg_birth',
  'citizenship', 'sex', 'birth_date', 'origin_country', 'from_settlement', 'from_municipality', 'destination_country',
  'to_settlement', 'to_municipality', 'registering_office', 'nationality', 'economic_activity', 'occupation', 'file_month',
] as const;
export type Columns = Record<string, string[]>;

export class InputError extends Error {
  constructor(readonly file: string, readonly line: number | undefined, readonly field: string | undefined, reason: string) {
    super(`${file}${line !== undefined ? `: line ${line}` : ''}${field ? `, field ${field}` : ''}: ${reason}`);
  }
}

/**
 * In a malformed line the fields may be shifted, so a JMBG can sit in any column: the texts of errors and quarantine
 * rows withhold every run of 13 or more digits, whatever is next to it (a letter, a tab, a control character).
 * Applied to the raw value, before it is escaped (JSON.stringify makes a tab "\t", whose "t" is a letter) or cut.
 */
export function withholdJmbg(s: string): string {
  return s.replace(/[0-9]{13,}/g, '<13 digits withheld>');
}

/**
 * The same for a record id, which may be a letter and 13 digits (R2024010000012): a run of 13 or more digits is
 * kept only right after a letter; any other is withheld (a JMBG in the record-id column of a shifted line).
 */
export function withholdJmbgInId(s: string): string {
  return s.replace(/(?<![A-Za-z])[0-9]{13,}/g, '<13 digits withheld>');
}

export interface QuarantineRow { file: string; line: number; record_id: string; field: string; reason: string; detail: string }

export interface ParsedExtract {
  file: string;
  /** the data rows with the right number of fields, by column (INPUT_COLUMNS order): no array per row */
  cols: string[][];
  lines: number[]; // 1-based line of each data row
  quarantine: QuarantineRow[]; // rows with a wrong field count
  formsRead: number;
  /** where the quote-free path sliced each data row from (see Spans); absent when the file had quotes */
  spans?: Spans;
  /**
   * The rows (increasing indices into cols) with a value of a pooled column that fails the record schema, the
   * quote-free path having checked each distinct value of those columns once (see Pool): every other row's pooled
   * values pass it. Absent when the pooled values were not checked (quoted file, a record schema that is not separable).
   */
  pooledFails?: number[];
}

/**
 * Row i's input fields are text[start[i], end[i]) split at its commas: the quote-free path slices exactly these.
 * contentDigests reads a form's content there, in file order, rather than from 18 strings scattered in the heap.
 */
export interface Spans { text: string; start: Int32Array; end: Int32Array }

export function fileMonthOf(file: string): string | undefined {
  const m = /moi_(\d{4})_(\d{2})\.csv$/i.exec(path.basename(file));
  return m ? `${m[1]}-${m[2]}` : undefined;
}

/** Decode the bytes of an extract. */
export function decodeExtract(buf: Buffer, file: string, encoding: 'utf-8' | 'windows-1250' = 'utf-8'): string {
  const name = path.basename(file);
  if (buf.length === 0) throw new InputError(name, 1, undefined, 'the file is empty (no header, no data)');
  if (encoding === 'windows-1250') return new TextDecoder('windows-1250').decode(buf);
  let body = buf;
  if (buf.length >= 3 && buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) body = buf.subarray(3);
  if (!isUtf8(body)) {
    const { line, offset } = firstInvalidUtf8(body);
    // (the byte is counted from the start of the file, byte-order mark included)
    throw new InputError(name, line, undefined, `invalid UTF-8 byte 0x${body[offset]!.toString(16).padStart(2, '0')} at byte ${offset + 1 + (buf.length - body.length)} (if this is an older Windows-1250 extract, run again with --encoding windows-1250)`);
  }
  return body.toString('utf8');
}

/**
 * Where a buffer that isUtf8 rejects stops being UTF-8: the first byte of the first sequence that is not well formed
 * (Unicode 15, table 3-7: no overlong forms, no surrogates, nothing above U+10FFFF, no truncated sequence), and
 * its line. The same rules as isUtf8, so the byte named is always there.
 */
export function firstInvalidUtf8(b: Uint8Array): { line: number; offset: number } {
  let line = 1;
  const cont = (i: number, lo = 0x80, hi = 0xbf): boolean => i < b.length && b[i]! >= lo && b[i]! <= hi;
  for (let i = 0; i < b.length; ) {
    const c = b[i]!;
    if (c < 0x80) { if (c === 0x0a) line++; i++; continue; }
    let n: number;
    if (c >= 0xc2 && c <= 0xdf) n = cont(i + 1) ? 2 : 0;
    else if (c === 0xe0) n = cont(i + 1, 0xa0) && cont(i + 2) ? 3 : 0;
    else if (c === 0xed) n = cont(i + 1, 0x80, 0x9f) && cont(i + 2) ? 3 : 0;
    else if (c >= 0xe1 && c <= 0xef) n = cont(i + 1) && cont(i + 2) ? 3 : 0;
    else if (c === 0xf0) n = cont(i + 1, 0x90) && cont(i + 2) && cont(i + 3) ? 4 : 0;
    else if (c === 0xf4) n = cont(i + 1, 0x80, 0x8f) && cont(i + 2) && cont(i + 3) ? 4 : 0;
    else if (c >= 0xf1 && c <= 0xf3) n = cont(i + 1) && cont(i + 2) && cont(i + 3) ? 4 : 0;
    else n = 0;
    if (n === 0) return { line, offset: i };
    i += n;
  }
  throw new Error('internal: firstInvalidUtf8 found no invalid sequence in a buffer isUtf8 rejected');
}

/** Input columns with few distinct values in an extract (see `pool` in parseExtract). */
const POOLED = new Set<string>(['registration_date', 'move_date', 'citizenship', 'from_settlement', 'from_municipality', 'to_settlement', 'to_municipality', 'registering_office', 'nationality']);

/**
 * Split the text into rows; check the header; rows with a wrong field count go to quarantine. The rows are
 * stored by column: the quote-free path slices each field straight out of the text, with no array per row
 * (21 000 fewer objects per extract for the garbage collector), and toForms uses the columns as they are.
 */
export function parseExtract(text: string, file: string): ParsedExtract {
  const name = path.basename(file);
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  if (text.trim() === '') throw new InputError(name, 1, undefined, 'the file is empty (no header, no data)');
  if (!text.includes('\n') && /\r[^\r]/.test(text)) throw new InputError(name, 1, undefined, 'the lines end in CR only (old Mac format): convert the file to LF or CRLF line ends');
  const n = INPUT_COLUMNS.length;
  const quoteFree = !text.includes('"');
  // The columns are allocated at their final size when it is known (a quote-free file has at most one row a
  // line) and written by index: ~1.5 ms an extract less than pushing 18 × 21 000 strings into arrays that grow
  // by copying. They are cut to the rows read at the end.
  let lines = 1;
  if (quoteFree) for (let p = text.indexOf('\n'); p >= 0; p = text.indexOf('\n', p + 1)) lines++;
  const cols: string[][] = packedMap(INPUT_COLUMNS, () => new Array<string>(quoteFree ? lines : 0));
  const rowLines: number[] = new Array<number>(quoteFree ? lines : 0);
  const spans: Spans | undefined = quoteFree ? { text, start: new Int32Array(lines), end: new Int32Array(lines) } : undefined;
  let rows = 0; // the data rows stored so far
  const quarantine: QuarantineRow[] = [];
  let formsRead = 0;
  const pooledFails: number[] = [];
  /** One data record (split by the slow path, or a quote-free line with a wrong field count). */
  const record = (r: string[], line: number, last: boolean): void => {
    if (r.length === 1 && r[0] === '') return; // blank line
    formsRead++;
    if (r.length !== n) {
      if (last && r.length < n)
        throw new InputError(name, line, undefined, `the last line is truncated (${r.length} of ${n} fields, no line end): the file was cut off; ask MoI to re-send it`);
      quarantine.push({ file: name, line, record_id: withholdJmbgInId(r[0] ?? '').slice(0, 40), field: '', reason: 'field_count', detail: `${r.length} fields, expected ${n}` });
      return;
    }
    for (let k = 0; k < n; k++) cols[k]![rows] = r[k]!;
    rowLines[rows++] = line;
  };
  const endsWithNewline = text.endsWith('\n');
  if (quoteFree) {
    // line by line (a CR before the LF is dropped); a line with exactly n - 1 commas is sliced into the columns
    const len = text.length;
    const comma = new Int32Array(n); // positions of the commas of the current line
    // The columns of codes and dates repeat a few hundred values over ~20 000 rows: they hold one string per
    // distinct value instead of one per row, ~40 % fewer strings for the garbage collector to copy and promote
    // (the forms live until their month is built), and later stages hash each code once. Strings are
    // immutable: which of two equal strings a column holds cannot be observed.
    // Each distinct value of a pooled column is checked against the record schema once, when the pool makes its
    // string (toForms then checks only the other columns of most rows: see recordValidators)
    const check = recordValidators().pooled?.check;
    const pool = packedMap(INPUT_COLUMNS, (c) => (POOLED.has(c) ? new Pool(check && ((s: string) => check(c, s))) : undefined));
    let line = 0;
    for (let a = 0; a < len; ) {
      let b = text.indexOf('\n', a);
      const last = b < 0; // only a file without a final line end has a last line without one
      if (last) b = len;
      const e = b > a && text.charCodeAt(b - 1) === 13 ? b - 1 : b;
      line++;
      if (line === 1) {
        checkHeader(text.slice(a, e).split(','), name);
        if (b + 1 >= len) throw new InputError(name, 2, undefined, 'the file has a header but no data rows');
      } else {
        let c = 0;
        for (let p = text.indexOf(',', a); p >= 0 && p < e && c < n; p = text.indexOf(',', p + 1)) comma[c++] = p;
        if (c === n - 1) {
          formsRead++;
          cols[0]![rows] = text.slice(a, comma[0]);
          let fails = false;
          for (let k = 1; k < n - 1; k++) {
            const from = comma[k - 1]! + 1, to = comma[k]!;
            const u = pool[k];
            if (u === undefined) cols[k]![rows] = text.slice(from, to);
            else { cols[k]![rows] = u.of(text, from, to); fails ||= u.failed; }
          }
          if (fails) pooledFails.push(rows);
          cols[n - 1]![rows] = text.slice(comma[n - 2]! + 1, e);
          spans!.start[rows] = a;
          spans!.end[rows] = e;
          rowLines[rows++] = line;
        } else record(text.slice(a, e).split(','), line, last);
      }
      a = b + 1;
    }
  } else {
    // csv-parse counts CR and LF as two lines inside a quoted field: give it LF line ends so its line numbers are right
    const lf = text.replace(/\r\n/g, '\n');
    let out: { record: string[]; info: { lines: number } }[];
    try {
      out = csvParse(lf, { relax_column_count: true, info: true, skip_empty_lines: false }) as unknown as { record: string[]; info: { lines: number } }[];
    } catch (e) {
      const err = e as Error & { lines?: number; code?: string; index?: number };
      const field = err.index !== undefined ? INPUT_COLUMNS[err.index] : undefined;
      if (err.code === 'CSV_QUOTE_NOT_CLOSED') throw new InputError(name, openQuoteLine(lf), undefined, 'unbalanced quotes: a quoted field is never closed');
      if (err.code === 'INVALID_OPENING_QUOTE') throw new InputError(name, err.lines, field, 'a quote inside an unquoted field (RFC 4180: quote the whole field and double the quote)');
      if (err.code === 'CSV_INVALID_CLOSING_QUOTE') throw new InputError(name, err.lines, field, 'a quoted field is followed by other characters before the next comma or line end');
      throw new InputError(name, err.lines, field, withholdJmbg(err.message.replace(/ at line \d+/, '')));
    }
    checkHeader(out[0]!.record, name);
    if (out.length === 1) throw new InputError(name, 2, undefined, 'the file has a header but no data rows');
    // the line a record starts on (info.lines is where it ends)
    for (let k = 1; k < out.length; k++) record(out[k]!.record, out[k - 1]!.info.lines + 1, k === out.length - 1 && !endsWithNewline);
  }
  if (formsRead === 0) throw new InputError(name, 2, undefined, 'the file has a header but no data rows (only blank lines)');
  for (const c of cols) c.length = rows;
  rowLines.length = rows;
  return {
    file: name, cols, lines: rowLines, quarantine, formsRead,
    ...(spans ? { spans: { text, start: spans.start.subarray(0, rows), end: spans.end.subarray(0, rows) }, ...(recordValidators().pooled ? { pooledFails } : {}) } : {}),
  };
}

const POOL_BITS = 12;
/**
 * The strings of one pooled column of an extract, one per distinct value. A code or a date is found by a number
 * made of its digits (smallKey), without slicing a string to look it up: first in a direct-mapped table of 4 096
 * slots (two integer compares; parse ~1.6 ms an extract faster than with a Map lookup per value), then in a Map.
 */
class Pool {
  private readonly keys = new Int32Array(1 << POOL_BITS).fill(-1);
  private readonly vals: string[] = new Array<string>(1 << POOL_BITS).fill('');
  private readonly fails = new Uint8Array(1 << POOL_BITS); // 1: vals[slot] fails the check
  private readonly byKey = new Map<number, string>();
  private readonly byText = new Map<string, string>();
  private readonly failing = new Set<string>(); // the values made so far that fail the check (a few, if any)
  /** whether the value `of` returned last fails the check (always false without one) */
  failed = false;

  /** check: whether a value is good, called once for each string the pool makes */
  constructor(private readonly check?: (value: string) => boolean) {}

  /** the column's string equal to text[from, to) */
  of(text: string, from: number, to: number): string {
    const key = smallKey(text, from, to);
    if (key < 0) {
      const t = text.slice(from, to);
      let s = this.byText.get(t);
      if (s === undefined) this.byText.set(t, (s = this.made(t)));
      this.failed = this.failing.size > 0 && this.failing.has(s);
      return s;
    }
    const slot = Math.imul(key, 0x9e3779b1) >>> (32 - POOL_BITS); // (Fibonacci hashing: the high bits of key × 2^32/φ)
    if (this.keys[slot] === key) {
      this.failed = this.fails[slot] === 1;
      return this.vals[slot]!;
    }
    let s = this.byKey.get(key);
    if (s === undefined) this.byKey.set(key, (s = this.made(text.slice(from, to))));
    this.failed = this.failing.size > 0 && this.failing.has(s);
    this.keys[slot] = key;
    this.vals[slot] = s;
    this.fails[slot] = this.failed ? 1 : 0;
    return s;
  }

  /** a new value of the column, checked */
  private made(s: string): string {
    if (this.check && !this.check(s)) this.failing.add(s);
    return s;
  }
}

/**
 * A small integer naming text[a, b) when it is at most 8 digits (a code) or a date DDDD-DD-DD, -1 otherwise:
 * base 12 with digit d as d + 1, so leading zeros count ("070" ≠ "70"), and dates offset by 12^8 so a date and
 * an 8-digit code never share a number. Always below 2^30: a V8 small integer, cheap as a Map key.
 */
function smallKey(text: string, a: number, b: number): number {
  const len = b - a;
  let k = 0;
  if (len === 10 && text.charCodeAt(a + 4) === 45 && text.charCodeAt(a + 7) === 45) {
    for (let i = a; i < b; i++) {
      if (i === a + 4 || i === a + 7) continue;
      const d = text.charCodeAt(i) - 48;
      if (d < 0 || d > 9) return -1;
      k = k * 12 + d + 1;
    }
    return k + 429981696; // 12^8
  }
  if (len > 8) return -1;
  for (let i = a; i < b; i++) {
    const d = text.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    k = k * 12 + d + 1;
  }
  return k;
}

/** The line on which the quoted field that is never closed opens (RFC 4180: "" inside quotes is a quote). */
function openQuoteLine(text: string): number {
  let line = 1, open = 1, inQuotes = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 10) line++;
    else if (c === 34) {
      if (inQuotes && text.charCodeAt(i + 1) === 34) i++;
      else { inQuotes = !inQuotes; if (inQuotes) open = line; }
    }
  }
  return open;
}

function checkHeader(header: string[], name: string): void {
  const got = header.map((h) => h.trim());
  if (got.length === INPUT_COLUMNS.length && got.every((h, i) => h === INPUT_COLUMNS[i])) return;
  const missing = INPUT_COLUMNS.filter((c) => !got.includes(c));
  const extra = got.filter((c) => !(INPUT_COLUMNS as readonly string[]).includes(c));
  const parts: string[] = [];
  // the names come from the file: at most 5, shortened, control characters and JMBGs not echoed
  const list = (xs: string[]): string => xs.slice(0, 5).map((raw) => { const x = withholdJmbg(raw); return JSON.stringify(x.length > 40 ? `${x.slice(0, 40)}…` : x).slice(1, -1); }).join(', ') + (xs.length > 5 ? ` and ${xs.length - 5} more` : '');
  if (missing.length) parts.push(`missing: ${list(missing)}`);
  if (extra.length) parts.push(`unexpected: ${list(extra)}`);
  if (!missing.length && !extra.length) {
    const moved = INPUT_COLUMNS.filter((c, i) => got[i] !== c);
    parts.push(`columns out of order: ${moved.join(', ')} (expected order: ${INPUT_COLUMNS.join(',')})`);
  }
  throw new InputError(name, 1, undefined, `the header does not match the extract layout — ${parts.join('; ')}`);
}

let rowObject: Record<string, string> | undefined; // one object reused for every row (ajv keeps no reference)

/** Keywords of an object schema that say nothing about the values of its properties. */
const ANNOTATIONS = new Set(['$id', '$schema', '$comment', 'title', 'description']);
/**
 * The record schema as schemaCheckAt applies it to each row object, which it builds with exactly the input columns,
 * each a string. When the schema's object-level keywords are only `type: "object"`, `required` (input columns),
 * `additionalProperties: false` and `properties` naming exactly the input columns, every row object satisfies
 * `required` and `additionalProperties`, so the schema without those two gives the same outcome and the same
 * first error (ajv checks them before the properties): named `record.rows` and precompiled at build time, it saves
 * ~4 ms an extract (~10 % of turning rows into forms). Any other record schema (one with if/then, say) is applied
 * as it is, named `record`.
 */
export function recordRowSchema(): { name: string; schema: object } {
  const schema = JSON.parse(fs.readFileSync(path.join(SCHEMAS, 'record.schema.json'), 'utf8')) as Record<string, unknown>;
  const props = schema.properties as Record<string, unknown> | undefined;
  const required = schema.required as unknown[] | undefined;
  const cols = new Set<string>(INPUT_COLUMNS);
  const separable = schema.type === 'object' && schema.additionalProperties === false && props !== undefined
    && Object.keys(props).length === cols.size && Object.keys(props).every((k) => cols.has(k))
    && (required === undefined || (Array.isArray(required) && required.every((k) => typeof k === 'string' && cols.has(k))))
    && Object.keys(schema).every((k) => ANNOTATIONS.has(k) || ['type', 'required', 'additionalProperties', 'properties'].includes(k));
  if (!separable) return { name: 'record', schema };
  const rows: Record<string, unknown> = { ...schema, $id: 'record.rows' };
  delete rows.required;
  delete rows.additionalProperties;
  return { name: 'record.rows', schema: rows };
}
/**
 * The per-row record schema without the pooled columns' properties (`record.rows.unpooled`), when the per-row
 * schema is `record.rows`. A row passes `record.rows` exactly when each of its values passes its property's schema
 * (the properties are all it has): so a row whose pooled values passed (each distinct one checked once, by the
 * pool that made its string) passes it exactly when it passes this one. ~7 ms an extract less than checking all
 * 18 columns of every row, the pooled ones being the dates, codes and the 25-value nationality list.
 */
export function recordUnpooledSchema(rows = recordRowSchema()): { name: string; schema: object } | undefined {
  if (rows.name !== 'record.rows') return undefined;
  const props = { ...((rows.schema as { properties: Record<string, unknown> }).properties) };
  for (const c of POOLED) delete props[c];
  return { name: 'record.rows.unpooled', schema: { ...rows.schema, $id: 'record.rows.unpooled', properties: props } };
}

/**
 * The validators ingest applies, found once per process. row: the per-row record schema (recordRowSchema).
 * pooled, when the record schema is separable: check(column, value), whether a value of a pooled column passes its
 * property's schema (`row` on an object with that one property: the schema requires none), and `unpooled`, the
 * per-row schema without the pooled columns (recordUnpooledSchema).
 */
interface RecordValidators {
  row: ValidateFunction;
  pooled?: { check: (column: string, value: string) => boolean; unpooled: ValidateFunction };
}
let validators: RecordValidators | undefined;
function recordValidators(): RecordValidators {
  if (!validators) {
    const rs = recordRowSchema();
    const row = rs.name === 'record' ? validator('record') : derivedValidator(rs.name, rs.schema);
    const un = recordUnpooledSchema(rs);
    validators = { row, ...(un ? { pooled: { check: (column: string, value: string) => row({ [column]: value }) as boolean, unpooled: derivedValidator(un.name, un.schema) } } : {}) };
  }
  return validators;
}

/** The record schema, applied to one row; returns the first failing field and the constraint. */
export function schemaCheck(r: string[]): { field: string; detail: string } | undefined {
  return schemaCheckAt(r.map((v) => [v]), 0);
}

/**
 * The record schema on row i of the columns. The object is filled property by property with constant names
 * (cheaper per row than stores under computed keys); ajv validates it as it would any row object.
 */
function schemaCheckAt(c: string[][], i: number): { field: string; detail: string } | undefined {
  const o = (rowObject ??= Object.fromEntries(INPUT_COLUMNS.map((k) => [k, ''])));
  o.record_id = c[0]![i]!; o.form_type = c[1]![i]!; o.registration_date = c[2]![i]!; o.move_date = c[3]![i]!;
  o.person_id = c[4]![i]!; o.citizenship = c[5]![i]!; o.sex = c[6]![i]!; o.birth_date = c[7]![i]!;
  o.origin_country = c[8]![i]!; o.from_settlement = c[9]![i]!; o.from_municipality = c[10]![i]!; o.destination_country = c[11]![i]!;
  o.to_settlement = c[12]![i]!; o.to_municipality = c[13]![i]!; o.registering_office = c[14]![i]!; o.nationality = c[15]![i]!;
  o.economic_activity = c[16]![i]!; o.occupation = c[17]![i]!;
  const v = recordValidators().row;
  if (v(o)) return undefined;
  const e = v.errors![0]!;
  const field = e.instancePath.replace(/^\//, '') || String((e.params as { missingProperty?: string }).missingProperty ?? '');
  return { field, detail: `${field} ${e.message ?? 'invalid'}` };
}

/** The input columns that are not pooled, as unpooledCheckAt fills them by name (checked when it first runs). */
const UNPOOLED = ['record_id', 'form_type', 'person_id', 'sex', 'birth_date', 'origin_country', 'destination_country', 'economic_activity', 'occupation'];
let unpooledObject: Record<string, string> | undefined;
/** Whether row i passes the record schema on its columns that are not pooled (see recordUnpooledSchema). */
function unpooledCheckAt(v: ValidateFunction, c: string[][], i: number): boolean {
  if (!unpooledObject) {
    const cols = INPUT_COLUMNS.filter((k) => !POOLED.has(k));
    if (cols.join() !== UNPOOLED.join()) throw new Error(`internal: unpooledCheckAt fills ${UNPOOLED.join()}, the columns not pooled are ${cols.join()}`);
    unpooledObject = Object.fromEntries(cols.map((k) => [k, '']));
  }
  const o = unpooledObject;
  o.record_id = c[0]![i]!; o.form_type = c[1]![i]!; o.person_id = c[4]![i]!; o.sex = c[6]![i]!; o.birth_date = c[7]![i]!;
  o.origin_country = c[8]![i]!; o.destination_country = c[11]![i]!; o.economic_activity = c[16]![i]!; o.occupation = c[17]![i]!;
  return v(o) as boolean;
}

/** String(line), kept for the next extracts: every extract has lines 2, 3, … (fewer strings for the garbage collector). */
const LINES: string[] = [];
function lineString(line: number): string {
  if (line >= 1_000_000) return String(line);
  return (LINES[line] ??= String(line));
}

/**
 * Rows → columns of accepted forms (pseudonymised), with schema failures quarantined. The clear JMBG is
 * read here and nowhere else. The forms' columns are p.cols themselves (without the failed rows): p.cols and
 * p.lines are not to be read afterwards. spans (p.spans likewise taken over) locates each form's row in the
 * extract text, for contentDigests; it keeps the text alive, so it is not to outlive the ingest.
 */
// toForms' loops over the rows are functions of their own: inside toForms (called once per extract), a loop made V8
// compile the whole of toForms on the stack again each time one of its cold parts met a new shape.

/**
 * The rows that pass the record schema, in order; the others are quarantined. Rows whose pooled values passed when
 * parsed (all but p.pooledFails) are checked on their other columns only; any row that fails that, or has a pooled
 * value that failed, is checked whole, for the error it reports.
 */
function checkRows(p: ParsedExtract, quarantine: QuarantineRow[]): number[] {
  const rows = p.lines.length;
  const ok: number[] = new Array(rows); // written by index, cut to length after (no growing by push)
  let nOk = 0;
  const un = p.pooledFails ? recordValidators().pooled?.unpooled : undefined;
  const fails = p.pooledFails ?? [];
  let nextFail = 0;
  for (let i = 0; i < rows; i++) {
    let pooledOk = false;
    if (un) {
      pooledOk = fails[nextFail] !== i;
      if (!pooledOk) nextFail++;
    }
    const bad = pooledOk && unpooledCheckAt(un!, p.cols, i) ? undefined : schemaCheckAt(p.cols, i);
    if (bad) {
      const reason = bad.field === 'registration_date' ? 'unreadable_date' : 'schema';
      const value = p.cols[INPUT_COLUMNS.indexOf(bad.field as never)]?.[i];
      // withheld before being escaped or cut (see withholdJmbg); a record id keeps its letter-and-digits form
      const shown = value === undefined ? '' : (bad.field === 'record_id' ? withholdJmbgInId(value) : withholdJmbg(value)).slice(0, 50);
      quarantine.push({ file: p.file, line: p.lines[i]!, record_id: withholdJmbgInId(p.cols[0]![i]!).slice(0, 40), field: bad.field, reason, detail: bad.field === 'person_id' ? 'person_id is not 13 digits' : `${withholdJmbg(bad.detail)} (value: ${JSON.stringify(shown)})` });
      continue;
    }
    ok[nOk++] = i;
  }
  ok.length = nOk;
  return ok;
}

/** The forms' spans without the rows that failed, squeezed out in place (ok[j] ≥ j). */
function squeezeSpans(spans: Spans, ok: readonly number[]): void {
  const n = ok.length;
  for (let j = 0; j < n; j++) { spans.start[j] = spans.start[ok[j]!]!; spans.end[j] = spans.end[ok[j]!]!; }
  spans.start = spans.start.subarray(0, n);
  spans.end = spans.end.subarray(0, n);
}

/**
 * The columns made from the JMBG (pseudonym, validity, sex and birth date it encodes) and the line numbers, of the
 * rows that passed. Most persons have two forms in an extract, a registration and the departure it implies, one
 * after the other (96 % of the repeated JMBGs of the test history are in the previous form): a form with the JMBG
 * of the previous one copies its decoded columns and pseudonym, any other is decoded and pseudonymised. This saves
 * ~45 % of the HMACs with one string comparison a form; a Map of every JMBG of the extract saved ~2 % more of them
 * but cost more in lookups than they did.
 */
function jmbgColumns(jmbgs: readonly string[], bdate: readonly string[], lines: readonly number[], ok: readonly number[], pseudo: Pseudonymiser): { pid: string[]; valid: string[]; jsex: string[]; jbirth: string[]; line: string[] } {
  const n = ok.length;
  const pid: string[] = new Array(n), valid: string[] = new Array(n), jsex: string[] = new Array(n), jbirth: string[] = new Array(n), line: string[] = new Array(n);
  const out = { pid, valid, jsex, jbirth, line }; // (before the loop: see LOOP_TAIL in pipeline/memo.ts)
  for (let i = 0; i < n; i++) {
    const jmbg = jmbgs[i]!;
    if (i > 0 && jmbg === jmbgs[i - 1]) {
      pid[i] = pid[i - 1]!; valid[i] = valid[i - 1]!; jsex[i] = jsex[i - 1]!;
      jbirth[i] = jbirth[i - 1] === bdate[i] ? bdate[i]! : jbirth[i - 1]!; // jbirth[i - 1] is the decoded birth date (or '')
    } else if (validWithBirthDate(jmbg, bdate[i]!)) {
      // a valid JMBG that encodes the stated birth date (nearly every form): decodeJmbg's answer, without the date
      // string and the object it would build
      pid[i] = pseudo.of(jmbg);
      valid[i] = '1';
      jsex[i] = jmbgSex(jmbg);
      jbirth[i] = bdate[i]!;
    } else {
      const j = decodeJmbg(jmbg);
      pid[i] = pseudo.of(jmbg);
      valid[i] = jmbg ? (j.valid ? '1' : '0') : '';
      jsex[i] = j.sex;
      jbirth[i] = j.birthDate === bdate[i] ? bdate[i]! : j.birthDate; // usually the stated birth date: the same string
    }
    line[i] = lineString(lines[ok[i]!]!);
  }
  return out;
}

export function toForms(p: ParsedExtract, fileMonth: string, pseudo: Pseudonymiser): { forms: Columns; quarantine: QuarantineRow[]; spans?: Spans } {
  const quarantine = [...p.quarantine];
  const rows = p.lines.length;
  // 1. the record schema on every row; the rows that pass, in order
  const ok = checkRows(p, quarantine);
  // 2. columns: the parsed ones themselves when every row passed (the usual case), else the rows that passed.
  // The JMBG is read here, decoded and pseudonymised, and dropped.
  // The parsed columns are taken over: the rows that failed are squeezed out in place (ok[j] ≥ j), not copied
  // (each column of 21 000 strings is a V8 large object, freshly mmapped and page-faulted).
  const n = ok.length;
  const col = (k: number): string[] => squeeze(p.cols[k]!, ok); // (called 16 times, not per row: a closure is fine here)
  const fill = (v: string): string[] => new Array<string>(n).fill(v);
  // the forms' spans: p.spans without the rows that failed, also squeezed out in place
  const spans = p.spans;
  if (spans && n !== rows) squeezeSpans(spans, ok);
  const jmbgs = col(4), bdate = col(7);
  const { pid, valid, jsex, jbirth, line } = jmbgColumns(jmbgs, bdate, p.lines, ok, pseudo);
  // the columns in the order of FORM_COLUMNS (the forms partitions are written in that order)
  const forms: Columns = {
    file: fill(p.file), line, record_id: col(0), form_type: col(1), registration_date: col(2), move_date: col(3),
    pid, jmbg_valid: valid, jmbg_sex: jsex, jmbg_birth: jbirth, citizenship: col(5), sex: col(6), birth_date: bdate,
    origin_country: col(8), from_settlement: col(9), from_municipality: col(10), destination_country: col(11),
    to_settlement: col(12), to_municipality: col(13), registering_office: col(14), nationality: col(15),
    economic_activity: col(16), occupation: col(17), file_month: fill(fileMonth),
  } satisfies Record<(typeof FORM_COLUMNS)[number], string[]>;
  return { forms, quarantine, spans };
}

/**
 * The rows `ok` (increasing, so ok[j] ≥ j: no row is overwritten before it is read) of a column nobody else reads
 * any more, squeezed out in place; c itself when every row is kept. A column of 21 000 strings is a V8 "large
 * object", mmapped and page-faulted afresh: not allocating a copy saves system time as well as the copying.
 */
export function squeeze(c: string[], ok: number[]): string[] {
  const n = ok.length;
  if (n === c.length) return c;
  for (let j = 0; j < n; j++) c[j] = c[ok[j]!]!;
  c.length = n;
  return c;
}

/** Content of a form for duplicate detection: every input field (the JMBG as its pseudonym). */
export const CONTENT_COLUMNS = FORM_COLUMNS.filter((c) => !['file', 'line', 'jmbg_valid', 'jmbg_sex', 'jmbg_birth', 'file_month'].includes(c));
/** The content of form i as the record index hashes it: each CONTENT_COLUMNS value followed by U+001F. */
export function contentKey(cols: Columns, i: number): string {
  return new ContentKeys(cols).of(i);
}

/**
 * contentKey(cols, i) for many forms of the same columns (`of(i)`): the columns are looked up once and each key is one
 * join (one flat string; `+=` builds a tree of 36 pieces that hashing must flatten first).
 */
export class ContentKeys {
  private readonly content: string[][] = [];
  private readonly parts: string[] = new Array<string>(CONTENT_COLUMNS.length + 1).fill(''); // the last one stays '': the key ends in the separator
  // (a class, not a closure returned per call: V8 compiles a closure made afresh on each call afresh too)
  constructor(cols: Columns) {
    for (const c of CONTENT_COLUMNS) this.content.push(cols[c]!);
  }
  of(i: number): string {
    const content = this.content, parts = this.parts;
    for (let k = 0; k < content.length; k++) parts[k] = content[k]![i]!;
    return parts.join('\u001f');
  }
}

/**
 * digest(UTF-8 bytes of contentKey(cols, i)) for every form: the record index's content hashes, computed for
 * every form of every extract. The usual form is all ASCII: its key is written byte by byte into one reused
 * buffer and digested from there, ~2 ms an extract less than joining a 19-piece string per form (V8's join
 * costs ~0.6 µs) for the digest to encode again. With the forms' spans (toForms), the key is copied from the
 * row's line of the extract text, commas turned into U+001F and the JMBG field into the pseudonym: the very
 * same bytes, since the columns were sliced from there, but read in file order instead of from 18 strings
 * spread over the heap (~5 ms an extract less in a rebuild, whose heap is large). A form with any character
 * ≥ U+0080 (UTF-8 differs from the char codes; lone surrogates) or a key longer than the buffer is digested
 * from contentKey itself, so the bytes digested are always those of the key's UTF-8 (tests check both paths).
 * digest must consume its argument at once (crypto.hash does): the buffer is overwritten for the next form.
 */
export function contentDigests(cols: Columns, digest: (content: string | Uint8Array) => string, spans?: Spans): string[] {
  const content = packedMap(CONTENT_COLUMNS, (c) => cols[c]!);
  const key = new ContentKeys(cols);
  const pids = cols.pid!;
  const n = content[0]!.length;
  const bytes = Buffer.alloc(1024); // a form that passed the record schema needs ~110–250 bytes
  const views: Buffer[] = []; // bytes.subarray(0, length) by length: no view allocated per form
  const out = new Array<string>(n);
  const PERSON_ID = INPUT_COLUMNS.indexOf('person_id');
  rows: for (let i = 0; i < n; i++) {
    let o = 0, high = 0;
    if (spans) {
      const t = spans.text, a = spans.start[i]!, e = spans.end[i]!, pid = pids[i]!;
      if (e - a + pid.length + 1 >= bytes.length) { out[i] = digest(key.of(i)); continue; }
      let field = 0;
      for (let q = a; q < e; q++) {
        const c = t.charCodeAt(q);
        if (c === 44) { // a comma: the end of a field
          if (field++ === PERSON_ID) for (let r = 0; r < pid.length; r++) { const x = pid.charCodeAt(r); high |= x; bytes[o++] = x; }
          bytes[o++] = 0x1f;
        } else if (field !== PERSON_ID) { high |= c; bytes[o++] = c; }
      }
      bytes[o++] = 0x1f;
    } else {
      for (let k = 0; k < content.length; k++) {
        const s = content[k]![i]!;
        if (o + s.length >= bytes.length) { out[i] = digest(key.of(i)); continue rows; }
        for (let q = 0; q < s.length; q++) { const c = s.charCodeAt(q); high |= c; bytes[o++] = c; }
        bytes[o++] = 0x1f;
      }
    }
    out[i] = high < 0x80 ? digest((views[o] ??= bytes.subarray(0, o))) : digest(key.of(i));
  }
  return out;
}

export function readExtract(file: string, encoding: 'utf-8' | 'windows-1250' = 'utf-8'): { text: string; bytes: Buffer } {
  const bytes = fs.readFileSync(file);
  return { text: decodeExtract(bytes, file, encoding), bytes };
}
