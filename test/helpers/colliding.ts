import { idHash } from '../../pipeline/record-index';

/** Two different strings `${prefix}${i}` with the same idHash, found by the birthday paradox. */
export function collidingPair(prefix = 'R'): [string, string] {
  const seen = new Map<number, string>();
  for (let i = 0; ; i++) {
    const id = `${prefix}${i}`;
    const h = idHash(id);
    const other = seen.get(h);
    if (other !== undefined) return [other, id];
    seen.set(h, id);
  }
}
