/**
 * From an ingested extract to forms placed in their reference months:
 *  1. duplicates and re-sends (within the file, and against forms already in the store);
 *  2. systemic corrections (e.g. one office's day/month swap), before anything depends on the dates;
 *  3. attribution: the month the registration was recorded; a closed month's late forms are carried
 *     forward into the earliest open month; forms recorded after the file's month are quarantined.
 * Pure: the store's knowledge comes in as functions.
 */
import type { QuarantineRow, Columns } from './ingest';
import { CONTENT_COLUMNS, contentKey, FORM_COLUMNS, squeeze } from './ingest';
import { isValidDate } from './jmbg';
import { addMonths, RESEND_WINDOW_MONTHS } from '../pipeline/contracts';
import { RowTable } from '../pipeline/memo';
import { evaluateRules, systemicFindings, type Rule } from './rules';
import type { Classification } from './territory';

export interface ChangeRow { step: string; method: string; rule: string; record_id: string; variable: string; old_value: string; new_value: string; donor_record_id: string }
export interface Disposition { file: string; line: string; record_id: string; form_type: string; disposition: string; reason: string }

/** The versions of a record id already ingested (oldest first) and the month of the newest. */
export interface PriorForm { month: string; versions: readonly { month: string; content: string }[] }
export interface SystemicCorrection { id: string; trigger_rule: string; action: 'swap_day_month'; fields: string[] }

export interface DeliveryResult {
  /** accepted forms with two more columns: ref_month, carried_forward */
  forms: Columns;
  quarantine: QuarantineRow[];
  dispositions: Disposition[]; // duplicates and corrections to closed months (the rest are decided per month)
  changes: ChangeRow[];
  systemic: { rule: string; office: string; share: number; items: number; action: string }[];
  counts: { accepted: number; duplicates: number; corrections_to_closed: number; quarantined: number; carried_forward: number };
  /**
   * The corrections to closed months, logged and not applied: each form as received (its content columns,
   * pseudonymised), so that the size of a revision not made can be measured (ESMS 17.2)
   */
  withheld: { record_id: string; corrects_month: string; form: Record<string, string> }[];
  /** the extract was mostly of other months and taken as a supplement (ctx.allowOtherMonths) */
  otherMonths: boolean;
  /** for each accepted form, its row in the input forms */
  source: number[];
  /** the accepted forms (indices into `forms`) with values changed by a systemic correction */
  corrected: Set<number>;
}

/** The rows `keep` of one column (or of any array: v[keep[j]] for each j). */
export function pick<T>(v: readonly T[], keep: readonly number[]): T[] {
  const n = keep.length;
  const a: T[] = new Array(n);
  for (let j = 0; j < n; j++) a[j] = v[keep[j]!]!;
  return a;
}

/** The rows `keep` (increasing) of every column; the columns themselves when every row is kept. */
export function take(cols: Columns, keep: number[]): Columns {
  const out: Columns = {};
  const n = keep.length;
  for (const [k, v] of Object.entries(cols)) out[k] = n === v.length ? v : pick(v, keep); // keep is increasing: all rows, in order
  return out;
}

/** The first month from m on that is not closed (where a closed month's late forms are carried forward). */
function earliestOpen(m: string, isClosed: (month: string) => boolean): string {
  let x = m;
  while (isClosed(x)) x = addMonths(x, 1);
  return x;
}

/** An extract of at least this many forms, fewer than half of them recorded in its month, is refused as mislabelled. */
export const MISLABELLED_MIN_FORMS = 100;

export function swapDayMonth(d: string): string {
  return d.length === 10 ? `${d.slice(0, 4)}-${d.slice(8, 10)}-${d.slice(5, 7)}` : d;
}

/** The date with day and month exchanged is a calendar date of `month` (where a day/month swap would have it). */
function swapsInto(date: string, month: string): boolean {
  const sw = swapDayMonth(date);
  return isValidDate(sw) && sw.slice(0, 7) === month;
}

/** The context deliver's steps read (its second argument). */
type DeliverContext = Parameters<typeof deliver>[1];

/**
 * Step 1 of deliver: the forms kept (indices, increasing), and the duplicates and corrections to closed months with
 * their dispositions. Its own function (as `attribute`), not a loop inside deliver: V8 then compiles these loops
 * alone, not the whole of deliver on the stack (OSR) again each time one of its cold parts meets a new shape.
 */
function dedupe(f: Columns, ctx: DeliverContext): { keep: number[]; dispositions: Disposition[]; withheld: DeliveryResult['withheld']; duplicates: number; toClosed: number } {
  const n = f.record_id!.length;
  const dispositions: Disposition[] = [];
  const disp = (i: number, disposition: string, reason: string): void => {
    dispositions.push({ file: f.file![i]!, line: f.line![i]!, record_id: f.record_id![i]!, form_type: f.form_type![i]!, disposition, reason });
  };
  // the forms kept with a record_id in this file, as a chain: the last in lastWith, the one before form i in
  // prevWith[i] (no array per record id: almost every id has one form). A RowTable, not a Map: its get and set were
  // 80 % of dedupe, ~4 ms an extract on the rebuild's ordered path.
  const lastWith = new RowTable(n, f.record_id!);
  const prevWith = new Int32Array(n);
  const keep: number[] = [];
  let duplicates = 0, toClosed = 0;
  const withheld: DeliveryResult['withheld'] = [];
  for (let i = 0; i < n; i++) {
    const id = f.record_id![i]!;
    const slot = lastWith.slot(id);
    const last = lastWith.at(slot); // -1: none
    let content: string | undefined; // built only when the id was seen before: most forms never need it
    if (last >= 0) {
      content = contentKey(f, i);
      let same = false;
      for (let j = last; j >= 0 && !same; j = prevWith[j]!) same = contentKey(f, j) === content;
      if (same) { duplicates++; disp(i, 'duplicate', 'same record_id and content earlier in this file'); continue; }
    }
    const prior = ctx.prior(id);
    if (prior) {
      content ??= contentKey(f, i);
      const key = ctx.contentHash ? ctx.contentHash(content) : content;
      // identical to any version already ingested, not only the newest: an old version re-sent after its correction
      let same: { month: string } | undefined;
      for (const v of prior.versions) if (v.content === key) same = v;
      if (same) { duplicates++; disp(i, 'duplicate', `same record_id and content already ingested (month ${same.month})`); continue; }
      if (ctx.isClosed(prior.month)) {
        toClosed++;
        disp(i, 'correction_to_closed', `corrects a form of closed month ${prior.month}: logged, not applied`);
        withheld.push({ record_id: id, corrects_month: prior.month, form: Object.fromEntries(CONTENT_COLUMNS.filter((c) => f[c]).map((c) => [c, f[c]![i]!])) });
        continue;
      }
    }
    prevWith[i] = last;
    lastWith.set(slot, i);
    keep.push(i);
  }
  return { keep, dispositions, withheld, duplicates, toClosed };
}

/**
 * Step 3 of deliver: the reference month of each kept form (regs: their registration dates; at: a kept form's value),
 * or its quarantine (pushed onto `quarantine`); the forms attributed (indices among the kept ones), and how many
 * were carried forward and recorded in the extract's own month.
 */
function attribute(regs: string[], fileMonth: string, ctx: DeliverContext, quarantine: QuarantineRow[], at: (c: string, i: number) => string): { ref: string[]; cf: string[]; keep2: number[]; carried: number; own: number } {
  const m = regs.length;
  const q = (i: number, reason: string, detail: string): void => {
    quarantine.push({ file: at('file', i), line: +at('line', i), record_id: at('record_id', i), field: 'registration_date', reason, detail });
  };
  // written by index into arrays of the final size at most (no growing by push), cut to length after
  const ref: string[] = new Array(m);
  const cf: string[] = new Array(m);
  const keep2: number[] = new Array(m); // among the kept forms
  // (a form recorded before the window may be a re-send of one the duplicate check no longer sees: never counted twice)
  const windowMonths = ctx.windowMonths ?? RESEND_WINDOW_MONTHS;
  const oldest = addMonths(fileMonth, -windowMonths);
  // [carried forward, forms recorded in the extract's own month (readable or not), for the mislabelled-extract check]
  const tally = new Int32Array(2);
  const k2 = attributeLoop(regs, fileMonth, ctx, q, at, ref, cf, keep2, tally, oldest, windowMonths);
  ref.length = k2;
  cf.length = k2;
  keep2.length = k2;
  return { ref, cf, keep2, carried: tally[0]!, own: tally[1]! };
}

/** attribute's loop, alone in a function that returns its count (see LOOP_TAIL in pipeline/memo.ts) */
function attributeLoop(regs: string[], fileMonth: string, ctx: DeliverContext, q: (i: number, reason: string, detail: string) => void, at: (c: string, i: number) => string,
  ref: string[], cf: string[], keep2: number[], tally: Int32Array, oldest: string, windowMonths: number): number {
  const m = regs.length;
  let k2 = 0;
  for (let i = 0; i < m; i++) {
    const reg = regs[i]!;
    const isOwn = reg.startsWith(fileMonth);
    if (isOwn) tally[1]!++;
    if (!isValidDate(reg)) { q(i, 'unreadable_date', `registration_date ${JSON.stringify(reg)} is not a calendar date`); continue; }
    // the file's own month (most forms) as the one string fileMonth, not a new slice per form
    const month = isOwn ? fileMonth : reg.slice(0, 7);
    if (month > fileMonth) { q(i, 'registration_after_file_month', `registered ${reg}, after the extract's month ${fileMonth}`); continue; }
    // (a form the duplicate check did find in the index is a correction it could judge: not quarantined)
    if (month < oldest && !ctx.prior(at('record_id', i))) { q(i, 'recorded_before_resend_window', `registered ${reg}, more than ${windowMonths} months before the extract's month ${fileMonth}: the duplicate check cannot tell whether it was delivered before`); continue; }
    if (ctx.isClosed(month)) {
      ref[k2] = earliestOpen(month, ctx.isClosed);
      cf[k2] = '1';
      tally[0]!++;
    } else {
      ref[k2] = month;
      cf[k2] = '0';
    }
    keep2[k2++] = i;
  }
  return k2;
}

export function deliver(
  input: { forms: Columns; quarantine: QuarantineRow[]; fileMonth: string },
  ctx: {
    prior: (recordId: string) => PriorForm | undefined;
    /** how the store keys content (the store keeps a hash of each form's content) */
    contentHash?: (content: string) => string;
    isClosed: (month: string) => boolean;
    /** how many months back `prior` sees (default RESEND_WINDOW_MONTHS): forms recorded before that are quarantined */
    windowMonths?: number;
    /** take an extract whose forms are mostly of other months (a supplement of late forms), which is otherwise refused */
    allowOtherMonths?: boolean;
    rules: Rule[];
    corrections: SystemicCorrection[];
    /** the caller does not read input.forms afterwards: its columns may be compacted in place instead of copied */
    consume?: boolean;
    classification: Classification;
    systemic: { threshold: number; min_items: number };
  },
): DeliveryResult {
  const f = input.forms;
  const n = f.record_id!.length;
  const changes: ChangeRow[] = [];
  // 1. duplicates: identical content seen before (in this file or in the store) is skipped.
  const { keep, dispositions, withheld, duplicates, toClosed } = dedupe(f, ctx);
  // The kept forms are read column by column, copied only when first needed: the systemic check reads a few
  // columns, and the accepted forms are copied once, at the end (one copy of every column instead of two).
  const m = keep.length;
  const kept: Columns = {};
  const col = (c: string): string[] => (kept[c] ??= m === n ? f[c]! : pick(f[c]!, keep));
  const at = (c: string, i: number): string => (kept[c] ? kept[c][i]! : f[c]![keep[i]!]!); // kept form i, without copying the column
  // 2. systemic corrections, triggered per office by the share of failures of their trigger rule.
  const systemic: DeliveryResult['systemic'] = [];
  const correctedKept = new Set<number>(); // among the kept forms
  for (const sc of ctx.corrections) {
    const rule = ctx.rules.find((r) => r.id === sc.trigger_rule);
    if (!rule) throw new Error(`systemic correction ${sc.id}: unknown trigger rule ${sc.trigger_rule}`);
    const cols: Columns = {}; // what evaluateRules reads: form_type and the rule's variables
    for (const c of ['form_type', ...rule.variables]) if (f[c]) cols[c] = col(c);
    const res = evaluateRules([rule], cols, ctx.classification);
    const found = systemicFindings(res, col('registering_office'), ctx.systemic.threshold, ctx.systemic.min_items);
    for (const fd of found) {
      let applied = 0;
      const office = col('registering_office');
      // confirmed only if most of the office's forms read as dates of the extract's month once swapped: an office whose
      // forms are simply of other months (a supplement of late forms) fails the trigger rule too, and is left alone
      let landing = 0;
      const regs0 = col('registration_date');
      for (let i = 0; i < m; i++) if (office[i] === fd.office && swapsInto(regs0[i]!, input.fileMonth)) landing++;
      if (landing / fd.items <= ctx.systemic.threshold) continue;
      for (let i = 0; i < m; i++) {
        if (office[i] !== fd.office) continue;
        // (read again for each form: a correction below may replace the column by a copy)
        if (!swapsInto(col('registration_date')[i]!, input.fileMonth)) continue; // day = month: the date reads the same, its move date may not
        for (const field of sc.fields) {
          const old = col(field)[i]!;
          if (!old) continue;
          const nv = swapDayMonth(old);
          if (nv === old) continue;
          if (kept[field] === f[field]) kept[field] = f[field]!.slice(); // never change the caller's columns
          kept[field]![i] = nv;
          correctedKept.add(i);
          changes.push({ step: 'systemic', method: sc.action, rule: sc.id, record_id: at('record_id', i), variable: field, old_value: old, new_value: nv, donor_record_id: '' });
        }
        applied++;
      }
      systemic.push({ ...fd, action: `${sc.id}: corrected ${applied} form${applied === 1 ? '' : 's'}` });
    }
  }
  // 3. attribution to the reference month.
  const quarantine = [...input.quarantine];
  const regs = col('registration_date');
  const { ref, cf, keep2, carried, own } = attribute(regs, input.fileMonth, ctx, quarantine, at);
  // an extract whose forms are mostly of another month is the wrong file, or named for the wrong month: refused before
  // anything is written (its forms would all go to other months, and every office would look like a day/month swap)
  const otherMonths = m >= MISLABELLED_MIN_FORMS && own < m / 2;
  if (otherMonths && !ctx.allowOtherMonths) {
    const byMonth = new Map<string, number>();
    for (let i = 0; i < m; i++) byMonth.set(regs[i]!.slice(0, 7), (byMonth.get(regs[i]!.slice(0, 7)) ?? 0) + 1);
    const [top, k] = [...byMonth].sort((a, b) => b[1] - a[1])[0]!;
    throw new Error(`${at('file', 0)}: only ${own} of its ${m} forms are recorded in ${input.fileMonth}, the extract's month, and ${k} in ${top}: is it the extract of ${top}? Nothing was ingested (a supplement of late forms is taken with --allow-other-months)`);
  }
  // the accepted forms: every column in the caller's order, from the kept copy when there is one
  const rows = pick(keep, keep2); // among all forms
  const out: Columns = {};
  // (a kept column that is a copy is ours to squeeze in place; the caller's columns only when it gave them up)
  for (const [c, v] of Object.entries(f)) {
    const k = kept[c];
    out[c] = k ? (keep2.length === m ? k : k !== v || ctx.consume ? squeeze(k, keep2) : pick(k, keep2)) : rows.length === n ? v : ctx.consume ? squeeze(v, rows) : pick(v, rows);
  }
  out.ref_month = ref;
  out.carried_forward = cf;
  for (const c of FORM_COLUMNS) if (!out[c]) throw new Error(`internal: column ${c} lost`);
  const corrected = new Set<number>();
  if (correctedKept.size) keep2.forEach((i, j) => { if (correctedKept.has(i)) corrected.add(j); });
  return {
    forms: out, quarantine, dispositions, changes, systemic,
    counts: { accepted: keep2.length, duplicates, corrections_to_closed: toClosed, quarantined: quarantine.length, carried_forward: carried }, withheld, otherMonths,
    source: rows, corrected,
  };
}
