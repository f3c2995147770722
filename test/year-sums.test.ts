/** The annual sums read straight from the months' table files give what readTable + sumTables give, errors included. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readTable } from '../pipeline/csv';
import { sumTableFiles } from '../pipeline/year';
import { sumTables, type Table } from '../stages/tabulate';
import { tmpDir } from './helpers/store';

const HEADER = ['series', 'level', 'code', 'sex', 'immigrants', 'emigrants', 'net'];
const month = (rows: string[]): string => `${HEADER.join(',')}\n${rows.map((r) => `${r}\n`).join('')}`;
const A = ['1998-,republic,RS,T,10,7,3', '1998-,region,RS11,M,0,-2,2', '1998-,municipality,70106,F,123456789012,5,123456789007'];

function both(texts: string[]): { fast: Table | Error; general: Table | Error } {
  const dir = tmpDir();
  const files = texts.map((t, i) => {
    const f = path.join(dir, `m${i}.csv`);
    fs.writeFileSync(f, t);
    return f;
  });
  const run = (fn: () => Table): Table | Error => {
    try {
      return fn();
    } catch (e) {
      return e as Error;
    }
  };
  return { fast: run(() => sumTableFiles(files, HEADER, 4)), general: run(() => sumTables(files.map((f) => readTable(f, HEADER) as Table), 4)) };
}

describe('sumTableFiles', () => {
  test.each([
    ['twelve equal months', Array.from({ length: 12 }, () => month(A))],
    ['one month', [month(A)]],
    ['decimals, an exponent, an empty cell, -0', [month(A), month(['1998-,republic,RS,T,1.5,1e3,-0', '1998-,region,RS11,M,,0,0', A[2]!])]],
    ['keys differ', [month(A), month([A[0]!, '1998-,region,RS12,M,0,-2,2', A[2]!])]],
    ['a missing row', [month(A), month(A.slice(0, 2))]],
    ['an extra field', [month(A), month([A[0]!, `${A[1]},9`, A[2]!])]],
    ['a missing field', [month(A), month([A[0]!, '1998-,region,RS11,M,0,-2', A[2]!])]],
    ['another header', [month(A), month(A).replace('net', 'saldo')]],
    ['quotes', [month(A), month([A[0]!, '"1998-",region,RS11,M,0,-2,2', A[2]!])]],
    ['CRLF', [month(A), month(A).replace(/\n/g, '\r\n')]],
    ['no final newline', [month(A), month(A).slice(0, -1)]],
  ])('%s', (_name, texts) => {
    const { fast, general } = both(texts);
    if (general instanceof Error) expect(fast instanceof Error ? fast.message : fast).toBe(general.message);
    else expect(fast).toEqual(general);
  });

  // the key columns are compared four bytes at a time, then byte by byte: a change at any byte of any key,
  // in the words or in the tail (keys of every length modulo 4), is seen exactly as the general way sees it
  test('a key changed at any one byte', () => {
    const rows = ['1998-,region,RS1,T,1,1,0', '1998-,area,RS11,M,2,1,1', '1998-,area,RS112,F,3,1,2', '1998-,municipality,70106,T,4,1,3'];
    for (let r = 0; r < rows.length; r++) {
      const keyLen = rows[r]!.split(',').slice(0, 4).join(',').length;
      for (let j = 0; j < keyLen; j++) {
        const row = rows[r]!;
        const changed = rows.map((x, i) => (i === r ? `${row.slice(0, j)}${row[j] === 'X' ? 'Y' : 'X'}${row.slice(j + 1)}` : x));
        const { fast, general } = both([month(rows), month(rows), month(changed)]);
        if (general instanceof Error) expect(fast instanceof Error ? fast.message : fast).toBe(general.message);
        else expect(fast).toEqual(general);
      }
    }
  });
});
