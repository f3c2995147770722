/**
 * `migstat month`: ingest one extract into the store and run every monthly stage on the months it touches.
 *
 *   extract ──ingest──▶ forms (pseudonymised) ──deliver──▶ forms/<ref-month>/  (dedupe, systemic fix, attribution)
 *   forms/<month>/* ──processMonth──▶ events ──tabulate──▶ tables ──checks──▶ months/<month>/ (atomic, with manifest)
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { hash } from 'node:crypto';
import { addMonths, ageGroup, isMonth, RESEND_WINDOW_MONTHS, MONTH_FILE_HEADERS, TABLE_HEADERS, IMPUTED_HEADERS, type Quality, type Manifest } from './contracts';
import { ByteWriter } from './bytes';
import { CsvWriter, objectsToCsvBytes, objectsToCsvWriter, toCsvBytes } from './csv';
import { readJson, recoverDir, replaceDirAtomic, sha256, writeFileAtomic, writeFileDurable, writeJsonAtomic } from './fsutil';
import type { RunLog, StageEvent } from './log';
import { Store, withLock } from './store';
import { codeVersion, loadConfig, type Loaded } from './config';
import { decodeExtract, fileMonthOf, FORM_COLUMNS, InputError, parseExtract, toForms, contentDigests, ContentKeys, type Columns, type QuarantineRow } from '../stages/ingest';
import { deliver, take, type ChangeRow, type DeliveryResult, type Disposition } from '../stages/deliver';
import { pseudonymKey, Pseudonymiser } from '../stages/jmbg';
import { DONOR_VARIABLES, flagNames, processMonth, PROVENANCE, stopwatch, type Event } from '../stages/month';
import { activityGroup, checkTables, moveType, tabulate, type Tables } from '../stages/tabulate';
import { type Classification, loadClassification, seriesOf } from '../stages/territory';

export interface MonthOptions { data: string; input: string; month?: string; encoding?: 'utf-8' | 'windows-1250'; settlements?: string; log: RunLog; dedupeLookbackMonths?: number; allowOtherMonths?: boolean }
/**
 * rolledBack: the months an interrupted earlier run touched, which this run rolled back and built again, except
 * `removed`: those whose results were that run's alone, now gone; interrupted: that run's extracts (by name)
 */
export interface MonthRunResult {
  status: 'processed' | 'unchanged'; fileMonth: string; months: string[]; quality: Record<string, Quality>; rolledBack: string[]; removed: string[]; interrupted: string[];
  /** what the delivery of the extract did (a processed run): the counts a statistician checks first, and the systemic corrections */
  delivery?: Pick<DeliveryRecord, 'forms_read' | 'accepted' | 'duplicates' | 'quarantined' | 'corrections_to_closed' | 'carried_forward' | 'systemic'>;
}

export interface DeliveryRecord {
  delivery: string; file: string; sha256: string; file_month: string; seq: number; encoding: string;
  forms_read: number; accepted: number; duplicates: number; corrections_to_closed: number; quarantined: number; carried_forward: number;
  by_month: Record<string, number>;
  /** SHA-256 of every configuration file in force when the extract was delivered (its systemic corrections) */
  config: Record<string, string>;
  quarantine: { file: string; line: number; record_id: string; field: string; reason: string; detail: string }[];
  dispositions: Disposition[]; changes: ChangeRow[]; systemic: Quality['systemic'];
  /** the corrections to closed months, as received (not applied): see DeliveryResult.withheld */
  corrections_withheld: DeliveryResult['withheld'];
  /**
   * SHA-256 of the delivery's record-index file (state/ids/<file_month>--<delivery>.tsv): later extracts' duplicate
   * checks read that file, and `audit` re-hashes it against this record (which a month manifest names as an input)
   */
  index_sha256: string;
  /** present when the extract was taken with --allow-other-months (its forms may be mostly of other months) */
  allow_other_months?: true;
}

/** The record index stores this hash of a form's content (contentKey), never the content itself. */
// (hash imported by name: crypto.hash through the namespace import is a getter call per form)
const contentHash = (content: string | Uint8Array): string => hash('sha1', content, 'hex') as string;

export function runMonth(opts: MonthOptions): MonthRunResult {
  const store = new Store(opts.data);
  return withLock(store, `month ${path.basename(opts.input)}`, () => {
    for (const a of recoverDir(store.root)) opts.log.log({ stage: 'recover', event: 'cleanup', action: a }, 'warn');
    const L = loadConfig();
    const C = loadClassification(opts.settlements);
    const name = path.basename(opts.input);
    if (!fs.existsSync(opts.input)) throw new InputError(name, undefined, undefined, 'file not found');
    if (!fs.statSync(opts.input).isFile()) throw new InputError(name, undefined, undefined, 'not a file (a directory?): give the path of the extract');
    const named = fileMonthOf(opts.input);
    const fileMonth = opts.month ?? named;
    if (!fileMonth || !isMonth(fileMonth)) throw new InputError(name, undefined, undefined, 'cannot tell the month from the file name (moi_YYYY_MM.csv): give --month YYYY-MM');
    // --month is for a file whose name does not say its month: one that says another would be delivered to the wrong month
    if (named && named !== fileMonth) throw new InputError(name, undefined, undefined, `the file name says ${named}, --month says ${fileMonth}: leave out --month, or rename the file if the name is wrong`);
    const bytes = fs.readFileSync(opts.input);
    const digest = sha256(bytes);
    const ingestedFile = store.p('state', 'ingested.json');
    const ingested: Record<string, { file: string; month: string; delivery: string }> = fs.existsSync(ingestedFile) ? readJson(ingestedFile) : {};
    // a run killed before its commit point (ingested.json, written last) is rolled back, and the months it touched rebuilt
    // a first month set by a run that never committed (none did) is forgotten with it
    if (!Object.keys(ingested).length) fs.rmSync(store.p('state', 'first-month.json'), { force: true });
    // (the extracts of an interrupted run, named by their delivery records, before the rollback removes them)
    const interrupted = store.interruptedExtracts();
    // an extract the store cannot take is refused before anything is rolled back (the interrupted run stays as it is,
    // named by the refusals of close, year and release, until a month run that can go on recovers it)
    if (!ingested[digest]) {
      const firstMonth = store.firstMonth();
      if (firstMonth && fileMonth < firstMonth) throw new Error(`month ${fileMonth} is before this store's first month ${firstMonth}: the store counts earlier months as published before it existed, so it takes no extract for them (late forms for them are carried forward); to process earlier months, rebuild the history into a new store (migstat rebuild)`);
      if (store.isClosed(fileMonth)) {
        const pub = store.publishedOf(Number(fileMonth.slice(0, 4)));
        throw new Error(`month ${fileMonth} is closed (its results are final${pub.length ? `, published in ${pub.join(', ')}` : ''}), so an extract for it is refused. Its forms that come in a later month's extract are carried forward to the first open month if new (quarantined if recorded more than ${RESEND_WINDOW_MONTHS} months before that extract), skipped if identical to forms already counted, and withheld if they correct them (recorded in that extract's delivery)`);
      }
    }
    const rolledBack = store.rollbackUncommitted(new Set(Object.values(ingested).map((x) => x.delivery))).filter((m) => !store.isClosed(m));
    if (rolledBack.length) opts.log.log({ stage: 'recover', event: 'rolled_back', months: rolledBack }, 'warn');
    const removed: string[] = [];
    if (ingested[digest]) {
      opts.log.log({ stage: 'ingest', event: 'unchanged', file: name, sha256: digest, reason: `already ingested as ${ingested[digest]!.delivery}` });
      for (const m of rolledBack) if (rebuildRolledBack(store, m, L, C, opts.log) === 'removed') removed.push(m);
      store.rebuilt();
      return { status: 'unchanged', fileMonth, months: [], quality: {}, rolledBack, removed, interrupted };
    }
    const ing = ingestExtract({ bytes, name, digest, input: opts.input, fileMonth, encoding: opts.encoding ?? 'utf-8', log: opts.log });
    // the index keeps a hash of each form's content; deliver compares hashes
    const windowMonths = opts.dedupeLookbackMonths ?? RESEND_WINDOW_MONTHS;
    const prior = loadPriorIndex(store, fileMonth, windowMonths, new Set(ing.forms.record_id));
    // read the closed months once: the lock keeps them fixed for this run (deliver asks per form).
    // Months before the store's first month (this one, on a fresh store) were published before the store existed.
    const first = store.firstMonth() ?? fileMonth;
    const final = store.finalMonths(); // (a month of a published year is final even if state/closed.json has lost it)
    const closed = (m: string): boolean => final(m) || m < first;
    const d = deliverExtract(ing, { L, C, prior: (id) => prior.get(id), closed, windowMonths, allowOtherMonths: opts.allowOtherMonths, seq: Object.keys(ingested).length + 1, log: opts.log });
    const fresh = writeDelivery(store, d);
    const months = d.months.filter((m) => !closed(m));
    const quality: Record<string, Quality> = {};
    for (const m of months) quality[m] = buildMonth(store, m, L, C, opts.log, fresh);
    // (rolledBack holds only months open before this run; one before a first month set by this very run was the
    // killed first run's: its results go, as they were that run's alone)
    for (const m of rolledBack) if (!months.includes(m) && rebuildRolledBack(store, m, L, C, opts.log) === 'removed') removed.push(m);
    // the commit point: until ingested.json lists the delivery, a rerun rolls it back and does it again
    if (!store.firstMonth()) store.setFirstMonth(fileMonth);
    ingested[digest] = { file: name, month: fileMonth, delivery: d.rec.delivery };
    writeJsonAtomic(ingestedFile, ingested);
    store.rebuilt();
    const { forms_read, accepted, duplicates, quarantined, corrections_to_closed, carried_forward, systemic } = d.rec;
    return { status: 'processed', fileMonth, months, quality, rolledBack, removed, interrupted, delivery: { forms_read, accepted, duplicates, quarantined, corrections_to_closed, carried_forward, systemic } };
  });
}

/**
 * A month a rolled-back delivery touched: built again from what is committed, or, when nothing committed is left
 * for it (no forms, no delivery of its own), its results are removed: they were the rolled-back delivery's alone.
 */
function rebuildRolledBack(store: Store, m: string, L: Loaded, C: Classification, log: StageLog): 'rebuilt' | 'removed' {
  const forms = store.formsDir(m);
  const deliveries = store.p('deliveries');
  if ((fs.existsSync(forms) && fs.readdirSync(forms).some((f) => f.endsWith('.json'))) || (fs.existsSync(deliveries) && fs.readdirSync(deliveries).some((f) => f.startsWith(`${m}--`)))) {
    buildMonth(store, m, L, C, log);
    return 'rebuilt';
  }
  // logged first (audit expects a month whose run the log records to exist unless a later line removed it): a run
  // killed after this line and before the rename leaves the month listed in state/rebuild.json, and the next run
  // removes it; one killed after the rename finds it gone and logs the removal again
  log.log({ stage: 'recover', event: 'removed_month', month: m, reason: 'its results were those of a rolled-back delivery only' }, 'warn');
  const dir = store.monthDir(m);
  if (!fs.existsSync(dir)) return 'removed';
  // out of sight in one rename (a staging name: a recovery removes it if this run dies before the rm)
  const aside = path.join(path.dirname(dir), `.${m}.staging-${process.pid}`);
  fs.rmSync(aside, { recursive: true, force: true });
  fs.renameSync(dir, aside);
  fs.rmSync(aside, { recursive: true, force: true });
  return 'removed';
}

/** A stage log: the run's RunLog, or (in a rebuild worker) a proxy that hands lines to the main thread. */
export interface StageLog { log(e: StageEvent, level?: 'info' | 'warn' | 'error'): void }

export interface Ingested {
  name: string; digest: string; fileMonth: string; encoding: string; formsRead: number; forms: Columns; quarantine: QuarantineRow[];
  /** contentHash(contentKey(forms, i)) of every form, for the record index */
  contentHashes: string[];
}

/**
 * Ingest: decode, parse, check every row against the record schema, pseudonymise the JMBG. `formsKnown` is called as
 * soon as the forms (their record ids) are known, before their content hashes are computed: a rebuild worker asks
 * then for its extract's record-index lines, and the answer travels while it hashes (~18 ms an extract).
 */
export function ingestExtract(o: { bytes: Buffer; name: string; digest: string; input: string; fileMonth: string; encoding: 'utf-8' | 'windows-1250'; log: StageLog; formsKnown?: (forms: Columns, formsRead: number) => void }): Ingested {
  const key = pseudonymKey();
  o.log.log({ stage: 'ingest', event: 'start', file: o.name, sha256: o.digest, file_month: o.fileMonth, pseudonym_key: key.source, key_fingerprint: key.fingerprint, ...(key.source === 'demo' ? { warning: 'using the fixed DEMO pseudonymisation key: set MIGSTAT_PSEUDONYM_KEY or MIGSTAT_PSEUDONYM_KEY_FILE in production' } : {}) }, key.source === 'demo' ? 'warn' : 'info');
  const t0 = Date.now();
  const text = decodeExtract(o.bytes, o.input, o.encoding);
  const parsed = parseExtract(text, o.input);
  const { forms, quarantine, spans } = toForms(parsed, o.fileMonth, new Pseudonymiser(key.key));
  o.formsKnown?.(forms, parsed.formsRead);
  // The record index's content hashes, computed here rather than at delivery (about the same CPU, ~12 ms an
  // extract): in a rebuild the delivery of extract k is on the ordered path (extract k + 1 waits for its index
  // lines), ingest is not.
  const contentHashes = contentDigests(forms, contentHash, spans);
  o.log.log({ stage: 'ingest', event: 'done', file: o.name, forms_read: parsed.formsRead, schema_ok: forms.record_id!.length, quarantined: quarantine.length, duration_ms: Date.now() - t0 });
  return { name: o.name, digest: o.digest, fileMonth: o.fileMonth, encoding: o.encoding, formsRead: parsed.formsRead, forms, quarantine, contentHashes };
}

export interface Delivered {
  rec: DeliveryRecord;
  /** accepted forms by reference month */
  parts: Map<string, Columns>;
  /**
   * the record-index lines (record id TAB reference month TAB hash of content) as one text, as state/ids/*.tsv holds
   * them (each line ends in \n): one string is far cheaper than 21 000 to post to the main thread
   */
  idsText: string;
  /** the months this delivery touches (its own month and the months it attributed forms to), sorted */
  months: string[];
}

/**
 * Deliver: duplicates against the record index, systemic corrections, attribution; checks the row-count identity.
 * Takes over ing.forms: its columns become the accepted forms' (compacted in place), do not read them afterwards.
 */
export function deliverExtract(ing: Ingested, o: { L: Loaded; C: Classification; prior: (id: string) => PriorEntry | undefined; closed: (m: string) => boolean; windowMonths?: number; allowOtherMonths?: boolean; seq: number; log: StageLog }): Delivered {
  const t1 = Date.now();
  const dr = deliver({ forms: ing.forms, quarantine: ing.quarantine, fileMonth: ing.fileMonth }, { prior: o.prior, contentHash, isClosed: o.closed, windowMonths: o.windowMonths, allowOtherMonths: o.allowOtherMonths, rules: o.L.rules, corrections: o.L.corrections, classification: o.C, systemic: o.L.config.systemic, consume: true });
  const delivery = `${String(o.seq).padStart(4, '0')}-${ing.name.replace(/\.csv$/i, '')}-${ing.digest.slice(0, 8)}`;
  const refMonth = dr.forms.ref_month!;
  const n = refMonth.length;
  const parts = new Map<string, Columns>();
  if (n > 0 && allSame(refMonth)) parts.set(refMonth[0]!, { ...dr.forms }); // one month (the usual case): the columns as they are
  else for (const [m, idx] of Object.entries(indicesByValue(refMonth))) parts.set(m, take(dr.forms, idx));
  const idsText = indexText(dr, ing.contentHashes);
  const rec: DeliveryRecord = {
    delivery, file: ing.name, sha256: ing.digest, file_month: ing.fileMonth, seq: o.seq, encoding: ing.encoding, forms_read: ing.formsRead,
    accepted: dr.counts.accepted, duplicates: dr.counts.duplicates, corrections_to_closed: dr.counts.corrections_to_closed, quarantined: dr.quarantine.length,
    carried_forward: dr.counts.carried_forward, by_month: Object.fromEntries([...parts].map(([m, part]) => [m, part.record_id!.length])), config: o.L.digests,
    quarantine: dr.quarantine, dispositions: dr.dispositions, changes: dr.changes, systemic: dr.systemic, corrections_withheld: dr.withheld, index_sha256: '', // (set by writeDelivery, which encodes the index text once to hash and write it)
    ...(dr.otherMonths ? { allow_other_months: true as const } : {}),
  };
  const identity = rec.forms_read === rec.accepted + rec.quarantined + rec.duplicates + rec.corrections_to_closed;
  o.log.log({ stage: 'deliver', event: 'done', delivery, forms_read: rec.forms_read, accepted: rec.accepted, quarantined: rec.quarantined, duplicates: rec.duplicates, corrections_to_closed: rec.corrections_to_closed, carried_forward: rec.carried_forward, by_month: rec.by_month, systemic: dr.systemic.length, identity_holds: identity, duration_ms: Date.now() - t1 }, identity ? 'info' : 'error');
  if (!identity) throw new Error(`row-count identity broken for ${ing.name}: read ${rec.forms_read} ≠ accepted ${rec.accepted} + quarantined ${rec.quarantined} + duplicates ${rec.duplicates} + corrections to closed months ${rec.corrections_to_closed}`);
  for (const s of dr.systemic) o.log.log({ stage: 'systemic', event: 'escalated', rule: s.rule, office: s.office, share: s.share, items: s.items, action: s.action }, 'warn');
  return { rec, parts, idsText, months: [...new Set([ing.fileMonth, ...parts.keys()])].sort() };
}

// The loops over an extract's forms are small functions of their own, not inside deliverExtract: a loop there made V8
// compile the whole of deliverExtract (and what it inlines) on the stack again each time a cold part of it met a new shape.

/** Every value of v is v[0]. */
function allSame(v: readonly string[]): boolean {
  for (let i = 1; i < v.length; i++) if (v[i] !== v[0]) return false;
  return true;
}

/** The indices of each value of v, in order. */
function indicesByValue(v: readonly string[]): Record<string, number[]> {
  const by: Record<string, number[]> = {};
  for (let i = 0; i < v.length; i++) (by[v[i]!] ??= []).push(i);
  return by;
}

/**
 * The record-index text of the accepted forms: a line each (record id TAB reference month TAB content hash, then a
 * line end), with the hash from ingest, unless a systemic correction changed the form since; a single line end when
 * there are none. Built by concatenation and flattened once (reading a character does it): ~2 ms an extract less
 * than joining each line and then the lines (21 000 intermediate strings), on the rebuild's ordered path.
 */
function indexText(dr: DeliveryResult, contentHashes: readonly string[]): string {
  const recordId = dr.forms.record_id!, refMonth = dr.forms.ref_month!;
  const n = recordId.length;
  if (n === 0) return '\n';
  const contentKey = new ContentKeys(dr.forms);
  let text = '';
  for (let i = 0; i < n; i++) {
    const hash = dr.corrected.has(i) ? contentHash(contentKey.of(i)) : contentHashes[dr.source[i]!]!;
    text += recordId[i] + '\t' + refMonth[i] + '\t' + hash + '\n';
  }
  text.charCodeAt(0); // flattened here, once
  return text;
}

/** Write what a delivery gave to the store: the forms by reference month, the record index, the delivery record. */
export function writeDelivery(store: Store, d: Delivered): FreshParts {
  const { delivery, file_month: fileMonth } = d.rec;
  const fresh: FreshParts = new Map();
  for (const [m, part] of d.parts) {
    // encoded once: the same bytes are hashed and written
    const bytes = formsJsonBytes(part);
    writeFileAtomic(store.p('forms', m, `${delivery}.json`), bytes, { defer: true });
    fresh.set(`${m}/${delivery}.json`, { cols: part, sha256: sha256(bytes) });
  }
  const ids = Buffer.from(d.idsText, 'utf8');
  d.rec.index_sha256 = sha256(ids);
  writeFileAtomic(store.p('state', 'ids', `${fileMonth}--${delivery}.tsv`), ids, { defer: true });
  writeJsonAtomic(store.p('deliveries', `${fileMonth}--${delivery}.json`), d.rec);
  return fresh;
}

/**
 * The UTF-8 bytes of JSON.stringify(part), ~6× faster, written column by column into one buffer (no 4.5 MB string
 * to build and encode again): a column of one value throughout (the file name, the file's month) is that value's
 * JSON repeated; any other is written string by string, each ASCII string with nothing to escape (nearly all)
 * copied byte by byte in a loop, any other as JSON.stringify writes it. Against V8's join of each column: 2.5× faster
 * on strings fresh from JSON.parse, ~1.6× on an extract's own columns, ~1.3× inside a rebuild (CPU profiles: the
 * strings of a large heap are scattered).
 */
export function formsJsonBytes(part: Columns): Buffer {
  const rows = part.record_id?.length ?? 0;
  const w = new JsonColumnWriter(256 + rows * 256);
  let first = true;
  w.char(123); // {
  for (const [k, v] of Object.entries(part)) {
    if (!first) w.char(44); // ,
    first = false;
    w.text(`${JSON.stringify(k)}:`);
    if (v.length > 1 && typeof v[0] === 'string' && allSame(v)) { const one = JSON.stringify(v[0]); w.char(91); w.text(`${one},`.repeat(v.length - 1)); w.text(one); w.char(93); }
    else w.strings(v);
  }
  w.char(125); // }
  return w.result();
}

/** A ByteWriter that writes an array of strings as JSON. */
class JsonColumnWriter extends ByteWriter {
  /** JSON.stringify(v) as UTF-8 (v: strings, as a forms column holds) */
  strings(v: readonly string[]): void {
    this.char(91); // [
    this.items(v);
    this.char(93); // ]
  }

  /** the items of strings(v), alone in a function (see LOOP_TAIL in pipeline/memo.ts) */
  private items(v: readonly string[]): void {
    for (let i = 0; i < v.length; i++) {
      if (i > 0) this.char(44); // ,
      const s = v[i]!;
      if (typeof s !== 'string' || !this.plain(s)) this.text(JSON.stringify(s) ?? 'null');
    }
  }

  /** s in quotes when every character is printable ASCII other than " and \; false (nothing written) otherwise */
  private plain(s: string): boolean {
    const len = s.length;
    this.room(len + 2);
    const b = this.buf;
    let p = this.n;
    b[p++] = 34;
    for (let i = 0; i < len; i++) {
      const c = s.charCodeAt(i);
      if (c < 32 || c > 126 || c === 34 || c === 92) return false;
      b[p++] = c;
    }
    b[p++] = 34;
    this.n = p;
    return true;
  }
}

/** Form partitions just written by this run ("<month>/<file>"), so building the month need not read them back. */
export type FreshParts = Map<string, { cols: Columns; sha256: string }>;

/**
 * What the record index knows of a record id: every version of it delivered in the window (the reference month it
 * went to and the hash of its content), oldest first, and the month of the newest. A form identical to any of them
 * is a duplicate (moi-input.md): an old version re-sent after its correction must not undo the correction.
 */
export interface PriorEntry { month: string; versions: { month: string; content: string }[] }

/** Read one record-index line (record id TAB month TAB hash) into the map: one more version of its id. */
export function setIndexLine(into: Map<string, PriorEntry>, line: string): void {
  const [id, month, content] = line.split('\t');
  const v = { month: month!, content: content! };
  const e = into.get(id!);
  if (e) { e.month = v.month; e.versions.push(v); } else into.set(id!, { month: v.month, versions: [v] });
}

/** The record-index entries of the last `lookback` months for the ids of this extract only: memory stays flat however long the history. */
export function loadPriorIndex(store: Store, fileMonth: string, lookback: number, wanted: Set<string>): Map<string, PriorEntry> {
  const dir = store.p('state', 'ids');
  const out = new Map<string, PriorEntry>();
  if (!fs.existsSync(dir)) return out;
  const from = addMonths(fileMonth, -lookback);
  for (const f of fs.readdirSync(dir).sort()) {
    const fm = f.slice(0, 7);
    // (not a temporary file a killed write left: the month's recovery removes those, and audit names them)
    if (fm < from || fm > fileMonth || !f.endsWith('.tsv')) continue;
    const text = fs.readFileSync(path.join(dir, f), 'utf8');
    for (let a = 0; a < text.length; ) {
      let b = text.indexOf('\n', a);
      if (b < 0) b = text.length;
      const t1 = text.indexOf('\t', a);
      if (t1 > a && t1 < b && wanted.has(text.slice(a, t1))) setIndexLine(out, text.slice(a, b));
      a = b + 1;
    }
  }
  return out;
}

/** Rebuild months/<month>/ from all forms attributed to it. */
export function buildMonth(store: Store, month: string, L: Loaded, C: Classification, log: StageLog, fresh?: FreshParts): Quality {
  const t0 = Date.now();
  const { timings, lap } = stopwatch();
  const partDir = store.formsDir(month);
  const parts = fs.existsSync(partDir) ? fs.readdirSync(partDir).filter((f) => f.endsWith('.json')).sort() : [];
  const forms: Columns = {};
  const partSha: string[] = [];
  for (const p of parts) {
    const f = fresh?.get(`${month}/${p}`);
    let c: Columns;
    if (f) { c = f.cols; partSha.push(f.sha256); }
    else { const text = fs.readFileSync(path.join(partDir, p), 'utf8'); c = JSON.parse(text) as Columns; partSha.push(sha256(text)); }
    if (parts.length === 1) Object.assign(forms, c); // no copy: processMonth takes these columns over (consume below)
    else for (const [k, v] of Object.entries(c)) appendAll((forms[k] ??= []), v);
  }
  // no forms at all (every form of its extract a duplicate or quarantined): every column, empty, so that the rules
  // still find the variables they read (a month with no forms crashed as if a scope rule were broken)
  if (!forms.record_id) for (const k of [...FORM_COLUMNS, 'ref_month', 'carried_forward']) forms[k] = [];
  const year = +month.slice(0, 4);
  const formsIn = forms.file!.length;
  lap('read');
  // consumed: these columns are this month's alone (read from its partitions, or handed over fresh for it only)
  const out = processMonth(forms, { month, classification: C, rules: L.rules, scopeRules: L.scopeRules, imputation: L.imputation, seed: L.config.seed, linkageWindowDays: L.config.linkage.window_days, consume: true });
  Object.assign(timings, out.timings);
  for (const r of out.ruleResults) if (r.summary.error !== undefined) log.log({ stage: 'rules', event: 'rule_error', month, rule: r.rule.id, error: r.summary.error, effect: 'the rule is not applied this month (all its items not applicable): correct it in the rule file' }, 'error');
  lap('process');
  const { tables, imputed } = tabulate(out.events, C, year);
  const checks = checkTables(tables, C, year);
  lap('tabulate');
  // the deliveries of this month's extract(s)
  const ownFiles = fs.existsSync(store.p('deliveries')) ? fs.readdirSync(store.p('deliveries')).filter((f) => f.startsWith(`${month}--`)).sort() : [];
  const ownText = ownFiles.map((f) => fs.readFileSync(store.p('deliveries', f), 'utf8'));
  const own: DeliveryRecord[] = ownText.map((t) => JSON.parse(t) as DeliveryRecord);
  const sum = (k: keyof DeliveryRecord): number => own.reduce((a, d) => a + (d[k] as number), 0);
  const attributedElsewhere = own.reduce((a, d) => a + Object.entries(d.by_month).filter(([m]) => m !== month).reduce((x, [, v]) => x + v, 0), 0);
  const fromOther = formsIn - own.reduce((a, d) => a + (d.by_month[month] ?? 0), 0);
  const quarantine = [...own.flatMap((d) => d.quarantine), ...out.quarantine];
  const outOfScope = Object.fromEntries(Object.entries(out.counts.out_of_scope).sort());
  const oos = Object.values(outOfScope).reduce((a, b) => a + b, 0);
  const rhs = { events: out.events.length, linked_departures: out.counts.linked, unmatched_departures: out.counts.unmatched, out_of_scope: oos, quarantined: quarantine.length, duplicates: sum('duplicates'), replaced_versions: out.counts.replaced, corrections_to_closed: sum('corrections_to_closed'), attributed_to_other_months: attributedElsewhere, received_from_other_extracts: -fromOther };
  const formsRead = sum('forms_read');
  const holds = formsRead === Object.values(rhs).reduce((a, b) => a + b, 0);
  const { delays, delayed } = delayCounts(out.events);
  const provenance = provenanceCounts(out.events);
  const rules: Quality['rules'] = {};
  for (const r of [...out.ruleResults, ...out.scopeResults]) rules[r.rule.id] = r.summary;
  const quality: Quality = {
    period: month, series: seriesOf(year), forms_read: formsRead, duplicates: sum('duplicates'), quarantined: quarantine.length,
    quarantine_reasons: sortObj(quarantine.reduce<Record<string, number>>((a, q) => { a[q.reason] = (a[q.reason] ?? 0) + 1; return a; }, {})), out_of_scope: outOfScope,
    events: out.events.length, delayed_events: delayed, carried_forward: out.counts.carried_forward,
    unmatched_departures: out.counts.unmatched, imputed: sortObj(out.imputed), rules, linked_departures: out.counts.linked, replaced_versions: out.counts.replaced,
    corrections_to_closed: sum('corrections_to_closed'), recoded_territory: out.counts.recoded, delay_distribution: sortObj(delays),
    imputation_by_method: sortObj(out.imputedByMethod), systemic: own.flatMap((d) => d.systemic), identity: { holds, lhs: formsRead, rhs }, checks, provenance: sortObj(provenance),
  };
  const changes = objectsToCsvWriter(MONTH_FILE_HEADERS.changes, own.flatMap((d) => d.changes) as never);
  changes.append(out.changes);
  // the deliveries' dispositions, their quarantined forms, then the month's own (written by processMonth as CSV lines)
  const dispositions = objectsToCsvWriter(MONTH_FILE_HEADERS.dispositions, own.flatMap((d) => d.dispositions) as never);
  for (const d of own) for (const q of d.quarantine) dispositions.cell(q.file).cell(String(q.line)).cell(q.record_id).cell('').cell('quarantined').cell(q.reason).end();
  dispositions.append(out.dispositions);
  lap('quality');
  const files = monthFiles(tables, imputed, quality, out.events, C, month, changes, out.violations, [...out.ruleResults, ...out.scopeResults].map((r) => ({ ...r.summary, rule_id: r.rule.id, severity: r.rule.severity, error: r.summary.error ?? '', expression: r.rule.condition, description: r.rule.description })), quarantine, dispositions);
  lap('files');
  const manifestSha = writeResultsDir(store.monthDir(month), files, {
    kind: 'month', id: month, code_version: codeVersion(),
    parameters: { config: L.digests, settlements: path.basename(C.settlementsFile), settlements_sha256: settlementsSha(C), seed: L.config.seed },
    // the forms, and the records of this month's deliveries (their dispositions, changes and quarantine are in the
    // month's files; each names the configuration it was delivered with)
    inputs: [...parts.map((p, i) => ({ path: `forms/${month}/${p}`, sha256: partSha[i]! })), ...ownFiles.map((f, i) => ({ path: `deliveries/${f}`, sha256: sha256(ownText[i]!) }))],
    counts: { forms: formsIn, events: out.events.length, quarantined: quarantine.length },
  }, (h) => log.log({ stage: 'month', event: 'writing', month, manifest_path: `months/${month}/manifest.json`, manifest_sha256: h }));
  lap('write');
  const failed = checks.filter((c) => !c.ok);
  log.log({ stage: 'month', event: 'done', manifest_path: `months/${month}/manifest.json`, manifest_sha256: manifestSha, timings_ms: timings, month, forms_in: formsIn, events: out.events.length, linked: out.counts.linked, unmatched: out.counts.unmatched, out_of_scope: outOfScope, quarantined: quarantine.length, imputed: out.imputed, rules_failed: Object.fromEntries(Object.entries(rules).filter(([, r]) => r.fails > 0).map(([k, r]) => [k, r.fails])), identity_holds: holds, checks_failed: failed.map((c) => c.id), duration_ms: Date.now() - t0 }, holds && !failed.length ? 'info' : 'error');
  if (!holds) throw new Error(`row-count identity broken for month ${month}: ${JSON.stringify(quality.identity)}`);
  if (failed.length) throw new Error(`consistency checks failed for month ${month}: ${failed.map((c) => `${c.id} (${c.detail})`).join('; ')}`);
  return quality;
}

/** a.push(...v) without a spread of up to ~20 000 arguments */
function appendAll(a: string[], v: readonly string[]): void {
  for (const x of v) a.push(x);
}

/**
 * The delay distribution of a month's events and how many were delayed. The loops over the events are small functions
 * of their own, not inside buildMonth: a loop there made V8 compile the whole of buildMonth on the stack (OSR) again
 * and again, as its cold parts met new shapes. (Loops, not filter/map callbacks: a callback made per call is compiled
 * again every month.)
 */
function delayCounts(events: readonly Event[]): { delays: Record<string, number>; delayed: number } {
  const out = { delays: {} as Record<string, number>, delayed: 0 }; // (before the loop: LOOP_TAIL in pipeline/memo.ts)
  const delays = out.delays;
  for (const e of events) { const k = e.delay === null ? 'unknown' : String(e.delay); delays[k] = (delays[k] ?? 0) + 1; if (e.delay !== null && e.delay >= 1) out.delayed++; }
  return out;
}

/** How many of a month's events carry each provenance flag. */
function provenanceCounts(events: readonly Event[]): Record<string, number> {
  const provenance: Record<string, number> = {};
  const byFlag = flagCounts(events);
  PROVENANCE.forEach((p, b) => { if (byFlag[b]) provenance[p] = byFlag[b]!; });
  return provenance;
}
function flagCounts(events: readonly Event[]): number[] {
  const byFlag = new Array<number>(PROVENANCE.length).fill(0);
  for (const e of events) for (let b = 0; b < PROVENANCE.length; b++) if (e.provenance & (1 << b)) byFlag[b]!++;
  return byFlag; // (nothing else after the loop: see LOOP_TAIL in pipeline/memo.ts)
}

/**
 * The hash of a classification's settlements file, read once per classification (not once per month): a
 * Classification loaded the file once too, so the hash names what the months were built with.
 */
const settlementsShas = new WeakMap<Classification, string>();
function settlementsSha(C: Classification): string {
  let h = settlementsShas.get(C);
  if (h === undefined) settlementsShas.set(C, (h = sha256(fs.readFileSync(C.settlementsFile))));
  return h;
}

function sortObj<T>(o: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** The table files (CSV as UTF-8 bytes: written straight to bytes, see CsvWriter). */
export function tableFiles(tables: Tables, imputed: Tables): Map<string, string | Buffer> {
  const files = new Map<string, string | Buffer>();
  for (const [name, rows] of Object.entries(tables)) files.set(`tables/${name}.csv`, toCsvBytes(TABLE_HEADERS[name as keyof typeof TABLE_HEADERS], rows));
  for (const [name, rows] of Object.entries(imputed)) files.set(`tables/${name}.csv`, toCsvBytes(IMPUTED_HEADERS[name as keyof typeof IMPUTED_HEADERS], rows));
  return files;
}

function monthFiles(tables: Tables, imputed: Tables, quality: Quality, events: Event[], C: Classification, month: string, changes: CsvWriter, violations: CsvWriter, rules: object[], quarantine: object[], dispositions: CsvWriter): Map<string, string | Buffer> {
  const files = tableFiles(tables, imputed);
  files.set('quality.json', JSON.stringify(quality, null, 2) + '\n');
  files.set('events.csv', eventsCsv(events, C, month));
  files.set('changes.csv', changes.result());
  const v = new CsvWriter(MONTH_FILE_HEADERS.violations);
  v.append(violations);
  files.set('violations.csv', v.result());
  files.set('rules.csv', objectsToCsvBytes(MONTH_FILE_HEADERS.rules, rules as never));
  files.set('quarantine.csv', objectsToCsvBytes(MONTH_FILE_HEADERS.quarantine, quarantine as never));
  files.set('dispositions.csv', dispositions.result());
  return files;
}

/** events.csv, one line per event straight from the events (no row object per event), in MONTH_FILE_HEADERS.events order. */
function eventsCsv(events: Event[], C: Classification, month: string): Buffer {
  const w = new CsvWriter(MONTH_FILE_HEADERS.events);
  eventRows(w, events, C, month);
  return w.result();
}
function eventRows(w: CsvWriter, events: Event[], C: Classification, month: string): void {
  for (const e of events) {
    const km = e.from === 'KM';
    w.cell(e.record_id).cell(e.registration_date).cell(month).cell(km ? '' : e.from).cell(e.to).cell(km ? 1 : 0).cell(e.sex).cell(e.age).cell(ageGroup(e.age))
      .cell(activityGroup(e)).cell(e.nationality).cell(moveType(C, e)).cell(e.delay ?? '').cell(e.carried_forward ? 1 : 0)
      .cell(flagNames(e.provenance, PROVENANCE)).cell(flagNames(e.donor, DONOR_VARIABLES));
    w.end();
  }
  // (nothing after the loop: see LOOP_TAIL in pipeline/memo.ts)
}

/** Newline characters in UTF-8 text (a CSV's data rows are that minus the header's). */
function countLines(b: Buffer): number {
  let k = 0;
  for (let i = b.indexOf(10); i >= 0; i = b.indexOf(10, i + 1)) k++;
  return k;
}

/** Write a results directory atomically with its deterministic manifest. */
/** Returns the SHA-256 of the manifest written (the log records it: audit then knows the manifest was not rewritten). */
export function writeResultsDir(dir: string, files: Map<string, string | Buffer>, m: Omit<Manifest, 'outputs'>, before?: (manifestSha256: string) => void): string {
  // each text encoded to UTF-8 once: the hash, the size, the line count and the write all use the same bytes
  const bytes = new Map<string, Buffer>();
  for (const [p, c] of files) bytes.set(p, typeof c === 'string' ? Buffer.from(c, 'utf8') : c);
  const outputs = [...bytes.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([p, b]) => ({ path: p, sha256: sha256(b), bytes: b.length, ...(p.endsWith('.csv') ? { rows: Math.max(0, countLines(b) - 1) } : {}) }));
  const manifest: Manifest = { ...m, outputs };
  const manifestText = JSON.stringify(manifest, null, 2) + '\n';
  before?.(sha256(manifestText)); // (the log records the manifest before it is visible: a kill after the swap is no false alarm)
  replaceDirAtomic(dir, (staging) => {
    for (const [p, b] of bytes) writeFileDurable(path.join(staging, p), b, { defer: true });
    writeFileDurable(path.join(staging, 'manifest.json'), manifestText);
  });
  return sha256(manifestText);
}
