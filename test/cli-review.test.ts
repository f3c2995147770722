/**
 * What a newcomer met when following the README (review of 26 Nov, session 8): each case here was found wrong
 * and is now one clear answer — a wrong --data, a --month that contradicts the file name, a month before the
 * store's first month, a rollback reported as "nothing changed", a year on year never compared reported as
 * "0 flags", release errors on stdout, a replay with an earlier --now taken for an embargo breach, and
 * explain blaming the events for a year that is only stale.
 * The CLI runs compiled (dist/), as a user runs it.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { generate } from '../fixtures/generator';
import { tmpDir } from './helpers/store';

const CLI = path.join(__dirname, '..', 'bin', 'migstat.js');
const run = (args: string[], env: Record<string, string> = {}) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });

describe('the CLI as a newcomer meets it', () => {
  const gen = tmpDir();
  let files: string[] = [];
  beforeAll(() => {
    files = generate({ year: 2023, out: gen, seed: 8, records: 1500 }).files.filter((f) => f.endsWith('.csv')).sort();
  });

  test('audit, close and year on a --data that is not a store: one line, exit 1, nothing created', () => {
    const nope = path.join(tmpDir(), 'no-store');
    for (const args of [['audit'], ['close', '--month', '2023-01'], ['year', '--year', '2023']]) {
      const r = run([...args, '--data', nope]);
      expect([args[0], r.status, r.stderr]).toEqual([args[0], 1, `migstat: ${nope} does not exist: is --data the office's store?\n`]);
    }
    expect(fs.existsSync(nope)).toBe(false);
    // a directory of extracts is not a store either
    expect(run(['audit', '--data', gen]).stderr).toBe(`migstat: ${gen} has no processed months (no state/first-month.json): is --data the office's store?\n`);
  });

  test('month: --month contradicting the file name is refused; a month before the store\'s first month says so', () => {
    const data = tmpDir();
    const r = run(['month', '--data', data, '--input', files[3]!, '--month', '2023-05']);
    expect([r.status, r.stderr]).toEqual([1, 'migstat: moi_2023_04.csv: the file name says 2023-04, --month says 2023-05: leave out --month, or rename the file if the name is wrong\n']);
    expect(run(['month', '--data', data, '--input', files[3]!]).status).toBe(0);
    const early = run(['month', '--data', data, '--input', files[1]!]);
    expect(early.status).toBe(1);
    expect(early.stderr).toMatch(/^migstat: month 2023-02 is before this store's first month 2023-04: .*migstat rebuild\)\n$/);
    expect(run(['close', '--data', data, '--month', '2023-02']).stderr).toMatch(/month 2023-02 has no results in .*: it is before this store's first month 2023-04/);
  });

  test('a rollback is said, naming the interrupted extract, also when the extract given was already ingested', () => {
    const data = tmpDir();
    expect(run(['month', '--data', data, '--input', files[0]!]).status).toBe(0);
    // a run of February killed at its 10th crash-relevant write, before its commit
    expect(run(['month', '--data', data, '--input', files[1]!], { MIGSTAT_FAULT_AFTER_WRITES: '10' }).signal).toBe('SIGKILL');
    const refused = run(['close', '--data', data, '--month', '2023-01']);
    expect(refused.stderr).toMatch(/run "migstat month" again with its extract \(moi_2023_02\.csv\)/);
    const r = run(['month', '--data', data, '--input', files[0]!]);
    expect(r.status).toBe(0);
    // February's results were the killed run's alone (removed); January is built again if it took late forms
    expect(r.stdout).toMatch(/^an interrupted run of moi_2023_02\.csv was rolled back \((month 2023-01 built again without it; )?the results of 2023-02, which were its alone, removed\): run moi_2023_02\.csv again\nmoi_2023_01\.csv was already ingested: nothing new in it\n$/);
  });

  test('year: a year on year not compared is said so, not "0 flags"; release errors go to stderr; a replay is no embargo breach', () => {
    const data = tmpDir();
    for (const f of files) expect(run(['month', '--data', data, '--input', f]).status).toBe(0);
    const early = run(['release', '--due', '--data', data, '--now', '2024-07-10T12:00']);
    expect([early.status, early.stderr]).toEqual([1, 'migstat: IM-2023 not ready: years/2023 does not exist: run "migstat year --year 2023" first\n']);
    expect(early.stdout).toMatch(/not ready: 1\n$/);
    const y = run(['year', '--data', data, '--year', '2023']);
    expect(y.stdout).toMatch(/^year 2023: \d+ events, identity holds, year on year not compared: no annual results of 2022 in the store\n$/);
    expect(run(['release', '--due', '--data', data, '--now', '2024-07-10T12:00']).stdout).toMatch(/^published: IM-2023;/);
    // replaying the morning before: published on time, as the log shows
    const replay = run(['release', '--due', '--data', data, '--now', '2024-07-10T09:00']);
    expect([replay.status, replay.stderr]).toEqual([0, '']);
    expect(replay.stdout).toMatch(/already published: 1/);
  });

  test('explain on a provisional year: the months it summed; a month changed since: named stale, with the command that rebuilds it', () => {
    const data = tmpDir();
    for (const f of files.slice(0, 3)) expect(run(['month', '--data', data, '--input', f]).status).toBe(0);
    expect(run(['year', '--data', data, '--year', '2023', '--provisional']).stdout).toMatch(/year on year not compared: a provisional year/);
    // April's extract, with one form recorded in the still open March (a late delivery): March is built again
    const april = path.join(tmpDir(), 'moi_2023_04.csv');
    const march = fs.readFileSync(files[2]!, 'utf8').split('\n');
    fs.writeFileSync(april, `${fs.readFileSync(files[3]!, 'utf8')}LATE${march[1]}\n`);
    const out = run(['month', '--data', data, '--input', april]).stdout.split('\n');
    expect(out[0]).toMatch(/months 2023-03, 2023-04 processed/);
    // the delivery's counts and the year made out of date, on the screen
    expect(out[1]).toMatch(/^ {2}\d+ forms read: \d+ accepted \(0 carried forward from closed months\), \d+ duplicates?, \d+ quarantined at delivery \(quarantine\.csv of the month\), 0 corrections to closed months withheld$/);
    expect(out).toContain('  years/2023 is out of date: this run changed 2023-03, 2023-04; build it again (migstat year --year 2023 --provisional)');
    const e = run(['audit', '--data', data, '--explain', '2023:republic:RS:T:immigrants']);
    const x = JSON.parse(e.stdout) as { months: string[]; problems: { problem: string; path: string; detail: string }[] };
    expect(x.months).toEqual(['2023-01', '2023-02', '2023-03']); // not April, which the provisional year never summed
    expect(x.problems.map((p) => [p.problem, p.path])).toEqual([['stale', 'years/2023']]);
    expect(x.problems[0]!.detail).toMatch(/months\/2023-03\/manifest\.json .*run "migstat year --year 2023 --provisional" again$/);
    expect([e.status, e.stderr.split('\n')[0]]).toEqual([1, expect.stringMatching(/^migstat: 1 integrity problem\(s\) in the files read \(stale years\/2023\)/)]);
  });

  test('usage errors: one "migstat:" line, exit 2; help and --version; file-system errors in words', () => {
    const none = run([]);
    expect([none.status, none.stderr.split('\n')[0]]).toEqual([2, 'Usage: migstat [options] [command]']);
    expect(none.stderr).toContain('rebuild [options]');
    expect(run(['--version']).stdout).toBe(`${(JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')) as { version: string }).version}\n`);
    for (const [args, line] of [
      [['frob'], "migstat: unknown command 'frob'"],
      [['month'], "migstat: required option '--input <file>' not specified"],
      [['generate', '--year', '2023', '--out', tmpDir(), '--records', '1e3'], 'migstat: --records must be a whole number from 1, not 1e3'],
      [['generate', '--year', '2023', '--out', tmpDir(), '--seed', 'x'], 'migstat: --seed must be a whole number, not x'],
      [['audit', '--data', gen, '--explain', '2023:city:RS:T:immigrants'], 'migstat: --explain: the level is one of republic, region, area, municipality, not city'],
      [['audit', '--data', gen, '--explain', '2023:republic:RS:T:net'], 'migstat: --explain: the measure is immigrants or emigrants (net is their difference: explain each), not net'],
      [['release', '--due', '--data', gen, '--now', '2024-02-30T12:00'], expect.stringMatching(/^migstat: --now must be an ISO 8601 date/)],
      [['rebuild', '--data', path.join(tmpDir(), 's'), '--input-dir', gen, '--from', '2023-06', '--to', '2023-03'], 'migstat: --from 2023-06 is after --to 2023-03'],
    ] as const) {
      const r = run([...args]);
      expect([args[0], r.status, r.stderr.trimEnd()]).toEqual([args[0], 2, line]);
    }
    const file = path.join(tmpDir(), 'a-file');
    fs.writeFileSync(file, 'x');
    const r = run(['month', '--data', file, '--input', files[0]!]);
    expect([r.status, r.stderr]).toEqual([1, `migstat: ${file} is a file where a directory is needed (check --data, --out and --input-dir)\n`]);
    // a rebuild that fails leaves no directory it made
    const parent = tmpDir();
    const bad = tmpDir();
    fs.writeFileSync(path.join(bad, 'moi_2023_01.csv'), 'not,an,extract\n');
    expect(run(['rebuild', '--data', path.join(parent, 'store'), '--input-dir', bad]).status).toBe(1);
    expect(fs.readdirSync(parent)).toEqual([]);
  });

  test('a month whose own extract has not come is not closed by mistake; a mislabelled extract is refused (statistician\'s review)', () => {
    const data = tmpDir();
    expect(run(['month', '--data', data, '--input', files[0]!]).status).toBe(0);
    // March before February, with a form recorded in February (a late delivery): February is built from it alone
    const march = path.join(tmpDir(), 'moi_2023_03.csv');
    fs.writeFileSync(march, `${fs.readFileSync(files[2]!, 'utf8')}LATE${fs.readFileSync(files[1]!, 'utf8').split('\n')[1]}\n`);
    expect(run(['month', '--data', data, '--input', march]).stdout).toMatch(/^moi_2023_03\.csv: months 2023-02, 2023-03 processed \(2023-02: \d+ events?, its own extract not yet received; 2023-03: \d+ events?\)\n {2}\d+ forms read: \d+ accepted/);
    const close = run(['close', '--data', data, '--month', '2023-02']);
    expect([close.status, close.stderr]).toEqual([1, 'migstat: month 2023-02 has no extract of its own yet: its results hold only forms carried in from other months\' extracts, and once it is closed its extract is refused; run its extract first, or give --without-extract if it will not come\n']);
    expect(run(['month', '--data', data, '--input', files[1]!]).status).toBe(0);
    expect(run(['close', '--data', data, '--month', '2023-02']).stdout).toBe('month 2023-02 closed\n');
    // April's forms under a name without a month, given as May's: nothing ingested
    const odd = path.join(tmpDir(), 'extract.csv');
    fs.copyFileSync(files[3]!, odd);
    const r = run(['month', '--data', data, '--input', odd, '--month', '2023-05']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^migstat: extract\.csv: only 0 of its \d+ forms are recorded in 2023-05, the extract's month, and \d+ in 2023-04: is it the extract of 2023-04\? Nothing was ingested \(a supplement of late forms is taken with --allow-other-months\)\n$/);
    expect(fs.readdirSync(path.join(data, 'deliveries')).filter((f) => f.startsWith('2023-05'))).toEqual([]);
    // taken when the operator says it is a supplement of late forms: they go to their open month, and the record says so
    const ok = run(['month', '--data', data, '--input', odd, '--month', '2023-05', '--allow-other-months']);
    expect([ok.status, ok.stdout.split('\n')[0]]).toEqual([0, expect.stringMatching(/^extract\.csv: months (2023-03, )?2023-04, 2023-05 processed/)]);
    const rec = JSON.parse(fs.readFileSync(path.join(data, 'deliveries', fs.readdirSync(path.join(data, 'deliveries')).find((f) => f.startsWith('2023-05'))!), 'utf8')) as { allow_other_months?: boolean };
    expect(rec.allow_other_months).toBe(true);
  });

  test('a month whose extract gives no form (all duplicates) is built with 0 events; a supplement is not its month\'s own extract (review)', () => {
    const data = tmpDir();
    expect(run(['month', '--data', data, '--input', files[0]!]).status).toBe(0);
    expect(run(['close', '--data', data, '--month', '2023-01']).status).toBe(0);
    // "February's extract" of 30 forms registered in March: every one quarantined, February has no form
    const feb = path.join(tmpDir(), 'moi_2023_02.csv');
    const mar = fs.readFileSync(files[2]!, 'utf8').split('\n');
    fs.writeFileSync(feb, `${[mar[0], ...mar.slice(1).filter((l) => l.split(',')[2]?.startsWith('2023-03')).slice(0, 30)].join('\n')}\n`);
    const r = run(['month', '--data', data, '--input', feb]);
    expect([r.status, r.stderr]).toEqual([0, '']);
    expect(r.stdout).toMatch(/^moi_2023_02\.csv: months 2023-02 processed \(2023-02: 0 events\)\n/);
    const q = JSON.parse(fs.readFileSync(path.join(data, 'months', '2023-02', 'quality.json'), 'utf8')) as { events: number; quarantined: number; forms_read: number; identity: { holds: boolean } };
    expect([q.events, q.quarantined, q.forms_read, q.identity.holds]).toEqual([0, 30, 30, true]);
    // a supplement of March's forms taken as April's with --allow-other-months: April still waits for its own extract
    const supp = path.join(tmpDir(), 'supp_moi_2023_04.csv');
    fs.writeFileSync(supp, fs.readFileSync(files[2]!, 'utf8').replace(/\nR2023/g, '\nSR2023').replace(/\nD2023/g, '\nSD2023'));
    expect(run(['month', '--data', data, '--input', supp]).stderr).toMatch(/is it the extract of 2023-03\?/);
    const ok = run(['month', '--data', data, '--input', supp, '--allow-other-months']);
    expect(ok.stdout).toMatch(/2023-04: \d+ events?, its own extract not yet received/);
    expect(run(['close', '--data', data, '--month', '2023-04']).stderr).toMatch(/month 2023-04 has no extract of its own yet/);
  });
});
