import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Quality } from '../pipeline/contracts';
import type { Row } from '../pipeline/csv';
import { buildReport, type ReportInput } from '../stages/report';
import { CHROMIUM, dumpDom, screenshot } from './helpers/chromium';

const REGIONS = ['RS11', 'RS12', 'RS21', 'RS22'];

function quality(): Quality {
  return {
    period: '2024', series: '1998-', forms_read: 41250, duplicates: 212, quarantined: 87,
    out_of_scope: { foreigner: 1310, from_abroad: 640, departure_abroad: 455, destination_km: 12, same_settlement: 2210 },
    events: 30110, delayed_events: 4120, carried_forward: 233, unmatched_departures: 903,
    imputed: { sex: 41, age: 96, activity: 520, from_municipality: 311 },
    rules: {
      'R01-jmbg-check': { items: 30110, passes: 29790, fails: 320, na: 0, severity: 'light', expression: 'jmbg_valid(jmbg)' },
      'R02-date-in-month': { items: 30110, passes: 29410, fails: 700, na: 0, severity: 'hard', expression: 'month(registration_date) == file_month' },
      'R03-activity-under-15': { items: 30110, passes: 4800, fails: 45, na: 25265, severity: 'light', expression: 'age < 15 -> activity == "NA"' },
      'R04-origin-known': { items: 30110, passes: 29799, fails: 311, na: 0, severity: 'light', expression: 'from_settlement != "" || linked_d' },
      'R05-age-range': { items: 30110, passes: 30096, fails: 14, na: 0, severity: 'light', expression: '0 <= age <= 115' },
      'R06-<script>': { items: 10, passes: 10, fails: 0, na: 0, severity: 'light', expression: 'a < b && "c"' },
    },
    linked_departures: 5200, replaced_versions: 21, corrections_to_closed: 3, recoded_territory: 58,
    delay_distribution: { '0': 25390, '1': 2400, '2': 980, '3': 420, '6': 200, '12': 120, unknown: 600 },
    imputation_by_method: {
      sex: { jmbg: 38, donor: 3 }, age: { jmbg: 90, donor: 6 }, activity: { donor: 520 }, from_municipality: { linked_d_form: 280, donor: 31 },
    },
    systemic: [{ rule: 'R02-date-in-month', office: '70092', share: 0.93, items: 140, action: 'swap day and month of registration_date and move_date' }],
    identity: {
      holds: true, lhs: 41250,
      rhs: { events: 30110, linked_departures: 5200, unmatched_departures: 903, out_of_scope: 4627, quarantined: 87, duplicates: 212, replaced_versions: 21, corrections_to_closed: 3 },
    },
    checks: [
      { id: 'H1-municipality-area', ok: true, imbalance: 0, detail: 'every area = sum of its municipalities' },
      { id: 'H4-annual-months', ok: true, imbalance: 0, detail: 'annual = sum of the twelve months, cell by cell' },
      { id: 'B1-balance-km', ok: true, imbalance: 0, detail: 'Republic immigrants = emigrants + arrivals from K&M' },
    ],
    yoy_flags: [
      { code: '70092', level: 'municipality', measure: 'immigrants', previous: 410, current: 655, change_pct: 59.8 },
      { code: 'RS22', level: 'region', measure: 'emigrants', previous: 6200, current: 5010, change_pct: -19.2 },
    ],
    provenance: { reported: 28900, deduced: 680, imputed: 297, recoded: 58, carried_forward: 233 },
  };
}

function input(): ReportInput {
  const imm = [11800, 7900, 6100, 4300];
  const emi = [9700, 8300, 6700, 5400];
  const territory: Row[] = [
    { series: '1998-', level: 'republic', code: 'RS', sex: 'T', immigrants: '30110', emigrants: '30100', net: '10' },
    ...REGIONS.flatMap((code, i) => (['T', 'M', 'F'] as const).map((sex) => {
      const f = sex === 'T' ? 1 : sex === 'M' ? 0.48 : 0.52;
      const a = Math.round(imm[i]! * f);
      const b = Math.round(emi[i]! * f);
      return { series: '1998-', level: 'region', code, sex, immigrants: String(a), emigrants: String(b), net: String(a - b) };
    })),
  ];
  const monthly = Array.from({ length: 12 }, (_, m) => REGIONS.map((region, i) => {
    const immigrants = Math.round((imm[i]! / 12) * (1 + 0.3 * Math.sin(m / 2)));
    const emigrants = Math.round((emi[i]! / 12) * (1 + 0.2 * Math.cos(m / 3)));
    return { month: `2024-${String(m + 1).padStart(2, '0')}`, region, immigrants, emigrants, net: immigrants - emigrants };
  })).flat();
  return {
    title: 'Internal migration of the Republic of Serbia, 2024',
    period: '2024',
    quality: quality(),
    territory,
    monthly,
    esms: { '18.1': 'Records of the Ministry of Interior <MoI> on registration & deregistration of usual residence.' },
  };
}

describe('buildReport', () => {
  test('self-contained, escaped, deterministic HTML with every section and inline SVG charts', () => {
    const html = buildReport(input());
    expect(buildReport(input())).toBe(html);
    // offline: no external resources, no scripts
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//i);
    expect(html).not.toMatch(/@import|url\((?!#)/i);
    // escaping
    expect(html).toContain('R06-&lt;script&gt;');
    expect(html).toContain('&lt;MoI&gt; on registration &amp; deregistration');
    // sections
    for (const s of ['Counts and the row-count identity', 'Rule failures (Pareto)', 'Imputation rates by variable and method', 'Delay of registration',
      'Carried-forward forms and unmatched departures', 'Systemic (hard) errors', 'Consistency checks', 'Comparison with the previous year',
      'by region', '13.1 Overall accuracy', '13.2 Sampling error', '13.3 Non-sampling error']) expect(html).toContain(s);
    // figures of the run
    expect(html).toContain('The row-count identity holds: forms read 41,250');
    expect(html).toContain('Not applicable.');
    expect(html).toMatch(/903<\/b> departure forms/);
    // Pareto order: R02 (700) before R01 (320) before R04 (311); cumulative share of the first = 700/1390
    const order = ['R02-date-in-month', 'R01-jmbg-check', 'R04-origin-known', 'R03-activity-under-15', 'R05-age-range'].map((r) => html.indexOf(`<td>${r}</td>`));
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    expect(html).toContain('50.4%');
    // charts: region bars, net, Pareto, delays, two monthly charts
    expect((html.match(/<svg /g) ?? []).length).toBe(6);
    const ids = [...html.matchAll(/\bid="([^"]+)"/g)].map((m) => m[1]);
    expect(new Set(ids).size).toBe(ids.length);
  });

  test('a failing identity and failed checks are shown prominently; empty lists say none', () => {
    const q = quality();
    q.identity = { holds: false, lhs: 100, rhs: { events: 90 } };
    q.checks = [{ id: 'H1', ok: false, imbalance: 3, detail: 'area RS110 ≠ sum' }];
    q.systemic = [];
    delete q.yoy_flags;
    q.yoy_note = 'not compared: no annual results of 2023 in the store';
    const html = buildReport({ ...input(), quality: q, monthly: undefined });
    expect(html).toContain('does NOT hold');
    expect(html).toContain('NOT OK');
    expect(html).toContain('The year was not compared: no annual results of 2023 in the store.');
    expect((html.match(/<svg /g) ?? []).length).toBe(4);
  });
});

describe('the report in a browser (Debian chromium)', () => {
  test('chromium is installed (CI installs it; absence is a failure, not a skip)', () => {
    expect(fs.existsSync(CHROMIUM)).toBe(true);
  });

  test('it loads offline, the DOM has the charts and sections, the screenshot is a real image', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'migstat-report-'));
    const file = path.join(dir, 'report.html');
    fs.writeFileSync(file, buildReport(input()));
    const dom = dumpDom(file);
    expect(dom).toContain('<h1>Internal migration of the Republic of Serbia, 2024</h1>');
    const svgs = dom.match(/<svg [^>]*class="marks"/g) ?? [];
    expect(svgs.length).toBe(6);
    expect(dom).toMatch(/role-mark/);
    expect((dom.match(/aria-roledescription="bar"/g) ?? []).length).toBeGreaterThan(20);
    expect(dom).toMatch(/aria-roledescription="line mark"/);
    for (const id of ['counts', 'rules', 'imputation', 'delays', 'coverage', 'systemic', 'checks', 'yoy', 'results', 'accuracy']) expect(dom).toContain(`<section id="${id}">`);
    const png = path.join(dir, 'r.png');
    screenshot(file, png);
    const buf = fs.readFileSync(png);
    expect(buf.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    expect(buf.readUInt32BE(16)).toBe(1280); // IHDR width
    expect(buf.length).toBeGreaterThan(50_000); // text, tables and charts, not a blank page
    if (process.env.MIGSTAT_KEEP_REPORT) fs.copyFileSync(file, process.env.MIGSTAT_KEEP_REPORT);
  });
});
