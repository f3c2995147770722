/**
 * `migstat year`: the annual tables of a reference year = the cell-by-cell sum of its twelve monthly tables
 * (never recounted), consistency checks, year-on-year flags (ESMS 11.2), the quality report, the SDMX
 * messages and the workbook, written atomically to years/<year>/ with a manifest. With a population file
 * (stages/population.ts) also the rates per 1 000 population (tables/rates.csv, computed from the annual
 * territory table: rates are not sums of monthly rates).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { IMPUTED_HEADERS, monthsOfYear, TABLE_HEADERS, type Quality } from './contracts';
import { readCsvText, readTable, type Row } from './csv';
import { recoverDir, sha256 } from './fsutil';
import { Store, withLockAsync } from './store';
import { codeVersion, loadConfig, type Loaded } from './config';
import { tableFiles, writeResultsDir, type StageLog } from './month';
import { type Cell, checkTables, sumTables, TABLE_KEY_COLS, type Table, type Tables } from '../stages/tabulate';
import { type Classification, loadClassification, seriesOf } from '../stages/territory';
import { buildSdmxFiles } from '../stages/sdmx';
import { buildReport } from '../stages/report';
import { buildWorkbook } from '../stages/excel';
import { loadPopulation, ratesTable } from '../stages/population';

export interface YearOptions {
  data: string; year: number; provisional?: boolean; settlements?: string; log: StageLog;
  /** the caller already holds the store's lock (rebuild) */
  lockHeld?: boolean;
  /** CSV code,year,population (stages/population.ts): with it, tables/rates.csv and a rates sheet */
  population?: string;
  /**
   * the configuration, when the caller has already loaded it (a rebuild worker, once for all its months and years:
   * loading also validates and compiles every rule)
   */
  config?: Loaded;
}

function tableToRows(t: Table, header: readonly string[]): Row[] {
  return t.map((r) => {
    const row: Row = {};
    for (let i = 0; i < header.length; i++) row[header[i]!] = String(r[i]);
    return row;
  });
}

/**
 * Σ of one table over the months' files: the same table as sumTables(files.map(readTable)), without making
 * strings of the ~2 million cells. The files are scanned as bytes: each line of a later month must start with
 * the same key columns as the first month's line (a byte comparison); its numbers are parsed in place and
 * added in month order, as sumTables does. Anything unusual (one file, a different header, quotes, CR, a
 * different key or field count) goes the general way, which also gives the usual error.
 */
export function sumTableFiles(files: string[], header: readonly string[], keyCols: number): Table {
  const general = (): Table => sumTables(files.map((f) => readTable(f, header) as Table), keyCols);
  if (files.length < 2) return general();
  const bufs = files.map((f) => fs.readFileSync(f));
  const head = Buffer.from(`${header.join(',')}\n`, 'utf8');
  if (bufs.some((b) => !b.subarray(0, head.length).equals(head) || b.includes(0x22) || b.includes(0x0d))) return general();
  const nNum = header.length - keyCols;
  // each loop in a function of its own (LOOP_TAIL in pipeline/memo.ts)
  const first = firstMonth(bufs[0]!, head.length, keyCols, nNum);
  if (!first) return general();
  for (let f = 1; f < bufs.length; f++) if (addMonth(bufs[f]!, head.length, first, nNum) !== bufs[f]!.length) return general();
  return sumRows(first.keys, first.sums, nNum);
}

/** The first month: where each line's key columns end (just after their last comma), its keys and numbers; undefined if a line has another shape. */
interface FirstMonth { bytes: Buffer; lineStart: number[]; keyEnd: number[]; keys: string[][]; sums: number[] }
function firstMonth(first: Buffer, start: number, keyCols: number, nNum: number): FirstMonth | undefined {
  const out: FirstMonth = { bytes: first, lineStart: [], keyEnd: [], keys: [], sums: [] };
  const { lineStart, keyEnd, keys, sums } = out;
  for (let pos = start; pos < first.length;) {
    let k = pos, commas = 0;
    while (commas < keyCols && k < first.length && first[k] !== 10) if (first[k++] === 44) commas++;
    if (commas < keyCols) return undefined;
    lineStart.push(pos);
    keyEnd.push(k);
    keys.push(first.toString('utf8', pos, k - 1).split(','));
    const next = addNumbers(first, k, nNum, sums, sums.length, true);
    if (next < 0) return undefined;
    pos = next;
  }
  return out;
}

/**
 * Add a later month's numbers into first.sums; the position where it stopped (its length when it matched), -1 if its
 * keys are not the first month's, line by line, or a line has another shape. The key
 * columns are most of a line's bytes: compared four at a time (unaligned 32-bit reads, which the JIT turns into
 * single loads), then the rest byte by byte.
 */
function addMonth(b: Buffer, start: number, first: FirstMonth, nNum: number): number {
  const { bytes, lineStart, keyEnd, sums } = first;
  const firstView = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const view = new DataView(b.buffer, b.byteOffset, b.length);
  let pos = start;
  for (let i = 0; i < lineStart.length && pos >= 0; i++) {
    const ls = lineStart[i]!, len = keyEnd[i]! - ls;
    if (pos + len > b.length) return -1;
    let j = 0;
    for (; j + 4 <= len; j += 4) if (view.getInt32(pos + j) !== firstView.getInt32(ls + j)) return -1;
    for (; j < len; j++) if (b[pos + j] !== bytes[ls + j]) return -1;
    pos = addNumbers(b, pos + len, nNum, sums, i * nNum, false);
  }
  return pos; // (-1: a line of another shape)
}

function sumRows(keys: string[][], sums: number[], nNum: number): Table {
  const rows: Table = [];
  for (let i = 0; i < keys.length; i++) {
    const row: Cell[] = keys[i]!;
    for (let c = 0; c < nNum; c++) row.push(sums[i * nNum + c]!);
    rows.push(row);
  }
  return rows;
}

/**
 * Parse the n comma-separated numbers at bytes[pos…] ending in a newline, setting (`init`) or adding them to
 * sums[at…] as `+cell` would give them; the position after the newline, or -1 if the line has another shape.
 */
function addNumbers(bytes: Buffer, pos: number, n: number, sums: number[], at: number, init: boolean): number {
  for (let k = 0; k < n; k++) {
    const start = pos;
    let neg = false, v = 0, digits = 0, plain = true;
    if (bytes[pos] === 45) { neg = true; pos++; } // '-'
    for (; pos < bytes.length; pos++) {
      const c = bytes[pos]!;
      if (c === 44 || c === 10) break; // ',' '\n'
      if (c < 48 || c > 57) plain = false;
      else { v = v * 10 + (c - 48); digits++; }
    }
    if (pos >= bytes.length || (bytes[pos] === 10) !== (k === n - 1)) return -1;
    // a plain integer of up to 15 digits is exact as a double; anything else as Number() reads it
    const x = plain && digits > 0 && digits <= 15 ? (neg ? -v : v) : +bytes.toString('utf8', start, pos);
    if (init) sums[at + k] = x;
    else sums[at + k] = sums[at + k]! + x;
    pos++;
  }
  return pos;
}

export async function runYear(opts: YearOptions): Promise<Quality> {
  const store = new Store(opts.data);
  // the whole run under the lock: the months summed are the months whose manifests the year's manifest names
  return opts.lockHeld ? yearUnderLock(opts, store) : withLockAsync(store, `year ${opts.year}`, () => yearUnderLock(opts, store));
}

async function yearUnderLock(opts: YearOptions, store: Store): Promise<Quality> {
  const L = opts.config ?? loadConfig();
  const C = loadClassification(opts.settlements);
  const y = opts.year;
  // (a rebuild, which holds the lock, commits its whole staging store at the end: nothing to check there)
  if (!opts.lockHeld) store.assertCommitted(`year ${y}`);
  const published = store.publishedOf(y);
  if (published.length) throw new Error(`year ${y} was published as ${published.join(', ')} (published/${published[0]}): published results are final (ESMS 17.2), its annual results are not built again`);
  const months = monthsOfYear(y);
  const present = months.filter((m) => fs.existsSync(path.join(store.monthDir(m), 'quality.json')));
  const missing = months.filter((m) => !present.includes(m));
  if (missing.length && !opts.provisional) throw new Error(`year ${y} is incomplete: missing months ${missing.join(', ')} (use --provisional for provisional annual tables)`);
  if (!present.length) throw new Error(`year ${y} has no processed months`);
  const t0 = Date.now();
  // a bad population file fails the run before any work
  const population = opts.population ? loadPopulation(opts.population, C, y) : undefined;
  const tables: Tables = {}, imputed: Tables = {};
  for (const [name, header] of Object.entries({ ...TABLE_HEADERS, ...IMPUTED_HEADERS })) {
    if (name === 'rates') continue; // computed from the annual counts below, never summed
    const files = present.map((m) => path.join(store.monthDir(m), 'tables', `${name}.csv`)).filter((f) => fs.existsSync(f));
    if (!files.length) continue;
    // (months built before move_type_imputed existed lack it: a sum over some months only would understate it)
    if (name === 'move_type_imputed' && files.length !== present.length) continue;
    const sum = sumTableFiles(files, header, TABLE_KEY_COLS[name as keyof typeof TABLE_KEY_COLS]);
    if (name in IMPUTED_HEADERS) imputed[name] = sum; else tables[name] = sum;
  }
  const qs = present.map((m) => JSON.parse(fs.readFileSync(path.join(store.monthDir(m), 'quality.json'), 'utf8')) as Quality);
  if (population) tables.rates = ratesTable(tables.territory!, C, y, population);
  const checks = checkTables(tables, C, y);
  const quality = sumQuality(qs, String(y), seriesOf(y), missing.length > 0, checks);
  const yoy = yoyFlags(store, y, tables.territory!, L.config.yoy, missing.length > 0, C);
  if (yoy.flags) quality.yoy_flags = yoy.flags;
  if (yoy.note) quality.yoy_note = yoy.note;
  const monthly = present.flatMap((m) => {
    const rows = readTable(path.join(store.monthDir(m), 'tables', 'territory.csv'), TABLE_HEADERS.territory);
    return rows.filter((r) => r[1] === 'region' && r[3] === 'T').map((r) => ({ month: m, region: r[2]!, immigrants: +r[4]!, emigrants: +r[5]!, net: +r[6]! }));
  });
  const files: Map<string, string | Buffer> = tableFiles(tables, imputed);
  files.set('quality.json', JSON.stringify(quality, null, 2) + '\n');
  // row objects of each table, made once: the SDMX, the report and the workbook read (never change) them
  const rowCache = new Map<string, Row[]>();
  const rows = (name: string): Row[] => {
    let r = rowCache.get(name);
    if (!r) rowCache.set(name, (r = tableToRows(tables[name]!, TABLE_HEADERS[name as keyof typeof TABLE_HEADERS])));
    return r;
  };
  const sdmx = buildSdmxFiles({
    year: y, series: seriesOf(y), classification: C, estimatedThreshold: L.config.tables.estimated_threshold, prepared: `${y + 1}-07-10T12:00:00+02:00`, provisional: missing.length > 0,
    tables: { territory: rows('territory'), age: rows('age'), move_type: rows('move_type') },
    imputed: {
      territory_imputed: tableToRows(imputed.territory_imputed!, IMPUTED_HEADERS.territory_imputed), age_imputed: tableToRows(imputed.age_imputed!, IMPUTED_HEADERS.age_imputed),
      ...(imputed.move_type_imputed ? { move_type_imputed: tableToRows(imputed.move_type_imputed, IMPUTED_HEADERS.move_type_imputed) } : {}),
    },
  });
  // as bytes: hashing, measuring and writing the 28 MB as strings would each encode them again
  for (const [f, c] of sdmx) files.set(`sdmx/${f}`, c);
  files.set('report.html', buildReport({ title: `Internal migration ${y}${missing.length ? ' (provisional)' : ''}`, period: String(y), quality, territory: rows('territory'), monthly }));
  const wb = await buildWorkbook({ year: y, series: seriesOf(y), provisional: missing.length > 0, tables: Object.fromEntries(Object.keys(tables).map((k) => [k, rows(k)])) });
  files.set('tables.xlsx', wb);
  const write = (): string => {
    for (const a of recoverDir(store.p('years'))) opts.log.log({ stage: 'recover', event: 'cleanup', action: a }, 'warn');
    return writeResultsDir(store.yearDir(y), files, {
      kind: 'year', id: String(y), code_version: codeVersion(), parameters: {
        provisional: missing.length > 0, config: L.digests, months: present,
        ...(opts.population ? { population: path.basename(opts.population), population_sha256: sha256(fs.readFileSync(opts.population)) } : {}),
      },
      inputs: present.map((m) => ({ path: `months/${m}/manifest.json`, sha256: sha256(fs.readFileSync(path.join(store.monthDir(m), 'manifest.json'))) })),
      counts: { months: present.length, events: quality.events, ...(population ? { population_municipalities: population.size } : {}) },
    }, (h) => opts.log.log({ stage: 'year', event: 'writing', year: y, manifest_path: `years/${y}/manifest.json`, manifest_sha256: h }));
  };
  const manifestSha = write();
  const failed = checks.filter((c) => !c.ok);
  opts.log.log({ stage: 'year', event: 'done', manifest_path: `years/${y}/manifest.json`, manifest_sha256: manifestSha, year: y, months: present.length, missing, provisional: missing.length > 0, events: quality.events, identity_holds: quality.identity.holds, checks_failed: failed.map((c) => c.id), yoy_flags: quality.yoy_flags?.length ?? 0, duration_ms: Date.now() - t0 }, failed.length ? 'error' : 'info');
  if (failed.length) throw new Error(`consistency checks failed for ${y}: ${failed.map((c) => `${c.id} (${c.detail})`).join('; ')}`);
  return quality;
}

function addInto(target: Record<string, number>, src: Record<string, number>): void {
  for (const [k, v] of Object.entries(src)) target[k] = (target[k] ?? 0) + v;
}
const sorted = <T>(o: Record<string, T>): Record<string, T> => Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));

export function sumQuality(qs: Quality[], period: string, series: string, provisional: boolean, checks: Quality['checks']): Quality {
  const num = (k: keyof Quality): number => qs.reduce((a, q) => a + ((q[k] as number) ?? 0), 0);
  const oos: Record<string, number> = {}, imputed: Record<string, number> = {}, delays: Record<string, number> = {}, prov: Record<string, number> = {}, rhs: Record<string, number> = {}, qr: Record<string, number> = {};
  const byMethod: Record<string, Record<string, number>> = {};
  const rules: Quality['rules'] = {};
  for (const q of qs) {
    addInto(oos, q.out_of_scope); addInto(qr, q.quarantine_reasons ?? {}); addInto(imputed, q.imputed); addInto(delays, q.delay_distribution); addInto(prov, q.provenance); addInto(rhs, q.identity.rhs);
    for (const [v, m] of Object.entries(q.imputation_by_method)) addInto((byMethod[v] ??= {}), m);
    for (const [id, r] of Object.entries(q.rules)) {
      const t = (rules[id] ??= { items: 0, passes: 0, fails: 0, na: 0, severity: r.severity, expression: r.expression });
      t.items += r.items; t.passes += r.passes; t.fails += r.fails; t.na += r.na;
      if (r.error) t.error = r.error;
    }
  }
  const lhs = num('forms_read');
  return {
    period, series, provisional, forms_read: lhs, duplicates: num('duplicates'), quarantined: num('quarantined'),
    // (months built before quarantine_reasons existed lack it: a sum over some months only would understate it)
    ...(qs.every((q) => q.quarantine_reasons) ? { quarantine_reasons: sorted(qr) } : {}), out_of_scope: sorted(oos), events: num('events'),
    delayed_events: num('delayed_events'), carried_forward: num('carried_forward'), unmatched_departures: num('unmatched_departures'), imputed: sorted(imputed), rules,
    linked_departures: num('linked_departures'), replaced_versions: num('replaced_versions'), corrections_to_closed: num('corrections_to_closed'), recoded_territory: num('recoded_territory'),
    delay_distribution: sorted(delays), imputation_by_method: sorted(byMethod), systemic: qs.flatMap((q) => q.systemic.map((s) => ({ ...s, month: q.period }))),
    identity: { holds: qs.every((q) => q.identity.holds) && lhs === Object.values(rhs).reduce((a, b) => a + b, 0), lhs, rhs }, checks, provenance: sorted(prov),
  };
}

/**
 * ESMS 11.2: territories whose immigrants or emigrants change by more than the threshold against the previous year.
 * Not compared (flags undefined, the note says why): no previous annual results, a provisional year on either side,
 * the first year of a series. Left out, and named in the note: territories new in this year and municipalities
 * whose territory a merge or split changed during it. From 0 (previous 0, current ≥ min_count and ≥ 1): a flag
 * with change_pct null (an undefined percentage).
 */
export function yoyFlags(store: Store, y: number, cur: Table, cfg: { threshold_pct: number; min_count: number }, provisional: boolean, C: Classification): { flags?: NonNullable<Quality['yoy_flags']>; note?: string } {
  if (provisional) return { note: 'not compared: a provisional year' };
  if (seriesOf(y - 1) !== seriesOf(y)) return { note: `not compared: the first year of the series ${seriesOf(y)} (not comparable with ${y - 1})` };
  const prevDir = store.yearDir(y - 1);
  const prevFile = path.join(prevDir, 'tables', 'territory.csv');
  if (!fs.existsSync(prevFile)) return { note: `not compared: no annual results of ${y - 1} in the store` };
  const prevQ = path.join(prevDir, 'quality.json');
  if (fs.existsSync(prevQ) && (JSON.parse(fs.readFileSync(prevQ, 'utf8')) as Quality).provisional === true) return { note: `not compared: the results of ${y - 1} are provisional` };
  const prev = new Map<string, Row>();
  for (const r of readCsvText(fs.readFileSync(prevFile, 'utf8'))) if (r.sex === 'T') prev.set(`${r.level}:${r.code}`, r);
  const changed = C.changedIn(y);
  const leftOut: string[] = [];
  const flags: NonNullable<Quality['yoy_flags']> = [];
  for (const r of cur) {
    if (r[3] !== 'T') continue;
    const p = prev.get(`${r[1]}:${r[2]}`);
    if (!p || (r[1] === 'municipality' && changed.has(String(r[2])))) { leftOut.push(String(r[2])); continue; }
    for (const [measure, ci] of [['immigrants', 4], ['emigrants', 5]] as const) {
      const a = Number(p[measure]), b = Number(r[ci]);
      if (Math.max(a, b) < cfg.min_count || (a === 0 && b === 0)) continue;
      if (a === 0) { flags.push({ code: String(r[2]), level: String(r[1]), measure, previous: a, current: b, change_pct: null }); continue; }
      const pct = ((b - a) / a) * 100;
      if (Math.abs(pct) > cfg.threshold_pct) flags.push({ code: String(r[2]), level: String(r[1]), measure, previous: a, current: b, change_pct: Math.round(pct * 10) / 10 });
    }
  }
  return { flags, ...(leftOut.length ? { note: `not compared (new, or their territory changed during ${y}): ${leftOut.join(', ')}` } : {}) };
}
