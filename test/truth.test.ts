/** The pipeline against the generator's ground truth: counts exact, the systemic day/month swap corrected. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { generate } from '../fixtures/generator';
import { runMonth } from '../pipeline/month';
import { Store } from '../pipeline/store';
import { readCsvText } from '../pipeline/csv';
import type { Quality } from '../pipeline/contracts';
import { logFor, tmpDir } from './helpers/store';

describe('pipeline vs ground truth (months with the monthly cadence, incl. the swapped office)', () => {
  const out = tmpDir();
  const data = tmpDir();
  const g = generate({ year: 2024, out, seed: 7, records: 12000, months: [1, 2] });
  const defects = JSON.parse(fs.readFileSync(path.join(out, 'truth', 'defects.json'), 'utf8'));
  beforeAll(() => {
    const log = logFor(data);
    for (const f of g.files.filter((x) => x.endsWith('.csv')).sort()) {
      const r = runMonth({ data, input: f, log });
      new Store(data).close([r.fileMonth], 'test cadence');
    }
  });
  for (const m of ['2024-01', '2024-02']) {
    test(`${m}: every count of quality.json equals the truth`, () => {
      const t = JSON.parse(fs.readFileSync(path.join(out, 'truth', 'months', m, 'quality.json'), 'utf8'));
      const q = JSON.parse(fs.readFileSync(path.join(data, 'months', m, 'quality.json'), 'utf8')) as Quality;
      for (const k of ['forms_read', 'duplicates', 'quarantined', 'events', 'delayed_events', 'carried_forward', 'unmatched_departures', 'linked_departures', 'replaced_versions', 'corrections_to_closed'] as const)
        expect([k, q[k]]).toEqual([k, t[k]]);
      expect(q.out_of_scope).toEqual(Object.fromEntries(Object.entries(t.out_of_scope as Record<string, number>).filter(([, v]) => v > 0).sort()));
      // quarantined forms by reason, as the truth counts them (the reasons were in quarantine.csv only)
      expect(q.quarantine_reasons).toEqual(Object.fromEntries(Object.entries(t.quarantine_reasons as Record<string, number>).filter(([, v]) => v > 0).sort()));
      expect(q.identity.holds).toBe(true);
      // cells untouched by donor imputation: the Republic totals are exact
      const rs = readCsvText(fs.readFileSync(path.join(data, 'months', m, 'tables', 'territory.csv'), 'utf8')).find((r) => r.code === 'RS' && r.sex === 'T')!;
      const trs = readCsvText(fs.readFileSync(path.join(out, 'truth', 'months', m, 'territory.csv'), 'utf8')).find((r) => r.code === 'RS' && r.sex === 'T')!;
      expect(rs.immigrants).toBe(trs.immigrants);
    });
  }
  test('the swapped office is escalated and its forms end up in the right month with the right dates', () => {
    const { office, month } = defects.day_month_swap as { office: string; month: string | number };
    const mm = typeof month === 'number' ? `2024-${String(month).padStart(2, '0')}` : month;
    const q = JSON.parse(fs.readFileSync(path.join(data, 'months', mm, 'quality.json'), 'utf8')) as Quality;
    expect(q.systemic.some((s) => s.office === office && s.rule === 'R04_REG_IN_FILE_MONTH')).toBe(true);
    const truth = readCsvText(fs.readFileSync(path.join(out, 'truth', 'records.csv'), 'utf8'));
    const ev = new Map(readCsvText(fs.readFileSync(path.join(data, 'months', mm, 'events.csv'), 'utf8')).map((e) => [e.record_id, e]));
    const swapped = truth.filter((r) => r.defects.split(';').includes('day_month_swap') && r.disposition === 'event');
    expect(swapped.length).toBeGreaterThan(10);
    for (const r of swapped) {
      const e = ev.get(r.record_id)!;
      expect(e).toBeDefined();
      expect(e.reference_month).toBe(mm);
      expect(e.delay_months).toBe(r.delay_months);
    }
  });
});
