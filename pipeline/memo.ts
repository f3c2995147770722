/**
 * A function of a string, computed once per distinct argument: hot loops look up the few hundred or thousand
 * distinct codes, dates and dimension values of tens of thousands of rows (undefined results are memoised too).
 * The last argument and its result are kept beside the map: the SDMX writers look up each dimension of
 * observations in publication order, where most dimensions repeat the previous observation's value, and a
 * string comparison costs less than a hash lookup.
 */
export class KeyedCache<T = string> {
  private readonly m = new Map<string, T>();
  private lastKey: string | undefined;
  private lastValue: T | undefined;
  constructor(private readonly make: (v: string) => T) {}
  get(v: string): T {
    if (v === this.lastKey) return this.lastValue as T;
    let s = this.m.get(v);
    if (s === undefined && !this.m.has(v)) this.m.set(v, (s = this.make(v))); // one lookup when present and defined
    this.lastKey = v;
    this.lastValue = s;
    return s as T;
  }
}
