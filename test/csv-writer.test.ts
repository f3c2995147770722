/**
 * The month's CSV files are written by CsvWriter straight into bytes (pipeline/csv.ts); csvCell/toCsv/objectsToCsv
 * are the rules of record (RFC 4180 quoting, formula neutralisation for spreadsheets). Property: for any cells, the
 * writer's bytes are the UTF-8 bytes of the text functions, so a speed-up can never change a published byte.
 */
import fc from 'fast-check';
import { CsvWriter, objectsToCsv, objectsToCsvBytes, toCsv, toCsvBytes } from '../pipeline/csv';

// strings that exercise every rule: quotes, separators, line ends, formula starts, non-ASCII, digits
const tricky = fc.oneof(
  fc.string(),
  fc.string({ unit: fc.constantFrom('a', '1', '0', ',', '"', '\n', '\r', '\t', '=', '+', '-', '@', ' ', 'š', 'Ђ', '€', '😀', '.', 'e') }),
  fc.constantFrom('', '=1+1', '+381', '-5', '-5.5', '@SUM(A1)', '\tx', '\rx', '0', '007', '"', '""', 'a,b', 'line\nbreak'),
);
const num = fc.oneof(fc.integer(), fc.double(), fc.constantFrom(0, -0, 9, 10, -1, 1e21, 2 ** 53, 0.1, Number.NaN, Infinity, -Infinity));
const cell = fc.oneof(tricky, num, fc.constantFrom(null, undefined, true, false));

describe('CsvWriter writes the bytes of csvCell/toCsv', () => {
  test('toCsvBytes = UTF-8 of toCsv, for any rows', () => {
    fc.assert(
      fc.property(fc.array(tricky, { minLength: 1, maxLength: 6 }), fc.array(fc.array(cell, { maxLength: 8 }), { maxLength: 20 }), (header, rows) => {
        expect(toCsvBytes(header, rows).equals(Buffer.from(toCsv(header, rows), 'utf8'))).toBe(true);
      }),
      { numRuns: 500, seed: 20261126 },
    );
  });

  test('objectsToCsvBytes = UTF-8 of objectsToCsv, missing keys included', () => {
    const keys = ['record_id', 'a b', 'x-y', 'v'];
    fc.assert(
      fc.property(fc.array(fc.dictionary(fc.constantFrom(...keys), cell), { maxLength: 20 }), (rows) => {
        expect(objectsToCsvBytes(keys, rows).equals(Buffer.from(objectsToCsv(keys, rows), 'utf8'))).toBe(true);
      }),
      { numRuns: 500, seed: 20261127 },
    );
  });

  test('lines appended from another writer are copied as they are, across buffer growth', () => {
    const body = new CsvWriter(null);
    const rows: unknown[][] = [];
    for (let i = 0; i < 5000; i++) { const r = [`id${i}`, i % 7 === 0 ? '=bad' : 'ok', i, -i / 3]; rows.push(r); body.row(r); }
    const w = new CsvWriter(['id', 'text', 'n', 'x']);
    w.row(['first', 'a,b', 1, 2]);
    w.append(body);
    expect(w.result().equals(Buffer.from(toCsv(['id', 'text', 'n', 'x'], [['first', 'a,b', 1, 2], ...rows]), 'utf8'))).toBe(true);
  });
});
