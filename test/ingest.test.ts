/** Bad input: every malformed case gives a clear error naming file, line and field, or a quarantine reason. */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { CONTENT_COLUMNS, contentDigests, contentKey, ContentKeys, decodeExtract, FORM_COLUMNS, INPUT_COLUMNS, InputError, parseExtract, recordRowSchema, recordUnpooledSchema, schemaCheck, toForms } from '../stages/ingest';
import { validator } from '../pipeline/schemas';
import { Pseudonymiser, decodeJmbg } from '../stages/jmbg';
import { runMonth } from '../pipeline/month';
import { readCsvText } from '../pipeline/csv';
import { logFor, tmpDir, WE } from './helpers/store';

const HEADER = INPUT_COLUMNS.join(',');
const ROW = 'A1,R,2024-03-04,2024-03-01,2001985711236,RS,1,1985-01-20,,700001,70106,,700011,70114,70114,01,1,2';
const parse = (text: string) => parseExtract(text, 'moi_2024_03.csv');
const err = (fn: () => unknown): string => { try { fn(); } catch (e) { expect(e).toBeInstanceOf(InputError); return (e as Error).message; } throw new Error('no error'); };

describe('ingest: file-level errors', () => {
  test('empty file', () => {
    expect(err(() => decodeExtract(Buffer.alloc(0), 'moi_2024_03.csv'))).toBe('moi_2024_03.csv: line 1: the file is empty (no header, no data)');
    expect(err(() => parse(''))).toMatch(/line 1: the file is empty/);
  });
  test('header only', () => {
    expect(err(() => parse(HEADER + '\n'))).toBe('moi_2024_03.csv: line 2: the file has a header but no data rows');
  });
  test('missing, extra and reordered columns are listed', () => {
    expect(err(() => parse(HEADER.replace(',occupation', '') + '\n' + ROW + '\n'))).toMatch(/line 1: the header does not match .*missing: occupation/);
    expect(err(() => parse(HEADER + ',extra\n' + ROW + ',x\n'))).toMatch(/unexpected: extra/);
    const swapped = HEADER.replace('sex,birth_date', 'birth_date,sex');
    expect(err(() => parse(swapped + '\n' + ROW + '\n'))).toMatch(/columns out of order: sex, birth_date/);
  });
  test('truncated last line', () => {
    expect(err(() => parse(HEADER + '\n' + ROW + '\n' + ROW.slice(0, 40)))).toMatch(/^moi_2024_03\.csv: line 3: the last line is truncated/);
  });
  test('unbalanced quotes', () => {
    expect(err(() => parse(HEADER + '\n' + ROW + '\n"A2,R,2024-03-04\n'))).toMatch(/line \d+: unbalanced quotes/);
  });
  test('invalid UTF-8 names the line of the first invalid byte; Windows-1250 only when asked', () => {
    const text = HEADER + '\n' + ROW + '\n' + ROW.replace('A1', 'A2') + '\n';
    const buf = Buffer.concat([Buffer.from(text.replace('A2,', 'A2\u0000,').split('\u0000')[0]!, 'utf8'), Buffer.from([0x9a]), Buffer.from(',' + text.split('A2,')[1]!, 'utf8')]);
    expect(err(() => decodeExtract(buf, 'moi_2024_03.csv'))).toMatch(/^moi_2024_03\.csv: line 3: invalid UTF-8 byte 0x9a .*--encoding windows-1250/);
    expect(decodeExtract(buf, 'moi_2024_03.csv', 'windows-1250')).toContain('A2š');
  });
  test('BOM and CRLF are accepted', () => {
    const text = '\ufeff' + HEADER + '\r\n' + ROW + '\r\n';
    const p = parseExtract(decodeExtract(Buffer.from(text, 'utf8'), 'x'), 'moi_2024_03.csv');
    expect(p.lines).toHaveLength(1);
    expect(p.cols[17]![0]).toBe('2');
  });
  test('quoted fields are parsed per RFC 4180 with correct line numbers', () => {
    const p = parse(HEADER + '\n"A1",R,2024-03-04,2024-03-01,2001985711236,RS,1,1985-01-20,,700001,70106,,700011,70114,70114,01,1,2\n' + ROW.replace('A1', 'A3') + '\n');
    expect(p.cols[0]).toEqual(['A1', 'A3']);
    expect(p.lines).toEqual([2, 3]);
  });
});

describe('ingest: row-level quarantine', () => {
  const rows = [
    ROW,
    ROW.replace('A1,R', 'A2,X'), // unknown form type
    ROW.replace('A1', 'A'.repeat(41)), // over-long record id
    ROW.replace('A1', 'A4').replace('2024-03-04', '2024-03-3x'), // unreadable date
    'A5,R,2024-03-04', // wrong field count
    ROW.replace('A1', 'A6').replace(',1,1985', ',7,1985'), // bad sex code
  ];
  const p = parse(HEADER + '\n' + rows.join('\n') + '\n');
  const { forms, quarantine } = toForms(p, '2024-03', new Pseudonymiser('k'.repeat(32)));
  test('reasons with line and field', () => {
    const q = quarantine.map((r) => [r.line, r.field, r.reason]);
    expect(q).toEqual(expect.arrayContaining([
      [6, '', 'field_count'], [3, 'form_type', 'schema'], [4, 'record_id', 'schema'], [5, 'registration_date', 'unreadable_date'], [7, 'sex', 'schema'],
    ]));
    expect(forms.record_id).toEqual(['A1']);
    expect(p.formsRead).toBe(6);
    expect(forms.record_id!.length + quarantine.length).toBe(p.formsRead);
  });
  test('the JMBG is replaced by a keyed pseudonym and derived columns', () => {
    expect(forms.pid![0]).toMatch(/^[0-9a-f]{32}$/);
    expect(forms.pid![0]).not.toContain('2001985711236');
    expect(forms.jmbg_valid![0]).toBe('1');
    expect(forms.jmbg_sex![0]).toBe('1');
    expect(forms.jmbg_birth![0]).toBe('1985-01-20');
    expect(Object.keys(forms)).not.toContain('person_id');
    expect(new Pseudonymiser('k'.repeat(32)).of('2001985711236')).not.toBe(new Pseudonymiser('j'.repeat(32)).of('2001985711236'));
  });
  test('JMBG decoding: sex from BBB, century from YYY, check digit', () => {
    expect(decodeJmbg('0909968716237')).toEqual({ valid: true, sex: '2', birthDate: '1968-09-09' });
    expect(decodeJmbg('3011001711248')).toEqual({ valid: true, sex: '1', birthDate: '2001-11-30' });
    expect(decodeJmbg('0707977711231').valid).toBe(false);
  });
});

describe('ingest through the monthly run', () => {
  test('a file-level error writes nothing and the message names the file and line', () => {
    const data = tmpDir();
    const f = path.join(tmpDir(), 'moi_2024_03.csv');
    fs.writeFileSync(f, HEADER + '\n' + ROW + '\n' + ROW.slice(0, 30));
    expect(() => runMonth({ data, input: f, settlements: path.join(WE, 'settlements.csv'), log: logFor(data) })).toThrow(/moi_2024_03\.csv: line 3: the last line is truncated/);
    expect(fs.existsSync(path.join(data, 'months'))).toBe(false);
    expect(fs.existsSync(path.join(data, 'forms'))).toBe(false);
  });
  test('duplicates across months are skipped; a second run on the same store is locked out', () => {
    const data = tmpDir();
    const dir = tmpDir();
    const a = path.join(dir, 'moi_2024_03.csv');
    const b = path.join(dir, 'moi_2024_04.csv');
    fs.writeFileSync(a, HEADER + '\n' + ROW + '\n');
    fs.writeFileSync(b, HEADER + '\n' + ROW + '\n' + ROW.replace('A1', 'B1').replace('2024-03-04', '2024-04-04') + '\n');
    const s = path.join(WE, 'settlements.csv');
    runMonth({ data, input: a, settlements: s, log: logFor(data) });
    const r = runMonth({ data, input: b, settlements: s, log: logFor(data) });
    expect(r.quality['2024-04']!.duplicates).toBe(1);
    expect(r.quality['2024-04']!.events).toBe(1);
    fs.mkdirSync(path.join(data, '.lock'));
    fs.writeFileSync(path.join(data, '.lock', 'owner.json'), JSON.stringify({ pid: process.pid, what: 'another run' }));
    expect(() => runMonth({ data, input: a, settlements: s, log: logFor(data) })).toThrow(/in use by another migstat run/);
    const q = readCsvText(fs.readFileSync(path.join(data, 'months', '2024-04', 'dispositions.csv'), 'utf8'));
    expect(q.find((x) => x.disposition === 'duplicate')!.record_id).toBe('A1');
  });
});

test('ContentKeys gives contentKey for every form: each content column followed by U+001F (the format the stored hashes depend on)', () => {
  const cols = Object.fromEntries(FORM_COLUMNS.map((c, k) => [c, [`${c}`, '', k === 2 ? 'Ž\u001f"' : 'x']]));
  const key = new ContentKeys(cols);
  for (let i = 0; i < 3; i++) {
    let spelled = '';
    for (const c of CONTENT_COLUMNS) spelled += cols[c]![i] + '\u001f';
    expect(key.of(i)).toBe(spelled);
    expect(contentKey(cols, i)).toBe(spelled);
  }
});

test('contentDigests digests the UTF-8 of contentKey for every form: ASCII, non-ASCII, lone surrogates, long values', () => {
  const sha1 = (x: string | Uint8Array): string => crypto.hash('sha1', x, 'hex') as string;
  const value = fc.oneof(fc.stringMatching(/^[0-9A-Za-z-]{0,14}$/), fc.string({ maxLength: 8 }), fc.string({ unit: 'binary', maxLength: 8 }), fc.string({ unit: 'grapheme', maxLength: 4 }), fc.string({ minLength: 100, maxLength: 300 }), fc.constantFrom('\u001f', '\ud800', 'Ž', '\u007f', '\u0080'));
  fc.assert(fc.property(fc.integer({ min: 1, max: 6 }).chain((n) => fc.array(fc.array(value, { minLength: n, maxLength: n }), { minLength: FORM_COLUMNS.length, maxLength: FORM_COLUMNS.length })), (vs) => {
    const cols = Object.fromEntries(FORM_COLUMNS.map((c, k) => [c, vs[k]!]));
    const got = contentDigests(cols, sha1);
    expect(got).toEqual(vs[0]!.map((_, i) => sha1(contentKey(cols, i))));
  }), { seed: 7, numRuns: 300 });
});

test('toForms reuses the decoded JMBG and pseudonym of the previous form with the same JMBG: the same columns as decoding every form on its own', () => {
  const jmbgs = ['2001985711236', '0909968716237', '3011001711248', '0707977711231', '', '0101000000000', '3102990711234'];
  const birth = fc.constantFrom('', '1985-01-20', '1968-09-09', '2001-11-30');
  // runs of one to three forms of the same JMBG (stated birth dates may differ within a run), runs in any order
  const runs = fc.sample(fc.tuple(fc.constantFrom(...jmbgs), fc.array(birth, { minLength: 1, maxLength: 3 })), { seed: 3, numRuns: 200 });
  const rows = runs.flatMap(([j, bs]) => bs.map((b) => [j, b] as const));
  const text = HEADER + '\n' + rows.map(([j, b], i) => ROW.replace('A1', `A${i}`).replace('2001985711236', j).replace('1985-01-20', b)).join('\n') + '\n';
  const pseudo = new Pseudonymiser('k'.repeat(32));
  const { forms } = toForms(parse(text), '2024-03', pseudo);
  expect(forms.pid!.length).toBe(rows.length);
  rows.forEach(([j, b], i) => {
    const d = decodeJmbg(j);
    expect([forms.pid![i], forms.jmbg_valid![i], forms.jmbg_sex![i], forms.jmbg_birth![i]]).toEqual([pseudo.of(j), j ? (d.valid ? '1' : '0') : '', d.sex, d.birthDate]);
    expect(forms.birth_date![i]).toBe(b);
  });
});

test('contentDigests from the rows\' spans of the extract text equals the digest of contentKey, whatever the field values', () => {
  const sha1 = (x: string | Uint8Array): string => crypto.hash('sha1', x, 'hex') as string;
  // the content key follows the input columns, the JMBG replaced by the pseudonym (contentDigests relies on it)
  expect(CONTENT_COLUMNS).toEqual(INPUT_COLUMNS.map((c) => (c === 'person_id' ? 'pid' : c)));
  const base = ROW.split(',');
  // fields as a quote-free file has them (no comma, quote or line end), ASCII or not; some rows fail the schema
  const field = fc.oneof(fc.stringMatching(/^[0-9A-Za-z -]{0,12}$/), fc.string({ unit: 'grapheme', maxLength: 6 }).map((x) => x.replace(/[,"\r\n]/g, '')));
  const row = fc.tuple(fc.integer({ min: 0, max: 17 }), field, fc.constantFrom('2001985711236', '0909968716237', '', '12345'), fc.boolean()).map(([k, v, jmbg, keep]) => {
    const r = [...base];
    r[4] = jmbg;
    if (!keep && k !== 4) r[k] = v;
    return r.join(',');
  });
  fc.assert(fc.property(fc.array(row, { minLength: 1, maxLength: 12 }), fc.boolean(), (rows, crlf) => {
    const eol = crlf ? '\r\n' : '\n';
    const p = parse(HEADER + eol + rows.map((r, i) => r.replace(/^A1/, `A${i}`)).join(eol) + eol);
    expect(p.spans).toBeDefined();
    const { forms, spans } = toForms(p, '2024-03', new Pseudonymiser('k'.repeat(32)));
    expect(contentDigests(forms, sha1, spans)).toEqual(forms.record_id!.map((_, i) => sha1(contentKey(forms, i))));
  }), { seed: 9, numRuns: 300 });
});

test('the record schema as applied per row (without required and additionalProperties) gives what the whole schema gives', () => {
  const rs = recordRowSchema();
  expect(rs.name).toBe('record.rows'); // the schema as shipped is separable: the per-row schema is in use
  expect(Object.keys(rs.schema)).not.toContain('required');
  const whole = validator('record');
  // the whole schema on the same row object, its first error as schemaCheck reports it
  const viaWhole = (r: string[]): string | undefined => {
    const o = Object.fromEntries(INPUT_COLUMNS.map((k, i) => [k, r[i]!]));
    if (whole(o)) return undefined;
    const e = whole.errors![0]!;
    const field = e.instancePath.replace(/^\//, '');
    return `${field}: ${field} ${e.message}`;
  };
  const good = 'A1,R,2024-03-04,2024-03-01,2001985711236,RS,1,1985-01-20,,700001,70106,,700011,70114,70114,01,1,2'.split(',');
  const value = fc.oneof(fc.constantFrom(...good, '', 'R', 'D', 'X', '2024-13-45', '7010', '99', '1'), fc.string({ maxLength: 45 }), fc.stringMatching(/^[0-9A-Z-]{0,14}$/));
  const row = fc.array(fc.tuple(fc.integer({ min: 0, max: INPUT_COLUMNS.length - 1 }), value), { maxLength: 4 }).map((edits) => {
    const r = [...good];
    for (const [k, v] of edits) r[k] = v;
    return r;
  });
  fc.assert(fc.property(row, (r) => {
    const bad = schemaCheck(r);
    expect(bad ? `${bad.field}: ${bad.detail}` : undefined).toBe(viaWhole(r));
  }), { numRuns: 2000, seed: 11 });
});

test('a quote-free extract is checked as the whole record schema checks each row, its pooled values checked once per distinct value', () => {
  expect(recordUnpooledSchema()?.name).toBe('record.rows.unpooled'); // the pooled checks are in use for the schema as shipped
  const good = ROW.split(',');
  // values as a quote-free file has them, good and bad, ASCII or not, repeated across rows (as pooled values are)
  const value = fc.oneof(fc.constantFrom(...good, '', 'R', 'D', 'X', '2024-13-45', '2024-03-0', '7010', '70106', '99', '1', '01', '23', 'RS', 'rs', 'Ž', '７0106', '700001'), fc.stringMatching(/^[0-9A-Za-z -]{0,22}$/), fc.string({ unit: 'grapheme', maxLength: 4 }).map((x) => x.replace(/[,"\r\n]/g, '')));
  const row = fc.array(fc.tuple(fc.integer({ min: 0, max: INPUT_COLUMNS.length - 1 }), value), { maxLength: 3 }).map((edits) => {
    const r = [...good];
    for (const [k, v] of edits) r[k] = v;
    return r;
  });
  fc.assert(fc.property(fc.array(row, { minLength: 1, maxLength: 30 }), (rows) => {
    const named = rows.map((r, i) => [`A${i}`, ...r.slice(1)]);
    const p = parse(`${HEADER}\n${named.map((r) => r.join(',')).join('\n')}\n`);
    expect(p.pooledFails).toBeDefined();
    const { forms, quarantine } = toForms(p, '2024-03', new Pseudonymiser('k'.repeat(32)));
    // what the whole row check gives, row by row
    const expected = named.map((r) => schemaCheck(r));
    expect(forms.record_id).toEqual(named.filter((_, i) => !expected[i]).map((r) => r[0]));
    expect(quarantine.map((q) => [q.line, q.field])).toEqual(named.flatMap((_, i) => (expected[i] ? [[i + 2, expected[i]!.field]] : [])));
  }), { numRuns: 400, seed: 13 });
});

describe('ingest: what errors and quarantine rows may show (review of 26 Nov)', () => {
  test('the first invalid UTF-8 sequence is found exactly as isUtf8 judges it (overlong forms, surrogates, truncation)', () => {
    const { isUtf8 } = require('node:buffer') as typeof import('node:buffer');
    const { firstInvalidUtf8 } = require('../stages/ingest') as typeof import('../stages/ingest');
    const byte = fc.oneof(fc.integer({ min: 0x20, max: 0x7e }), fc.constant(0x0a), fc.integer({ min: 0x80, max: 0xff }), fc.constantFrom(0xc2, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0x80, 0x9f, 0xa0, 0xbf, 0x8f, 0x90));
    fc.assert(fc.property(fc.array(byte, { maxLength: 40 }), (bytes) => {
      const b = Uint8Array.from(bytes);
      if (isUtf8(b)) return;
      const { line, offset } = firstInvalidUtf8(b);
      expect(isUtf8(b.subarray(0, offset))).toBe(true); // all before it is UTF-8
      for (let L = 1; L <= 4 && offset + L <= b.length; L++) expect(isUtf8(b.subarray(offset, offset + L))).toBe(false); // no character starts there
      expect(line).toBe(1 + b.subarray(0, offset).filter((x) => x === 0x0a).length);
    }), { numRuns: 3000, seed: 26 });
    // a surrogate (ED A0 80) on line 3, after a byte-order mark: that line, that byte, counted from the file's start
    const text = Buffer.from(`\ufeff${HEADER}\n${ROW}\n`, 'utf8');
    const buf = Buffer.concat([text, Buffer.from([0x41, 0xed, 0xa0, 0x80]), Buffer.from(ROW.slice(1) + '\n')]);
    expect(err(() => decodeExtract(buf, 'moi_2024_03.csv'))).toBe(`moi_2024_03.csv: line 3: invalid UTF-8 byte 0xed at byte ${text.length + 2} (if this is an older Windows-1250 extract, run again with --encoding windows-1250)`);
  });

  test('a JMBG is withheld from quarantine rows and errors before it is escaped or cut, wherever it sits', () => {
    const J = '0602018796643';
    const cells = ROW.split(',');
    const withBirth = (v: string): string => { const c = [...cells]; c[0] = 'B1'; c[7] = v; return c.join(','); };
    const longId = (): string => { const c = [...cells]; c[0] = `"${'A'.repeat(30)} ${J}"`; c[1] = 'X'; return c.join(','); };
    const glued = (): string => { const c = [...cells]; c[0] = 'G1'; c[1] = `"X${J}"`; return c.join(','); };
    const p = parse(`${HEADER}\n${withBirth(`\t${J}`)}\n${withBirth(`"a\n${J}"`)}\n${longId()}\n${glued()}\n${J}x,${cells.slice(1, 5).join(',')}\n`);
    const { quarantine } = toForms(p, '2024-03', new Pseudonymiser('a-key-of-sixteen-chars'));
    const shown = JSON.stringify(quarantine); // (the parser's field-count rows included)
    expect(quarantine.map((q) => [q.line, q.reason, q.field])).toEqual([[7, 'field_count', ''], [2, 'schema', 'birth_date'], [3, 'schema', 'birth_date'], [5, 'schema', 'record_id'], [6, 'schema', 'form_type']]);
    expect(shown).not.toMatch(/[0-9]{9}/); // not the JMBG, not the 9 digits of birth date and region either
    expect(shown).toContain('<13 digits withheld>');
    // a record id of a letter and 13 digits is a record id, and stays
    expect(toForms(parse(`${HEADER}\n${longId().replace(`"${'A'.repeat(30)} ${J}"`, 'R2024010000012')}\n`), '2024-03', new Pseudonymiser('a-key-of-sixteen-chars')).quarantine[0]!.record_id).toBe('R2024010000012');
    // a header column holding a JMBG after a control character
    expect(err(() => parse(`${HEADER},\u0001${J}\n${ROW},x\n`))).not.toMatch(/[0-9]{9}/);
  });
});
