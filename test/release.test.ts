import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import type { Manifest } from '../pipeline/contracts';
import { listFiles, sha256, writeJsonAtomic } from '../pipeline/fsutil';
import { LockError, Store, withLock } from '../pipeline/store';
import { audit } from '../stages/audit';
import {
  DEFAULT_CALENDAR, calendarProblems, isPublicFile, loadCalendar, releaseDue, releaseInstant, type Calendar,
} from '../stages/release';
import { makeStore, tmp as tmpBase, writeResultsDir, yearFiles } from './helpers/results-store';

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
