/**
 * One ajv instance for every schema of the project (schemas/*.schema.json): input rows, rule files,
 * configuration, calendar, reference data. Validation errors name the file and the offending path.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type Ajv from 'ajv';
import type { ValidateFunction } from 'ajv';
import { sha256 } from './fsutil';
import { ROOT, SCHEMAS } from './paths';

/** unicodeRegExp off: the patterns are ASCII, and without the u flag the per-row record check is faster */
export const AJV_OPTIONS = { allErrors: true, strict: true, allowUnionTypes: true, unicodeRegExp: false } as const;
/** Validators precompiled at build time (npm run build: pipeline/precompile-schemas.ts), one module per schema. */
export const PRECOMPILED = path.join(ROOT, 'dist', 'schemas');

let instance: Ajv | undefined;
export function makeAjv(extra: object = {}): Ajv {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const A = require('ajv').default as typeof Ajv;
  const a = new A({ ...AJV_OPTIONS, ...extra });
  (require('ajv-formats') as (x: Ajv) => void)(a);
  return a;
}
const cache = new Map<string, ValidateFunction>();

/**
 * The validator of schemas/<name>.schema.json: the build's precompiled module when it was made from this very
 * schema text (its SHA-256 is compared, so a schema edited after the build is compiled afresh), else compiled
 * now. Saves ~0.1 s of ajv compilation at the start of every run.
 */
export function validator(name: string): ValidateFunction {
  const v = cache.get(name);
  if (v) return v;
  const text = fs.readFileSync(path.join(SCHEMAS, `${name}.schema.json`), 'utf8');
  return compiled(name, sha256(text), () => JSON.parse(text) as object);
}

/**
 * The validator of a schema derived in code from a schema file (the record schema as ingest applies it per row):
 * the build's precompiled module dist/schemas/<name>.js when it was made from this very derived schema (the
 * SHA-256 of its JSON is compared, so an edit of the file it comes from is followed), else compiled now.
 */
export function derivedValidator(name: string, schema: object): ValidateFunction {
  return cache.get(name) ?? compiled(name, derivedStamp(schema), () => schema);
}

/** The stamp of a derived schema's precompiled module (precompile-schemas.ts writes it, derivedValidator compares it). */
export function derivedStamp(schema: object): string {
  return sha256(JSON.stringify(schema));
}

/** The precompiled module of `name` when stamped with `sha`, else the schema compiled now; cached by name. */
function compiled(name: string, sha: string, schema: () => object): ValidateFunction {
  let v: ValidateFunction | undefined;
  const pre = path.join(PRECOMPILED, `${name}.js`);
  if (fs.existsSync(pre)) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const m = require(pre) as ValidateFunction & { schemaSha256?: string };
    if (m.schemaSha256 === sha) v = m;
  }
  v ??= (instance ??= makeAjv()).compile(schema());
  cache.set(name, v);
  return v;
}

export class SchemaError extends Error {}

/** Validate `data` against schemas/<name>.schema.json; throw one readable message naming `where`. */
export function validateOrThrow<T>(name: string, data: unknown, where: string): T {
  const v = validator(name);
  if (!v(data)) {
    // (ajv's message for an unknown property does not name it: its params do)
    const msgs = (v.errors ?? []).slice(0, 5).map((e) => `${e.instancePath || '(root)'} ${e.message ?? ''}${e.keyword === 'additionalProperties' ? `: '${String((e.params as { additionalProperty?: unknown }).additionalProperty)}'` : ''}`.trim());
    throw new SchemaError(`${where}: does not match schema ${name}: ${msgs.join('; ')}`);
  }
  return data as T;
}

/** Read a JSON data file and validate it. */
export function loadJson<T>(file: string, schema: string): T {
  let data: unknown;
  if (!fs.existsSync(file)) throw new SchemaError(`${file}: file not found`);
  try {
    data = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new SchemaError(`${file}: not valid JSON: ${(e as Error).message}`);
  }
  return validateOrThrow<T>(schema, data, file);
}
