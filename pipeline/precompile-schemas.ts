/**
 * Build step (npm run build / npm ci): every schema of schemas/*.schema.json compiled by ajv into a standalone
 * validation module in dist/schemas/<name>.js, stamped with the SHA-256 of the schema text it was made from.
 * pipeline/schemas.ts uses a module only when that stamp matches the schema file as it is now.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeAjv, PRECOMPILED } from './schemas';
import { sha256 } from './fsutil';
import { SCHEMAS } from './paths';
import { recordRowSchema } from '../stages/ingest';

const standaloneCode = require('ajv/dist/standalone').default as (a: unknown, v: unknown) => string;
fs.mkdirSync(PRECOMPILED, { recursive: true });
let n = 0;
for (const f of fs.readdirSync(SCHEMAS).filter((x) => x.endsWith('.schema.json')).sort()) {
  const text = fs.readFileSync(path.join(SCHEMAS, f), 'utf8');
  if (text.includes('"format"')) continue; // formats need ajv-formats at run time: compiled when used
  const ajv = makeAjv({ code: { source: true } });
  const code = standaloneCode(ajv, ajv.compile(JSON.parse(text)));
  const out = path.join(PRECOMPILED, f.replace(/\.schema\.json$/, '.js'));
  fs.writeFileSync(`${out}.tmp`, `${code}\nmodule.exports.schemaSha256 = ${JSON.stringify(sha256(text))};\n`);
  fs.renameSync(`${out}.tmp`, out);
  n++;
}
// schemas derived in code (pipeline/schemas.ts derivedValidator), stamped with the SHA-256 of their JSON
for (const { name, schema } of [recordRowSchema()]) {
  if (name === 'record') continue; // (not derived: the file's own validator above)
  const ajv = makeAjv({ code: { source: true } });
  const code = standaloneCode(ajv, ajv.compile(schema));
  const out = path.join(PRECOMPILED, `${name}.js`);
  fs.writeFileSync(`${out}.tmp`, `${code}\nmodule.exports.schemaSha256 = ${JSON.stringify(sha256(JSON.stringify(schema)))};\n`);
  fs.renameSync(`${out}.tmp`, out);
  n++;
}
process.stdout.write(`precompiled ${n} schemas into ${path.relative(process.cwd(), PRECOMPILED) || PRECOMPILED}\n`);
