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
