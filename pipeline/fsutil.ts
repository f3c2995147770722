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
export const durability = {
  fsyncEachFile: true,
  renameEachFile: true,
  /**
   * A rebuild worker's large files (no fsync each) that its callers mark `defer` (files nothing reads before the
   * worker reports its unit of work done: forms partitions, the record index, results directories) are written
   * by libuv's threads while the worker goes on: settleWrites() waits for them, and the worker calls it first.
   */
  deferLargeWrites: false,
};

/** Options of a write: `defer`, see durability.deferLargeWrites. */
export interface WriteOptions { defer?: boolean }

/** Write a file atomically (temp file + fsync + rename). */
export function writeFileAtomic(file: string, data: string | Buffer, o?: WriteOptions): void {
  if (!durability.renameEachFile) { writeFileDurable(file, data, o); return; }
  // (never deferred when renamed into place: the name would be visible before the bytes are written)
  const tmp = `${file}.tmp-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
  writeFileDurable(tmp, data);
  fs.renameSync(tmp, file);
}

/**
 * Write a file under its final name, fsynced: only for a file nobody can see yet, inside a staging directory
 * that becomes visible by one rename (replaceDirAtomic), or inside a rebuild's staging store.
 */
export function writeFileDurable(file: string, data: string | Buffer, o?: WriteOptions): void {
  ensureDir(path.dirname(file));
  if (data.length >= DIRECT_MIN_BYTES && directIo.enabled) {
    const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    if (o?.defer && durability.deferLargeWrites && !durability.fsyncEachFile ? submitDirect(file, buf) : writeDirect(file, buf)) return;
    data = buf;
  }
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

/** (the one part of the WebAssembly API used here: the ES2023 lib this project compiles against does not declare it) */
declare const WebAssembly: { Memory: new (d: { initial: number }) => { buffer: ArrayBuffer } };
/**
 * Large files bypass the page cache: written with O_DIRECT (Linux), from page-aligned memory, straight to the disk.
 * Measured on this 2-core VM: copying written bytes into the page cache cost ~2.4 s of CPU per GB when the cache
 * grew (1 GB into new files: 2.5 s of system time; 0.2 s right after 1 GB of files was deleted, their pages reused),
 * and a rebuild grows it by its whole 5.2 GB store: a perf profile of a rebuild had that copy as its largest kernel item.
 * A direct write costs ~0.1 s of CPU per GB and waits for the disk (~1.6 GB/s here). Smaller files (below
 * DIRECT_MIN_BYTES, where the two cost about the same) and the last partial block of a large one (O_DIRECT writes
 * whole blocks) are written as before. On a file system without O_DIRECT (tmpfs), or whatever refuses a direct
 * write, the file is written as before and direct writes stay off for the process. The bytes, the names, the
 * temporary-file-and-rename and the fsyncs are the same either way; MIGSTAT_DIRECT_IO=0 turns it off.
 */
const DIRECT_MIN_BYTES = 128 << 10;
/** offsets and lengths of direct writes are multiples of this (the largest logical block size of common disks) */
const DIRECT_ALIGN = 4096;
/** direct writes go through one page-aligned buffer of this size, reused */
const DIRECT_CHUNK = 4 << 20;
export const directIo = {
  // (WebAssembly gives the aligned memory: absent under node --jitless, and then so are direct writes)
  enabled: process.platform === 'linux' && typeof fs.constants.O_DIRECT === 'number' && typeof WebAssembly === 'object' && process.env.MIGSTAT_DIRECT_IO !== '0',
  /** files written directly so far (for the tests) */
  files: 0,
  /** the asynchronous write of deferred chunks: fs.write (a test puts a failing one in its place) */
  write: fs.write as (fd: number, buffer: Buffer, offset: number, length: number, position: number, cb: (err: NodeJS.ErrnoException | null, written: number) => void) => void,
};
/** `bytes` (a multiple of 64 KB) of memory starting on a page boundary, as O_DIRECT needs: a WebAssembly memory's buffer (a Buffer of the heap is not aligned). */
function alignedMemory(bytes: number): ArrayBuffer {
  return new WebAssembly.Memory({ initial: bytes / 65536 }).buffer;
}
let directBuf: Buffer | undefined;
function alignedChunk(): Buffer {
  return (directBuf ??= Buffer.from(alignedMemory(DIRECT_CHUNK)));
}

/** A direct open or write refused by the file system or the device (EINVAL, as Linux says; EOPNOTSUPP from some), not failed. */
function refused(e: NodeJS.ErrnoException): boolean {
  return e.code === 'EINVAL' || e.code === 'EOPNOTSUPP' || e.code === 'ENOTSUP';
}

/** The file opened (created, truncated) for direct writes; undefined, and direct writes off, where the file system has none. */
function openDirect(file: string): number | undefined {
  try {
    return fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC | fs.constants.O_DIRECT, 0o666);
  } catch (e) {
    if (!refused(e as NodeJS.ErrnoException)) throw e;
    directIo.enabled = false;
    return undefined;
  }
}

/** writeFileDurable's direct path: false (nothing left behind but a file that the caller rewrites) if refused. */
function writeDirect(file: string, buf: Buffer): boolean {
  const fd = openDirect(file);
  if (fd === undefined) return false;
  const whole = buf.length - (buf.length % DIRECT_ALIGN);
  let tailFd: number | undefined;
  try {
    const chunk = alignedChunk();
    let half = false;
    for (let off = 0; off < whole; ) {
      const n = Math.min(DIRECT_CHUNK, whole - off);
      buf.copy(chunk, 0, off, off + n);
      if (fs.writeSync(fd, chunk, 0, n, off) !== n) throw Object.assign(new Error('short direct write'), { code: 'EINVAL' });
      off += n;
      if (!half && off >= buf.length >> 1) { half = true; faultPoint(); }
    }
    if (!half) faultPoint();
    if (whole < buf.length) {
      tailFd = fs.openSync(file, 'r+');
      fs.writeSync(tailFd, buf, whole, buf.length - whole, whole);
    }
    if (durability.fsyncEachFile) fs.fsyncSync(tailFd ?? fd);
  } catch (e) {
    if (!refused(e as NodeJS.ErrnoException)) throw e;
    directIo.enabled = false; // a direct write refused (alignment): the caller writes the file again, buffered
    return false;
  } finally {
    fs.closeSync(fd);
    if (tailFd !== undefined) fs.closeSync(tailFd);
  }
  directIo.files++;
  return true;
}

/**
 * Deferred direct writes (durability.deferLargeWrites): the bytes are copied into slots of one page-aligned pool and
 * written by libuv's thread pool, so that the worker computes while the disk writes (a direct write waits for the
 * disk: written in line, a rebuild's 5.2 GB held each worker ~1.6 s, and the CPU it saved was lost as wall time).
 * A file that does not find enough free slots is written in line, as writeDirect does.
 */
const SLOT_BYTES = 1 << 20;
const SLOTS = 64;
let slots: Buffer[] | undefined;
const freeSlots: number[] = [];
interface DeferredWrite { file: string; buf: Buffer; whole: number; fd: number; bufferedFd: number; left: number; error?: NodeJS.ErrnoException }
let pendingWrites = 0;
let writeError: unknown;
let settled: { resolve: () => void; reject: (e: unknown) => void }[] = [];

function submitDirect(file: string, buf: Buffer): boolean {
  const whole = buf.length - (buf.length % DIRECT_ALIGN);
  const chunks = Math.ceil(whole / SLOT_BYTES);
  if (!slots) {
    const mem = alignedMemory(SLOTS * SLOT_BYTES);
    slots = [];
    for (let k = 0; k < SLOTS; k++) { slots.push(Buffer.from(mem, k * SLOT_BYTES, SLOT_BYTES)); freeSlots.push(SLOTS - 1 - k); }
  }
  if (freeSlots.length < chunks) return writeDirect(file, buf);
  const fd = openDirect(file);
  if (fd === undefined) return false;
  // a second, buffered descriptor, opened now (the file's directory may be renamed before the writes end): for the
  // last partial block, and to write the whole file again should the disk refuse a direct write
  let bufferedFd: number;
  try {
    bufferedFd = fs.openSync(file, 'r+');
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
  const w: DeferredWrite = { file, buf, whole, fd, bufferedFd, left: chunks };
  faultPoint();
  pendingWrites++;
  for (let c = 0; c < chunks; c++) {
    const slot = freeSlots.pop()!;
    const off = c * SLOT_BYTES, n = Math.min(SLOT_BYTES, whole - off);
    buf.copy(slots[slot]!, 0, off, off + n);
    directIo.write(fd, slots[slot]!, 0, n, off, (err, written) => chunkWritten(w, slot, err ?? (written === n ? null : Object.assign(new Error('short direct write'), { code: 'EINVAL' }))));
  }
  return true;
}

function chunkWritten(w: DeferredWrite, slot: number, err: NodeJS.ErrnoException | null): void {
  freeSlots.push(slot);
  if (err && !w.error) w.error = err;
  if (--w.left > 0) return;
  try {
    if (w.error && !refused(w.error)) throw new Error(`could not write ${w.file}: ${w.error.message}`);
    if (w.error) {
      directIo.enabled = false; // refused: the whole file again, buffered
      fs.writeSync(w.bufferedFd, w.buf, 0, w.buf.length, 0);
    } else {
      if (w.whole < w.buf.length) fs.writeSync(w.bufferedFd, w.buf, w.whole, w.buf.length - w.whole, w.whole);
      directIo.files++;
    }
  } catch (e) {
    writeError ??= e;
  } finally {
    fs.closeSync(w.fd);
    fs.closeSync(w.bufferedFd);
    if (--pendingWrites === 0) settle();
  }
}

function settle(): void {
  const waiting = settled;
  settled = [];
  const e = writeError;
  writeError = undefined;
  for (const s of waiting) if (e === undefined) s.resolve(); else s.reject(e);
  if (e !== undefined && !waiting.length) writeError = e; // kept for the next settleWrites
}

/** How many deferred files are being written (for the tests). */
export function writesUnderWay(): number {
  return pendingWrites;
}

/** Resolves when every deferred write has ended (at once when none is under way); rejects with the first that failed. */
export function settleWrites(): Promise<void> {
  if (pendingWrites > 0) return new Promise((resolve, reject) => settled.push({ resolve, reject }));
  const e = writeError;
  writeError = undefined;
  return e === undefined ? Promise.resolve() : Promise.reject(e);
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
