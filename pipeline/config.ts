/** Configuration: config/migstat.json and the data files it names, each validated by its schema. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CONFIG, ROOT } from './paths';
import { loadJson, SchemaError } from './schemas';
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
  // what the schemas cannot say, said with the file's name (a statistician's edit must not fail later, elsewhere)
  if (!imputation.classes.some((c) => c.length === 0)) throw new SchemaError(`${abs(config.imputation_file)}: classes must end with [] (the class of every recipient): without it a recipient may find no class, and the run stops on a form of the extract`);
  const correctionsFile = abs(config.systemic_corrections_file);
  const corrections = loadJson<{ corrections: SystemicCorrection[] }>(correctionsFile, 'systemic-corrections').corrections;
  const ruleIds = new Set(rules.map((r) => r.id));
  const seen = new Set<string>();
  for (const c of corrections) {
    if (seen.has(c.id)) throw new SchemaError(`${correctionsFile}: correction ${c.id}: id used twice`);
    seen.add(c.id);
    if (!ruleIds.has(c.trigger_rule)) throw new SchemaError(`${correctionsFile}: correction ${c.id}: trigger_rule ${c.trigger_rule} is not a rule of ${abs(config.rules_file)}`);
  }
  const digests: Record<string, string> = {};
  for (const f of [file, abs(config.rules_file), abs(config.imputation_file), abs(config.systemic_corrections_file)]) digests[path.relative(ROOT, f)] = sha256(fs.readFileSync(f));
  return { config, rules, scopeRules, imputation, corrections, digests };
}

let version: string | undefined;
/**
 * Code version: package version + digest of the sources (pipeline/ and stages/ with their subdirectories), the
 * schemas and the territorial reference (which decides recoding and aggregation), so any change of them shows in
 * the manifests. Each file is hashed with its path, so a file moved or renamed shows too.
 */
export function codeVersion(): string {
  if (version) return version;
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
  const h = require('node:crypto').createHash('sha256');
  const walk = (rel: string, keep: (f: string) => boolean): void => {
    const d = path.join(ROOT, rel);
    if (!fs.existsSync(d)) return;
    for (const e of fs.readdirSync(d, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      const r = `${rel}/${e.name}`;
      if (e.isDirectory()) walk(r, keep);
      else if (keep(e.name)) { h.update(`${r}\0`); h.update(fs.readFileSync(path.join(ROOT, r))); }
    }
  };
  walk('pipeline', (f) => f.endsWith('.ts'));
  walk('stages', (f) => f.endsWith('.ts'));
  walk('schemas', (f) => f.endsWith('.json'));
  walk('reference/territory', () => true);
  version = `${pkg.version}+${h.digest('hex').slice(0, 12)}`;
  return version;
}
