#!/usr/bin/env node
'use strict';
// The CLI entry point. `npm ci` compiles the TypeScript sources (the `prepare` script) into dist/.
require('../dist/pipeline/cli.js').main(process.argv).then(
  (code) => { process.exitCode = code; },
  (err) => { process.stderr.write(`migstat: ${err && err.message ? err.message : String(err)}\n`); process.exitCode = 1; },
);
