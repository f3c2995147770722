/** `migstat demo` (npm start): generate a realistic year, run its twelve months with the monthly cadence, the year, the release. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { count } from './contracts';
import { RunLog } from './log';
import { Store } from './store';
import { runMonth } from './month';
import { runYear } from './year';
import { releaseDue } from '../stages/release';
import { audit } from '../stages/audit';

export interface GenerateSummary { year: number; files: string[]; forms: number; events: number; defects: Record<string, number>; population?: string }

export function runGenerate(o: { year: number; out: string; seed?: number; records?: number }): GenerateSummary {
  // the generator lives with the fixtures; it is loaded only when asked for
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const g = require('../fixtures/generator') as { generate: (x: object) => GenerateSummary };
  return g.generate({ year: o.year, out: o.out, seed: o.seed ?? 1, records: o.records });
}

export async function runDemo(o: { data: string; year: number; records: number; say: (s: string) => void }): Promise<void> {
  const store = new Store(o.data);
  const extracts = path.join(o.data, 'demo-extracts');
  o.say(`demo: generating ${o.records} events for ${o.year} into ${extracts} (seed 1)`);
  const g = runGenerate({ year: o.year, out: extracts, seed: 1, records: o.records });
  const log = new RunLog(store.logFile());
  log.log({ stage: 'demo', event: 'start', year: o.year, forms: g.forms, note: 'demo run: synthetic extracts and the fixed DEMO pseudonymisation key' }, 'warn');
  for (const f of g.files.filter((x) => x.endsWith('.csv')).sort()) {
    const r = runMonth({ data: o.data, input: f, log });
    for (const m of r.months) o.say(`  ${path.basename(f)} → ${m}: ${r.quality[m]!.events} events, ${r.quality[m]!.quarantined} quarantined, ${r.quality[m]!.duplicates} duplicates, identity ${r.quality[m]!.identity.holds ? 'holds' : 'BROKEN'}`);
    // the monthly cadence: the month is published, hence closed, before the next extract arrives
    if (r.fileMonth) store.close([r.fileMonth], 'demo cadence');
  }
  // (a demo run again on its own store: the year is published already, hence final, and not built again)
  const published = store.publishedOf(o.year);
  if (published.length) o.say(`year ${o.year}: published already as ${published.join(', ')}; results in ${path.join(o.data, 'years', String(o.year))}`);
  else {
    const q = await runYear({ data: o.data, year: o.year, log, population: g.population });
    o.say(`year ${o.year}: ${q.events} internal migrants; results in ${path.join(o.data, 'years', String(o.year))}`);
  }
  const now = new Date(Date.UTC(o.year + 1, 6, 10, 10, 0, 0));
  const rel = releaseDue({ store, now, log });
  o.say(`release as cron would run it at ${now.toISOString()} (12:00 Belgrade, 10 July ${o.year + 1}): published ${rel.published.join(', ') || 'nothing'}`);
  const a = audit(store);
  o.say(`audit: ${count(a.checked, 'file')}, ${count(a.problems.length, 'problem')}${a.logHead ? `; log head ${a.logHead}` : ''}`);
  if (!a.ok) throw new Error(`audit failed: ${a.problems.slice(0, 3).map((p) => `${p.problem} ${p.path}`).join('; ')}`);
  if (!fs.existsSync(path.join(o.data, 'published'))) throw new Error('nothing was published');
}
