/** The pseudonym is HMAC-SHA-256 (RFC 2104) of the JMBG under the key: the fast path (SHA-256 in JavaScript from the key's precomputed states) equals Node's createHmac. */
import * as crypto from 'node:crypto';
import fc from 'fast-check';
import { DEMO_KEY as DEMO, Pseudonymiser } from '../stages/jmbg';

test('Pseudonymiser.of equals createHmac for any key and any 13-digit or other value', () => {
  fc.assert(fc.property(fc.string({ minLength: 16, maxLength: 100 }), fc.oneof(fc.stringMatching(/^[0-9]{13}$/), fc.string({ minLength: 1, maxLength: 20 })), (key, j) => {
    const expected = crypto.createHmac('sha256', key).update(j).digest('hex').slice(0, 32);
    expect(new Pseudonymiser(key).of(j)).toBe(expected);
  }), { seed: 42, numRuns: 500 });
  expect(new Pseudonymiser('0123456789abcdef').of('')).toBe('');
});

test('the JavaScript HMAC equals createHmac for 13-digit JMBGs under any key: non-ASCII keys, keys of 64 bytes and longer (hashed first)', () => {
  const key = fc.oneof(fc.string({ minLength: 16, maxLength: 200 }), fc.string({ unit: 'grapheme', minLength: 16, maxLength: 40 }), fc.string({ unit: 'binary', minLength: 16, maxLength: 70 }), fc.integer({ min: 60, max: 68 }).map((n) => 'k'.repeat(n)));
  fc.assert(fc.property(key, fc.array(fc.stringMatching(/^[0-9]{13}$/), { minLength: 1, maxLength: 20 }), (k, js) => {
    const p = new Pseudonymiser(k);
    for (const j of js) expect(p.of(j)).toBe(crypto.createHmac('sha256', k).update(j).digest('hex').slice(0, 32));
  }), { seed: 11, numRuns: 1000 });
  // fixed cases: all zeros, all nines, ascending and descending digits
  const p = new Pseudonymiser(DEMO);
  for (const j of ['0000000000000', '9999999999999', '0123456789012', '9876543210987']) expect(p.of(j)).toBe(crypto.createHmac('sha256', DEMO).update(j).digest('hex').slice(0, 32));
});
