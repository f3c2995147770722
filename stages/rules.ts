/**
 * The logical rules, kept as data (config/rules.json, schema schemas/rules.schema.json) and evaluated with
 * arquero expression strings: a rule file can only call arquero's `op` functions and the few domain
 * functions registered here, never arbitrary code. Each rule gives, per record, pass / fail / NA.
 */
import { aq } from './arquero';
import type * as AQ from 'arquero';
import { loadJson } from '../pipeline/schemas';
import type { RuleSummary } from '../pipeline/contracts';
import { isValidDate } from './jmbg';
import type { Classification } from './territory';
import { packedMap } from '../pipeline/memo';
import { mod11Ok } from './territory';

export interface Rule {
  id: string;
  description: string;
  severity: 'light' | 'hard';
  variables: string[];
  applies_to?: ('R' | 'D')[];
  when?: string;
  condition: string;
  scope_reason?: string;
}
export interface RuleFile { version: string; rules: Rule[]; scope_rules: Rule[] }
export type Columns = Record<string, string[]>;

/** Outcome codes per record: 1 pass, 0 fail, 2 NA. */
export const PASS = 1, FAIL = 0, NA = 2;
export interface RuleResult { rule: Rule; outcome: Uint8Array; summary: RuleSummary }

const ageMemo: { birth: unknown; date: unknown; age: number | null } = { birth: undefined, date: undefined, age: null };
// Domain functions available to rule expressions as op.<name>. They read the classification in force.
let territory: Classification | undefined;
const fns: Record<string, (...a: never[]) => unknown> = {
  valid_date: (s: string) => (s ? isValidDate(s) : null),
  mod11: (c: string) => (c ? mod11Ok(c) : null),
  muni_valid: (c: string, date: string) => (c && isValidDate(date) ? territory!.validOn(c, date) : null),
  muni_known: (c: string) => (c ? territory!.isMunicipality(c) : null),
  settlement_known: (s: string) => (s ? territory!.hasSettlement(s) : null),
  /** the settlement lies in municipality c on date, or c is the old code of that municipality (territorial change) */
  settlement_in: (s: string, c: string, date: string) => {
    if (!s || !c || !isValidDate(date) || !territory!.isMunicipality(c)) return null;
    const m = territory!.settlementMunicipality(s, date); // undefined (null below) for an unknown settlement too: one lookup
    if (m === undefined) return null;
    return m === c || territory!.successorOn(c, date) === m;
  },
  age_at: (birth: string, date: string) => {
    // the last call's answer: rules call age_at with the same two strings up to twice in a row for a form
    // (a condition's two bounds, a when and its condition); a pure function of its arguments, so reusing it is exact
    if (birth === ageMemo.birth && date === ageMemo.date) return ageMemo.age;
    const age = !birth || !isValidDate(birth) || !isValidDate(date) ? null : completedYears(birth, date);
    ageMemo.birth = birth;
    ageMemo.date = date;
    ageMemo.age = age;
    return age;
  },
  month_of: (date: string) => (date ? date.slice(0, 7) : null),
  km: (c: string) => (c && territory!.isMunicipality(c) ? territory!.isKM(c) : null),
};
let registered = false;
function register(): void {
  if (registered) return;
  for (const [name, fn] of Object.entries(fns)) aq.addFunction(name, fn as (...a: unknown[]) => unknown, { override: true });
  registered = true;
}
export const DOMAIN_FUNCTIONS = Object.keys(fns);

export function completedYears(from: string, to: string): number {
  // YYYY-MM-DD: whole years between two valid dates, without allocating (called for every form, several times)
  let y = digits(to, 0, 4) - digits(from, 0, 4);
  if (digits(to, 5, 7) * 100 + digits(to, 8, 10) < digits(from, 5, 7) * 100 + digits(from, 8, 10)) y -= 1;
  return y;
}
/** The number written by the ASCII digits s[a..b) (a top-level function: no closure per call). */
function digits(s: string, a: number, b: number): number {
  let v = 0;
  for (let i = a; i < b; i++) v = v * 10 + s.charCodeAt(i) - 48;
  return v;
}

export class RuleFileError extends Error {}

const FIELD_REF = /\bd\.([A-Za-z_][A-Za-z0-9_]*)/g;

/** Load and check a rule file: schema, unique ids, variables declared and known, expressions that parse. */
export function loadRules(file: string, knownColumns: readonly string[]): { rules: Rule[]; scopeRules: Rule[] } {
  register();
  const rf = loadJson<RuleFile>(file, 'rules');
  const seen = new Set<string>();
  const empty = aq.table(Object.fromEntries(knownColumns.map((c) => [c, [] as string[]])));
  for (const r of [...rf.rules, ...rf.scope_rules]) {
    if (seen.has(r.id)) throw new RuleFileError(`${file}: rule ${r.id}: duplicate id`);
    seen.add(r.id);
    for (const [part, expr] of [['condition', r.condition], ['when', r.when]] as const) {
      if (expr === undefined) continue;
      // "d => <expression>": the variables are read as d.name (checked below against the rule's variables), so another
      // parameter name would escape that check, and a block body is not an arquero expression
      if (!/^\s*d\s*=>\s*[^\s{]/.test(expr)) throw new RuleFileError(`${file}: rule ${r.id}: ${part} must be written d => <expression> (the parameter named d, no block), not ${JSON.stringify(expr.slice(0, 40))}`);
      if (/\bd\s*\[/.test(expr)) throw new RuleFileError(`${file}: rule ${r.id}: ${part}: use d.name to read a variable`);
      // the same data and rules must give the same results (reproducible runs): no clock, no random numbers
      const volatile = /\bop\s*\.\s*(random|now)\s*\(/.exec(expr);
      if (volatile) throw new RuleFileError(`${file}: rule ${r.id}: ${part} calls op.${volatile[1]}(), which gives another result on each run: a rule must depend on the forms only`);
      for (const m of expr.matchAll(FIELD_REF)) {
        const v = m[1]!;
        if (!knownColumns.includes(v)) throw new RuleFileError(`${file}: rule ${r.id}: ${part} reads unknown variable '${v}'`);
        if (!r.variables.includes(v)) throw new RuleFileError(`${file}: rule ${r.id}: ${part} reads '${v}', which is not in its variables`);
      }
      try {
        empty.derive({ x: expr });
      } catch (e) {
        throw new RuleFileError(`${file}: rule ${r.id}: ${part} does not parse: ${(e as Error).message}`);
      }
    }
    for (const v of r.variables) if (!knownColumns.includes(v)) throw new RuleFileError(`${file}: rule ${r.id}: unknown variable '${v}'`);
  }
  return { rules: rf.rules, scopeRules: rf.scope_rules };
}

type RowFn = (row: number, data: Record<string, unknown[]>, op?: unknown) => unknown;
const compiled = new Map<string, RowFn | null>();

/**
 * An arquero expression compiled once per process (aq.parse, arquero's own parser and code generator) into its
 * row function. null when it uses aggregate or window functions: such a rule is evaluated with table.derive.
 */
function rowFunction(expr: string, t: AQ.ColumnTable): RowFn | null {
  let f = compiled.get(expr);
  if (f === undefined) {
    const p = (aq as unknown as { parse: (v: object, o: object) => { exprs: RowFn[]; ops?: unknown[] } }).parse({ x: expr }, { table: t });
    f = p.ops?.length ? null : p.exprs[0]!;
    compiled.set(expr, f);
  }
  return f;
}

/** The code arquero generated for a row function: its source is `(row,data,op)=>CODE` (arquero's compile). */
const ROW_FN_PREFIX = '(row,data,op)=>';
function rowCode(f: RowFn): string | undefined {
  const src = Function.prototype.toString.call(f);
  return src.startsWith(ROW_FN_PREFIX) ? src.slice(ROW_FN_PREFIX.length) : undefined;
}

/**
 * All row-function rules of a list fused into one generated loop per rule, each in a function of its own: the rule's code
 * (arquero's own, from rowCode) is inlined, so V8 sees monomorphic column reads and inlines the op functions
 * instead of two megamorphic closure calls per rule and record. The rules stay data: only arquero-generated
 * expression code is pasted in. Each rule has its own try/catch, so a rule that throws is reported alone.
 * Per rule k: outcome in outs[k] (pre-filled NA), pass/fail counts in counts[2k], counts[2k+1], a thrown error in errors[k].
 */
const NO_ERROR = Symbol('no error'); // errors[k] until rule k throws (whatever it throws, even undefined)
type FusedFn = (n: number, kind: Uint8Array, data: Record<string, unknown[]>, outs: Uint8Array[], counts: Float64Array, errors: unknown[]) => void;
const fusedCache = new Map<string, FusedFn | null>();
function fused(rules: Rule[], t: AQ.ColumnTable): FusedFn | null {
  const sig = JSON.stringify(rules.map((r) => [r.applies_to ?? null, r.when ?? null, r.condition]));
  let f = fusedCache.get(sig);
  if (f !== undefined) return f;
  f = null;
  const parts: string[] = [];
  rules.forEach((rule, k) => {
    let cf: RowFn | null, wf: RowFn | null | undefined;
    try {
      cf = rowFunction(rule.condition, t);
      wf = rule.when ? rowFunction(rule.when, t) : undefined;
    } catch {
      cf = null; // does not compile: table.derive below reports the error as before
    }
    const cond = cf ? rowCode(cf) : undefined;
    const when = wf ? rowCode(wf) : undefined;
    if (cond === undefined || wf === null || (wf && when === undefined)) { parts.push(`/* rule ${k}: not a row function, evaluated by table.derive */`); return; }
    const mask = kindMask(rule);
    // The counts are kept in counts[] as the loop goes, not stored after it (LOOP_TAIL in pipeline/memo.ts).
    parts.push(`/* rule ${k} */ (n, kind, data, outs, counts, errors) => { try { const o = outs[${k}]; counts[${2 * k}] = 0; counts[${2 * k + 1}] = 0;
  for (let row = 0; row < n; row++) {
    ${mask ? `if (!(${mask} & kind[row])) continue;` : ''}
    ${when !== undefined ? `{ const w = (${when}); if (w !== true) { if (w !== false && w != null) notBoolean('when', w); continue; } }` : ''}
    const v = (${cond});
    if (v === true) { o[row] = ${PASS}; counts[${2 * k}]++; } else if (v === false) { o[row] = ${FAIL}; counts[${2 * k + 1}]++; } else if (v != null) notBoolean('condition', v);
  }
  } catch (e) { errors[${k}] = e; } },`);
  });
  // fn and $ are what arquero's compile binds for its row functions: its expression functions and the table's
  // params (none here). aq.op holds the very same function objects (addFunction puts a function in both), plus
  // the aggregate and window wrappers, which a row function never calls.
  // fn is given as a small object holding just the functions the code names, the same function objects as aq.op:
  // aq.op (150 functions) is a dictionary-mode object, whose property reads V8 can neither fold nor inline through
  // (every op call a hash lookup and a real call). A name aq.op lacks stays absent, so the code fails as before.
  const code = parts.join('\n');
  const fnUsed: Record<string, unknown> = {};
  for (const m of code.matchAll(/\bfn\.([A-Za-z_$][\w$]*)/g)) if (m[1]! in aq.op) fnUsed[m[1]!] = (aq.op as unknown as Record<string, unknown>)[m[1]!];
  // one function per rule, called in turn: V8 compiles each rule's loop alone (a single function holding every
  // rule's loop was compiled whole on the stack again for each loop it reached, ~15 times per worker)
  const ruleFns = Function('fn', '$', 'notBoolean', `"use strict"; return [\n${code}\n];`)(fnUsed, {}, notBoolean) as FusedFn[];
  f = (n, kind, data, outs, counts, errors) => { for (const g of ruleFns) g(n, kind, data, outs, counts, errors); };
  fusedCache.set(sig, f);
  return f;
}

/**
 * A condition (or when) must give true, false, or null/undefined (not applicable): anything else (a number from
 * & where && was meant, a string) would leave the rule silently not applicable to every form.
 */
function notBoolean(part: string, v: unknown): never {
  throw new Error(`the ${part} gives ${typeof v} ${JSON.stringify(v)?.slice(0, 30) ?? String(v)}, not true, false or null (& where && was meant?)`);
}

/** The form kinds a rule applies to, as bits of evaluateRules' `kind` (1 R, 2 D); 0 for every form. */
function kindMask(rule: Rule): number {
  const types = rule.applies_to;
  return types ? (types.includes('R') ? 1 : 0) | (types.includes('D') ? 2 : 0) : 0;
}

/**
 * Keep alive one object of each shape `data` had: V8 forgets the hidden class (map) of objects built key by key
 * once every object of it is garbage, and the next month's object then gets a new one, which the rules' optimised
 * code (compiled for the old map) does not know: it was deoptimised and compiled again every month.
 */
const shapes = new Map<string, object>();
function anchorShape(o: object): void {
  const keys = Object.keys(o);
  const k = keys.join('\t');
  if (!shapes.has(k)) shapes.set(k, Object.fromEntries(keys.map((c) => [c, null])));
}

/** The kind of each form, 1 R, 2 D (a loop alone in a function: LOOP_TAIL in pipeline/memo.ts). */
function formKinds(ft: readonly string[]): Uint8Array {
  const kind = new Uint8Array(ft.length);
  for (let i = 0; i < ft.length; i++) kind[i] = ft[i] === 'R' ? 1 : ft[i] === 'D' ? 2 : 0;
  return kind;
}

/** Evaluate rules on a table of columns. A rule that throws on the data becomes a summary row with its error. */
export function evaluateRules(rules: Rule[], cols: Columns, classification: Classification, formTypeCol = 'form_type'): RuleResult[] {
  register();
  territory = classification;
  const n = cols[formTypeCol]!.length;
  const needed = new Set<string>([formTypeCol]);
  for (const r of rules) for (const v of r.variables) needed.add(v);
  const data = Object.fromEntries([...needed].map((c) => [c, cols[c]!])) as Record<string, string[]>;
  anchorShape(data);
  const t = aq.table(data);
  const out: RuleResult[] = [];
  const ft = cols[formTypeCol]!;
  const kind = formKinds(ft);
  // (packedMap, not rules.map: the rule functions, compiled for one kind of array, were deoptimised whenever the other came)
  const outs = packedMap(rules, () => new Uint8Array(n).fill(NA));
  const counts = new Float64Array(2 * rules.length).fill(-1); // -1: not evaluated by the fused function
  const errors: unknown[] = new Array(rules.length).fill(NO_ERROR);
  fused(rules, t)?.(n, kind, data, outs, counts, errors);
  rules.forEach((rule, k) => {
    const outcome = outs[k]!;
    const summary: RuleSummary = { items: 0, passes: 0, fails: 0, na: 0, severity: rule.severity, expression: rule.condition };
    const mask = kindMask(rule);
    let passes = counts[2 * k]!, fails = counts[2 * k + 1]!;
    try {
      if (errors[k] !== NO_ERROR) throw errors[k];
      if (passes < 0) {
        // an aggregate or window expression: through table.derive, the when-condition first, the condition only where it holds
        passes = fails = 0;
        const derived = t.derive(rule.when ? { c: rule.condition, w: rule.when } : { c: rule.condition });
        const c = derived.array('c') as unknown[];
        const w = rule.when ? (derived.array('w') as unknown[]) : undefined;
        for (let i = 0; i < n; i++) {
          if (mask && !(mask & kind[i]!)) continue;
          if (w && w[i] !== true) { if (w[i] !== false && w[i] != null) notBoolean('when', w[i]); continue; }
          const v = c[i];
          if (v === true) { outcome[i] = PASS; passes++; }
          else if (v === false) { outcome[i] = FAIL; fails++; }
          else if (v != null) notBoolean('condition', v);
        }
      }
    } catch (e) {
      outcome.fill(NA);
      passes = fails = 0;
      summary.error = (e as Error).message;
    }
    summary.items = n;
    summary.passes = passes;
    summary.fails = fails;
    summary.na = n - passes - fails;
    out.push({ rule, outcome, summary });
  });
  return out;
}

/** Per office, the forms a rule applies to and those failing it (a function of its own: see systemicFindings). */
function officeCounts(outcome: Uint8Array, office: readonly string[]): { items: Map<string, number>; fails: Map<string, number> } {
  const items = new Map<string, number>();
  const fails = new Map<string, number>();
  const out = { items, fails }; // (before the loop: see LOOP_TAIL in pipeline/memo.ts)
  for (let i = 0; i < office.length; i++) {
    const o = outcome[i];
    if (o === NA) continue;
    const k = office[i]!;
    items.set(k, (items.get(k) ?? 0) + 1);
    if (o === FAIL) fails.set(k, (fails.get(k) ?? 0) + 1);
  }
  return out;
}

/**
 * Escalation of light errors to hard/systemic: a rule failing for more than `threshold` of one registering
 * office's applicable records (at least `minItems`) in one month.
 */
export function systemicFindings(results: RuleResult[], office: string[], threshold: number, minItems: number): { rule: string; office: string; share: number; items: number }[] {
  const found: { rule: string; office: string; share: number; items: number }[] = [];
  for (const r of results) {
    const { items, fails } = officeCounts(r.outcome, office);
    for (const k of [...items.keys()].sort()) { // (the default sort orders strings as < does: no comparator made per call)
      const it = items.get(k)!;
      const f = fails.get(k) ?? 0;
      if (it >= minItems && f / it > threshold) found.push({ rule: r.rule.id, office: k, share: Math.round((f / it) * 1000) / 1000, items: it });
    }
  }
  return found;
}
