/**
 * Rules, linkage, deduction and donors against the generator's ground truth (issue 3, "Done when"), on one
 * generated year run with the monthly cadence (runMonth, then close):
 *   1. every injected defect is handled where the table HANDLED_BY says (rule, scope, quarantine, disposition,
 *      systemic correction), and every rule violation is explained by an injected defect (RULE_FLAGS);
 *   2. every logically recoverable value is recovered exactly, with a deductive provenance;
 *   3. donor values come from a donor of the configured class and stay within a sampling bound of the truth;
 *   4. national affiliation is never imputed or changed;
 *   5. a second fresh store on the same inputs is byte-identical (donor choices included).
 * Records are matched by record_id (rules, events, changes) or by file and line (dispositions, quarantine):
 * the truth (truth/records.csv) has one row per form line.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DEFECT_NAMES, generate } from '../fixtures/generator';
import { runMonth } from '../pipeline/month';
import { Store } from '../pipeline/store';
import { readCsvText } from '../pipeline/csv';
import type { Quality } from '../pipeline/contracts';
import { loadClassification } from '../stages/territory';
import { logFor, snapshot, tmpDir } from './helpers/store';

type Row = Record<string, string>;
const YEAR = 2024;
const SEED = 3;
const RECORDS = 20000; // ≈ 20 000 events, ≈ 35 000 forms: every defect kind a dozen times or more, ≈ 4 s per run
const ROOT = path.join(__dirname, '..');

/**
 * Where the pipeline handles each defect the generator injects (every key of truth/defects.json must be here).
 *  rules:        every record with the defect is flagged by each of these rules (any: by at least one) — a
 *                violation in violations.csv, or, when the form as received hides the failure (e.g. a child's
 *                stated activity with no stated birth date), a correction logged under that rule in changes.csv;
 *                or_donor: a form with no stated birth date shows no age, so the rule is NA on it: the gap shows
 *                once the birth date is deduced from the JMBG, and the value is then donor-imputed
 *  scope:        the form is out of scope with this reason (dispositions.csv)
 *  quarantine:   quarantine.csv names the form's file and line with this reason and field
 *  disposition:  dispositions.csv gives the form's file and line this disposition
 *  resend:       the superseded version is 'replaced' (or, for a closed month, 'correction_to_closed'); the
 *                final version's changed cells are logged as correction_by_resend
 *  delay:        not an error: the event's delay_months equals the truth (≥ 1)
 *  competing:    the person moved twice in the month: both D forms are linked, each to its own R (the first R lacks
 *                its previous residence, so the second move's D form is admissible for it too)
 *  code_alone:   not an error: a municipality code without a settlement on that side of the move; the event's
 *                municipality is the code's unit of 31 December, equal to the truth, and none of that side's
 *                territorial rules flags the form
 *  systemic:     the office is escalated on the rule and the correction rewrites its forms' dates
 *  carried_forward: the event is flagged carried_forward
 */
type Handling =
  | { rules: string[]; any?: true; carried_forward?: true; or_donor?: string }
  | { scope: string }
  | { quarantine: string; field: string }
  | { disposition: string }
  | { resend: true }
  | { delay: true }
  | { code_alone: { side: 'to' | 'from'; rules: string[] } }
  | { competing: true }
  | { systemic: { rule: string; correction: string } };
const HANDLED_BY: Record<string, Handling> = {
  missing_sex: { rules: ['R20_SEX_PRESENT'] },
  missing_birth_date: { rules: ['R21_BIRTH_PRESENT'] },
  invalid_jmbg_checksum: { rules: ['R06_JMBG_CHECKSUM'] },
  jmbg_contradicts_sex: { rules: ['R07_JMBG_SEX'] },
  jmbg_contradicts_birth_date: { rules: ['R08_JMBG_BIRTH'] },
  missing_previous_residence: { rules: ['R22_PREVIOUS_RESIDENCE_PRESENT'] },
  missing_move_date: { rules: ['R23_MOVE_DATE_PRESENT'] },
  missing_economic_activity: { rules: ['R24_ACTIVITY_PRESENT'], or_donor: 'economic_activity' },
  activity_under_15: { rules: ['R18_ACTIVITY_FROM_15'] },
  occupation_not_employed: { rules: ['R19_OCCUPATION_EMPLOYED'] },
  // the last digit changed: always a wrong check digit, hence also not in the classification
  unknown_municipality_code: { rules: ['R09_TO_MUNI_CHECK_DIGIT', 'R10_TO_MUNI_VALID'] },
  // a code that no longer exists (80284 → 89010) fails R10; one that still exists but lost the settlement
  // (Zemun → Surčin) or was split without a continuing unit (Niš) fails R16
  outdated_municipality_code: { rules: ['R10_TO_MUNI_VALID', 'R16_TO_SETTLEMENT_IN_MUNI'], any: true },
  settlement_not_in_municipality: { rules: ['R16_TO_SETTLEMENT_IN_MUNI', 'R26_OFFICE_IS_NEW_RESIDENCE'] },
  missing_destination: { rules: ['R25_DESTINATION_PRESENT'] },
  unknown_origin_municipality_code: { rules: ['R11_FROM_MUNI_CHECK_DIGIT', 'R12_FROM_MUNI_VALID'] },
  destination_municipality_only: { code_alone: { side: 'to', rules: ['R09_TO_MUNI_CHECK_DIGIT', 'R10_TO_MUNI_VALID', 'R14_TO_SETTLEMENT_KNOWN', 'R16_TO_SETTLEMENT_IN_MUNI', 'R25_DESTINATION_PRESENT', 'R26_OFFICE_IS_NEW_RESIDENCE'] } },
  double_move: { competing: true },
  origin_municipality_only: { code_alone: { side: 'from', rules: ['R11_FROM_MUNI_CHECK_DIGIT', 'R12_FROM_MUNI_VALID', 'R15_FROM_SETTLEMENT_KNOWN', 'R17_FROM_SETTLEMENT_IN_MUNI', 'R22_PREVIOUS_RESIDENCE_PRESENT'] } },
  late_delivery: { rules: ['R04_REG_IN_FILE_MONTH'], carried_forward: true },
  same_settlement: { scope: 'same_settlement' },
  from_abroad: { scope: 'from_abroad' },
  departure_abroad: { scope: 'departure_abroad' },
  foreigner: { scope: 'foreigner' },
  destination_km: { scope: 'destination_km' },
  after_file_month: { quarantine: 'registration_after_file_month', field: 'registration_date' },
  unreadable_date: { quarantine: 'unreadable_date', field: 'registration_date' },
  overlong_field: { quarantine: 'schema', field: 'record_id' },
  unknown_form_type: { quarantine: 'schema', field: 'form_type' },
  exact_duplicate: { disposition: 'duplicate' },
  unmatched_departure: { disposition: 'unmatched_departure' },
  corrected_resend: { resend: true },
  delayed_registration: { delay: true },
  day_month_swap: { systemic: { rule: 'R04_REG_IN_FILE_MONTH', correction: 'SC01_SWAP_DAY_MONTH' } },
};

/**
 * Which records each rule of config/rules.json may flag on generated data (every rule must be here):
 *  defects: the injected defects that make it fail;
 *  d_of_r:  also the D form of an R with one of those defects — the generator writes the R's JMBG and move date
 *           on its D form without tagging the D;
 *  any_d:   D forms of events, untagged — the generator records a D up to 3 days before or after its R and gives
 *           it the R's move date, so a D recorded before that date fails "move date not after registration";
 *  d_birthday: D forms dated across a birthday of the person from their R (same 3-day offset, untagged): a
 *           newborn's D dated before the birth fails the age range; a D on the other side of the 15th birthday
 *           from its R has an activity under 15 or none at 15;
 *  exact:   the rule flags exactly these records (and its monthly summary can be counted from the truth);
 *           otherwise only "no other record", with the reason given.
 */
const RULE_FLAGS: Record<string, { defects: string[]; d_of_r?: true; any_d?: true; d_birthday?: true; exact: boolean }> = {
  R01_REG_DATE_VALID: { defects: [], exact: true }, // unreadable dates are quarantined before the rules run
  R02_MOVE_DATE_VALID: { defects: [], exact: true },
  R03_MOVE_NOT_AFTER_REG: { defects: [], any_d: true, exact: false },
  R04_REG_IN_FILE_MONTH: { defects: ['late_delivery'], exact: true }, // the swapped office is corrected before
  R05_AGE_RANGE: { defects: [], d_birthday: true, exact: false },
  R06_JMBG_CHECKSUM: { defects: ['invalid_jmbg_checksum'], d_of_r: true, exact: true },
  R07_JMBG_SEX: { defects: ['jmbg_contradicts_sex'], exact: true },
  R08_JMBG_BIRTH: { defects: ['jmbg_contradicts_birth_date'], exact: true },
  R09_TO_MUNI_CHECK_DIGIT: { defects: ['unknown_municipality_code'], exact: true },
  R10_TO_MUNI_VALID: { defects: ['unknown_municipality_code', 'outdated_municipality_code'], exact: false }, // not every outdated code
  R11_FROM_MUNI_CHECK_DIGIT: { defects: ['unknown_origin_municipality_code'], exact: true },
  R12_FROM_MUNI_VALID: { defects: ['unknown_origin_municipality_code'], exact: true },
  R13_OFFICE_VALID: { defects: [], exact: true },
  R14_TO_SETTLEMENT_KNOWN: { defects: [], exact: true },
  R15_FROM_SETTLEMENT_KNOWN: { defects: [], exact: true },
  R16_TO_SETTLEMENT_IN_MUNI: { defects: ['settlement_not_in_municipality', 'outdated_municipality_code'], exact: false }, // not 80284 → 89010
  R17_FROM_SETTLEMENT_IN_MUNI: { defects: [], exact: true },
  R18_ACTIVITY_FROM_15: { defects: ['activity_under_15'], d_birthday: true, exact: false }, // a child whose stated birth date is missing or wrong shows no age under 15
  R19_OCCUPATION_EMPLOYED: { defects: ['occupation_not_employed'], exact: true },
  R20_SEX_PRESENT: { defects: ['missing_sex'], exact: true },
  R21_BIRTH_PRESENT: { defects: ['missing_birth_date'], exact: true },
  R22_PREVIOUS_RESIDENCE_PRESENT: { defects: ['missing_previous_residence'], exact: true },
  R23_MOVE_DATE_PRESENT: { defects: ['missing_move_date'], d_of_r: true, exact: true },
  // the rule reads the stated birth date: a child whose wrong birth date makes them look 15+ has no activity
  R24_ACTIVITY_PRESENT: { defects: ['missing_economic_activity', 'jmbg_contradicts_birth_date'], d_birthday: true, exact: false },
  R25_DESTINATION_PRESENT: { defects: ['missing_destination'], exact: true },
  R26_OFFICE_IS_NEW_RESIDENCE: { defects: ['settlement_not_in_municipality', 'outdated_municipality_code'], exact: false }, // only codes still valid
  R27_OFFICE_IS_OLD_RESIDENCE: { defects: [], exact: true },
};

/** Dispositions of forms that reach the rules (after duplicates, quarantine and superseded versions). */
const PROCESSED = new Set(['event', 'linked_departure', 'unmatched_departure', 'out_of_scope']);
const ECO_GROUP: Record<string, string> = { NA: 'dependents', '1': 'active', '2': 'active', '3': 'personal_income', '4': 'personal_income', '5': 'dependents', '6': 'dependents' };
const swapDM = (d: string): string => (d.length === 10 ? `${d.slice(0, 4)}-${d.slice(8, 10)}-${d.slice(5, 7)}` : d);
const csv = (file: string): Row[] => readCsvText(fs.readFileSync(file, 'utf8'));
const has = (list: string, x: string): boolean => list.split(';').includes(x);
/** the set (or list) kept under a key of a map, created on first use */
function entry<K, V extends Set<unknown> | unknown[]>(m: Map<K, V>, k: K, make: () => V): V {
  const v = m.get(k);
  if (v !== undefined) return v;
  const made = make();
  m.set(k, made);
  return made;
}
const completedYears = (birth: string, on: string): number => +on.slice(0, 4) - +birth.slice(0, 4) - (on.slice(5) < birth.slice(5) ? 1 : 0);

function runCadence(files: string[], data: string): void {
  const log = logFor(data);
  for (const f of [...files].sort()) {
    const r = runMonth({ data, input: f, log });
    new Store(data).close([r.fileMonth], 'test cadence');
  }
}

/**
 * Largest share difference, per category, between two samples that a correct donor method produces except with
 * probability < 1e-4 per category: 4 standard errors of a difference of two proportions, with the pooled share.
 */
function shareGaps(a: string[], b: string[]): { category: string; a: number; b: number; bound: number }[] {
  const out: { category: string; a: number; b: number; bound: number }[] = [];
  for (const c of [...new Set([...a, ...b])].sort()) {
    const pa = a.filter((x) => x === c).length / a.length;
    const pb = b.filter((x) => x === c).length / b.length;
    const p = (pa * a.length + pb * b.length) / (a.length + b.length);
    const bound = 4 * Math.sqrt(p * (1 - p) * (1 / a.length + 1 / b.length));
    if (Math.abs(pa - pb) > bound) out.push({ category: c, a: pa, b: pb, bound });
  }
  return out;
}

describe('rules, linkage, deduction and donors against the ground truth (a generated year, monthly cadence)', () => {
  const out = tmpDir();
  const data = tmpDir();
  const C = loadClassification();
  const g = generate({ year: YEAR, out, seed: SEED, records: RECORDS });
  const defectsJson = JSON.parse(fs.readFileSync(path.join(out, 'truth', 'defects.json'), 'utf8')) as { counts: Record<string, number>; not_injected: string[]; day_month_swap: { office: string; month: string } };
  const rulesJson = JSON.parse(fs.readFileSync(path.join(ROOT, 'config', 'rules.json'), 'utf8')) as { rules: { id: string }[] };
  const imputation = JSON.parse(fs.readFileSync(path.join(ROOT, 'config', 'imputation.json'), 'utf8')) as { classes: string[][] };

  const truth = csv(path.join(out, 'truth', 'records.csv'));
  const at = (r: Row): string => `${r.file}:${r.line}`;
  // the extracts as written (inputs of the pipeline): file:line → row
  const raw = new Map<string, Row>();
  for (const f of g.files) for (const [i, r] of csv(f).entries()) raw.set(`${path.basename(f)}:${i + 2}`, r);
  const truthEvents = truth.filter((t) => t.disposition === 'event');
  /** defects of a record: the union over its form lines (a re-sent record's versions carry the same person defects) */
  const defectsOf = new Map<string, Set<string>>();
  for (const t of truth) for (const d of t.defects.split(';')) if (d) entry(defectsOf, t.record_id, () => new Set<string>()).add(d);
  const withDefectMemo = new Map<string, Set<string>>();
  const withDefect = (d: string): Set<string> => entry(withDefectMemo, d, () => new Set(truth.filter((t) => has(t.defects, d)).map((t) => t.record_id)));
  const truthEventOf = new Map(truthEvents.map((t) => [t.record_id, t]));
  const processedIds = new Set(truth.filter((t) => PROCESSED.has(t.disposition)).map((t) => t.record_id));
  // each linked D form of the truth and its R event (the truth's reason of a linked D: a person who moves twice in a
  // month has two R and two D forms)
  const rOfD = new Map<string, Row>();
  const linkedD = new Map<string, Row>();
  for (const t of truth) if (t.disposition === 'linked_departure') { rOfD.set(t.record_id, truthEventOf.get(t.reason)!); linkedD.set(t.record_id, t); }
  const dOfR = new Map([...rOfD].map(([d, r]) => [r.record_id, d]));
  // D forms whose person's age on the D's date differs from the truth's age (on the R's date); a swapped office's
  // forms are written with day and month exchanged
  const dAcrossBirthday = new Set<string>();
  for (const t of truth) {
    if (t.disposition !== 'linked_departure') continue;
    const r = raw.get(at(t))!;
    const reg = has(t.defects, 'day_month_swap') ? swapDM(r.registration_date) : r.registration_date;
    if (completedYears(t.birth_date, reg) !== +t.age) dAcrossBirthday.add(t.record_id);
  }

  // the pipeline's outputs, all months
  const months: string[] = [];
  const events = new Map<string, Row>();
  const monthOf = new Map<string, string>();
  const changes: (Row & { month: string })[] = [];
  const violations = new Map<string, Set<string>>();
  const loggedUnder = new Map<string, Set<string>>(); // rule → records with a change logged under it
  const quarantine = new Map<string, Row>();
  const dispositions = new Map<string, Row>();
  const quality = new Map<string, Quality>();
  let changesById: Map<string, Row[]>;

  beforeAll(() => {
    runCadence(g.files, data);
    for (const m of fs.readdirSync(path.join(data, 'months')).sort()) {
      months.push(m);
      const dir = path.join(data, 'months', m);
      for (const e of csv(path.join(dir, 'events.csv'))) {
        events.set(e.record_id, e);
        monthOf.set(e.record_id, m);
      }
      for (const c of csv(path.join(dir, 'changes.csv'))) {
        changes.push({ ...c, month: m });
        if (c.rule) entry(loggedUnder, c.rule, () => new Set<string>()).add(c.record_id);
      }
      for (const v of csv(path.join(dir, 'violations.csv'))) entry(violations, v.rule_id, () => new Set<string>()).add(v.record_id);
      for (const q of csv(path.join(dir, 'quarantine.csv'))) quarantine.set(at(q), q);
      for (const d of csv(path.join(dir, 'dispositions.csv'))) if (d.file) dispositions.set(at(d), d);
      quality.set(m, JSON.parse(fs.readFileSync(path.join(dir, 'quality.json'), 'utf8')) as Quality);
    }
    changesById = new Map();
    for (const c of changes) entry(changesById, c.record_id, (): Row[] => []).push(c);
  });
  afterAll(() => {
    for (const d of [out, data]) fs.rmSync(d, { recursive: true, force: true }); // a year's store takes ≈ 200 MB
  });
  const changesFor = (id: string): Row[] => changesById.get(id) ?? [];
  const flagged = (rule: string): Set<string> => violations.get(rule) ?? new Set();
  /** the records a rule may flag (RULE_FLAGS), from the truth */
  const explainedMemo = new Map<string, Set<string>>();
  const explained = (rule: string): Set<string> => {
    const spec = RULE_FLAGS[rule]!;
    if (explainedMemo.has(rule)) return explainedMemo.get(rule)!;
    const ids = entry(explainedMemo, rule, () => new Set<string>());
    for (const d of spec.defects) for (const id of withDefect(d)) ids.add(id);
    for (const [d, r] of rOfD) {
      if (spec.any_d || (spec.d_birthday && dAcrossBirthday.has(d)) || (spec.d_of_r && spec.defects.some((x) => defectsOf.get(r.record_id)?.has(x)))) ids.add(d);
    }
    return ids;
  };

  test('the mapping tables cover every injected defect kind and every rule, and every kind was injected', () => {
    const kinds = new Set([...Object.keys(defectsJson.counts), ...DEFECT_NAMES, ...truth.flatMap((t) => t.defects.split(';')).filter(Boolean)]);
    expect([...kinds].filter((k) => !(k in HANDLED_BY))).toEqual([]);
    expect(Object.keys(HANDLED_BY).filter((k) => !kinds.has(k))).toEqual([]);
    expect(rulesJson.rules.map((r) => r.id).filter((id) => !(id in RULE_FLAGS))).toEqual([]);
    expect(Object.keys(RULE_FLAGS).filter((id) => !rulesJson.rules.some((r) => r.id === id))).toEqual([]);
    // nothing below is vacuous: every kind is present in the truth, as often as defects.json says (a re-sent
    // record's superseded version repeats its defects; the count of corrected_resend is that of the superseded
    // or refused versions)
    expect(defectsJson.not_injected).toEqual([]);
    const superseded = new Set(['replaced', 'correction_to_closed']);
    for (const k of kinds) {
      const n = truth.filter((t) => has(t.defects, k) && (k === 'corrected_resend' ? superseded.has(t.disposition) : t.disposition !== 'replaced')).length;
      expect([k, n]).toEqual([k, defectsJson.counts[k]]);
      expect([k, n > 0]).toEqual([k, true]);
    }
  });

  test('every form ends as the truth says: events, linked (to the R of the same person), unmatched, out of scope with its reason, duplicate, replaced, quarantined', () => {
    const wrong: string[] = [];
    for (const t of truth) {
      if (t.disposition === 'event') {
        const e = events.get(t.record_id);
        if (!e || e.reference_month !== t.ref_month || e.carried_forward !== t.carried_forward) wrong.push(`${at(t)} ${t.record_id}: event ${t.ref_month} cf=${t.carried_forward}, got ${e ? `${e.reference_month} cf=${e.carried_forward}` : 'none'}`);
      } else if (t.disposition === 'quarantined') {
        const q = quarantine.get(at(t));
        if (q?.reason !== t.reason) wrong.push(`${at(t)}: quarantined ${t.reason}, got ${q?.reason ?? dispositions.get(at(t))?.disposition}`);
      } else {
        const d = dispositions.get(at(t));
        if (d?.disposition !== t.disposition || (t.disposition === 'out_of_scope' && d.reason !== t.reason)) wrong.push(`${at(t)}: ${t.disposition} ${t.reason}, got ${d?.disposition} ${d?.reason}`);
        // linkage: the pipeline links the D form to the R event of the same person
        if (t.disposition === 'linked_departure' && d?.reason !== rOfD.get(t.record_id)?.record_id) wrong.push(`${at(t)}: linked to ${d?.reason}, truth ${rOfD.get(t.record_id)?.record_id}`);
      }
    }
    expect(wrong).toEqual([]);
    expect(events.size).toBe(truthEvents.length);
  });

  test('every injected defect is handled where HANDLED_BY says', () => {
    const missed: string[] = [];
    const swap = defectsJson.day_month_swap;
    for (const [kind, h] of Object.entries(HANDLED_BY)) {
      const rows = truth.filter((t) => has(t.defects, kind));
      for (const t of rows) {
        const miss = (what: string): void => { missed.push(`${kind} ${at(t)} ${t.record_id}: ${what}`); };
        if ('rules' in h) {
          const donor = h.or_donor !== undefined && raw.get(at(t))!.birth_date === '' && has(events.get(t.record_id)?.donor_imputed ?? '', h.or_donor);
          const hit = h.rules.map((r) => donor || flagged(r).has(t.record_id) || (loggedUnder.get(r)?.has(t.record_id) ?? false));
          if (h.any ? !hit.some(Boolean) : !hit.every(Boolean)) miss(`not flagged by ${h.rules.filter((_, i) => !hit[i]).join(', ')}`);
          if (h.carried_forward && t.disposition === 'event' && events.get(t.record_id)?.carried_forward !== '1') miss('not carried forward');
        } else if ('scope' in h) {
          const d = dispositions.get(at(t));
          if (d?.disposition !== 'out_of_scope' || d.reason !== h.scope) miss(`disposition ${d?.disposition} ${d?.reason}`);
        } else if ('quarantine' in h) {
          const q = quarantine.get(at(t));
          if (q?.reason !== h.quarantine || q.field !== h.field) miss(`quarantine ${q?.reason} ${q?.field}`);
        } else if ('disposition' in h) {
          if (dispositions.get(at(t))?.disposition !== h.disposition) miss(`disposition ${dispositions.get(at(t))?.disposition}`);
        } else if ('resend' in h) {
          if (t.disposition === 'event') {
            if (!changesFor(t.record_id).some((c) => c.step === 'resend' && c.method === 'correction_by_resend')) miss('no correction_by_resend logged');
          } else if (!['replaced', 'correction_to_closed'].includes(t.disposition) || dispositions.get(at(t))?.disposition !== t.disposition) miss(`disposition ${dispositions.get(at(t))?.disposition}, truth ${t.disposition}`);
        } else if ('competing' in h) {
          const person = raw.get(at(t))!.person_id;
          const pairs = [...rOfD].filter(([, r]) => r.file === t.file && raw.get(at(r))!.person_id === person);
          if (pairs.length !== 2) miss(`${pairs.length} linked D forms of the person in the truth, not 2`);
          for (const [d, r] of pairs) {
            const got = dispositions.get(at(linkedD.get(d)!));
            if (got?.disposition !== 'linked_departure' || got.reason !== r.record_id) miss(`D ${d} ${got?.disposition} ${got?.reason}, truth linked to ${r.record_id}`);
          }
        } else if ('code_alone' in h) {
          const e = events.get(t.record_id);
          const r = raw.get(at(t))!;
          const side = h.code_alone.side;
          if (r[`${side}_settlement`] !== '' || r[`${side}_municipality`] === '') miss(`the form has ${side}_settlement ${r[`${side}_settlement`]}, ${side}_municipality ${r[`${side}_municipality`]}`);
          if (!e) miss('no event');
          else if ((side === 'to' ? e.to_municipality : e.origin_km === '1' ? 'KM' : e.from_municipality) !== t[`${side}_municipality`]) miss(`${side} ${side === 'to' ? e.to_municipality : e.from_municipality}, truth ${t[`${side}_municipality`]}`);
          const by = h.code_alone.rules.filter((id) => flagged(id).has(t.record_id));
          if (by.length) miss(`flagged by ${by.join(', ')}`);
        } else if ('delay' in h) {
          if (t.disposition !== 'event' && has(truthEventOf.get(t.record_id)?.defects ?? '', kind)) continue; // a superseded version: its event is checked
          const e = events.get(t.record_id);
          if (!e || e.delay_months !== t.delay_months || !(+e.delay_months >= 1)) miss(`delay ${e?.delay_months}, truth ${t.delay_months}`);
        } else {
          // the office is escalated in its month, and every date the swap changes is logged as corrected
          const q = quality.get(swap.month)!;
          if (!q.systemic.some((s) => s.office === swap.office && s.rule === h.systemic.rule && s.action.startsWith(h.systemic.correction))) miss('office not escalated');
          const r = raw.get(at(t))!;
          for (const field of ['registration_date', 'move_date']) {
            if (!r[field] || swapDM(r[field]) === r[field]) continue;
            const logged = changesFor(t.record_id).some((c) => c.step === 'systemic' && c.rule === h.systemic.correction && c.variable === field && c.old_value === r[field] && c.new_value === swapDM(r[field]));
            if (!logged) miss(`${field} ${r[field]} not swapped`);
          }
          if (r.registering_office !== swap.office || t.file !== `moi_${swap.month.replace('-', '_')}.csv`) miss('not the swapping office and month');
        }
      }
    }
    expect(missed).toEqual([]);
  });

  test('no rule flags a record without a defect that explains it (RULE_FLAGS); the exact rules flag exactly their defects', () => {
    const extra: string[] = [];
    const short: string[] = [];
    for (const id of Object.keys(RULE_FLAGS)) {
      const ok = explained(id);
      for (const r of flagged(id)) if (!ok.has(r)) extra.push(`${id}: ${r} (${[...(defectsOf.get(r) ?? [])].join(';') || 'no defect'}, ${truth.find((t) => t.record_id === r)?.disposition})`);
      if (RULE_FLAGS[id]!.exact) for (const r of ok) if (!flagged(id).has(r) && processedIds.has(r)) short.push(`${id}: ${r} not flagged`);
    }
    expect(extra).toEqual([]);
    expect(short).toEqual([]);
    // R03 never fails on an R form: only D forms recorded before their move date
    expect([...flagged('R03_MOVE_NOT_AFTER_REG')].filter((r) => !rOfD.has(r))).toEqual([]);
  });

  test('each month\'s rule summary equals an independent count from the truth', () => {
    const wrong: string[] = [];
    for (const m of months) {
      const forms = truth.filter((t) => t.ref_month === m && PROCESSED.has(t.disposition));
      const q = quality.get(m)!;
      for (const [id, spec] of Object.entries(RULE_FLAGS)) {
        const s = q.rules[id]!;
        if (s.items !== forms.length || s.passes + s.fails + s.na !== s.items) wrong.push(`${m} ${id}: items ${s.items}, truth ${forms.length}`);
        if (!spec.exact) continue;
        const ok = explained(id);
        const n = forms.filter((t) => ok.has(t.record_id)).length;
        if (s.fails !== n) wrong.push(`${m} ${id}: fails ${s.fails}, truth ${n}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  test('every logically recoverable value is recovered exactly, with a deductive provenance and method', () => {
    const wrong: string[] = [];
    const counts: Record<string, number> = {};
    const check = (what: string, t: Row, ok: boolean, detail: string): void => {
      counts[what] = (counts[what] ?? 0) + 1;
      if (!ok) wrong.push(`${what} ${t.record_id}: ${detail}`);
    };
    const logged = (t: Row, variable: string, methods: string[], value?: string): boolean =>
      changesFor(t.record_id).some((c) => c.step === 'deductive' && c.variable === variable && methods.includes(c.method) && (value === undefined || c.new_value === value));
    const origin = (e: Row): string => (e.origin_km === '1' ? 'KM' : e.from_municipality);
    for (const t of truthEvents) {
      const e = events.get(t.record_id)!;
      const d = defectsOf.get(t.record_id) ?? new Set<string>();
      const prov = e.provenance.split(';');
      const deduced = prov.includes('deduced');
      // sex from a valid JMBG (missing or contradicting)
      if ((d.has('missing_sex') && !d.has('invalid_jmbg_checksum')) || d.has('jmbg_contradicts_sex'))
        check('sex from JMBG', t, e.sex === t.sex && logged(t, 'sex', ['jmbg'], t.sex) && deduced && !has(e.donor_imputed, 'sex'), `sex ${e.sex} (truth ${t.sex}), provenance ${e.provenance}`);
      // birth date from a valid JMBG, hence the age
      if (d.has('missing_birth_date') || d.has('jmbg_contradicts_birth_date'))
        check('birth date from JMBG', t, logged(t, 'birth_date', ['jmbg'], t.birth_date) && e.age === t.age && deduced, `age ${e.age} (truth ${t.age}), provenance ${e.provenance}`);
      // municipality from the settlement (a wrong, unknown or outdated code)
      if (d.has('settlement_not_in_municipality') || d.has('unknown_municipality_code'))
        check('municipality from settlement', t, e.to_municipality === t.to_municipality && logged(t, 'to_municipality', ['settlement'], t.to_municipality) && deduced, `to ${e.to_municipality} (truth ${t.to_municipality})`);
      if (d.has('unknown_origin_municipality_code'))
        check('origin municipality from settlement', t, origin(e) === t.from_municipality && logged(t, 'from_municipality', ['settlement'], t.from_municipality) && deduced, `from ${origin(e)} (truth ${t.from_municipality}), provenance ${e.provenance}`);
      if (d.has('outdated_municipality_code'))
        check('municipality from settlement (outdated code)', t, e.to_municipality === t.to_municipality && logged(t, 'to_municipality', ['settlement', 'territorial_change'], t.to_municipality) && (deduced || prov.includes('recoded')), `to ${e.to_municipality} (truth ${t.to_municipality}), provenance ${e.provenance}`);
      // residence municipality from the registering office
      if (d.has('missing_destination'))
        check('residence from office', t, e.to_municipality === t.to_municipality && logged(t, 'to_municipality', ['registering_office'], t.to_municipality) && deduced, `to ${e.to_municipality} (truth ${t.to_municipality})`);
      // previous residence from the linked D form (when there is one); otherwise it is a donor's
      if (d.has('missing_previous_residence')) {
        if (dOfR.has(t.record_id)) check('previous residence from D form', t, origin(e) === t.from_municipality && logged(t, 'from_municipality', ['linked_d_form']) && deduced && !has(e.donor_imputed, 'from'), `from ${origin(e)} (truth ${t.from_municipality}), donor ${e.donor_imputed}`);
        else check('previous residence without D form → donor', t, has(e.donor_imputed, 'from'), `donor ${e.donor_imputed}`);
      }
      // economic activity not applicable under 15: a stated activity is replaced
      if (d.has('activity_under_15'))
        check('activity NA under 15', t, t.economic_activity === 'NA' && e.activity_group === 'dependents' && logged(t, 'economic_activity', ['age_under_15'], 'NA') && deduced, `group ${e.activity_group}, provenance ${e.provenance}`);
      // every value that is not a donor's equals the truth, for every event
      const donor = e.donor_imputed.split(';');
      if (e.to_municipality !== t.to_municipality) wrong.push(`${t.record_id}: to ${e.to_municipality}, truth ${t.to_municipality}`);
      if (e.age !== t.age) wrong.push(`${t.record_id}: age ${e.age}, truth ${t.age}`); // never a donor's here: every birth date defect comes with a valid JMBG
      if (e.delay_months !== t.delay_months) wrong.push(`${t.record_id}: delay ${e.delay_months}, truth ${t.delay_months}`);
      if (!donor.includes('sex') && e.sex !== t.sex) wrong.push(`${t.record_id}: sex ${e.sex}, truth ${t.sex}`);
      if (!donor.includes('from') && (origin(e) !== t.from_municipality || e.move_type !== t.move_type)) wrong.push(`${t.record_id}: from ${origin(e)} ${e.move_type}, truth ${t.from_municipality} ${t.move_type}`);
      if (!donor.includes('economic_activity') && e.activity_group !== ECO_GROUP[t.economic_activity]) wrong.push(`${t.record_id}: activity ${e.activity_group}, truth ${t.economic_activity}`);
      // a donor only where logic cannot recover the value
      const needDonor = {
        sex: d.has('missing_sex') && d.has('invalid_jmbg_checksum'),
        from: d.has('missing_previous_residence') && !dOfR.has(t.record_id),
        economic_activity: d.has('missing_economic_activity'),
        age: false,
      };
      for (const [v, need] of Object.entries(needDonor)) if (donor.includes(v) !== need) wrong.push(`${t.record_id}: ${v} donor-imputed ${donor.includes(v)}, expected ${need}`);
    }
    expect(wrong).toEqual([]);
    // each deduction was exercised
    for (const k of ['sex from JMBG', 'birth date from JMBG', 'municipality from settlement', 'municipality from settlement (outdated code)', 'residence from office', 'previous residence from D form', 'previous residence without D form → donor', 'activity NA under 15'])
      expect([k, (counts[k] ?? 0) > 0]).toEqual([k, true]);
  });

  test('donors come from the first configured class that has one; a donor gives its own values', () => {
    const wrong: string[] = [];
    const donorChanges = changes.filter((c) => c.step === 'donor');
    expect(donorChanges.length).toBeGreaterThan(100);
    const origin = (e: Row): string => (e.origin_km === '1' ? 'KM' : e.from_municipality);
    const value = (e: Row, v: string): string =>
      v === 'sex' ? e.sex : v === 'age_group' ? e.age_group : v === 'to_area' ? C.areaOf(e.to_municipality) : v === 'to_region' ? C.regionOf(e.to_municipality) : e.to_municipality;
    const donorsOf = new Map<string, Row[]>(); // month → events without any imputed value
    for (const [id, e] of events) if (e.donor_imputed === '') entry(donorsOf, monthOf.get(id)!, (): Row[] => []).push(e);
    const byRecipient = new Map<string, Row[]>();
    for (const c of donorChanges) entry(byRecipient, c.record_id, (): Row[] => []).push(c);
    for (const [id, cs] of byRecipient) {
      const e = events.get(id)!;
      const m = monthOf.get(id)!;
      const donorIds = new Set(cs.map((c) => c.donor_record_id));
      if (donorIds.size !== 1) { wrong.push(`${id}: ${donorIds.size} donors`); continue; }
      const d = events.get([...donorIds][0]!);
      if (!d || monthOf.get(d.record_id) !== m || d.donor_imputed !== '') { wrong.push(`${id}: donor ${[...donorIds][0]} is not a complete event of ${m}`); continue; }
      // the recipient's values before imputation: sex and age are unknown when imputed
      const knownSex = !has(e.donor_imputed, 'sex');
      const knownAge = !has(e.donor_imputed, 'age');
      const known = (v: string): boolean => (v === 'sex' ? knownSex : v === 'age_group' ? knownAge : true);
      const cls = imputation.classes.find((vars) => vars.every(known) && donorsOf.get(m)!.some((x) => vars.every((v) => value(x, v) === value(e, v))));
      if (!cls) { wrong.push(`${id}: no class with a donor`); continue; }
      // the change log names that class (an auditor sees every fallback)
      const logged = `class ${imputation.classes.indexOf(cls) + 1} of ${imputation.classes.length}: ${cls.join('×') || 'all events of the month'}`;
      if (cs.some((c) => c.rule !== logged)) wrong.push(`${id}: change log names ${cs[0]!.rule}, expected ${logged}`);
      const mismatch = cls.filter((v) => value(d, v) !== value(e, v));
      if (mismatch.length) wrong.push(`${id}: donor ${d.record_id} differs in ${mismatch.join(',')} of class [${cls.join(',')}]`);
      for (const c of cs) {
        const expected = c.variable === 'sex' ? d.sex : c.variable === 'economic_activity' ? truthEventOf.get(d.record_id)!.economic_activity
          : c.variable === 'from' ? (origin(d) === d.to_municipality ? e.to_municipality : origin(d) === e.to_municipality ? d.to_municipality : origin(d)) : c.variable === 'age' ? d.age : undefined;
        if (c.new_value !== expected) wrong.push(`${id}: ${c.variable} ${c.new_value}, donor ${d.record_id} gives ${expected}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  test('donor-imputed values stay within 4 standard errors of the truth of the same records and of all events', () => {
    const imputedOf = (v: string): Row[] => [...events.values()].filter((e) => has(e.donor_imputed, v));
    const region = (code: string): string => (code === 'KM' ? 'KM' : C.regionOf(code));
    const origin = (e: Row): string => (e.origin_km === '1' ? 'KM' : e.from_municipality);
    const newValue = new Map(changes.filter((c) => c.step === 'donor' && c.variable === 'economic_activity').map((c) => [c.record_id, c.new_value]));
    const views: [string, Row[], (e: Row) => string, (t: Row) => string][] = [
      ['sex', imputedOf('sex'), (e) => e.sex, (t) => t.sex],
      ['economic_activity', imputedOf('economic_activity'), (e) => newValue.get(e.record_id)!, (t) => t.economic_activity],
      ['previous residence: region', imputedOf('from'), (e) => region(origin(e)), (t) => region(t.from_municipality)],
      ['previous residence: move type', imputedOf('from'), (e) => e.move_type, (t) => t.move_type],
    ];
    const gaps: unknown[] = [];
    for (const [name, rs, imp, tru] of views) {
      expect([name, rs.length >= 40]).toEqual([name, true]);
      const imputed = rs.map(imp);
      const same = rs.map((e) => tru(truthEventOf.get(e.record_id)!));
      // the population those records come from: adults for economic activity (only adults have it imputed)
      const population = truthEvents.filter((t) => name !== 'economic_activity' || t.economic_activity !== 'NA').map(tru);
      for (const g of shareGaps(imputed, same)) gaps.push({ view: name, against: 'same records', n: rs.length, ...g });
      for (const g of shareGaps(imputed, population)) gaps.push({ view: name, against: 'all events', n: rs.length, ...g });
    }
    expect(gaps).toEqual([]);
  });

  test('national affiliation is never imputed or changed: every event has the truth\'s, a blank stays unknown (99)', () => {
    const wrong: string[] = [];
    for (const t of truthEvents) {
      const e = events.get(t.record_id)!;
      const stated = raw.get(at(t))!.nationality;
      if (e.nationality !== t.nationality || e.nationality !== (stated === '' ? '99' : stated)) wrong.push(`${t.record_id}: ${e.nationality}, stated '${stated}', truth ${t.nationality}`);
      if (has(e.donor_imputed, 'nationality')) wrong.push(`${t.record_id}: nationality donor-imputed`);
    }
    expect(wrong).toEqual([]);
    expect(changes.filter((c) => c.variable === 'nationality')).toEqual([]);
    // blanks were injected (and stay unknown)
    expect(truthEvents.filter((t) => raw.get(at(t))!.nationality === '').length).toBeGreaterThan(50);
  });

  test('a second fresh store on the same extracts is byte-identical, donor choices included', () => {
    const other = tmpDir();
    try {
      runCadence(g.files, other);
      const pick = (f: string): boolean => f.startsWith('months/');
      const a = snapshot(data, pick);
      const b = snapshot(other, pick);
      expect(Object.keys(b).sort()).toEqual(Object.keys(a).sort());
      expect(Object.keys(a).filter((f) => a[f] !== b[f])).toEqual([]);
      // not vacuous: every month has donor choices
      expect(Object.keys(a).filter((f) => f.endsWith('changes.csv') && /^donor,hot_deck,/m.test(a[f]!)).length).toBe(12);
    } finally {
      fs.rmSync(other, { recursive: true, force: true });
    }
  });
});

describe('linkage: the closest pair wins, whatever the order of the record ids (review of 26 Nov)', () => {
  test('two D forms of one person compete for one R form: the one a day away is linked, not the first by record id', () => {
    /* eslint-disable @typescript-eslint/no-require-imports */
    const fsm = require('node:fs') as typeof import('node:fs');
    const pth = require('node:path') as typeof import('node:path');
    const { runMonth: run } = require('../pipeline/month') as typeof import('../pipeline/month');
    const { INPUT_COLUMNS } = require('../stages/ingest') as typeof import('../stages/ingest');
    const { tmpDir: tmp, logFor: logOf, WE: we } = require('./helpers/store') as typeof import('./helpers/store');
    const J = '2001985711236';
    const line = (id: string, ft: string, reg: string, fromS: string, fromM: string): string =>
      [id, ft, reg, reg, J, 'RS', '1', '1985-01-20', '', fromS, fromM, '', '700011', '70114', '70114', '01', '1', '2'].join(',');
    const dir = tmp();
    const file = pth.join(dir, 'moi_2024_03.csv');
    // C3D1 (the first id) ten days from the R form, C3D2 one day from it; the R form has no previous residence
    fsm.writeFileSync(file, [INPUT_COLUMNS.join(','), line('C3', 'R', '2024-03-12', '', ''), line('C3D1', 'D', '2024-03-02', '800001', '80047'), line('C3D2', 'D', '2024-03-11', '700001', '70106'), ''].join('\n'));
    const data = tmp();
    run({ data, input: file, settlements: pth.join(we, 'settlements.csv'), log: logOf(data) });
    const disp = fsm.readFileSync(pth.join(data, 'months', '2024-03', 'dispositions.csv'), 'utf8');
    expect(disp).toContain('C3D2,D,linked_departure,C3');
    expect(disp).toContain('C3D1,D,unmatched_departure,');
    expect(fsm.readFileSync(pth.join(data, 'months', '2024-03', 'events.csv'), 'utf8')).toMatch(/^C3,2024-03-12,2024-03,70106,70114,/m);
  });
});
