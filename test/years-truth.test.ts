/**
 * Generated years 1997 (series 1991-1997), 1998 (the first year of series 1998-) and 2024 run through the
 * pipeline in the monthly cadence (runMonth, then close) and the annual run, in one store, in calendar
 * order. Every cell of territory.csv and move_type.csv, monthly and annual, is compared with the
 * generator's ground truth:
 *
 *  - exactly, where no donor-imputed event touches the cell;
 *  - within a tolerance where some do: |pipeline − truth| ≤ the number of donor-touched events of the cell.
 *
 * Why that tolerance is a bound and not a guess: every other event carries its true values into the tables
 * (the counts of quality.json equal the truth, and deduction recovers the rest exactly), so the two counts
 * of a cell differ only by donor-imputed events. Such an event adds 1 to the cell under its imputed values
 * and 1 to it under its true values; when it counts under exactly one of them the cell is off by one, so n
 * such events move the cell by at most n. "Touches" is narrowed to the donor-imputed variables the table
 * depends on: territory by sex and origin (the destination and the event itself are never imputed), the
 * move type by origin only. An event whose only imputed value is its age or activity must leave both tables
 * exact — a stricter test than "any donor-imputed event".
 *
 * The same bound applies to the arrivals from K&M (origin.csv): an event whose origin was imputed counts
 * there under its imputed or its true origin.
 *
 * The age, activity and nationality tables are held to an exact comparison instead: the test tabulates the
 * truth's events itself, giving each event the pipeline's value only where a donor gave one
 * (expectedCrossTables), so every reported or deduced age, sex, activity, nationality and origin is checked.
 *
 * Also: the consistency checks, the two series (K&M units in 1997 only; arrivals from K&M as the separate
 * origin from 1998), no mixing of series in the annual tables and SDMX datasets, closed months unchanged
 * byte for byte after later months ran, annual = Σ months cell by cell for every table, and the rates per
 * 1 000 population of the generator's population file against an independent computation.
 *
 * Stores: 1997 and 1998 share one (so January 1998 receives late forms of the closed December 1997 across
 * the change of series); 2024 has its own, as after 1998 the store would otherwise hold 2023-12 as a month
 * never received and so still open, and the truth assumes the cadence (every earlier month closed).
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { generate } from '../fixtures/generator';
import { monthsOfYear as monthsOf, TABLE_HEADERS, type Quality } from '../pipeline/contracts';
import ExcelJS from 'exceljs';
import { readCsvText, readTable, type Row } from '../pipeline/csv';
import { listFiles } from '../pipeline/fsutil';
import { runMonth } from '../pipeline/month';
import { Store } from '../pipeline/store';
import { runYear } from '../pipeline/year';
import { KM_REGION, loadClassification, SERIES_NOTE } from '../stages/territory';
import { logFor, tmpDir } from './helpers/store';

const YEARS = [1997, 1998, 2024] as const;
const RECORDS: Record<number, number> = { 1997: 6000, 1998: 6000, 2024: 8000 };
const SEED = 20;
const C = loadClassification();

const read = (f: string): Row[] => readCsvText(fs.readFileSync(f, 'utf8'));
/** A table file of the pipeline or the truth as row objects, read fast (the header is checked). */
const readT = (f: string, header: readonly string[]): Row[] => readTable(f, header).map((r) => Object.fromEntries(header.map((h, i) => [h, r[i]!])));
const TERR = TABLE_HEADERS.territory;
const MT = TABLE_HEADERS.move_type;
const hashDir = (dir: string): Record<string, string> =>
  Object.fromEntries(listFiles(dir).map((f) => [f, crypto.createHash('sha256').update(fs.readFileSync(path.join(dir, f))).digest('hex')]));

const STORE_OF: Record<number, string> = { 1997: tmpDir(), 2024: tmpDir() };
STORE_OF[1998] = STORE_OF[1997]!;
const outs: Record<number, string> = {};
/** months/<m>/ file hashes taken right after the month was closed */
const closedHashes: Record<string, Record<string, string>> = {};

beforeAll(async () => {
  for (const y of YEARS) {
    const d = STORE_OF[y]!;
    const log = logFor(d);
    const store = new Store(d);
    outs[y] = tmpDir();
    const g = generate({ year: y, out: outs[y]!, seed: SEED, records: RECORDS[y] });
    for (const f of g.files.filter((x) => x.endsWith('.csv')).sort()) {
      const r = runMonth({ data: d, input: f, log });
      store.close([r.fileMonth], 'test cadence');
      closedHashes[r.fileMonth] = hashDir(store.monthDir(r.fileMonth));
    }
    await runYear({ data: d, year: y, log, population: g.population });
  }
});

/** The truth of every event: record_id → its true row of truth/records.csv. */
function truthEvents(y: number): Map<string, Row> {
  return new Map(read(path.join(outs[y]!, 'truth', 'records.csv')).filter((r) => r.disposition === 'event').map((r) => [r.record_id!, r]));
}

interface Touch { territory: Map<string, number>; move_type: Map<string, number>; origin_km: Map<string, number> }

/**
 * Cells touched by donor-imputed events of the given months: cell key → number of events. An event is
 * counted once per cell even when both its imputed and its true values lead to that cell.
 */
function touchedCells(y: number, months: string[], truth: Map<string, Row>): Touch {
  const t: Touch = { territory: new Map(), move_type: new Map(), origin_km: new Map() };
  const bump = (m: Map<string, number>, keys: Set<string>): void => { for (const k of keys) m.set(k, (m.get(k) ?? 0) + 1); };
  const units = (code: string): [string, string][] => {
    if (!code || code === 'KM') return [];
    const mu = C.municipalities.get(code)!;
    return [['republic', 'RS'], ['region', mu.region], ['area', mu.area], ['municipality', code]];
  };
  for (const m of months) {
    for (const e of read(path.join(STORE_OF[y]!, 'months', m, 'events.csv'))) {
      const donor = e.donor_imputed ? e.donor_imputed.split(';') : [];
      const sexImp = donor.includes('sex');
      const fromImp = donor.includes('from');
      if (!sexImp && !fromImp) continue;
      const tr = truth.get(e.record_id!);
      if (!tr) throw new Error(`event ${e.record_id} is not an event of the truth`);
      const imputed = { sex: e.sex!, from: e.origin_km === '1' ? 'KM' : e.from_municipality!, to: e.to_municipality!, mt: e.move_type! };
      const real = { sex: tr.sex!, from: tr.from_municipality!, to: tr.to_municipality!, mt: tr.move_type! };
      const terr = new Set<string>();
      for (const v of [imputed, real]) {
        const sx = v.sex === '1' ? 'M' : 'F';
        for (const [lv, code] of units(v.to)) { if (sexImp) terr.add(`${lv}:${code}:${sx}:immigrants`); }
        for (const [lv, code] of units(v.from)) {
          for (const s of ['T', sx]) if (fromImp || (sexImp && s !== 'T')) terr.add(`${lv}:${code}:${s}:emigrants`);
        }
      }
      bump(t.territory, terr);
      if (fromImp) {
        const mt = new Set<string>();
        for (const v of [imputed, real]) for (const [lv, code] of units(v.to)) mt.add(`${lv}:${code}:${v.mt}`);
        bump(t.move_type, mt);
        if (imputed.from === 'KM' || real.from === 'KM') bump(t.origin_km, new Set(units(real.to).map(([lv, code]) => `${lv}:${code}`)));
      }
    }
  }
  return t;
}

interface Cmp { exact: number; tolerated: number; touchedDiffering: number; maxDiff: number; problems: string[] }

/** Compare every cell of a pipeline table with the truth table (same rows, same order). */
function compareTables(kind: 'territory' | 'move_type', got: Row[], want: Row[], touch: Map<string, number>): Cmp {
  const res: Cmp = { exact: 0, tolerated: 0, touchedDiffering: 0, maxDiff: 0, problems: [] };
  if (got.length !== want.length) res.problems.push(`${kind}: ${got.length} rows, truth has ${want.length}`);
  const key = (r: Row): string => (kind === 'territory' ? `${r.series}:${r.level}:${r.code}:${r.sex}` : `${r.series}:${r.level}:${r.code}:${r.move_type}`);
  const wantBy = new Map(want.map((r) => [key(r), r]));
  const measures = kind === 'territory' ? ['immigrants', 'emigrants', 'net'] : ['migrants'];
  for (const r of got) {
    const w = wantBy.get(key(r));
    if (!w) { res.problems.push(`${kind}: row ${key(r)} not in the truth`); continue; }
    for (const ms of measures) {
      const cell = kind === 'territory' ? `${r.level}:${r.code}:${r.sex}` : `${r.level}:${r.code}:${r.move_type}`;
      const tol = ms === 'net' ? (touch.get(`${cell}:immigrants`) ?? 0) + (touch.get(`${cell}:emigrants`) ?? 0) : (touch.get(kind === 'territory' ? `${cell}:${ms}` : cell) ?? 0);
      const d = Math.abs(Number(r[ms]) - Number(w[ms]));
      if (tol === 0) {
        if (d !== 0) res.problems.push(`${kind} ${cell} ${ms}: ${r[ms]} ≠ truth ${w[ms]} (no donor-imputed event touches it)`);
        else res.exact++;
      } else {
        if (d > tol) res.problems.push(`${kind} ${cell} ${ms}: ${r[ms]} vs truth ${w[ms]}, |diff| ${d} > ${tol} donor-touched events`);
        else res.tolerated++;
        if (d) res.touchedDiffering++;
        res.maxDiff = Math.max(res.maxDiff, d);
      }
    }
  }
  return res;
}

/**
 * The age, activity and nationality tables of the given months, tabulated here from the truth's events (not
 * by stages/tabulate.ts): key `level:code:sex:category` (sex T for nationality, which has no sex dimension) →
 * [immigrants, emigrants]. An event counts with its true values, except the values a donor gave it
 * (events.csv donor_imputed): those are random by design, so the pipeline's value is taken for them — the
 * comparison is then exact, and holds every deduced or reported value of every event to the truth. A donor-
 * imputed birth date changes the age, and so also the activity group (everyone under 15 is a dependent).
 * `substituted`: how many events took a donor's value.
 */
function expectedCrossTables(y: number, months: string[], truth: Map<string, Row>): { age: Map<string, number[]>; activity: Map<string, number[]>; nationality: Map<string, number[]>; substituted: number } {
  const out = { age: new Map<string, number[]>(), activity: new Map<string, number[]>(), nationality: new Map<string, number[]>(), substituted: 0 };
  const units = (code: string): string[] => {
    if (!code || code === 'KM') return [];
    const mu = C.municipalities.get(code)!;
    return ['republic:RS', `region:${mu.region}`, `area:${mu.area}`, `municipality:${code}`];
  };
  const bump = (m: Map<string, number[]>, k: string, side: 0 | 1): void => {
    const v = m.get(k) ?? [0, 0];
    v[side]!++;
    m.set(k, v);
  };
  // five-year groups in SDMX AGE codes, written out here rather than taken from the pipeline's contracts
  const ageGroup = (age: number): string => (age >= 85 ? 'Y_GE85' : `Y${age - (age % 5)}T${age - (age % 5) + 4}`);
  const activityGroup = (age: number, act: string): string => (age < 15 ? 'dependents' : act === '1' || act === '2' ? 'active' : act === '3' || act === '4' ? 'personal_income' : 'dependents');
  for (const m of months) {
    for (const e of read(path.join(STORE_OF[y]!, 'months', m, 'events.csv'))) {
      const tr = truth.get(e.record_id!);
      if (!tr) throw new Error(`event ${e.record_id} is not an event of the truth`);
      const donor = new Set(e.donor_imputed ? e.donor_imputed.split(';') : []);
      if (donor.size) out.substituted++;
      const sex = donor.has('sex') ? e.sex! : tr.sex!;
      const age = Number(tr.age);
      const ag = donor.has('birth_date') ? e.age_group! : ageGroup(age);
      const acg = donor.has('birth_date') || donor.has('economic_activity') ? e.activity_group! : activityGroup(age, tr.economic_activity!);
      const from = donor.has('from') ? (e.origin_km === '1' ? 'KM' : e.from_municipality!) : tr.from_municipality!;
      const sexes = ['T', sex === '1' ? 'M' : 'F'];
      for (const [code, side] of [[tr.to_municipality!, 0], [from, 1]] as const) {
        for (const u of units(code)) {
          for (const s of sexes) {
            bump(out.age, `${u}:${s}:${ag}`, side);
            bump(out.activity, `${u}:${s}:${acg}`, side);
          }
          bump(out.nationality, `${u}:T:${tr.nationality}`, side);
        }
      }
    }
  }
  return out;
}

describe.each(YEARS.map((y) => [y]))('year %i against the generator truth', (y) => {
  const series = y <= 1997 ? '1991-1997' : '1998-';
  const data = STORE_OF[y]!;
  let truth: Map<string, Row>;
  let touchYear: Touch;
  beforeAll(() => {
    truth = truthEvents(y);
    touchYear = touchedCells(y, monthsOf(y), truth);
  });

  test('every monthly cell of territory.csv and move_type.csv equals the truth (exact where no donor imputation touches it)', () => {
    let exact = 0, tolerated = 0, differing = 0;
    const problems: string[] = [];
    for (const m of monthsOf(y)) {
      const touch = touchedCells(y, [m], truth);
      for (const kind of ['territory', 'move_type'] as const) {
        const h = kind === 'territory' ? TERR : MT;
        const r = compareTables(kind, readT(path.join(data, 'months', m, 'tables', `${kind}.csv`), h), readT(path.join(outs[y]!, 'truth', 'months', m, `${kind}.csv`), h), touch[kind]);
        exact += r.exact; tolerated += r.tolerated; differing += r.touchedDiffering;
        problems.push(...r.problems.map((p) => `${m} ${p}`));
      }
    }
    expect(problems.slice(0, 20)).toEqual([]);
    // the comparison has teeth: most cells are held to exact equality, and imputation does touch some
    expect(exact).toBeGreaterThan(10 * tolerated);
    expect(tolerated).toBeGreaterThan(0);
    expect(differing).toBeLessThanOrEqual(tolerated);
  });

  test('every annual cell of territory.csv and move_type.csv equals the truth (exact where no donor imputation touches it)', () => {
    for (const kind of ['territory', 'move_type'] as const) {
      const h = kind === 'territory' ? TERR : MT;
      const r = compareTables(kind, readT(path.join(data, 'years', String(y), 'tables', `${kind}.csv`), h), readT(path.join(outs[y]!, 'truth', 'year', `${kind}.csv`), h), touchYear[kind]);
      expect(r.problems.slice(0, 20)).toEqual([]);
      expect(r.exact).toBeGreaterThan(0);
    }
  });

  test('quality counts of the year equal the truth; every consistency check holds, monthly and annual', () => {
    const t = JSON.parse(fs.readFileSync(path.join(outs[y]!, 'truth', 'year', 'quality.json'), 'utf8'));
    const q = JSON.parse(fs.readFileSync(path.join(data, 'years', String(y), 'quality.json'), 'utf8')) as Quality;
    for (const k of ['forms_read', 'duplicates', 'quarantined', 'events', 'delayed_events', 'carried_forward', 'unmatched_departures', 'linked_departures', 'replaced_versions', 'corrections_to_closed'] as const)
      expect([k, q[k]]).toEqual([k, t[k]]);
    expect(q.series).toBe(series);
    expect(q.identity.holds).toBe(true);
    // quarantined forms by reason: the year's sum of the months, as the truth counts them
    expect(q.quarantine_reasons).toEqual(Object.fromEntries(Object.entries(t.quarantine_reasons as Record<string, number>).filter(([, v]) => v > 0).sort()));
    expect(Object.keys(q.quarantine_reasons!).length).toBeGreaterThan(2);
    const ids = ['H1_MUNICIPALITIES_SUM_TO_AREAS', 'H2_MUNICIPALITIES_SUM_TO_REGIONS', 'H3_MUNICIPALITIES_SUM_TO_REPUBLIC', 'N1_NET_IS_IMMIGRANTS_MINUS_EMIGRANTS', 'M1_MOVE_TYPES_SUM_TO_TOTAL', 'B1_IMMIGRANTS_EQUAL_EMIGRANTS_PLUS_KM', 'T1_MOVE_TYPE_TOTAL_EQUALS_IMMIGRANTS', ...(series === '1998-' ? ['S1_SERIES_1998_EXCLUDES_KM'] : [])];
    for (const p of [...monthsOf(y).map((m) => path.join(data, 'months', m, 'quality.json')), path.join(data, 'years', String(y), 'quality.json')]) {
      const qq = JSON.parse(fs.readFileSync(p, 'utf8')) as Quality;
      expect(qq.checks.map((c) => c.id).sort()).toEqual([...ids].sort());
      expect(qq.checks.filter((c) => !c.ok)).toEqual([]);
    }
    // and independently of the pipeline's own checks, on the annual table: every level is the sum of its municipalities
    const terr = readT(path.join(data, 'years', String(y), 'tables', 'territory.csv'), TERR);
    const munis = terr.filter((r) => r.level === 'municipality');
    for (const r of terr.filter((x) => x.level !== 'municipality')) {
      const members = munis.filter((m) => m.sex === r.sex && (r.level === 'republic' || (r.level === 'region' ? C.regionOf(m.code!) : C.areaOf(m.code!)) === r.code));
      for (const ms of ['immigrants', 'emigrants', 'net']) expect([r.level, r.code, r.sex, ms, Number(r[ms])]).toEqual([r.level, r.code, r.sex, ms, members.reduce((a, m) => a + Number(m[ms]), 0)]);
    }
  });

  test(`series ${series}: ${y <= 1997 ? 'K&M is part of the Republic' : 'no K&M unit, arrivals from K&M shown as the separate origin'}`, () => {
    const dir = path.join(data, 'years', String(y), 'tables');
    const terr = readT(path.join(dir, 'territory.csv'), TERR);
    const origin = readT(path.join(dir, 'origin.csv'), TABLE_HEADERS.origin);
    const inKm = (r: Row): boolean => r.code === KM_REGION || (r.level === 'area' && C.areas.get(r.code!)?.region === KM_REGION) || (r.level === 'municipality' && C.isKM(r.code!));
    const tq = JSON.parse(fs.readFileSync(path.join(outs[y]!, 'truth', 'year', 'quality.json'), 'utf8'));
    const tables = new Map<string, Row[]>();
    for (const [name, header] of Object.entries(TABLE_HEADERS)) {
      const f = path.join(dir, `${name}.csv`);
      if (fs.existsSync(f)) tables.set(name, readT(f, header));
    }
    expect([...tables.keys()].sort()).toEqual(Object.keys(TABLE_HEADERS).sort());
    for (const [name, rows] of tables) expect([name, rows.filter((r) => r.series !== series).length]).toEqual([name, 0]);
    const rs = (sex: string): Row => terr.find((r) => r.level === 'republic' && r.sex === sex)!;
    if (series === '1991-1997') {
      const kmMunis = C.unitsForYear(y).filter((m) => m.region === KM_REGION).map((m) => m.code);
      expect(kmMunis.length).toBeGreaterThan(20);
      expect(terr.filter((r) => r.level === 'municipality' && C.isKM(r.code!) && r.sex === 'T').map((r) => r.code).sort()).toEqual(kmMunis.sort());
      const km = terr.find((r) => r.level === 'region' && r.code === KM_REGION && r.sex === 'T')!;
      // the generator sends about 6 % of its moves to K&M: the region is populated, and the Republic contains it
      expect(Number(km.immigrants)).toBeGreaterThan(0);
      expect(origin.length).toBe(0);
      expect(rs('T').immigrants).toBe(rs('T').emigrants);
      expect(tq.arrivals_from_km).toBe(0);
    } else {
      for (const [name, rows] of tables) expect([name, rows.filter(inKm).map((r) => `${r.level}:${r.code}`)]).toEqual([name, []]);
      expect(tq.arrivals_from_km).toBeGreaterThan(0);
      // every unit has its K&M row; the count is the truth's (within the donor bound where an imputed origin is involved)
      const byUnit = new Map<string, number>();
      for (const r of truth.values()) {
        if (r.from_municipality !== 'KM') continue;
        const mu = C.municipalities.get(r.to_municipality!)!;
        for (const k of ['republic:RS', `region:${mu.region}`, `area:${mu.area}`, `municipality:${mu.code}`]) byUnit.set(k, (byUnit.get(k) ?? 0) + 1);
      }
      const units = terr.filter((r) => r.sex === 'T').map((r) => `${r.level}:${r.code}`);
      expect(origin.map((r) => `${r.level}:${r.code}`)).toEqual(units);
      const bad = origin.filter((r) => {
        const k = `${r.level}:${r.code}`;
        return r.origin !== 'KM' || Math.abs(Number(r.migrants) - (byUnit.get(k) ?? 0)) > (touchYear.origin_km.get(k) ?? 0);
      });
      expect(bad).toEqual([]);
      const kmRs = Number(origin.find((r) => r.level === 'republic')!.migrants);
      expect(Math.abs(kmRs - tq.arrivals_from_km)).toBeLessThanOrEqual(touchYear.origin_km.get('republic:RS') ?? 0);
      // the balance of the series: total immigrants = total emigrants + arrivals from K&M
      expect(Number(rs('T').immigrants)).toBe(Number(rs('T').emigrants) + kmRs);
    }
  });

  test('the annual SDMX datasets belong to one series and carry its note, never the other\'s', () => {
    const sdmx = path.join(data, 'years', String(y), 'sdmx');
    const own = series === '1991-1997' ? 'IMIGR_1991_1997' : 'IMIGR_1998';
    const other = series === '1991-1997' ? 'IMIGR_1998' : 'IMIGR_1991_1997';
    // (neither dataflow id is a substring of the other)
    for (const f of ['data.csv', 'data.json', 'data.xml']) {
      const text = fs.readFileSync(path.join(sdmx, f), 'utf8');
      expect([f, text.includes(`DF_${own}`), text.includes(`DF_${other}`)]).toEqual([f, true, false]);
    }
    // SDMX-CSV: every observation names this series' dataflow
    const lines = fs.readFileSync(path.join(sdmx, 'data.csv'), 'utf8').trimEnd().split('\n').slice(1);
    expect(lines.length).toBeGreaterThan(1000);
    expect(lines.filter((l) => !l.startsWith(`dataflow,SORS:DF_${own}(`)).length).toBe(0);
    const dataJson = JSON.parse(fs.readFileSync(path.join(sdmx, 'data.json'), 'utf8'));
    // the dataset attribute SERIES_NOTE: this series' note, never the other's
    expect(JSON.stringify(dataJson).includes(JSON.stringify(SERIES_NOTE[series]))).toBe(true);
    expect(JSON.stringify(dataJson).includes(JSON.stringify(SERIES_NOTE[series === '1998-' ? '1991-1997' : '1998-']))).toBe(false);
  });

  test('carry-forward: every closed month of the year is byte-unchanged after the later months and the years ran', () => {
    for (const m of monthsOf(y)) expect([m, hashDir(path.join(data, 'months', m))]).toEqual([m, closedHashes[m]]);
    // forms of closed months did arrive later: carried forward into the next open month, as the truth says
    const t = JSON.parse(fs.readFileSync(path.join(outs[y]!, 'truth', 'year', 'quality.json'), 'utf8'));
    expect(t.carried_forward).toBeGreaterThan(0);
    const carried = monthsOf(y).flatMap((m) => read(path.join(data, 'months', m, 'events.csv')).filter((e) => e.carried_forward === '1').map((e) => [e.record_id, m]));
    expect(carried.length).toBe(t.carried_forward);
    for (const [rid, m] of carried) {
      const tr = truth.get(rid!)!;
      expect([rid, tr.carried_forward, tr.ref_month]).toEqual([rid, '1', m]);
    }
  });

  test('every cell of age.csv, activity.csv and nationality.csv, monthly and annual, equals an independent tabulation of the truth', () => {
    let cells = 0, nonzero = 0, substituted = 0;
    const problems: string[] = [];
    for (const period of [...monthsOf(y), String(y)]) {
      const months = period.length === 4 ? monthsOf(y) : [period];
      const exp = expectedCrossTables(y, months, truth);
      substituted += exp.substituted;
      const dir = period.length === 4 ? path.join(data, 'years', period, 'tables') : path.join(data, 'months', period, 'tables');
      for (const name of ['age', 'activity', 'nationality'] as const) {
        const header = TABLE_HEADERS[name];
        const rows = readT(path.join(dir, `${name}.csv`), header);
        const cat = header[header.length - 4]!; // the classifying column before the three counts
        const levels = new Set(rows.map((r) => r.level!));
        const seen = new Set<string>();
        for (const r of rows) {
          const k = `${r.level}:${r.code}:${name === 'nationality' ? 'T' : r.sex}:${r[cat]}`;
          seen.add(k);
          const want = exp[name].get(k) ?? [0, 0];
          const got = [Number(r.immigrants), Number(r.emigrants), Number(r.net)];
          cells += 3;
          if (want[0] || want[1]) nonzero++;
          if (got.join() !== [want[0], want[1], want[0]! - want[1]!].join()) problems.push(`${period} ${name} ${k}: ${got.join(',')} ≠ truth ${want[0]},${want[1]},${want[0]! - want[1]!}`);
        }
        // nothing of the truth is missing from the table at the levels it has
        for (const [k, v] of exp[name]) if (levels.has(k.split(':')[0]!) && !seen.has(k) && (v[0] || v[1])) problems.push(`${period} ${name} ${k}: not in the table, truth ${v.join(',')}`);
      }
    }
    expect(problems.slice(0, 20)).toEqual([]);
    // the comparison has teeth: thousands of non-empty cells held exactly, and donor-imputed values were substituted
    expect(nonzero).toBeGreaterThan(2000);
    expect(cells).toBeGreaterThan(30000);
    expect(substituted).toBeGreaterThan(0);
  });

  test('annual = Σ months, cell by cell, for every table of years/<Y>/tables', () => {
    const ydir = path.join(data, 'years', String(y), 'tables');
    const names = fs.readdirSync(ydir).filter((f) => f.endsWith('.csv') && f !== 'rates.csv').sort();
    expect(names).toEqual(expect.arrayContaining(['territory.csv', 'move_type.csv', 'age.csv', 'activity.csv', 'nationality.csv', 'origin.csv', 'territory_imputed.csv', 'age_imputed.csv']));
    let cells = 0;
    for (const name of names) {
      const header = fs.readFileSync(path.join(ydir, name), 'utf8').split('\n', 1)[0]!.split(',');
      const annual = readTable(path.join(ydir, name), header);
      // classifying columns are the ones before the first count column
      const first = header.findIndex((h) => ['immigrants', 'migrants', 'immigrants_imputed', 'migrants_imputed'].includes(h));
      expect(first).toBeGreaterThan(2);
      // an independent sum keyed by the classifying columns (not by row position)
      const sum = new Map<string, number[]>();
      for (const m of monthsOf(y)) {
        const rows = readTable(path.join(data, 'months', m, 'tables', name), header);
        expect([name, m, rows.length]).toEqual([name, m, annual.length]);
        for (const r of rows) {
          const k = r.slice(0, first).join('|');
          const a = sum.get(k) ?? new Array<number>(header.length - first).fill(0);
          for (let i = first; i < header.length; i++) a[i - first]! += Number(r[i]);
          sum.set(k, a);
        }
      }
      expect([name, sum.size]).toEqual([name, annual.length]);
      const bad: string[] = [];
      for (const r of annual) {
        const k = r.slice(0, first).join('|');
        const want = sum.get(k);
        const got = r.slice(first).map(Number);
        cells += got.length;
        if (!want || want.join(',') !== got.join(',')) bad.push(`${name} ${k}: annual ${got.join(',')}, Σ months ${want?.join(',')}`);
      }
      expect(bad.slice(0, 10)).toEqual([]);
    }
    expect(cells).toBeGreaterThan(10000);
  });
});

/** 1000 × count / population to one decimal, half away from zero: by exact integer division and remainder. */
function expectedRate(count: number, population: number): string {
  const n = BigInt(Math.abs(count)) * 10000n;
  const p = BigInt(population);
  let q = n / p;
  if ((n % p) * 2n >= p) q += 1n;
  const txt = `${q / 10n}.${q % 10n}`;
  return count < 0 && q > 0n ? `-${txt}` : txt;
}

describe.each(YEARS.map((y) => [y]))('rates per 1 000 population, %i (the generator\'s population file)', (y) => {
  const data = STORE_OF[y]!;
  let pop: Map<string, number>;
  let rates: Row[];
  beforeAll(() => {
    // the population of every unit, summed here from the municipalities of the file
    pop = new Map();
    for (const r of read(path.join(outs[y]!, 'truth', 'population.csv'))) {
      const mu = C.municipalities.get(r.code!)!;
      for (const k of ['republic:RS', `region:${mu.region}`, `area:${mu.area}`, `municipality:${mu.code}`]) pop.set(k, (pop.get(k) ?? 0) + Number(r.population));
    }
    rates = readT(path.join(data, 'years', String(y), 'tables', 'rates.csv'), TABLE_HEADERS.rates);
  });

  test('one row per territory of the year, its population the sum of its municipalities', () => {
    const terr = readT(path.join(data, 'years', String(y), 'tables', 'territory.csv'), TERR).filter((r) => r.sex === 'T');
    expect(rates.map((r) => `${r.series}:${r.level}:${r.code}`)).toEqual(terr.map((r) => `${r.series}:${r.level}:${r.code}`));
    expect(rates.filter((r) => Number(r.population) !== pop.get(`${r.level}:${r.code}`))).toEqual([]);
    expect(rates.every((r) => [r.immigration_rate, r.emigration_rate, r.net_rate].every((v) => /^-?\d+\.\d$/.test(v!)))).toBe(true);
  });

  test('rates = 1000 × count / population, rounded to 0.1, of the annual territory table; and against the truth', () => {
    const terr = new Map(readT(path.join(data, 'years', String(y), 'tables', 'territory.csv'), TERR).filter((r) => r.sex === 'T').map((r) => [`${r.level}:${r.code}`, r]));
    const truthT = new Map(readT(path.join(outs[y]!, 'truth', 'year', 'territory.csv'), TERR).filter((r) => r.sex === 'T').map((r) => [`${r.level}:${r.code}`, r]));
    const touch = touchedCells(y, monthsOf(y), truthEvents(y)).territory;
    const bad: string[] = [];
    let exactVsTruth = 0;
    for (const r of rates) {
      const k = `${r.level}:${r.code}`;
      const t = terr.get(k)!, tr = truthT.get(k)!;
      const p = pop.get(k)!;
      const mine = [expectedRate(+t.immigrants!, p), expectedRate(+t.emigrants!, p), expectedRate(+t.net!, p)];
      if (mine.join() !== [r.immigration_rate, r.emigration_rate, r.net_rate].join()) bad.push(`${k}: ${[r.immigration_rate, r.emigration_rate, r.net_rate]} ≠ ${mine}`);
      // from the truth: immigrants (sex T) are never changed by imputation, so the immigration rate is exact;
      // the emigration and net rates are exact unless donor-imputed origins touch the cell, then within
      // 1000 × (touched events) / population plus the two roundings (0.05 each)
      if (r.immigration_rate !== expectedRate(+tr.immigrants!, p)) bad.push(`${k}: immigration rate ${r.immigration_rate} ≠ truth ${expectedRate(+tr.immigrants!, p)}`);
      const n = touch.get(`${k}:T:emigrants`) ?? 0;
      for (const [ms, col] of [['emigrants', 'emigration_rate'], ['net', 'net_rate']] as const) {
        const want = expectedRate(+tr[ms]!, p);
        if (n === 0 && r[col] !== want) bad.push(`${k}: ${col} ${r[col]} ≠ truth ${want} (untouched)`);
        else if (n === 0) exactVsTruth++;
        else if (Math.abs(Number(r[col]) - Number(want)) > (1000 * n) / p + 0.1 + 1e-9) bad.push(`${k}: ${col} ${r[col]} vs truth ${want} beyond the bound for ${n} touched events`);
      }
    }
    expect(bad.slice(0, 10)).toEqual([]);
    // at these small sizes imputed origins touch many units' emigrants; still most rates are held exact
    expect(exactVsTruth).toBeGreaterThan(rates.length / 2);
    // plausible: the Republic's immigration rate is 1000 × events / population
    const rs = rates.find((r) => r.level === 'republic')!;
    expect(Number(rs.immigration_rate)).toBeGreaterThan(0);
  });

  test('the workbook has the rates sheet with per-mille numbers, and the series note', async () => {
    const wb = new ExcelJS.Workbook();
    await wb.xlsx.readFile(path.join(data, 'years', String(y), 'tables.xlsx'));
    const ws = wb.getWorksheet('rates')!;
    expect(ws).toBeDefined();
    expect(ws.getRow(3).values).toEqual([undefined, 'Series', 'Level', 'Code', 'Population', 'Immigration rate (per 1 000)', 'Emigration rate (per 1 000)', 'Net migration rate (per 1 000)']);
    const first = ws.getRow(4);
    expect([1, 2, 3, 4, 5, 6, 7].map((i) => first.getCell(i).value)).toEqual([rates[0]!.series, 'republic', 'RS', Number(rates[0]!.population), Number(rates[0]!.immigration_rate), Number(rates[0]!.emigration_rate), Number(rates[0]!.net_rate)]);
    expect([5, 6, 7].map((i) => first.getCell(i).numFmt)).toEqual(['0.0', '0.0', '0.0']);
    expect(first.font?.bold).toBe(true);
    expect(ws.rowCount).toBe(rates.length + 3);
    const notes = wb.getWorksheet('notes')!;
    const text = notes.getSheetValues().flat().filter((v) => typeof v === 'string').join('\n');
    expect(text).toContain(SERIES_NOTE[y <= 1997 ? '1991-1997' : '1998-']);
  });

  test('the manifest records the population file by name and hash', () => {
    const man = JSON.parse(fs.readFileSync(path.join(data, 'years', String(y), 'manifest.json'), 'utf8'));
    expect(man.parameters.population).toBe('population.csv');
    expect(man.parameters.population_sha256).toBe(crypto.createHash('sha256').update(fs.readFileSync(path.join(outs[y]!, 'truth', 'population.csv'))).digest('hex'));
    expect(man.outputs.some((o: { path: string }) => o.path === 'tables/rates.csv')).toBe(true);
  });
});
