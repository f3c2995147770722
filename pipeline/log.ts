/**
 * Structured stage logs: winston, JSON lines, appended to DIR/logs/migstat.jsonl. One line per stage
 * event with run id, stage, counts in and out, rules fired, duration. Never personal data: callers pass
 * counts and ids of rules/records only (record ids are MoI form ids, not personal identifiers).
 * Each line carries `prev`, the SHA-256 of the previous line, so `migstat audit` can prove the log was
 * only ever appended to.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as crypto from 'node:crypto';
import winston from 'winston';
import { sha256 } from './fsutil';

export interface StageEvent {
  stage: string;
  event: string;
  [k: string]: unknown;
}

export class RunLog {
  readonly runId: string;
  private readonly logger: winston.Logger;
  private prev: string;
  readonly file: string;
  constructor(file: string, runId?: string) {
    this.file = file;
    fs.mkdirSync(path.dirname(file), { recursive: true });
    this.runId = runId ?? `${new Date().toISOString().replace(/[-:.]/g, '').slice(0, 15)}-${crypto.randomBytes(3).toString('hex')}`;
    this.prev = lastLineHash(file);
    // Lines are written synchronously (appendFileSync) through a winston format, so the chain is exact and a
    // killed run never leaves a torn line; winston supplies levels and the JSON formatting.
    this.logger = winston.createLogger({
      level: 'info',
      format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
      transports: [new winston.transports.Console({ silent: true })],
    });
  }
  /** the log's size after this logger's last line: while it is still that, the last line is ours (prev) */
  private size = -1;
  log(e: StageEvent, level: 'info' | 'warn' | 'error' = 'info'): void {
    // another run may have appended since: chain onto the real last line (read again only when the size changed)
    const size = fs.statSync(this.file, { throwIfNoEntry: false })?.size ?? -1;
    if (size !== this.size || size < 0) this.prev = lastLineHash(this.file);
    const entry = { ts: new Date().toISOString(), level, run_id: this.runId, ...e, prev: this.prev };
    const line = JSON.stringify(entry) + '\n';
    fs.appendFileSync(this.file, line);
    this.size = Math.max(size, 0) + Buffer.byteLength(line);
    this.prev = sha256(line.slice(0, -1));
    this.logger.log(level, e.event, e);
  }
  /** Time a stage and log its end with its duration. */
  time<T>(stage: string, fields: Record<string, unknown>, fn: () => T): T {
    const t0 = process.hrtime.bigint();
    const out = fn();
    this.log({ stage, event: 'done', ...fields, duration_ms: Number((process.hrtime.bigint() - t0) / 1000000n) });
    return out;
  }
}

/**
 * Hash of the last line, reading only the file's tail: 4 KB first (a line is ~0.3–2 KB), more only when the last line
 * is longer. A logger calls it when the log is not as it left it (another run appended): a full rebuild logs ~2 100
 * lines on its main thread, and reading and hashing a 64 KB tail for each cost ~0.3 ms a line.
 */
function lastLineHash(file: string): string {
  if (!fs.existsSync(file)) return 'genesis';
  const size = fs.statSync(file).size;
  if (size === 0) return 'genesis';
  const fd = fs.openSync(file, 'r');
  try {
    for (let len = Math.min(size, 4096); ; len = Math.min(size, len * 4)) {
      const buf = Buffer.alloc(len);
      fs.readSync(fd, buf, 0, len, size - len);
      const text = buf.toString('utf8').trimEnd();
      const nl = text.lastIndexOf('\n');
      if (nl >= 0 || len === size) return text ? sha256(text.slice(nl + 1)) : 'genesis';
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** Verify the hash chain of a log file; returns the 1-based line numbers that break it. */
export function verifyLogChain(file: string): number[] {
  const bad: number[] = [];
  const lines = fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.length > 0);
  let prev = 'genesis';
  lines.forEach((l, i) => {
    let obj: { prev?: string } = {};
    try { obj = JSON.parse(l); } catch { bad.push(i + 1); }
    if (obj.prev !== prev) bad.push(i + 1);
    prev = sha256(l);
  });
  return bad;
}
