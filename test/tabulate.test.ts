/** What the imputed-count tables count (they decide which published cells are marked estimated). */
import * as path from 'node:path';
import { D_FROM, D_SEX, type Event } from '../stages/month';
import { tabulate } from '../stages/tabulate';
import { loadClassification } from '../stages/territory';

const C = loadClassification(path.join(__dirname, '..', 'reference', 'territory', 'settlements.csv'));
const ev = (id: string, from: string, to: string, donor: number): Event => ({
  record_id: id, registration_date: '2024-03-04', to, from, sex: '2', age: 7, activity: '', nationality: '01', delay: 0, carried_forward: false, provenance: 0, donor,
});
const cell = (rows: (string | number)[][], ...key: string[]): (string | number)[] => rows.find((r) => key.every((k, i) => r[i + 1] === k))!;

describe('imputed counts (review of 26 Nov)', () => {
  // 70106 → 70114 (two municipalities of one area), 70106 → 70106 (within), another municipality → 70114
  const events = [ev('E1', '70106', '70114', D_SEX), ev('E2', '70106', '70106', D_FROM), ev('E3', '70106', '70114', 0)];
  const { imputed } = tabulate(events, C, 2024);

  test('an imputed sex makes the cells of that sex imputed, not the sex totals of the age table', () => {
    expect(cell(imputed.age_imputed!, 'municipality', '70114', 'T', 'Y5T9').slice(5)).toEqual([0, 0]);
    expect(cell(imputed.age_imputed!, 'municipality', '70114', 'F', 'Y5T9').slice(5)).toEqual([1, 0]);
    expect(cell(imputed.territory_imputed!, 'municipality', '70114', 'T').slice(4)).toEqual([0, 0]);
    expect(cell(imputed.territory_imputed!, 'municipality', '70114', 'F').slice(4)).toEqual([1, 0]);
  });

  test('an imputed origin makes its move type imputed at the destination, never the total', () => {
    expect(cell(imputed.move_type_imputed!, 'municipality', '70106', 'within_municipality')[4]).toBe(1);
    expect(cell(imputed.move_type_imputed!, 'municipality', '70106', 'total')[4]).toBe(0);
    expect(cell(imputed.move_type_imputed!, 'municipality', '70114', 'between_municipalities_same_area')[4]).toBe(0);
    expect(cell(imputed.move_type_imputed!, 'republic', 'RS', 'within_municipality')[4]).toBe(1);
  });
});
