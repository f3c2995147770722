/**
 * `migstat audit`: integrity and lineage.
 *
 * Integrity: every results directory (months/*, years/*, published/*) carries a manifest.json listing each of
 * its files with its SHA-256 (paths relative to the directory; manifest.json does not list itself). audit()
 * re-hashes every file and reports files that were altered, are missing or are present but not listed, and
 * verifies the hash chain of the stage log (logs/migstat.jsonl). Where the log records the hash of a
 * manifest (fields `manifest_path` and `manifest_sha256`, written e.g. by the release stage), the manifest
 * itself is checked against the log, so a file altered together with its manifest is still caught.
 *
 * Lineage: explain() re-traces one published cell to the events behind it (months/YYYY-MM/events.csv) and
 * their rule failures (violations.csv) and cell changes (changes.csv).
 *
 * Read-only: nothing here writes to the store.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Manifest } from '../pipeline/contracts';
import { LEVELS, monthsOfYear } from '../pipeline/contracts';
import { readCsvText, type Row } from '../pipeline/csv';
import { listFiles, sha256, sha256File } from '../pipeline/fsutil';
import { verifyLogChain } from '../pipeline/log';
import type { Store } from '../pipeline/store';
import { loadClassification, type Classification } from './territory';

/** stale: a results directory was built from inputs (a month's results, a year's files) that have changed since */
export type ProblemKind = 'altered' | 'missing' | 'unexpected' | 'log_chain' | 'no_manifest' | 'stale';
export interface AuditProblem { path: string; problem: ProblemKind; detail: string }
/** logHead: SHA-256 of the log's last line; recorded outside the store, it shows later whether the log was rewritten */
export interface AuditResult { ok: boolean; checked: number; problems: AuditProblem[]; logHead?: string }

/** The directories that hold results, each with its own manifest.json. */
export const RESULT_ROOTS = ['months', 'years', 'published'] as const;

const posix = (...p: string[]): string => p.filter((s) => s !== '').join('/');

/** A manifest output path must stay inside its directory. */
function safeRel(p: unknown): p is string {
  return typeof p === 'string' && p.length > 0 && !p.startsWith('/') && !p.includes('\\') && !p.split('/').some((s) => s === '..' || s === '.' || s === '');
}

/** Read and sanity-check a manifest; returns a reason when it cannot be used. */
export function readManifest(file: string): { manifest?: Manifest; error?: string } {
  let m: Manifest;
  try {
    m = JSON.parse(fs.readFileSync(file, 'utf8')) as Manifest;
  } catch (e) {
    return { error: `not valid JSON: ${(e as Error).message}` };
  }
  if (!m || typeof m !== 'object' || !Array.isArray(m.outputs)) return { error: 'not a manifest: no outputs list' };
  const seen = new Set<string>();
  for (const o of m.outputs) {
    if (!o || !safeRel(o.path) || typeof o.sha256 !== 'string') return { error: `not a manifest: bad output entry ${JSON.stringify(o)}` };
    if (o.path === 'manifest.json') return { error: 'the manifest lists itself' };
    if (seen.has(o.path)) return { error: `the manifest lists ${o.path} twice` };
    seen.add(o.path);
  }
  return { manifest: m };
}

/**
 * Check one results directory against its manifest. `rel` is the directory's path relative to the store
 * root, used to name files in problems (e.g. `published/IM-2024/tables/territory.csv`).
 */
export function checkResultsDir(dir: string, rel: string): { checked: number; problems: AuditProblem[]; manifest?: Manifest } {
  const problems: AuditProblem[] = [];
  const mf = path.join(dir, 'manifest.json');
  const present = listFiles(dir).filter((f) => f !== 'manifest.json');
  if (!fs.existsSync(mf)) {
    problems.push({ path: rel, problem: 'no_manifest', detail: `${rel} has no manifest.json; its ${present.length} file(s) cannot be verified` });
    return { checked: 0, problems };
  }
  const { manifest, error } = readManifest(mf);
  if (!manifest) {
    problems.push({ path: posix(rel, 'manifest.json'), problem: 'altered', detail: `${posix(rel, 'manifest.json')}: ${error}` });
    return { checked: 0, problems };
  }
  let checked = 0;
  const listed = new Set<string>();
  for (const o of manifest.outputs) {
    listed.add(o.path);
    const f = path.join(dir, ...o.path.split('/'));
    const name = posix(rel, o.path);
    if (!fs.existsSync(f) || !fs.statSync(f).isFile()) {
      problems.push({ path: name, problem: 'missing', detail: `${name} is listed in ${rel}/manifest.json but does not exist` });
      continue;
    }
    checked++;
    const data = fs.readFileSync(f);
    const h = sha256(data);
    if (h !== o.sha256) {
      const size = typeof o.bytes === 'number' && o.bytes !== data.length ? `; ${o.bytes} bytes expected, ${data.length} found` : '';
      problems.push({ path: name, problem: 'altered', detail: `${name}: SHA-256 ${h} differs from the manifest's ${o.sha256}${size}` });
    }
  }
  for (const f of present) {
    if (!listed.has(f)) {
      const name = posix(rel, f);
      problems.push({ path: name, problem: 'unexpected', detail: `${name} is present but not listed in ${rel}/manifest.json` });
    }
  }
  return { checked, problems, manifest };
}

/**
 * What the log says about the results directories. manifests: every SHA-256 the log recorded for each manifest path
 * (a run logs it before it swaps the directory in, and after). published: the releases logged as published. done:
 * the directories ("months/2024-03") whose run finished (month/year `done`, release `published`) and that no later
 * line removed (a month whose results were a rolled-back delivery's alone): they must exist.
 */
export function logRecords(logFile: string): { manifests: Map<string, Set<string>>; published: Set<string>; done: Set<string> } {
  const manifests = new Map<string, Set<string>>();
  const published = new Set<string>();
  const done = new Set<string>();
  if (!fs.existsSync(logFile)) return { manifests, published, done };
  for (const line of fs.readFileSync(logFile, 'utf8').split('\n')) {
    if (!line) continue;
    let o: Record<string, unknown>;
    try { o = JSON.parse(line) as Record<string, unknown>; } catch { continue; }
    if (typeof o.manifest_path === 'string' && typeof o.manifest_sha256 === 'string') {
      const s = manifests.get(o.manifest_path) ?? new Set<string>();
      s.add(o.manifest_sha256);
      manifests.set(o.manifest_path, s);
      if (o.event === 'done' || o.event === 'published') done.add(o.manifest_path.replace(/\/manifest\.json$/, ''));
    }
    if (o.stage === 'release' && o.event === 'published' && typeof o.release_id === 'string') published.add(o.release_id);
    if (o.stage === 'recover' && o.event === 'removed_month' && typeof o.month === 'string') done.delete(`months/${o.month}`);
  }
  return { manifests, published, done };
}

/** Re-hash every artefact of the store against its manifest and verify the log's hash chain. */
/**
 * The inputs a results directory names must still be what it was built from, by their SHA-256: a month's forms
 * partitions and delivery records (immutable, named by their delivery: a difference is an alteration), a year's
 * month manifests and a release's year files (a month rebuilt after its year makes the year stale).
 */
function inputProblems(store: Store, rel: string, m: Manifest): AuditProblem[] {
  return changedInputs(store, m, /^(months|years|forms|deliveries)\//).map(({ path: p, gone }): AuditProblem => {
    const immutable = /^(forms|deliveries)\//.test(p);
    if (gone) return { path: immutable ? p : rel, problem: immutable ? 'missing' : 'stale', detail: `${rel} was built from ${p}, which no longer exists` };
    return immutable
      ? { path: p, problem: 'altered', detail: `${p}: SHA-256 differs from the one ${rel}/manifest.json recorded when it was built from it` }
      : { path: rel, problem: 'stale', detail: `${rel} was built from ${p} as it was then; it has changed since${m.kind !== 'year' ? '' : store.publishedOf(Number(m.id)).length ? ` although ${m.id} was published (${store.publishedOf(Number(m.id)).join(', ')}): a month of a published year must not change — find out how it did (its manifest, the log, state/closed.json)` : `: run "migstat year --year ${m.id}${(m.parameters as { provisional?: unknown } | undefined)?.provisional === true ? ' --provisional' : ''}" again`}` };
  });
}

/** The inputs a manifest names (store paths matching `which`) that no longer exist (gone) or whose SHA-256 has changed since. */
export function changedInputs(store: Store, m: Manifest, which: RegExp): { path: string; gone: boolean }[] {
  const out: { path: string; gone: boolean }[] = [];
  for (const inp of m.inputs ?? []) {
    if (!which.test(inp.path) || inp.path.split('/').includes('..')) continue;
    const f = store.p(...inp.path.split('/'));
    if (!fs.existsSync(f)) out.push({ path: inp.path, gone: true });
    else if (sha256File(f) !== inp.sha256) out.push({ path: inp.path, gone: false });
  }
  return out;
}

/**
 * The record index (state/ids/*.tsv), which the duplicate check of every later extract reads: each file against the
 * SHA-256 its delivery record holds (the record is itself an input of a month manifest), and no file without a
 * delivery record (it would be read as index entries of a delivery that does not exist). Records written before
 * they held the hash (no index_sha256) leave their file unchecked.
 */
function indexProblems(store: Store): { checked: number; problems: AuditProblem[] } {
  const problems: AuditProblem[] = [];
  let checked = 0;
  const named = new Set<string>();
  const recDir = store.p('deliveries');
  for (const f of fs.existsSync(recDir) ? fs.readdirSync(recDir).filter((x) => x.endsWith('.json')).sort() : []) {
    // deliveries/<file month>--<delivery>.json names state/ids/<file month>--<delivery>.tsv
    const rel = posix('state', 'ids', f.replace(/\.json$/, '.tsv'));
    named.add(rel);
    let rec: { index_sha256?: unknown };
    try { rec = JSON.parse(fs.readFileSync(path.join(recDir, f), 'utf8')) as typeof rec; } catch { continue; } // (an unreadable record: the month manifest naming it reports it altered)
    if (typeof rec.index_sha256 !== 'string') continue;
    const file = store.p(...rel.split('/'));
    if (!fs.existsSync(file)) { problems.push({ path: rel, problem: 'missing', detail: `${rel}, the record index of deliveries/${f}, does not exist: later extracts' duplicate checks could not see its forms` }); continue; }
    checked++;
    const h = sha256File(file);
    if (h !== rec.index_sha256) problems.push({ path: rel, problem: 'altered', detail: `${rel}: SHA-256 ${h} differs from the ${rec.index_sha256} of deliveries/${f}: later extracts' duplicate checks read it` });
  }
  const idsDir = store.p('state', 'ids');
  for (const f of fs.existsSync(idsDir) ? fs.readdirSync(idsDir).sort() : []) {
    const rel = posix('state', 'ids', f);
    if (!named.has(rel)) problems.push({ path: rel, problem: 'unexpected', detail: `${rel} belongs to no delivery record${f.startsWith('.') || f.includes('.tmp-') ? ' (named like the temporary file of an interrupted write)' : ''}: the duplicate checks of later extracts would read it; a delivery of a killed run is rolled back by the next migstat month` });
  }
  return { checked, problems };
}

/**
 * state/: deliveries that state/ingested.json does not list (a monthly run stopped before its commit — the next
 * `migstat month` rolls them back — or ingested.json was changed), and published years whose months
 * state/closed.json does not hold closed (a later month run would treat them as open).
 */
function stateProblems(store: Store): AuditProblem[] {
  const problems: AuditProblem[] = [];
  // (a record-index file is named by indexProblems when no delivery record exists, and through its record otherwise)
  for (const f of store.uncommittedFiles().filter((x) => !x.startsWith('state/'))) {
    problems.push({ path: f, problem: 'unexpected', detail: `${f} belongs to a delivery that state/ingested.json does not list as committed: a monthly run stopped before its commit (the next migstat month with its extract rolls it back), or state/ingested.json was changed` });
  }
  const closed = store.closedMonths();
  for (const r of store.releases()) {
    const open = monthsOfYear(r.year).filter((m) => !(m in closed));
    if (open.length) problems.push({ path: 'state/closed.json', problem: 'altered', detail: `state/closed.json does not hold month${open.length > 1 ? 's' : ''} ${open.join(', ')} closed, although release ${r.id} published ${r.year} (publishing closes its twelve months: a release stopped before it did is completed by the next release --due; otherwise state/closed.json was changed)` });
  }
  return problems;
}

/**
 * A results directory (store path `rel`) against its manifest, and the manifest against the log: a manifest a run
 * wrote is one the log recorded (`logged`: logRecords().manifests; a run killed between writing and logging logged
 * it before), so a file changed together with its manifest shows.
 */
function checkLoggedDir(store: Store, rel: string, logged: Map<string, Set<string>>, logRel: string): ReturnType<typeof checkResultsDir> {
  const r = checkResultsDir(store.p(...rel.split('/')), rel);
  const mRel = posix(rel, 'manifest.json');
  const recorded = logged.get(mRel);
  if (r.manifest && recorded !== undefined) {
    const h = sha256File(store.p(...mRel.split('/')));
    if (!recorded.has(h)) r.problems.push({ path: mRel, problem: 'altered', detail: `${mRel}: SHA-256 ${h} is none of those recorded in ${logRel} (${[...recorded].join(', ')}): the manifest was changed after the run` });
  }
  return r;
}

/** `knownHead`: a log head recorded at an earlier audit (outside the store): that line must still be in the log. */
export function audit(store: Store, knownHead?: string): AuditResult {
  const problems: AuditProblem[] = [];
  let checked = 0;
  const logFile = store.logFile();
  const logRel = path.relative(store.root, logFile).split(path.sep).join('/');
  const { manifests, published, done } = logRecords(logFile);
  const hasLog = fs.existsSync(logFile);
  let resultDirs = 0;
  for (const root of RESULT_ROOTS) {
    const base = store.p(root);
    if (!fs.existsSync(base)) continue;
    for (const e of fs.readdirSync(base, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      const rel = posix(root, e.name);
      if (e.name.startsWith('.')) {
        problems.push({ path: rel, problem: 'unexpected', detail: `${rel} is a leftover of an interrupted run (staging or temporary); it is not a result. The next run of the stage that owns it removes it.` });
        continue;
      }
      if (!e.isDirectory()) {
        problems.push({ path: rel, problem: 'unexpected', detail: `${rel} is a stray file in ${root}/ (only result directories belong there)` });
        continue;
      }
      resultDirs++;
      const r = checkLoggedDir(store, rel, manifests, logRel);
      checked += r.checked;
      problems.push(...r.problems);
      const mRel = posix(rel, 'manifest.json');
      const recorded = manifests.get(mRel);
      if (root === 'published' && r.manifest && !published.has(e.name)) {
        problems.push({ path: rel, problem: 'unexpected', detail: `${rel} has no 'published' record in ${logRel}: it was not made by migstat release, or the log has lost lines` });
      } else if (root !== 'published' && r.manifest && hasLog && recorded === undefined) {
        problems.push({ path: rel, problem: 'unexpected', detail: `${rel} has no record in ${logRel}: no logged run wrote it (or the log has lost lines)` });
      }
      // a directory holds the results it says it holds (a month copied under another month's name does not)
      const kinds: Record<string, string> = { months: 'month', years: 'year', published: 'release' };
      if (r.manifest && (r.manifest.kind !== kinds[root] || String(r.manifest.id) !== e.name)) {
        problems.push({ path: mRel, problem: 'altered', detail: `${mRel} describes the ${r.manifest.kind} ${r.manifest.id}, not ${rel}` });
      }
      if (r.manifest) problems.push(...inputProblems(store, rel, r.manifest));
    }
  }
  const idx = indexProblems(store);
  checked += idx.checked;
  problems.push(...idx.problems);
  // results the log says a run finished, gone since
  for (const d of [...done].sort()) {
    if (!fs.existsSync(store.p(...d.split('/')))) problems.push({ path: d, problem: 'missing', detail: `${d} does not exist, but ${logRel} records the run that wrote it (and nothing that removed it)` });
  }
  problems.push(...stateProblems(store));
  if (fs.existsSync(logFile)) {
    const bad = verifyLogChain(logFile);
    for (const n of bad) {
      problems.push({ path: logRel, problem: 'log_chain', detail: `${logRel} line ${n}: its 'prev' hash does not match the line before (a line was edited, inserted or removed)` });
    }
  } else if (resultDirs > 0) {
    problems.push({ path: logRel, problem: 'log_chain', detail: `${logRel} does not exist although the store has ${resultDirs} result director${resultDirs === 1 ? 'y' : 'ies'}` });
  }
  // the chain shows a line edited in the middle; only a head kept elsewhere shows the last line edited, or the whole
  // chain written anew
  let logHead: string | undefined;
  const lines = fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8').split('\n').filter((l) => l) : [];
  if (lines.length) logHead = sha256(lines[lines.length - 1]!);
  if (knownHead !== undefined && !lines.some((l) => sha256(l) === knownHead)) problems.push({ path: logRel, problem: 'log_chain', detail: `${logRel} no longer holds the line whose hash was recorded as its head (${knownHead}): the log was rewritten since` });
  return { ok: problems.length === 0, checked, problems, ...(logHead ? { logHead } : {}) };
}

/** A one-line-per-problem text for the CLI (stderr) and the log. */
export function formatAudit(r: AuditResult): string {
  if (r.ok) return `audit ok: ${r.checked} file(s) verified against their manifests; log chain intact`;
  const lines = [`audit FAILED: ${r.problems.length} problem(s), ${r.checked} file(s) checked`];
  for (const p of r.problems) lines.push(`  ${p.problem.padEnd(11)} ${p.path}: ${p.detail}`);
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------------------
// Lineage

export interface ExplainQuery {
  period: string; // YYYY or YYYY-MM
  level: string; // republic | region | area | municipality
  code: string;
  sex?: 'T' | 'M' | 'F';
  measure: 'immigrants' | 'emigrants';
}
export interface Explanation {
  count: number;
  events: Row[];
  violations: Row[];
  changes: Row[];
  /** extension: the months whose events.csv was read */
  months: string[];
  /** the table the cell is published in, its value there, and whether the events behind it add up to it */
  table: string;
  published: number;
  matches: boolean;
  /** integrity problems of the results directories read (the explanation holds only if there are none) */
  problems: AuditProblem[];
  /** the releases in published/ that hold the cell (an annual cell of a published year), each checked to hold the same value */
  releases?: string[];
  /** corrections of the cell's events received after their month was closed: not applied, as received (delivery records) */
  withheld?: { record_id: string; corrects_month: string; delivery: string; form: Record<string, string> }[];
}

/** What is wrong with a cell to explain (its period, level, sex or measure), or undefined; the CLI's usage check too. */
export function explainQueryProblem(q: { period: string; level: string; sex?: string; measure: string }): string | undefined {
  if (!/^\d{4}(-\d{2})?$/.test(q.period)) return `the period is YYYY or YYYY-MM, not ${q.period}`;
  if (!(LEVELS as readonly string[]).includes(q.level)) return `the level is one of ${LEVELS.join(', ')}, not ${q.level}`;
  if (q.sex !== undefined && !['T', 'M', 'F'].includes(q.sex)) return `the sex is T, M or F, not ${q.sex}`;
  if (q.measure !== 'immigrants' && q.measure !== 'emigrants') return `the measure is immigrants or emigrants (net is their difference: explain each), not ${q.measure}`;
  return undefined;
}

function readRows(file: string): Row[] {
  return fs.existsSync(file) ? readCsvText(fs.readFileSync(file, 'utf8')) : [];
}

/**
 * The events behind one cell of tables/territory.csv of a month or a year, with their rule failures and
 * cell changes. Immigrants are selected by destination (to_municipality), emigrants by origin
 * (from_municipality; an arrival from K&M, origin_km = 1, is nobody's emigrant), rolled up to the level.
 */
export function explain(store: Store, q: ExplainQuery, classification: Classification = loadClassification()): Explanation {
  const sex = q.sex ?? 'T';
  const bad = explainQueryProblem({ ...q, sex });
  if (bad) throw new Error(`explain: ${bad}`);
  // an annual cell: the months the year's results summed (a provisional year: those present when it was built)
  const yearMonths = q.period.length === 4 ? readManifest(path.join(store.yearDir(q.period), 'manifest.json')).manifest?.parameters?.months : undefined;
  const months = q.period.length === 4
    ? store.months().filter((m) => (Array.isArray(yearMonths) ? yearMonths.includes(m) : m.startsWith(`${q.period}-`)))
    : store.months().filter((m) => m === q.period);
  if (months.length === 0) throw new Error(`explain: no monthly results for ${q.period} in ${store.p('months')}`);

  const unitOf = (muni: string): string | undefined => {
    if (!muni || !classification.isMunicipality(muni)) return undefined;
    switch (q.level) {
      case 'municipality': return muni;
      case 'area': return classification.areaOf(muni);
      case 'region': return classification.regionOf(muni);
      default: return 'RS';
    }
  };
  const events: Row[] = [];
  const ids = new Set<string>();
  for (const m of months) {
    const file = path.join(store.monthDir(m), 'events.csv');
    if (!fs.existsSync(file)) throw new Error(`explain: ${file} is missing: the month's audit trail is incomplete`);
    for (const e of readRows(file)) {
      if (sex !== 'T' && e.sex !== (sex === 'M' ? '1' : '2') && e.sex !== sex) continue;
      let muni: string | undefined;
      if (q.measure === 'immigrants') muni = e.to_municipality;
      else if (e.origin_km !== '1' && e.origin_km !== 'true') muni = e.from_municipality;
      if (!muni || unitOf(muni) !== q.code) continue;
      events.push(e);
      ids.add(e.record_id!);
    }
  }
  const violations: Row[] = [];
  const changes: Row[] = [];
  for (const m of months) {
    for (const v of readRows(path.join(store.monthDir(m), 'violations.csv'))) if (ids.has(v.record_id!)) violations.push(v);
    for (const c of readRows(path.join(store.monthDir(m), 'changes.csv'))) if (ids.has(c.record_id!)) changes.push(c);
  }
  // the cell as published in the period's table, and the files read, checked against their manifests first
  const rel = (f: string): string => path.relative(store.root, f).split(path.sep).join('/');
  const dir = q.period.length === 4 ? store.yearDir(q.period) : store.monthDir(q.period);
  const tableFile = path.join(dir, 'tables', 'territory.csv');
  const table = rel(tableFile);
  const row = readRows(tableFile).find((r) => r.level === q.level && r.code === q.code && r.sex === sex);
  if (!row) throw new Error(`explain: ${table} has no row for ${q.level} ${q.code} ${sex}${fs.existsSync(tableFile) ? '' : ' (the file does not exist)'}`);
  const published = Number(row[q.measure]);
  const problems: AuditProblem[] = [];
  // (the manifests against the log too: a file forged together with its manifest shows there)
  const logged = logRecords(store.logFile()).manifests;
  const logRel = rel(store.logFile());
  for (const d of new Set([dir, ...months.map((m) => store.monthDir(m))])) {
    const r = checkLoggedDir(store, rel(d), logged, logRel);
    problems.push(...r.problems);
    // a year built before one of its months changed: its cell and the months' events need not agree (stale, named)
    if (d === dir && r.manifest) problems.push(...inputProblems(store, rel(d), r.manifest));
  }
  // a published year: the cell as released too (a copy in published/<id>/ that must equal the year's)
  const releases = q.period.length === 4 ? store.publishedOf(Number(q.period)) : [];
  for (const id of releases) {
    const pdir = store.publishedDir(id);
    problems.push(...checkLoggedDir(store, rel(pdir), logged, logRel).problems);
    const pfile = path.join(pdir, 'tables', 'territory.csv');
    const prow = fs.existsSync(pfile) ? readRows(pfile).find((r) => r.level === q.level && r.code === q.code && r.sex === sex) : undefined;
    if (!prow || Number(prow[q.measure]) !== published) problems.push({ path: rel(pfile), problem: 'altered', detail: `${rel(pfile)} releases ${prow ? prow[q.measure] : 'no row'} for this cell, ${table} holds ${published}` });
  }
  // corrections of these events that came after their month was closed: kept as received, not applied (ESMS 17.2)
  const withheld: NonNullable<Explanation['withheld']> = [];
  const recDir = store.p('deliveries');
  for (const f of fs.existsSync(recDir) ? fs.readdirSync(recDir).filter((x) => x.endsWith('.json')).sort() : []) {
    let rec: { delivery?: string; corrections_withheld?: { record_id: string; corrects_month: string; form: Record<string, string> }[] };
    try { rec = JSON.parse(fs.readFileSync(path.join(recDir, f), 'utf8')) as typeof rec; } catch { continue; } // (audit names an unreadable record)
    for (const w of rec.corrections_withheld ?? []) if (ids.has(w.record_id) && months.includes(w.corrects_month)) withheld.push({ record_id: w.record_id, corrects_month: w.corrects_month, delivery: rec.delivery ?? f, form: w.form });
  }
  return { count: events.length, events, violations, changes, months, table, published, matches: published === events.length, problems, ...(releases.length ? { releases } : {}), ...(withheld.length ? { withheld } : {}) };
}
