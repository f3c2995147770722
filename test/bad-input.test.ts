/**
 * The bad-input suite, through the command line (`migstat month` as a child process): every malformed case of
 * moi-input.md and of the ingest issue that test/ingest.test.ts does not already cover.
 *  - A file that cannot be read as an extract: exit code 1 (2 for a usage error), exactly one line on stderr
 *    with the exact message naming the file, the line and, where there is one, the field; never a stack
 *    trace; and nothing in the store (no results, nothing committed, no lock left).
 *  - Rows that cannot be used: the run succeeds and each one is in quarantine.csv with its line, field and
 *    exact reason, has the disposition `quarantined`, and the row-count identity holds.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { INPUT_COLUMNS } from '../stages/ingest';
import { readCsvText, type Row } from '../pipeline/csv';
import { listFiles } from '../pipeline/fsutil';
import { runMonth } from '../pipeline/month';
import { Store } from '../pipeline/store';
import type { Quality } from '../pipeline/contracts';
import { migstat, migstatAsync, oneErrorLine, type CliResult } from './helpers/cli';
import { logFor, tmpDir } from './helpers/store';

const HEADER = INPUT_COLUMNS.join(',');
const FIELDS = ['A1', 'R', '2024-03-04', '2024-03-01', '2001985711236', 'RS', '1', '1985-01-20', '', '7010601', '70106', '', '7011401', '70114', '70114', '01', '1', '2'];
const ROW = FIELDS.join(',');
/** ROW with record id `id` and some fields replaced. */
const row = (id: string, patch: Partial<Record<(typeof INPUT_COLUMNS)[number], string>> = {}): string =>
  INPUT_COLUMNS.map((c, i) => (c === 'record_id' ? id : patch[c] ?? FIELDS[i]!)).join(',');
const GOOD = [row('G1'), row('G2', { sex: '2', person_id: '0909968716237', birth_date: '1968-09-09' }), row('G3', { to_settlement: '7010602', to_municipality: '70106' })].join('\n');
const LF = (...lines: string[]): string => lines.join('\n') + '\n';
const w1250 = (s: string): Buffer => Buffer.from([...s].map((c) => ({ š: 0x9a, č: 0xe8, ć: 0xe6, ž: 0x9e, đ: 0xf0 })[c] ?? c.charCodeAt(0)));

interface Case { name: string; file?: string; bytes?: Buffer | string; args?: string[]; status: number; message: string | RegExp; setup?: (data: string, file: string) => void }
const F = 'moi_2024_03.csv';
const LAYOUT = `${F}: line 1: the header does not match the extract layout — `;
const W1250_LINE3 = Buffer.concat([Buffer.from(LF(HEADER, ROW) + 'A2', 'utf8'), w1250('š'), Buffer.from(ROW.slice(2) + '\n', 'utf8')]);

const CASES: Case[] = [
  // empty files
  { name: 'empty file', bytes: '', status: 1, message: `${F}: line 1: the file is empty (no header, no data)` },
  { name: 'only a byte-order mark', bytes: Buffer.from([0xef, 0xbb, 0xbf]), status: 1, message: `${F}: line 1: the file is empty (no header, no data)` },
  { name: 'only blank lines', bytes: '\n\r\n\n', status: 1, message: `${F}: line 1: the file is empty (no header, no data)` },
  { name: 'header only', bytes: HEADER + '\n', status: 1, message: `${F}: line 2: the file has a header but no data rows` },
  { name: 'header only, without a line end', bytes: HEADER, status: 1, message: `${F}: line 2: the file has a header but no data rows` },
  { name: 'header and blank lines only', bytes: HEADER + '\n\n\r\n\n', status: 1, message: `${F}: line 2: the file has a header but no data rows (only blank lines)` },
  // header
  { name: 'a column renamed', bytes: LF(HEADER.replace('birth_date', 'birthdate'), ROW), status: 1, message: `${LAYOUT}missing: birth_date; unexpected: birthdate` },
  { name: 'a column twice, one missing', bytes: LF(HEADER.replace('move_date', 'registration_date'), ROW), status: 1, message: `${LAYOUT}missing: move_date` },
  {
    name: 'upper-case header', bytes: LF(HEADER.toUpperCase(), ROW), status: 1,
    message: `${LAYOUT}missing: record_id, form_type, registration_date, move_date, person_id and 13 more; unexpected: RECORD_ID, FORM_TYPE, REGISTRATION_DATE, MOVE_DATE, PERSON_ID and 13 more`,
  },
  {
    name: 'semicolon-separated (a spreadsheet export)', bytes: LF(HEADER.replaceAll(',', ';'), ROW.replaceAll(',', ';')), status: 1,
    message: `${LAYOUT}missing: record_id, form_type, registration_date, move_date, person_id and 13 more; unexpected: record_id;form_type;registration_date;mo…`,
  },
  {
    name: 'tab-separated', bytes: LF(HEADER.replaceAll(',', '\t'), ROW.replaceAll(',', '\t')), status: 1,
    message: `${LAYOUT}missing: record_id, form_type, registration_date, move_date, person_id and 13 more; unexpected: record_id\\tform_type\\tregistration_date\\tmo…`,
  },
  {
    name: 'no header (data from line 1): the JMBG is not echoed', bytes: LF(ROW, ROW), status: 1,
    message: `${LAYOUT}missing: record_id, form_type, registration_date, move_date, person_id and 13 more; unexpected: A1, R, 2024-03-04, 2024-03-01, <13 digits withheld> and 13 more`,
  },
  // syntax
  { name: 'truncated last line', bytes: LF(HEADER, ROW) + row('A2').slice(0, 40), status: 1, message: `${F}: line 3: the last line is truncated (5 of 18 fields, no line end): the file was cut off; ask MoI to re-send it` },
  { name: 'unbalanced quotes, CRLF line ends', bytes: [HEADER, ROW, `"${row('A2')}`, row('A3'), row('A4'), ''].join('\r\n'), status: 1, message: `${F}: line 3: unbalanced quotes: a quoted field is never closed` },
  { name: 'a quote inside an unquoted field', bytes: LF(HEADER, ROW, row('A2', { form_type: 'R"' })), status: 1, message: `${F}: line 3, field form_type: a quote inside an unquoted field (RFC 4180: quote the whole field and double the quote)` },
  { name: 'text after a closing quote', bytes: LF(HEADER, ROW, row('"A2"x')), status: 1, message: `${F}: line 3, field record_id: a quoted field is followed by other characters before the next comma or line end` },
  { name: 'CR-only line ends (old Mac)', bytes: [HEADER, ROW, row('A2'), ''].join('\r'), status: 1, message: `${F}: line 1: the lines end in CR only (old Mac format): convert the file to LF or CRLF line ends` },
  // encodings
  {
    name: 'Windows-1250 bytes without --encoding', bytes: W1250_LINE3, status: 1,
    message: `${F}: line 3: invalid UTF-8 byte 0x9a at byte ${W1250_LINE3.indexOf(0x9a) + 1} (if this is an older Windows-1250 extract, run again with --encoding windows-1250)`,
  },
  {
    name: 'UTF-16 with byte-order mark', bytes: Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(LF(HEADER, ROW), 'utf16le')]), status: 1,
    message: `${F}: line 1: invalid UTF-8 byte 0xff at byte 1 (if this is an older Windows-1250 extract, run again with --encoding windows-1250)`,
  },
  {
    name: 'a workbook (zip) instead of a CSV', bytes: Buffer.from([0x50, 0x4b, 0x03, 0x04, 0x14, 0x00, 0x08, 0x00, 0x88, 0x5c, 0x0a, 0xc3]), status: 1,
    message: `${F}: line 1: invalid UTF-8 byte 0x88 at byte 9 (if this is an older Windows-1250 extract, run again with --encoding windows-1250)`,
  },
  // the file itself and the options
  { name: 'file not found', status: 1, message: `${F}: file not found` },
  { name: 'a terminal escape sequence in the file name is not echoed raw', file: 'moi\u001b[2J.csv', args: ['--month', '2024-03'], status: 1, message: 'moi\\x1b[2J.csv: file not found' },
  { name: 'a directory instead of a file', setup: (_d, f) => fs.mkdirSync(f), status: 1, message: `${F}: not a file (a directory?): give the path of the extract` },
  { name: 'no month in the file name', file: 'extract.csv', bytes: LF(HEADER, ROW), status: 1, message: 'extract.csv: cannot tell the month from the file name (moi_YYYY_MM.csv): give --month YYYY-MM' },
  { name: '--month that is not a month', bytes: LF(HEADER, ROW), args: ['--month', '2024-13'], status: 2, message: '--month must be YYYY-MM, not 2024-13' },
  { name: 'unknown --encoding', bytes: LF(HEADER, ROW), args: ['--encoding', 'latin2'], status: 2, message: '--encoding must be utf-8 or windows-1250, not latin2' },
  // content that cannot make a month
  {
    name: 'the only event has an unknown origin and no donor', bytes: LF(HEADER, row('A1', { from_settlement: '', from_municipality: '' })), status: 1,
    message: `${F}: line 2, field from_municipality: form A1: from unknown and no donor for it among the 1 events of 2024-03: too few complete forms in the month to impute from`,
  },
  {
    name: 'a closed month', bytes: LF(HEADER, GOOD, row('A9')), status: 1,
    setup: (data) => {
      const dir = tmpDir();
      fs.writeFileSync(path.join(dir, F), LF(HEADER, GOOD));
      runMonth({ data, input: path.join(dir, F), log: logFor(data) });
      new Store(data).close(['2024-03'], 'test');
    },
    message: "month 2024-03 is closed (its results are final), so an extract for it is refused. Its forms that come in a later month's extract are carried forward to the first open month if new (quarantined if recorded more than 12 months before that extract), skipped if identical to forms already counted, and withheld if they correct them (recorded in that extract's delivery)",
  },
];

/** Run the cases a few at a time (each is a process start). */
async function runAll<T>(items: T[], width: number, fn: (x: T) => Promise<CliResult>): Promise<CliResult[]> {
  const out: CliResult[] = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => { while (next < items.length) { const i = next++; out[i] = await fn(items[i]!); } }));
  return out;
}

describe('bad extracts through the CLI: one clear line, a non-zero exit, nothing written', () => {
  const stores = CASES.map(() => tmpDir('migstat-bad-'));
  const results: CliResult[] = [];
  beforeAll(async () => {
    results.push(...(await runAll(CASES, 3, async (c) => {
      const i = CASES.indexOf(c);
      const dir = tmpDir();
      const file = path.join(dir, c.file ?? F);
      c.setup?.(stores[i]!, file);
      if (c.bytes !== undefined) fs.writeFileSync(file, c.bytes);
      return migstatAsync(['month', '--data', stores[i]!, '--input', file, ...(c.args ?? [])]).done;
    })));
  }, 120_000);

  test.each(CASES.map((c, i) => [c.name, i] as const))('%s', (_name, i) => {
    const c = CASES[i]!;
    const r = results[i]!;
    expect({ status: r.status, stdout: r.stdout }).toEqual({ status: c.status, stdout: '' });
    const msg = oneErrorLine(r);
    if (typeof c.message === 'string') expect(msg).toBe(c.message);
    else expect(msg).toMatch(c.message);
    const data = stores[i]!;
    // nothing committed and no results (a closed month keeps exactly what it had), no lock left
    expect(fs.existsSync(path.join(data, '.lock'))).toBe(false);
    if (!c.setup || c.name.startsWith('a directory')) {
      for (const d of ['months', 'years', 'published', 'state/ingested.json']) expect([d, fs.existsSync(path.join(data, d))]).toEqual([d, false]);
    } else {
      expect(Object.keys(JSON.parse(fs.readFileSync(path.join(data, 'state', 'ingested.json'), 'utf8')))).toHaveLength(1);
    }
  });

  test('usage errors of commander: one line, exit 2', () => {
    for (const args of [['month', '--data', tmpDir()], ['mnth'], ['month', '--input', 'x.csv', '--bogus']]) {
      const r = migstat(args);
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/^migstat: [^\n]+\n$/);
    }
  });
});

describe('the same bytes are accepted when they are valid', () => {
  test('Windows-1250 with --encoding windows-1250; a quoted header and fields; BOM and CRLF', () => {
    const dir = tmpDir();
    const data = tmpDir();
    fs.writeFileSync(path.join(dir, F), W1250_LINE3);
    const r = migstat(['month', '--data', data, '--input', path.join(dir, F), '--encoding', 'windows-1250']);
    expect([r.status, r.stderr]).toEqual([0, '']);
    expect(r.stdout).toMatch(/^moi_2024_03\.csv: months 2024-03 processed/);
    const ev = readCsvText(fs.readFileSync(path.join(data, 'months', '2024-03', 'events.csv'), 'utf8'));
    expect(ev.map((e) => e.record_id).sort()).toEqual(['A1', 'A2š']);

    const data2 = tmpDir();
    const quoted = '\ufeff' + [HEADER.split(',').map((h) => `"${h}"`).join(','), `"A1","R",${ROW.slice(5)}`, row('A2', { to_settlement: '7010602' }), ''].join('\r\n');
    fs.writeFileSync(path.join(dir, 'moi_2024_04.csv'), quoted.replaceAll('2024-03', '2024-04'));
    const r2 = migstat(['month', '--data', data2, '--input', path.join(dir, 'moi_2024_04.csv')]);
    expect([r2.status, r2.stderr]).toEqual([0, '']);
    expect(JSON.parse(fs.readFileSync(path.join(data2, 'months', '2024-04', 'quality.json'), 'utf8'))).toMatchObject({ forms_read: 2, events: 2, quarantined: 0 });
  });
});

describe('unusable rows are quarantined with line, field and reason; the run goes on', () => {
  // [line content, expected field, expected reason, expected detail (optional)]
  const bad: [string, string, string, string?][] = [
    [row(''), 'record_id', 'schema', 'record_id must NOT have fewer than 1 characters (value: "")'],
    [row('Q02', { form_type: 'r' }), 'form_type', 'schema', 'form_type must be equal to one of the allowed values (value: "r")'],
    [row('Q03', { registration_date: '04.03.2024' }), 'registration_date', 'unreadable_date'],
    [row('Q04', { registration_date: '' }), 'registration_date', 'unreadable_date'],
    [row('Q05', { registration_date: '2024-02-30' }), 'registration_date', 'unreadable_date', 'registration_date "2024-02-30" is not a calendar date'],
    [row('Q06', { registration_date: '2024-13-01' }), 'registration_date', 'unreadable_date', 'registration_date "2024-13-01" is not a calendar date'],
    [row('Q07', { registration_date: '2024-04-02' }), 'registration_date', 'registration_after_file_month', "registered 2024-04-02, after the extract's month 2024-03"],
    // recorded before the 12-month re-send window: it could be a re-send the duplicate check no longer sees (statistician's review)
    [row('Q07b', { registration_date: '2023-02-28', move_date: '2023-02-20' }), 'registration_date', 'recorded_before_resend_window', "registered 2023-02-28, more than 12 months before the extract's month 2024-03: the duplicate check cannot tell whether it was delivered before"],
    [row('Q08', { move_date: '2024/03/01' }), 'move_date', 'schema'],
    [row('Q09', { person_id: '200198571123' }), 'person_id', 'schema', 'person_id is not 13 digits'],
    [row('Q10', { person_id: '20019857112X6' }), 'person_id', 'schema', 'person_id is not 13 digits'],
    [row('Q11', { citizenship: 'SRB' }), 'citizenship', 'schema'],
    [row('Q12', { sex: 'M' }), 'sex', 'schema'],
    [row('Q13', { birth_date: '20.01.1985' }), 'birth_date', 'schema'],
    [row('Q14', { origin_country: 'Serbia' }), 'origin_country', 'schema'],
    [row('Q15', { from_settlement: '7010-601' }), 'from_settlement', 'schema'],
    // a run of 13 digits or more may hold a JMBG (fields merged or shifted): withheld
    [row('Q16', { to_settlement: '7'.repeat(21) }), 'to_settlement', 'schema', 'to_settlement must NOT have more than 20 characters (value: "<13 digits withheld>")'],
    [row('Q17', { to_settlement: '7'.repeat(12) + 'x'.repeat(9) }), 'to_settlement', 'schema', `to_settlement must NOT have more than 20 characters (value: "${'7'.repeat(12)}${'x'.repeat(9)}")`],
    [row('Q17', { from_municipality: '7010' }), 'from_municipality', 'schema'],
    [row('Q18', { destination_country: 'rs' }), 'destination_country', 'schema'],
    [row('Q19', { to_municipality: '701140' }), 'to_municipality', 'schema'],
    [row('Q20', { registering_office: '' }), 'registering_office', 'schema'],
    [row('Q21', { nationality: '1' }), 'nationality', 'schema'],
    [row('Q22', { nationality: '23' }), 'nationality', 'schema'],
    [row('Q23', { economic_activity: '7' }), 'economic_activity', 'schema'],
    [row('Q24', { occupation: 'X' }), 'occupation', 'schema'],
    [row('Q25') + ',extra', '', 'field_count', '19 fields, expected 18'],
    [row('Q26').split(',').slice(0, 17).join(','), '', 'field_count', '17 fields, expected 18'],
    // a line broken in two before the JMBG: both halves are quarantined, the JMBG is withheld
    [row('Q27').split(',').slice(0, 4).join(','), '', 'field_count', '4 fields, expected 18'],
    [row('Q27').split(',').slice(4).join(','), '', 'field_count', '14 fields, expected 18'],
    [row('Q29', { to_settlement: '', to_municipality: '', registering_office: '99999' }), 'to_municipality', 'no_destination', 'no settlement, municipality or usable office for the new residence'],
  ];
  const dir = tmpDir();
  const data = tmpDir();
  const lines = [HEADER, GOOD, ...bad.slice(0, 10).map((b) => b[0]), '', ...bad.slice(10).map((b) => b[0])];
  fs.writeFileSync(path.join(dir, F), lines.join('\n') + '\n');
  const lineOf = (k: number): number => 5 + k + (k >= 10 ? 1 : 0); // header, three good rows, a blank line after the 10th bad row
  let r: CliResult;
  let q: Row[], disp: Row[], quality: Quality;
  beforeAll(() => {
    r = migstat(['month', '--data', data, '--input', path.join(dir, F)]);
    const m = path.join(data, 'months', '2024-03');
    q = readCsvText(fs.readFileSync(path.join(m, 'quarantine.csv'), 'utf8'));
    disp = readCsvText(fs.readFileSync(path.join(m, 'dispositions.csv'), 'utf8'));
    quality = JSON.parse(fs.readFileSync(path.join(m, 'quality.json'), 'utf8'));
  });
  test('the run succeeds, silently on stderr', () => {
    expect([r.status, r.stderr]).toEqual([0, '']);
  });
  test.each(bad.map((b, k) => [b[2], b[1] || '(line)', k] as const))('%s %s', (_reason, _field, k) => {
    const [, field, reason, detail] = bad[k]!;
    const got = q.filter((x) => +x.line! === lineOf(k));
    expect(got).toHaveLength(1);
    expect({ file: got[0]!.file, field: got[0]!.field, reason: got[0]!.reason }).toEqual({ file: F, field, reason });
    if (detail) expect(got[0]!.detail).toBe(detail);
    else expect(got[0]!.detail).toMatch(new RegExp(`^${field} must match pattern|^${field} must be equal to`));
    expect(disp.filter((d) => +d.line! === lineOf(k)).map((d) => [d.disposition, d.reason])).toEqual([['quarantined', reason]]);
  });
  test('nothing else is quarantined; every line read has one fate; the identity holds; no JMBG in the quarantine', () => {
    expect(q).toHaveLength(bad.length);
    expect(quality.forms_read).toBe(3 + bad.length); // the blank line is not a form
    expect(quality.quarantined).toBe(bad.length);
    expect(quality.events).toBe(3);
    expect(disp).toHaveLength(quality.forms_read);
    expect(new Set(disp.map((d) => d.line)).size).toBe(disp.length);
    expect(quality.identity.holds).toBe(true);
    const half = q.find((x) => +x.line! === lineOf(bad.length - 2))!;
    expect(half.record_id).toBe('<13 digits withheld>');
    const all = listFiles(data).map((f) => fs.readFileSync(path.join(data, f), 'latin1')).join('');
    expect(all).not.toMatch(/2001985711236|0909968716237/);
  });
});
