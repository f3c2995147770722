/** The worked example of the spec (fixtures/worked-example), form by form: the conventions pinned. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readCsvText } from '../pipeline/csv';
import { runMonth } from '../pipeline/month';
import { Store } from '../pipeline/store';
import type { Quality } from '../pipeline/contracts';
import { listFiles } from '../pipeline/fsutil';
import { WE, logFor, snapshot, tmpDir } from './helpers/store';

const settlements = path.join(WE, 'settlements.csv');
function runExample(data: string): void {
  const log = logFor(data);
  runMonth({ data, input: path.join(WE, 'moi_2024_02.csv'), settlements, log });
  new Store(data).close(['2024-02'], 'test');
  runMonth({ data, input: path.join(WE, 'moi_2024_03.csv'), settlements, log });
}
const read = (data: string, rel: string): string => fs.readFileSync(path.join(data, rel), 'utf8');

describe('worked example (spec/worked-example)', () => {
  const data = tmpDir();
  let febBefore: Record<string, string>;
  beforeAll(() => {
    const log = logFor(data);
    runMonth({ data, input: path.join(WE, 'moi_2024_02.csv'), settlements, log });
    new Store(data).close(['2024-02'], 'test');
    febBefore = snapshot(path.join(data, 'months', '2024-02'));
    runMonth({ data, input: path.join(WE, 'moi_2024_03.csv'), settlements, log });
  });

  test('February: one event Vračar → Voždovac, male', () => {
    const t = readCsvText(read(data, 'months/2024-02/tables/territory.csv'));
    const cell = (code: string, sex: string) => t.find((r) => r.code === code && r.sex === sex)!;
    expect(cell('70106', 'M').immigrants).toBe('1');
    expect(cell('70114', 'M').emigrants).toBe('1');
    expect(cell('RS', 'T').immigrants).toBe('1');
  });

  test('March territory.csv: every non-zero row equals the expected file, every other unit is zero', () => {
    const got = readCsvText(read(data, 'months/2024-03/tables/territory.csv'));
    const exp = readCsvText(read(WE, 'expected-2024-03-territory.csv'));
    const key = (r: Record<string, string>) => `${r.series}|${r.level}|${r.code}|${r.sex}`;
    const expMap = new Map(exp.map((r) => [key(r), r]));
    for (const r of got) {
      const e = expMap.get(key(r));
      if (e) expect([r.immigrants, r.emigrants, r.net]).toEqual([e.immigrants, e.emigrants, e.net]);
      else expect([r.immigrants, r.emigrants, r.net]).toEqual(['0', '0', '0']);
    }
    for (const k of expMap.keys()) expect(got.some((r) => key(r) === k)).toBe(true);
    // region RS22 present with zeros; 168 municipalities × 3 sexes in 2024
    expect(got.filter((r) => r.code === 'RS22')).toHaveLength(3);
    expect(got.filter((r) => r.level === 'municipality')).toHaveLength(168 * 3);
    expect(got.every((r) => r.series === '1998-')).toBe(true);
  });

  test('March move_type.csv at Republic level equals the expected file', () => {
    const got = readCsvText(read(data, 'months/2024-03/tables/move_type.csv')).filter((r) => r.level === 'republic');
    const exp = readCsvText(read(WE, 'expected-2024-03-move_type.csv'));
    expect(got).toEqual(exp);
  });

  test('March quality.json counts', () => {
    const q = JSON.parse(read(data, 'months/2024-03/quality.json')) as Quality;
    expect(q.forms_read).toBe(23);
    expect(q.duplicates).toBe(1);
    expect(q.quarantined).toBe(2);
    expect(q.out_of_scope).toEqual({ departure_abroad: 1, destination_km: 1, foreigner: 1, from_abroad: 1, same_settlement: 1 });
    expect(q.events).toBe(11);
    expect(q.delayed_events).toBe(1);
    expect(q.carried_forward).toBe(1);
    expect(q.unmatched_departures).toBe(1);
    expect(q.linked_departures).toBe(2);
    expect(q.replaced_versions).toBe(1);
    expect(q.imputed).toMatchObject({ sex: 1, to_municipality: 2, previous_residence: 1 });
    expect(q.identity.holds).toBe(true);
    expect(q.identity.lhs).toBe(23);
    expect(q.checks.every((c) => c.ok)).toBe(true);
    expect(q.rules.R06_JMBG_CHECKSUM!.fails).toBe(1); // E18, a light error
  });

  test('the change log records E5 sex from JMBG, E6 re-send and destination, E7 office, E3 from its D form, E4 recoding', () => {
    const ch = readCsvText(read(data, 'months/2024-03/changes.csv'));
    const has = (id: string, v: string, method: string, nv?: string) => ch.some((c) => c.record_id === id && c.variable === v && c.method === method && (nv === undefined || c.new_value === nv));
    expect(has('E5', 'sex', 'jmbg', '2')).toBe(true);
    expect(has('E6', 'to_settlement', 'correction_by_resend', '800002')).toBe(true);
    expect(has('E6', 'to_municipality', 'settlement', '80047')).toBe(true);
    expect(has('E7', 'to_municipality', 'registering_office', '70092')).toBe(true);
    expect(has('E3', 'from_municipality', 'linked_d_form', '80047')).toBe(true);
    expect(has('E4', 'to_municipality', 'territorial_change', '89010')).toBe(true);
  });

  test('quarantine names file, line, field and reason', () => {
    const q = readCsvText(read(data, 'months/2024-03/quarantine.csv'));
    expect(q.map((r) => [r.record_id, r.line, r.field, r.reason]).sort()).toEqual([
      ['E19', '22', 'registration_date', 'registration_after_file_month'],
      ['E20', '23', 'registration_date', 'unreadable_date'],
    ]);
    expect(q.every((r) => r.file === 'moi_2024_03.csv')).toBe(true);
  });

  test('E17 is carried forward into March; closed February does not change', () => {
    const ev = readCsvText(read(data, 'months/2024-03/events.csv'));
    expect(ev.find((e) => e.record_id === 'E17')!.carried_forward).toBe('1');
    expect(ev.find((e) => e.record_id === 'E8')!.origin_km).toBe('1');
    expect(snapshot(path.join(data, 'months', '2024-02'))).toEqual(febBefore);
  });

  test('ingesting the same file again changes nothing', () => {
    const before = snapshot(data, (f) => !f.startsWith('logs/'));
    const r = runMonth({ data, input: path.join(WE, 'moi_2024_03.csv'), settlements, log: logFor(data) });
    expect(r.status).toBe('unchanged');
    expect(snapshot(data, (f) => !f.startsWith('logs/'))).toEqual(before);
  });

  test('rerunning a closed month is refused with a clear message', () => {
    const copy = path.join(tmpDir(), 'moi_2024_02.csv');
    fs.writeFileSync(copy, read(WE, 'moi_2024_02.csv').replace('F0,R', 'F0b,R'));
    expect(() => runMonth({ data, input: copy, settlements, log: logFor(data) })).toThrow(/2024-02 is closed/);
  });

  test('same inputs → byte-identical results in a fresh store', () => {
    const other = tmpDir();
    runExample(other);
    const pick = (f: string) => f.startsWith('months/');
    expect(snapshot(other, pick)).toEqual(snapshot(data, pick));
  });

  test('no clear JMBG appears in any artefact or log', () => {
    const jmbgs = new Set<string>();
    for (const f of ['moi_2024_02.csv', 'moi_2024_03.csv']) for (const r of readCsvText(read(WE, f))) if (r.person_id) jmbgs.add(r.person_id);
    expect(jmbgs.size).toBeGreaterThan(15);
    const leaks: string[] = [];
    for (const f of listFiles(data)) {
      const text = fs.readFileSync(path.join(data, f), 'utf8');
      for (const j of jmbgs) if (text.includes(j)) leaks.push(`${f}: ${j.slice(0, 4)}…`);
    }
    expect(leaks).toEqual([]);
  });

  test('the stage log is JSON lines with run id, stage and counts, and an intact hash chain', () => {
    const lines = read(data, 'logs/migstat.jsonl').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.some((l) => l.stage === 'deliver' && l.forms_read === 23 && l.identity_holds === true)).toBe(true);
    expect(lines.every((l) => typeof l.run_id === 'string' && typeof l.stage === 'string')).toBe(true);
    const { verifyLogChain } = require('../pipeline/log');
    expect(verifyLogChain(path.join(data, 'logs', 'migstat.jsonl'))).toEqual([]);
  });
});
