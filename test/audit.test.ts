import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MONTH_FILE_HEADERS, TABLE_HEADERS } from '../pipeline/contracts';
import { objectsToCsv, readCsvText, type Row } from '../pipeline/csv';
import { RunLog, verifyLogChain } from '../pipeline/log';
import { ROOT } from '../pipeline/paths';
import { Store } from '../pipeline/store';
import { audit, explain } from '../stages/audit';
import { releaseDue } from '../stages/release';
import { loadClassification } from '../stages/territory';
import { makeStore, writeResultsDir } from './helpers/results-store';

const AT = new Date('2025-07-10T10:00:00Z');

function publishedStore(): Store {
  const store = makeStore();
  const log = new RunLog(store.logFile(), 'test-run');
  log.log({ stage: 'year', event: 'done', year: 2024 });
  releaseDue({ store, now: AT, log });
  log.log({ stage: 'audit', event: 'start' });
  return store;
}

describe('audit: integrity', () => {
  test('a clean store audits ok', () => {
    const store = publishedStore();
    const r = audit(store);
    expect(r.problems).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.checked).toBe(8 + 6); // years/2024 (8 files) + published/IM-2024 (6 public files)
  });

  test('one byte changed in a published file → altered, naming the file', () => {
    const store = publishedStore();
    const f = path.join(store.publishedDir('IM-2024'), 'tables', 'territory.csv');
    const b = fs.readFileSync(f);
    b[b.length - 2] = b[b.length - 2] === 0x31 ? 0x32 : 0x31;
    fs.writeFileSync(f, b);
    const r = audit(store);
    expect(r.ok).toBe(false);
    expect(r.problems).toEqual([{ path: 'published/IM-2024/tables/territory.csv', problem: 'altered', detail: expect.stringMatching(/SHA-256/) }]);
  });

  test('a deleted file → missing; an added file → unexpected', () => {
    const store = publishedStore();
    fs.rmSync(path.join(store.publishedDir('IM-2024'), 'quality.json'));
    fs.writeFileSync(path.join(store.publishedDir('IM-2024'), 'tables', 'extra.csv'), 'a\n1\n');
    const r = audit(store);
    expect(r.problems).toEqual([
      { path: 'published/IM-2024/quality.json', problem: 'missing', detail: expect.any(String) },
      { path: 'published/IM-2024/tables/extra.csv', problem: 'unexpected', detail: expect.any(String) },
    ]);
  });

  test('a file altered together with its manifest is caught through the log', () => {
    const store = publishedStore();
    const dir = store.publishedDir('IM-2024');
    const files = Object.fromEntries(
      JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')).outputs.map((o: { path: string }) => [o.path, fs.readFileSync(path.join(dir, o.path), 'utf8')]),
    ) as Record<string, string>;
    files['tables/territory.csv'] = files['tables/territory.csv']!.replace(',8,7,1', ',9,7,2');
    writeResultsDir(dir, 'release', 'IM-2024', files);
    const r = audit(store);
    expect(r.problems.map((p) => [p.path, p.problem])).toEqual([['published/IM-2024/manifest.json', 'altered']]);
  });

  test('an edited log line → log_chain; a directory without manifest → no_manifest', () => {
    const store = publishedStore();
    const lines = fs.readFileSync(store.logFile(), 'utf8').split('\n');
    lines[0] = lines[0]!.replace('"year":2024', '"year":2023');
    fs.writeFileSync(store.logFile(), lines.join('\n'));
    fs.mkdirSync(store.monthDir('2024-05'), { recursive: true });
    fs.writeFileSync(path.join(store.monthDir('2024-05'), 'events.csv'), 'x\n');
    const r = audit(store);
    expect(r.problems).toEqual([
      { path: 'months/2024-05', problem: 'no_manifest', detail: expect.any(String) },
      { path: 'logs/migstat.jsonl', problem: 'log_chain', detail: expect.stringMatching(/line 2/) },
    ]);
  });

  test('a leftover staging directory is reported', () => {
    const store = publishedStore();
    fs.mkdirSync(path.join(store.p('years'), '.2025.staging-4242'));
    expect(audit(store).problems).toEqual([{ path: 'years/.2025.staging-4242', problem: 'unexpected', detail: expect.stringMatching(/interrupted/) }]);
  });
});

// ---------------------------------------------------------------------------------------------------------
// Lineage: explain() re-traces a cell to its events.

type Ev = { id: string; from: string; to: string; sex: '1' | '2'; km?: boolean };

function writeMonth(store: Store, month: string, evs: Ev[], table?: Row[]): void {
  const events = evs.map((e) => ({
    record_id: e.id, registration_date: `${month}-05`, reference_month: month, from_municipality: e.from, to_municipality: e.to,
    origin_km: e.km ? '1' : '0', sex: e.sex, age: '30', age_group: 'Y30T34', activity_group: 'active', nationality: '01',
    move_type: 'between_areas', delay_months: '0', carried_forward: '0', provenance: 'reported', donor_imputed: '0',
  }));
  const violations = evs.filter((_, i) => i % 3 === 0).map((e) => ({ record_id: e.id, rule_id: 'R-JMBG-CHECK', severity: 'light' }));
  const changes = evs.filter((_, i) => i % 4 === 1).map((e) => ({
    step: 'deductive', method: 'jmbg', rule: 'R-SEX', record_id: e.id, variable: 'sex', old_value: '', new_value: e.sex, donor_record_id: '',
  }));
  // noise rows of records that are not events (e.g. quarantined) must never be joined
  violations.push({ record_id: 'Q-1', rule_id: 'R-DATE', severity: 'hard' });
  // the month's published table, from the independent tabulation below (explain compares its count with it)
  const rows: Row[] = [...tabulate(evs).entries()].map(([k, v]) => {
    const [level, code, sex] = k.split('|');
    return { series: '1998-', level: level!, code: code!, sex: sex!, immigrants: String(v.immigrants), emigrants: String(v.emigrants), net: String(v.immigrants - v.emigrants) };
  });
  writeResultsDir(store.monthDir(month), 'month', month, {
    'tables/territory.csv': objectsToCsv(TABLE_HEADERS.territory, table ?? rows),
    'events.csv': objectsToCsv(MONTH_FILE_HEADERS.events, events),
    'violations.csv': objectsToCsv(MONTH_FILE_HEADERS.violations, violations),
    'changes.csv': objectsToCsv(MONTH_FILE_HEADERS.changes, changes),
  });
}

/** An independent tabulation: each event adds 1 to its destination's immigrants and its origin's emigrants at every level. */
function tabulate(evs: Ev[]): Map<string, { immigrants: number; emigrants: number }> {
  const c = loadClassification();
  const cells = new Map<string, { immigrants: number; emigrants: number }>();
  const add = (muni: string, sexes: string[], k: 'immigrants' | 'emigrants'): void => {
    const units: [string, string][] = [['municipality', muni], ['area', c.areaOf(muni)], ['region', c.regionOf(muni)], ['republic', 'RS']];
    for (const [level, code] of units) for (const s of sexes) {
      const key = `${level}|${code}|${s}`;
      const cell = cells.get(key) ?? { immigrants: 0, emigrants: 0 };
      cell[k]++;
      cells.set(key, cell);
    }
  };
  for (const e of evs) {
    const sexes = ['T', e.sex === '1' ? 'M' : 'F'];
    add(e.to, sexes, 'immigrants');
    if (!e.km) add(e.from, sexes, 'emigrants');
  }
  return cells;
}

describe('log chain', () => {
  test('lines longer than the tail read first, and two writers appending in turn, keep an unbroken chain', () => {
    const store = makeStore(); // (its log already holds a line)
    const a = new RunLog(store.logFile(), 'run-a');
    const b = new RunLog(store.logFile(), 'run-b');
    for (const size of [10, 5000, 20, 70000, 4000, 4200, 1]) {
      a.log({ stage: 'test', event: 'line', pad: 'x'.repeat(size) });
      b.log({ stage: 'test', event: 'line', pad: 'y'.repeat(size) }); // b chains onto a's line, which it did not write
    }
    const lines = fs.readFileSync(store.logFile(), 'utf8').trimEnd().split('\n');
    expect(lines).toHaveLength(15);
    expect(verifyLogChain(store.logFile())).toEqual([]);
    // and the chain is not vacuous: a line changed (b's 5 000-character one, line 5) breaks it at the next one
    lines[4] = lines[4]!.replace('"pad":"y', '"pad":"z');
    fs.writeFileSync(store.logFile(), lines.join('\n') + '\n');
    expect(verifyLogChain(store.logFile())).toEqual([6]);
  });

  test('a line appended by another writer between two lines of a logger: the next line chains onto it', () => {
    const store = makeStore(); // (its log already holds a line)
    const a = new RunLog(store.logFile(), 'run-a');
    a.log({ stage: 'test', event: 'one' });
    a.log({ stage: 'test', event: 'two' });
    fs.appendFileSync(store.logFile(), '{"foreign":true}\n'); // line 4, without a prev of its own
    a.log({ stage: 'test', event: 'three' });
    expect(verifyLogChain(store.logFile())).toEqual([4]); // the foreign line itself, not the one after it
  });
});

describe('explain: lineage', () => {
  test('worked example, March 2024: every cell of the expected table is re-traced to exactly its events', () => {
    // the eleven events of fixtures/worked-example/README.md, as the pipeline writes them to events.csv
    const evs: Ev[] = [
      { id: 'E1', from: '70106', to: '70114', sex: '1' }, { id: 'E2', from: '70106', to: '70106', sex: '2' },
      { id: 'E3', from: '80047', to: '70645', sex: '1' }, { id: 'E4', from: '70645', to: '89010', sex: '2' },
      { id: 'E5', from: '70092', to: '70114', sex: '2' }, { id: 'E6', from: '70114', to: '80047', sex: '1' },
      { id: 'E7', from: '70106', to: '70092', sex: '1' }, { id: 'E8', from: '90263', to: '70645', sex: '2', km: true },
      { id: 'E16', from: '70106', to: '80047', sex: '1' }, { id: 'E17', from: '70114', to: '70092', sex: '2' },
      { id: 'E18', from: '80047', to: '89010', sex: '1' },
    ];
    const store = new Store(fs.mkdtempSync(path.join(os.tmpdir(), 'migstat-explain-')));
    const expected = readCsvText(fs.readFileSync(path.join(ROOT, 'fixtures', 'worked-example', 'expected-2024-03-territory.csv'), 'utf8'));
    writeMonth(store, '2024-03', evs, expected);
    expect(expected.length).toBeGreaterThan(10);
    for (const row of expected) {
      for (const measure of ['immigrants', 'emigrants'] as const) {
        const r = explain(store, { period: '2024-03', level: row.level!, code: row.code!, sex: row.sex as 'T', measure });
        expect([row.level, row.code, row.sex, measure, r.count]).toEqual([row.level, row.code, row.sex, measure, Number(row[measure])]);
      }
    }
    // each explanation checks itself: the cell as published, the files intact
    const rs = explain(store, { period: '2024-03', level: 'republic', code: 'RS', measure: 'immigrants' });
    expect([rs.table, rs.published, rs.matches, rs.problems]).toEqual(['months/2024-03/tables/territory.csv', rs.count, true, []]);
    expect(() => explain(store, { period: '2024-03', level: 'municipality', code: '99999', measure: 'immigrants' })).toThrow('explain: months/2024-03/tables/territory.csv has no row for municipality 99999 T');
    const ev = path.join(store.monthDir('2024-03'), 'events.csv');
    fs.writeFileSync(ev, fs.readFileSync(ev, 'utf8').split('\n').filter((l) => !l.startsWith('E1,')).join('\n'));
    const cut = explain(store, { period: '2024-03', level: 'republic', code: 'RS', measure: 'immigrants' });
    expect([cut.count, cut.published, cut.matches, cut.problems.map((p) => `${p.problem} ${p.path}`)]).toEqual([rs.count - 1, rs.count, false, ['altered months/2024-03/events.csv']]);
    writeMonth(store, '2024-03', evs, expected);
    const e8 = explain(store, { period: '2024-03', level: 'municipality', code: '70645', sex: 'F', measure: 'immigrants' });
    expect(e8.events.map((e) => e.record_id)).toEqual(['E8']);
    expect(explain(store, { period: '2024-03', level: 'republic', code: 'RS', measure: 'emigrants' }).events.map((e) => e.record_id)).not.toContain('E8');
  });

  test('annual cells: count equals the published cell of years/Y/tables/territory.csv; violations and changes are joined', () => {
    const c = loadClassification();
    const munis = c.unitsForYear(2024).map((m) => m.code);
    let seed = 7;
    const rnd = (n: number): number => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };
    const byMonth: Record<string, Ev[]> = {};
    const all: Ev[] = [];
    for (let m = 1; m <= 12; m++) {
      const month = `2024-${String(m).padStart(2, '0')}`;
      byMonth[month] = [];
      for (let i = 0; i < 40; i++) {
        const ev: Ev = { id: `${month}-${i}`, from: rnd(10) === 0 ? '90263' : munis[rnd(munis.length)]!, to: munis[rnd(30)]!, sex: rnd(2) ? '1' : '2' };
        if (ev.from === '90263') ev.km = true;
        byMonth[month]!.push(ev);
        all.push(ev);
      }
    }
    const store = new Store(fs.mkdtempSync(path.join(os.tmpdir(), 'migstat-explain-')));
    for (const [m, evs] of Object.entries(byMonth)) writeMonth(store, m, evs);
    // the published annual table, from the independent tabulation
    const cells = tabulate(all);
    const rows: Row[] = [...cells.entries()].map(([k, v]) => {
      const [level, code, sex] = k.split('|');
      return { series: '1998-', level: level!, code: code!, sex: sex!, immigrants: String(v.immigrants), emigrants: String(v.emigrants), net: String(v.immigrants - v.emigrants) };
    });
    writeResultsDir(store.yearDir(2024), 'year', '2024', { 'tables/territory.csv': objectsToCsv(TABLE_HEADERS.territory, rows) });
    const table = readCsvText(fs.readFileSync(path.join(store.yearDir(2024), 'tables', 'territory.csv'), 'utf8'));
    let checkedCells = 0;
    for (const row of table) {
      if (row.level === 'municipality' && checkedCells > 200) continue;
      for (const measure of ['immigrants', 'emigrants'] as const) {
        const r = explain(store, { period: '2024', level: row.level!, code: row.code!, sex: row.sex as 'T', measure });
        expect(`${row.level} ${row.code} ${row.sex} ${measure} ${r.count}`).toBe(`${row.level} ${row.code} ${row.sex} ${measure} ${row[measure]}`);
        checkedCells++;
      }
    }
    expect(checkedCells).toBeGreaterThan(100);
    const rs = explain(store, { period: '2024', level: 'republic', code: 'RS', measure: 'immigrants' });
    expect(rs.count).toBe(480);
    expect(rs.months).toHaveLength(12);
    expect(rs.violations.length).toBe(12 * 14); // every third event of each month (40 → 14)
    expect(rs.changes.length).toBe(12 * 10); // i % 4 === 1 (40 → 10)
    expect(rs.violations.some((v) => v.record_id === 'Q-1')).toBe(false);
    // a single month of the year
    const jan = explain(store, { period: '2024-01', level: 'republic', code: 'RS', sex: 'T', measure: 'immigrants' });
    expect(jan.count).toBe(40);
    expect(() => explain(store, { period: '2023', level: 'republic', code: 'RS', measure: 'immigrants' })).toThrow(/no monthly results/);
  });
});

describe('audit: what the manifests and the log anchor (review of 26 Nov)', () => {
  /* eslint-disable @typescript-eslint/no-require-imports */
  const { runMonth } = require('../pipeline/month') as typeof import('../pipeline/month');
  const { sha256 } = require('../pipeline/fsutil') as typeof import('../pipeline/fsutil');
  const { WE, logFor, tmpDir } = require('./helpers/store') as typeof import('./helpers/store');
  const month = (): Store => {
    const data = tmpDir();
    runMonth({ data, input: path.join(WE, 'moi_2024_03.csv'), settlements: path.join(WE, 'settlements.csv'), log: logFor(data) });
    return new Store(data);
  };
  const only = (s: Store): { problem: string; path: string }[] => audit(s).problems.map((p) => ({ problem: p.problem, path: p.path }));
  const flip = (f: string): void => { const b = fs.readFileSync(f); b[b.length - 3] = b[b.length - 3]! ^ 1; fs.writeFileSync(f, b); };

  test('a forms partition or a delivery record changed after the month was built from it: altered, named', () => {
    const s = month();
    expect(only(s)).toEqual([]);
    const part = fs.readdirSync(s.formsDir('2024-03'))[0]!;
    flip(s.p('forms', '2024-03', part));
    const dlv = fs.readdirSync(s.p('deliveries'))[0]!;
    flip(s.p('deliveries', dlv));
    expect(only(s)).toEqual([{ problem: 'altered', path: `forms/2024-03/${part}` }, { problem: 'altered', path: `deliveries/${dlv}` }]);
  });

  test('the record index (state/ids) is anchored by its delivery record: altered, missing, or a file of no delivery, named', () => {
    const s = month();
    const [ids] = fs.readdirSync(s.p('state', 'ids'));
    const rel = `state/ids/${ids}`;
    const dlv = JSON.parse(fs.readFileSync(s.p('deliveries', fs.readdirSync(s.p('deliveries'))[0]!), 'utf8')) as { index_sha256: string };
    expect(dlv.index_sha256).toBe(sha256(fs.readFileSync(s.p('state', 'ids', ids!))));
    // an entry dropped from the index would let a later re-send of the form through as new
    const text = fs.readFileSync(s.p('state', 'ids', ids!), 'utf8');
    fs.writeFileSync(s.p('state', 'ids', ids!), text.slice(text.indexOf('\n') + 1));
    expect(only(s)).toEqual([{ problem: 'altered', path: rel }]);
    fs.rmSync(s.p('state', 'ids', ids!));
    expect(only(s)).toEqual([{ problem: 'missing', path: rel }]);
    fs.writeFileSync(s.p('state', 'ids', ids!), text);
    fs.writeFileSync(s.p('state', 'ids', '2024-02--0009-moi_2024_02-00000000.tsv'), text);
    expect(only(s)).toEqual([{ problem: 'unexpected', path: 'state/ids/2024-02--0009-moi_2024_02-00000000.tsv' }]);
  });

  test('a month file changed and its manifest rewritten to match: the log still holds the manifest it wrote', () => {
    const s = month();
    const events = s.p('months', '2024-03', 'events.csv');
    flip(events);
    const mf = s.p('months', '2024-03', 'manifest.json');
    const m = JSON.parse(fs.readFileSync(mf, 'utf8')) as { outputs: { path: string; sha256: string; bytes: number }[] };
    m.outputs.find((o) => o.path === 'events.csv')!.sha256 = sha256(fs.readFileSync(events));
    fs.writeFileSync(mf, JSON.stringify(m, null, 2) + '\n');
    expect(only(s)).toEqual([{ problem: 'altered', path: 'months/2024-03/manifest.json' }]);
  });

  test('the log head is given, to be kept outside the store; a delivery names the configuration it was made with', () => {
    const s = month();
    const lines = fs.readFileSync(s.logFile(), 'utf8').split('\n').filter((l) => l);
    const head = audit(s).logHead!;
    expect(head).toBe(sha256(lines[lines.length - 1]!));
    // later, with more lines: the recorded head is still a line of the log; a log written anew is not
    logFor(s.root).log({ stage: 'close', event: 'closed', month: '2024-03' });
    expect(audit(s, head).problems).toEqual([]);
    fs.writeFileSync(s.logFile(), fs.readFileSync(s.logFile(), 'utf8').replace(lines[lines.length - 1]!, lines[lines.length - 1]!.replace('"level":"info"', '"level":"warn"')));
    expect(audit(s, head).problems.map((p) => p.problem)).toContain('log_chain');
    const dlv = JSON.parse(fs.readFileSync(s.p('deliveries', fs.readdirSync(s.p('deliveries'))[0]!), 'utf8')) as { config: Record<string, string> };
    expect(Object.keys(dlv.config).sort()).toEqual(['config/imputation.json', 'config/migstat.json', 'config/rules.json', 'config/systemic-corrections.json']);
  });
});

describe('audit and the state files: what an auditor could change unseen (review of 26 Nov, session 8)', () => {
  /* eslint-disable @typescript-eslint/no-require-imports */
  const { runMonth } = require('../pipeline/month') as typeof import('../pipeline/month');
  const { sha256 } = require('../pipeline/fsutil') as typeof import('../pipeline/fsutil');
  const { WE, logFor, tmpDir } = require('./helpers/store') as typeof import('./helpers/store');
  const settlements = path.join(WE, 'settlements.csv');
  const run = (data: string, m: string): void => { runMonth({ data, input: path.join(WE, `moi_2024_${m}.csv`), settlements, log: logFor(data) }); };
  const only = (s: Store): { problem: string; path: string }[] => audit(s).problems.map((p) => ({ problem: p.problem, path: p.path }));
  const ingestedFile = (s: Store): string => s.p('state', 'ingested.json');

  test('state/ingested.json losing a committed delivery: audit names its files; the next month run refuses and deletes nothing', () => {
    const data = tmpDir();
    run(data, '02');
    const s = new Store(data);
    s.close(['2024-02'], 'test');
    const ing = JSON.parse(fs.readFileSync(ingestedFile(s), 'utf8')) as Record<string, { delivery: string }>;
    const [digest] = Object.keys(ing);
    const delivery = ing[digest!]!.delivery;
    delete ing[digest!];
    fs.writeFileSync(ingestedFile(s), JSON.stringify(ing));
    const files = (): string[] => [...fs.readdirSync(s.p('deliveries')), ...fs.readdirSync(s.formsDir('2024-02')), ...fs.readdirSync(s.p('state', 'ids'))].sort();
    const before = files();
    expect(before.filter((f) => f.includes(delivery))).toHaveLength(3);
    expect(only(s)).toEqual([
      { problem: 'unexpected', path: `deliveries/2024-02--${delivery}.json` },
      { problem: 'unexpected', path: `forms/2024-02/${delivery}.json` },
    ]);
    // the next monthly run would have rolled the closed month's inputs back; it refuses instead
    expect(() => run(data, '03')).toThrow(/state\/ingested\.json does not list deliveries whose files are in closed month 2024-02 .*nothing was rolled back/);
    expect(files()).toEqual(before);
  });

  test('a published year whose months state/closed.json lost: still final for a month run, and audit names closed.json', () => {
    const store = publishedStore();
    expect(audit(store).problems).toEqual([]);
    const f = store.p('state', 'closed.json');
    const closed = JSON.parse(fs.readFileSync(f, 'utf8')) as { months: Record<string, unknown> };
    delete closed.months['2024-12'];
    fs.writeFileSync(f, JSON.stringify(closed));
    expect(store.isClosed('2024-12')).toBe(true); // the release holds 2024: its months are final
    expect(store.isClosed('2025-01')).toBe(false);
    expect(audit(store).problems).toEqual([{ path: 'state/closed.json', problem: 'altered', detail: 'state/closed.json does not hold month 2024-12 closed, although release IM-2024 published 2024 (publishing closes its twelve months: a release stopped before it did is completed by the next release --due; otherwise state/closed.json was changed)' }]);
  });

  test('explain: a month file forged together with its manifest is caught through the log, as the full audit catches it', () => {
    const data = tmpDir();
    run(data, '02');
    run(data, '03');
    const s = new Store(data);
    const cell = { period: '2024-03', level: 'republic', code: 'RS', sex: 'T' as const, measure: 'immigrants' as const };
    expect(explain(s, cell).problems).toEqual([]);
    const events = s.p('months', '2024-03', 'events.csv');
    const lines = fs.readFileSync(events, 'utf8').split('\n');
    fs.writeFileSync(events, [...lines.slice(0, 1), ...lines.slice(2)].join('\n'));
    const mf = s.p('months', '2024-03', 'manifest.json');
    const m = JSON.parse(fs.readFileSync(mf, 'utf8')) as { outputs: { path: string; sha256: string; bytes: number }[] };
    const o = m.outputs.find((x) => x.path === 'events.csv')!;
    o.sha256 = sha256(fs.readFileSync(events));
    o.bytes = fs.statSync(events).size;
    fs.writeFileSync(mf, JSON.stringify(m, null, 2) + '\n');
    const e = explain(s, cell);
    expect(e.problems.map((p) => [p.problem, p.path])).toEqual([['altered', 'months/2024-03/manifest.json']]);
    expect(e.matches).toBe(false); // (one event fewer than the published cell)
  });

  test('explain lists the corrections of the cell\'s events that came after their month was closed (withheld, as received)', () => {
    const data = tmpDir();
    run(data, '02');
    const s = new Store(data);
    s.close(['2024-02'], 'test');
    // March's extract with F0 of February corrected (nationality 01 → 02): a correction to a closed month
    const feb = fs.readFileSync(path.join(WE, 'moi_2024_02.csv'), 'utf8').split('\n');
    const f0 = feb.find((l) => l.startsWith('F0,'))!;
    const corrected = f0.split(',');
    corrected[15] = '02';
    const march = path.join(tmpDir(), 'moi_2024_03.csv');
    fs.writeFileSync(march, `${fs.readFileSync(path.join(WE, 'moi_2024_03.csv'), 'utf8').trimEnd()}\n${corrected.join(',')}\n`);
    runMonth({ data, input: march, settlements, log: logFor(data) });
    const e = explain(s, { period: '2024-02', level: 'municipality', code: '70106', sex: 'T', measure: 'immigrants' });
    expect(e.events.map((x) => x.record_id)).toContain('F0');
    expect(e.withheld?.map((w) => [w.record_id, w.corrects_month, w.form.nationality])).toEqual([['F0', '2024-02', '02']]);
    expect(e.withheld![0]!.delivery).toMatch(/^0002-moi_2024_03-/);
    expect(e.problems).toEqual([]);
    // the month itself is unchanged: F0 still counts with its nationality as first published
    expect(e.events.find((x) => x.record_id === 'F0')!.nationality).toBe('01');
  });

  test('results the log says were written and that are gone: missing; a directory no logged run wrote, or under another name: named', () => {
    const data = tmpDir();
    run(data, '02');
    run(data, '03');
    const s = new Store(data);
    expect(only(s)).toEqual([]);
    fs.cpSync(s.monthDir('2024-03'), s.monthDir('2024-04'), { recursive: true });
    fs.rmSync(s.monthDir('2024-02'), { recursive: true });
    expect(only(s)).toEqual([
      { problem: 'unexpected', path: 'months/2024-04' },
      { problem: 'altered', path: 'months/2024-04/manifest.json' },
      { problem: 'missing', path: 'months/2024-02' },
    ]);
    expect(audit(s).problems.find((p) => p.path === 'months/2024-04/manifest.json')!.detail).toBe('months/2024-04/manifest.json describes the month 2024-03, not months/2024-04');
  });
});
