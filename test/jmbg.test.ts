/** The pseudonym is HMAC-SHA-256 (RFC 2104) of the JMBG under the key: the fast path equals Node's createHmac. */
import * as crypto from 'node:crypto';
import fc from 'fast-check';
import { Pseudonymiser } from '../stages/jmbg';

test('Pseudonymiser.of equals createHmac for any key and any 13-digit or other value', () => {
  fc.assert(fc.property(fc.string({ minLength: 16, maxLength: 100 }), fc.oneof(fc.stringMatching(/^[0-9]{13}$/), fc.string({ minLength: 1, maxLength: 20 })), (key, j) => {
    const expected = crypto.createHmac('sha256', key).update(j).digest('hex').slice(0, 32);
    expect(new Pseudonymiser(key).of(j)).toBe(expected);
  }), { seed: 42, numRuns: 500 });
  expect(new Pseudonymiser('0123456789abcdef').of('')).toBe('');
});
