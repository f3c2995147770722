/** ESMS 11.2 year-on-year flags: when the comparison is made, what it leaves out, and changes from 0 (review of 26 Nov). */
import { writeResultsDir } from '../pipeline/month';
import { Store } from '../pipeline/store';
import { yoyFlags } from '../pipeline/year';
import { loadClassification } from '../stages/territory';
import { quality, tmp } from './helpers/results-store';

const C = loadClassification();
const CFG = { threshold_pct: 20, min_count: 5 };
const HEAD = 'series,level,code,sex,immigrants,emigrants,net\n';
/** a store holding the annual territory table of `year` (rows: level,code,imm,emi), provisional or not */
function storeWith(year: number, rows: [string, string, number, number][], provisional = false): Store {
  const s = new Store(tmp('migstat-yoy-'));
  const series = year <= 1997 ? '1991-1997' : '1998-';
  const csv = HEAD + rows.map(([l, c, i, e]) => `${series},${l},${c},T,${i},${e},${i - e}\n`).join('');
  writeResultsDir(s.yearDir(year), new Map(Object.entries({ 'tables/territory.csv': csv, 'quality.json': JSON.stringify(quality(String(year), { provisional })) })), { kind: 'year', id: String(year), code_version: 't', parameters: {}, inputs: [], counts: {} });
  return s;
}
const cur = (series: string, rows: [string, string, number, number][]) => rows.map(([l, c, i, e]) => [series, l, c, 'T', i, e, i - e]);

test('not compared, and the note says why: no previous year, a provisional year on either side, a new series', () => {
  const rows: [string, string, number, number][] = [['municipality', '70106', 100, 80]];
  expect(yoyFlags(new Store(tmp('migstat-yoy-')), 2024, cur('1998-', rows), CFG, false, C)).toEqual({ note: 'not compared: no annual results of 2023 in the store' });
  expect(yoyFlags(storeWith(2023, rows), 2024, cur('1998-', rows), CFG, true, C)).toEqual({ note: 'not compared: a provisional year' });
  expect(yoyFlags(storeWith(2023, rows, true), 2024, cur('1998-', rows), CFG, false, C)).toEqual({ note: 'not compared: the results of 2023 are provisional' });
  expect(yoyFlags(storeWith(1997, rows), 1998, cur('1998-', rows), CFG, false, C)).toEqual({ note: 'not compared: the first year of the series 1998- (not comparable with 1997)' });
});

test('compared: over the threshold flagged; from 0 flagged with an undefined percentage; 0 to 0 never; changed territories left out and named', () => {
  const prev = storeWith(2018, [['municipality', '70106', 100, 80], ['municipality', '70114', 0, 10], ['municipality', '70092', 0, 0], ['municipality', '80284', 100, 100], ['municipality', '80519', 5, 5]]);
  const r = yoyFlags(prev, 2019, cur('1998-', [['municipality', '70106', 130, 81], ['municipality', '70114', 7, 10], ['municipality', '70092', 0, 0], ['municipality', '89010', 173, 90]]), { threshold_pct: 20, min_count: 0 }, false, C);
  expect(r.flags).toEqual([
    { code: '70106', level: 'municipality', measure: 'immigrants', previous: 100, current: 130, change_pct: 30 },
    { code: '70114', level: 'municipality', measure: 'immigrants', previous: 0, current: 7, change_pct: null },
  ]);
  // Novi Sad 89010 (the merge of 80284 and 80519 in 2019) has no comparable previous figure
  expect(r.note).toBe('not compared (new, or their territory changed during 2019): 89010');
});
