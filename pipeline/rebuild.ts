/**
 * `migstat rebuild`: rebuild the whole history (e.g. 1991–2025, ~10 million forms) from archived extracts
 * into a fresh store, on every core, with results byte-identical to running `migstat month` + `migstat close`
 * file by file in month order, then `migstat year` for each complete year.
 *
 * Months are independent except for one thing: the duplicate check of an extract looks up the record index
 * of the 12 months before it. So each worker thread takes one extract at a time and
 *   ingests it (parse, schema, pseudonym)             ── in parallel with the other workers
 *   asks the main thread for the prior index entries  ── the main thread answers in extract order
 *   delivers it and hands back its own index entries  ── the only sequential step (tens of ms)
 *   builds its month (rules, linkage, imputation, tables, atomic results dir)  ── in parallel
 * and a complete year is built by the first worker (when next free) once its months and the year before are done
 * (the year-on-year comparison reads the previous year).
 *
 * The new store is written beside --data in a staging directory and moved into place only when everything
 * succeeded: a failed or killed rebuild never leaves a half store under --data.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as v8 from 'node:v8';
import { Worker } from 'node:worker_threads';
import { RunLog, type StageEvent } from './log';
import { Store, withLockAsync } from './store';
import { addMonths, isMonth, monthsOfYear, RESEND_WINDOW_MONTHS } from './contracts';
import { RecordIndex, type IndexEntries } from './record-index';
import { fileMonthOf } from '../stages/ingest';
import { loadPopulation } from '../stages/population';
import { loadClassification } from '../stages/territory';

export interface RebuildOptions {
  data: string;
  inputDir: string;
  from?: string;
  to?: string;
  workers?: number;
  /** build the annual results of every complete year (default true) */
  years?: boolean;
  settlements?: string;
  /** population file for the rates of the annual results (migstat year --population) */
  population?: string;
  /** show a progress bar (default: when stderr is a terminal) */
  progress?: boolean;
  /** the extracts' encoding: utf-8 (default), windows-1250, or windows-1250:YYYY-MM (up to that month; UTF-8 after) */
  encoding?: string;
  /**
   * months without an extract between the first and the last are refused unless allowed: each then counts as
   * closed when the next extract arrives (its late forms are carried forward), where a cadence leaves it open
   */
  allowMissingMonths?: boolean;
  /** take extracts whose forms are mostly of other months (migstat month --allow-other-months) */
  allowOtherMonths?: boolean;
  say?: (msg: string) => void;
}
export interface RebuildResult { units: number; months: number; years: number[]; forms: number; events: number; unchanged: number; seconds: number; workers: number; peakRssMb: number }

/** Messages between the main thread and the workers (rebuild-worker.ts). */
export type ToWorker =
  | { type: 'init'; store: string; settlements?: string; population?: string; allowOtherMonths?: boolean }
  | { type: 'unit'; k: number; file: string; fileMonth: string; encoding: Encoding }
  /** prior: the record-index lines (id TAB month TAB hash) of the extract's ids, newline-joined (one string clones cheaply) */
  | { type: 'prior'; k: number; skip: boolean; seq: number; build: boolean; prior: string }
  | { type: 'year'; year: number };
export type FromWorker =
  | { type: 'log'; e: StageEvent; level: 'info' | 'warn' | 'error' }
  /** ids: idHash of each of the extract's record ids; index: its record-index lines, each ending in a newline (Delivered.idsText) */
  | { type: 'ingested'; k: number; digest: string; ids: Int32Array; forms: number }
  /** entries: indexEntries(index), computed by the worker */
  | { type: 'delivered'; k: number; index: string; entries: IndexEntries; delivery: string }
  | { type: 'unit-done'; k: number; events: number; built: boolean }
  | { type: 'year-done'; year: number; events: number }
  | { type: 'error'; message: string };

/** The old generation a rebuild worker's heap starts with, in MB (see drive). */
const WORKER_INITIAL_OLD_SPACE_MB = 256;

interface Unit { k: number; file: string; name: string; fileMonth: string; lastOfMonth: boolean }
type Encoding = 'utf-8' | 'windows-1250';

/**
 * The encoding of each extract from --encoding: utf-8, windows-1250, or windows-1250:YYYY-MM (the extracts of that
 * month and before in Windows-1250, the later ones in UTF-8: an archive whose older files predate UTF-8).
 */
export function encodingOf(spec = 'utf-8'): (fileMonth: string) => Encoding {
  if (spec === 'utf-8' || spec === 'windows-1250') return () => spec;
  const m = /^windows-1250:(\d{4}-(?:0[1-9]|1[0-2]))$/.exec(spec);
  if (!m) throw new Error(`--encoding must be utf-8, windows-1250 or windows-1250:YYYY-MM (up to that month), not ${spec}`);
  const until = m[1]!;
  return (fileMonth) => (fileMonth <= until ? 'windows-1250' : 'utf-8');
}

/** The months from a to b (YYYY-MM, inclusive) that no extract is for. */
export function missingMonths(units: { fileMonth: string }[]): string[] {
  const have = new Set(units.map((u) => u.fileMonth));
  const out: string[] = [];
  if (!units.length) return out;
  for (let m = units[0]!.fileMonth; m < units[units.length - 1]!.fileMonth; m = addMonths(m, 1)) if (!have.has(m)) out.push(m);
  return out;
}

export function listExtracts(inputDir: string, from?: string, to?: string): Unit[] {
  if (!fs.existsSync(inputDir)) throw new Error(`input directory ${inputDir} does not exist`);
  const named = fs.readdirSync(inputDir).filter((f) => fileMonthOf(f) !== undefined);
  // as migstat month refuses it: moi_2010_13.csv names no month
  for (const f of named) if (!isMonth(fileMonthOf(f)!)) throw new Error(`${f}: cannot tell the month from the file name (moi_YYYY_MM.csv, month 01–12)`);
  const files = named
    .map((f) => ({ file: path.join(inputDir, f), name: f, fileMonth: fileMonthOf(f)! }))
    .filter((u) => (!from || u.fileMonth >= from) && (!to || u.fileMonth <= to))
    .sort((a, b) => (a.fileMonth < b.fileMonth ? -1 : a.fileMonth > b.fileMonth ? 1 : a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  if (!files.length) throw new Error(`no extracts moi_YYYY_MM.csv in ${inputDir}${from || to ? ` between ${from ?? 'the start'} and ${to ?? 'the end'}` : ''}`);
  return files.map((u, k) => ({ ...u, k, lastOfMonth: files[k + 1]?.fileMonth !== u.fileMonth }));
}

/** What a rebuild would do, after every check it makes before it writes anything (`migstat rebuild --dry-run` prints it). */
export interface RebuildPlan {
  units: Unit[];
  /** the months with an extract, in order */
  months: string[];
  /** months between the first and the last without an extract (allowed only with allowMissingMonths) */
  missing: string[];
  /** the years whose twelve months all have an extract: their annual results are built (unless years is false) */
  years: number[];
  workers: number;
  encoding: (fileMonth: string) => Encoding;
}

export function planRebuild(o: RebuildOptions): RebuildPlan {
  const target = path.resolve(o.data);
  if (fs.existsSync(target) && fs.readdirSync(target).some((f) => f !== '.lock')) throw new Error(`rebuild writes a new store: ${o.data} must not exist or be empty (rebuild into a new directory and swap it in when it has been checked)`);
  const units = listExtracts(o.inputDir, o.from, o.to);
  const encoding = encodingOf(o.encoding);
  const missing = missingMonths(units);
  if (missing.length && !o.allowMissingMonths) throw new Error(`no extract for ${missing.length > 6 ? `${missing.slice(0, 6).join(', ')} and ${missing.length - 6} more months` : missing.join(', ')} between ${units[0]!.fileMonth} and ${units[units.length - 1]!.fileMonth}: the monthly cadence would have left such a month open and built it from late forms, which a rebuild cannot replay; add the missing extracts, or give --allow-missing-months to count each such month as closed when the next extract arrives (its late forms are then carried forward)`);
  const months = [...new Set(units.map((u) => u.fileMonth))];
  const have = new Set(months);
  const years = o.years === false ? [] : [...new Set(months.map((m) => +m.slice(0, 4)))].filter((y) => monthsOfYear(y).every((m) => have.has(m))).sort();
  // the settlements list and the population file now, not when the first month or year needs them (after hours of work)
  const C = loadClassification(o.settlements);
  if (o.population) for (const y of years) loadPopulation(o.population, C, y);
  return { units, months, missing, years, workers: Math.max(1, Math.min(o.workers ?? os.availableParallelism(), units.length)), encoding };
}

export async function runRebuild(o: RebuildOptions): Promise<RebuildResult> {
  const t0 = Date.now();
  const target = path.resolve(o.data);
  const plan = planRebuild(o);
  const { units, missing, encoding } = plan;
  const created = !fs.existsSync(target);
  fs.mkdirSync(target, { recursive: true });
  // a failed rebuild leaves --data as it found it: a directory it made is removed again if still empty
  const undo = (e: unknown): never => {
    if (created) try { fs.rmdirSync(target); } catch { /* not empty (another run's): kept */ }
    throw e;
  };
  return withLockAsync(new Store(target), 'rebuild', async () => {
    // again, now that the lock keeps other runs out
    if (fs.readdirSync(target).some((f) => f !== '.lock')) throw new Error(`rebuild writes a new store: ${o.data} must not exist or be empty (another run wrote to it meanwhile)`);
    const staging = path.join(path.dirname(target), `.${path.basename(target)}.staging-${process.pid}`);
    // a killed rebuild leaves its staging directory: we hold the lock, so any other one is dead
    for (const f of fs.readdirSync(path.dirname(target))) if (f.startsWith(`.${path.basename(target)}.staging-`)) fs.rmSync(path.join(path.dirname(target), f), { recursive: true, force: true });
    fs.mkdirSync(staging, { recursive: true });
    const store = new Store(staging);
    const log = new RunLog(store.logFile());
    const nWorkers = plan.workers;
    log.log({ stage: 'rebuild', event: 'start', input_dir: o.inputDir, extracts: units.length, from: units[0]!.fileMonth, to: units[units.length - 1]!.fileMonth, workers: nWorkers, encoding: o.encoding ?? 'utf-8' });
    if (missing.length) log.log({ stage: 'rebuild', event: 'missing_months', months: missing, action: 'counted as closed when the next extract arrives: their late forms are carried forward (--allow-missing-months)' }, 'warn');
    let built = false;
    try {
      const r = await drive(units, plan.years, store, log, nWorkers, o, encoding);
      built = true;
      // the workers wrote without a fsync per file: make the whole new store durable before it goes live
      const tSync = Date.now();
      const synced = spawnSync('sync', ['-f', staging]).status === 0 || spawnSync('sync').status === 0;
      const syncSeconds = (Date.now() - tSync) / 1000;
      if (!synced) throw new Error('could not sync the file system before moving the rebuilt store into place');
      // the lock goes, and the new store takes the place of the empty directory in one rename (which fails, and
      // leaves the complete new store in its staging directory, if another run took the directory meanwhile)
      fs.rmSync(path.join(target, '.lock'), { recursive: true, force: true });
      try {
        fs.renameSync(staging, target);
      } catch (e) {
        throw new Error(`the rebuilt store is complete in ${staging} but could not replace ${o.data} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}: did another run write to it?); check ${o.data} and move the rebuilt store into place yourself`);
      }
      const res: RebuildResult = { ...r, seconds: (Date.now() - t0) / 1000, workers: nWorkers, peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024) };
      new RunLog(new Store(target).logFile(), log.runId).log({ stage: 'rebuild', event: 'done', extracts: res.units, unchanged: res.unchanged, months: res.months, years: res.years, forms: res.forms, events: res.events, seconds: res.seconds, sync_seconds: syncSeconds, peak_rss_mb: res.peakRssMb });
      return res;
    } catch (e) {
      if (!built) fs.rmSync(staging, { recursive: true, force: true });
      throw e;
    }
  }).catch(undo);
}

async function drive(units: Unit[], plannedYears: number[], store: Store, log: RunLog, nWorkers: number, o: RebuildOptions, encoding: (fileMonth: string) => Encoding): Promise<Omit<RebuildResult, 'seconds' | 'workers' | 'peakRssMb'>> {
  const workerFile = path.join(__dirname, 'rebuild-worker.js');
  // The workers' heaps start with 256 MB of old generation (V8 reads the flag when it creates an isolate, so it
  // applies to the workers made below, not to this thread). A worker's live heap is ~20 MB, but each extract passes
  // ~80 MB of columns and strings through the old generation: from V8's default start, the old generation was
  // marked, compacted and given back to the system after every extract. Measured on 1991–2025: 89.5 s (default),
  // 85.3 s (128 MB), 77.3 s (256 MB, peak RSS 1.0 GB), 76.5 s (384 MB, 1.13 GB).
  v8.setFlagsFromString(`--initial-old-space-size=${WORKER_INITIAL_OLD_SPACE_MB}`);
  // and a gc() function (the contexts made from now on, i.e. the workers', have one): a worker collects its young generation
  // after each extract and each year, when what they allocated is garbage (rebuild-worker.ts)
  v8.setFlagsFromString('--expose-gc');
  if (!fs.existsSync(workerFile)) throw new Error(`internal: ${workerFile} is missing (run npm run build)`);
  let completeYears = [...plannedYears];
  const bar = progressBar(o.progress ?? Boolean(process.stderr.isTTY), units.length + completeYears.length);

  // the record index of the last 12 months, as loadPriorIndex reads it from state/ids (see record-index.ts)
  const index = new RecordIndex();
  const digests = new Map<string, { file: string; month: string; delivery: string }>();
  const inFlight = new Map<number, string>(); // extract → its digest, between its index request and its delivery
  const deliveredMonths = new Set<string>();
  const builtMonths = new Set<string>();
  const yearsDone = new Set<number>();
  const unitDone = new Uint8Array(units.length);
  let nextUnit = 0, nextDeliver = 0, seq = 0, forms = 0, events = 0, unchanged = 0, done = 0;
  const pendingIds = new Map<number, { w: Worker; digest: string; ids: Int32Array }>();
  const busy = new Set<Worker>();
  const yearQueue: number[] = [];
  const yearDispatched = new Set<number>();
  let first: string | undefined;

  return new Promise((resolve, reject) => {
    const workers: Worker[] = [];
    let failed = false;
    const fail = (e: Error): void => {
      if (failed) return;
      failed = true;
      bar?.stop();
      // rejected once every worker has stopped: none writes into the staging directory the caller then removes
      void Promise.allSettled(workers.map((w) => w.terminate())).then(() => reject(e));
    };
    const finishIfDone = (): void => {
      if (done < units.length || yearsDone.size < completeYears.length || failed) return;
      bar?.stop();
      for (const w of workers) void w.terminate();
      // the store's state, as the month-by-month cadence leaves it: every extract ingested, every month closed
      fs.mkdirSync(store.p('state'), { recursive: true });
      fs.writeFileSync(store.p('state', 'ingested.json'), JSON.stringify(Object.fromEntries(digests), null, 2) + '\n');
      if (first) fs.writeFileSync(store.p('state', 'first-month.json'), JSON.stringify({ month: first }, null, 2) + '\n');
      store.close([...builtMonths].sort(), 'rebuild');
      resolve({ units: units.length, months: builtMonths.size, years: completeYears, forms, events, unchanged });
    };
    const yearReady = (y: number): boolean => monthsOfYear(y).every((m) => builtMonths.has(m)) && (!completeYears.includes(y - 1) || yearsDone.has(y - 1));
    const dispatch = (w: Worker): void => {
      if (failed) return;
      // The annual builds go to the first worker only. Each worker thread is a V8 isolate that compiles (JIT) the code
      // it runs: the year's code (SDMX, exceljs, vega) is then compiled in one of them instead of both, and the other
      // one runs month code alone, whose optimised code the year's objects no longer make V8 throw away and redo.
      // Over 1991–2025: 3 180 optimising compiles instead of 3 666 (21.4 s of compile jobs instead of 24.2), and
      // 1.6–5.2 s less CPU in four paired runs (both versions run at once, so that both see the same machine).
      const y = w === workers[0] ? yearQueue.find((x) => !yearDispatched.has(x) && yearReady(x)) : undefined;
      if (y !== undefined) { yearDispatched.add(y); busy.add(w); w.postMessage({ type: 'year', year: y } satisfies ToWorker); return; }
      if (nextUnit < units.length) {
        const u = units[nextUnit++]!;
        busy.add(w);
        w.postMessage({ type: 'unit', k: u.k, file: u.file, fileMonth: u.fileMonth, encoding: encoding(u.fileMonth) } satisfies ToWorker);
        return;
      }
      busy.delete(w);
    };
    const kickIdle = (): void => { for (const w of workers) if (!busy.has(w)) dispatch(w); };
    // answer the prior-index requests strictly in extract order
    const answer = (): void => {
      for (;;) {
        const p = pendingIds.get(nextDeliver);
        if (!p) return;
        // a worker posts its index lines before it writes its forms (writing is off the ordered path): an extract
        // whose month an earlier extract also delivered to waits until that one is written (its month build lists them)
        for (let j = nextDeliver - 1; j >= 0 && units[j]!.fileMonth === units[nextDeliver]!.fileMonth; j--) if (!unitDone[j]) return;
        pendingIds.delete(nextDeliver);
        const u = units[nextDeliver]!;
        if (digests.has(p.digest)) {
          unchanged++;
          log.log({ stage: 'ingest', event: 'unchanged', file: u.name, sha256: p.digest, reason: `already ingested as ${digests.get(p.digest)!.delivery}` });
          // the month is still built by its last extract (as in the cadence, where the earlier one built it)
          p.w.postMessage({ type: 'prior', k: u.k, skip: true, seq: 0, build: u.lastOfMonth && deliveredMonths.has(u.fileMonth), prior: '' } satisfies ToWorker);
          nextDeliver++;
          continue;
        }
        const from = addMonths(u.fileMonth, -RESEND_WINDOW_MONTHS);
        const prior = index.lookup(p.ids, from);
        seq++;
        first ??= u.fileMonth;
        inFlight.set(u.k, p.digest);
        p.w.postMessage({ type: 'prior', k: u.k, skip: false, seq, build: u.lastOfMonth, prior } satisfies ToWorker);
        // the entries of months the window left are forgotten after the answer, off the ordered path (lookup skips them)
        index.dropBefore(from);
        return; // the next extract waits for this one's index entries
      }
    };
    const onMessage = (w: Worker, m: FromWorker): void => {
      try {
        switch (m.type) {
          case 'log': log.log(m.e, m.level); break;
          case 'ingested': pendingIds.set(m.k, { w, digest: m.digest, ids: m.ids }); forms += m.forms; answer(); break;
          case 'delivered': {
            const u = units[m.k]!;
            // the index text as written to state/ids (each line ends in \n): kept whole, each line located by number
            index.add(u.fileMonth, m.index, m.entries);
            digests.set(inFlight.get(m.k)!, { file: u.name, month: u.fileMonth, delivery: m.delivery });
            inFlight.delete(m.k);
            deliveredMonths.add(u.fileMonth);
            nextDeliver++;
            answer();
            break;
          }
          case 'unit-done': {
            const u = units[m.k]!;
            events += m.events;
            const y = +u.fileMonth.slice(0, 4);
            if (u.lastOfMonth && m.built) builtMonths.add(u.fileMonth);
            else if (u.lastOfMonth) completeYears = completeYears.filter((x) => x !== y); // nothing delivered for that month
            if (completeYears.includes(y) && !yearQueue.includes(y) && monthsOfYear(y).every((x) => builtMonths.has(x))) yearQueue.push(y);
            done++;
            unitDone[m.k] = 1;
            answer(); // the next extract of the same month may have been waiting for this one's forms
            bar?.increment(1, { what: u.fileMonth });
            dispatch(w);
            kickIdle();
            finishIfDone();
            break;
          }
          case 'year-done':
            yearsDone.add(m.year);
            bar?.increment(1, { what: String(m.year) });
            dispatch(w);
            kickIdle();
            finishIfDone();
            break;
          case 'error': fail(new Error(m.message)); break;
        }
      } catch (e) {
        fail(e as Error);
      }
    };
    try {
      for (let i = 0; i < nWorkers; i++) startWorker();
    } catch (e) {
      fail(e as Error); // (the workers already started are stopped)
      return;
    }
    kickIdle();
    function startWorker(): void {
      const w = new Worker(workerFile, { resourceLimits: { maxYoungGenerationSizeMb: 192, maxOldGenerationSizeMb: 384 } }); // a bounded heap per worker keeps the rebuild's memory flat over 35 years (a year build needs < 250 MB of old space)
      workers.push(w);
      w.on('message', (m: FromWorker) => onMessage(w, m));
      w.on('error', (e) => fail(e));
      w.on('exit', (c) => { if (c !== 0 && !failed && (done < units.length || yearsDone.size < completeYears.length)) fail(new Error(`a rebuild worker stopped (exit code ${c})`)); });
      w.postMessage({ type: 'init', store: store.root, settlements: o.settlements, population: o.population, allowOtherMonths: o.allowOtherMonths } satisfies ToWorker);
    }
  });
}

/** A progress bar on a terminal (cli-progress); nothing when output goes to a file or a pipe. */
function progressBar(show: boolean, total: number): { increment(n: number, p: { what: string }): void; stop(): void } | undefined {
  if (!show) return undefined;
  const { SingleBar, Presets } = require('cli-progress') as typeof import('cli-progress');
  const bar = new SingleBar({ format: 'rebuild [{bar}] {value}/{total} extracts+years | {what} | {duration_formatted} elapsed, ETA {eta_formatted}', stream: process.stderr, hideCursor: true }, Presets.shades_classic);
  bar.start(total, 0, { what: '' });
  return bar;
}
