/**
 * The population file and the rates per 1 000 population: rounding, every way a population file can be
 * wrong (each error names file, line and field), and `migstat year --population` end to end on the
 * worked example. The rates of whole generated years against the truth are in years-truth.test.ts.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { populationCsv } from '../fixtures/gen/population';
import { main } from '../pipeline/cli';
import { readCsvText } from '../pipeline/csv';
import { runMonth } from '../pipeline/month';
import { loadPopulation, ratePerThousand } from '../stages/population';
import { loadClassification } from '../stages/territory';
import { WE, logFor, tmpDir } from './helpers/store';

const C = loadClassification();
const dir = tmpDir();
const write = (name: string, text: string): string => {
  const f = path.join(dir, name);
  fs.writeFileSync(f, text);
  return f;
};
/** A valid file for the year, as lines (header first), to be spoilt line by line. */
const good = (year: number): string[] => populationCsv(C, year, 3).trimEnd().split('\n');

describe('ratePerThousand: 1000 × count / population to one decimal, half away from zero, exact', () => {
  test.each([
    [0, 1000, '0.0'],
    [1, 400, '2.5'],
    [1, 20000, '0.1'], // exactly 0.05: away from zero
    [1, 20001, '0.0'],
    [-1, 20000, '-0.1'],
    [-1, 30000, '0.0'], // -0.033…: no "-0.0"
    [145, 100000, '1.5'], // 1.45: toFixed(1) would say 1.4 (binary 1.4499…)
    [-145, 100000, '-1.5'], // Math.round(-14.5) would say -1.4
    [149511, 6647003, '22.5'], // 22.4930 (Republic 2022: SORS's published migrants over the 2022 census)
    [3, 7, '428.6'],
    [-2500, 1000, '-2500.0'],
  ])('%i per %i → %s', (count, pop, want) => {
    expect(ratePerThousand(count, pop)).toBe(want);
  });
  test('refuses a population that is not a positive whole number', () => {
    expect(() => ratePerThousand(1, 0)).toThrow(/positive population/);
    expect(() => ratePerThousand(1, 2.5)).toThrow(/integers/);
  });
});

describe('loadPopulation: what a population file must be', () => {
  test('a valid file gives every municipality of the year; rows of other years are ignored', () => {
    const f = write('two-years.csv', [...good(2024), ...good(2023).slice(1)].join('\n') + '\n');
    const pop = loadPopulation(f, C, 2024);
    expect([...pop.keys()]).toEqual(C.unitsForYear(2024).map((m) => m.code));
    const want = new Map(good(2024).slice(1).map((l) => [l.split(',')[0]!, Number(l.split(',')[2])]));
    expect(pop).toEqual(want);
    // columns in another order, a BOM and CRLF line ends are fine
    const reordered = good(2024).map((l) => { const [c, y, p] = l.split(','); return `${p},${c},${y}`; });
    expect(loadPopulation(write('reordered.csv', '\ufeff' + reordered.join('\r\n') + '\r\n'), C, 2024)).toEqual(want);
  });

  const spoil = (year: number, lineNo: number, edit: (cells: string[]) => string[]): string => {
    const lines = good(year);
    lines[lineNo - 1] = edit(lines[lineNo - 1]!.split(',')).join(',');
    return write(`spoilt-${year}-${lineNo}.csv`, lines.join('\n') + '\n');
  };

  test.each([
    ['a decimal population', (c: string[]) => [c[0]!, c[1]!, '12500.5'], /spoilt-2024-5\.csv line 5: .*\/population must match pattern/],
    ['a negative population', (c: string[]) => [c[0]!, c[1]!, '-3'], /line 5: .*\/population/],
    ['a zero population', (c: string[]) => [c[0]!, c[1]!, '0'], /line 5: .*\/population/],
    ['an empty population', (c: string[]) => [c[0]!, c[1]!, ''], /line 5: .*\/population/],
    ['a thousands separator', (c: string[]) => [c[0]!, c[1]!, '12 500'], /line 5: .*\/population/],
    ['a code that is not 5 digits', (c: string[]) => ['7010', c[1]!, c[2]!], /line 5: .*\/code must match pattern/],
    ['a year that is not a year', (c: string[]) => [c[0]!, '24', c[2]!], /line 5: .*\/year must match pattern/],
  ])('%s: refused, naming file, line and field', (_what, edit, msg) => {
    expect(() => loadPopulation(spoil(2024, 5, edit), C, 2024)).toThrow(msg);
  });

  test('a row with a field too many: refused with its line', () => {
    expect(() => loadPopulation(spoil(2024, 7, (c) => [...c, '1']), C, 2024)).toThrow(/spoilt-2024-7\.csv: .*line 7/);
  });

  test('a wrong header: refused, naming line 1 and the header expected', () => {
    const lines = good(2024);
    lines[0] = 'code,year,pop';
    expect(() => loadPopulation(write('header.csv', lines.join('\n')), C, 2024)).toThrow(/header\.csv line 1: header must be code,year,population, not "code,year,pop"/);
  });

  test('a municipality missing for the year: refused, naming it', () => {
    const lines = good(2024);
    const gone = lines.splice(10, 1)[0]!.split(',')[0]!;
    expect(() => loadPopulation(write('missing.csv', lines.join('\n')), C, 2024)).toThrow(new RegExp(`missing\\.csv: no population for 2024 of 1 of the ${C.unitsForYear(2024).length} municipalities .*: ${gone}$`));
    expect(() => loadPopulation(write('other-year.csv', good(2023).join('\n')), C, 2024)).toThrow(/no population for 2024 of 1\d\d of the 1\d\d municipalities/);
  });

  test('a municipality given twice, one abolished before 31 December, one of K&M in the series 1998-, an unknown code', () => {
    const lines = good(2024);
    expect(() => loadPopulation(write('twice.csv', [...lines, lines[3]].join('\n')), C, 2024)).toThrow(new RegExp(`twice\\.csv line ${lines.length + 1}: field code: ${lines[3]!.split(',')[0]} is given twice for 2024 \\(first on line 4\\)`));
    // Novi Sad's two municipalities 80284/80519 were replaced by 89010 in 2019
    expect(() => loadPopulation(write('abolished.csv', [...lines, '80284,2024,1000'].join('\n')), C, 2024)).toThrow(/abolished\.csv line \d+: field code: 80284 is not a unit of the classification of 31 December 2024/);
    const km = [...C.municipalities.values()].find((m) => C.isKM(m.code))!.code;
    expect(() => loadPopulation(write('km.csv', [...good(1998), `${km},1998,1000`].join('\n')), C, 1998)).toThrow(new RegExp(`km\\.csv line \\d+: field code: ${km} is a K&M municipality, not covered by the series 1998-`));
    // …while in 1997 the K&M municipalities are required
    expect(good(1997).some((l) => l.startsWith(`${km},`))).toBe(true);
    expect(() => loadPopulation(write('unknown.csv', [...lines, '12345,2024,1000'].join('\n')), C, 2024)).toThrow(/unknown\.csv line \d+: field code: 12345 is not a municipality code/);
  });

  test('a file that does not exist', () => {
    expect(() => loadPopulation(path.join(dir, 'nope.csv'), C, 2024)).toThrow(/population file not found: .*nope\.csv/);
  });
});

describe('migstat year --population (worked example, provisional)', () => {
  const data = tmpDir();
  const settlements = path.join(WE, 'settlements.csv');
  let stderr: string[];
  const run = async (...args: string[]): Promise<number> => {
    stderr = [];
    const spyErr = jest.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => { stderr.push(String(s)); return true; });
    const spyOut = jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
    try {
      return await main(['node', 'migstat', ...args]);
    } finally {
      spyErr.mockRestore();
      spyOut.mockRestore();
    }
  };
  beforeAll(() => {
    runMonth({ data, input: path.join(WE, 'moi_2024_02.csv'), settlements, log: logFor(data) });
  });

  test('a bad population file: exit 1, one line naming file, line and field; nothing written', async () => {
    const lines = good(2024);
    lines[3] = lines[3]!.replace(/,\d+$/, ',1.5e4');
    const bad = write('bad.csv', lines.join('\n'));
    expect(await run('year', '--year', '2024', '--provisional', '--data', data, '--settlements', settlements, '--population', bad)).toBe(1);
    expect(stderr.join('')).toMatch(/^migstat: bad\.csv line 4: does not match schema population: \/population must match pattern.*\n$/);
    expect(fs.existsSync(path.join(data, 'years', '2024'))).toBe(false);
  });

  test('a good one: tables/rates.csv, one row per territory, rates of the annual territory table', async () => {
    const f = write('population.csv', good(2024).join('\n') + '\n');
    expect(await run('year', '--year', '2024', '--provisional', '--data', data, '--settlements', settlements, '--population', f)).toBe(0);
    const rates = readCsvText(fs.readFileSync(path.join(data, 'years', '2024', 'tables', 'rates.csv'), 'utf8'));
    const terr = readCsvText(fs.readFileSync(path.join(data, 'years', '2024', 'tables', 'territory.csv'), 'utf8')).filter((r) => r.sex === 'T');
    expect(rates.map((r) => `${r.level}:${r.code}`)).toEqual(terr.map((r) => `${r.level}:${r.code}`));
    const popOf = new Map(good(2024).slice(1).map((l) => [l.split(',')[0]!, Number(l.split(',')[2])]));
    // Voždovac (70106) received the example's one February migrant
    const v = rates.find((r) => r.code === '70106')!;
    expect(v.population).toBe(String(popOf.get('70106')));
    expect(terr.find((r) => r.code === '70106')!.immigrants).toBe('1');
    expect(v.immigration_rate).toBe(ratePerThousand(1, popOf.get('70106')!));
    const rs = rates.find((r) => r.level === 'republic')!;
    expect(Number(rs.population)).toBe([...popOf.values()].reduce((a, b) => a + b, 0));
    expect(rs.immigration_rate).toBe('0.0');
    // without --population: no rates table (and the same command is otherwise unchanged)
    expect(await run('year', '--year', '2024', '--provisional', '--data', data, '--settlements', settlements)).toBe(0);
    expect(fs.existsSync(path.join(data, 'years', '2024', 'tables', 'rates.csv'))).toBe(false);
  });
});
