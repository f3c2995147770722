/** Systemic correction of one office's day/month swap, before attribution. */
import * as path from 'node:path';
import fc from 'fast-check';
import { deliver } from '../stages/deliver';
import { contentKey, ContentKeys, FORM_COLUMNS, type Columns } from '../stages/ingest';
import { deliverExtract, formsJsonBytes } from '../pipeline/month';
import * as crypto from 'node:crypto';
import { loadConfig } from '../pipeline/config';
import { loadClassification } from '../stages/territory';
import { collidingPair } from './helpers/colliding';

function forms(rows: { id: string; office: string; reg: string; move: string }[]): Columns {
  const c: Columns = Object.fromEntries(FORM_COLUMNS.map((k) => [k, [] as string[]]));
  rows.forEach((r, i) => {
    for (const k of FORM_COLUMNS) c[k]!.push('');
    const set = (k: string, v: string) => { c[k]![i] = v; };
    set('file', 'moi_2024_02.csv'); set('line', String(i + 2)); set('record_id', r.id); set('form_type', 'R'); set('registration_date', r.reg); set('move_date', r.move);
    set('registering_office', r.office); set('to_municipality', r.office); set('citizenship', 'RS'); set('file_month', '2024-02');
  });
  return c;
}

test('every form of the swapping office is corrected, including one registered on a day equal to its month', () => {
  const L = loadConfig();
  const rows = [];
  for (let d = 3; d <= 24; d++) rows.push({ id: `S${d}`, office: '70203', reg: `2024-${String(d).padStart(2, '0')}-02`, move: `2024-${String(d).padStart(2, '0')}-01` });
  rows.push({ id: 'S02', office: '70203', reg: '2024-02-02', move: '2024-31-01' }); // day = month; move date swapped
  rows.push({ id: 'OK1', office: '70106', reg: '2024-02-10', move: '2024-02-01' });
  const r = deliver({ forms: forms(rows), quarantine: [], fileMonth: '2024-02' }, {
    prior: () => undefined, isClosed: () => false, rules: L.rules, corrections: L.corrections,
    classification: loadClassification(path.join(__dirname, '..', 'reference', 'territory', 'settlements.csv')), systemic: L.config.systemic,
  });
  expect(r.systemic.map((s) => s.office)).toEqual(['70203']);
  const at = (id: string) => r.forms.record_id!.indexOf(id);
  expect(r.forms.registration_date![at('S13')]).toBe('2024-02-13');
  expect(r.forms.move_date![at('S13')]).toBe('2024-01-13');
  expect(r.forms.registration_date![at('S02')]).toBe('2024-02-02');
  expect(r.forms.move_date![at('S02')]).toBe('2024-01-31');
  expect(r.forms.move_date![at('OK1')]).toBe('2024-02-01');
  expect(r.forms.ref_month!.every((m) => m === '2024-02')).toBe(true);
  expect(r.quarantine).toEqual([]);
  expect(r.changes.filter((c) => c.record_id === 'S02').map((c) => c.variable)).toEqual(['move_date']);
});

describe('forms partitions are written as JSON.stringify would', () => {
  test('formsJsonBytes gives the UTF-8 of JSON.stringify, whatever the record ids and file name', () => {
    const json = (c: Columns): Buffer => Buffer.from(JSON.stringify(c), 'utf8');
    const cols: Columns = {
      file: ['a "quoted" name.csv', 'a "quoted" name.csv'], record_id: ['R1', 'x\\y"z\u0001\ud800'], line: ['2', '3'], pid: ['', 'ab'], empty_: [],
    };
    expect(formsJsonBytes(cols).equals(json(cols))).toBe(true);
    const plain: Columns = { file: ['moi_2024_03.csv'], record_id: ['Ž1'], ref_month: ['2024-03'] };
    expect(formsJsonBytes(plain).equals(json(plain))).toBe(true);
    // any columns: one value throughout or not, quotes, escapes, lone surrogates, non-ASCII
    const text = fc.oneof(fc.string(), fc.string({ unit: fc.constantFrom('a', '"', '\\', '\n', '\u0001', 'Ž', '\ud800', '😀') }), fc.constantFrom('', 'moi_2024_03.csv', '2024-03'));
    const columnOf = (t: fc.Arbitrary<string>) => fc.oneof(fc.array(t, { maxLength: 6 }), fc.tuple(t, fc.integer({ min: 1, max: 6 })).map(([v, k]) => new Array<string>(k).fill(v)));
    // and columns of what the record schema lets through in most fields: digits, letters, '-'
    const cols2 = fc.tuple(fc.dictionary(fc.constantFrom('file', 'record_id', 'x"y', 'Ž'), columnOf(text)), fc.dictionary(fc.constantFrom('pid', 'line', 'ref_month'), columnOf(fc.stringMatching(/^[0-9a-z-]{0,8}$/))));
    fc.assert(fc.property(cols2, ([a, b]) => { const c = { ...a, ...b }; expect(formsJsonBytes(c).equals(json(c))).toBe(true); }), { numRuns: 500, seed: 7 });
  });
});

test('the record index hashes the delivered content: the hash from ingest, recomputed for systemically corrected forms', () => {
  const L = loadConfig();
  const rows = [];
  for (let d = 3; d <= 24; d++) rows.push({ id: `S${d}`, office: '70203', reg: `2024-${String(d).padStart(2, '0')}-02`, move: `2024-${String(d).padStart(2, '0')}-01` });
  rows.push({ id: 'OK1', office: '70106', reg: '2024-02-10', move: '2024-02-01' }, { id: 'OK1', office: '70106', reg: '2024-02-10', move: '2024-02-01' }); // + a duplicate
  const f = forms(rows);
  const key = new ContentKeys(f);
  const sha1 = (s: string) => crypto.createHash('sha1').update(s).digest('hex');
  const ing = { name: 'moi_2024_02.csv', digest: '0'.repeat(64), fileMonth: '2024-02', encoding: 'utf-8', formsRead: rows.length, forms: f, quarantine: [], contentHashes: rows.map((_, i) => sha1(key.of(i))) };
  const C = loadClassification(path.join(__dirname, '..', 'reference', 'territory', 'settlements.csv'));
  const d = deliverExtract(ing, { L, C, prior: () => undefined, closed: () => false, seq: 1, log: { log: () => undefined } });
  const part = d.parts.get('2024-02')!;
  expect(d.idsText.endsWith('\n')).toBe(true);
  const ids = d.idsText.slice(0, -1).split('\n');
  expect(ids).toHaveLength(rows.length - 1);
  expect(ids.map((l, i) => l.split('\t')[2] === sha1(contentKey(part, i)))).not.toContain(false);
  expect(part.registration_date![part.record_id!.indexOf('S13')]).toBe('2024-02-13'); // corrected, so rehashed
});

describe('an old version re-sent after its correction is a duplicate (moi-input.md: same id, identical content)', () => {
  test('the extract again with CRLF line ends, and an old version in the next month\'s extract, change nothing', () => {
    /* eslint-disable @typescript-eslint/no-require-imports */
    const fs = require('node:fs') as typeof import('node:fs');
    const { generate } = require('../fixtures/generator') as typeof import('../fixtures/generator');
    const { runMonth } = require('../pipeline/month') as typeof import('../pipeline/month');
    const { tmpDir, logFor } = require('./helpers/store') as typeof import('./helpers/store');
    const input = tmpDir();
    generate({ year: 2024, out: input, seed: 1, records: 3000 });
    const jan = fs.readFileSync(path.join(input, 'moi_2024_01.csv'), 'utf8');
    // the January extract holds forms corrected within the file: a record id twice, with different content
    const rows = jan.trimEnd().split('\n').slice(1);
    const byId = new Map<string, string[]>();
    for (const r of rows) byId.set(r.split(',')[0]!, [...(byId.get(r.split(',')[0]!) ?? []), r]);
    const corrected = [...byId.values()].filter((v) => new Set(v).size > 1);
    expect(corrected.length).toBeGreaterThan(0);
    const data = tmpDir();
    runMonth({ data, input: path.join(input, 'moi_2024_01.csv'), log: logFor(data) });
    const events = (): string => fs.readFileSync(path.join(data, 'months', '2024-01', 'events.csv'), 'utf8');
    const before = events();
    const again = path.join(tmpDir(), 'moi_2024_01.csv');
    fs.writeFileSync(again, jan.replace(/\n/g, '\r\n'));
    runMonth({ data, input: again, log: logFor(data) });
    const deliveries = (): { accepted: number; duplicates: number; forms_read: number; quarantined: number }[] => fs.readdirSync(path.join(data, 'deliveries')).sort().map((f) => JSON.parse(fs.readFileSync(path.join(data, 'deliveries', f), 'utf8')));
    const second = deliveries()[1]!;
    expect(second.accepted).toBe(0);
    expect(second.duplicates + second.quarantined).toBe(second.forms_read);
    expect(events()).toBe(before);
    // January closed, February's extract repeats the first (superseded) version of a corrected form: a duplicate
    // too, not a correction to a closed month
    const { Store } = require('../pipeline/store') as typeof import('../pipeline/store');
    new Store(data).close(['2024-01'], 'test');
    const feb = path.join(input, 'moi_2024_02.csv');
    fs.appendFileSync(feb, `${corrected[0]![0]}\n`);
    runMonth({ data, input: feb, log: logFor(data) });
    const disp = fs.readFileSync(path.join(data, 'months', '2024-02', 'dispositions.csv'), 'utf8');
    const id = corrected[0]![0]!.split(',')[0]!;
    expect(disp).toMatch(new RegExp(`^moi_2024_02\\.csv,\\d+,${id},R?D?,duplicate,same record_id and content already ingested \\(month 2024-01\\)$`, 'm'));
    expect(events()).toBe(before);
  }, 60000);
});

test('a correction to a closed month is withheld, and kept as received so that the revision not made can be measured', () => {
  const L = loadConfig();
  const f = forms([{ id: 'K1', office: '70106', reg: '2024-02-10', move: '2024-02-01' }, { id: 'K2', office: '70106', reg: '2024-02-11', move: '2024-02-02' }]);
  const r = deliver({ forms: f, quarantine: [], fileMonth: '2024-02' }, {
    prior: (id) => (id === 'K1' ? { month: '2024-01', versions: [{ month: '2024-01', content: 'an older content' }] } : undefined),
    isClosed: (m) => m === '2024-01', rules: L.rules, corrections: [],
    classification: loadClassification(path.join(__dirname, '..', 'reference', 'territory', 'settlements.csv')), systemic: L.config.systemic,
  });
  expect(r.counts).toMatchObject({ accepted: 1, corrections_to_closed: 1 });
  expect(r.withheld).toEqual([{ record_id: 'K1', corrects_month: '2024-01', form: expect.objectContaining({ record_id: 'K1', registration_date: '2024-02-10', move_date: '2024-02-01', registering_office: '70106', to_municipality: '70106' }) }]);
  expect(Object.keys(r.withheld[0]!.form)).not.toContain('line'); // the content, as the record index hashes it
});

test('the re-send window: a form recorded 12 months before the extract is carried forward, one recorded 13 months before is quarantined', () => {
  const L = loadConfig();
  const rows = [
    { id: 'IN', office: '70106', reg: '2023-02-15', move: '2023-02-01' }, // 12 months before 2024-02: the duplicate check still sees it
    { id: 'OUT', office: '70106', reg: '2023-01-31', move: '2023-01-20' }, // 13 months before
    { id: 'NOW', office: '70106', reg: '2024-02-10', move: '2024-02-01' },
  ];
  const r = deliver({ forms: forms(rows), quarantine: [], fileMonth: '2024-02' }, {
    prior: () => undefined, isClosed: (m) => m < '2024-02', rules: L.rules, corrections: L.corrections,
    classification: loadClassification(path.join(__dirname, '..', 'reference', 'territory', 'settlements.csv')), systemic: L.config.systemic,
  });
  expect(r.forms.record_id).toEqual(['IN', 'NOW']);
  expect(r.forms.ref_month).toEqual(['2024-02', '2024-02']);
  expect(r.counts.carried_forward).toBe(1);
  expect(r.quarantine.map((q) => [q.record_id, q.reason])).toEqual([['OUT', 'recorded_before_resend_window']]);
});

test('a day/month swap is corrected only when the swapped dates fall in the extract\'s month: a supplement of late forms is left alone', () => {
  const L = loadConfig();
  const C = loadClassification(path.join(__dirname, '..', 'reference', 'territory', 'settlements.csv'));
  // late forms of January and March in a May file, all from one office: every one fails R04 (not registered in May);
  // only those registered on the 5th would read as May once swapped
  const rows: { id: string; office: string; reg: string; move: string }[] = [];
  for (let d = 1; d <= 28; d++) for (const mo of ['01', '03']) rows.push({ id: `L${mo}${d}`, office: '70106', reg: `2024-${mo}-${String(d).padStart(2, '0')}`, move: `2024-${mo}-01` });
  const ctx = { prior: () => undefined, isClosed: (m: string) => m < '2024-04', rules: L.rules, corrections: L.corrections, classification: C, systemic: L.config.systemic };
  const fm = (c: Columns): Columns => ({ ...c, file_month: c.file_month!.map(() => '2024-05') });
  // 56 forms: under the 100 of the mislabelled check, so taken; no swap inferred
  const r = deliver({ forms: fm(forms(rows)), quarantine: [], fileMonth: '2024-05' }, ctx);
  expect(r.systemic).toEqual([]);
  expect(r.changes).toEqual([]);
  expect(r.otherMonths).toBe(false);
  expect(r.forms.registration_date![r.forms.record_id!.indexOf('L015')]).toBe('2024-01-05');
  expect(new Set(r.forms.ref_month)).toEqual(new Set(['2024-04'])); // carried forward to the first open month
  // twice as many (112 forms, none of May): refused as mislabelled, taken as a supplement when allowed
  const more = [...rows, ...rows.map((x) => ({ ...x, id: `${x.id}b` }))];
  expect(() => deliver({ forms: fm(forms(more)), quarantine: [], fileMonth: '2024-05' }, ctx)).toThrow(/only 0 of its 112 forms are recorded in 2024-05/);
  const s = deliver({ forms: fm(forms(more)), quarantine: [], fileMonth: '2024-05' }, { ...ctx, allowOtherMonths: true });
  expect([s.otherMonths, s.systemic, s.forms.record_id!.length]).toEqual([true, [], 112]);
});

test('within-file duplicates: for any forms, kept and dropped as by a Map of record ids (ids colliding in their hash included)', () => {
  const pair = collidingPair(); // two different ids with the same idHash (dedupe's table compares ids only when hashes are equal)
  const L = loadConfig();
  const classification = loadClassification(path.join(__dirname, '..', 'reference', 'territory', 'settlements.csv'));
  const form = fc.record({ id: fc.constantFrom('A', 'B', 'C', pair[0], pair[1]), move: fc.constantFrom('2024-02-01', '2024-01-20') });
  fc.assert(
    fc.property(fc.array(form, { maxLength: 40 }), (rows) => {
      const f = forms(rows.map((r) => ({ id: r.id, office: '70106', reg: '2024-02-10', move: r.move })));
      const r = deliver({ forms: f, quarantine: [], fileMonth: '2024-02' }, { prior: () => undefined, isClosed: () => false, rules: L.rules, corrections: [], classification, systemic: L.config.systemic });
      // the reference: a form is a duplicate when a form kept before it has the same id and the same content
      const kept: typeof rows = [];
      const dups: string[] = [];
      rows.forEach((x, i) => {
        if (kept.some((k) => k.id === x.id && k.move === x.move)) dups.push(String(i + 2));
        else kept.push(x);
      });
      expect(r.forms.record_id).toEqual(kept.map((k) => k.id));
      expect(r.forms.move_date).toEqual(kept.map((k) => k.move));
      expect(r.dispositions.filter((d) => d.disposition === 'duplicate').map((d) => d.line)).toEqual(dups);
      expect(r.counts.duplicates).toBe(dups.length);
    }),
    { numRuns: 300, seed: 20261126 },
  );
});
