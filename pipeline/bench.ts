/**
 * `npm run bench`: prints the performance figures the issues ask for, measured on this machine.
 * Not a test: it prints numbers and asserts nothing. Inputs are generated (seeded) into output/bench/ and
 * reused by later runs.
 *
 *   ingest           decode + parse + schema + pseudonymise, in process: rows/s (best of 3), 30 000-form month
 *   month            `migstat month` end to end as a new process (start-up included), 30 000 forms: wall, peak RSS
 *   year cadence     the 12 months of a 150 000-event year, one process each: wall and peak RSS per month
 *   rules+imputation validation, linkage, deductive and donor imputation of that year (processMonth), in process
 *   annual           `migstat year` on that year: wall, peak RSS
 *   history          `migstat rebuild` of 1991–2025 (~10 million forms) on 2 worker threads: wall, CPU (user, system), peak RSS
 *
 * Options: --quick (no history), --history-years N (the last N years up to 2025; default 35), --workers N,
 * --prepare (only generate the inputs).
 */
import { spawnSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadConfig } from './config';
import { readJson } from './fsutil';
import type { Columns } from '../stages/ingest';
import { decodeExtract, parseExtract, toForms } from '../stages/ingest';
import { Pseudonymiser, pseudonymKey } from '../stages/jmbg';
import { processMonth } from '../stages/month';
import { loadClassification } from '../stages/territory';
import { ROOT } from './paths';

const args = process.argv.slice(2);
const opt = (name: string): string | undefined => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : undefined; };
const QUICK = args.includes('--quick');
const PREPARE = args.includes('--prepare');
const HISTORY_YEARS = +(opt('--history-years') ?? 35);
const WORKERS = +(opt('--workers') ?? Math.min(2, os.availableParallelism()));
const BENCH = path.join(ROOT, 'output', 'bench');
const MEASURE = path.join(__dirname, 'measure.js');
const CLI = path.join(ROOT, 'bin', 'migstat.js');
/** The node flags the CLI runs with, read from the first line of bin/migstat.js: the one place they are set. */
const CLI_FLAGS = ((): string[] => {
  const first = fs.readFileSync(CLI, 'utf8').split('\n')[0]!;
  const m = /^#!\/usr\/bin\/env -S node((?: --[\w-]+(?:=\S+)?)*)\s*$/.exec(first);
  if (!m) throw new Error(`bin/migstat.js: cannot read the node flags from its first line: ${first}`);
  return m[1]!.trim().split(' ').filter(Boolean);
})();

const out = (s: string): void => { process.stdout.write(s + '\n'); };
const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

/** Run the CLI in a new process through measure.js; return wall time and the child's peak RSS. */
function measured(argv: string[]): { wall: number; rssMb: number; userS: number; systemS: number; stdout: string } {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, [...CLI_FLAGS, MEASURE, ...argv], { encoding: 'utf8', maxBuffer: 1 << 26 });
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const m = /MIGSTAT_MEASURE (\{.*\})/.exec(r.stderr ?? '');
  if (r.status !== 0 || !m) throw new Error(`migstat ${argv.join(' ')} failed (${r.status}): ${(r.stderr ?? '').trim().split('\n').slice(-3).join(' | ')}`);
  const u = JSON.parse(m[1]!) as { maxRssMb: number; userS: number; systemS: number };
  return { wall, rssMb: u.maxRssMb, userS: u.userS, systemS: u.systemS, stdout: r.stdout };
}

function generated(name: string, year: number, records: number, months?: number[]): string {
  const dir = path.join(BENCH, name);
  const marker = path.join(dir, '.complete');
  if (!fs.existsSync(marker)) {
    fs.rmSync(dir, { recursive: true, force: true });
    const { generate } = require('../fixtures/generator') as typeof import('../fixtures/generator');
    generate({ year, out: dir, seed: 20261126 + year, records, months });
    fs.writeFileSync(marker, '');
  }
  return dir;
}

async function generateHistory(years: number[]): Promise<string> {
  const all = path.join(BENCH, `history-${years[0]}-${years[years.length - 1]}`);
  if (fs.existsSync(path.join(all, '.complete'))) return all;
  fs.rmSync(all, { recursive: true, force: true });
  fs.mkdirSync(all, { recursive: true });
  out(`  generating ${years.length} years of extracts (once; kept in ${path.relative(ROOT, all)}) …`);
  // two generators at a time, one per core
  const queue = [...years];
  const one = (): Promise<void> => new Promise((resolve, reject) => {
    const y = queue.shift();
    if (y === undefined) return resolve();
    const dir = path.join(BENCH, 'history-years', String(y));
    fs.rmSync(dir, { recursive: true, force: true });
    const c = spawn(process.execPath, [CLI, 'generate', '--year', String(y), '--out', dir, '--seed', String(y), '--records', '150000'], { stdio: ['ignore', 'ignore', 'inherit'] });
    c.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`generate ${y} failed`));
      for (const f of fs.readdirSync(dir)) if (f.endsWith('.csv')) fs.renameSync(path.join(dir, f), path.join(all, f));
      fs.rmSync(dir, { recursive: true, force: true }); // the truth of 35 years is not needed here
      resolve(one());
    });
  });
  await Promise.all([one(), one()]);
  fs.writeFileSync(path.join(all, '.complete'), '');
  return all;
}

async function main(): Promise<void> {
  fs.mkdirSync(BENCH, { recursive: true });
  out(`migstat bench — ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);

  // 1. ingest throughput on a 30 000-form month
  const m30 = generated('month-30k', 2024, 245000, [1]);
  if (PREPARE) {
    generated('year-150k', 2023, 150000);
    if (!QUICK) await generateHistory(Array.from({ length: HISTORY_YEARS }, (_, i) => 2025 - HISTORY_YEARS + 1 + i));
    out('inputs ready in output/bench/');
    return;
  }
  const f30 = path.join(m30, 'moi_2024_01.csv');
  const bytes = fs.readFileSync(f30);
  const key = pseudonymKey();
  let best = Infinity, rows = 0;
  for (let k = 0; k < 7; k++) {
    const t0 = process.hrtime.bigint();
    const p = parseExtract(decodeExtract(bytes, f30, 'utf-8'), f30);
    const { forms } = toForms(p, '2024-01', new Pseudonymiser(key.key));
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e9);
    rows = p.formsRead;
    if (!forms.record_id!.length) throw new Error('no forms');
  }
  out(`ingest            ${fmt(rows)} forms (${(bytes.length / 1e6).toFixed(1)} MB) in ${(best * 1000).toFixed(0)} ms: ${fmt(rows / best)} rows/s (${(bytes.length / 1e6 / best).toFixed(0)} MB/s), one thread, best of 7   target ≥ 300,000 rows/s`);

  // 1b. ingest of a year's extracts on both cores (worker threads, as the rebuild does)
  {
    const y150 = generated('year-150k', 2023, 150000);
    const files = fs.readdirSync(y150).filter((x) => x.endsWith('.csv')).sort().map((x) => path.join(y150, x));
    const workerCode = `
      const { parentPort, workerData } = require('node:worker_threads');
      const fs = require('node:fs');
      const I = require(${JSON.stringify(path.join(__dirname, '..', 'stages', 'ingest.js'))});
      const J = require(${JSON.stringify(path.join(__dirname, '..', 'stages', 'jmbg.js'))});
      I.schemaCheck(new Array(18).fill('')); // compile the record schema before the clock starts
      parentPort.postMessage({ ready: true });
      parentPort.once('message', () => {
        let rows = 0;
        for (const f of workerData.files) {
          const p = I.parseExtract(I.decodeExtract(fs.readFileSync(f), f, 'utf-8'), f);
          I.toForms(p, '2023-01', new J.Pseudonymiser(workerData.key));
          rows += p.formsRead;
        }
        parentPort.postMessage({ rows });
      });`;
    const { Worker } = require('node:worker_threads') as typeof import('node:worker_threads');
    const workers = [0, 1].map((w) => new Worker(workerCode, { eval: true, workerData: { files: files.filter((_, i) => i % 2 === w), key: key.key }, resourceLimits: { maxYoungGenerationSizeMb: 192 } }));
    await Promise.all(workers.map((wk) => new Promise((resolve) => wk.once('message', resolve))));
    const t0 = process.hrtime.bigint();
    const parts = await Promise.all(workers.map((wk) => new Promise<{ rows: number }>((resolve, reject) => {
      wk.once('message', resolve);
      wk.on('error', reject);
      wk.postMessage('go');
    })));
    const wall = Number(process.hrtime.bigint() - t0) / 1e9;
    for (const wk of workers) void wk.terminate();
    const total = parts.reduce((a, p) => a + p.rows, 0);
    out(`ingest, 2 cores   ${fmt(total)} forms of a year (12 extracts) on 2 worker threads (started and loaded before the clock): ${wall.toFixed(2)} s: ${fmt(total / wall)} rows/s`);
  }

  // 2. a monthly run end to end, a new process each time (start-up included)
  const runs: { wall: number; rssMb: number }[] = [];
  for (let k = 0; k < 3; k++) {
    const data = path.join(BENCH, `store-month-${k}`);
    fs.rmSync(data, { recursive: true, force: true });
    runs.push(measured(['month', '--data', data, '--input', f30]));
    fs.rmSync(data, { recursive: true, force: true });
  }
  const bm = runs.reduce((a, b) => (a.wall < b.wall ? a : b));
  out(`month             migstat month, ${fmt(rows)} forms, new process: ${bm.wall.toFixed(2)} s wall (best of 3), peak RSS ${bm.rssMb} MB   target ≤ 1.5 s`);

  // 3. a year in the monthly cadence: memory per month stays flat
  const y150 = generated('year-150k', 2023, 150000);
  const ydata = path.join(BENCH, 'store-year');
  fs.rmSync(ydata, { recursive: true, force: true });
  const perMonth: { wall: number; rssMb: number }[] = [];
  let yearForms = 0;
  for (const f of fs.readdirSync(y150).filter((x) => x.endsWith('.csv')).sort()) {
    yearForms += fs.readFileSync(path.join(y150, f), 'utf8').split('\n').length - 2;
    perMonth.push(measured(['month', '--data', ydata, '--input', path.join(y150, f)]));
    measured(['close', '--data', ydata, '--month', `2023-${f.slice(9, 11)}`]);
  }
  out(`year cadence      12 × migstat month + close, ${fmt(yearForms)} forms: ${perMonth.reduce((a, b) => a + b.wall, 0).toFixed(1)} s wall; per month ${perMonth.map((r) => r.wall.toFixed(2)).join(' ')} s`);
  out(`                  peak RSS per month ${perMonth.map((r) => r.rssMb).join(' ')} MB (the record index reaches its 12-month window in December)`);

  // 4. validation + imputation of the year (rules, linkage, deductive and donor imputation), in process
  const L = loadConfig(), C = loadClassification();
  let tProc = 0, nForms = 0;
  for (let m = 1; m <= 12; m++) {
    const month = `2023-${String(m).padStart(2, '0')}`;
    const dir = path.join(ydata, 'forms', month);
    const forms: Columns = {};
    for (const p of fs.readdirSync(dir).sort()) for (const [k, v] of Object.entries(readJson<Columns>(path.join(dir, p)))) (forms[k] ??= []).push(...v);
    const t0 = process.hrtime.bigint();
    processMonth(forms, { month, classification: C, rules: L.rules, scopeRules: L.scopeRules, imputation: L.imputation, seed: L.config.seed, linkageWindowDays: L.config.linkage.window_days });
    tProc += Number(process.hrtime.bigint() - t0) / 1e9;
    nForms += forms.record_id!.length;
  }
  out(`rules+imputation  ${fmt(nForms)} forms of the year (27 rules, 5 scope rules, linkage, deductive + donor imputation): ${tProc.toFixed(2)} s   target < 2 s`);

  // 5. the annual run
  const yr = measured(['year', '--data', ydata, '--year', '2023']);
  out(`annual            migstat year 2023 (Σ months, checks, SDMX ×3, workbook, report): ${yr.wall.toFixed(2)} s wall, peak RSS ${yr.rssMb} MB   target < 3 s`);

  // 6. the full history
  if (!QUICK) {
    const years = Array.from({ length: HISTORY_YEARS }, (_, i) => 2025 - HISTORY_YEARS + 1 + i);
    const dir = await generateHistory(years);
    const files = fs.readdirSync(dir).filter((f) => f.endsWith('.csv'));
    const size = files.reduce((a, f) => a + fs.statSync(path.join(dir, f)).size, 0);
    const data = path.join(BENCH, 'store-history');
    fs.rmSync(data, { recursive: true, force: true });
    const t0 = process.hrtime.bigint();
    spawnSync('cat', files.map((f) => path.join(dir, f)), { stdio: ['ignore', 'ignore', 'inherit'] });
    const readOnly = Number(process.hrtime.bigint() - t0) / 1e9;
    const h = measured(['rebuild', '--data', data, '--input-dir', dir, '--workers', String(WORKERS), '--no-progress']);
    const forms = +(/: (\d+) forms/.exec(h.stdout)?.[1] ?? 0);
    out(`history           migstat rebuild ${years[0]}–${years[years.length - 1]}: ${files.length} extracts, ${fmt(forms)} forms (${(size / 1e9).toFixed(2)} GB): ${h.wall.toFixed(1)} s wall on ${WORKERS} workers, ${fmt(forms / h.wall)} forms/s, peak RSS ${h.rssMb} MB   target ≤ 60 s, ≤ 1.5 GB`);
    out(`                  CPU ${(h.userS + h.systemS).toFixed(1)} s (user ${h.userS.toFixed(1)}, system ${h.systemS.toFixed(1)}; steadier than wall time on a shared VM); merely reading those bytes: ${readOnly.toFixed(1)} s`);
    fs.rmSync(data, { recursive: true, force: true });
  }
}

main().catch((e: Error) => {
  process.stderr.write(`bench: ${e.message}\n`);
  process.exitCode = 1;
});
