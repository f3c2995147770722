/**
 * Jest global setup and teardown: every temporary directory the tests make (os.tmpdir(), read through TMPDIR by the
 * test files, the CLI runs they spawn and their workers) lies under one directory of this test run, removed when
 * the run ends (unless MIGSTAT_KEEP_TEST_TMP is set). The suites make a few hundred stores per run; without this
 * they were left behind in /tmp.
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

async function setup() {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'migstat-tests-'));
  process.env.MIGSTAT_TEST_TMP_ROOT = root;
  process.env.TMPDIR = root; // inherited by the jest workers and every process they start
}

async function teardown() {
  const root = process.env.MIGSTAT_TEST_TMP_ROOT;
  if (process.env.MIGSTAT_KEEP_TEST_TMP) { process.stderr.write(`test temporary files kept in ${root}\n`); return; } // to look at them
  if (root && path.basename(root).startsWith('migstat-tests-')) fs.rmSync(root, { recursive: true, force: true });
}

module.exports = { setup, teardown };
