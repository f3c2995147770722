/**
 * A function of a string, computed once per distinct argument: hot loops look up the few hundred or thousand
 * distinct codes, dates and dimension values of tens of thousands of rows (undefined results are memoised too).
 */
export class KeyedCache<T = string> {
  private readonly m = new Map<string, T>();
  constructor(private readonly make: (v: string) => T) {}
  get(v: string): T {
    let s = this.m.get(v);
    if (s === undefined && !this.m.has(v)) this.m.set(v, (s = this.make(v))); // one lookup when present and defined
    return s as T;
  }
}
