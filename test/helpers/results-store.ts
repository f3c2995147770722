/** A small hand-built store with a year's results, shared by the release and audit tests. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Manifest, Quality } from '../../pipeline/contracts';
import { writeResultsDir as writeDir } from '../../pipeline/month';
import { RunLog } from '../../pipeline/log';
import { Store } from '../../pipeline/store';

export const tmp = (prefix = 'migstat-'): string => fs.mkdtempSync(path.join(os.tmpdir(), prefix));

export function quality(period: string, extra: Partial<Quality> = {}): Quality {
  return {
    period, series: '1998-', forms_read: 10, duplicates: 0, quarantined: 0, out_of_scope: {}, events: 8, delayed_events: 1,
    carried_forward: 0, unmatched_departures: 1, imputed: {}, rules: {}, linked_departures: 1, replaced_versions: 0,
    corrections_to_closed: 0, recoded_territory: 0, delay_distribution: { '0': 7, '1': 1 }, imputation_by_method: {}, systemic: [],
    identity: { holds: true, lhs: 10, rhs: {} }, checks: [], provenance: {}, ...extra,
  };
}

/** Write a results directory with its manifest, with the pipeline's own writer (no log line: see writeLoggedDir). */
export function writeResultsDir(dir: string, kind: Manifest['kind'], id: string, files: Record<string, string>): void {
  writeDir(dir, new Map(Object.entries(files)), { kind, id, code_version: 'test', parameters: {}, inputs: [], counts: {} });
}

/**
 * A results directory of the store written as its run writes it: the directory with its manifest (naming `inputs`),
 * and the run's `done` line in the log with the manifest's path and hash (audit expects every results directory to
 * have its run in the log).
 */
export function writeLoggedDir(store: Store, kind: 'month' | 'year', id: string, files: Record<string, string>, inputs: Manifest['inputs'] = []): string {
  const rel = `${kind === 'month' ? 'months' : 'years'}/${id}`;
  const sha = writeDir(store.p(...rel.split('/')), new Map(Object.entries(files)), { kind, id, code_version: 'test', parameters: {}, inputs, counts: {} });
  new RunLog(store.logFile(), `test-${kind}`).log({ stage: kind, event: 'done', [kind]: kind === 'year' ? Number(id) : id, manifest_path: `${rel}/manifest.json`, manifest_sha256: sha });
  return sha;
}

export function yearFiles(year: number, q: Partial<Quality> = {}): Record<string, string> {
  return {
    'tables/territory.csv': 'series,level,code,sex,immigrants,emigrants,net\n1998-,republic,RS,T,8,7,1\n',
    'tables/move_type.csv': 'series,level,code,move_type,migrants\n1998-,republic,RS,total,8\n',
    'tables/territory_imputed.csv': 'series,level,code,sex,immigrants_imputed,emigrants_imputed\n1998-,republic,RS,T,0,0\n',
    'sdmx/data.csv': 'STRUCTURE,STRUCTURE_ID,ACTION\n',
    'sdmx/structure.xml': '<xml/>\n',
    'quality.json': JSON.stringify(quality(String(year), q), null, 2) + '\n',
    'report.html': '<!doctype html><title>r</title>\n',
    'working-notes.txt': 'internal\n',
  };
}

export function makeStore(year = 2024, q: Partial<Quality> = {}): Store {
  const store = new Store(tmp());
  store.ensure();
  store.setFirstMonth(`${year}-01`);
  writeLoggedDir(store, 'year', String(year), yearFiles(year, q));
  return store;
}
