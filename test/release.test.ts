import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import type { Manifest } from '../pipeline/contracts';
import { listFiles, sha256, writeJsonAtomic } from '../pipeline/fsutil';
import { LockError, Store, withLock } from '../pipeline/store';
import { audit } from '../stages/audit';
import {
  DEFAULT_CALENDAR, calendarProblems, isPublicFile, loadCalendar, parseNow, releaseDue, releaseInstant, type Calendar,
} from '../stages/release';
import { makeStore, tmp as tmpBase, writeLoggedDir, writeResultsDir, yearFiles } from './helpers/results-store';
import { runYear } from '../pipeline/year';
import { main } from '../pipeline/cli';

const tmp = (): string => tmpBase('migstat-release-');

const BEFORE = new Date('2025-07-10T09:59:59Z'); // 11:59:59 in Belgrade (CEST, UTC+2)
const AT = new Date('2025-07-10T10:00:00Z'); // 12:00:00 in Belgrade

describe('calendar', () => {
  test('the bundled calendar is valid and covers reference years 1991-2026', () => {
    const cal = loadCalendar();
    const years = cal.releases.map((r) => r.content.year);
    for (let y = 1991; y <= 2026; y++) expect(years).toContain(y);
    const r = cal.releases.find((x) => x.id === 'IM-2024')!;
    expect(r).toMatchObject({ date: '2025-07-10', time: '12:00', time_zone: 'Europe/Belgrade', fixed_on: '2024-12-01' });
  });

  test('release instants honour Belgrade DST: 12:00 CEST = 10:00Z in July', () => {
    expect(releaseInstant({ date: '2025-07-10', time: '12:00', time_zone: 'Europe/Belgrade' }).toISOString()).toBe('2025-07-10T10:00:00.000Z');
    expect(releaseInstant({ date: '2025-12-25', time: '12:00', time_zone: 'Europe/Belgrade' }).toISOString()).toBe('2025-12-25T11:00:00.000Z');
  });

  test('semantic checks name the problem', () => {
    const good = JSON.parse(fs.readFileSync(DEFAULT_CALENDAR, 'utf8')) as Calendar;
    const cal: Calendar = { releases: good.releases.slice(0, 3).map((r) => ({ ...r })) };
    expect(calendarProblems(cal)).toEqual([]);
    cal.releases[0]!.date = '1992-07-11';
    cal.releases[1]!.fixed_on = '1992-11-30';
    cal.releases[2]!.id = cal.releases[0]!.id;
    const p = calendarProblems(cal).join('\n');
    expect(p).toMatch(/due on 1992-07-10 \(10 July of the following year\), not 1992-07-11/);
    expect(p).toMatch(/fixed_on must be 1992-12-01/);
    expect(p).toMatch(/id IM-1991 is used twice/);
  });

  test('a divergence announced in advance allows another date; the schema rejects bad shapes', () => {
    const dir = tmp();
    const base = loadCalendar().releases.find((r) => r.id === 'IM-2024')!;
    const div = { ...base, date: '2025-07-14', divergence: { reason: 'Public holiday moved by government decree', announced_on: '2025-03-01' } };
    expect(calendarProblems({ releases: [div] })).toEqual([]);
    expect(calendarProblems({ releases: [{ ...div, divergence: { ...div.divergence, announced_on: '2025-07-12' } }] }).join()).toMatch(/announced before 2025-07-10/);
    const f = path.join(dir, 'cal.json');
    fs.writeFileSync(f, JSON.stringify({ releases: [{ ...base, time: '25:00' }] }));
    expect(() => loadCalendar(f)).toThrow(/does not match schema calendar.*\/releases\/0\/time/);
    fs.writeFileSync(f, JSON.stringify({ releases: [{ ...base, date: '2025-07-11' }] }));
    expect(() => loadCalendar(f)).toThrow(/due on 2025-07-10/);
  });

  test('only public aggregate files go out', () => {
    expect(isPublicFile('tables/territory.csv')).toBe(true);
    expect(isPublicFile('tables/territory_imputed.csv')).toBe(false);
    expect(isPublicFile('sdmx/structure.xml')).toBe(true);
    expect(isPublicFile('events.csv')).toBe(false);
    expect(isPublicFile('changes.csv')).toBe(false);
    expect(isPublicFile('logs/migstat.jsonl')).toBe(false);
    expect(isPublicFile('forms/2024-01/a.csv')).toBe(false);
  });
});

describe('releaseDue', () => {
  test('embargo: nothing before 12:00 Belgrade; published at 12:00; idempotent; months closed', () => {
    const store = makeStore();
    const r0 = releaseDue({ store, now: BEFORE });
    expect(r0.published).toEqual([]);
    expect(r0.notYetDue).toContain('IM-2024');
    expect(r0.notReady).toEqual([]);
    expect(r0.predatesStore).toContain('IM-2023');
    expect(fs.existsSync(store.publishedDir('IM-2024'))).toBe(false);
    expect(fs.existsSync(store.publishedDir()) ? fs.readdirSync(store.publishedDir()) : []).toEqual([]);
    expect(store.isClosed('2024-06')).toBe(false);

    const r1 = releaseDue({ store, now: AT });
    expect(r1.published).toEqual(['IM-2024']);
    expect(r1.notReady).toEqual([]);
    const pub = store.publishedDir('IM-2024');
    expect(listFiles(pub)).toEqual([
      'manifest.json', 'quality.json', 'report.html', 'sdmx/data.csv', 'sdmx/structure.xml', 'tables/move_type.csv', 'tables/territory.csv',
    ]);
    const m = JSON.parse(fs.readFileSync(path.join(pub, 'manifest.json'), 'utf8')) as Manifest;
    expect(m.kind).toBe('release');
    expect(m.id).toBe('IM-2024');
    expect(m.parameters.release_instant).toBe('2025-07-10T10:00:00.000Z');
    for (const o of m.outputs) expect(sha256(fs.readFileSync(path.join(pub, o.path)))).toBe(o.sha256);
    expect(m.outputs.find((o) => o.path === 'tables/territory.csv')!.rows).toBe(1);
    for (let i = 1; i <= 12; i++) expect(store.closedMonths()[`2024-${String(i).padStart(2, '0')}`]).toEqual({ closed_by: 'IM-2024' });
    expect(store.isClosed('2025-01')).toBe(false);

    const before = fs.readFileSync(path.join(pub, 'manifest.json'));
    const r2 = releaseDue({ store, now: new Date('2025-07-10T10:05:00Z') });
    expect(r2.published).toEqual([]);
    expect(r2.alreadyPublished).toEqual(['IM-2024']);
    expect(fs.readFileSync(path.join(pub, 'manifest.json'))).toEqual(before);
    expect(audit(store)).toMatchObject({ ok: true, problems: [] });
  });

  test('the release manifest is deterministic: the same content published in another store is byte-identical', () => {
    const a = makeStore();
    const b = makeStore();
    releaseDue({ store: a, now: AT });
    releaseDue({ store: b, now: new Date('2026-01-01T00:00:00Z') });
    const ma = fs.readFileSync(path.join(a.publishedDir('IM-2024'), 'manifest.json'), 'utf8');
    const mb = fs.readFileSync(path.join(b.publishedDir('IM-2024'), 'manifest.json'), 'utf8');
    expect(ma).toBe(mb);
  });

  test('a provisional year is not ready and nothing is written', () => {
    const store = makeStore(2024, { provisional: true });
    const r = releaseDue({ store, now: AT });
    expect(r.published).toEqual([]);
    expect(r.notReady).toEqual([{ id: 'IM-2024', why: expect.stringMatching(/provisional/) }]);
    expect(fs.existsSync(store.publishedDir('IM-2024'))).toBe(false);
    expect(store.isClosed('2024-12')).toBe(false);
  });

  test('missing year results and altered year results are not ready', () => {
    const store = new Store(tmp());
    store.ensure();
    store.setFirstMonth('2024-01');
    expect(releaseDue({ store, now: AT }).notReady).toEqual([{ id: 'IM-2024', why: expect.stringMatching(/years\/2024 does not exist/) }]);
    writeResultsDir(store.yearDir(2024), 'year', '2024', yearFiles(2024));
    fs.appendFileSync(path.join(store.yearDir(2024), 'tables', 'territory.csv'), '1998-,region,RS11,T,1,1,0\n');
    const r = releaseDue({ store, now: AT });
    expect(r.notReady).toEqual([{ id: 'IM-2024', why: expect.stringMatching(/integrity check.*altered years\/2024\/tables\/territory.csv/) }]);
    expect(fs.existsSync(store.publishedDir('IM-2024'))).toBe(false);
  });

  test('while another run holds the lock, release writes nothing and says so', () => {
    const store = makeStore();
    withLock(store, 'month --input x', () => {
      expect(() => releaseDue({ store, now: AT })).toThrow(LockError);
    });
    expect(fs.existsSync(store.publishedDir('IM-2024'))).toBe(false);
    expect(releaseDue({ store, now: AT }).published).toEqual(['IM-2024']);
  });

  test('an interrupted publication leaves nothing visible under published/ID and a rerun completes it', () => {
    const store = makeStore();
    // what a run killed in the middle of copying leaves behind: a hidden staging directory
    const staging = path.join(store.publishedDir(), '.IM-2024.staging-99999');
    fs.mkdirSync(path.join(staging, 'tables'), { recursive: true });
    fs.writeFileSync(path.join(staging, 'tables', 'territory.csv'), 'series,lev');
    expect(fs.existsSync(store.publishedDir('IM-2024'))).toBe(false);
    expect(fs.readdirSync(store.publishedDir()).filter((n) => !n.startsWith('.'))).toEqual([]);
    const r = releaseDue({ store, now: AT });
    expect(r.published).toEqual(['IM-2024']);
    expect(fs.readdirSync(store.publishedDir())).toEqual(['IM-2024']);
    expect(audit(store).ok).toBe(true);
  });

  test('a failure in the middle of copying leaves nothing under published/ID', () => {
    const store = makeStore();
    // the manifest is written last, after every file was copied: make it fail there
    const opts = { store, now: AT } as Parameters<typeof releaseDue>[0];
    Object.defineProperty(opts, 'codeVersion', { get() { throw new Error('disk full (simulated)'); } });
    expect(() => releaseDue(opts)).toThrow(/disk full/);
    expect(fs.readdirSync(store.publishedDir()).filter((n) => !n.startsWith('.'))).toEqual([]);
    expect(fs.existsSync(store.publishedDir('IM-2024'))).toBe(false);
    expect(store.isClosed('2024-01')).toBe(false);
    expect(fs.existsSync(store.p('.lock'))).toBe(false);
    const r = releaseDue({ store, now: AT });
    expect(r.published).toEqual(['IM-2024']);
    expect(fs.readdirSync(store.publishedDir())).toEqual(['IM-2024']);
  });

  test('two concurrent processes never both publish', async () => {
    const store = makeStore();
    const dir = tmp();
    const script = path.join(dir, 'child.js');
    const root = path.resolve(__dirname, '..');
    fs.writeFileSync(script, `
const fs = require('fs');
const swc = require(${JSON.stringify(require.resolve('@swc/core'))});
require.extensions['.ts'] = (m, f) => {
  const { code } = swc.transformSync(fs.readFileSync(f, 'utf8'), { filename: f, jsc: { target: 'es2022', parser: { syntax: 'typescript' } }, module: { type: 'commonjs' } });
  m._compile(code, f);
};
const { Store } = require(${JSON.stringify(path.join(root, 'pipeline/store.ts'))});
const { releaseDue } = require(${JSON.stringify(path.join(root, 'stages/release.ts'))});
const start = Number(process.argv[3]);
while (Date.now() < start) {}
try {
  const r = releaseDue({ store: new Store(process.argv[2]), now: new Date('2025-07-10T10:00:00Z') });
  process.stdout.write(JSON.stringify({ published: r.published, already: r.alreadyPublished }));
} catch (e) {
  process.stdout.write(JSON.stringify({ error: e.constructor.name + ': ' + e.message }));
}
`);
    const run = (start: number): Promise<{ published?: string[]; already?: string[]; error?: string }> =>
      new Promise((resolve, reject) => {
        const c = spawn(process.execPath, [script, store.root, String(start)], { stdio: ['ignore', 'pipe', 'inherit'] });
        let out = '';
        c.stdout.on('data', (d) => { out += d; });
        c.on('error', reject);
        c.on('close', () => { try { resolve(JSON.parse(out)); } catch { reject(new Error(`child output: ${out}`)); } });
      });
    const start = Date.now() + 3000;
    const results = await Promise.all([run(start), run(start)]);
    const publishedBy = results.filter((r) => r.published?.includes('IM-2024'));
    expect(publishedBy).toHaveLength(1);
    for (const r of results) if (!r.published?.includes('IM-2024')) expect(r.error ?? `already:${r.already}`).toMatch(/LockError|already:IM-2024/);
    expect(fs.readdirSync(store.publishedDir())).toEqual(['IM-2024']);
    expect(audit(store)).toMatchObject({ ok: true });
    const logged = fs.readFileSync(store.logFile(), 'utf8').split('\n').filter((l) => l.includes('"event":"published"'));
    expect(logged).toHaveLength(1);
  });

  test('a published directory that appears before its release time is an embargo breach', () => {
    const store = makeStore();
    writeJsonAtomic(path.join(store.publishedDir('IM-2024'), 'manifest.json'), {});
    const r = releaseDue({ store, now: BEFORE });
    expect(r.notReady).toEqual([{ id: 'IM-2024', why: expect.stringMatching(/embargo breach/) }]);
  });
});

describe('what a release refuses (review of 26 Nov)', () => {
  /** A store whose year's manifest names the manifest of months/2024-12, as migstat year writes it. */
  const storeWithMonth = (): Store => {
    const store = makeStore();
    const month = writeLoggedDir(store, 'month', '2024-12', { 'tables/territory.csv': 'series,level,code,sex,immigrants,emigrants,net\n1998-,republic,RS,T,8,7,1\n' });
    writeLoggedDir(store, 'year', '2024', yearFiles(2024), [{ path: 'months/2024-12/manifest.json', sha256: month }]);
    return store;
  };

  test('annual results older than their months are not published (a month rebuilt since)', () => {
    expect(releaseDue({ store: storeWithMonth(), now: AT }).published).toEqual(['IM-2024']);
    const store = storeWithMonth();
    // a late extract for the open December: the month is built again, the year is not
    writeLoggedDir(store, 'month', '2024-12', { 'tables/territory.csv': 'series,level,code,sex,immigrants,emigrants,net\n1998-,republic,RS,T,9,7,2\n' });
    const r = releaseDue({ store, now: AT });
    expect(r.published).toEqual([]);
    expect(r.notReady).toEqual([{ id: 'IM-2024', why: 'years/2024 is out of date: months/2024-12 changed after the annual results were built; run "migstat year --year 2024" again' }]);
    expect(fs.existsSync(store.publishedDir('IM-2024'))).toBe(false);
    expect(store.isClosed('2024-12')).toBe(false);
    // and the audit says so
    expect(audit(store).problems).toEqual([{ path: 'years/2024', problem: 'stale', detail: 'years/2024 was built from months/2024-12/manifest.json as it was then; it has changed since: run "migstat year --year 2024" again' }]);
  });

  test('a content is published once: renamed in the calendar, it is not published again', () => {
    const store = makeStore();
    expect(releaseDue({ store, now: AT }).published).toEqual(['IM-2024']);
    const cal = JSON.parse(fs.readFileSync(DEFAULT_CALENDAR, 'utf8')) as Calendar;
    cal.releases.find((r) => r.id === 'IM-2024')!.id = 'IM-2024-R';
    const f = path.join(tmp(), 'calendar.json');
    fs.writeFileSync(f, JSON.stringify(cal));
    const r = releaseDue({ store, now: AT, calendarFile: f });
    expect(r.notReady).toEqual([{ id: 'IM-2024-R', why: 'the annual results of 2024 were already published as IM-2024 (published/IM-2024); a content is released once' }]);
    expect(fs.readdirSync(store.publishedDir())).toEqual(['IM-2024']);
  });

  test('a published year is final: migstat year refuses to build it again', async () => {
    const store = makeStore();
    releaseDue({ store, now: AT });
    const before = fs.readFileSync(path.join(store.yearDir(2024), 'manifest.json'));
    await expect(runYear({ data: store.root, year: 2024, log: { log: () => undefined } })).rejects.toThrow('year 2024 was published as IM-2024 (published/IM-2024): published results are final (ESMS 17.2), its annual results are not built again');
    expect(fs.readFileSync(path.join(store.yearDir(2024), 'manifest.json'))).toEqual(before);
  });

  test('a store that has no months (a wrong --data) is an error, not "before this store"; nothing is created', () => {
    const dir = path.join(tmp(), 'not-a-store');
    expect(() => releaseDue({ store: new Store(dir), now: AT })).toThrow(`${dir} does not exist: is --data the office's store?`);
    expect(fs.existsSync(dir)).toBe(false);
  });

  test('calendar errors fit on one line, first problem first; an unknown property is named', () => {
    const base = loadCalendar().releases.slice(0, 3);
    const f = path.join(tmp(), 'cal.json');
    fs.writeFileSync(f, JSON.stringify({ releases: [base[0], base[1], { ...base[0] }] }));
    expect(() => loadCalendar(f)).toThrow(`${f}: releases[2] (IM-1991): id IM-1991 is used twice (also releases[0]) (and 1 more: releases[2] (IM-1991): the content annual_internal_migration:1991 is released twice (also IM-1991))`);
    fs.writeFileSync(f, JSON.stringify({ releases: [{ ...base[0], tiem: '12:00' }] }));
    expect(() => loadCalendar(f)).toThrow(/must NOT have additional properties: 'tiem'/);
  });

  test('--now needs its offset and cannot be later than the clock', async () => {
    const store = makeStore();
    const run = async (now: string): Promise<[number, string]> => {
      const err: string[] = [];
      const spy = jest.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => { err.push(String(s)); return true; });
      try {
        return [await main(['node', 'migstat', 'release', '--due', '--now', now, '--data', store.root]), err.join('')];
      } finally {
        spy.mockRestore();
      }
    };
    expect(await run('10 July 2025')).toEqual([2, 'migstat: --now must be an ISO 8601 date or time (without an offset it is Belgrade time), e.g. 2025-07-10T12:00 or 2025-07-10T10:00:00Z, not 10 July 2025\n']);
    expect(await run('2999-07-10T12:00:00+02:00')).toEqual([2, 'migstat: --now 2999-07-10T12:00:00+02:00 is later than the clock: releases are never published ahead of time (--now replays past runs)\n']);
    // without an offset: Belgrade time, whatever the machine's zone (11:59 is before the 12:00 release)
    expect(await run('2025-07-10T11:59')).toEqual([0, '']);
    expect(fs.existsSync(store.publishedDir('IM-2024'))).toBe(false);
    expect(await run('2025-07-10T12:00')).toEqual([0, '']);
    expect(fs.existsSync(store.publishedDir('IM-2024'))).toBe(true);
    expect(parseNow('2025-07-10T12:00:00+0200')!.toISOString()).toBe('2025-07-10T10:00:00.000Z');
    expect(parseNow('2025-12-25')!.toISOString()).toBe('2025-12-24T23:00:00.000Z');
    expect(parseNow('2025-13-01')).toBeUndefined();
  });
});
