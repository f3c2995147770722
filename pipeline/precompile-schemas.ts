/**
 * Build step (npm run build / npm ci): every schema of schemas/*.schema.json compiled by ajv into a standalone
 * validation module in dist/schemas/<name>.js, stamped with the SHA-256 of the schema text it was made from.
 * pipeline/schemas.ts uses a module only when that stamp matches the schema file as it is now.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { derivedStamp, makeAjv, PRECOMPILED } from './schemas';
import { sha256 } from './fsutil';
import { SCHEMAS } from './paths';
import { recordRowSchema, recordUnpooledSchema } from '../stages/ingest';

const standaloneCode = require('ajv/dist/standalone').default as (a: unknown, v: unknown) => string;
fs.mkdirSync(PRECOMPILED, { recursive: true });
let n = 0;
/** Write dist/schemas/<name>.js: ajv's standalone code of `schema`, stamped with `sha`. */
function emit(name: string, schema: object, sha: string): void {
  const ajv = makeAjv({ code: { source: true } });
  const code = standaloneCode(ajv, ajv.compile(schema));
  const out = path.join(PRECOMPILED, `${name}.js`);
  fs.writeFileSync(`${out}.tmp`, `${code}\nmodule.exports.schemaSha256 = ${JSON.stringify(sha)};\n`);
  fs.renameSync(`${out}.tmp`, out);
  n++;
}
for (const f of fs.readdirSync(SCHEMAS).filter((x) => x.endsWith('.schema.json')).sort()) {
  const text = fs.readFileSync(path.join(SCHEMAS, f), 'utf8');
  if (text.includes('"format"')) continue; // formats need ajv-formats at run time: compiled when used
  emit(f.replace(/\.schema\.json$/, ''), JSON.parse(text) as object, sha256(text));
}
// schemas derived in code (pipeline/schemas.ts derivedValidator), with its stamp
const rows = recordRowSchema();
for (const d of [rows.name !== 'record' ? rows : undefined, recordUnpooledSchema(rows)]) if (d) emit(d.name, d.schema, derivedStamp(d.schema)); // ('record': the file's own, above)
process.stdout.write(`precompiled ${n} schemas into ${path.relative(process.cwd(), PRECOMPILED) || PRECOMPILED}\n`);
