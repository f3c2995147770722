/** Systemic correction of one office's day/month swap, before attribution. */
import * as path from 'node:path';
import { deliver } from '../stages/deliver';
import { FORM_COLUMNS, type Columns } from '../stages/ingest';
import { loadConfig } from '../pipeline/config';
import { loadClassification } from '../stages/territory';

function forms(rows: { id: string; office: string; reg: string; move: string }[]): Columns {
  const c: Columns = Object.fromEntries(FORM_COLUMNS.map((k) => [k, [] as string[]]));
  rows.forEach((r, i) => {
    for (const k of FORM_COLUMNS) c[k]!.push('');
    const set = (k: string, v: string) => { c[k]![i] = v; };
    set('file', 'moi_2024_02.csv'); set('line', String(i + 2)); set('record_id', r.id); set('form_type', 'R'); set('registration_date', r.reg); set('move_date', r.move);
    set('registering_office', r.office); set('to_municipality', r.office); set('citizenship', 'RS'); set('file_month', '2024-02');
  });
  return c;
}

test('every form of the swapping office is corrected, including one registered on a day equal to its month', () => {
  const L = loadConfig();
  const rows = [];
  for (let d = 3; d <= 24; d++) rows.push({ id: `S${d}`, office: '70203', reg: `2024-${String(d).padStart(2, '0')}-02`, move: `2024-${String(d).padStart(2, '0')}-01` });
  rows.push({ id: 'S02', office: '70203', reg: '2024-02-02', move: '2024-31-01' }); // day = month; move date swapped
  rows.push({ id: 'OK1', office: '70106', reg: '2024-02-10', move: '2024-02-01' });
  const r = deliver({ forms: forms(rows), quarantine: [], fileMonth: '2024-02' }, {
    prior: () => undefined, isClosed: () => false, earliestOpenFrom: (m) => m, rules: L.rules, corrections: L.corrections,
    classification: loadClassification(path.join(__dirname, '..', 'reference', 'territory', 'settlements.csv')), systemic: L.config.systemic,
  });
  expect(r.systemic.map((s) => s.office)).toEqual(['70203']);
  const at = (id: string) => r.forms.record_id!.indexOf(id);
  expect(r.forms.registration_date![at('S13')]).toBe('2024-02-13');
  expect(r.forms.move_date![at('S13')]).toBe('2024-01-13');
  expect(r.forms.registration_date![at('S02')]).toBe('2024-02-02');
  expect(r.forms.move_date![at('S02')]).toBe('2024-01-31');
  expect(r.forms.move_date![at('OK1')]).toBe('2024-02-01');
  expect(r.forms.ref_month!.every((m) => m === '2024-02')).toBe(true);
  expect(r.quarantine).toEqual([]);
  expect(r.changes.filter((c) => c.record_id === 'S02').map((c) => c.variable)).toEqual(['move_date']);
});
