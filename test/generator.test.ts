/**
 * The synthetic extract generator (fixtures/generator.ts): determinism, layout, ground-truth identity,
 * defects, calibration against the SORS published figures, territorial coverage by year.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { differenceInMonths } from 'date-fns';
import { DEFECT_NAMES, EXTRACT_HEADER, generate, TRUTH_RECORDS_HEADER, type GenerateSummary } from '../fixtures/generator';
import { dayNumber, monthsBetween } from '../fixtures/gen/dates';
import { jmbgCheck } from '../fixtures/gen/person';
import { Rng } from '../fixtures/gen/rng';
import { KM_POPULATION_1991, populationCsv, populationWithoutKm } from '../fixtures/gen/population';
import { loadPopulation } from '../stages/population';
import { loadClassification, mod11Ok } from '../stages/territory';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'migstat-gen-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function hashDir(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string, rel: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = path.join(d, e.name);
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(p, r);
      else out.set(r, crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex'));
    }
  };
  walk(dir, '');
  return out;
}

function readCsv(file: string): string[][] {
  const text = fs.readFileSync(file, 'utf8');
  const lines = text.split('\n');
  expect(lines.pop()).toBe('');
  return lines.map((l) => l.split(','));
}

function objects(file: string): Record<string, string>[] {
  const [h, ...rows] = readCsv(file);
  return rows.map((r) => Object.fromEntries(h!.map((k, i) => [k, r[i]!])));
}

const run = (name: string, year: number, records: number, seed = 1, months?: number[]): { dir: string; s: GenerateSummary } => {
  const dir = path.join(tmp, name);
  const s = generate({ year, out: dir, records, seed, months });
  return { dir, s };
};

describe('generator, a default recent year (2024, 20 000 events)', () => {
  const { dir, s } = run('y2024', 2024, 20000);
  const truth = objects(path.join(dir, 'truth', 'records.csv'));
  const events = truth.filter((r) => r.disposition === 'event');

  test('same seed → byte-identical files; different seed → different', () => {
    const again = run('y2024b', 2024, 20000);
    const other = run('y2024c', 2024, 20000, 2);
    const h1 = hashDir(dir);
    expect(hashDir(again.dir)).toEqual(h1);
    expect(h1.size).toBe(12 + 12 * 3 + 1 + 3 + 1 + 1);
    const h3 = hashDir(other.dir);
    expect(h3.get('moi_2024_01.csv')).not.toBe(h1.get('moi_2024_01.csv'));
    expect(h3.get('truth/population.csv')).not.toBe(h1.get('truth/population.csv'));
    expect(s.population).toBe(path.join(dir, 'truth', 'population.csv'));
    const rel = (x: GenerateSummary): object => ({ ...x, files: x.files.map((f) => path.basename(f)), population: path.basename(x.population) });
    expect(rel(again.s)).toEqual(rel(s));
  });

  test('extract layout: exact header, 18 fields, LF, no BOM; truth rows one per line', () => {
    expect(s.files).toHaveLength(12);
    let lines = 0;
    for (const f of s.files) {
      const buf = fs.readFileSync(f);
      expect(buf[0]).not.toBe(0xef);
      const text = buf.toString('utf8');
      expect(text.includes('\r')).toBe(false);
      expect(text.includes('"')).toBe(false);
      const rows = text.split('\n');
      expect(rows.pop()).toBe('');
      expect(rows[0]).toBe(EXTRACT_HEADER);
      for (const r of rows) expect(r.split(',')).toHaveLength(18);
      lines += rows.length - 1;
    }
    expect(lines).toBe(s.forms);
    expect(fs.readFileSync(path.join(dir, 'truth', 'records.csv'), 'utf8').split('\n')[0]).toBe(TRUTH_RECORDS_HEADER);
    expect(truth).toHaveLength(s.forms);
    for (const r of truth) expect(Object.keys(r)).toHaveLength(18);
    expect(events).toHaveLength(s.events);
    expect(s.events).toBeGreaterThan(19000);
  });

  test('truth identity per month, quality.json agrees with records.csv, year = sum of months', () => {
    let sumForms = 0;
    for (let m = 1; m <= 12; m++) {
      const ym = `2024-${String(m).padStart(2, '0')}`;
      const q = JSON.parse(fs.readFileSync(path.join(dir, 'truth', 'months', ym, 'quality.json'), 'utf8'));
      const oos = Object.values(q.out_of_scope as Record<string, number>).reduce((a, b) => a + b, 0);
      expect(q.forms_read).toBe(q.events + q.linked_departures + q.unmatched_departures + oos + q.quarantined + q.duplicates + q.replaced_versions + q.corrections_to_closed);
      expect(q.identity.holds).toBe(true);
      const rows = truth.filter((r) => r.file === `moi_2024_${ym.slice(5)}.csv`);
      const n = (d: string): number => rows.filter((r) => r.disposition === d).length;
      expect(rows).toHaveLength(q.forms_read);
      expect(n('event')).toBe(q.events);
      expect(n('linked_departure')).toBe(q.linked_departures);
      expect(n('unmatched_departure')).toBe(q.unmatched_departures);
      expect(n('quarantined')).toBe(q.quarantined);
      expect(n('duplicate')).toBe(q.duplicates);
      expect(n('replaced')).toBe(q.replaced_versions);
      expect(n('correction_to_closed')).toBe(q.corrections_to_closed);
      expect(n('out_of_scope')).toBe(oos);
      expect(rows.filter((r) => r.disposition === 'event' && r.carried_forward === '1')).toHaveLength(q.carried_forward);
      expect(rows.filter((r) => r.disposition === 'event' && r.delay_months !== '' && Number(r.delay_months) >= 1)).toHaveLength(q.delayed_events);
      for (const r of rows) if (!['quarantined', 'duplicate'].includes(r.disposition!)) expect(r.ref_month).toBe(ym);
      sumForms += q.forms_read;
    }
    const y = JSON.parse(fs.readFileSync(path.join(dir, 'truth', 'year', 'quality.json'), 'utf8'));
    expect(y.forms_read).toBe(sumForms);
    expect(y.identity.holds).toBe(true);
  });

  test('every defect name occurs at least once; defects.json names the swapped office and month', () => {
    const d = JSON.parse(fs.readFileSync(path.join(dir, 'truth', 'defects.json'), 'utf8'));
    for (const name of DEFECT_NAMES) {
      expect([name, s.defects[name]]).toEqual([name, expect.any(Number)]);
      expect([name, s.defects[name]! >= 1]).toEqual([name, true]);
      expect(truth.some((r) => r.defects!.split(';').includes(name))).toBe(true);
    }
    for (const r of truth) for (const x of r.defects!.split(';').filter(Boolean)) expect(DEFECT_NAMES).toContain(x);
    expect(d.day_month_swap).toEqual({ office: expect.any(String), month: '2024-05', forms: expect.any(Number) });
    expect(d.day_month_swap.forms).toBeGreaterThanOrEqual(40);
    // both kinds of missing sex, both kinds of missing previous residence, both kinds of corrected re-send
    expect(events.some((r) => r.defects!.includes('missing_sex') && r.defects!.includes('invalid_jmbg_checksum'))).toBe(true);
    expect(truth.some((r) => r.disposition === 'replaced')).toBe(true);
    expect(truth.some((r) => r.disposition === 'correction_to_closed')).toBe(true);
    expect(truth.some((r) => r.disposition === 'duplicate' && r.record_id!.slice(5, 7) !== r.file!.slice(9, 11))).toBe(true);
    expect(truth.some((r) => r.disposition === 'quarantined' && r.reason === 'unreadable_date')).toBe(true);
    expect(truth.some((r) => r.disposition === 'quarantined' && r.reason === 'registration_after_file_month')).toBe(true);
    expect(truth.filter((r) => r.disposition === 'quarantined' && r.reason === 'schema').length).toBeGreaterThanOrEqual(2);
  });

  test('the swapped office: all its forms of the month have YYYY-DD-MM dates, ≥ 40 forms, truth has the real dates', () => {
    const d = JSON.parse(fs.readFileSync(path.join(dir, 'truth', 'defects.json'), 'utf8')).day_month_swap;
    const rows = readCsv(path.join(dir, 'moi_2024_05.csv')).slice(1).filter((r) => r[14] === d.office);
    expect(rows.length).toBeGreaterThanOrEqual(40);
    let inMonthAfterSwap = 0;
    for (const r of rows) {
      const reg = r[2]!;
      const swapped = `${reg.slice(0, 4)}-${reg.slice(8, 10)}-${reg.slice(5, 7)}`;
      if (swapped.slice(0, 7) === '2024-05') inMonthAfterSwap++;
    }
    expect(inMonthAfterSwap).toBe(rows.length);
    // nowhere else
    for (const f of s.files) {
      if (f.endsWith('_05.csv')) continue;
      for (const r of readCsv(f).slice(1)) if (r[1] !== 'X' && r[1] !== 'Z' && !r[2]!.includes('x')) expect(Number(r[2]!.slice(5, 7))).toBeLessThanOrEqual(12);
    }
  });

  test('JMBGs are valid by construction (unless an invalid checksum is the defect) and agree with the true sex and birth date', () => {
    const lines = new Map<string, string[]>();
    for (const f of s.files) for (const r of readCsv(f).slice(1)) lines.set(`${path.basename(f)}:${r[0]}:${r[1]}`, r);
    let checked = 0;
    for (const e of events) {
      const l = lines.get(`${e.file}:${e.record_id}:R`)!;
      const pid = l[4]!;
      expect(pid).toMatch(/^[0-9]{13}$/);
      const ok = jmbgCheck(pid.slice(0, 12)) === Number(pid[12]);
      expect(ok).toBe(!e.defects!.includes('invalid_jmbg_checksum'));
      if (!ok) continue;
      const yyy = Number(pid.slice(4, 7));
      const by = yyy >= 800 ? 1000 + yyy : 2000 + yyy;
      expect(`${by}-${pid.slice(2, 4)}-${pid.slice(0, 2)}`).toBe(e.birth_date);
      expect(Number(pid.slice(9, 12)) < 500 ? '1' : '2').toBe(e.sex);
      checked++;
    }
    expect(checked).toBeGreaterThan(19000);
  });

  test('delay = date-fns differenceInMonths(registration, move) of the reported dates', () => {
    const byKey = new Map<string, string[]>();
    for (const f of s.files) for (const r of readCsv(f).slice(1)) if (r[1] === 'R') byKey.set(`${path.basename(f)}:${r[0]}`, r);
    for (const e of events.filter((x) => !x.defects!.includes('day_month_swap'))) {
      const l = byKey.get(`${e.file}:${e.record_id}`)!;
      if (l[3] === '') {
        expect(e.delay_months).toBe('');
        continue;
      }
      const d = (s_: string): Date => new Date(Number(s_.slice(0, 4)), Number(s_.slice(5, 7)) - 1, Number(s_.slice(8, 10)));
      expect(Number(e.delay_months)).toBe(differenceInMonths(d(l[2]!), d(l[3]!)));
    }
  });

  test('calibration: move types 30/36/34 ±3, Beogradska oblast 33–39 % of immigrants, mean age 33–37', () => {
    const mt = objects(path.join(dir, 'truth', 'year', 'move_type.csv')).filter((r) => r.level === 'republic');
    const get = (t: string): number => Number(mt.find((r) => r.move_type === t)!.migrants);
    const total = get('total');
    expect(total).toBe(s.events);
    expect(Math.abs((100 * get('within_municipality')) / total - 30)).toBeLessThanOrEqual(3);
    expect(Math.abs((100 * get('between_municipalities_same_area')) / total - 36)).toBeLessThanOrEqual(3);
    expect(Math.abs((100 * get('between_areas')) / total - 34)).toBeLessThanOrEqual(3);
    const terr = objects(path.join(dir, 'truth', 'year', 'territory.csv')).filter((r) => r.sex === 'T');
    const rs = Number(terr.find((r) => r.level === 'republic')!.immigrants);
    const bg = Number(terr.find((r) => r.code === 'RS110')!.immigrants);
    expect(rs).toBe(s.events);
    expect((100 * bg) / rs).toBeGreaterThanOrEqual(33);
    expect((100 * bg) / rs).toBeLessThanOrEqual(39);
    const meanAge = events.reduce((a, e) => a + Number(e.age), 0) / events.length;
    expect(meanAge).toBeGreaterThanOrEqual(33);
    expect(meanAge).toBeLessThanOrEqual(37);
    const dep = events.filter((e) => ['NA', '5', '6'].includes(e.economic_activity!)).length / events.length;
    const act = events.filter((e) => ['1', '2'].includes(e.economic_activity!)).length / events.length;
    expect(Math.abs(dep - 0.61)).toBeLessThan(0.03);
    expect(Math.abs(act - 0.31)).toBeLessThan(0.03);
    for (const e of events) if (Number(e.age) < 15) expect(e.economic_activity).toBe('NA');
  });

  test('truth tables: municipalities sum to areas, areas to regions, regions to the Republic; all units with zeros; sorted', () => {
    const c = loadClassification();
    const units = c.unitsForYear(2024);
    for (const f of ['year', 'months/2024-03']) {
      const terr = objects(path.join(dir, 'truth', f, 'territory.csv'));
      expect(terr).toHaveLength((1 + 4 + 25 + units.length) * 3);
      expect(terr.every((r) => r.series === '1998-')).toBe(true);
      for (const sex of ['T', 'M', 'F']) {
        const rows = terr.filter((r) => r.sex === sex);
        for (const meas of ['immigrants', 'emigrants', 'net'] as const) {
          const sum = (lvl: string, pred: (code: string) => boolean): number => rows.filter((r) => r.level === lvl && pred(r.code!)).reduce((a, r) => a + Number(r[meas]), 0);
          for (const a of rows.filter((r) => r.level === 'area')) expect(sum('municipality', (m) => c.areaOf(m) === a.code)).toBe(Number(a[meas]));
          for (const g of rows.filter((r) => r.level === 'region')) expect(sum('area', (ar) => c.areas.get(ar)!.region === g.code)).toBe(Number(g[meas]));
          expect(sum('region', () => true)).toBe(Number(rows.find((r) => r.level === 'republic')![meas]));
        }
      }
      const t = terr.filter((r) => r.sex === 'T');
      for (const r of t) expect(Number(r.net)).toBe(Number(r.immigrants) - Number(r.emigrants));
      const mT = terr.filter((r) => r.sex === 'M'), fT = terr.filter((r) => r.sex === 'F');
      for (let i = 0; i < t.length; i++) expect(Number(t[i]!.immigrants)).toBe(Number(mT[i]!.immigrants) + Number(fT[i]!.immigrants));
      const order = ['republic', 'region', 'area', 'municipality'];
      for (let i = 1; i < t.length; i++) {
        const a = t[i - 1]!, b = t[i]!;
        const k = order.indexOf(a.level!) - order.indexOf(b.level!);
        expect(k < 0 || (k === 0 && a.code! < b.code!)).toBe(true);
      }
      // republic: immigrants = emigrants + arrivals from K&M
      const q = JSON.parse(fs.readFileSync(path.join(dir, 'truth', f, 'quality.json'), 'utf8'));
      const rep = t[0]!;
      expect(Number(rep.immigrants)).toBe(Number(rep.emigrants) + q.arrivals_from_km);
      const mt = objects(path.join(dir, 'truth', f, 'move_type.csv'));
      expect(mt).toHaveLength((1 + 4 + 25 + units.length) * 4);
      const imm = new Map(t.map((r) => [r.code, Number(r.immigrants)]));
      for (const r of mt.filter((x) => x.move_type === 'total')) expect(Number(r.migrants)).toBe(imm.get(r.code));
    }
  });

  test('2024: Novi Sad is 89010 (no 80284/80519 in the truth), outdated codes appear in the extract', () => {
    const terr = objects(path.join(dir, 'truth', 'year', 'territory.csv'));
    expect(terr.some((r) => r.code === '89010')).toBe(true);
    expect(terr.some((r) => r.code === '80284' || r.code === '80519')).toBe(false);
    expect(events.some((e) => e.to_municipality === '89010')).toBe(true);
    expect(events.every((e) => !['80284', '80519'].includes(e.to_municipality!) && !['80284', '80519'].includes(e.from_municipality!))).toBe(true);
    // from 1998: no destination in K&M; some arrivals from K&M; moves into K&M out of scope
    const c = loadClassification();
    expect(events.some((e) => c.isKM(e.to_municipality!))).toBe(false);
    expect(events.some((e) => e.from_municipality === 'KM' && e.move_type === 'between_areas')).toBe(true);
    expect(truth.some((r) => r.reason === 'destination_km')).toBe(true);
    // every municipality code of an event's truth is a unit of 2024
    const units = new Set(c.unitsForYear(2024).map((u) => u.code));
    for (const e of events) {
      expect(units.has(e.to_municipality!)).toBe(true);
      expect(e.from_municipality === 'KM' || units.has(e.from_municipality!)).toBe(true);
    }
  });

  test('foreigners are numerous in 2022–2024, mostly Russian', () => {
    const f = truth.filter((r) => r.reason === 'foreigner');
    expect(f.length / events.length).toBeGreaterThan(0.03);
  });
});

describe('generator, territorial coverage by year', () => {
  test('1997: K&M units are tabulated and have events; series 1991-1997; Niš is 70858', () => {
    const { dir } = run('y1997', 1997, 6000);
    const c = loadClassification();
    const terr = objects(path.join(dir, 'truth', 'year', 'territory.csv'));
    expect(terr.every((r) => r.series === '1991-1997')).toBe(true);
    const km = terr.filter((r) => r.level === 'municipality' && c.isKM(r.code!) && r.sex === 'T');
    expect(km.length).toBeGreaterThan(20);
    expect(km.reduce((a, r) => a + Number(r.immigrants), 0)).toBeGreaterThan(0);
    expect(terr.some((r) => r.code === 'RS-KM')).toBe(true);
    expect(terr.some((r) => r.code === '70858')).toBe(true);
    expect(terr.some((r) => r.code === '71307' || r.code === '89010')).toBe(false);
    const truth = objects(path.join(dir, 'truth', 'records.csv'));
    expect(truth.some((r) => r.reason === 'destination_km')).toBe(false);
    expect(truth.some((r) => r.disposition === 'event' && c.isKM(r.to_municipality!))).toBe(true);
  });

  test('1998: no K&M unit, no event with a destination in K&M', () => {
    const { dir } = run('y1998', 1998, 4000, 3);
    const c = loadClassification();
    const terr = objects(path.join(dir, 'truth', 'year', 'territory.csv'));
    expect(terr.every((r) => r.series === '1998-' && !c.isKM(r.code!) && r.code !== 'RS-KM')).toBe(true);
    const truth = objects(path.join(dir, 'truth', 'records.csv'));
    expect(truth.some((r) => r.disposition === 'event' && c.isKM(r.to_municipality!))).toBe(false);
  });

  test('2010: Novi Sad and Petrovaradin are 80284/80519 in the extract and the truth; Surčin exists', () => {
    const { dir, s } = run('y2010', 2010, 6000);
    const terr = objects(path.join(dir, 'truth', 'year', 'territory.csv'));
    for (const code of ['80284', '80519', '71293']) expect(terr.some((r) => r.code === code)).toBe(true);
    expect(terr.some((r) => r.code === '89010')).toBe(false);
    const codes = new Set<string>();
    for (const f of s.files) for (const r of readCsv(f).slice(1)) codes.add(r[13]!);
    expect(codes.has('80284') && codes.has('80519')).toBe(true);
    expect(codes.has('89010')).toBe(false);
  });

  test('2019: forms before 25 March carry 80284/80519, the truth maps them to 89010', () => {
    const { dir, s } = run('y2019', 2019, 6000, 1, [1, 2, 3, 4]);
    expect(s.files).toHaveLength(4);
    const jan = readCsv(path.join(dir, 'moi_2019_01.csv')).slice(1);
    expect(jan.some((r) => r[13] === '80284' || r[13] === '80519')).toBe(true);
    const apr = readCsv(path.join(dir, 'moi_2019_04.csv')).slice(1).filter((r) => r[1] === 'R' && r[12] !== '');
    const c = loadClassification();
    // in April only outdated-code defects carry the old codes
    const truth = objects(path.join(dir, 'truth', 'records.csv')).filter((r) => r.file === 'moi_2019_04.csv');
    const byId = new Map(truth.map((r) => [`${r.record_id}:${r.disposition}`, r]));
    for (const r of apr) {
      if (r[13] !== '80284' && r[13] !== '80519') continue;
      const t = byId.get(`${r[0]}:event`) ?? byId.get(`${r[0]}:replaced`) ?? byId.get(`${r[0]}:out_of_scope`);
      if (t?.disposition === 'event') expect(t.defects).toContain('outdated_municipality_code');
    }
    const terr = objects(path.join(dir, 'truth', 'year', 'territory.csv'));
    expect(terr.some((r) => r.code === '80284')).toBe(false);
    expect(c.validOn('89010', '2019-12-31')).toBe(true);
    expect(objects(path.join(dir, 'truth', 'records.csv')).some((r) => r.disposition === 'event' && r.to_municipality === '89010')).toBe(true);
  });

  test('every registering office is a municipality code valid with a mod-11 check digit', () => {
    const { s } = run('y2003', 2003, 3000, 5, [1, 6]);
    const c = loadClassification();
    for (const f of s.files) for (const r of readCsv(f).slice(1)) {
      expect(mod11Ok(r[14]!)).toBe(true);
      expect(c.isMunicipality(r[14]!)).toBe(true);
    }
  });
});

describe('generator: the synthetic population file', () => {
  const c = loadClassification();
  test.each([[1997], [1998], [2019], [2024]])('%i: one row per municipality of the year, census-calibrated totals, seeded, accepted by the pipeline', (year) => {
    const dir = path.join(tmp, `pop${year}`);
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, 'population.csv');
    fs.writeFileSync(file, populationCsv(c, year, 5));
    const rows = objects(file);
    const units = c.unitsForYear(year);
    expect(rows.map((r) => r.code)).toEqual(units.map((u) => u.code));
    expect(rows.every((r) => r.year === String(year) && /^[1-9][0-9]*$/.test(r.population!))).toBe(true);
    const sum = (f: (code: string) => boolean): number => rows.filter((r) => f(r.code!)).reduce((a, r) => a + Number(r.population), 0);
    expect(sum((code) => !c.isKM(code))).toBe(populationWithoutKm(year));
    expect(sum((code) => c.isKM(code))).toBe(year <= 1997 ? KM_POPULATION_1991 : 0);
    const bg = sum((code) => c.areaOf(code) === 'RS110') / populationWithoutKm(year);
    expect(bg).toBeGreaterThan(0.23);
    expect(bg).toBeLessThan(0.25);
    // plausible municipality sizes: a few thousand to a few hundred thousand
    const sizes = rows.map((r) => Number(r.population)).sort((a, b) => a - b);
    expect(sizes[0]).toBeGreaterThan(1000);
    expect(sizes[sizes.length - 1]).toBeLessThan(600000);
    expect(populationCsv(c, year, 5)).toBe(fs.readFileSync(file, 'utf8'));
    expect(populationCsv(c, year, 6)).not.toBe(fs.readFileSync(file, 'utf8'));
    expect(loadPopulation(file, c, year).size).toBe(units.length);
  });
  test('the totals follow the censuses (1991, 2002, 2011, 2022) and the last trend after them', () => {
    expect([1991, 2002, 2011, 2022].map(populationWithoutKm)).toEqual([7822795, 7498001, 7186862, 6647003]);
    expect(populationWithoutKm(2024)).toBeLessThan(6647003);
    expect(populationWithoutKm(2024)).toBeGreaterThan(6500000);
    expect(populationWithoutKm(1997)).toBeLessThan(7822795);
  });
});

describe('generator helpers', () => {
  test('monthsBetween equals date-fns differenceInMonths', () => {
    const rng = new Rng(42);
    for (let i = 0; i < 20000; i++) {
      const a = dayNumber(2000, 1, 1) + rng.int(9000);
      const b = a - rng.int(2500);
      const da = new Date(Date.UTC(1970, 0, 1) + a * 86400000);
      const db = new Date(Date.UTC(1970, 0, 1) + b * 86400000);
      const la = new Date(da.getUTCFullYear(), da.getUTCMonth(), da.getUTCDate());
      const lb = new Date(db.getUTCFullYear(), db.getUTCMonth(), db.getUTCDate());
      expect(monthsBetween(a, b)).toBe(differenceInMonths(la, lb));
    }
  });

  test('the PRNG is deterministic per key', () => {
    const a = new Rng(1, 2024, 3), b = new Rng(1, 2024, 3), c = new Rng(1, 2024, 4);
    const xa = Array.from({ length: 5 }, () => a.u32());
    expect(Array.from({ length: 5 }, () => b.u32())).toEqual(xa);
    expect(Array.from({ length: 5 }, () => c.u32())).not.toEqual(xa);
  });
});

describe('migstat generate on the command line', () => {
  test('takes --data like every command (interface.md) and writes only to --out', async () => {
    const { main } = await import('../pipeline/cli');
    const out = path.join(tmp, 'cli-out'), data = path.join(tmp, 'cli-data');
    const spy = jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
    let code: number;
    try {
      code = await main(['node', 'migstat', 'generate', '--year', '2024', '--out', out, '--records', '300', '--data', data]);
    } finally {
      spy.mockRestore();
    }
    expect(code).toBe(0);
    expect(fs.readdirSync(out).filter((f) => /^moi_2024_\d\d\.csv$/.test(f))).toHaveLength(12);
    expect(fs.existsSync(data)).toBe(false);
  });
});
