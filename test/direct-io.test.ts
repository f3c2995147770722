/**
 * Large files are written past the page cache (O_DIRECT, pipeline/fsutil.ts), in line or (in a rebuild worker)
 * deferred to libuv's threads until settleWrites(). Whatever the path, every file must hold exactly its bytes:
 * sizes around the threshold, whole and partial blocks, several chunks, more deferred data than the slot pool holds.
 * On a file system without O_DIRECT (tmpfs) the same files are written buffered: the contents are checked either way,
 * and the count of direct writes where the file system takes them.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { directIo, durability, settleWrites, writeFileAtomic, writeFileDurable, writesUnderWay } from '../pipeline/fsutil';
import { tmpDir } from './helpers/store';

const K = 1024;
/** random bytes (a misplaced or missing block cannot pass), the same for the same (n, k) within the test file */
const made = new Map<string, Buffer>();
function bytesOf(n: number, k: number): Buffer {
  let b = made.get(`${n}:${k}`);
  if (!b) made.set(`${n}:${k}`, (b = crypto.randomBytes(n)));
  return b;
}
const sha = (b: Buffer): string => crypto.createHash('sha256').update(b).digest('hex');

/** below the threshold, at it, one byte over, whole blocks, a partial last block, and several 4 MB chunks */
const SIZES = [128 * K - 1, 128 * K, 128 * K + 1, 4096 * 40, 4096 * 40 + 123, 9 * K * K + 5];

/** The durability a rebuild worker sets (pipeline/rebuild-worker.ts): no fsync or rename each, large writes deferred. */
function asRebuildWorker(): void {
  Object.assign(durability, { fsyncEachFile: false, renameEachFile: false, deferLargeWrites: true });
}

describe('direct writes of large files', () => {
  const saved = { ...durability };
  afterEach(() => Object.assign(durability, saved));

  test('in line (migstat month, with fsync): each file holds exactly its bytes; text as UTF-8', () => {
    const dir = tmpDir('migstat-direct-');
    const before = directIo.files;
    SIZES.forEach((n, k) => writeFileAtomic(path.join(dir, `f${k}`), bytesOf(n, k)));
    const text = 'ć,đ,š\n'.repeat(40_000); // a string above the threshold, with two-byte characters
    writeFileDurable(path.join(dir, 'text.csv'), text);
    SIZES.forEach((n, k) => expect(sha(fs.readFileSync(path.join(dir, `f${k}`)))).toBe(sha(bytesOf(n, k))));
    expect(fs.readFileSync(path.join(dir, 'text.csv'), 'utf8')).toBe(text);
    expect(fs.readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual([]); // renamed into place
    // every file at or above 128 KB went direct, where the file system allows it
    if (directIo.enabled) expect(directIo.files - before).toBe(SIZES.filter((n) => n >= 128 * K).length + 1);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('deferred (a rebuild worker): complete once settleWrites resolves, also beyond the slot pool', async () => {
    asRebuildWorker();
    const dir = tmpDir('migstat-deferred-');
    // 8 × 9 MB: more than the 64 MB of slots, so some files are written in line while others are under way;
    // and a file written without `defer`, which is never deferred (its writer reads it back at once)
    const files = [...SIZES, 9 * K * K + 7, 9 * K * K, 9 * K * K + 4095, 9 * K * K + 1, 9 * K * K + 3, 9 * K * K + 11, 9 * K * K + 13];
    files.forEach((n, k) => writeFileDurable(path.join(dir, 'sub', `f${k}`), bytesOf(n, k), { defer: true }));
    if (directIo.enabled) expect(writesUnderWay()).toBeGreaterThan(0); // (their callbacks cannot have run yet)
    writeFileDurable(path.join(dir, 'now'), bytesOf(300 * K, 99));
    expect(sha(fs.readFileSync(path.join(dir, 'now')))).toBe(sha(bytesOf(300 * K, 99)));
    // the directory renamed while writes are under way (as a results directory is swapped into place)
    fs.renameSync(path.join(dir, 'sub'), path.join(dir, 'final'));
    await settleWrites();
    files.forEach((n, k) => {
      const got = fs.readFileSync(path.join(dir, 'final', `f${k}`));
      expect(got.length).toBe(n);
      expect(sha(got)).toBe(sha(bytesOf(n, k)));
    });
    await expect(settleWrites()).resolves.toBeUndefined(); // nothing under way: at once
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('a deferred write the disk fails is reported by settleWrites; one it refuses (EINVAL) is written buffered', async () => {
    asRebuildWorker();
    const dir = tmpDir('migstat-deferred-fail-');
    const was = directIo.enabled;
    const realWrite = directIo.write;
    const failWith = (code: string): void => {
      directIo.write = (_fd, _b, _o, _l, _p, cb) => setImmediate(() => cb(Object.assign(new Error(code === 'ENOSPC' ? 'no space left on device' : 'invalid argument'), { code }), 0));
    };
    try {
      if (!directIo.enabled) return; // (no direct writes on this file system: nothing is deferred)
      failWith('ENOSPC');
      writeFileDurable(path.join(dir, 'a'), bytesOf(200 * K, 1), { defer: true });
      await expect(settleWrites()).rejects.toThrow(/could not write .*a: no space left on device/);
      await expect(settleWrites()).resolves.toBeUndefined(); // reported once
      failWith('EINVAL');
      writeFileDurable(path.join(dir, 'b'), bytesOf(200 * K + 5, 2), { defer: true });
      await settleWrites();
      expect(sha(fs.readFileSync(path.join(dir, 'b')))).toBe(sha(bytesOf(200 * K + 5, 2)));
      expect(directIo.enabled).toBe(false); // and off for the rest of the process
    } finally {
      directIo.write = realWrite;
      directIo.enabled = was;
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('with direct writes off (MIGSTAT_DIRECT_IO=0, or a file system without them) the bytes are the same', () => {
    const dir = tmpDir('migstat-buffered-');
    const was = directIo.enabled;
    directIo.enabled = false;
    try {
      const before = directIo.files;
      SIZES.forEach((n, k) => writeFileAtomic(path.join(dir, `f${k}`), bytesOf(n, k)));
      SIZES.forEach((n, k) => expect(sha(fs.readFileSync(path.join(dir, `f${k}`)))).toBe(sha(bytesOf(n, k))));
      expect(directIo.files).toBe(before);
    } finally {
      directIo.enabled = was;
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
