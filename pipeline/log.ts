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
  log(e: StageEvent, level: 'info' | 'warn' | 'error' = 'info'): void {
    const entry = { ts: new Date().toISOString(), level, run_id: this.runId, ...e, prev: this.prev };
    const line = JSON.stringify(entry);
    fs.appendFileSync(this.file, line + '\n');
    this.prev = sha256(line);
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

function lastLineHash(file: string): string {
  if (!fs.existsSync(file)) return 'genesis';
  const text = fs.readFileSync(file, 'utf8').trimEnd();
  if (!text) return 'genesis';
  const last = text.slice(text.lastIndexOf('\n') + 1);
  return sha256(last);
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
