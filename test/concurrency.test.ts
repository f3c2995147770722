/**
 * Two `migstat` processes on the same data directory (the release race is in release.test.ts):
 *  - while one monthly run holds the store, a second `migstat month` (or close) exits 1 with the one-line lock
 *    message naming the holder, and writes nothing; the first finishes normally;
 *  - two monthly runs started at the same instant: each either completes or gets the lock message, and the
 *    store ends exactly as after one uninterrupted run; the same when both find a lock left by a dead process.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { generate } from '../fixtures/generator';
import { recoverDir } from '../pipeline/fsutil';
import { runMonth } from '../pipeline/month';
import { LockError, Store, withLock } from '../pipeline/store';
import { migstat, migstatAsync, oneErrorLine, type CliResult } from './helpers/cli';
import { logFor, snapshot, tmpDir } from './helpers/store';

const state = (data: string): Record<string, string> => snapshot(data, (f) => !f.startsWith('logs/'));
const lockMessage = (data: string, pid: string, what: string): string => `the store ${data} is in use by another migstat run (pid ${pid}: ${what}); try again when it has finished`;

const gen = tmpDir('migstat-conc-gen-');
const g = generate({ year: 2024, out: gen, seed: 9, records: 3000, months: [1, 2] });
const [jan, feb] = g.files.filter((f) => f.endsWith('.csv')).sort() as [string, string];
const before = tmpDir('migstat-conc-s1-');
const clean = tmpDir('migstat-conc-ref-');
beforeAll(() => {
  runMonth({ data: before, input: jan, log: logFor(before) });
  fs.cpSync(before, clean, { recursive: true });
  runMonth({ data: clean, input: feb, log: logFor(clean) });
});
const fresh = (): string => { const d = tmpDir('migstat-conc-'); fs.cpSync(before, d, { recursive: true }); return d; };

/** Wait until `pid` holds the lock of `data`. */
async function lockedBy(data: string, pid: number): Promise<void> {
  for (let i = 0; i < 5000; i++) {
    try { if (JSON.parse(fs.readFileSync(path.join(data, '.lock', 'owner.json'), 'utf8')).pid === pid) return; } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 2));
  }
  throw new Error(`pid ${pid} never took the lock of ${data}`);
}

test('while a monthly run holds the store, a second run and a close are refused with the lock message and write nothing', async () => {
  const data = fresh();
  const a = migstatAsync(['month', '--data', data, '--input', feb]);
  await lockedBy(data, a.pid);
  process.kill(a.pid, 'SIGSTOP'); // hold it there, lock taken, whatever it was doing
  let b: CliResult, c: CliResult;
  const during = state(data);
  try {
    b = migstat(['month', '--data', data, '--input', feb]);
    c = migstat(['close', '--data', data, '--month', '2024-01']);
  } finally {
    process.kill(a.pid, 'SIGCONT');
  }
  expect(b.status).toBe(1);
  expect(oneErrorLine(b)).toBe(lockMessage(data, String(a.pid), 'month moi_2024_02.csv'));
  expect(c.status).toBe(1);
  expect(oneErrorLine(c)).toBe(lockMessage(data, String(a.pid), 'month moi_2024_02.csv'));
  expect(state(data)).toEqual(during); // the refused runs wrote nothing
  const r = await a.done;
  expect([r.status, r.stderr]).toEqual([0, '']);
  expect(state(data)).toEqual(state(clean));
  expect(fs.existsSync(path.join(data, '.lock'))).toBe(false);
});

describe('two monthly runs started at the same instant', () => {
  // a lock left by a process that no longer exists (the old layout: a directory with owner.json)
  const deadPid = (): number => Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout);
  test.each([
    ['on a free store', false],
    ['both finding the lock of a dead run', true],
  ])('%s: one proceeds, the other completes after it or gets the lock message; the store is as after one run', async (_name, stale) => {
    const data = fresh();
    if (stale) {
      fs.mkdirSync(path.join(data, '.lock'));
      fs.writeFileSync(path.join(data, '.lock', 'owner.json'), JSON.stringify({ pid: deadPid(), what: 'month moi_2024_02.csv' }));
    }
    const a = migstatAsync(['month', '--data', data, '--input', feb]);
    const b = migstatAsync(['month', '--data', data, '--input', feb]);
    const rs = await Promise.all([a.done, b.done]);
    const ok = rs.filter((r) => r.status === 0);
    expect(ok.length).toBeGreaterThanOrEqual(1);
    expect(ok.map((r) => r.stderr)).toEqual(ok.map(() => ''));
    // processed once: the other run either found it already ingested or was refused
    expect(rs.filter((r) => /months 2024-01, 2024-02 processed/.test(r.stdout))).toHaveLength(1);
    for (const [r, other] of [[rs[0]!, b.pid], [rs[1]!, a.pid]] as const) {
      if (r.status === 0) continue;
      expect(r.status).toBe(1);
      expect(oneErrorLine(r)).toBe(lockMessage(data, String(other), 'month moi_2024_02.csv'));
    }
    expect(state(data)).toEqual(state(clean));
    expect(fs.readdirSync(data).filter((n) => n.startsWith('.lock'))).toEqual([]);
  });
});

test('a run that finds a dead run\'s lock being taken over by another run waits for the take-over instead of reporting the dead lock as in use', async () => {
  const data = fresh();
  const dead = Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout);
  fs.mkdirSync(path.join(data, '.lock'));
  fs.writeFileSync(path.join(data, '.lock', 'owner.json'), JSON.stringify({ pid: dead, what: 'month moi_2024_02.csv' }));
  // another run is inside its take-over (holds the take-over mutex), and slow: descheduled on a loaded machine
  fs.mkdirSync(path.join(data, '.lock.takeover'));
  const a = migstatAsync(['month', '--data', data, '--input', feb]);
  await new Promise((r) => setTimeout(r, 2000)); // (the run used to give up after 20 tries 25 ms apart)
  // the other run completes its take-over and then stops (as if refused by a check of its own)
  fs.rmSync(path.join(data, '.lock'), { recursive: true });
  fs.rmdirSync(path.join(data, '.lock.takeover'));
  const r = await a.done;
  expect([r.status, r.stderr]).toEqual([0, '']);
  expect(state(data)).toEqual(state(clean));
  expect(fs.readdirSync(data).filter((n) => n.startsWith('.lock'))).toEqual([]);
});

test('a lock directory that stays without its owner (made by hand or another program) is reported, naming it, after a short wait — not after the whole patience for a take-over', () => {
  const data = tmpDir('migstat-conc-ownerless-');
  fs.mkdirSync(path.join(data, '.lock'));
  fs.writeFileSync(path.join(data, '.lock', 'notes.txt'), 'not an owner');
  const t0 = Date.now();
  expect(() => withLock(new Store(data), 'test', () => undefined)).toThrow(new LockError(`the store ${data} is in use by another migstat run (${path.join(data, '.lock')} has no owner; remove it if no migstat run is active); try again when it has finished`));
  expect(Date.now() - t0).toBeLessThan(8000); // ~2 s (the take-over patience is 15 s)
  expect(fs.readdirSync(path.join(data, '.lock'))).toEqual(['notes.txt']); // left as it was
});

test('six processes contending for the lock (from a dead run\'s lock) are never inside together', async () => {
  const data = tmpDir('migstat-conc-lock-');
  fs.mkdirSync(path.join(data, '.lock'));
  fs.writeFileSync(path.join(data, '.lock', 'owner.json'), JSON.stringify({ pid: Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout), what: 'dead' }));
  const script = path.join(tmpDir(), 'contend.js');
  fs.writeFileSync(script, `
const fs = require('fs');
const swc = require(${JSON.stringify(require.resolve('@swc/core'))});
require.extensions['.ts'] = (m, f) => m._compile(swc.transformSync(fs.readFileSync(f, 'utf8'), { filename: f, jsc: { target: 'es2022', parser: { syntax: 'typescript' } }, module: { type: 'commonjs' } }).code, f);
const { Store, withLock, LockError } = require(${JSON.stringify(path.join(__dirname, '..', 'pipeline', 'store.ts'))});
const store = new Store(process.argv[2]);
const inside = process.argv[2] + '/inside';
const start = Number(process.argv[3]);
while (Date.now() < start) {}
let done = 0, refused = 0;
while (done < 5) {
  try {
    withLock(store, 'contender', () => {
      fs.closeSync(fs.openSync(inside, 'wx')); // throws if another process is inside
      const t = Date.now(); while (Date.now() - t < 3) {}
      fs.unlinkSync(inside);
    });
    done++;
  } catch (e) {
    if (!(e instanceof LockError)) { process.stdout.write('BROKEN ' + e.message); process.exit(1); }
    refused++;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1 + Math.random() * 3);
  }
}
process.stdout.write(JSON.stringify({ done, refused }));
`);
  const start = Date.now() + 1500;
  const { spawn } = await import('node:child_process');
  const runs = Array.from({ length: 6 }, () => new Promise<{ status: number | null; out: string }>((resolve) => {
    const c = spawn(process.execPath, [script, data, String(start)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    c.stdout.on('data', (d) => { out += d; });
    c.on('close', (status) => resolve({ status, out }));
  }));
  const rs = await Promise.all(runs);
  for (const r of rs) expect([r.status, r.out]).toEqual([0, expect.stringMatching(/^\{"done":5,"refused":\d+\}$/)]);
  expect(rs.reduce((a, r) => a + JSON.parse(r.out).refused, 0)).toBeGreaterThan(0); // they did contend
  expect(fs.readdirSync(data).sort()).toEqual([]);
});

test('a lock whose pid now belongs to another process (after a reboot, or reused) is taken over; the live owner\'s is not', () => {
  const s = new Store(tmpDir());
  s.ensure();
  const stat = fs.readFileSync(`/proc/${process.pid}/stat`, 'utf8');
  const started = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]!;
  const boot = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  const lockAs = (owner: object): void => { fs.mkdirSync(s.p('.lock'), { recursive: true }); fs.writeFileSync(s.p('.lock', 'owner.json'), JSON.stringify({ pid: process.pid, what: 'month x', ...owner })); };
  // this very process holds it: refused, with the holder named
  lockAs({ boot, started });
  expect(() => withLock(s, 'close', () => 1)).toThrow(LockError);
  // the same pid on another boot, or the same pid started at another time: a dead run's lock
  for (const o of [{ boot: 'an-earlier-boot', started }, { boot, started: '1' }]) {
    lockAs(o);
    expect(withLock(s, 'close', () => 2)).toBe(2);
    expect(fs.existsSync(s.p('.lock'))).toBe(false);
  }
});

test('the lock holder\'s recovery of the store leaves the lock\'s own directories alone, which other runs make and remove at any instant; a dead run\'s prepared lock is removed', async () => {
  // the race seen in CI: run A took a dead run's lock over and, holding it, cleaned the store's leftovers, while run B,
  // inside its own (now idle) take-over, removed the mutex between A's listing of the store and A's reading of it;
  // A failed with ".lock.takeover does not exist". The same could happen with B's prepared lock (.lock.tmp-PID-HEX),
  // into which B writes its owner file. Here another process makes and removes both without pause.
  const data = tmpDir('migstat-conc-recover-');
  const mutex = path.join(data, '.lock.takeover');
  fs.mkdirSync(path.join(data, '.lock'));
  fs.writeFileSync(path.join(data, '.lock', 'owner.json'), '{}');
  const deadPrepared = path.join(data, `.lock.tmp-${Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout)}-0badf00d`);
  fs.mkdirSync(deadPrepared);
  fs.writeFileSync(path.join(deadPrepared, 'owner.json'), '{}'); // left by a run killed while preparing its lock
  const { spawn } = await import('node:child_process');
  const other = `const fs = require('fs'); const m = ${JSON.stringify(mutex)}; const t = ${JSON.stringify(data)} + '/.lock.tmp-' + process.pid + '-12ab34cd';
fs.mkdirSync(m); process.stdout.write('go');
for (;;) { try { fs.rmdirSync(m); fs.mkdirSync(t); fs.writeFileSync(t + '/owner.json', '{}'); fs.mkdirSync(m); fs.rmSync(t, { recursive: true }); } catch {} }`;
  const toggler = spawn(process.execPath, ['-e', other], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await new Promise((r) => toggler.stdout.once('data', r));
    const leftover = path.join(data, 'months', '.2024-01.staging-1');
    const seen = new Set<string>();
    for (let i = 0; i < 3000; i++) {
      fs.mkdirSync(leftover, { recursive: true }); // a killed run's leftover, removed each time
      for (const a of recoverDir(data)) seen.add(a);
    }
    expect([...seen].sort()).toEqual([`removed ${deadPrepared}`, `removed ${leftover}`]);
  } finally {
    toggler.kill();
  }
  expect(fs.readdirSync(path.join(data, '.lock'))).toEqual(['owner.json']);
});
