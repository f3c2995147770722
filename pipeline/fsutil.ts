/**
 * Atomic file-system writes. Every artefact is written to a temporary name in the same directory and
 * renamed into place, so a killed run never leaves a half-written file under its final name.
 * A whole output directory is staged as `<dir>.tmp-<pid>` and swapped in with rename.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as crypto from 'node:crypto';

export function sha256(data: string | Buffer): string {
  return crypto.createHash('sha256').update(data).digest('hex');
}

export function sha256File(file: string): string {
  return sha256(fs.readFileSync(file));
}

/**
 * Fault injection for the kill tests (test/faults.test.ts); inert unless the environment variable
 * MIGSTAT_FAULT_AFTER_WRITES=n is set. Every file-system step that matters for crash safety counts as one
 * fault point: each writeFileAtomic (reached after half of the data is in the temporary file, before fsync and
 * rename) and each of the two renames of replaceDirAtomic (reached just before the rename). With the variable
 * set, the process kills itself with SIGKILL at its n-th fault point, as kill -9 or a power cut would, with
 * no clean-up of any kind. `faultPoints()` tells how many points a run passed (for the tests).
 */
const FAULT_AT = Number(process.env.MIGSTAT_FAULT_AFTER_WRITES ?? 0);
let faultCount = 0;
function faultPoint(): void {
  faultCount++;
  if (faultCount === FAULT_AT) process.kill(process.pid, 'SIGKILL');
}
export function faultPoints(): number {
  return faultCount;
}

export function ensureDir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
}

/**
 * Durability: by default every file is fsynced, and written under a temporary name then renamed. A rebuild
 * writes a whole new store in a staging directory that is discarded on any failure and moved into place
 * only after one sync of the file system (pipeline/rebuild.ts): it turns both off.
 */
export const durability = { fsyncEachFile: true, renameEachFile: true };

/** Write a file atomically (temp file + fsync + rename). */
export function writeFileAtomic(file: string, data: string | Buffer): void {
  if (!durability.renameEachFile) { writeFileDurable(file, data); return; }
  const tmp = `${file}.tmp-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
  writeFileDurable(tmp, data);
  fs.renameSync(tmp, file);
}

/**
 * Write a file under its final name, fsynced: only for a file nobody can see yet, inside a staging directory
 * that becomes visible by one rename (replaceDirAtomic), or inside a rebuild's staging store.
 */
export function writeFileDurable(file: string, data: string | Buffer): void {
  ensureDir(path.dirname(file));
  const fd = fs.openSync(file, 'w');
  try {
    const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    const half = buf.length >> 1;
    fs.writeSync(fd, buf, 0, half);
    faultPoint();
    fs.writeSync(fd, buf, half, buf.length - half);
    if (durability.fsyncEachFile) fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

export function writeJsonAtomic(file: string, value: unknown): void {
  writeFileAtomic(file, JSON.stringify(value, null, 2) + '\n');
}

export function readJson<T>(file: string): T {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
}

/**
 * Replace directory `dir` with the content produced by `fill(stagingDir)` in one rename.
 * The old directory, if any, is moved aside first and removed after the swap; if the process dies
 * between the two renames, `recoverDir` puts the old one back.
 */
export function replaceDirAtomic(dir: string, fill: (staging: string) => void): void {
  const parent = path.dirname(dir);
  ensureDir(parent);
  const base = path.basename(dir);
  const staging = path.join(parent, `.${base}.staging-${process.pid}`);
  fs.rmSync(staging, { recursive: true, force: true });
  fs.mkdirSync(staging, { recursive: true });
  fill(staging);
  const old = path.join(parent, `.${base}.old-${process.pid}`);
  faultPoint();
  if (fs.existsSync(dir)) fs.renameSync(dir, old);
  faultPoint();
  fs.renameSync(staging, dir);
  fs.rmSync(old, { recursive: true, force: true });
}

/**
 * The store lock's own directories (pipeline/store.ts): the lock, held by the run that calls recoverDir, and the
 * take-over mutex, which another run may create and remove at any instant (reading it then fails); the lock protocol
 * clears a stale mutex itself. recoverDir neither enters nor removes them.
 */
const LOCK_DIRS = new Set(['.lock', '.lock.takeover']);
/**
 * A lock prepared under a private name by a run that wants the lock (store.ts: DIR/.lock.tmp-PID-HEX, renamed into
 * place if the lock is free, else removed by that run). While its run lives it is that run's, not a leftover: removing
 * it could fail (the run writes its owner file into it at any instant). Only a dead run's is removed.
 */
const LOCK_TMP = /^\.lock\.tmp-(\d+)-[0-9a-f]+$/;

/** A process of this pid exists (possibly another user's). */
export function pidAlive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch (e) { return (e as NodeJS.ErrnoException).code === 'EPERM'; }
}

/** Clean leftovers of killed runs below `root`: staging dirs and temp files are removed, orphaned `.old` dirs restored. */
export function recoverDir(root: string): string[] {
  const actions: string[] = [];
  if (!fs.existsSync(root)) return actions;
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      if (LOCK_DIRS.has(e.name)) continue;
      const lockTmp = LOCK_TMP.exec(e.name);
      if (lockTmp && pidAlive(Number(lockTmp[1]))) continue;
      const p = path.join(dir, e.name);
      const mOld = /^\.(.+)\.old-\d+$/.exec(e.name);
      if (e.isDirectory() && mOld) {
        const target = path.join(dir, mOld[1]!);
        if (!fs.existsSync(target)) { fs.renameSync(p, target); actions.push(`restored ${target}`); }
        else { fs.rmSync(p, { recursive: true, force: true }); actions.push(`removed ${p}`); }
      } else if (/^\..+\.staging-\d+$/.test(e.name) || /\.tmp-\d+-[0-9a-f]+$/.test(e.name)) {
        fs.rmSync(p, { recursive: true, force: true });
        actions.push(`removed ${p}`);
      } else if (e.isDirectory()) walk(p);
    }
  };
  walk(root);
  return actions;
}

/** List files below `dir` (relative paths, sorted, POSIX separators). */
export function listFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, rel: string): void => {
    if (!fs.existsSync(d)) return;
    for (const e of fs.readdirSync(d, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(path.join(d, e.name), r);
      else out.push(r);
    }
  };
  walk(dir, '');
  return out;
}
