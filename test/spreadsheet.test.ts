/**
 * Spreadsheet safety of every output a person may open in a spreadsheet: text cells that begin with = + - @
 * (or a tab or carriage return) are neutralised with a leading apostrophe; plain numbers such as -3 stay
 * numbers. Checked on the real outputs of a month and of a (provisional) year built from an extract whose
 * record ids are formula-like (they reach events, dispositions, changes, violations and quarantine), plus
 * the writers themselves.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import ExcelJS from 'exceljs';
import { parse } from 'csv-parse/sync';
import { generate } from '../fixtures/generator';
import { csvCell, toCsv } from '../pipeline/csv';
import { listFiles } from '../pipeline/fsutil';
import { runMonth } from '../pipeline/month';
import { runYear } from '../pipeline/year';
import { dataCsv } from '../stages/sdmx';
import { INPUT_COLUMNS } from '../stages/ingest';
import { logFor, tmpDir } from './helpers/store';

const DANGER = /^[=+\-@\t\r]/;
const NUMBER = /^-?\d+(\.\d+)?$/;

describe('the CSV writers', () => {
  test.each([
    ['=1+1', "'=1+1"],
    ['+1', "'+1"],
    ['-1+2', "'-1+2"],
    ['@SUM(A1)', "'@SUM(A1)"],
    ['\t=1', "'\t=1"],
    ['-', "'-"],
    ['=HYPERLINK("http://x","y")', `"'=HYPERLINK(""http://x"",""y"")"`],
    ['-3', '-3'],
    ['-3.5', '-3.5'],
    ['0', '0'],
    ['KM', 'KM'],
    ['a=b', 'a=b'],
  ])('csvCell(%j) = %j', (input, out) => {
    expect(csvCell(input)).toBe(out);
  });
  test('numbers stay numbers', () => {
    expect(toCsv(['code', 'net'], [['RS', -3], ['=X', 0]])).toBe("code,net\nRS,-3\n'=X,0\n");
  });
  test('SDMX-CSV neutralises text too (a code list value or note that looked like a formula)', () => {
    const obs = { key: { FREQ: 'A', REF_AREA: '@RS', MIGR_FLOW: 'NET', SEX: 'T', AGE: '_T', MOVE_TYPE: '_T', TIME_PERIOD: '2024' }, value: -3, status: 'A' };
    const csv = dataCsv({ year: 2024, series: '1998-', prepared: '', provisional: false, areas: {} as never, observations: [obs as never], datasetAttributes: { UNIT_MEASURE: 'PERS', UNIT_MULT: '0', SERIES_NOTE: '=cmd|calc' } });
    const row = parse(csv, { relax_column_count: true })[1] as string[];
    expect(row).toContain("'@RS");
    expect(row).toContain("'=cmd|calc");
    expect(row).toContain('-3');
  });
});

describe('every CSV and the workbook of a real month and year', () => {
  const gen = tmpDir();
  const data = tmpDir();
  const s = generate({ year: 2024, out: gen, seed: 5, records: 3000, months: [3] });
  const file = s.files.find((f) => f.endsWith('.csv'))!;
  // formula-like record ids, appended to the generated March: an R whose sex is deduced (a change and a rule
  // failure), its D (linked: the R's id becomes the D's disposition reason), a quarantined form, two plain R
  // forms, and an id that is a plain number
  const base = ['', 'R', '2024-03-20', '2024-03-18', '2001985711236', 'RS', '1', '1985-01-20', '', '7010601', '70106', '', '7011401', '70114', '70114', '01', '1', '2'];
  const row = (id: string, patch: Record<string, string> = {}): string => INPUT_COLUMNS.map((c, i) => (c === 'record_id' ? id : patch[c] ?? base[i]!)).map((v) => (/[",]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v)).join(',');
  const ids = { r: '=HYPERLINK("http://x","y")', d: '@SUM(A1)', q: '+1+2', plain: '-1+2', tab: '\t=1', num: '-3' };
  const extra = [
    row(ids.r, { sex: '' }),
    row(ids.d, { form_type: 'D', registering_office: '70106' }),
    row(ids.q, { form_type: 'X' }),
    row(ids.plain, { person_id: '0909968716237', sex: '2', birth_date: '1968-09-09' }),
    row(ids.tab, { person_id: '3011001711248', birth_date: '2001-11-30' }),
    row(ids.num, { person_id: '', birth_date: '1990-05-05' }),
  ];
  const input = path.join(tmpDir(), path.basename(file));
  fs.writeFileSync(input, fs.readFileSync(file, 'utf8') + extra.join('\n') + '\n');
  const csvs = (): string[] => listFiles(data).filter((f) => /^(months|years)\/.*\.csv$/.test(f));
  const cells = (f: string): string[][] => parse(fs.readFileSync(path.join(data, f), 'utf8'), { relax_column_count: true }) as string[][];
  beforeAll(async () => {
    runMonth({ data, input, log: logFor(data) });
    await runYear({ data, year: 2024, provisional: true, log: logFor(data) });
  }, 60_000);

  test('no cell of any CSV output begins with = + - @ (or tab, CR) unless it is a plain number', () => {
    const files = csvs();
    expect(files).toEqual(expect.arrayContaining([
      'months/2024-03/events.csv', 'months/2024-03/changes.csv', 'months/2024-03/violations.csv', 'months/2024-03/rules.csv', 'months/2024-03/quarantine.csv',
      'months/2024-03/dispositions.csv', 'months/2024-03/tables/territory.csv', 'years/2024/tables/territory.csv', 'years/2024/sdmx/data.csv',
    ]));
    let numbers = 0;
    const bad: string[] = [];
    for (const f of files) {
      for (const r of cells(f)) for (const c of r) {
        if (!DANGER.test(c)) continue;
        if (NUMBER.test(c)) numbers++;
        else bad.push(`${f}: ${JSON.stringify(c)}`);
      }
    }
    expect(bad).toEqual([]);
    expect(numbers).toBeGreaterThan(0); // negative nets and the id -3
  });

  test('the formula-like ids reach the outputs, neutralised', () => {
    const col = (f: string, name: string): string[] => { const [h, ...rows] = cells(`months/2024-03/${f}`); const k = h!.indexOf(name); return rows.map((r) => r[k]!); };
    const n = (v: string): string => `'${v}`;
    expect(col('events.csv', 'record_id')).toEqual(expect.arrayContaining([n(ids.r), n(ids.plain), n(ids.tab), ids.num]));
    expect(col('changes.csv', 'record_id')).toContain(n(ids.r));
    expect(col('violations.csv', 'record_id')).toContain(n(ids.r));
    expect(col('quarantine.csv', 'record_id')).toContain(n(ids.q));
    expect(col('dispositions.csv', 'record_id')).toEqual(expect.arrayContaining([n(ids.r), n(ids.d), n(ids.q)]));
    expect(col('dispositions.csv', 'reason')).toContain(n(ids.r)); // the D is linked to the R
  });

  test('negative net migration stays a number, unquoted', () => {
    for (const f of ['months/2024-03/tables/territory.csv', 'years/2024/tables/territory.csv']) {
      const text = fs.readFileSync(path.join(data, f), 'utf8');
      expect(text).toMatch(/,-\d+\n/);
      expect(text).not.toMatch(/'-\d/);
    }
  });

  test('the workbook: no formula cell, no text cell beginning with = + - @, negative nets are numbers', async () => {
    const wb = new ExcelJS.Workbook();
    await wb.xlsx.load(fs.readFileSync(path.join(data, 'years', '2024', 'tables.xlsx')) as unknown as ArrayBuffer);
    let negatives = 0, texts = 0;
    const bad: string[] = [];
    for (const ws of wb.worksheets) {
      ws.eachRow((r) => r.eachCell((c) => {
        if (c.type === ExcelJS.ValueType.Formula) bad.push(`${ws.name}!${c.address} is a formula`);
        if (typeof c.value === 'string') { texts++; if (DANGER.test(c.value)) bad.push(`${ws.name}!${c.address} = ${c.value}`); }
        if (typeof c.value === 'number' && c.value < 0) negatives++;
      }));
    }
    expect(bad).toEqual([]);
    expect(texts).toBeGreaterThan(100);
    expect(negatives).toBeGreaterThan(0);
  });
});
