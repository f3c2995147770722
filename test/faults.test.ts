/**
 * Kill tests: `migstat month` and `migstat release --due` are killed (SIGKILL, no clean-up of any kind) at
 * random points, many times, in two ways:
 *  - at the n-th crash-relevant file-system step of the run (MIGSTAT_FAULT_AFTER_WRITES=n, see pipeline/fsutil.ts:
 *    half of a file written to its temporary name, or just before a directory-swap rename);
 *  - after a random delay, wherever the process happens to be.
 * After each kill: nothing half-written is visible in months/, years/ or published/ (each visible entry is a
 * complete results directory whose files match its manifest, or there is nothing); the next run takes over
 * the dead run's lock, recovers, and leaves the store byte-identical to a run that was never interrupted
 * (logs aside), with a clean audit.
 *
 * Trials: MIGSTAT_KILL_RUNS (default 6 monthly runs and 4 releases), seed MIGSTAT_KILL_SEED (printed on failure).
 *   MIGSTAT_KILL_RUNS=200 MIGSTAT_KILL_SEED=7 npx jest test/faults
 * With MIGSTAT_KILL_RUNS at or above the number of fault points, every point is tried once.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { generate } from '../fixtures/generator';
import { faultPoints } from '../pipeline/fsutil';
import { runMonth } from '../pipeline/month';
import { Store } from '../pipeline/store';
import { audit, checkResultsDir, RESULT_ROOTS } from '../stages/audit';
import { releaseDue } from '../stages/release';
import { logRecords } from '../stages/audit';
import { migstat, migstatAsync } from './helpers/cli';
import { makeStore } from './helpers/results-store';
import { logFor, snapshot, tmpDir } from './helpers/store';

const RUNS = Number(process.env.MIGSTAT_KILL_RUNS ?? 6);
const SEED = Number(process.env.MIGSTAT_KILL_SEED ?? 20250710);
const RELEASE_RUNS = Number(process.env.MIGSTAT_KILL_RUNS ?? 4);
const NOW = '2025-07-10T10:00:00Z'; // the release instant of IM-2024

/** A small seeded PRNG (mulberry32), so a failing trial can be replayed from the seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Trial plans: every other trial a fault point (spread over 1..points, all of them if there are enough trials), else a random delay. */
function plan(trials: number, points: number, rnd: () => number): ({ fault: number } | { delay: number })[] {
  const nFault = Math.ceil(trials / 2);
  const faults = nFault >= points ? Array.from({ length: points }, (_, i) => i + 1) : Array.from({ length: nFault }, (_, i) => 1 + Math.floor(((i + rnd()) * points) / nFault));
  const out: ({ fault: number } | { delay: number })[] = [];
  for (let i = 0; i < Math.max(trials, faults.length); i++) out.push(i % 2 === 0 && faults.length ? { fault: faults.shift()! } : { delay: rnd() });
  for (const f of faults) out.push({ fault: f });
  return out;
}

/** A process start-up alone (`migstat --help`), so that random kills land mostly in the run, not in the start-up. */
let startupMs = 0;
beforeAll(() => {
  startupMs = Math.min(...[0, 1].map(() => migstat(['--help']).ms));
});
const delayFor = (u: number, cleanMs: number): number => Math.round(0.8 * startupMs + u * Math.max(50, cleanMs - 0.8 * startupMs));

/** Nothing half-written is visible: every visible entry of months/, years/, published/ is a complete results directory. */
function expectNothingHalfWritten(data: string, when: string): void {
  for (const root of RESULT_ROOTS) {
    const base = path.join(data, root);
    if (!fs.existsSync(base)) continue;
    for (const e of fs.readdirSync(base, { withFileTypes: true })) {
      if (e.name.startsWith('.')) continue; // staging or set-aside directories of an interrupted swap: hidden, removed by the next run
      expect([when, `${root}/${e.name}`, e.isDirectory()]).toEqual([when, `${root}/${e.name}`, true]);
      const r = checkResultsDir(path.join(base, e.name), `${root}/${e.name}`);
      expect([when, r.problems]).toEqual([when, []]);
    }
  }
}

/** Everything but the log (timestamps, run ids) and the lock. */
const state = (data: string): Record<string, string> => snapshot(data, (f) => !f.startsWith('logs/') && !f.startsWith('.lock'));
const LEFTOVER = /\.tmp-\d+-[0-9a-f]+$|\.staging-\d+$|\.old-\d+$|\.lock\.takeover$/;

describe('kill -9 during a monthly run', () => {
  const gen = tmpDir('migstat-kill-gen-');
  const g = generate({ year: 2024, out: gen, seed: 5, records: 3000, months: [1, 2] });
  const [jan, feb] = g.files.filter((f) => f.endsWith('.csv')).sort();
  const before = tmpDir('migstat-kill-s1-'); // January done
  const clean = tmpDir('migstat-kill-ref-'); // January, then February, never interrupted
  let points = 0;
  let cleanMs = 0;
  beforeAll(() => {
    runMonth({ data: before, input: jan!, log: logFor(before) });
    fs.cpSync(before, clean, { recursive: true });
    const p0 = faultPoints();
    runMonth({ data: clean, input: feb!, log: logFor(clean) });
    points = faultPoints() - p0;
    // the same run through the CLI gives the same bytes, and tells how long a run takes with its start-up
    const cli = tmpDir('migstat-kill-cli-');
    fs.cpSync(before, cli, { recursive: true });
    const r = migstat(['month', '--data', cli, '--input', feb!]);
    expect([r.status, r.stderr]).toEqual([0, '']);
    expect(state(cli)).toEqual(state(clean));
    cleanMs = r.ms;
  });

  test(`${RUNS} kills (seed ${SEED}): nothing half-written, the rerun recovers byte-identical results`, async () => {
    expect(points).toBeGreaterThan(20); // ingest, record index, delivery, two months' results, commit
    const want = state(clean);
    const rnd = prng(SEED);
    let killed = 0;
    for (const [i, trial] of plan(RUNS, points, rnd).entries()) {
      const data = tmpDir('migstat-kill-');
      fs.cpSync(before, data, { recursive: true });
      const when = `seed ${SEED} trial ${i}: ${JSON.stringify(trial)}`;
      const child = migstatAsync(['month', '--data', data, '--input', feb!], 'fault' in trial ? { MIGSTAT_FAULT_AFTER_WRITES: String(trial.fault) } : {});
      if ('delay' in trial) child.kill(delayFor(trial.delay, cleanMs));
      const r = await child.done;
      if (r.signal === 'SIGKILL') killed++;
      else expect([when, r.status, r.stderr]).toEqual([when, 0, '']);
      if ('fault' in trial) {
        expect([when, r.signal]).toEqual([when, 'SIGKILL']);
        // killed inside the run: its lock is left behind, for the next run to take over
        expect([when, JSON.parse(fs.readFileSync(path.join(data, '.lock', 'owner.json'), 'utf8')).pid]).toEqual([when, child.pid]);
      }
      expectNothingHalfWritten(data, when);
      // the next run (here in-process) takes over the dead run's lock and finishes the job
      runMonth({ data, input: feb!, log: logFor(data) });
      expectNothingHalfWritten(data, when);
      const got = state(data);
      expect([when, Object.keys(got).filter((f) => LEFTOVER.test(f))]).toEqual([when, []]);
      expect([when, Object.keys(got).filter((f) => got[f] !== want[f] || !(f in want))]).toEqual([when, []]);
      expect([when, Object.keys(want).filter((f) => !(f in got))]).toEqual([when, []]);
      expect([when, audit(new Store(data)).problems]).toEqual([when, []]);
      fs.rmSync(data, { recursive: true, force: true });
    }
    expect(killed).toBeGreaterThanOrEqual(Math.ceil(RUNS / 2));
  }, 60_000 + RUNS * 5_000);
});

/**
 * Run `migstat month` on `data` and kill it at its commit (its last fault point: state/ingested.json), after every
 * result is written: the number of points is counted on a scratch copy of the store, run in-process.
 */
function killAtCommit(data: string, input: string): void {
  const scratch = tmpDir('migstat-kill-count-');
  fs.cpSync(data, scratch, { recursive: true });
  const p0 = faultPoints();
  runMonth({ data: scratch, input, log: logFor(scratch) });
  const commit = faultPoints() - p0;
  expect(migstat(['month', '--data', data, '--input', input], { MIGSTAT_FAULT_AFTER_WRITES: String(commit) }).signal).toBe('SIGKILL');
}

describe('after a killed monthly run, only migstat month recovers (review of 26 Nov)', () => {
  const gen = tmpDir('migstat-kill2-gen-');
  const g = generate({ year: 2024, out: gen, seed: 5, records: 3000, months: [1, 2, 3] });
  const [jan, feb, mar] = g.files.filter((f) => f.endsWith('.csv')).sort();

  test('close, year and release refuse while it is uncommitted; month rolls it back; then close works', () => {
    const data = tmpDir('migstat-kill2-');
    runMonth({ data, input: jan!, log: logFor(data) });
    expect(migstat(['close', '--month', '2024-01', '--data', data]).status).toBe(0);
    // killed after February's results were written, at its commit point
    killAtCommit(data, feb!);
    expect(fs.existsSync(path.join(data, 'months', '2024-02', 'manifest.json'))).toBe(true);
    const msg = 'a monthly run stopped (killed, or failed) before it committed (months 2024-02); run "migstat month" again with its extract (moi_2024_02.csv) once what stopped it is put right: it rolls the run back and rebuilds those months; then';
    const c = migstat(['close', '--month', '2024-02', '--data', data]);
    expect([c.status, c.stderr]).toEqual([1, `migstat: close: ${msg} close again\n`]);
    const y = migstat(['year', '--year', '2024', '--provisional', '--data', data]);
    expect([y.status, y.stderr]).toEqual([1, `migstat: year 2024: ${msg} year 2024 again\n`]);
    expect(() => releaseDue({ store: new Store(data), now: new Date(NOW) })).toThrow(`release: ${msg} release again`);
    expect(new Store(data).closedMonths()).toEqual({ '2024-01': { closed_by: 'close' } });
    runMonth({ data, input: feb!, log: logFor(data) });
    expect(new Store(data).uncommittedMonths()).toEqual([]);
    expect(migstat(['close', '--month', '2024-02', '--data', data]).status).toBe(0);
    expect(audit(new Store(data)).problems).toEqual([]);
  }, 60_000);

  test('a first run killed before its commit leaves no first month: an earlier month can still be run', () => {
    const data = tmpDir('migstat-kill3-');
    killAtCommit(data, mar!); // (after the first month is set, before the commit)
    expect(new Store(data).firstMonth()).toBe('2024-03');
    const r = migstat(['month', '--data', data, '--input', feb!]);
    expect([r.status, r.stderr]).toEqual([0, '']);
    expect(new Store(data).firstMonth()).toBe('2024-02');
    // March's results were the rolled-back delivery's alone: gone, not rebuilt empty
    expect(new Store(data).months()).toEqual(['2024-02']);
    expect(fs.readFileSync(new Store(data).logFile(), 'utf8')).toContain('"event":"removed_month","month":"2024-03"');
    expect(audit(new Store(data)).problems).toEqual([]);
  }, 60_000);

  test('a first run killed at its commit, then a later month: the killed month\'s results go, nothing is counted twice', () => {
    const data = tmpDir('migstat-kill4-');
    killAtCommit(data, feb!);
    expect(new Store(data).months()).toEqual(['2024-02']);
    const r = migstat(['month', '--data', data, '--input', mar!]);
    expect([r.status, r.stderr]).toEqual([0, '']);
    // March is the store's first month: February's uncommitted results are gone, its late forms carried into March
    expect([new Store(data).firstMonth(), new Store(data).months()]).toEqual(['2024-03', ['2024-03']]);
    expect(new Store(data).uncommittedMonths()).toEqual([]);
    expect(audit(new Store(data)).problems).toEqual([]);
    // and the user is told, without advice that cannot be followed
    expect(r.stdout.split('\n')[0]).toBe('an interrupted run of moi_2024_02.csv was rolled back (the results of 2024-02, which were its alone, removed): moi_2024_02.csv is now before this store\'s first month 2024-03 (to include it, rebuild the history into a new store with migstat rebuild)');
  }, 60_000);

  test('a recovery killed while it removed a month: the next run logs the removal, and audit finds nothing missing', () => {
    const data = tmpDir('migstat-kill5-');
    killAtCommit(data, feb!);
    const store = new Store(data);
    // the state a recovery leaves when killed just after it renamed the month's results aside: rolled back
    // (state/rebuild.json lists 2024-02), the directory gone, no line in the log yet
    fs.rmSync(store.p('state', 'first-month.json'));
    expect(store.rollbackUncommitted(new Set())).toEqual(['2024-02']);
    fs.renameSync(store.monthDir('2024-02'), store.p('months', `.2024-02.staging-${process.pid + 1}`));
    const r = migstat(['month', '--data', data, '--input', mar!]);
    expect([r.status, r.stderr]).toEqual([0, '']);
    expect(fs.readFileSync(store.logFile(), 'utf8')).toContain('"event":"removed_month","month":"2024-02"');
    expect(audit(new Store(data)).problems).toEqual([]);
  }, 60_000);

  test('an extract the store refuses does not roll back an interrupted run: the refusals still name it', () => {
    const data = tmpDir('migstat-kill6-');
    expect(migstat(['month', '--data', data, '--input', feb!]).status).toBe(0);
    killAtCommit(data, mar!);
    const refused = migstat(['month', '--data', data, '--input', jan!]);
    expect(refused.stderr).toMatch(/^migstat: month 2024-01 is before this store's first month 2024-02/);
    expect(new Store(data).uncommittedMonths()).toContain('2024-03'); // (and February, if March delivered late forms to it)
    expect(migstat(['close', '--month', '2024-02', '--data', data]).stderr).toContain('(moi_2024_03.csv)');
  }, 60_000);
});

describe('kill -9 during a release', () => {
  const ref = makeStore();
  let points = 0;
  let cleanMs = 0;
  beforeAll(() => {
    const p0 = faultPoints();
    releaseDue({ store: ref, now: new Date(NOW) });
    points = faultPoints() - p0;
    const cli = makeStore();
    const r = migstat(['release', '--due', '--now', NOW, '--data', cli.root]);
    expect([r.status, r.stderr]).toEqual([0, '']);
    expect(snapshot(cli.publishedDir())).toEqual(snapshot(ref.publishedDir()));
    cleanMs = r.ms;
  });

  test(`${RELEASE_RUNS} kills (seed ${SEED}): published/ holds the whole release or nothing; the rerun publishes it identically`, async () => {
    expect(points).toBeGreaterThanOrEqual(3); // the two renames of the swap, the closing of the months
    const want = { published: snapshot(ref.publishedDir()), closed: fs.readFileSync(ref.p('state', 'closed.json'), 'utf8') };
    const rnd = prng(SEED + 1);
    let killed = 0;
    for (const [i, trial] of plan(RELEASE_RUNS, points, rnd).entries()) {
      const store = makeStore();
      const when = `seed ${SEED} release trial ${i}: ${JSON.stringify(trial)}`;
      const child = migstatAsync(['release', '--due', '--now', NOW, '--data', store.root], 'fault' in trial ? { MIGSTAT_FAULT_AFTER_WRITES: String(trial.fault) } : {});
      if ('delay' in trial) child.kill(delayFor(trial.delay, cleanMs));
      const r = await child.done;
      if (r.signal === 'SIGKILL') killed++;
      else expect([when, r.status]).toEqual([when, 0]);
      expectNothingHalfWritten(store.root, when);
      const visible = fs.existsSync(store.publishedDir()) ? fs.readdirSync(store.publishedDir()).filter((n) => !n.startsWith('.')) : [];
      if (visible.length) expect([when, snapshot(store.publishedDir('IM-2024'))]).toEqual([when, snapshot(ref.publishedDir('IM-2024'))]);
      const again = releaseDue({ store, now: new Date(NOW) });
      expect([when, [...again.published, ...again.alreadyPublished]]).toEqual([when, ['IM-2024']]);
      expect([when, snapshot(store.publishedDir())]).toEqual([when, want.published]);
      expect([when, fs.readFileSync(store.p('state', 'closed.json'), 'utf8')]).toEqual([when, want.closed]);
      expect([when, audit(store).problems]).toEqual([when, []]);
    }
    expect(killed).toBeGreaterThanOrEqual(Math.ceil(RELEASE_RUNS / 2));
  }, 60_000 + RELEASE_RUNS * 5_000);
});

describe('a release killed between its rename and its log line', () => {
  test('the next run records the publication (its content is exactly the release), closes the months, and the audit is clean', () => {
    const ref = makeStore();
    releaseDue({ store: ref, now: new Date(NOW) });
    const store = makeStore();
    fs.cpSync(ref.publishedDir('IM-2024'), store.publishedDir('IM-2024'), { recursive: true }); // renamed into place, then killed
    expect(audit(store).problems.map((p) => p.detail)).toContainEqual(expect.stringMatching(/published\/IM-2024 has no 'published' record/));
    const r = releaseDue({ store, now: new Date(NOW) });
    expect(r.alreadyPublished).toEqual(['IM-2024']);
    expect(store.isClosed('2024-12')).toBe(true);
    expect(logRecords(store.logFile()).published).toEqual(new Set(['IM-2024']));
    expect(audit(store)).toMatchObject({ ok: true, problems: [] });
  });
  test('a published directory with other content is not blessed: the audit still reports it', () => {
    const ref = makeStore();
    releaseDue({ store: ref, now: new Date(NOW) });
    const store = makeStore();
    fs.writeFileSync(path.join(store.yearDir(2024), 'tables', 'move_type.csv'), 'series,level,code,move_type,migrants\n1998-,republic,RS,total,9\n');
    fs.cpSync(ref.publishedDir('IM-2024'), store.publishedDir('IM-2024'), { recursive: true });
    releaseDue({ store, now: new Date(NOW) });
    expect(logRecords(store.logFile()).published.size).toBe(0);
    expect(audit(store).problems.map((p) => p.path)).toEqual(expect.arrayContaining(['published/IM-2024']));
  });
});

test('a year run killed between the two renames of its swap: the next release restores the previous results and publishes them', () => {
  const ref = makeStore();
  releaseDue({ store: ref, now: new Date(NOW) });
  const store = makeStore();
  const staging = path.join(store.p('years'), '.2024.staging-99999');
  fs.cpSync(store.yearDir(2024), staging, { recursive: true });
  fs.writeFileSync(path.join(staging, 'quality.json'), '{"half":'); // the new results, unfinished
  fs.renameSync(store.yearDir(2024), path.join(store.p('years'), '.2024.old-99999')); // the previous results, set aside
  expectNothingHalfWritten(store.root, 'after the kill');
  const r = releaseDue({ store, now: new Date(NOW) });
  expect(r.published).toEqual(['IM-2024']);
  expect(fs.readdirSync(store.p('years'))).toEqual(['2024']);
  expect(snapshot(store.publishedDir())).toEqual(snapshot(ref.publishedDir()));
  expect(audit(store)).toMatchObject({ ok: true, problems: [] });
});
