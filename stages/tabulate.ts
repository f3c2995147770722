/**
 * Tables of a month from its events: immigrants, emigrants and net by territory (municipality → area →
 * region → Republic) and sex, age group, activity group, national affiliation, origin, and move type.
 * Every event counts once at its destination and once at its origin, at every level; an origin in K&M
 * (series 1998-) is nobody's emigration. Counting is done in typed arrays indexed by unit.
 * Annual tables are sums of monthly tables (sumTables), never recounted.
 */
import { ACTIVITY_GROUPS, AGE_GROUPS, ageGroupIndex, MOVE_TYPES, SEXES, type TableName } from '../pipeline/contracts';
import { D_AGE, D_FROM, D_SEX, type Event } from './month';
import { type Classification, KM_REGION, REPUBLIC, seriesOf } from './territory';

export type Cell = string | number;
export type Table = Cell[][]; // rows without header, in TABLE_HEADERS order
export type Tables = Record<string, Table>;

export const NATIONALITIES = ['01', '02', '03', '04', '05', '06', '07', '08', '09', '10', '11', '12', '13', '14', '15', '16', '17', '18', '19', '20', '21', '22', '98', '99'];
const natIndex = new Map(NATIONALITIES.map((c, i) => [c, i]));

interface Unit { level: string; code: string }

/** unitsOf's answers, per classification and year (read only by their users) */
const unitsMemo = new WeakMap<Classification, Map<number, { units: Unit[]; index: Map<string, number[]> }>>();

/** The territorial units of a reference year, in table order, and the roll-up of each municipality (made once per classification and year). */
export function unitsOf(C: Classification, year: number): { units: Unit[]; index: Map<string, number[]> } {
  let byYear = unitsMemo.get(C);
  if (!byYear) unitsMemo.set(C, (byYear = new Map()));
  let u = byYear.get(year);
  if (!u) byYear.set(year, (u = makeUnits(C, year)));
  return u;
}

function makeUnits(C: Classification, year: number): { units: Unit[]; index: Map<string, number[]> } {
  const munis = C.unitsForYear(year);
  const areas = [...new Set(munis.map((m) => m.area))].sort();
  const regions = [...new Set(munis.map((m) => m.region))].sort();
  const units: Unit[] = [{ level: 'republic', code: REPUBLIC }, ...regions.map((code) => ({ level: 'region', code })), ...areas.map((code) => ({ level: 'area', code })), ...munis.map((m) => ({ level: 'municipality', code: m.code }))];
  const pos = new Map(units.map((u, i) => [`${u.level}:${u.code}`, i]));
  const index = new Map<string, number[]>();
  for (const m of munis) index.set(m.code, [0, pos.get(`region:${m.region}`)!, pos.get(`area:${m.area}`)!, pos.get(`municipality:${m.code}`)!]);
  return { units, index };
}

export function activityGroup(e: Event): string {
  return ACTIVITY_GROUPS[activityGroupIndex(e)];
}
/** Index in ACTIVITY_GROUPS: active (1, 2), personal_income (3, 4), dependents (the rest and everyone under 15). */
function activityGroupIndex(e: Event): 0 | 1 | 2 {
  if (e.age >= 0 && e.age < 15) return 2;
  if (e.activity === '1' || e.activity === '2') return 0;
  if (e.activity === '3' || e.activity === '4') return 1;
  return 2;
}

export function moveType(C: Classification, e: Event): string {
  return MOVE_TYPES[moveTypeIndex(C, e)];
}
/** Index in MOVE_TYPES: within_municipality, between_municipalities_same_area, between_areas. */
function moveTypeIndex(C: Classification, e: Event): 0 | 1 | 2 {
  if (e.from === 'KM' || !e.from) return 2;
  if (e.from === e.to) return 0;
  return C.areaOf(e.from) === C.areaOf(e.to) ? 1 : 2;
}

/** Count events into per-unit arrays: dims = number of categories of the cross-classification. */
function counter(nUnits: number, dims: number): { imm: Int32Array; emi: Int32Array } {
  return { imm: new Int32Array(nUnits * dims), emi: new Int32Array(nUnits * dims) };
}

export function tabulate(events: Event[], C: Classification, year: number): { tables: Tables; imputed: Tables } {
  // Two functions, each one loop (LOOP_TAIL in pipeline/memo.ts): one function holding both loops was
  // deoptimised where the first loop ends every month, and compiled again (55 ms a compile) 18 times in a full rebuild.
  const { units, index } = unitsOf(C, year);
  return tableRows(units, seriesOf(year), countEvents(events, C, year, units.length, index));
}

/** The counts of a month's events, per unit and category. */
interface Counts {
  terr: { imm: Int32Array; emi: Int32Array }; terrImp: { imm: Int32Array; emi: Int32Array };
  age: { imm: Int32Array; emi: Int32Array }; ageImp: { imm: Int32Array; emi: Int32Array };
  actv: { imm: Int32Array; emi: Int32Array }; nat: { imm: Int32Array; emi: Int32Array };
  mt: Int32Array; mtImp: Int32Array;
  /** origin code → per-unit immigrants */
  origin: Map<string, Int32Array>;
}

function countEvents(events: Event[], C: Classification, year: number, U: number, index: Map<string, number[]>): Counts {
  const terr = counter(U, 3), terrImp = counter(U, 3);
  const age = counter(U, 3 * AGE_GROUPS.length), ageImp = counter(U, 3 * AGE_GROUPS.length);
  const actv = counter(U, 3 * ACTIVITY_GROUPS.length);
  const nat = counter(U, NATIONALITIES.length);
  const mt = new Int32Array(U * 4), mtImp = new Int32Array(U * 4);
  const origin = new Map<string, Int32Array>([['KM', new Int32Array(U)]]);
  const km = origin.get('KM')!;
  const counts: Counts = { terr, terrImp, age, ageImp, actv, nat, mt, mtImp, origin }; // (before the loop: see LOOP_TAIL in pipeline/memo.ts)
  // per event: its category indices computed once (no array of strings searched), then counted for the sex total (0) and its sex
  for (const e of events) {
    const dest = index.get(e.to);
    if (!dest) throw new Error(`event ${e.record_id}: destination ${e.to} is not a unit of ${year}`);
    const orig = e.from === 'KM' ? undefined : index.get(e.from);
    if (e.from !== 'KM' && !orig) throw new Error(`event ${e.record_id}: origin ${e.from} is not a unit of ${year}`);
    const s = e.sex === '1' ? 1 : 2;
    const ag = ageGroupIndex(e.age);
    const acg = activityGroupIndex(e);
    const ng = natIndex.get(e.nationality) ?? -1;
    const m = moveTypeIndex(C, e);
    const sexImp = e.donor & D_SEX ? 1 : 0;
    const fromImp = e.donor & D_FROM ? 1 : 0;
    // the age group of the sex total does not depend on an imputed sex (only the cells of that sex do)
    const ageImpF = e.donor & D_AGE ? 1 : 0;
    for (const u of dest) {
      for (let t = 0; t < 2; t++) {
        const si = t === 0 ? 0 : s;
        terr.imm[u * 3 + si]!++;
        age.imm[(u * 3 + si) * AGE_GROUPS.length + ag]!++;
        actv.imm[(u * 3 + si) * ACTIVITY_GROUPS.length + acg]!++;
        if (sexImp && si) terrImp.imm[u * 3 + si]!++;
        if (ageImpF || (sexImp && si)) ageImp.imm[(u * 3 + si) * AGE_GROUPS.length + ag]!++;
      }
      nat.imm[u * NATIONALITIES.length + ng]!++;
      mt[u * 4 + m]!++;
      mt[u * 4 + 3]!++;
      if (fromImp) mtImp[u * 4 + m]!++; // (the origin decides the type, not the total)
    }
    if (orig) {
      for (const u of orig) {
        for (let t = 0; t < 2; t++) {
          const si = t === 0 ? 0 : s;
          terr.emi[u * 3 + si]!++;
          age.emi[(u * 3 + si) * AGE_GROUPS.length + ag]!++;
          actv.emi[(u * 3 + si) * ACTIVITY_GROUPS.length + acg]!++;
          if (fromImp || (sexImp && si)) terrImp.emi[u * 3 + si]!++;
          if (fromImp || ageImpF || (sexImp && si)) ageImp.emi[(u * 3 + si) * AGE_GROUPS.length + ag]!++;
        }
        nat.emi[u * NATIONALITIES.length + ng]!++;
      }
    } else {
      for (const u of dest) km[u]!++;
    }
  }
  return counts;
}

/** The rows of a month's tables from its counts. */
function tableRows(units: Unit[], series: string, c: Counts): { tables: Tables; imputed: Tables } {
  const { terr, terrImp, age, ageImp, actv, nat, mt, mtImp, origin } = c;
  const U = units.length;
  const originCodes = ['KM'];
  const territory: Table = [], territoryImp: Table = [], ageT: Table = [], ageImpT: Table = [], actT: Table = [], natT: Table = [], mtT: Table = [], mtImpT: Table = [], originT: Table = [];
  // plain loops, not forEach callbacks: a callback made per call is compiled again every month (see stages/month.ts)
  for (let ui = 0; ui < U; ui++) {
    const u = units[ui]!;
    for (let si = 0; si < SEXES.length; si++) {
      const sx = SEXES[si]!;
      const k = ui * 3 + si;
      territory.push([series, u.level, u.code, sx, terr.imm[k]!, terr.emi[k]!, terr.imm[k]! - terr.emi[k]!]);
      territoryImp.push([series, u.level, u.code, sx, terrImp.imm[k]!, terrImp.emi[k]!]);
      for (let gi = 0; gi < AGE_GROUPS.length; gi++) {
        const g = AGE_GROUPS[gi]!;
        const kk = k * AGE_GROUPS.length + gi;
        ageT.push([series, u.level, u.code, sx, g, age.imm[kk]!, age.emi[kk]!, age.imm[kk]! - age.emi[kk]!]);
        ageImpT.push([series, u.level, u.code, sx, g, ageImp.imm[kk]!, ageImp.emi[kk]!]);
      }
      for (let gi = 0; gi < ACTIVITY_GROUPS.length; gi++) {
        const kk = k * ACTIVITY_GROUPS.length + gi;
        actT.push([series, u.level, u.code, sx, ACTIVITY_GROUPS[gi]!, actv.imm[kk]!, actv.emi[kk]!, actv.imm[kk]! - actv.emi[kk]!]);
      }
    }
    if (u.level !== 'municipality') for (let gi = 0; gi < NATIONALITIES.length; gi++) {
      const kk = ui * NATIONALITIES.length + gi;
      natT.push([series, u.level, u.code, NATIONALITIES[gi]!, nat.imm[kk]!, nat.emi[kk]!, nat.imm[kk]! - nat.emi[kk]!]);
    }
    for (let ti = 0; ti < MOVE_TYPES.length; ti++) {
      mtT.push([series, u.level, u.code, MOVE_TYPES[ti]!, mt[ui * 4 + ti]!]);
      mtImpT.push([series, u.level, u.code, MOVE_TYPES[ti]!, mtImp[ui * 4 + ti]!]);
    }
    if (series === '1998-') for (const oc of originCodes) originT.push([series, u.level, u.code, oc, origin.get(oc)?.[ui] ?? 0]);
  }
  return {
    tables: { territory, move_type: mtT, age: ageT, activity: actT, nationality: natT, origin: originT },
    imputed: { territory_imputed: territoryImp, age_imputed: ageImpT, move_type_imputed: mtImpT },
  };
}

/** Cell-by-cell sum of tables with identical keys (annual = Σ months). Numeric columns from `firstNumeric`. */
export function sumTables(parts: Table[], keyCols: number): Table {
  if (!parts.length) return [];
  const out = parts[0]!.map((r) => r.slice());
  for (const p of parts.slice(1)) {
    if (p.length !== out.length) throw new Error('tables to sum have different rows');
    // no global lookups (String, Number) in this loop: under jest's vm context each costs ~10× the work
    for (let i = 0; i < p.length; i++) {
      const r = p[i]!, o = out[i]!;
      for (let k = 0; k < keyCols; k++) if (o[k] !== r[k] && `${o[k]}` !== `${r[k]}`) throw new Error(`tables to sum differ at row ${i + 1}: ${o.slice(0, keyCols)} vs ${r.slice(0, keyCols)}`);
      for (let k = keyCols; k < r.length; k++) o[k] = +o[k]! + +r[k]!;
    }
  }
  return out;
}

export interface CheckResult { id: string; ok: boolean; imbalance: number; detail: string }

/**
 * Consistency checks (practice.md hierarchy checks): municipalities sum to areas, areas to regions, regions
 * to the Republic; Republic move types sum to the total; net = immigrants − emigrants; total immigrants =
 * total emigrants + arrivals from K&M. Missing cells count as zero.
 */
export function checkTables(tables: Tables, C: Classification, year: number): CheckResult[] {
  const res: CheckResult[] = [];
  const terr = tables.territory!;
  const val = territoryValues(terr);
  const munis = C.unitsForYear(year);
  const hier: [string, string, Map<string, number[]>][] = [
    ['H1_MUNICIPALITIES_SUM_TO_AREAS', 'area', parentSums(munis, val, 'area')],
    ['H2_MUNICIPALITIES_SUM_TO_REGIONS', 'region', parentSums(munis, val, 'region')],
    ['H3_MUNICIPALITIES_SUM_TO_REPUBLIC', 'republic', parentSums(munis, val, 'republic')],
  ];
  for (const [id, , sums] of hier) res.push({ id, ...imbalance(sums, val) });
  const netBad = netMismatches(terr);
  res.push({ id: 'N1_NET_IS_IMMIGRANTS_MINUS_EMIGRANTS', ok: netBad === 0, imbalance: netBad, detail: `${netBad} rows differ` });
  const { mtSum, mtTot } = moveTypeTotals(tables.move_type!);
  res.push({ id: 'M1_MOVE_TYPES_SUM_TO_TOTAL', ok: mtSum === mtTot, imbalance: Math.abs(mtSum - mtTot), detail: `types ${mtSum}, total ${mtTot}` });
  const rs = val.get(`republic:${REPUBLIC}:T`)!;
  const km = kmArrivals(tables.origin ?? []);
  res.push({ id: 'B1_IMMIGRANTS_EQUAL_EMIGRANTS_PLUS_KM', ok: rs[0] === rs[1]! + km, imbalance: Math.abs(rs[0]! - rs[1]! - km), detail: `immigrants ${rs[0]}, emigrants ${rs[1]}, arrivals from K&M ${km}` });
  res.push({ id: 'T1_MOVE_TYPE_TOTAL_EQUALS_IMMIGRANTS', ok: mtTot === rs[0], imbalance: Math.abs(mtTot - rs[0]!), detail: `move-type total ${mtTot}, immigrants ${rs[0]}` });
  if (seriesOf(year) === '1998-') {
    const kmRows = kmRegionRows(terr);
    res.push({ id: 'S1_SERIES_1998_EXCLUDES_KM', ok: kmRows === 0, imbalance: kmRows, detail: `${kmRows} K&M rows` });
  }
  return res;
}

// The loops of checkTables, each a function of its own (checkTables runs for every month and year: a loop inside it
// made V8 compile the whole function on the stack again and again), and loops rather than filter/reduce callbacks
// (see stages/month.ts on closures made per call).

/** immigrants, emigrants, net of each territory row, by "level:code:sex" */
function territoryValues(terr: Table): Map<string, number[]> {
  const val = new Map<string, number[]>();
  for (const r of terr) val.set(`${r[1]}:${r[2]}:${r[3]}`, [Number(r[4]), Number(r[5]), Number(r[6])]);
  return val;
}

/** How far the sums of the municipalities are from their parents' rows (immigrants and emigrants). */
function imbalance(sums: Map<string, number[]>, val: Map<string, number[]>): { ok: boolean; imbalance: number; detail: string } {
  let imb = 0; const bad: string[] = [];
  for (const [k, [i, e]] of sums) {
    const v = val.get(k) ?? [0, 0];
    const d = Math.abs(v[0]! - i!) + Math.abs(v[1]! - e!);
    if (d) { imb += d; bad.push(k); }
  }
  return { ok: imb === 0, imbalance: imb, detail: bad.length ? `unbalanced: ${bad.slice(0, 5).join(', ')}` : 'ok' };
}

function netMismatches(terr: Table): number {
  let netBad = 0;
  for (const r of terr) if (Number(r[6]) !== Number(r[4]) - Number(r[5])) netBad++;
  return netBad;
}

/** The Republic's move types summed, and its total row (the first). */
function moveTypeTotals(rows: Table): { mtSum: number; mtTot: number } {
  let mtSum = 0, mtTot = 0, mtFound = false;
  for (const r of rows) if (r[1] === 'republic') { if (r[3] !== 'total') mtSum += Number(r[4]); else if (!mtFound) { mtFound = true; mtTot = Number(r[4]); } }
  return { mtSum, mtTot };
}

function kmArrivals(origin: Table): number {
  let km = 0;
  for (const r of origin) if (r[1] === 'republic' && r[3] === 'KM') km += Number(r[4]);
  return km;
}

function kmRegionRows(terr: Table): number {
  let kmRows = 0;
  for (const r of terr) if (r[1] === 'region' && r[2] === KM_REGION) kmRows++;
  return kmRows;
}

/** Immigrants and emigrants of the municipalities summed by their area, region or the Republic ("level:code:sex" → [imm, emi]). */
function parentSums(munis: { code: string; area: string; region: string }[], val: Map<string, number[]>, level: 'area' | 'region' | 'republic'): Map<string, number[]> {
  const s = new Map<string, number[]>();
  for (const m of munis) for (const sx of SEXES) {
    const k = `${level}:${level === 'republic' ? REPUBLIC : m[level]}:${sx}`;
    const v = val.get(`municipality:${m.code}:${sx}`)!;
    const a = s.get(k) ?? [0, 0];
    s.set(k, [a[0]! + v[0]!, a[1]! + v[1]!]);
  }
  return s;
}

export const TABLE_KEY_COLS: Record<TableName | 'territory_imputed' | 'age_imputed' | 'move_type_imputed', number> = {
  territory: 4, move_type: 4, age: 5, activity: 5, nationality: 4, origin: 4, rates: 3, territory_imputed: 4, age_imputed: 5, move_type_imputed: 4,
};
