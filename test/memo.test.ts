/**
 * KeyedCache: one computation per distinct argument, whatever the order of the lookups (the last one is kept aside).
 * RowTable: a row per distinct string, as a Map would hold it.
 * packedMap: what Array.prototype.map gives (values, order, index argument), with no holes.
 */
import fc from 'fast-check';
import { KeyedCache, packedMap, RowTable } from '../pipeline/memo';
import { idHash } from '../pipeline/record-index';
import { collidingPair } from './helpers/colliding';

describe('KeyedCache', () => {
  test('computes each distinct argument once and answers repeats, runs and alternations alike', () => {
    const calls: string[] = [];
    const c = new KeyedCache((v) => { calls.push(v); return `<${v}>`; });
    const seq = ['a', 'a', 'b', 'a', 'b', 'b', 'c', 'a', 'c', 'c'];
    expect(seq.map((v) => c.get(v))).toEqual(seq.map((v) => `<${v}>`));
    expect(calls).toEqual(['a', 'b', 'c']);
  });

  test('undefined results are memoised too, also as the last lookup', () => {
    let n = 0;
    const c = new KeyedCache<string | undefined>((v) => { n++; return v === 'none' ? undefined : v; });
    expect([c.get('none'), c.get('none'), c.get('x'), c.get('none'), c.get('x')]).toEqual([undefined, undefined, 'x', undefined, 'x']);
    expect(n).toBe(2);
  });

  test('an argument equal to the last one but another string object gives the same result', () => {
    const c = new KeyedCache((v) => ({ v }));
    const first = c.get('abc');
    expect(c.get(['a', 'b', 'c'].join(''))).toBe(first);
  });
});

describe('RowTable', () => {
  test('for any column, the row a key\'s slot holds is the one a Map would give (keys colliding in their hash included)', () => {
    const pair = collidingPair('P');
    expect(idHash(pair[0])).toBe(idHash(pair[1]));
    fc.assert(
      fc.property(fc.array(fc.constantFrom('a', 'b', '', 'ab', 'é', pair[0], pair[1]), { maxLength: 60 }), fc.array(fc.constantFrom('a', 'zz', pair[0], pair[1], pair[0] + 'x')), (col, asked) => {
        const t = new RowTable(col.length, col);
        const m = new Map<string, number>();
        col.forEach((k, i) => {
          const s = t.slot(k);
          expect(t.at(s)).toBe(m.get(k) ?? -1); // the row put last for k, before this one
          t.set(s, i);
          m.set(k, i);
        });
        for (const k of [...col, ...asked]) expect(t.at(t.slot(k))).toBe(m.get(k) ?? -1);
        // distinct keys, distinct slots
        const slots = new Set([...m.keys()].map((k) => t.slot(k)));
        expect(slots.size).toBe(m.size);
      }),
      { numRuns: 300, seed: 20261126 },
    );
  });
});

describe('packedMap', () => {
  test('gives what map gives, for any array (undefined elements and results included)', () => {
    fc.assert(fc.property(fc.array(fc.oneof(fc.string(), fc.constant(undefined))), (xs) => {
      const f = (x: string | undefined, i: number): string => `${i}:${x === undefined ? '-' : x}`;
      const got = packedMap(xs, f);
      expect(got).toEqual(xs.map(f));
      expect(got.length).toBe(xs.length);
      for (let i = 0; i < got.length; i++) expect(i in got).toBe(true); // no holes
    }));
  });
});
