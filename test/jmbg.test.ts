/**
 * The pseudonym is HMAC-SHA-256 (RFC 2104) of the JMBG under the key: the fast path equals Node's createHmac.
 * Ingest's fast decoding of a JMBG that encodes the stated birth date gives decodeJmbg's answer.
 */
import * as crypto from 'node:crypto';
import fc from 'fast-check';
import { decodeJmbg, jmbgSex, Pseudonymiser, validWithBirthDate } from '../stages/jmbg';

test('Pseudonymiser.of equals createHmac for any key and any 13-digit or other value', () => {
  fc.assert(fc.property(fc.string({ minLength: 16, maxLength: 100 }), fc.oneof(fc.stringMatching(/^[0-9]{13}$/), fc.string({ minLength: 1, maxLength: 20 })), (key, j) => {
    const expected = crypto.createHmac('sha256', key).update(j).digest('hex').slice(0, 32);
    expect(new Pseudonymiser(key).of(j)).toBe(expected);
  }), { seed: 42, numRuns: 500 });
  expect(new Pseudonymiser('0123456789abcdef').of('')).toBe('');
});

test('a valid JMBG encoding the stated birth date: valid, sex and birth date as decodeJmbg gives them', () => {
  // JMBGs of any digits, dates built from them (so that they often match) or altered, and odd strings
  const jmbg = fc.oneof(fc.stringMatching(/^[0-9]{13}$/), fc.stringMatching(/^(0[1-9]|[12][0-9]|3[01])(0[1-9]|1[0-2])(9[0-9]{2}|0[0-2][0-9])[0-9]{6}$/), fc.string({ maxLength: 14 }));
  const variant = fc.constantFrom('same', 'other-year', 'other-day', 'slashes', 'short', 'random');
  let matched = 0;
  fc.assert(fc.property(jmbg, variant, fc.string({ maxLength: 11 }), (j, v, random) => {
    const d = decodeJmbg(j);
    const built = /^[0-9]{13}$/.test(j) ? `${+j.slice(4, 7) >= 800 ? 1000 + +j.slice(4, 7) : 2000 + +j.slice(4, 7)}-${j.slice(2, 4)}-${j.slice(0, 2)}` : '';
    const date = { same: built, 'other-year': built && `${+built.slice(0, 4) + 1}${built.slice(4)}`, 'other-day': built && `${built.slice(0, 8)}${built.slice(9)}${built[8]}`, slashes: built.replace(/-/g, '/'), short: built.slice(1), random }[v]!;
    // valid with that birth date exactly when decodeJmbg finds the JMBG valid and encoding it; then its answer is this
    expect(validWithBirthDate(j, date)).toBe(d.valid && d.birthDate === date);
    if (validWithBirthDate(j, date)) {
      matched++;
      expect({ valid: true, sex: jmbgSex(j), birthDate: date }).toEqual(d); // what ingest writes on its fast path
    }
  }), { seed: 7, numRuns: 6000 });
  expect(matched).toBeGreaterThan(20); // the fast path itself was exercised
});
