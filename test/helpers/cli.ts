/**
 * `migstat` as a child process, on the TypeScript sources (test/helpers/migstat-ts.js runs bin/migstat.js
 * with pipeline/cli.ts in place of dist/), so the tests see the real entry point, exit codes and stderr
 * whether or not dist/ is built.
 */
import * as path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';

export const MIGSTAT_TS = path.join(__dirname, 'migstat-ts.js');

export interface CliResult { status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; ms: number }

/** The environment of a child: the test's own, without the switches that change the pipeline's behaviour. */
function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.MIGSTAT_FAULT_AFTER_WRITES;
  delete env.MIGSTAT_DEBUG;
  return { ...env, ...extra };
}

export function migstat(args: string[], env: Record<string, string> = {}): CliResult {
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [MIGSTAT_TS, ...args], { encoding: 'utf8', env: childEnv(env), timeout: 120_000 });
  if (r.error) throw r.error;
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr, ms: Date.now() - t0 };
}

/** Start migstat; `kill(afterMs)` sends SIGKILL after a delay (if it is still running). */
export function migstatAsync(args: string[], env: Record<string, string> = {}): { pid: number; done: Promise<CliResult>; kill: (afterMs: number) => void } {
  const t0 = Date.now();
  const c = spawn(process.execPath, [MIGSTAT_TS, ...args], { env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '', stderr = '';
  c.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
  c.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
  const done = new Promise<CliResult>((resolve, reject) => {
    c.on('error', reject);
    c.on('close', (status, signal) => resolve({ status, signal, stdout, stderr, ms: Date.now() - t0 }));
  });
  let timer: NodeJS.Timeout | undefined;
  void done.then(() => clearTimeout(timer));
  return { pid: c.pid!, done, kill: (afterMs) => { timer = setTimeout(() => { if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL'); }, afterMs); } };
}

/** The one line a failed run prints: `migstat: <message>`, nothing else (no stack trace). */
export function oneErrorLine(r: CliResult): string {
  const lines = r.stderr.split('\n');
  if (lines.length !== 2 || lines[1] !== '' || !lines[0]!.startsWith('migstat: ')) throw new Error(`expected exactly one 'migstat: …' line on stderr, got ${JSON.stringify(r.stderr)}`);
  if (/\n\s+at |Error:|TypeError|RangeError/.test(r.stderr)) throw new Error(`stack trace or raw error on stderr: ${r.stderr}`);
  return lines[0]!.slice('migstat: '.length);
}
