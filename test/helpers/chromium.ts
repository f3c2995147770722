/**
 * Headless Debian chromium for tests that must see a page as a browser does. CI installs chromium
 * (.ci/run); a missing browser is a test failure, never a skip.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';

export const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';

function base(profile: string): string[] {
  return [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage', '--hide-scrollbars', `--user-data-dir=${profile}`,
  ];
}

function run(args: string[]): { stdout: string; stderr: string } {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`chromium not found at ${CHROMIUM}: install it (apt-get install -y chromium); .ci/run does this in CI`);
  const r = spawnSync(CHROMIUM, args, { encoding: 'utf8', timeout: 90_000, maxBuffer: 64 * 1024 * 1024 });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`chromium exited with ${r.status}: ${r.stderr.slice(-2000)}`);
  return { stdout: r.stdout, stderr: r.stderr };
}

/** The DOM of a local HTML file after chromium has loaded it. */
export function dumpDom(htmlFile: string): string {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'migstat-chromium-'));
  try {
    return run([...base(profile), '--dump-dom', `file://${path.resolve(htmlFile)}`]).stdout;
  } finally {
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

/** A PNG screenshot of a local HTML file. */
export function screenshot(htmlFile: string, png: string, size: string = '1280,2000'): void {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'migstat-chromium-'));
  try {
    run([...base(profile), `--screenshot=${png}`, `--window-size=${size}`, `file://${path.resolve(htmlFile)}`]);
  } finally {
    fs.rmSync(profile, { recursive: true, force: true });
  }
}
