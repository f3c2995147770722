/** KeyedCache: one computation per distinct argument, whatever the order of the lookups (the last one is kept aside). */
import { KeyedCache } from '../pipeline/memo';

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
