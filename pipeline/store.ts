/**
 * The office's working store (--data DIR): layout, closed months, the lock that keeps two runs apart.
 * See contracts.ts for the layout.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as crypto from 'node:crypto';
import { isMonth } from './contracts';
import { ensureDir, pidAlive, readJson, writeJsonAtomic } from './fsutil';

export class Store {
  constructor(readonly root: string) {}
  p(...parts: string[]): string {
    return path.join(this.root, ...parts);
  }
  monthDir(month: string): string { return this.p('months', month); }
  yearDir(year: number | string): string { return this.p('years', String(year)); }
  formsDir(month: string): string { return this.p('forms', month); }
  publishedDir(id?: string): string { return id ? this.p('published', id) : this.p('published'); }
  logFile(): string { return this.p('logs', 'migstat.jsonl'); }
  /** The releases in published/ (id, and the year whose annual results each holds), from their manifests, by id. */
  releases(): { id: string; year: number }[] {
    const dir = this.publishedDir();
    if (!fs.existsSync(dir)) return [];
    const out: { id: string; year: number }[] = [];
    for (const id of fs.readdirSync(dir).filter((x) => !x.startsWith('.')).sort()) {
      const f = path.join(dir, id, 'manifest.json');
      if (!fs.existsSync(f)) continue;
      try {
        const m = readJson<{ kind?: string; parameters?: { content?: { year?: unknown } } }>(f);
        if (m.kind === 'release' && typeof m.parameters?.content?.year === 'number') out.push({ id, year: m.parameters.content.year });
      } catch { /* not a release manifest: audit names it */ }
    }
    return out;
  }
  /** The ids of the releases in published/ whose content is the annual results of `year`. */
  publishedOf(year: number): string[] {
    return this.releases().filter((r) => r.year === year).map((r) => r.id);
  }
  /** The years whose annual results a release in published/ holds. */
  publishedYears(): Set<number> {
    return new Set(this.releases().map((r) => r.year));
  }

  closedMonths(): Record<string, { closed_by: string }> {
    const f = this.p('state', 'closed.json');
    return fs.existsSync(f) ? readJson<{ months: Record<string, { closed_by: string }> }>(f).months : {};
  }
  /**
   * The months made final by the store's state, read once: closed (state/closed.json), or of a year a release has
   * published (even if closed.json lost it). isClosed adds the months before the store's first month.
   */
  finalMonths(): (month: string) => boolean {
    const closed = this.closedMonths();
    const published = this.publishedYears();
    return (m) => m in closed || published.has(+m.slice(0, 4));
  }
  /** Final: closed, before the store's first month, or of a year a release has published (even if closed.json lost it). */
  isClosed(month: string): boolean {
    const first = this.firstMonth();
    return this.finalMonths()(month) || (first !== undefined && month < first);
  }
  /** Mark months final. `by` says who closed them (a command or a release id). */
  close(months: string[], by: string): string[] {
    const cur = this.closedMonths();
    const newly: string[] = [];
    for (const m of months) if (!(m in cur)) { cur[m] = { closed_by: by }; newly.push(m); }
    if (newly.length) writeJsonAtomic(this.p('state', 'closed.json'), { months: Object.fromEntries(Object.entries(cur).sort()) });
    return newly;
  }
  /** The first month this store ever received; months before it were published before the store existed and count as closed. */
  firstMonth(): string | undefined {
    const f = this.p('state', 'first-month.json');
    return fs.existsSync(f) ? readJson<{ month: string }>(f).month : undefined;
  }
  setFirstMonth(month: string): void {
    const cur = this.firstMonth();
    if (!cur || month < cur) writeJsonAtomic(this.p('state', 'first-month.json'), { month });
  }
  /** Months that have results, sorted. */
  months(): string[] {
    const d = this.p('months');
    return fs.existsSync(d) ? fs.readdirSync(d).filter((m) => /^\d{4}-\d{2}$/.test(m)).sort() : [];
  }
  /**
   * Undo what a killed `migstat month` wrote before its commit point (state/ingested.json lists the committed
   * deliveries): the delivery record, the forms parts and the record-index file of every delivery not listed.
   * Returns the months whose results may still include a rolled-back delivery and must be rebuilt; they are
   * kept in state/rebuild.json until `rebuilt()` is called, so a run killed during the rebuild leaves them listed.
   */
  rollbackUncommitted(committed: Set<string>): string[] {
    const { months, files, fileMonths } = this.uncommitted(committed);
    const out = [...months].filter((m) => isMonth(m)).sort();
    // A killed run never wrote to a closed month (deliver carries late forms forward), so uncommitted files in one
    // mean that state/ingested.json lost committed deliveries: rolling them back would delete the inputs of final results.
    const final = [...fileMonths].filter(this.finalMonths()).sort();
    if (final.length) throw new Error(`state/ingested.json does not list deliveries whose files are in closed month${final.length > 1 ? 's' : ''} ${final.join(', ')} (${files.map((f) => path.relative(this.root, f)).slice(0, 3).join(', ')}${files.length > 3 ? ', …' : ''}): a killed run never writes to a closed month, so state/ingested.json was changed or lost; nothing was rolled back. Restore state/ingested.json (every committed delivery has its record under deliveries/), then run again`);
    if (files.length) {
      writeJsonAtomic(this.p('state', 'rebuild.json'), { months: out });
      for (const f of files) fs.rmSync(f, { force: true });
    }
    return out;
  }
  /**
   * What a killed `migstat month` left uncommitted, without touching it: the months its deliveries touched (and
   * those a killed recovery had still to rebuild). Empty when the store is consistent. `close`, `year` and
   * `release` refuse to work on a store in that state: only `migstat month` rolls it back (it has the settlements).
   */
  uncommittedMonths(): string[] {
    return [...this.uncommitted(this.committedDeliveries()).months].sort();
  }
  /** The deliveries state/ingested.json lists: those of committed monthly runs. */
  private committedDeliveries(): Set<string> {
    const f = this.p('state', 'ingested.json');
    return new Set(Object.values(fs.existsSync(f) ? readJson<Record<string, { delivery: string }>>(f) : {}).map((x) => x.delivery));
  }
  /**
   * The delivery records, forms parts and record-index files of the deliveries not in `committed` (state/ingested.json
   * lists the committed ones), and the months they touched, with those state/rebuild.json still lists.
   */
  private uncommitted(committed: Set<string>): { months: Set<string>; files: string[]; fileMonths: Set<string> } {
    const pendingFile = this.p('state', 'rebuild.json');
    const months = new Set<string>(fs.existsSync(pendingFile) ? readJson<{ months: string[] }>(pendingFile).months : []);
    // the months of the uncommitted files themselves (not those a killed recovery left in rebuild.json)
    const fileMonths = new Set<string>();
    const files: string[] = [];
    const ls = (...d: string[]): string[] => (fs.existsSync(this.p(...d)) ? fs.readdirSync(this.p(...d)).sort() : []);
    for (const f of ls('deliveries')) {
      // deliveries/<file-month>--<delivery>.json
      if (!f.endsWith('.json') || committed.has(f.slice(0, -5).replace(/^\d{4}-\d{2}--/, ''))) continue;
      const rec = readJson<{ file_month: string; by_month?: Record<string, number> }>(this.p('deliveries', f));
      for (const m of [rec.file_month, ...Object.keys(rec.by_month ?? {})]) { months.add(m); fileMonths.add(m); }
      files.push(this.p('deliveries', f));
    }
    for (const m of ls('forms')) {
      for (const f of ls('forms', m)) {
        if (!f.endsWith('.json') || committed.has(f.slice(0, -5))) continue;
        months.add(m);
        fileMonths.add(m);
        files.push(this.p('forms', m, f));
      }
    }
    for (const f of ls('state', 'ids')) {
      const m = /^(\d{4}-\d{2})--(.+)\.tsv$/.exec(f);
      if (!m || committed.has(m[2]!)) continue;
      months.add(m[1]!);
      fileMonths.add(m[1]!);
      files.push(this.p('state', 'ids', f));
    }
    return { months, files, fileMonths };
  }
  /** The files of deliveries that state/ingested.json does not list (store paths), for audit. */
  uncommittedFiles(): string[] {
    return this.uncommitted(this.committedDeliveries()).files.map((x) => path.relative(this.root, x).split(path.sep).join('/'));
  }
  /** The extracts (file names) of the uncommitted deliveries, as their records name them: the interrupted run's. */
  interruptedExtracts(): string[] {
    const names = this.uncommittedFiles().filter((f) => f.startsWith('deliveries/')).map((f) => { try { return readJson<{ file?: string }>(this.p(...f.split('/'))).file; } catch { return undefined; } });
    return [...new Set(names.filter((x): x is string => !!x))].sort();
  }
  /** Whether an extract of the month itself has been ingested (state/ingested.json), not only forms other extracts attributed to it. */
  hasOwnExtract(month: string): boolean {
    const f = this.p('state', 'ingested.json');
    if (!fs.existsSync(f)) return false;
    // (a supplement of late forms taken with --allow-other-months is not the month's own extract)
    const isSupplement = (delivery: string): boolean => {
      try { return readJson<{ allow_other_months?: boolean }>(this.p('deliveries', `${month}--${delivery}.json`)).allow_other_months === true; } catch { return false; }
    };
    return Object.values(readJson<Record<string, { month: string; delivery: string }>>(f)).some((x) => x.month === month && !isSupplement(x.delivery));
  }
  /**
   * Refuse a directory that is not a store (a mistyped --data must not pass for an empty store): none has received an
   * extract (state/first-month.json, set at the first commit) and none has deliveries or forms (an interrupted first run).
   */
  assertStore(): void {
    if (['state/first-month.json', 'deliveries', 'forms'].some((f) => fs.existsSync(this.p(...f.split('/'))))) return;
    throw new Error(`${this.root} ${fs.existsSync(this.root) ? 'has no processed months (no state/first-month.json)' : 'does not exist'}: is --data the office's store?`);
  }
  /** Refuse to go on while a killed monthly run is uncommitted (see uncommittedMonths). */
  assertCommitted(what: string): void {
    const m = this.uncommittedMonths();
    if (!m.length) return;
    const files = this.interruptedExtracts();
    throw new Error(`${what}: a monthly run stopped (killed, or failed) before it committed (months ${m.join(', ')}); run "migstat month" again with its extract${files.length ? ` (${files.join(', ')})` : ''} once what stopped it is put right: it rolls the run back and rebuilds those months; then ${what} again`);
  }
  /** The months returned by rollbackUncommitted have been rebuilt. */
  rebuilt(): void {
    fs.rmSync(this.p('state', 'rebuild.json'), { force: true });
  }
  ensure(): void {
    ensureDir(this.root);
  }
}

export class LockError extends Error {}

/** boot, started: the machine's boot id and the owner process's start time (Linux /proc), so that a pid reused after a reboot or by another process does not keep a dead run's lock */
interface LockOwner { pid: number; what: string; token?: string; boot?: string; started?: string }
const sleep = (ms: number): void => { Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms); };
const readText = (f: string): string | undefined => { try { return fs.readFileSync(f, 'utf8'); } catch { return undefined; } };
const parseOwner = (t: string | undefined): LockOwner | undefined => { try { return t ? (JSON.parse(t) as LockOwner) : undefined; } catch { return undefined; } };

/**
 * An exclusive lock on the store: the directory DIR/.lock holding owner.json (pid, command, a random token).
 * It is prepared under a private name and renamed into place, so it never exists without its owner (a run
 * killed at any instant leaves either no lock or a complete one). A second run gets a clear message naming
 * the holder. A lock whose owner process no longer exists is taken over; the take-over itself is serialised
 * (DIR/.lock.takeover), so two runs that find the same dead lock cannot both take it.
 * Leftovers of killed runs (DIR/.lock.tmp-*) are removed by recoverDir.
 */
export function withLock<T>(store: Store, what: string, fn: () => T): T {
  const release = takeLock(store, what);
  try {
    return fn();
  } finally {
    release();
  }
}

/** withLock for a long asynchronous run (rebuild): the lock is held until the promise settles. */
export async function withLockAsync<T>(store: Store, what: string, fn: () => Promise<T>): Promise<T> {
  const release = takeLock(store, what);
  try {
    return await fn();
  } finally {
    release();
  }
}

/**
 * How long a run waits for a dead run's lock to be taken over (by itself or by another run) before it gives up:
 * longer than TAKEOVER_STALE_MS, so that a take-over mutex left by a run killed inside its take-over is cleared
 * and the take-over done within it.
 */
const LOCK_PATIENCE_MS = 15_000;
/** A take-over mutex older than this belongs to a run that died in its take-over. */
const TAKEOVER_STALE_MS = 10_000;

/** Take the lock; returns its release (which removes the lock only while it is still ours). */
function takeLock(store: Store, what: string): () => void {
  store.ensure();
  const dir = store.p('.lock');
  const token = crypto.randomBytes(6).toString('hex');
  const mine = JSON.stringify({ pid: process.pid, what, token, ...processIdentity(process.pid) });
  const aside = (): string => `${dir}.tmp-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
  // A lock held by a live run is refused at once. The passing states (a dead run's lock that this or another run
  // is taking over, a lock being released, a prepared lock cleaned away by the holder's recovery) are waited out
  // for up to LOCK_PATIENCE_MS, not for a number of attempts: on a loaded machine the run taking a dead lock over
  // may be descheduled for longer than a few short retries (a second run then reported the dead run's lock as in use).
  const deadline = Date.now() + LOCK_PATIENCE_MS;
  // a lock directory without its owner is a passing state only (a lock being renamed away): one that stays so (made
  // by hand, or by another program) is reported after 2 s, not after the whole patience
  const ownerlessDeadline = Date.now() + 2_000;
  for (;;) {
    const tmp = aside();
    try {
      fs.mkdirSync(tmp);
      fs.writeFileSync(path.join(tmp, 'owner.json'), mine);
      fs.renameSync(tmp, dir);
      break;
    } catch (e) {
      fs.rmSync(tmp, { recursive: true, force: true });
      const code = (e as NodeJS.ErrnoException).code;
      const patient = Date.now() < deadline;
      if (code === 'ENOENT' && patient) continue; // our prepared lock was cleaned away by another run's recovery
      if (code !== 'EEXIST' && code !== 'ENOTEMPTY') throw e;
      const seen = readText(path.join(dir, 'owner.json'));
      const owner = parseOwner(seen);
      if (owner && !ownerAlive(owner)) {
        if (patient) { takeOver(dir, seen!, aside()); continue; }
        throw new LockError(`the store ${store.root} holds the lock of pid ${owner.pid} (${owner.what}), which no longer runs, and it could not be taken over within ${LOCK_PATIENCE_MS / 1000} s; remove ${dir} if no migstat run is active`);
      }
      if (!owner && patient && Date.now() < ownerlessDeadline) { sleep(25); continue; } // released or taken over just now
      throw new LockError(`the store ${store.root} is in use by another migstat run (${owner ? `pid ${owner.pid}: ${owner.what}` : `${dir} has no owner; remove it if no migstat run is active`}); try again when it has finished`);
    }
  }
  return () => {
    if (readText(path.join(dir, 'owner.json')) === mine) {
      const gone = aside();
      fs.renameSync(dir, gone);
      fs.rmSync(gone, { recursive: true, force: true });
    }
  };
}

/** Remove the lock of a dead process, if it is still the one seen (`seen` = its owner.json). */
function takeOver(dir: string, seen: string, gone: string): void {
  const mutex = `${dir}.takeover`;
  try {
    fs.mkdirSync(mutex);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    // another run is taking over right now, unless its mutex is old enough to belong to a run that died in it
    try { if (Date.now() - fs.statSync(mutex).mtimeMs > TAKEOVER_STALE_MS) fs.rmdirSync(mutex); } catch { /* gone already */ }
    sleep(25);
    return;
  }
  try {
    if (readText(path.join(dir, 'owner.json')) === seen) {
      fs.renameSync(dir, gone);
      fs.rmSync(gone, { recursive: true, force: true });
    }
  } finally {
    fs.rmdirSync(mutex);
  }
}

/** The boot id and the start time (clock ticks since boot) of a process, where /proc tells them (Linux); {} elsewhere. */
function processIdentity(pid: number): { boot?: string; started?: string } {
  const boot = readText('/proc/sys/kernel/random/boot_id')?.trim();
  // /proc/<pid>/stat: "pid (comm) state …": field 22 is the start time; comm may hold spaces, so count after the last ')'
  const stat = readText(`/proc/${pid}/stat`);
  const started = stat ? stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] : undefined;
  return { ...(boot ? { boot } : {}), ...(started ? { started } : {}) };
}

/** The lock's owner still runs: its pid is alive, on this boot, and it is the same process (same start time). */
function ownerAlive(o: LockOwner): boolean {
  if (!pidAlive(o.pid)) return false;
  const now = processIdentity(o.pid);
  if (o.boot && now.boot && o.boot !== now.boot) return false; // a lock from before a reboot
  if (o.started && now.started && o.started !== now.started) return false; // the pid now belongs to another process
  return true;
}
