#!/usr/bin/env node
/**
 * Run the real CLI entry point (bin/migstat.js) on the TypeScript sources, without a build: `.ts` files are
 * compiled in memory by swc (as jest does), and bin/migstat.js's `require('../dist/pipeline/cli.js')` is
 * pointed at pipeline/cli.ts. Used by the tests that spawn `migstat` as a child process (bad input, kill
 * tests, concurrency), so they test the sources under test even when dist/ is stale or absent.
 * Compiled output is cached in $TMPDIR/migstat-swc-cache by content hash (only a start-up speed-up).
 *
 *   node test/helpers/migstat-ts.js month --data DIR --input moi_2024_03.csv
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const crypto = require('node:crypto');
const Module = require('node:module');

const ROOT = path.resolve(__dirname, '..', '..');
const CACHE = path.join(os.tmpdir(), 'migstat-swc-cache');
const SWC_VERSION = require('@swc/core/package.json').version;
const OPTIONS = { jsc: { target: 'es2022', parser: { syntax: 'typescript' } }, module: { type: 'commonjs' }, sourceMaps: false };

function compile(src, file) {
  const key = crypto.createHash('sha1').update(src).update(file).update(JSON.stringify(OPTIONS)).update(SWC_VERSION).digest('hex');
  const cached = path.join(CACHE, `${key}.js`);
  try { return fs.readFileSync(cached, 'utf8'); } catch { /* not cached yet */ }
  const { code } = require('@swc/core').transformSync(src, { ...OPTIONS, filename: file }); // loaded only on a cache miss
  try {
    fs.mkdirSync(CACHE, { recursive: true });
    const tmp = `${cached}.${process.pid}`;
    fs.writeFileSync(tmp, code);
    fs.renameSync(tmp, cached);
  } catch { /* a cache that cannot be written only costs time */ }
  return code;
}

require.extensions['.ts'] = (m, file) => m._compile(compile(fs.readFileSync(file, 'utf8'), file), file);

// bin/migstat.js loads '../dist/pipeline/cli.js': point it at the TypeScript source (dist/ may be stale or absent)
const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, parent, ...rest) {
  if (parent && parent.filename === path.join(ROOT, 'bin', 'migstat.js') && request.startsWith('../dist/')) {
    const ts = path.join(ROOT, request.slice('../dist/'.length).replace(/\.js$/, '.ts'));
    if (fs.existsSync(ts)) return ts;
  }
  return resolve.call(this, request, parent, ...rest);
};

require(path.join(ROOT, 'bin', 'migstat.js'));
