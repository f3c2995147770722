/**
 * One ajv instance for every schema of the project (schemas/*.schema.json): input rows, rule files,
 * configuration, calendar, reference data. Validation errors name the file and the offending path.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import Ajv, { type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { SCHEMAS } from './paths';

// unicodeRegExp off: the patterns are ASCII, and without the u flag the per-row record check is faster
const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true, unicodeRegExp: false });
addFormats(ajv);
const cache = new Map<string, ValidateFunction>();

export function validator(name: string): ValidateFunction {
  let v = cache.get(name);
  if (!v) {
    const file = path.join(SCHEMAS, `${name}.schema.json`);
    v = ajv.compile(JSON.parse(fs.readFileSync(file, 'utf8')));
    cache.set(name, v);
  }
  return v;
}

export class SchemaError extends Error {}

/** Validate `data` against schemas/<name>.schema.json; throw one readable message naming `where`. */
export function validateOrThrow<T>(name: string, data: unknown, where: string): T {
  const v = validator(name);
  if (!v(data)) {
    const msgs = (v.errors ?? []).slice(0, 5).map((e) => `${e.instancePath || '(root)'} ${e.message ?? ''}`.trim());
    throw new SchemaError(`${where}: does not match schema ${name}: ${msgs.join('; ')}`);
  }
  return data as T;
}

/** Read a JSON data file and validate it. */
export function loadJson<T>(file: string, schema: string): T {
  let data: unknown;
  try {
    data = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new SchemaError(`${file}: not valid JSON: ${(e as Error).message}`);
  }
  return validateOrThrow<T>(schema, data, file);
}
