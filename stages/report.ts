/**
 * The HTML quality report of a month or a year: one self-contained file (inline CSS and SVG, no scripts, no
 * external URLs) that opens offline. Charts are rendered at build time: vega-lite → vega → SVG.
 * Deterministic: the same input gives the same bytes (no clocks, stable sort orders, stable SVG ids).
 *
 * Sections: 1 counts and the row-count identity · 2 rule failures (Pareto) · 3 imputation · 4 delays ·
 * 5 carried forward and unmatched departures · 6 systemic findings · 7 consistency checks · 8 year-on-year
 * flags (ESMS 11.2) · 9 immigrants, emigrants and net migration by region (and by month) · 10 accuracy
 * (ESMS 13.1-13.3) · reference metadata supplied by the caller (esms).
 */
import type { Quality } from '../pipeline/contracts';
import type { Row } from '../pipeline/csv';
import { vegaLiteToSvg } from './report/vega';
import { loadClassification, SERIES_NOTE, type Series } from './territory';

export interface MonthlyRegionRow { month: string; region: string; immigrants: number; emigrants: number; net: number }
export interface ReportInput {
  title: string;
  period: string;
  quality: Quality;
  territory: Row[];
  monthly?: MonthlyRegionRow[];
  /** ESMS concepts (e.g. '13.1', '18.1') → text, from the office's reference metadata. */
  esms?: Record<string, string>;
}

const OUT_OF_SCOPE_LABEL: Record<string, string> = {
  foreigner: 'not a Serbian citizen',
  from_abroad: 'arrival from abroad',
  departure_abroad: 'departure abroad',
  destination_km: 'destination in Kosovo i Metohija (not covered since 1998)',
  same_settlement: 'move within the same settlement',
};

export function esc(v: unknown): string {
  return String(v ?? '').replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/** 12345 → "12,345" (fixed, locale-independent). */
export function fmtInt(n: number | undefined): string {
  if (n === undefined || n === null || Number.isNaN(n)) return '–';
  const s = String(Math.round(Math.abs(n)));
  return (n < 0 ? '−' : '') + s.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}
export function fmtPct(num: number, den: number, digits = 1): string {
  if (!den) return '–';
  return `${((100 * num) / den).toFixed(digits)}%`;
}
const sum = (o: Record<string, number> | undefined): number => Object.values(o ?? {}).reduce((a, b) => a + (Number(b) || 0), 0);
const byKey = <T>(a: [string, T], b: [string, T]): number => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);

function table(head: string[], rows: (string | number)[][], opts: { numeric?: boolean[]; cls?: string; caption?: string } = {}): string {
  const num = opts.numeric ?? head.map((_, i) => i > 0);
  const th = head.map((h, i) => `<th${num[i] ? ' class="n"' : ''}>${esc(h)}</th>`).join('');
  const body = rows.length
    ? rows.map((r) => `<tr>${r.map((c, i) => `<td${num[i] ? ' class="n"' : ''}>${typeof c === 'number' ? fmtInt(c) : esc(c)}</td>`).join('')}</tr>`).join('\n')
    : `<tr><td colspan="${head.length}" class="none">none</td></tr>`;
  return `<table${opts.cls ? ` class="${opts.cls}"` : ''}>${opts.caption ? `<caption>${esc(opts.caption)}</caption>` : ''}<thead><tr>${th}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

const CHART_CONFIG = {
  background: 'white',
  font: 'Helvetica, Arial, sans-serif',
  axis: { labelFontSize: 11, titleFontSize: 11, titleFontWeight: 'normal', gridColor: '#e5e5e5' },
  legend: { labelFontSize: 11, titleFontSize: 11 },
  view: { stroke: null },
};
const COLORS = { immigrants: '#1f5a96', emigrants: '#c8553d', net: '#5b8c3a' };

let chartNo = 0;
function chart(spec: Record<string, unknown>, caption: string): string {
  chartNo++;
  const svg = vegaLiteToSvg({ $schema: 'https://vega.github.io/schema/vega-lite/v6.json', config: CHART_CONFIG, ...spec }, `ch${chartNo}`);
  return `<figure class="chart">${svg}<figcaption>${esc(caption)}</figcaption></figure>`;
}

export function buildReport(input: ReportInput): string {
  chartNo = 0;
  const q = input.quality;
  const period = input.period;
  const events = q.events ?? 0;
  const series = (q.series || (input.territory[0]?.series ?? '')) as Series;
  const cls = loadClassification();
  const regionName = (code: string): string => cls.regions.get(code)?.nameEn ?? code;
  const sections: string[] = [];
  const toc: [string, string][] = [];
  const section = (id: string, title: string, body: string): void => {
    toc.push([id, title]);
    sections.push(`<section id="${id}"><h2>${esc(title)}</h2>\n${body}\n</section>`);
  };

  // 1. Counts and the identity ----------------------------------------------------------------------------
  const oos = Object.entries(q.out_of_scope ?? {}).sort(byKey);
  const oosTotal = sum(q.out_of_scope);
  const accepted = events + (q.linked_departures ?? 0) + (q.unmatched_departures ?? 0) + oosTotal + (q.replaced_versions ?? 0) + (q.corrections_to_closed ?? 0);
  const countRows: (string | number)[][] = [
    ['Forms read (data lines of the extracts)', q.forms_read],
    ['Exact duplicates (skipped)', q.duplicates],
    ['Quarantined (unusable forms)', q.quarantined],
    ['Accepted forms', accepted],
    ['\u2003migration events (registration forms in scope)', events],
    ['\u2003departure forms linked to a registration', q.linked_departures ?? 0],
    ['\u2003unmatched departures (not tabulated)', q.unmatched_departures ?? 0],
    ['\u2003out of scope', oosTotal],
    ...oos.map(([k, v]): (string | number)[] => [`\u2003\u2003${OUT_OF_SCOPE_LABEL[k] ?? k}`, v]),
    ['\u2003earlier versions replaced by a corrected re-send', q.replaced_versions ?? 0],
    ['\u2003corrections to closed months (logged, not applied)', q.corrections_to_closed ?? 0],
  ];
  const idn = q.identity ?? { holds: false, lhs: 0, rhs: {} };
  const rhsTotal = sum(idn.rhs);
  const identityText = idn.holds
    ? `<p class="ok">The row-count identity holds: forms read ${fmtInt(idn.lhs)} = ${Object.entries(idn.rhs).sort(byKey).map(([k, v]) => `${esc(k.replace(/_/g, ' '))} ${fmtInt(v)}`).join(' + ')}.</p>`
    : `<p class="bad">The row-count identity does NOT hold: forms read ${fmtInt(idn.lhs)} ≠ ${fmtInt(rhsTotal)} (sum of dispositions). The results must not be released before this is explained.</p>`;
  section('counts', '1. Counts and the row-count identity',
    `<p>Every form line read ends in exactly one disposition; nothing is dropped silently.</p>
${table(['Disposition', 'Forms'], countRows, { cls: 'counts' })}
${identityText}
<p>Values of the ${fmtInt(events)} events by provenance: ${Object.entries(q.provenance ?? {}).sort(byKey).map(([k, v]) => `${esc(k.replace(/_/g, ' '))} ${fmtInt(v)}`).join(', ') || '–'}; territorial codes recoded through the correspondence of changes: ${fmtInt(q.recoded_territory ?? 0)}.</p>`);

  // 2. Rule failures: Pareto -----------------------------------------------------------------------------
  const rules = Object.entries(q.rules ?? {}).map(([id, r]) => ({ id, ...r })).sort((a, b) => b.fails - a.fails || (a.id < b.id ? -1 : 1));
  const totalFails = rules.reduce((a, r) => a + r.fails, 0);
  let cum = 0;
  const pareto = rules.map((r) => { cum += r.fails; return { ...r, cum, cumShare: totalFails ? cum / totalFails : 0 }; });
  const failing = pareto.filter((r) => r.fails > 0);
  const paretoChart = failing.length
    ? chart({
      width: Math.max(220, 46 * failing.length), height: 220,
      data: { values: failing.map((r) => ({ rule: r.id, fails: r.fails, cumulative: Math.round(1000 * r.cumShare) / 10 })) },
      encoding: { x: { field: 'rule', type: 'nominal', sort: null, title: null, axis: { labelAngle: -35, labelLimit: 220 } } },
      layer: [
        { mark: { type: 'bar', color: COLORS.emigrants }, encoding: { y: { field: 'fails', type: 'quantitative', title: 'records failing' } } },
        { mark: { type: 'line', color: '#333', point: { color: '#333' } }, encoding: { y: { field: 'cumulative', type: 'quantitative', title: 'cumulative share of failures (%)', scale: { domain: [0, 100] } } } },
      ],
      resolve: { scale: { y: 'independent' } },
    }, 'Rule failures, most frequent first (bars), and their cumulative share (line): the few rules behind most failures come first.')
    : '<p class="ok">No rule failed.</p>';
  section('rules', '2. Rule failures (Pareto)',
    `${paretoChart}
${table(['Rule', 'Severity', 'Items', 'Passes', 'Fails', 'N/A', 'Fail rate', 'Cumulative share', 'Error', 'Expression'],
      pareto.map((r) => [r.id, r.severity ?? '', r.items, r.passes, r.fails, r.na, fmtPct(r.fails, r.items - r.na), totalFails ? `${(100 * r.cumShare).toFixed(1)}%` : '–', r.error ?? '', r.expression ?? '']),
      { numeric: [false, false, true, true, true, true, true, true, false, false], cls: 'rules' })}`);

  // 3. Imputation ------------------------------------------------------------------------------------------
  const vars = [...new Set([...Object.keys(q.imputed ?? {}), ...Object.keys(q.imputation_by_method ?? {})])].sort();
  const methods = [...new Set(Object.values(q.imputation_by_method ?? {}).flatMap((m) => Object.keys(m)))].sort();
  const impRows = vars.map((v) => {
    const total = q.imputed?.[v] ?? sum(q.imputation_by_method?.[v]);
    return [v, ...methods.map((m) => q.imputation_by_method?.[v]?.[m] ?? 0), total, fmtPct(total, events, 2)];
  });
  section('imputation', '3. Imputation rates by variable and method',
    `<p>Deductive (logical) imputation first, donor imputation (seeded, one donor per record) second. National affiliation is never imputed. Rates are per event (${fmtInt(events)}).</p>
${table(['Variable', ...methods, 'Imputed', 'Rate'], impRows)}`);

  // 4. Delays ----------------------------------------------------------------------------------------------
  const delays = Object.entries(q.delay_distribution ?? {}).sort((a, b) => {
    const na = Number(a[0]);
    const nb = Number(b[0]);
    if (Number.isNaN(na) !== Number.isNaN(nb)) return Number.isNaN(na) ? 1 : -1;
    return Number.isNaN(na) ? byKey(a, b) : na - nb;
  });
  const delayTotal = sum(q.delay_distribution);
  const delayChart = delays.length
    ? chart({
      width: Math.max(200, 34 * delays.length), height: 180,
      data: { values: delays.map(([k, v]) => ({ delay: k, events: v })) },
      mark: { type: 'bar', color: COLORS.immigrants },
      encoding: { x: { field: 'delay', type: 'nominal', sort: null, title: 'delay of registration (whole months)', axis: { labelAngle: 0 } }, y: { field: 'events', type: 'quantitative', title: 'events' } },
    }, 'Events by delay between the move and its registration, in whole months; a delayed registration is counted in the month it was recorded.')
    : '';
  section('delays', '4. Delay of registration',
    `<p>${fmtInt(q.delayed_events)} of ${fmtInt(events)} events (${fmtPct(q.delayed_events, events)}) were registered one or more months after the move; they are counted in the month in which the registration was recorded (ESMS 13.3).</p>
${delayChart}
${table(['Delay (months)', 'Events', 'Share'], delays.map(([k, v]) => [k, v, fmtPct(v, delayTotal)]))}`);

  // 5. Carried forward, unmatched departures ---------------------------------------------------------------
  const dForms = (q.linked_departures ?? 0) + (q.unmatched_departures ?? 0);
  section('coverage', '5. Carried-forward forms and unmatched departures',
    `<ul>
<li><b>${fmtInt(q.carried_forward)}</b> events (${fmtPct(q.carried_forward, events)}) belong to a month that was already closed (published) and were carried forward into the earliest open month; published figures are not revised (ESMS 17.2).</li>
<li><b>${fmtInt(q.unmatched_departures)}</b> departure forms with a domestic destination have no registration form (${fmtPct(q.unmatched_departures, dForms)} of ${fmtInt(dForms)} departure forms in scope): persons deregistered but never registered at the new residence. They are not tabulated; this is the measurable part of the under-coverage described in ESMS 13.1.</li>
<li><b>${fmtInt(q.corrections_to_closed ?? 0)}</b> corrections arrived for forms of closed months: logged, not applied.</li>
</ul>`);

  // 6. Systemic findings -----------------------------------------------------------------------------------
  const systemic = [...(q.systemic ?? [])].sort((a, b) => (a.rule < b.rule ? -1 : a.rule > b.rule ? 1 : a.office < b.office ? -1 : a.office > b.office ? 1 : 0));
  section('systemic', '6. Systemic (hard) errors',
    `<p>A rule failing for an unusually large share of one registering office's forms in one month is escalated from a light (random) to a hard (systemic) error and corrected by one logged rule for all affected records.</p>
${table(['Rule', 'Registering office', 'Share failing', 'Forms', 'Action'], systemic.map((s) => [s.rule, s.office, `${(100 * s.share).toFixed(1)}%`, s.items, s.action]), { numeric: [false, false, true, true, false] })}`);

  // 7. Consistency checks ----------------------------------------------------------------------------------
  const checks = [...(q.checks ?? [])].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const bad = checks.filter((c) => !c.ok).length;
  section('checks', '7. Consistency checks',
    `<p class="${bad ? 'bad' : 'ok'}">${checks.length} check(s), ${bad} not satisfied.</p>
${table(['Check', 'Result', 'Imbalance', 'Detail'], checks.map((c) => [c.id, c.ok ? 'ok' : 'NOT OK', c.imbalance, c.detail]), { numeric: [false, false, true, false], cls: 'checks' })}`);

  // 8. Year-on-year flags (ESMS 11.2) ---------------------------------------------------------------------
  const size = (x: number | null): number => (x === null ? Number.POSITIVE_INFINITY : Math.abs(x)); // (from 0 first)
  const yoy = [...(q.yoy_flags ?? [])].sort((a, b) => size(b.change_pct) - size(a.change_pct) || (a.level < b.level ? -1 : a.level > b.level ? 1 : a.code < b.code ? -1 : a.code > b.code ? 1 : a.measure < b.measure ? -1 : 1));
  const unitName = (level: string, code: string): string => {
    if (level === 'republic') return 'Republic of Serbia';
    if (level === 'region') return cls.regions.get(code)?.nameEn ?? code;
    if (level === 'area') return cls.areas.get(code)?.nameEn ?? code;
    return cls.municipalities.get(code)?.name ?? code;
  };
  section('yoy', '8. Comparison with the previous year',
    `<p>Results are compared with the previous year; significant deviations by territory are flagged for review of their causes (ESMS 11.2). ${q.yoy_flags === undefined ? `The year was ${esc(q.yoy_note ?? 'not compared')}.` : `${yoy.length} flag(s).${q.yoy_note ? ` Territories ${esc(q.yoy_note)}.` : ''}`}</p>
${table(['Level', 'Code', 'Territory', 'Measure', 'Previous', 'Current', 'Change'], yoy.map((f) => [f.level, f.code, unitName(f.level, f.code), f.measure, f.previous, f.current, f.change_pct === null ? 'from 0' : `${f.change_pct >= 0 ? '+' : '−'}${Math.abs(f.change_pct).toFixed(1)}%`]), { numeric: [false, false, false, false, true, true, true] })}`);

  // 9. Results by region (and by month) --------------------------------------------------------------------
  const regionRows = input.territory
    .filter((r) => r.level === 'region' && (r.sex ?? 'T') === 'T')
    .map((r) => ({ code: r.code!, name: regionName(r.code!), immigrants: Number(r.immigrants), emigrants: Number(r.emigrants), net: Number(r.net) }))
    .sort((a, b) => (a.code < b.code ? -1 : 1));
  const rep = input.territory.find((r) => r.level === 'republic' && (r.sex ?? 'T') === 'T');
  const regionNames = regionRows.map((r) => r.name);
  let results = '';
  if (regionRows.length) {
    results += chart({
      width: 170, height: 200,
      data: { values: regionRows.flatMap((r) => [{ region: r.name, measure: 'immigrants', value: r.immigrants }, { region: r.name, measure: 'emigrants', value: r.emigrants }]) },
      mark: 'bar',
      encoding: {
        column: { field: 'region', type: 'nominal', sort: regionNames, title: null, header: { labelFontSize: 11, labelAngle: 0 } },
        x: { field: 'measure', type: 'nominal', sort: ['immigrants', 'emigrants'], title: null, axis: { labels: false, ticks: false } },
        y: { field: 'value', type: 'quantitative', title: 'persons' },
        color: { field: 'measure', type: 'nominal', sort: ['immigrants', 'emigrants'], scale: { domain: ['immigrants', 'emigrants'], range: [COLORS.immigrants, COLORS.emigrants] }, title: null, legend: { orient: 'top' } },
      },
    }, `Immigrants and emigrants by region, ${period}.`);
    results += chart({
      width: 520, height: 34 * regionRows.length,
      data: { values: regionRows.map((r) => ({ region: r.name, net: r.net, sign: r.net >= 0 ? 'gain' : 'loss' })) },
      mark: 'bar',
      encoding: {
        y: { field: 'region', type: 'nominal', sort: regionNames, title: null, axis: { labelLimit: 260 } },
        x: { field: 'net', type: 'quantitative', title: 'net internal migration (immigrants − emigrants)' },
        color: { field: 'sign', type: 'nominal', scale: { domain: ['gain', 'loss'], range: [COLORS.net, COLORS.emigrants] }, legend: null },
      },
    }, `Net internal migration by region, ${period}.`);
    results += table(['Region', 'Code', 'Immigrants', 'Emigrants', 'Net'],
      [...regionRows.map((r) => [r.name, r.code, r.immigrants, r.emigrants, r.net]), ...(rep ? [['Republic of Serbia', 'RS', Number(rep.immigrants), Number(rep.emigrants), Number(rep.net)]] : [])],
      { numeric: [false, false, true, true, true], cls: 'results' });
  } else results += '<p>No regional results were supplied.</p>';
  if (input.monthly?.length) {
    const mrows = [...input.monthly].sort((a, b) => (a.month < b.month ? -1 : a.month > b.month ? 1 : a.region < b.region ? -1 : 1));
    const mregions = [...new Set(mrows.map((r) => r.region))].sort();
    const regionSort = mregions.map(regionName);
    results += chart({
      width: 560, height: 200,
      data: { values: mrows.map((r) => ({ month: r.month, region: regionName(r.region), k: mregions.indexOf(r.region), immigrants: r.immigrants })) },
      mark: 'bar',
      encoding: {
        x: { field: 'month', type: 'ordinal', title: 'month of registration', axis: { labelAngle: -40 } },
        y: { field: 'immigrants', type: 'quantitative', title: 'immigrants', stack: 'zero' },
        color: { field: 'region', type: 'nominal', sort: regionSort, title: 'region', scale: { scheme: 'tableau10' }, legend: { labelLimit: 260 } },
        order: { field: 'k', type: 'quantitative', sort: 'ascending' },
      },
    }, `Immigrants by month of registration and region, ${period}.`);
    results += chart({
      width: 560, height: 200,
      data: { values: mrows.flatMap((r) => [{ month: r.month, region: regionName(r.region), net: r.net }]) },
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: 'month', type: 'ordinal', title: 'month of registration', axis: { labelAngle: -40 } },
        y: { field: 'net', type: 'quantitative', title: 'net internal migration' },
        color: { field: 'region', type: 'nominal', sort: regionSort, title: 'region', scale: { scheme: 'tableau10' }, legend: { labelLimit: 260 } },
      },
    }, `Net internal migration by month of registration and region, ${period}.`);
    const months = [...new Set(mrows.map((r) => r.month))];
    results += table(['Month', 'Immigrants', 'Emigrants', 'Net'], months.map((m) => {
      const rs = mrows.filter((r) => r.month === m);
      return [m, rs.reduce((a, r) => a + r.immigrants, 0), rs.reduce((a, r) => a + r.emigrants, 0), rs.reduce((a, r) => a + r.net, 0)];
    }), { caption: 'Sum over regions by month of registration' });
  }
  section('results', '9. Immigrants, emigrants and net migration by region', results);

  // 10. Accuracy (ESMS 13) ---------------------------------------------------------------------------------
  const esms = input.esms ?? {};
  const ruleFailRecords = totalFails;
  const imputedCells = vars.reduce((a, v) => a + (q.imputed?.[v] ?? sum(q.imputation_by_method?.[v])), 0);
  const topImp = vars.map((v) => [v, q.imputed?.[v] ?? sum(q.imputation_by_method?.[v])] as [string, number]).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, 3);
  const hard = rules.filter((r) => r.severity === 'hard' && r.fails > 0).length;
  section('accuracy', '10. Accuracy (ESMS 13)',
    `<h3>13.1 Overall accuracy</h3>
<p>${esc(esms['13.1'] ?? 'The Ministry of Interior submits the records of registration and deregistration of usual residence every month for the previous month; the quality of these secondary data for statistical purposes is generally considered good.')}</p>
<p>For ${esc(period)}: ${fmtInt(q.forms_read)} forms read, ${fmtInt(events)} migration events tabulated; the row-count identity ${idn.holds ? 'holds' : '<b>does not hold</b>'}; ${checks.length - bad} of ${checks.length} consistency checks satisfied.</p>
<h3>13.2 Sampling error</h3>
<p>Not applicable. ${esc(esms['13.2'] ?? 'The statistics are a census of administrative records: every registration of a change of usual residence is processed, no sample is drawn.')}</p>
<h3>13.3 Non-sampling error</h3>
<p><b>Coverage.</b> Persons who change their usual residence without deregistering and registering are not covered and their number cannot be quantified. The measurable part: ${fmtInt(q.unmatched_departures)} departure forms with a domestic destination had no registration form (${fmtPct(q.unmatched_departures, dForms)} of departure forms in scope); ${fmtInt(q.quarantined)} forms (${fmtPct(q.quarantined, q.forms_read)} of forms read) were unusable and quarantined.</p>
<p><b>Processing.</b> ${fmtInt(ruleFailRecords)} rule failures over ${rules.length} rules (${failing.length} rules failing at least once, ${hard} escalated to or defined as hard); ${systemic.length} systemic finding(s) corrected by rule. ${fmtInt(imputedCells)} values imputed${topImp.length ? ` (most: ${topImp.map(([v, n]) => `${esc(v)} ${fmtInt(n)}, ${fmtPct(n, events, 2)}`).join('; ')})` : ''}; national affiliation is never imputed.</p>
<p><b>Timeliness of registration.</b> ${esc(esms['13.3'] ?? 'Delayed registration of a change of usual residence is the main cause of error: a change registered one or more months after the move is counted in the month in which the registration was recorded.')} ${fmtInt(q.delayed_events)} events (${fmtPct(q.delayed_events, events)}) were registered late; ${fmtInt(q.carried_forward)} forms arrived for closed months and were carried forward.</p>
<p>Confidence limits were not calculated.</p>`);

  const otherEsms = Object.entries(esms).filter(([k]) => !['13.1', '13.2', '13.3'].includes(k)).sort(byKey);
  if (otherEsms.length) section('esms', 'Reference metadata (ESMS)', otherEsms.map(([k, v]) => `<h3>${esc(k)}</h3><p>${esc(v)}</p>`).join('\n'));

  const note = SERIES_NOTE[series] ?? '';
  const provisional = q.provisional ? '<p class="bad"><b>Provisional:</b> not all months of the period are available; these results are not for release.</p>' : '';
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(input.title)} – quality report ${esc(period)}</title>
<style>
body{font-family:Helvetica,Arial,sans-serif;color:#222;max-width:1100px;margin:0 auto;padding:24px 32px;line-height:1.4;font-size:14px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;border-bottom:2px solid #1f5a96;padding-bottom:3px;margin-top:32px}h3{font-size:14px;margin:16px 0 4px}
.sub{color:#555;margin:0 0 12px}.series{background:#f3f6fa;border-left:4px solid #1f5a96;padding:6px 10px;font-size:13px}
table{border-collapse:collapse;margin:8px 0 12px;font-size:13px}th,td{border-bottom:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}td.none{color:#777;font-style:italic}
caption{text-align:left;font-size:12px;color:#555;padding-bottom:2px}
.ok{color:#2d6a1f}.bad{color:#a8201a;font-weight:bold}
figure.chart{margin:12px 0}figure.chart svg{max-width:100%;height:auto}figcaption{font-size:12px;color:#555}
nav ol{columns:2;font-size:13px}table.rules td:last-child{font-family:monospace;font-size:12px}
</style>
</head>
<body>
<header>
<h1>${esc(input.title)}</h1>
<p class="sub">Quality report for ${esc(period)} · series ${esc(series)}</p>
<p class="series">${esc(note)}</p>
${provisional}
<nav><ol>${toc.map(([id, t]) => `<li><a href="#${id}">${esc(t.replace(/^\d+\.\s*/, ''))}</a></li>`).join('')}</ol></nav>
</header>
<main>
${sections.join('\n')}
</main>
</body>
</html>
`;
}
