/** Configuration: config/migstat.json and the data files it names, each validated by its schema. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CONFIG, ROOT } from './paths';
import { loadJson } from './schemas';
import { FORM_COLUMNS } from '../stages/ingest';
import { loadRules, type Rule } from '../stages/rules';
import type { ImputationConfig } from '../stages/month';
import type { SystemicCorrection } from '../stages/deliver';
import { sha256 } from './fsutil';

export interface MigstatConfig {
  seed: number;
  linkage: { window_days: number };
  systemic: { threshold: number; min_items: number };
  tables: { estimated_threshold: number };
  yoy: { threshold_pct: number; min_count: number };
  rules_file: string;
  imputation_file: string;
  systemic_corrections_file: string;
}
export interface Loaded {
  config: MigstatConfig;
  rules: Rule[];
  scopeRules: Rule[];
  imputation: ImputationConfig;
  corrections: SystemicCorrection[];
  /** SHA-256 of every configuration file in force, for the manifests. */
  digests: Record<string, string>;
}

/** Columns a rule may read: the forms after ingest plus the reference year. */
export const RULE_COLUMNS = [...FORM_COLUMNS, 'reference_year'];

export function loadConfig(file = path.join(CONFIG, 'migstat.json')): Loaded {
  const config = loadJson<MigstatConfig>(file, 'config');
  const abs = (f: string): string => (path.isAbsolute(f) ? f : path.join(ROOT, f));
  const { rules, scopeRules } = loadRules(abs(config.rules_file), RULE_COLUMNS);
  const imputation = loadJson<ImputationConfig>(abs(config.imputation_file), 'imputation');
  const corrections = loadJson<{ corrections: SystemicCorrection[] }>(abs(config.systemic_corrections_file), 'systemic-corrections').corrections;
  const digests: Record<string, string> = {};
  for (const f of [file, abs(config.rules_file), abs(config.imputation_file), abs(config.systemic_corrections_file)]) digests[path.relative(ROOT, f)] = sha256(fs.readFileSync(f));
  return { config, rules, scopeRules, imputation, corrections, digests };
}

let version: string | undefined;
/** Code version: package version + digest of the compiled code, so any code change shows in the manifests. */
export function codeVersion(): string {
  if (version) return version;
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
  const h = require('node:crypto').createHash('sha256');
  for (const dir of ['pipeline', 'stages']) {
    const d = path.join(ROOT, dir);
    for (const f of fs.readdirSync(d).filter((x) => x.endsWith('.ts')).sort()) h.update(fs.readFileSync(path.join(d, f)));
  }
  version = `${pkg.version}+${h.digest('hex').slice(0, 12)}`;
  return version;
}
