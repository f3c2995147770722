/**
 * The monthly statistical process on the forms of one reference month (all deliveries), pure:
 *   versions → validation rules → linkage D→R → deductive imputation (fixed order) → scope rules →
 *   donor imputation → events.
 * Every changed cell goes to the change log; every form gets a disposition.
 */
import * as crypto from 'node:crypto';
import { differenceInMonths } from 'date-fns/differenceInMonths'; // the subpath: the whole of date-fns costs 50 ms at start-up
import { type FORM_COLUMNS, InputError, squeeze, type Columns } from './ingest';
import { CsvWriter } from '../pipeline/csv';
import { pick } from './deliver';
import { ageGroupIndex } from '../pipeline/contracts';
import { KeyedCache, packedMap, RowTable } from '../pipeline/memo';
import { isValidDate } from './jmbg';
import { completedYears, evaluateRules, FAIL, type Rule, type RuleResult } from './rules';
import type { Classification } from './territory';

export interface ImputationConfig { variables: string[]; never_impute: string[]; classes: string[][] }
export interface MonthContext {
  month: string;
  classification: Classification;
  rules: Rule[];
  scopeRules: Rule[];
  imputation: ImputationConfig;
  seed: number;
  linkageWindowDays: number;
  /**
   * The caller does not read `input` afterwards (buildMonth: the forms it read or was handed for this month only):
   * its columns are squeezed and corrected in place instead of copied. Otherwise `input` is never changed.
   */
  consume?: boolean;
}

/** One event (an in-scope registration), the unit every table counts. */
export interface Event {
  record_id: string; registration_date: string; to: string; from: string; // from = municipality or 'KM'
  sex: string; age: number; activity: string; nationality: string; delay: number | null; carried_forward: boolean;
  provenance: number; donor: number; // bit flags: PROVENANCE and DONOR_VARIABLES (no Set per event: less garbage)
}

/**
 * Provenance of an event's values and its donor-imputed variables as bit flags, the names in sorted order, so
 * the names of a mask in bit order are already sorted (events.csv lists them sorted, joined with ';').
 */
export const PROVENANCE = ['carried_forward', 'deduced', 'imputed', 'recoded', 'reported'] as const;
export const P_CARRIED = 1, P_DEDUCED = 2, P_IMPUTED = 4, P_RECODED = 8, P_REPORTED = 16;
export const DONOR_VARIABLES = ['age', 'economic_activity', 'from', 'sex'] as const;
export const D_AGE = 1, D_ACTIVITY = 2, D_FROM = 4, D_SEX = 8;
/** The names of the bits set in `mask`, in order, joined with ';' (memoised: a handful of distinct masks). */
export function flagNames(mask: number, names: readonly string[]): string {
  const memo = (flagMemo.get(names) ?? flagMemo.set(names, []).get(names))!;
  let s = memo[mask];
  if (s === undefined) {
    const parts: string[] = [];
    for (let b = 0; b < names.length; b++) if (mask & (1 << b)) parts.push(names[b]!);
    s = memo[mask] = parts.join(';');
  }
  return s;
}
const flagMemo = new Map<readonly string[], string[]>();

export interface MonthOutcome {
  events: Event[];
  /** the changes.csv lines of this month's changes (no header): written as made, no object per change */
  changes: CsvWriter;
  /** the violations.csv lines (no header) */
  violations: CsvWriter;
  ruleResults: RuleResult[];
  scopeResults: RuleResult[];
  /** the dispositions.csv lines of the forms processed here (no header), written as decided: no object per form */
  dispositions: CsvWriter;
  quarantine: { file: string; line: number; record_id: string; field: string; reason: string; detail: string }[];
  counts: { forms: number; replaced: number; linked: number; unmatched: number; out_of_scope: Record<string, number>; carried_forward: number; recoded: number };
  imputed: Record<string, number>;
  imputedByMethod: Record<string, Record<string, number>>;
  /** milliseconds per step, for the stage log */
  timings: Record<string, number>;
}

/** Milliseconds (to 0.1) between successive laps, by name: the per-step timings of the stage log. */
export function stopwatch(): { timings: Record<string, number>; lap: (name: string) => void } {
  const timings: Record<string, number> = {};
  let last = process.hrtime.bigint();
  return { timings, lap: (name) => { const t = process.hrtime.bigint(); timings[name] = Math.round(Number(t - last) / 1e5) / 10; last = t; } };
}

const DAY = 86400000;
const SIDES = ['to', 'from'] as const;
const SETTLEMENT_COL = { to: 'to_settlement', from: 'from_settlement' } as const;
const MUNI_COL = { to: 'to_municipality', from: 'from_municipality' } as const;
/**
 * Whole months between move and registration (date-fns), memoised: a month has a few thousand distinct date pairs.
 * By registration date, then move date (no key string built per event).
 */
const delayMemo = new Map<string, Map<string, number>>();
let delayMemoSize = 0;
function delayMonths(reg: string, mv: string): number {
  let byMove = delayMemo.get(reg);
  if (!byMove) {
    if (delayMemoSize > 100000) { delayMemo.clear(); delayMemoSize = 0; }
    delayMemo.set(reg, (byMove = new Map()));
  }
  let d = byMove.get(mv);
  if (d === undefined) {
    d = differenceInMonths(new Date(reg + 'T00:00:00Z'), new Date(mv + 'T00:00:00Z'));
    byMove.set(mv, d);
    delayMemoSize++;
  }
  return d;
}
/** The columns processMonth corrects in place (each copied, so the input is never changed). */
const MUTABLE = new Set(['sex', 'birth_date', 'from_settlement', 'from_municipality', 'to_municipality', 'economic_activity', 'occupation']);
/**
 * The rows `keep` (increasing) of a column. A month replaces a few dozen forms out of 20 000: the kept rows are a
 * few long runs, copied as slices (native copies) instead of element by element; with many runs, by element.
 */
function pickRuns(v: string[], keep: number[], runs: number[]): string[] {
  if (runs.length > 2 * 256) return pick(v, keep);
  const slices: string[][] = [];
  for (let r = 0; r < runs.length; r += 2) slices.push(v.slice(runs[r], runs[r + 1]));
  return slices.length === 1 ? slices[0]! : ([] as string[]).concat(...slices);
}
/** The runs of consecutive rows in `keep` (increasing), as [start, end) pairs. */
function keptRuns(keep: number[]): number[] {
  const runs: number[] = [];
  for (let j = 0; j < keep.length; ) {
    let e = j + 1;
    while (e < keep.length && keep[e] === keep[e - 1]! + 1) e++;
    runs.push(keep[j]!, keep[e - 1]! + 1);
    j = e;
  }
  return runs;
}
const RESEND_FIELDS = ['form_type', 'registration_date', 'move_date', 'pid', 'citizenship', 'sex', 'birth_date', 'origin_country', 'from_settlement', 'from_municipality', 'destination_country', 'to_settlement', 'to_municipality', 'registering_office', 'nationality', 'economic_activity', 'occupation'];
const dayNumber = (d: string): number => Date.UTC(+d.slice(0, 4), +d.slice(5, 7) - 1, +d.slice(8, 10)) / DAY;

/*
 * No closures made per call in the month's hot paths: V8 compiles a function made afresh on each call afresh too,
 * and drops optimised code that inlined a closure once that closure is gone. A rebuild made ~20 such closures a
 * month (loggers, lookups, comparators, map/forEach callbacks) and recompiled them, and the functions that called
 * them, every month: a fifth of its CPU went to the optimising compiler. What they did is done by methods of the
 * classes below, by module-level functions and by plain loops.
 */

/** What processMonth writes as it goes: the change log, the dispositions and the imputation counts. */
class MonthRecords {
  readonly changes = new CsvWriter(null);
  readonly dispositions = new CsvWriter(null);
  readonly imputed: Record<string, number> = {};
  readonly byMethod: Record<string, Record<string, number>> = {};
  /** one changes.csv line, in MONTH_FILE_HEADERS.changes order */
  change(step: string, method: string, rule: string, id: string, variable: string, oldV: string, newV: string, donor: string): void {
    this.changes.cell(step).cell(method).cell(rule).cell(id).cell(variable).cell(oldV).cell(newV).cell(donor).end();
  }
  /** one dispositions.csv line, in MONTH_FILE_HEADERS.dispositions order: file,line,record_id,form_type,disposition,reason */
  disposition(file: string, line: string, id: string, type: string, what: string, reason: string): void {
    this.dispositions.cell(file).cell(line).cell(id).cell(type).cell(what).cell(reason).end();
  }
  /** one more value of `variable` imputed by `method` */
  count(variable: string, method: string): void {
    this.imputed[variable] = (this.imputed[variable] ?? 0) + 1;
    const m = (this.byMethod[variable] ??= {});
    m[method] = (m[method] ?? 0) + 1;
  }
}

/** The classification in force on a date (31 December of the month's year), for KeyedCache. */
interface On { C: Classification; date: string }
const successorOn = (code: string, on: On): string | undefined => on.C.successorOn(code, on.date);
const settlementOn = (settlement: string, on: On): string | undefined => on.C.settlementMunicipality(settlement, on.date);

let sortKeys: string[] = [];
const byKey = (a: number, b: number): number => (sortKeys[a]! < sortKeys[b]! ? -1 : 1);
/** `indices` sorted (in place) by keys[index], as `<` compares strings. */
function sortIndicesBy(indices: number[], keys: string[]): number[] {
  sortKeys = keys;
  try { indices.sort(byKey); } finally { sortKeys = []; }
  return indices;
}

export function processMonth(input: Columns, ctx: MonthContext): MonthOutcome {
  const { timings, lap } = stopwatch();
  const C = ctx.classification;
  const year = +ctx.month.slice(0, 4);
  const rec = new MonthRecords();
  const nIn = input.record_id!.length; // (before latestVersions, which may squeeze input's columns)
  // One function per step (each small: V8 compiles small functions quickly, and recompiles only the step whose
  // assumptions a new month breaks, not one function holding all of them)
  // 1. versions: the latest version of a record_id replaces the earlier ones.
  const f = latestVersions(input, year, rec, ctx.consume === true);
  const n = f.record_id!.length;
  lap('versions');
  // 2. validation rules on the forms as received.
  const ruleResults = evaluateRules(ctx.rules, f, C);
  const violations = violationLines(ruleResults, f.record_id!);
  lap('rules');
  // 3. linkage D → R: same person, dates within the window, consistent residence; closest dates win.
  const { linkOfR, linkOfD } = linkDepartures(f, ctx.linkageWindowDays);
  lap('linkage');
  // 4. deductive imputation, in a fixed order.
  const ded = deduce(f, linkOfR, C, year, rec);
  lap('deduction');
  // 5. scope rules on the corrected forms, in the order of the rule file.
  const scopeResults = evaluateRules(ctx.scopeRules, f, C);
  assertScopeEvaluated(scopeResults);
  const sc = inScope(f, scopeResults, linkOfD, ded.toFinal, rec);
  lap('scope');
  // 6. events, then donor imputation of what logic could not recover.
  const { events, carried } = makeEvents(f, sc.eventIdx, ded, C, year, rec);
  lap('events');
  donorImpute(events, ctx, rec);
  // a gap with no donor in the whole month (a tiny or very incomplete extract) cannot be tabulated: stop clearly
  let stuck = -1;
  for (let j = 0; j < events.length && stuck < 0; j++) if (gapMask(events[j]!) !== 0) stuck = j;
  if (stuck >= 0) {
    const i = sc.eventIdx[stuck]!;
    const gaps = needs(events[stuck]!);
    const field = { sex: 'sex', age: 'birth_date', from: 'from_municipality', economic_activity: 'economic_activity' }[gaps[0]!];
    throw new InputError(f.file![i]!, +f.line![i]!, field, `form ${f.record_id![i]}: ${gaps.join(', ')} unknown and no donor for it among the ${events.length} events of ${ctx.month}: too few complete forms in the month to impute from`);
  }
  lap('donors');

  return {
    events, changes: rec.changes, violations, ruleResults, scopeResults, dispositions: rec.dispositions, quarantine: sc.quarantine,
    counts: { forms: nIn, replaced: nIn - n, linked: sc.linked, unmatched: sc.unmatched, out_of_scope: sc.outCounts, carried_forward: carried, recoded: ded.recoded },
    imputed: rec.imputed, imputedByMethod: rec.byMethod, timings,
  };
}

/**
 * Step 1: the latest version of each record id (earlier ones replaced, their changed cells logged), as a copy, or
 * (consume) input's own columns with the replaced forms squeezed out in place.
 */
function latestVersions(input: Columns, year: number, rec: MonthRecords, consume: boolean): Columns {
  const nIn = input.record_id!.length;
  // the last form of each record id (a RowTable: ~1 ms a month less than a Map), and each form's slot in it
  const last = new RowTable(nIn, input.record_id!);
  const slotOf = lastOfEach(last, input.record_id!);
  const keep: number[] = new Array(nIn); // written by index, cut to length after (no growing by push)
  keep.length = keptForms(input, last, slotOf, rec, keep);
  const n = keep.length;
  // a copy: the steps below correct cells in place, the input is not changed. Only the columns corrected below
  // (MUTABLE) are copied when no form was replaced; the others are shared. A consumed input is not copied at all:
  // copying every column of ~20 000 forms (a few replaced forms in most months) cost ~5 ms a month, and ~5 MB of
  // fresh large arrays for the garbage collector
  const all = n === nIn;
  const kept: Columns = {};
  const runs = consume ? [] : keptRuns(keep);
  for (const [k, v] of Object.entries(input)) kept[k] = consume ? squeeze(v, keep) : all && !MUTABLE.has(k) ? v : pickRuns(v, keep, runs);
  return new MonthForms(kept, new Array(n).fill(String(year))) as unknown as Columns;
}

/** Each form's slot in `last`, whose row is then the last form of that record id (each loop of latestVersions alone in a function: LOOP_TAIL in pipeline/memo.ts). */
function lastOfEach(last: RowTable, ids: readonly string[]): Int32Array {
  const slotOf = new Int32Array(ids.length);
  for (let i = 0; i < ids.length; i++) last.set((slotOf[i] = last.slot(ids[i]!)), i);
  return slotOf;
}

/** The forms kept (the last version of each record id) into keep, their number returned; the others' dispositions and changed cells. */
function keptForms(input: Columns, last: RowTable, slotOf: Int32Array, rec: MonthRecords, keep: number[]): number {
  const files = input.file!, lines = input.line!, types = input.form_type!, ids = input.record_id!;
  const nIn = ids.length;
  let kn = 0;
  for (let i = 0; i < nIn; i++) {
    const j = last.at(slotOf[i]!);
    if (j === i) keep[kn++] = i;
    else {
      rec.disposition(files[i]!, lines[i]!, ids[i]!, types[i]!, 'replaced', `superseded by a later version (${files[j]} line ${lines[j]})`);
      // a corrected re-send: log every cell the correction changes
      for (const v of RESEND_FIELDS) if (input[v]![i] !== input[v]![j]) rec.change('resend', 'correction_by_resend', '', ids[i]!, v, v === 'pid' ? '(pseudonym)' : input[v]![i]!, v === 'pid' ? '(pseudonym)' : input[v]![j]!, '');
    }
  }
  return kn;
}

/**
 * The month's forms, every column a named field in one fixed order: one hidden class for every month. (A plain
 * object built key by key, like `kept`, is in V8's dictionary mode after 12 properties; a literal spread from it
 * got a new hidden class every few months, and each step's optimised code, which checks it, was thrown away.)
 */
class MonthForms implements Record<(typeof FORM_COLUMNS)[number], string[]> { // (every column a form has after ingest: the compiler checks it)
  file: string[]; line: string[]; record_id: string[]; form_type: string[]; registration_date: string[]; move_date: string[];
  pid: string[]; jmbg_valid: string[]; jmbg_sex: string[]; jmbg_birth: string[]; citizenship: string[]; sex: string[];
  birth_date: string[]; origin_country: string[]; from_settlement: string[]; from_municipality: string[];
  destination_country: string[]; to_settlement: string[]; to_municipality: string[]; registering_office: string[];
  nationality: string[]; economic_activity: string[]; occupation: string[]; file_month: string[];
  ref_month: string[] | undefined; carried_forward: string[]; reference_year: string[];
  constructor(c: Columns, referenceYear: string[]) {
    this.file = c.file!; this.line = c.line!; this.record_id = c.record_id!; this.form_type = c.form_type!;
    this.registration_date = c.registration_date!; this.move_date = c.move_date!; this.pid = c.pid!; this.jmbg_valid = c.jmbg_valid!;
    this.jmbg_sex = c.jmbg_sex!; this.jmbg_birth = c.jmbg_birth!; this.citizenship = c.citizenship!; this.sex = c.sex!;
    this.birth_date = c.birth_date!; this.origin_country = c.origin_country!; this.from_settlement = c.from_settlement!;
    this.from_municipality = c.from_municipality!; this.destination_country = c.destination_country!; this.to_settlement = c.to_settlement!;
    this.to_municipality = c.to_municipality!; this.registering_office = c.registering_office!; this.nationality = c.nationality!;
    this.economic_activity = c.economic_activity!; this.occupation = c.occupation!; this.file_month = c.file_month!;
    this.ref_month = c.ref_month; this.carried_forward = c.carried_forward!; this.reference_year = referenceYear;
  }
}

/** The violations.csv lines (no header; MONTH_FILE_HEADERS.violations order: record_id,rule_id,severity). */
function violationLines(ruleResults: RuleResult[], rid: string[]): CsvWriter {
  const violations = new CsvWriter(null);
  for (const r of ruleResults) if (r.summary.fails > 0) for (let i = 0; i < rid.length; i++) if (r.outcome[i] === FAIL) violations.cell(rid[i]!).cell(r.rule.id).cell(r.rule.severity).end();
  return violations;
}

/** The order of candidate (D, R) pairs: closest registration dates, then move dates, then record ids (R, then D). */
function closestPair(rid: string[]): (a: Pair, b: Pair) => number {
  const cmp = (x: string, y: string): number => (x < y ? -1 : x > y ? 1 : 0);
  return (a, b) => a.dd - b.dd || a.md - b.md || cmp(rid[a.r]!, rid[b.r]!) || cmp(rid[a.d]!, rid[b.d]!);
}

/** Step 3: each D form's R form (linkOfD) and back (linkOfR), -1 when none. (Each of its loops is a function of its own: LOOP_TAIL in pipeline/memo.ts.) */
function linkDepartures(f: Columns, windowDays: number): { linkOfR: Int32Array; linkOfD: Int32Array } {
  const ft = f.form_type!, pid = f.pid!;
  const n = ft.length;
  // each person's R forms as a chain in form order: the first in rFirst, the next of form i in rNext (no array per
  // person); rFirst a RowTable of persons (~1 ms a month less than a Map), which also counts their D forms (dsOf)
  const rFirst = new RowTable(n, pid);
  const rNext = new Int32Array(n);
  chainRegistrations(ft, pid, rFirst, rNext);
  const linkOfR = new Int32Array(n).fill(-1);
  const linkOfD = new Int32Array(n).fill(-1);
  const dOrder: number[] = new Array(n);
  dOrder.length = departureForms(ft, pid, dOrder);
  // every admissible (D, R) pair of a person, then linked closest first (registration dates, then move dates, then
  // the R's and the D's record ids), one D per R: the closest pair wins whichever D comes first by record id.
  // A person with one D form (nearly all) has no competition: its best pair is linked at once, no pair list.
  // The D forms of each person with R forms, counted by its slot in rFirst (a D form's slot, for a person without R
  // forms, is an empty one: counted there, never read, as such a D has no pair to compete for).
  const dSlot = new Int32Array(dOrder.length);
  const dsOf = new Int32Array(rFirst.size);
  countDepartures(pid, dOrder, rFirst, dSlot, dsOf);
  const pairs: Pair[] = [];
  const byCloseness = closestPair(f.record_id!);
  pairUp(f, windowDays, { rFirst, rNext, dOrder, dSlot, dsOf, linkOfR, linkOfD }, pairs, byCloseness);
  pairs.sort(byCloseness);
  linkPairs(pairs, linkOfR, linkOfD);
  return { linkOfR, linkOfD };
}
type Pair = { d: number; r: number; dd: number; md: number };

function chainRegistrations(ft: readonly string[], pid: readonly string[], rFirst: RowTable, rNext: Int32Array): void {
  for (let i = ft.length - 1; i >= 0; i--) if (ft[i] === 'R' && pid[i]) { const s = rFirst.slot(pid[i]!); rNext[i] = rFirst.at(s); rFirst.set(s, i); }
}

/** The D forms with a person, in form order, into dOrder; their number returned. */
function departureForms(ft: readonly string[], pid: readonly string[], dOrder: number[]): number {
  let dn = 0;
  for (let i = 0; i < ft.length; i++) if (ft[i] === 'D' && pid[i]) dOrder[dn++] = i;
  return dn;
}

function countDepartures(pid: readonly string[], dOrder: readonly number[], rFirst: RowTable, dSlot: Int32Array, dsOf: Int32Array): void {
  for (let k = 0; k < dOrder.length; k++) dsOf[(dSlot[k] = rFirst.slot(pid[dOrder[k]!]!))]!++;
}

/** Each D form's admissible pairs: linked at once when its person has one D form, else into pairs. */
function pairUp(f: Columns, windowDays: number, x: { rFirst: RowTable; rNext: Int32Array; dOrder: readonly number[]; dSlot: Int32Array; dsOf: Int32Array; linkOfR: Int32Array; linkOfD: Int32Array }, pairs: Pair[], byCloseness: (a: Pair, b: Pair) => number): void {
  const reg = f.registration_date!, mv = f.move_date!, toS = f.to_settlement!, toM = f.to_municipality!, fromS = f.from_settlement!;
  const { rFirst, rNext, dOrder, dSlot, dsOf, linkOfR, linkOfD } = x;
  // day numbers of dates, memoised for the month: a few hundred distinct dates, compared pairwise below
  const days = new KeyedCache(dayNumber);
  for (let k = 0; k < dOrder.length; k++) {
    const d = dOrder[k]!;
    const alone = dsOf[dSlot[k]!] === 1;
    let best: Pair | undefined;
    for (let r = rFirst.at(dSlot[k]!); r >= 0; r = rNext[r]!) {
      const dd = Math.abs(days.get(reg[r]!) - days.get(reg[d]!));
      if (!(dd <= windowDays)) continue;
      if (toS[d] && toS[d] !== toS[r]) continue;
      if (toM[d] && toM[r] && toM[d] !== toM[r]) continue;
      if (fromS[r] && fromS[d] && fromS[r] !== fromS[d]) continue;
      const md = isValidDate(mv[r]!) && isValidDate(mv[d]!) ? Math.abs(days.get(mv[r]!) - days.get(mv[d]!)) : 1e9;
      const p = { d, r, dd, md };
      if (!alone) pairs.push(p);
      else if (!best || byCloseness(p, best) < 0) best = p;
    }
    if (best) { linkOfR[best.r] = d; linkOfD[d] = best.r; }
  }
}

/** The competing pairs, closest first: one D per R. */
function linkPairs(pairs: readonly Pair[], linkOfR: Int32Array, linkOfD: Int32Array): void {
  for (const p of pairs) if (linkOfR[p.r] === -1 && linkOfD[p.d] === -1) { linkOfR[p.r] = p.d; linkOfD[p.d] = p.r; }
}

/** What deduction found per form: age, final destination and origin, provenance flags; and how many codes it recoded. */
interface Deduced { age: (number | null)[]; toFinal: string[]; fromFinal: string[]; prov: Uint8Array; recoded: number }

/** One side (destination or origin) of the forms, with the names its change-log rows use. */
interface Side { side: 'to' | 'from'; settlement: string[]; muni: string[]; final: string[]; valid: string; settlementIn: string; present: string; variable: string }

/** Step 4: deductive imputation, in a fixed order (the columns of f are corrected in place). */
function deduce(f: Columns, linkOfR: Int32Array, C: Classification, year: number, rec: MonthRecords): Deduced {
  const rid = f.record_id!, ft = f.form_type!, reg = f.registration_date!;
  const sex = f.sex!, birth = f.birth_date!, act = f.economic_activity!, occ = f.occupation!;
  const jValid = f.jmbg_valid!, jSex = f.jmbg_sex!, jBirth = f.jmbg_birth!, fromS = f.from_settlement!, fromM = f.from_municipality!, office = f.registering_office!;
  const n = rid.length;
  const age: (number | null)[] = new Array(n).fill(null);
  const toFinal: string[] = new Array(n).fill('');
  const fromFinal: string[] = new Array(n).fill('');
  const prov = new Uint8Array(n); // provenance bit flags per form
  const out: Deduced = { age, toFinal, fromFinal, prov, recoded: 0 }; // (before the loop: see LOOP_TAIL in pipeline/memo.ts)
  // each side's columns and the names its change-log rows use, looked up once (not per form)
  const sides: Side[] = [];
  for (const side of SIDES) sides.push({
    side, settlement: f[SETTLEMENT_COL[side]]!, muni: f[MUNI_COL[side]]!, final: side === 'to' ? toFinal : fromFinal,
    valid: `R10_${side.toUpperCase()}_MUNI_VALID`, settlementIn: `R16_${side.toUpperCase()}_SETTLEMENT_IN_MUNI`, present: side === 'to' ? 'R25_DESTINATION_PRESENT' : 'R22_PREVIOUS_RESIDENCE_PRESENT', variable: `${side}_municipality`,
  });
  // the classification of 31 December, memoised per code for the month: a few thousand distinct codes, 21 000 forms
  const atYearEnd: On = { C, date: `${year}-12-31` };
  const successors = new KeyedCache(successorOn, atYearEnd);
  const settlements = new KeyedCache(settlementOn, atYearEnd);
  for (let i = 0; i < n; i++) {
    // 4a. sex and birth date from a valid JMBG
    if (jValid[i] === '1') {
      if (sex[i] !== jSex[i]) { rec.change('deductive', 'jmbg', sex[i] ? 'R07_JMBG_SEX' : 'R20_SEX_PRESENT', rid[i]!, 'sex', sex[i]!, jSex[i]!, ''); if (ft[i] === 'R') rec.count('sex', 'jmbg'); sex[i] = jSex[i]!; prov[i]! |= P_DEDUCED; }
      if (birth[i] !== jBirth[i]) { rec.change('deductive', 'jmbg', birth[i] ? 'R08_JMBG_BIRTH' : 'R21_BIRTH_PRESENT', rid[i]!, 'birth_date', birth[i]!, jBirth[i]!, ''); if (ft[i] === 'R') rec.count('birth_date', 'jmbg'); birth[i] = jBirth[i]!; prov[i]! |= P_DEDUCED; }
    }
    // 4b. age in completed years; an impossible birth date counts as missing
    if (birth[i]) {
      const a = isValidDate(birth[i]!) ? completedYears(birth[i]!, reg[i]!) : -1;
      if (a < 0 || a > 115) { rec.change('deductive', 'rule', 'R05_AGE_RANGE', rid[i]!, 'birth_date', birth[i]!, '', ''); birth[i] = ''; }
      else age[i] = a;
    }
    // 4c. previous residence of an R form from its linked D form
    const d = linkOfR[i]!;
    if (ft[i] === 'R' && d >= 0 && !fromS[i] && !fromM[i] && (fromS[d] || fromM[d])) {
      if (fromS[d]) { rec.change('deductive', 'linked_d_form', 'R22_PREVIOUS_RESIDENCE_PRESENT', rid[i]!, 'from_settlement', '', fromS[d]!, ''); fromS[i] = fromS[d]!; }
      if (fromM[d]) { rec.change('deductive', 'linked_d_form', 'R22_PREVIOUS_RESIDENCE_PRESENT', rid[i]!, 'from_municipality', '', fromM[d]!, ''); fromM[i] = fromM[d]!; }
      rec.count('previous_residence', 'linked_d_form');
      prov[i]! |= P_DEDUCED;
    }
    // 4d. municipalities from settlements, codes through territorial changes, offices
    for (const sd of sides) {
      const s = sd.settlement[i]!;
      const code = sd.muni[i]!;
      let fin: string | undefined;
      let how = '';
      const onReg = s ? C.settlementMunicipality(s, reg[i]!) : undefined;
      if (onReg) {
        fin = settlements.get(s) ?? successors.get(onReg);
        if (!code) how = 'settlement';
        else if (code === onReg || C.successorOn(code, reg[i]!) === onReg) how = fin !== code ? 'territorial_change' : '';
        else how = 'settlement';
      } else if (code && C.isMunicipality(code)) {
        fin = successors.get(code);
        how = fin !== undefined && fin !== code ? 'territorial_change' : '';
      }
      const officeSide = (sd.side === 'to' && ft[i] === 'R') || (sd.side === 'from' && ft[i] === 'D');
      if (fin === undefined && officeSide) {
        const o = successors.get(office[i]!);
        if (o) { fin = o; how = 'registering_office'; }
      }
      if (fin !== undefined) {
        if (how === 'territorial_change') { out.recoded++; prov[i]! |= P_RECODED; rec.change('deductive', how, sd.valid, rid[i]!, sd.variable, code, fin, ''); }
        else if (how) {
          rec.change('deductive', how, how === 'settlement' && code ? sd.settlementIn : sd.present, rid[i]!, sd.variable, code, fin, '');
          if (ft[i] === 'R') rec.count(sd.variable, how);
          prov[i]! |= P_DEDUCED;
        }
        sd.muni[i] = fin;
        sd.final[i] = fin;
      } else if (code && !C.isMunicipality(code)) {
        sd.muni[i] = ''; // unknown code counts as missing
      }
    }
    // 4e. economic activity is not applicable under 15; occupation only for the employed
    if (age[i] !== null && age[i]! < 15 && act[i] !== 'NA') { rec.change('deductive', 'age_under_15', 'R18_ACTIVITY_FROM_15', rid[i]!, 'economic_activity', act[i]!, 'NA', ''); if (act[i]) { rec.count('economic_activity', 'age_under_15'); prov[i]! |= P_DEDUCED; } act[i] = 'NA'; }
    if (occ[i] && act[i] !== '1' && act[i] !== '') { rec.change('deductive', 'rule', 'R19_OCCUPATION_EMPLOYED', rid[i]!, 'occupation', occ[i]!, '', ''); occ[i] = ''; }
  }
  return out;
}

/**
 * A validation rule that fails to evaluate is reported (rules.csv, the log, a warning) and the run goes on
 * (practice.md); a scope rule decides who is counted: without it the month's numbers would be wrong, so the run stops.
 */
export function assertScopeEvaluated(scopeResults: RuleResult[]): void {
  for (const r of scopeResults) if (r.summary.error !== undefined) throw new Error(`scope rule ${r.rule.id} cannot be evaluated (${r.summary.error}): the month's scope cannot be decided; correct it in the rule file`);
}

/** Step 5: each form's disposition (out of scope, linked or unmatched departure, no destination), and the forms that are events. */
function inScope(f: Columns, scopeResults: RuleResult[], linkOfD: Int32Array, toFinal: string[], rec: MonthRecords) {
  const n = f.record_id!.length;
  const outReason = scopeReasons(scopeResults, n);
  const outCounts: Record<string, number> = {};
  const quarantine: MonthOutcome['quarantine'] = [];
  const tally = new Int32Array(2); // [linked, unmatched]
  const eventIdx: number[] = new Array(n);
  eventIdx.length = dispose(f, outReason, linkOfD, toFinal, rec, outCounts, quarantine, tally, eventIdx);
  return { eventIdx, outCounts, quarantine, linked: tally[0]!, unmatched: tally[1]! };
}

/** Each form's first failed scope rule's reason ('' in scope). (The loops of inScope are each alone in a function: see LOOP_TAIL in pipeline/memo.ts.) */
function scopeReasons(scopeResults: RuleResult[], n: number): string[] {
  const outReason: string[] = new Array(n).fill('');
  for (const r of scopeResults) for (let i = 0; i < n; i++) if (!outReason[i] && r.outcome[i] === FAIL) outReason[i] = r.rule.scope_reason!;
  return outReason;
}

/** The disposition of each form that is not an event; the events' indices into eventIdx, their count returned. */
function dispose(f: Columns, outReason: string[], linkOfD: Int32Array, toFinal: string[], rec: MonthRecords, outCounts: Record<string, number>, quarantine: MonthOutcome['quarantine'], tally: Int32Array, eventIdx: number[]): number {
  const rid = f.record_id!, ft = f.form_type!, file = f.file!, line = f.line!;
  const n = rid.length;
  let en = 0;
  for (let i = 0; i < n; i++) {
    let what = '', reason = '';
    if (outReason[i]) { outCounts[outReason[i]!] = (outCounts[outReason[i]!] ?? 0) + 1; what = 'out_of_scope'; reason = outReason[i]!; }
    else if (ft[i] === 'D') {
      if (linkOfD[i]! >= 0) { tally[0]!++; what = 'linked_departure'; reason = rid[linkOfD[i]!]!; } else { tally[1]!++; what = 'unmatched_departure'; }
    } else if (!toFinal[i]) { quarantine.push({ file: file[i]!, line: +line[i]!, record_id: rid[i]!, field: 'to_municipality', reason: 'no_destination', detail: 'no settlement, municipality or usable office for the new residence' }); what = 'quarantined'; reason = 'no_destination'; }
    if (what) { rec.disposition(file[i]!, line[i]!, rid[i]!, ft[i]!, what, reason); continue; }
    eventIdx[en++] = i;
  }
  return en;
}

/** Step 6: the events (in-scope registrations) with their provenance, and their dispositions. */
function makeEvents(f: Columns, eventIdx: number[], ded: Deduced, C: Classification, year: number, rec: MonthRecords): { events: Event[]; carried: number } {
  const carried = new Int32Array(1);
  const events = eventObjects(f, eventIdx, ded, C, year, carried);
  eventDispositions(f, eventIdx, rec);
  return { events, carried: carried[0]! };
}
/** The events, the forms carried forward counted into carried[0] (each loop of makeEvents alone in a function: see LOOP_TAIL in pipeline/memo.ts) */
function eventObjects(f: Columns, eventIdx: number[], ded: Deduced, C: Classification, year: number, carried: Int32Array): Event[] {
  const rid = f.record_id!, reg = f.registration_date!, mv = f.move_date!, sex = f.sex!, act = f.economic_activity!, nat = f.nationality!, cfCol = f.carried_forward!;
  const { age, toFinal, fromFinal, prov } = ded;
  const events: Event[] = new Array(eventIdx.length);
  for (let j = 0; j < eventIdx.length; j++) {
    const i = eventIdx[j]!;
    const from = fromFinal[i] && year >= 1998 && C.isKM(fromFinal[i]!) ? 'KM' : fromFinal[i]!;
    const mvOk = isValidDate(mv[i]!) && mv[i]! <= reg[i]!;
    const cf = cfCol[i] === '1';
    if (cf) { carried[0]!++; prov[i]! |= P_CARRIED; }
    if (prov[i] === 0) prov[i] = P_REPORTED;
    events[j] = {
      record_id: rid[i]!, registration_date: reg[i]!, to: toFinal[i]!, from, sex: sex[i]!, age: age[i] ?? -1,
      activity: act[i]!, nationality: nat[i] || '99', delay: mvOk ? delayMonths(reg[i]!, mv[i]!) : null,
      carried_forward: cf, provenance: prov[i]!, donor: 0,
    };
  }
  return events;
}
/** makeEvents' second loop */
function eventDispositions(f: Columns, eventIdx: number[], rec: MonthRecords): void {
  const rid = f.record_id!, file = f.file!, line = f.line!;
  for (const i of eventIdx) rec.disposition(file[i]!, line[i]!, rid[i]!, 'R', 'event', '');
}

/** What an event still lacks for the tables, in this order (the order of the change-log rows and of an error's list). */
const GAPS = [['sex', D_SEX], ['age', D_AGE], ['from', D_FROM], ['economic_activity', D_ACTIVITY]] as const;
function gapMask(e: Event): number {
  let m = 0;
  if (!e.sex) m |= D_SEX;
  if (e.age < 0) m |= D_AGE;
  if (!e.from) m |= D_FROM;
  if ((e.age < 0 || e.age >= 15) && !e.activity) m |= D_ACTIVITY;
  return m;
}
function needs(e: Event): string[] {
  const m = gapMask(e);
  return GAPS.filter(([, bit]) => m & bit).map(([name]) => name);
}

/**
 * Donor-class values interned to small integers (0 = missing), at most 4095 distinct ones: a class key packs its
 * variables' integers in base 2^12 (a class has at most 4 variables: < 2^48).
 */
class Interner {
  private readonly ids = new Map<string, number>();
  of(v: string): number {
    if (!v) return 0;
    let k = this.ids.get(v);
    if (k === undefined) {
      if (this.ids.size >= 4095) throw new Error('internal: more than 4095 distinct values in donor class keys');
      this.ids.set(v, (k = this.ids.size + 1));
    }
    return k;
  }
}
/** Interned values per event: sex, age_group, to_area, to_region, and any other class variable: the destination. */
const SLOTS = 5;
const slotOf = (v: string): number => (v === 'sex' ? 0 : v === 'age_group' ? 1 : v === 'to_area' ? 2 : v === 'to_region' ? 3 : 4);
/** Event j's key in the class of these slots, -1 when the event lacks one of its variables (it is not in the class). */
function classKey(values: Int32Array, slots: number[], j: number): number {
  let k = 0;
  for (const slot of slots) {
    const x = values[j * SLOTS + slot]!;
    if (x === 0) return -1;
    k = k * 4096 + x;
  }
  return k;
}

/** Hot-deck donor imputation: one donor per record, by class, seeded. */
/** `cls` in the change log names the imputation class that gave the donor, e.g. "class 2 of 7: sex×age_group×to_region". */
function donorImpute(events: Event[], ctx: MonthContext, rec: MonthRecords): void {
  const C = ctx.classification;
  const classes = ctx.imputation.classes;
  // A class key is a number, not a string: each variable's value is interned once per event (an event's values do
  // not change before its own turn)
  const ids = new Interner();
  for (const vars of classes) if (vars.length > 4) throw new Error(`imputation class ${vars.join('×')}: more than 4 variables`);
  const classSlots = packedMap(classes, (vars) => packedMap(vars, slotOf));
  const values = new Int32Array(events.length * SLOTS);
  const toIds = new Map<string, number[]>();
  for (let j = 0; j < events.length; j++) {
    const e = events[j]!;
    const o = j * SLOTS;
    values[o] = ids.of(e.sex);
    values[o + 1] = ageGroupIndex(e.age) + 1; // 0: unknown age
    let t = toIds.get(e.to); // a destination's three values interned once (a few hundred destinations a month)
    if (!t) toIds.set(e.to, (t = [ids.of(C.areaOf(e.to)), ids.of(C.regionOf(e.to)), ids.of(e.to)]));
    values[o + 2] = t[0]!;
    values[o + 3] = t[1]!;
    values[o + 4] = t[2]!;
  }
  // the donors (events with nothing to impute) by record id, pooled by class key
  const donors: number[] = new Array(events.length);
  let dn = 0;
  const recordIds: string[] = new Array(events.length);
  for (let j = 0; j < events.length; j++) { recordIds[j] = events[j]!.record_id; if (gapMask(events[j]!) === 0) donors[dn++] = j; }
  donors.length = dn;
  sortIndicesBy(donors, recordIds);
  // a class's pools are built when a recipient first reaches that class: most find a donor in the first classes
  const pools: Map<number, Event[]>[] = [];
  const clsName = classes.map((vars, c) => `class ${c + 1} of ${classes.length}: ${vars.join('×') || 'all events of the month'}`);
  for (let j = 0; j < events.length; j++) {
    const e = events[j]!;
    const gaps = gapMask(e);
    if (!gaps) continue;
    for (let c = 0; c < classes.length; c++) {
      const k = classKey(values, classSlots[c]!, j);
      if (k < 0) continue;
      let m = pools[c];
      if (!m) {
        pools[c] = m = new Map<number, Event[]>();
        for (const d of donors) { const dk = classKey(values, classSlots[c]!, d); const a = m.get(dk); if (a) a.push(events[d]!); else m.set(dk, [events[d]!]); }
      }
      const pool = m.get(k);
      if (!pool?.length) continue;
      const h = (crypto.hash('sha256', `${ctx.seed}|${ctx.month}|${e.record_id}`, 'buffer') as unknown as Buffer).readUInt32BE(0);
      const d = pool[h % pool.length]!;
      const cls = clsName[c]!;
      for (const [g, bit] of GAPS) {
        if (!(gaps & bit)) continue;
        let variable: string, v: string;
        if (g === 'sex') { variable = 'sex'; v = d.sex; e.sex = v; }
        else if (g === 'age') { variable = 'age'; v = String(d.age); e.age = d.age; }
        // the donor's origin relative to its destination: its origin with the two destinations exchanged (a move within the
        // donor's municipality is one within the recipient's; a donor from the recipient's municipality came from the donor's)
        else if (g === 'from') { variable = 'from'; v = d.from === d.to ? e.to : d.from === e.to ? d.to : d.from; e.from = v; }
        else { variable = 'economic_activity'; v = d.activity; e.activity = v; }
        rec.change('donor', 'hot_deck', cls, e.record_id, variable, '', v, d.record_id);
        rec.count(variable === 'from' ? 'previous_residence' : variable, 'donor');
        e.donor |= bit;
      }
      if (e.age >= 0 && e.age < 15) e.activity = 'NA';
      e.provenance = (e.provenance | P_IMPUTED) & ~P_REPORTED;
      break;
    }
  }
}
