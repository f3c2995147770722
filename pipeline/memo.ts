import { idHash } from './record-index';
/*
 * LOOP_TAIL — how the per-form loops are written (V8, the engine of Node 20). A function called once per month
 * whose loop runs over the ~20 000 forms is compiled by V8 while it runs, on the stack (on-stack replacement),
 * with the type feedback gathered so far: the code after the loop has never run, so it has none. That compiled
 * code is kept and entered again in every later call, and it deoptimises where the loop ends, every month (and
 * the function is compiled again, ~10–60 ms each time for the large ones). So a hot loop stands alone in a
 * function, or everything the function does after the loop is a `return` of a value made before it (counts are
 * kept in a small typed array filled inside the loop). And `array.map` is not used for arrays such loops read:
 * it makes a packed array in the interpreter and a holey one in optimised code, so code compiled for one was
 * deoptimised whenever the caller changed tier (the rules' 27 functions, every few months).
 */

/**
 * xs.map(f) as a packed array whichever tier runs it: Array.prototype.map makes a packed array in V8's interpreter
 * and a holey one once its caller is optimised, and a loop compiled for one kind was deoptimised when the other
 * came (LOOP_TAIL, above). For the arrays the per-form loops read.
 */
export function packedMap<T, U>(xs: readonly T[], f: (x: T, i: number) => U): U[] {
  const out: U[] = [];
  for (let i = 0; i < xs.length; i++) out.push(f(xs[i]!, i));
  return out;
}

/**
 * A function of a string, computed once per distinct argument: hot loops look up the few hundred or thousand
 * distinct codes, dates and dimension values of tens of thousands of rows (undefined results are memoised too).
 * The last argument and its result are kept beside the map: the SDMX writers look up each dimension of
 * observations in publication order, where most dimensions repeat the previous observation's value, and a
 * string comparison costs less than a hash lookup.
 */
export class KeyedCache<T = string, A = undefined> {
  private readonly m = new Map<string, T>();
  private lastKey: string | undefined;
  private lastValue: T | undefined;
  /**
   * `make(v, arg)`: what make needs besides v comes as `arg`, so that make can be a module-level function rather than
   * a closure made per call (V8 compiles a closure made afresh on each call afresh too: see stages/month.ts).
   */
  constructor(private readonly make: (v: string, arg: A) => T, private readonly arg?: A) {}
  get(v: string): T {
    if (v === this.lastKey) return this.lastValue as T;
    let s = this.m.get(v);
    if (s === undefined && !this.m.has(v)) this.m.set(v, (s = this.make(v, this.arg as A))); // one lookup when present and defined
    this.lastKey = v;
    this.lastValue = s;
    return s as T;
  }
}

/**
 * A row per distinct string of a column (a record id, a person): an open-addressing table of typed arrays keyed by
 * the string's idHash, whose slots hold rows of the column; strings are compared only when their hashes are equal.
 * For the loops over a month's forms that find a form by its record id or person: a Map<string, number> cost
 * ~4 ms for 21 000 forms, this ~0.6 ms. The caller may keep what it needs per key in arrays indexed by slot.
 */
export class RowTable {
  private readonly mask: number;
  private readonly hash: Int32Array;
  private readonly rows: Int32Array; // -1: an empty slot
  private h = 0; // the hash of the key slot() was last asked about
  /** n: how many distinct keys at most; keys: the column (a slot holds row i for the key keys[i]) */
  constructor(n: number, private readonly keys: readonly string[]) {
    let size = 16;
    while (size < 2 * n) size *= 2;
    this.mask = size - 1;
    this.hash = new Int32Array(size);
    this.rows = new Int32Array(size).fill(-1);
  }
  /** The slot of `key`: where it is, or the empty one where it goes (until set is called, no other key is put). */
  slot(key: string): number {
    const h = (this.h = idHash(key));
    for (let s = h & this.mask; ; s = (s + 1) & this.mask) {
      const r = this.rows[s]!;
      if (r < 0 || (this.hash[s] === h && this.keys[r] === key)) return s;
    }
  }
  /** The row in a slot; -1 if empty. */
  at(slot: number): number {
    return this.rows[slot]!;
  }
  /** Row i, whose key slot() was last asked about and gave this slot, is now the one its slot holds. */
  set(slot: number, i: number): void {
    this.hash[slot] = this.h;
    this.rows[slot] = i;
  }
  /** The number of slots (for arrays indexed by slot). */
  get size(): number {
    return this.mask + 1;
  }
}
