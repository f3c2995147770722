/**
 * Property-based fuzzing of the monthly run (fast-check): arbitrary corruptions of the rows and of the whole file
 * of a small valid generated extract. Whatever the input, `runMonth` either
 *  - succeeds, and then the row-count identity holds in the delivery record and in quality.json, every line read
 *    has exactly one disposition, nothing the corruption did not touch is quarantined, no clear JMBG of the input
 *    appears anywhere in the store, and the store passes its audit; or
 *  - throws an InputError whose message names the file and a line of it (never a TypeError, RangeError or
 *    other crash), and the store holds no results at all.
 *
 * Runs: MIGSTAT_FUZZ_RUNS (default 50, 10–15 s), seed: MIGSTAT_FUZZ_SEED (default fixed; fast-check prints the
 * seed, the path and the shrunk counterexample of a failure, to replay it with the same seed).
 *   MIGSTAT_FUZZ_RUNS=2000 MIGSTAT_FUZZ_SEED=$RANDOM npx jest test/fuzz
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { generate } from '../fixtures/generator';
import { readCsvText } from '../pipeline/csv';
import { listFiles } from '../pipeline/fsutil';
import { runMonth } from '../pipeline/month';
import { Store } from '../pipeline/store';
import type { Quality } from '../pipeline/contracts';
import { audit } from '../stages/audit';
import { InputError } from '../stages/ingest';
import { logFor, snapshot, tmpDir } from './helpers/store';

const RUNS = Number(process.env.MIGSTAT_FUZZ_RUNS ?? 50);
const SEED = Number(process.env.MIGSTAT_FUZZ_SEED ?? 20250710);
const NAME = 'moi_2024_03.csv';
const MONTH = '2024-03';

// the valid base: the first 80 forms of a generated March (with the generator's realistic defects)
const gen = tmpDir('migstat-fuzz-gen-');
generate({ year: 2024, out: gen, seed: 11, records: 3000, months: [3] });
const BASE_LINES = fs.readFileSync(path.join(gen, NAME), 'utf8').split('\n').slice(0, 81);
const BASE = BASE_LINES.join('\n') + '\n';
const BASE_JMBGS = new Set(BASE_LINES.slice(1).map((l) => l.split(',')[4]!).filter((j) => /^\d{13}$/.test(j)));

/** ---------- corruptions ---------- */
type Op =
  | { k: 'field'; row: number; col: number; value: string }
  | { k: 'flip'; pos: number; xor: number }
  | { k: 'truncate'; pos: number }
  | { k: 'insert'; pos: number; s: string }
  | { k: 'dupLine'; from: number; to: number }
  | { k: 'delLine'; i: number }
  | { k: 'swapLines'; i: number; j: number }
  | { k: 'shuffleCols'; perm: number[]; row?: number }
  | { k: 'blank'; i: number }
  | { k: 'encode'; enc: 'latin1' | 'utf16le' | 'windows-1250' | 'bom' | 'crlf' | 'cr' };

const nasty = fc.constantFrom(
  '', ' ', '"', '""', ',', '\n', '\r\n', '\r', '\t', ';', '\u0000', '\ufeff', '=1+1', '+1', '-1', '@SUM(A1)', '-3', '2024-02-30', '2024-13-01', '0000-00-00',
  '9999-12-31', '2024-3-1', '2024-03-01T00:00', 'Šabac', 'čćžšđ', '😀', 'x'.repeat(41), '1'.repeat(41), 'R', 'D', 'r', '1', '2', '3', '99', '00', '70106', '7010',
  '71323', 'RS', 'rs', 'XK', '01', '98', '7', 'NaN', 'null', 'undefined', '__proto__', 'constructor', 'toString', '1e3', '0x10', '\\', '\u202e',
);
const fieldValue = fc.oneof(nasty, fc.string({ maxLength: 12 }), fc.string({ unit: 'binary', maxLength: 6 }), fc.stringMatching(/^\d{1,14}$/));
const perm18 = fc.shuffledSubarray([...Array(18).keys()], { minLength: 18, maxLength: 18 });
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ k: fc.constant('field' as const), row: fc.nat(), col: fc.nat(17), value: fieldValue }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('flip' as const), pos: fc.nat(), xor: fc.integer({ min: 1, max: 255 }) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('truncate' as const), pos: fc.nat() }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('insert' as const), pos: fc.nat(), s: fc.constantFrom('"', ',', '\n', '\r\n', '\r', '""', '"a,b"', '\ufeff', '\u0000', '\\') }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('dupLine' as const), from: fc.nat(), to: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('delLine' as const), i: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('swapLines' as const), i: fc.nat(), j: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('shuffleCols' as const), perm: perm18 }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('shuffleCols' as const), perm: perm18, row: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('blank' as const), i: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('encode' as const), enc: fc.constantFrom('latin1', 'utf16le', 'windows-1250', 'bom', 'crlf', 'cr') }) },
);

const W1250: Record<string, number> = { Š: 0x8a, Ž: 0x8e, š: 0x9a, ž: 0x9e, Ć: 0xc6, Č: 0xc8, Đ: 0xd0, ć: 0xe6, č: 0xe8, đ: 0xf0 };
function encode1250(s: string): Buffer {
  return Buffer.from([...s].map((c) => W1250[c] ?? (c.charCodeAt(0) < 0x100 ? c.charCodeAt(0) : 0x3f)));
}

/** Apply the corruptions; also return the lines the row-level ones touched (by content), for the quarantine check. */
function corrupt(ops: Op[]): Buffer {
  let buf: Buffer = Buffer.from(BASE, 'utf8');
  const lines = (): string[] => { const l = buf.toString('utf8').split('\n'); return l; };
  const setLines = (l: string[]): void => { buf = Buffer.from(l.join('\n'), 'utf8'); };
  for (const o of ops) {
    switch (o.k) {
      case 'field': {
        const l = lines();
        const i = o.row % Math.max(1, l.length - 1);
        const f = l[i]!.split(',');
        if (o.col < f.length) f[o.col] = o.value;
        l[i] = f.join(',');
        setLines(l);
        break;
      }
      case 'flip': if (buf.length) { buf = Buffer.from(buf); buf[o.pos % buf.length] ^= o.xor; } break;
      case 'truncate': buf = buf.subarray(0, o.pos % (buf.length + 1)); break;
      case 'insert': { const p = o.pos % (buf.length + 1); buf = Buffer.concat([buf.subarray(0, p), Buffer.from(o.s, 'utf8'), buf.subarray(p)]); break; }
      case 'dupLine': { const l = lines(); const n = Math.max(1, l.length - 1); l.splice(o.to % n, 0, l[o.from % n]!); setLines(l); break; }
      case 'delLine': { const l = lines(); l.splice(o.i % Math.max(1, l.length - 1), 1); setLines(l); break; }
      case 'swapLines': { const l = lines(); const n = Math.max(1, l.length - 1); const a = o.i % n, b = o.j % n; [l[a], l[b]] = [l[b]!, l[a]!]; setLines(l); break; }
      case 'shuffleCols': {
        const l = lines();
        const sh = (s: string): string => { const f = s.split(','); return f.length === 18 ? o.perm.map((k) => f[k]).join(',') : s; };
        if (o.row === undefined) setLines(l.map(sh));
        else { const i = o.row % Math.max(1, l.length - 1); l[i] = sh(l[i]!); setLines(l); }
        break;
      }
      case 'blank': { const l = lines(); l.splice(o.i % Math.max(1, l.length), 0, ''); setLines(l); break; }
      case 'encode': {
        const t = buf.toString('utf8');
        if (o.enc === 'latin1') buf = Buffer.from(t, 'latin1');
        else if (o.enc === 'utf16le') buf = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(t, 'utf16le')]);
        else if (o.enc === 'windows-1250') buf = encode1250(t);
        else if (o.enc === 'bom') buf = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), buf]);
        else if (o.enc === 'crlf') buf = Buffer.from(t.replace(/\r?\n/g, '\r\n'), 'utf8');
        else buf = Buffer.from(t.replace(/\r?\n/g, '\r'), 'utf8');
        break;
      }
    }
  }
  return buf;
}

/** ---------- the property ---------- */
const work = tmpDir('migstat-fuzz-');
let n = 0;
const outcomes = { ok: 0, input_error: 0 };

/** What the pipeline decides for each line of the uncorrupted base (by line content). */
const baseDisposition = new Map<string, string>();
beforeAll(() => {
  const data = path.join(work, 'base-store');
  const input = path.join(work, 'base', NAME);
  fs.mkdirSync(path.dirname(input), { recursive: true });
  fs.writeFileSync(input, BASE);
  runMonth({ data, input, log: logFor(data) });
  // forms corrected by a systemic correction depend on their office's other forms, not on their line alone
  const systemic = new Set(readCsvText(fs.readFileSync(path.join(data, 'months', MONTH, 'changes.csv'), 'utf8')).filter((c) => c.step === 'systemic').map((c) => c.record_id));
  for (const d of readCsvText(fs.readFileSync(path.join(data, 'months', MONTH, 'dispositions.csv'), 'utf8'))) {
    const content = BASE_LINES[+d.line! - 1]!;
    baseDisposition.set(content, `${baseDisposition.get(content) ?? ''}${systemic.has(d.record_id) ? 'systemic' : d.disposition};`);
  }
  expect(systemic.size).toBeGreaterThan(0);
});

function check(ops: Op[], windows1250: boolean): void {
  const dir = path.join(work, String(++n));
  const input = path.join(dir, 'in', NAME);
  const data = path.join(dir, 'store');
  fs.mkdirSync(path.dirname(input), { recursive: true });
  const bytes = corrupt(ops);
  fs.writeFileSync(input, bytes);
  let result: ReturnType<typeof runMonth> | undefined;
  try {
    result = runMonth({ data, input, encoding: windows1250 ? 'windows-1250' : 'utf-8', log: logFor(data) });
  } catch (e) {
    // a clear input error naming the file and a line of it; nothing written
    if (!(e instanceof InputError)) throw new Error(`not an InputError: ${(e as Error)?.constructor?.name}: ${(e as Error)?.stack}`);
    const m = /^moi_2024_03\.csv: line (\d+)(, field [a-z_]+)?: \S/.exec(e.message);
    if (!m) throw new Error(`the message does not name the file and a line: ${e.message}`);
    const physical = bytes.toString('latin1').split(/\r\n|\n|\r/).length;
    if (+m[1]! < 1 || +m[1]! > physical + 1) throw new Error(`line ${m[1]} is outside the file (${physical} lines): ${e.message}`);
    if (e.message.includes('\n')) throw new Error(`the message spans several lines: ${JSON.stringify(e.message)}`);
    // no results, nothing committed, no lock left
    for (const d of ['months/2024-03', 'state/ingested.json', 'years', 'published', '.lock']) if (fs.existsSync(path.join(data, d))) throw new Error(`${d} exists although the input was rejected: ${e.message}`);
    if (fs.existsSync(path.join(data, 'deliveries'))) {
      // rejected after ingest had written its (uncommitted) delivery: the next run rolls it back and the store
      // behaves as if it had never seen the file
      const good = path.join(dir, 'good', NAME);
      fs.mkdirSync(path.dirname(good), { recursive: true });
      fs.writeFileSync(good, BASE);
      runMonth({ data, input: good, log: logFor(data) });
      const got = snapshot(path.join(data, 'months')), want = snapshot(path.join(work, 'base-store', 'months'));
      if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error(`after the rejected file, the base extract gives other results than on a fresh store: ${e.message}`);
    }
    outcomes.input_error++;
    fs.rmSync(dir, { recursive: true, force: true });
    return;
  }
  outcomes.ok++;
  // the delivery record: read = accepted + quarantined + duplicates + corrections to closed months
  const store = new Store(data);
  const deliveries = fs.readdirSync(store.p('deliveries'));
  if (deliveries.length !== 1) throw new Error(`expected one delivery, found ${deliveries}`);
  const rec = JSON.parse(fs.readFileSync(store.p('deliveries', deliveries[0]!), 'utf8'));
  if (rec.forms_read !== rec.accepted + rec.quarantined + rec.duplicates + rec.corrections_to_closed) throw new Error(`delivery identity broken: ${JSON.stringify(rec)}`);
  // a fresh store: every form lands in the file's month (earlier months count as closed → carried forward)
  if (result.status !== 'processed' || result.months.join() !== MONTH) throw new Error(`months processed: ${result.months}`);
  const q = JSON.parse(fs.readFileSync(path.join(store.monthDir(MONTH), 'quality.json'), 'utf8')) as Quality;
  const rhs = Object.values(q.identity.rhs).reduce((a, b) => a + b, 0);
  if (!q.identity.holds || q.identity.lhs !== rhs || q.forms_read !== rec.forms_read) throw new Error(`quality identity broken: ${JSON.stringify(q.identity)} forms_read ${q.forms_read}/${rec.forms_read}`);
  if (q.events + q.linked_departures + q.unmatched_departures + Object.values(q.out_of_scope).reduce((a, b) => a + b, 0) + q.quarantined + q.duplicates + q.replaced_versions !== q.forms_read)
    throw new Error(`counts do not add up to forms_read: ${JSON.stringify(q)}`);
  // every line read has exactly one fate
  const disp = readCsvText(fs.readFileSync(path.join(store.monthDir(MONTH), 'dispositions.csv'), 'utf8'));
  if (disp.length !== q.forms_read) throw new Error(`${disp.length} dispositions for ${q.forms_read} forms read`);
  const keys = new Set(disp.map((d) => `${d.file}:${d.line}`));
  if (keys.size !== disp.length) throw new Error('a line has two dispositions');
  // nothing the corruption did not touch is quarantined (line content identical to a base line that was not quarantined)
  const text = bytes.toString('utf8').replace(/^\ufeff/, '');
  if (!text.includes('"') && !text.includes('\r')) {
    const phys = text.split('\n');
    for (const d of disp) {
      if (d.disposition !== 'quarantined') continue;
      const was = baseDisposition.get(phys[+d.line! - 1] ?? '');
      if (was && !was.includes('quarantined') && !was.includes('systemic')) throw new Error(`line ${d.line} is intact (${was} in the base) but quarantined: ${phys[+d.line! - 1]}`);
    }
  }
  // no clear JMBG of the input anywhere in the store (outputs, state, logs)
  for (const f of listFiles(data)) {
    const content = fs.readFileSync(path.join(data, f), 'latin1');
    for (const j of content.match(/\d{13}/g) ?? []) if (BASE_JMBGS.has(j)) throw new Error(`clear JMBG ${j} in ${f}`);
  }
  const a = audit(store);
  if (!a.ok) throw new Error(`audit: ${JSON.stringify(a.problems.slice(0, 3))}`);
  if (fs.existsSync(store.p('.lock'))) throw new Error('the lock was left behind');
  fs.rmSync(dir, { recursive: true, force: true });
}

describe('fuzzing the monthly run with corrupted extracts', () => {
  test(`${RUNS} corrupted files (seed ${SEED}): a clear InputError or a run whose counts add up`, () => {
    fc.assert(fc.property(fc.array(op, { minLength: 1, maxLength: 3 }), fc.nat(4).map((x) => x === 0), (ops, w) => check(ops, w)), { numRuns: RUNS, seed: SEED });
    // the campaign exercised both outcomes
    expect(outcomes.ok).toBeGreaterThan(RUNS / 10);
    expect(outcomes.input_error).toBeGreaterThan(RUNS / 20);
  }, 60_000 + RUNS * 1_000);
});
