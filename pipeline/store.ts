/**
 * The office's working store (--data DIR): layout, closed months, the lock that keeps two runs apart.
 * See contracts.ts for the layout.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ensureDir, readJson, writeJsonAtomic } from './fsutil';

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

  closedMonths(): Record<string, { closed_by: string }> {
    const f = this.p('state', 'closed.json');
    return fs.existsSync(f) ? readJson<{ months: Record<string, { closed_by: string }> }>(f).months : {};
  }
  isClosed(month: string): boolean {
    return month in this.closedMonths() || (this.firstMonth() !== undefined && month < this.firstMonth()!);
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
  ensure(): void {
    ensureDir(this.root);
  }
}

export class LockError extends Error {}

/**
 * An exclusive lock on the store: a directory created atomically with mkdir. A second run gets a clear
 * message naming the holder. A lock left by a process that no longer exists is taken over.
 */
export function withLock<T>(store: Store, what: string, fn: () => T): T {
  takeLock(store, what);
  try {
    return fn();
  } finally {
    fs.rmSync(store.p('.lock'), { recursive: true, force: true });
  }
}

/** withLock for a long asynchronous run (rebuild): the lock is held until the promise settles. */
export async function withLockAsync<T>(store: Store, what: string, fn: () => Promise<T>): Promise<T> {
  takeLock(store, what);
  try {
    return await fn();
  } finally {
    fs.rmSync(store.p('.lock'), { recursive: true, force: true });
  }
}

function takeLock(store: Store, what: string): void {
  store.ensure();
  const dir = store.p('.lock');
  const info = path.join(dir, 'owner.json');
  for (let attempt = 0; ; attempt++) {
    try {
      fs.mkdirSync(dir);
      fs.writeFileSync(info, JSON.stringify({ pid: process.pid, what }));
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      let owner: { pid: number; what: string } | undefined;
      try { owner = JSON.parse(fs.readFileSync(info, 'utf8')); } catch { owner = undefined; }
      const alive = owner ? pidAlive(owner.pid) : true;
      if (!alive && attempt < 3) { fs.rmSync(dir, { recursive: true, force: true }); continue; }
      if (!owner && attempt < 20) { Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 25); continue; }
      throw new LockError(`the store ${store.root} is in use by another migstat run (${owner ? `pid ${owner.pid}: ${owner.what}` : 'starting'}); try again when it has finished`);
    }
  }
}

function pidAlive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch (e) { return (e as NodeJS.ErrnoException).code === 'EPERM'; }
}
