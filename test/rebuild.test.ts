/**
 * `migstat rebuild` (worker threads) gives exactly what the month-by-month cadence gives: every month, year,
 * form partition, record index and delivery record byte for byte, across the 1997/1998 change of series,
 * with a re-sent identical extract, and it never leaves a half store behind.
 * The rebuild runs the compiled CLI (worker threads load dist/), which `npm test` builds first.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { generate } from '../fixtures/generator';
import { runMonth } from '../pipeline/month';
import { runYear } from '../pipeline/year';
import { Store } from '../pipeline/store';
import { verifyLogChain } from '../pipeline/log';
import { logFor, snapshot, tmpDir } from './helpers/store';

const ROOT = path.join(__dirname, '..');
const CLI = path.join(ROOT, 'bin', 'migstat.js');
const cli = (...a: string[]) => spawnSync(process.execPath, [CLI, ...a], { encoding: 'utf8' });

describe('rebuild = the monthly cadence, on two worker threads', () => {
  const input = tmpDir();
  const cadence = tmpDir();
  const rebuilt = path.join(tmpDir(), 'store');
  let stdout = '';
  beforeAll(async () => {
    if (!fs.existsSync(path.join(ROOT, 'dist', 'pipeline', 'rebuild-worker.js'))) throw new Error('dist/ is missing: npm test compiles it first (tsc)');
    for (const year of [1997, 1998]) {
      const g = generate({ year, out: path.join(input, String(year)), seed: 5, records: 2500 });
      for (const f of g.files.filter((x) => x.endsWith('.csv'))) fs.renameSync(f, path.join(input, path.basename(f)));
    }
    // record ids with a tab or a line break inside (RFC 4180 quoted; the schema allows them): the record index's
    // text format cuts them, and the rebuild's in-memory index must read them exactly as the cadence reads its files;
    // the June extract then re-sends one of those forms
    const may = path.join(input, 'moi_1998_05.csv');
    const lines = fs.readFileSync(may, 'utf8').split('\n');
    const odd = (k: number, id: string): string => { const c = lines[k]!.split(','); c[0] = `"${id}"`; return (lines[k] = c.join(',')); };
    const resent = odd(5, 'ODD\tTAB1');
    odd(9, 'ODD\nNL1');
    fs.writeFileSync(may, lines.join('\n'));
    fs.appendFileSync(path.join(input, 'moi_1998_06.csv'), `${resent}\n`);
    // a second, different extract for April 1998 (forms that came late, under new record ids): the month is built
    // from both deliveries, by whichever worker takes the second one
    const april = fs.readFileSync(path.join(input, 'moi_1998_04.csv'), 'utf8').split('\n');
    fs.writeFileSync(path.join(input, 'late_moi_1998_04.csv'), `${[april[0], ...april.slice(1, 41).map((l) => `LATE${l}`)].join('\n')}\n`);
    // MoI re-sends the March 1998 extract unchanged under another name: ingested once
    fs.copyFileSync(path.join(input, 'moi_1998_03.csv'), path.join(input, 'resend_moi_1998_03.csv'));
    const files = fs.readdirSync(input).filter((f) => f.endsWith('.csv')).sort((a, b) => (a.slice(-11) < b.slice(-11) ? -1 : a.slice(-11) > b.slice(-11) ? 1 : a < b ? -1 : 1));
    const log = logFor(cadence);
    const store = new Store(cadence);
    files.forEach((f, k) => {
      const r = runMonth({ data: cadence, input: path.join(input, f), log });
      // a month is closed after its last extract
      if (files[k + 1]?.slice(-11) !== f.slice(-11) && !store.isClosed(r.fileMonth)) store.close([r.fileMonth], 'cadence');
    });
    for (const y of [1997, 1998]) await runYear({ data: cadence, year: y, log });
    const r = cli('rebuild', '--data', rebuilt, '--input-dir', input, '--workers', '2');
    if (r.status !== 0) throw new Error(`rebuild failed: ${r.stderr}`);
    stdout = r.stdout;
  }, 120000);

  test('months, years, forms, record index and deliveries are byte-identical to the cadence', () => {
    const keep = (f: string): boolean => /^(months|years|forms|deliveries|state\/ids)\//.test(f);
    const a = snapshot(cadence, keep), b = snapshot(rebuilt, keep);
    expect(Object.keys(b).sort()).toEqual(Object.keys(a).sort());
    expect(Object.keys(a).filter((f) => f.startsWith('months/')).length).toBeGreaterThan(24 * 5);
    expect(Object.keys(a)).toEqual(expect.arrayContaining(['years/1997/manifest.json', 'years/1998/manifest.json', 'years/1998/quality.json']));
    for (const f of Object.keys(a)) expect([f, b[f] === a[f]]).toEqual([f, true]);
  });

  test('the store state matches: every extract ingested once, every month closed, log chain intact', () => {
    const ing = (d: string) => JSON.parse(fs.readFileSync(path.join(d, 'state', 'ingested.json'), 'utf8'));
    expect(ing(rebuilt)).toEqual(ing(cadence));
    expect(Object.keys(new Store(rebuilt).closedMonths())).toEqual(Object.keys(new Store(cadence).closedMonths()));
    expect(new Store(rebuilt).firstMonth()).toBe('1997-01');
    expect(stdout).toMatch(/rebuilt 24 months and 2 years from 26 extracts \(1 already ingested\)/);
    expect(verifyLogChain(new Store(rebuilt).logFile())).toEqual([]);
    const log = fs.readFileSync(new Store(rebuilt).logFile(), 'utf8');
    expect(log).toContain('"event":"unchanged"');
    expect(fs.readdirSync(path.dirname(rebuilt)).filter((f) => f.includes('staging'))).toEqual([]);
  });

  test('a month delivered by two extracts is built from both, however slowly the first one is written', () => {
    // the worker of the late April extract posts its index lines, then writes its forms; the slow-writes hook (see
    // rebuild-worker.ts) holds that write while the other worker delivers the main April extract and builds the month
    const target = path.join(tmpDir(), 'store');
    const r = spawnSync(process.execPath, [CLI, 'rebuild', '--data', target, '--input-dir', input, '--from', '1998-04', '--to', '1998-04', '--workers', '2'], { encoding: 'utf8', env: { ...process.env, MIGSTAT_TEST_SLOW_WRITES_MS: '400' } });
    expect([r.status, r.stderr]).toEqual([0, '']);
    const manifest = JSON.parse(fs.readFileSync(path.join(target, 'months', '1998-04', 'manifest.json'), 'utf8')) as { inputs: { path: string }[]; counts: { forms: number } };
    expect(manifest.inputs.map((x) => x.path)).toEqual([
      expect.stringMatching(/^forms\/1998-04\/0001-late_moi_1998_04-/), expect.stringMatching(/^forms\/1998-04\/0002-moi_1998_04-/),
      expect.stringMatching(/^deliveries\/1998-04--0001-late_moi_1998_04-/), expect.stringMatching(/^deliveries\/1998-04--0002-moi_1998_04-/),
    ]);
    const delivered = fs.readdirSync(path.join(target, 'deliveries')).map((f) => JSON.parse(fs.readFileSync(path.join(target, 'deliveries', f), 'utf8')) as { by_month: Record<string, number> });
    expect(manifest.counts.forms).toBe(delivered.reduce((a, d) => a + (d.by_month['1998-04'] ?? 0), 0));
  });

  test('--dry-run lists what would be built, with the checks of a real run, and writes nothing', () => {
    const parent = tmpDir();
    const target = path.join(parent, 'store');
    const r = cli('rebuild', '--data', target, '--input-dir', input, '--workers', '3', '--dry-run');
    expect([r.status, r.stderr]).toEqual([0, '']);
    // 26 extracts: 24 months, a second April 1998 and a re-sent March 1998
    expect(r.stdout.split('\n').map((l) => l.trim()).filter(Boolean)).toEqual([
      `dry run: nothing written. migstat rebuild would build a new store in ${target} from 26 extracts in ${input}:`,
      'months  24: 1997-01–1998-12 (2 months with more than one extract, delivered in name order)',
      'years   2: 1997–1998 (those whose twelve months all have an extract)',
      'encoding utf-8 (24 months)',
      'workers 3',
    ]);
    expect(fs.readdirSync(parent)).toEqual([]);
    // the same refusals as a real run: a store that is not empty, a month without an extract
    const full = cli('rebuild', '--data', rebuilt, '--input-dir', input, '--dry-run');
    expect(full.status).toBe(1);
    expect(full.stderr.trim()).toMatch(/^migstat: rebuild writes a new store: .* must not exist or be empty/);
    const gap = tmpDir();
    for (const m of ['01', '03']) fs.copyFileSync(path.join(input, `moi_1998_${m}.csv`), path.join(gap, `moi_1998_${m}.csv`));
    expect(cli('rebuild', '--data', target, '--input-dir', gap, '--dry-run').stderr).toMatch(/^migstat: no extract for 1998-02 between 1998-01 and 1998-03/);
    const allowed = cli('rebuild', '--data', target, '--input-dir', gap, '--dry-run', '--allow-missing-months', '--no-years');
    expect(allowed.stdout).toContain('missing 1 (counted as closed when the next extract arrives, --allow-missing-months): 1998-02');
    expect(allowed.stdout).toContain('years   none (--no-years)');
    expect(fs.readdirSync(parent)).toEqual([]);
  });

  test('refuses a store that is not empty, with one clear line', () => {
    const r = cli('rebuild', '--data', rebuilt, '--input-dir', input);
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toMatch(/^migstat: rebuild writes a new store: .* must not exist or be empty/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });

  test('a bad extract stops the rebuild with the file and line, and leaves no half store', () => {
    const bad = tmpDir();
    for (const f of ['moi_1998_01.csv', 'moi_1998_02.csv']) fs.copyFileSync(path.join(input, f), path.join(bad, f));
    const text = fs.readFileSync(path.join(bad, 'moi_1998_02.csv'), 'utf8');
    fs.writeFileSync(path.join(bad, 'moi_1998_02.csv'), text.slice(0, text.length - 30)); // cut off mid-line
    const parent = tmpDir();
    const target = path.join(parent, 'store');
    const r = cli('rebuild', '--data', target, '--input-dir', bad, '--workers', '2');
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toMatch(/^migstat: moi_1998_02\.csv: line \d+: the last line is truncated/);
    expect(fs.readdirSync(parent).filter((f) => f !== 'store')).toEqual([]); // no staging left
    expect(fs.existsSync(target) ? fs.readdirSync(target) : []).toEqual([]);
  });

  test('killed in the middle, the rebuild leaves no store; run again, it gives the same bytes', async () => {
    const parent = tmpDir();
    const target = path.join(parent, 'store');
    const child = spawn(process.execPath, [CLI, 'rebuild', '--data', target, '--input-dir', input, '--workers', '2'], { stdio: 'ignore' });
    // wait until months are being written in the staging directory, then kill -9
    const staging = (): string | undefined => fs.readdirSync(parent).find((f) => f.startsWith('.store.staging-'));
    for (let i = 0; i < 600; i++) {
      const st = staging();
      if (st && fs.existsSync(path.join(parent, st, 'months')) && fs.readdirSync(path.join(parent, st, 'months')).length >= 2) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const killed = new Promise((r) => child.on('exit', r));
    child.kill('SIGKILL');
    await killed;
    expect(staging()).toBeDefined(); // it was killed mid-run
    expect(fs.readdirSync(target).filter((f) => f !== '.lock')).toEqual([]); // nothing under --data
    const r = cli('rebuild', '--data', target, '--input-dir', input, '--workers', '2');
    expect([r.status, r.stderr]).toEqual([0, '']);
    expect(staging()).toBeUndefined();
    const keep = (f: string): boolean => /^(months|years|forms|deliveries|state\/ids)\//.test(f);
    expect(snapshot(target, keep)).toEqual(snapshot(rebuilt, keep));
  }, 120000);

  test('a month without an extract is refused, naming it; with --allow-missing-months its late forms are carried forward', () => {
    // a month M of 1998 whose extract holds forms recorded in M − 1 (late deliveries), and the gap M − 1 between M − 2 and M
    const lateIn = (m: number): number => fs.readFileSync(path.join(input, `moi_1998_${String(m).padStart(2, '0')}.csv`), 'utf8').split('\n').filter((l) => l.split(',')[2]?.startsWith(`1998-${String(m - 1).padStart(2, '0')}`)).length;
    const M = [3, 4, 5, 6, 7, 8, 9, 10, 11, 12].find((m) => lateIn(m) > 0)!;
    expect(M).toBeDefined();
    const mm = (k: number): string => `1998-${String(k).padStart(2, '0')}`;
    const gap = tmpDir();
    for (const k of [M - 2, M]) fs.copyFileSync(path.join(input, `moi_${mm(k).replace('-', '_')}.csv`), path.join(gap, `moi_${mm(k).replace('-', '_')}.csv`));
    const parent = tmpDir();
    const r = cli('rebuild', '--data', path.join(parent, 'store'), '--input-dir', gap, '--workers', '2');
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toMatch(new RegExp(`^migstat: no extract for ${mm(M - 1)} between ${mm(M - 2)} and ${mm(M)}: .*--allow-missing-months`));
    expect(fs.readdirSync(parent).filter((f) => f !== 'store')).toEqual([]);
    const target = path.join(parent, 'store2');
    const ok = cli('rebuild', '--data', target, '--input-dir', gap, '--workers', '2', '--allow-missing-months');
    expect([ok.status, ok.stderr]).toEqual([0, '']);
    expect(fs.readdirSync(path.join(target, 'months'))).toEqual([mm(M - 2), mm(M)]);
    // the forms of M's extract recorded in M − 1 went to M, carried forward, as the flag says
    const delivered = JSON.parse(fs.readFileSync(path.join(target, 'deliveries', fs.readdirSync(path.join(target, 'deliveries')).find((f) => f.startsWith(mm(M)))!), 'utf8')) as { carried_forward: number; by_month: Record<string, number> };
    expect(Object.keys(delivered.by_month)).toEqual([mm(M)]);
    expect(delivered.carried_forward).toBeGreaterThan(0);
    expect(fs.readFileSync(new Store(target).logFile(), 'utf8')).toMatch(new RegExp(`"level":"warn"[^\\n]*"event":"missing_months","months":\\["${mm(M - 1)}"\\]`));
  }, 60000);

  test('--encoding windows-1250:YYYY-MM reads the older extracts as Windows-1250, the later as UTF-8, as the cadence with --encoding does', async () => {
    const enc = tmpDir();
    // January in Windows-1250 with a Č (byte 0xC8) in a record id; February in UTF-8 with the same letter (two bytes)
    const jan = fs.readFileSync(path.join(input, 'moi_1998_01.csv'), 'utf8').split('\n');
    jan[3] = `Č${jan[3]}`;
    fs.writeFileSync(path.join(enc, 'moi_1998_01.csv'), Buffer.from(jan.join('\n'), 'latin1').map((b) => (b === 0x0c ? 0xc8 : b))); // Č is U+010C: latin1 keeps its low byte 0x0C, made 0xC8 (Č in Windows-1250)
    const feb = fs.readFileSync(path.join(input, 'moi_1998_02.csv'), 'utf8').split('\n');
    feb[3] = `Č${feb[3]}`;
    fs.writeFileSync(path.join(enc, 'moi_1998_02.csv'), feb.join('\n'));
    const parent = tmpDir();
    const refused = cli('rebuild', '--data', path.join(parent, 'a'), '--input-dir', enc, '--workers', '2');
    expect(refused.status).toBe(1);
    expect(refused.stderr.trim()).toMatch(/^migstat: moi_1998_01\.csv: line 4: invalid UTF-8 byte 0xc8 .*--encoding windows-1250/);
    const bad = cli('rebuild', '--data', path.join(parent, 'b'), '--input-dir', enc, '--encoding', 'windows-1250:1998');
    expect([bad.status, bad.stderr.trim()]).toEqual([2, 'migstat: --encoding must be utf-8, windows-1250 or windows-1250:YYYY-MM (up to that month), not windows-1250:1998']);
    const target = path.join(parent, 'c');
    const r = cli('rebuild', '--data', target, '--input-dir', enc, '--workers', '2', '--encoding', 'windows-1250:1998-01');
    expect([r.status, r.stderr]).toEqual([0, '']);
    const cadence = tmpDir();
    const store = new Store(cadence);
    for (const [f, encoding] of [['moi_1998_01.csv', 'windows-1250'], ['moi_1998_02.csv', 'utf-8']] as const) {
      const m = runMonth({ data: cadence, input: path.join(enc, f), encoding, log: logFor(cadence) });
      store.close([m.fileMonth], 'cadence');
    }
    const keep = (f: string): boolean => /^(months|forms|deliveries|state\/ids)\//.test(f);
    const a = snapshot(cadence, keep), b = snapshot(target, keep);
    expect(Object.keys(b).sort()).toEqual(Object.keys(a).sort());
    for (const f of Object.keys(a)) expect([f, b[f] === a[f]]).toEqual([f, true]);
    // the letter was read as Č in both files
    const ids = (m: string): string => fs.readFileSync(path.join(target, 'months', m, 'dispositions.csv'), 'utf8');
    expect(ids('1998-01')).toContain(`Č${jan[3]!.slice(1).split(',')[0]}`);
    expect(ids('1998-02')).toContain(`Č${feb[3]!.slice(1).split(',')[0]}`);
  }, 60000);

  test('an extract named for a month that does not exist is refused, as migstat month refuses it', () => {
    const odd = tmpDir();
    fs.copyFileSync(path.join(input, 'moi_1998_01.csv'), path.join(odd, 'moi_1998_01.csv'));
    fs.copyFileSync(path.join(input, 'moi_1998_02.csv'), path.join(odd, 'moi_1998_13.csv'));
    const r = cli('rebuild', '--data', path.join(tmpDir(), 'store'), '--input-dir', odd);
    expect([r.status, r.stderr.trim()]).toEqual([1, 'migstat: moi_1998_13.csv: cannot tell the month from the file name (moi_YYYY_MM.csv, month 01–12)']);
  });
});
