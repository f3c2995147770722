/**
 * The release calendar (ESMS 08.1) and embargoed publication: `migstat release --due`.
 *
 * - config/calendar.json (schema schemas/calendar.schema.json) lists the releases: id, content, date, local
 *   time and time zone, and the day the calendar of that year was fixed. loadCalendar() adds the semantic
 *   checks: the annual internal-migration release of year Y is due on 10 July of Y+1 at 12:00 Belgrade time
 *   (unless a divergence announced in advance is explained in the calendar), fixed_on = 1 December of the
 *   year before the release, ids unique.
 * - releaseDue() publishes every release whose time has come and that is not yet published: it copies the
 *   public, aggregate files of years/Y into a hidden staging directory and renames it to published/ID in one
 *   step, with a deterministic manifest.json. Before the release instant nothing at all is written under
 *   published/ID. It runs under the store lock, so two overlapping cron runs cannot both publish; it is
 *   idempotent; content that is not ready (missing, provisional, failing its integrity check) is reported
 *   and nothing is written for it.
 * - Publishing closes the twelve months of the year (store.close(months, id)): published data are not revised
 *   (ESMS 17.2); later forms for them are carried forward.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { TZDate } from '@date-fns/tz';
import type { Manifest, Quality } from '../pipeline/contracts';
import { monthsOfYear } from '../pipeline/contracts';
import { readJson, recoverDir, replaceDirAtomic, sha256, sha256File, writeFileDurable } from '../pipeline/fsutil';
import { RunLog } from '../pipeline/log';
import { CONFIG, ROOT } from '../pipeline/paths';
import { loadJson } from '../pipeline/schemas';
import { type Store, withLock } from '../pipeline/store';
import { changedInputs, checkResultsDir, logRecords } from './audit';

export const DEFAULT_CALENDAR = path.join(CONFIG, 'calendar.json');
export const RELEASE_TIME = '12:00';
export const RELEASE_TIME_ZONE = 'Europe/Belgrade';

export interface Release {
  id: string;
  title: string;
  content: { kind: 'annual_internal_migration'; year: number };
  date: string; // YYYY-MM-DD, local date in time_zone
  time: string; // HH:MM local time
  time_zone: string; // IANA zone
  fixed_on: string; // YYYY-MM-DD: 1 December of the year before the release
  divergence?: { reason: string; announced_on: string };
}
export interface Calendar { description?: string; releases: Release[] }

export class CalendarError extends Error {}

/** The standard date of a release (ESMS 08.1): annual internal migration of year Y on 10 July of Y+1. */
export function standardDate(content: Release['content']): string {
  return `${content.year + 1}-07-10`;
}

/** Semantic problems of a calendar that the schema cannot express (empty when none). */
export function calendarProblems(cal: Calendar): string[] {
  const out: string[] = [];
  const ids = new Map<string, number>();
  const contents = new Map<string, string>();
  cal.releases.forEach((r, i) => {
    const at = `releases[${i}] (${r.id})`;
    if (ids.has(r.id)) out.push(`${at}: id ${r.id} is used twice (also releases[${ids.get(r.id)}])`);
    else ids.set(r.id, i);
    const ck = `${r.content.kind}:${r.content.year}`;
    if (contents.has(ck)) out.push(`${at}: the content ${ck} is released twice (also ${contents.get(ck)})`);
    else contents.set(ck, r.id);
    if (!validDate(r.date)) out.push(`${at}: date ${r.date} is not a calendar date`);
    if (!validDate(r.fixed_on)) out.push(`${at}: fixed_on ${r.fixed_on} is not a calendar date`);
    const std = standardDate(r.content);
    if (!r.divergence) {
      if (r.date !== std) out.push(`${at}: the annual internal-migration release of ${r.content.year} is due on ${std} (10 July of the following year), not ${r.date}; a different date needs a 'divergence' with its reason, announced in advance`);
      if (r.time !== RELEASE_TIME) out.push(`${at}: releases go out at ${RELEASE_TIME}, not ${r.time}; a different time needs a 'divergence' with its reason`);
    } else {
      // biome-ignore lint/complexity/useMathMinMax: ISO date strings (they compare as strings; Math.min would give NaN)
      const first = r.date < std ? r.date : std;
      if (!(r.divergence.announced_on < first)) out.push(`${at}: the divergence must be announced before ${first}, not on ${r.divergence.announced_on}`);
    }
    if (r.content.year + 1 > Number(r.date.slice(0, 4))) out.push(`${at}: the release of reference year ${r.content.year} cannot be dated ${r.date}, before the year is over`);
    const fixed = `${Number(r.date.slice(0, 4)) - 1}-12-01`;
    if (r.fixed_on !== fixed) out.push(`${at}: fixed_on must be ${fixed} (the calendar of ${r.date.slice(0, 4)} is fixed on 1 December of the year before), not ${r.fixed_on}`);
    if (r.time_zone !== RELEASE_TIME_ZONE) out.push(`${at}: time zone must be ${RELEASE_TIME_ZONE}`);
  });
  return out;
}

function validDate(s: string): boolean {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s);
  if (!m) return false;
  const d = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])));
  return d.getUTCFullYear() === Number(m[1]) && d.getUTCMonth() === Number(m[2]) - 1 && d.getUTCDate() === Number(m[3]);
}

/** Load and check the calendar: schema (ajv) first, then the semantic rules; one error listing every problem. */
export function loadCalendar(file: string = DEFAULT_CALENDAR): Calendar {
  if (!fs.existsSync(file)) throw new CalendarError(`release calendar not found: ${file}`);
  const cal = loadJson<Calendar>(file, 'calendar');
  const problems = calendarProblems(cal);
  // one line (the CLI shows the first line of an error): the first problem, then the others
  if (problems.length) throw new CalendarError(`${file}: ${problems[0]}${problems.length > 1 ? ` (and ${problems.length - 1} more: ${problems.slice(1).join('; ')})` : ''}`);
  return cal;
}

/**
 * `--now` as ISO 8601: with its offset (Z, ±hh:mm, ±hhmm) as written; a date-time without one, or a date alone
 * (midnight), is read in Belgrade time, the calendar's zone (not the machine's). undefined when it is not one.
 */
export function parseNow(s: string): Date | undefined {
  const withOffset = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)(Z|[+-]\d{2}:?\d{2})$/.exec(s);
  // a calendar date that does not exist (2024-02-30) is refused, not rolled over into March
  const ymd = /^(\d{4})-(\d{2})-(\d{2})/.exec(s);
  if (ymd && new Date(Date.UTC(+ymd[1]!, +ymd[2]! - 1, +ymd[3]!)).getUTCDate() !== +ymd[3]!) return undefined;
  if (withOffset) {
    const off = withOffset[2]!.length === 5 ? `${withOffset[2]!.slice(0, 3)}:${withOffset[2]!.slice(3)}` : withOffset[2]!;
    const d = new Date(`${withOffset[1]}${off}`);
    return Number.isNaN(d.getTime()) ? undefined : d;
  }
  const local = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2}))?)?$/.exec(s);
  if (!local) return undefined;
  const [y, mo, d, h, mi, se] = local.slice(1).map((x) => Number(x ?? 0)) as [number, number, number, number, number, number];
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 59) return undefined;
  const t = new Date(new TZDate(y, mo - 1, d, h, mi, se, RELEASE_TIME_ZONE).getTime());
  return Number.isNaN(t.getTime()) ? undefined : t;
}

/** The instant a release goes out: its local date and time in its IANA time zone (DST-aware). */
export function releaseInstant(r: Pick<Release, 'date' | 'time' | 'time_zone'>): Date {
  const [y, mo, d] = r.date.split('-').map(Number) as [number, number, number];
  const [h, mi] = r.time.split(':').map(Number) as [number, number];
  return new Date(new TZDate(y, mo - 1, d, h, mi, 0, r.time_zone).getTime());
}

/**
 * The files of a year directory that a release makes public: aggregate tables (not the *_imputed.csv
 * working shares), the workbook, SDMX, the quality report and quality.json. Never events, changes, forms,
 * logs or anything else.
 */
export function isPublicFile(rel: string): boolean {
  if (/^tables\/[^/]+\.csv$/.test(rel)) return !/_imputed\.csv$/.test(rel);
  if (rel === 'tables.xlsx' || rel === 'report.html' || rel === 'quality.json') return true;
  return /^sdmx\/[^/]+(\/[^/]+)*$/.test(rel) && !rel.split('/').some((s) => s.startsWith('.'));
}
/** Files a release cannot do without. */
export const REQUIRED_PUBLIC = ['tables/territory.csv', 'quality.json'];

export interface ReleaseOptions {
  store: Store;
  calendarFile?: string;
  now: Date;
  log?: RunLog;
  /** where the content of a release lives (default: years/Y of the store) */
  contentDir?: (rel: Release) => string;
  /** code version recorded in the release manifest (default: migstat <package version>) */
  codeVersion?: string;
}
export interface ReleaseResult {
  published: string[];
  notYetDue: string[];
  alreadyPublished: string[];
  notReady: { id: string; why: string }[];
  /** extension: due releases whose reference year lies wholly before the store's first month (published before the store existed) */
  predatesStore: string[];
}

function codeVersion(): string {
  try {
    return `migstat ${readJson<{ version: string }>(path.join(ROOT, 'package.json')).version}`;
  } catch {
    return 'migstat';
  }
}

function csvRows(buf: Buffer): number {
  const text = buf.toString('utf8');
  const lines = text.split('\n').filter((l) => l.length > 0).length;
  return Math.max(0, lines - 1);
}

/** Why the content of a release cannot be published yet (undefined when it is ready), and its public files. */
function inspectContent(store: Store, r: Release, dir: string): { why?: string; files?: { path: string; sha256: string }[]; quality?: Quality; manifestSha?: string } {
  const rel = path.relative(store.root, dir).split(path.sep).join('/') || dir;
  const y = r.content.year;
  if (!fs.existsSync(dir)) return { why: `${rel} does not exist: run "migstat year --year ${y}" first` };
  const qf = path.join(dir, 'quality.json');
  if (!fs.existsSync(qf)) return { why: `${rel}/quality.json is missing` };
  let q: Quality;
  try { q = readJson<Quality>(qf); } catch (e) { return { why: `${rel}/quality.json is not valid JSON: ${(e as Error).message}` }; }
  if (q.provisional === true) return { why: `${rel} is provisional (quality.json provisional: true): the release needs the final annual results from all twelve months` };
  if (q.period !== undefined && String(q.period) !== String(y)) return { why: `${rel}/quality.json is for period ${q.period}, not ${y}` };
  const check = checkResultsDir(dir, rel);
  if (!check.manifest) return { why: check.problems.map((p) => p.detail).join('; ') || `${rel} has no usable manifest.json` };
  if (check.manifest.kind !== 'year') return { why: `${rel}/manifest.json is of kind ${check.manifest.kind}, not year` };
  if (check.problems.length) {
    const shown = check.problems.slice(0, 5).map((p) => `${p.problem} ${p.path}`).join('; ');
    return { why: `${rel} fails its integrity check (${check.problems.length} problem(s): ${shown}); run "migstat audit"` };
  }
  // the annual results must be those of the months as they are now: a month rebuilt since (a late extract for an
  // open month) makes them stale, and publishing them would publish numbers the months no longer add up to
  const stale = changedInputs(store, check.manifest, /^months\/\d{4}-\d{2}\/manifest\.json$/)[0];
  if (stale) return { why: `${rel} is out of date: ${stale.path.slice(0, -'/manifest.json'.length)} changed after the annual results were built; run "migstat year --year ${y}" again` };
  const files = check.manifest.outputs.filter((o) => isPublicFile(o.path)).map((o) => ({ path: o.path, sha256: o.sha256 }));
  for (const req of REQUIRED_PUBLIC) if (!files.some((f) => f.path === req)) return { why: `${rel}/${req} is missing from the year's manifest` };
  files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { files, quality: q, manifestSha: sha256File(path.join(dir, 'manifest.json')) };
}

/**
 * Publish every release whose time has come and that is not yet published. Safe to call any time, any
 * number of times, concurrently (the store lock; a second overlapping call fails with LockError, writing
 * nothing).
 */
export function releaseDue(opts: ReleaseOptions): ReleaseResult {
  const { store, now } = opts;
  if (Number.isNaN(now.getTime())) throw new Error('release: --now is not a valid time');
  const calendarFile = opts.calendarFile ?? DEFAULT_CALENDAR;
  const cal = loadCalendar(calendarFile);
  const releases = [...cal.releases].sort((a, b) => releaseInstant(a).getTime() - releaseInstant(b).getTime() || (a.id < b.id ? -1 : 1));
  const res: ReleaseResult = { published: [], notYetDue: [], alreadyPublished: [], notReady: [], predatesStore: [] };
  // a cron line with a wrong --data would otherwise find every due release "before this store" and exit 0
  store.assertStore();
  return withLock(store, 'release --due', () => {
    const log = opts.log ?? new RunLog(store.logFile());
    // leftovers of killed runs: of a release in published/, of a year run in years/ (its previous results set aside)
    for (const a of [...recoverDir(store.publishedDir()), ...recoverDir(store.p('years'))]) log.log({ stage: 'release', event: 'recovered', action: a }, 'warn');
    store.assertCommitted('release');
    const first = store.firstMonth();
    for (const r of releases) {
      const at = releaseInstant(r);
      const target = store.publishedDir(r.id);
      if (now.getTime() < at.getTime()) {
        // (a replay with an earlier --now finds a release published on time, as the log shows: not a breach)
        if (!fs.existsSync(target)) res.notYetDue.push(r.id);
        else if (publishedOnTime(store, r.id, at)) res.alreadyPublished.push(r.id);
        else { res.notYetDue.push(r.id); res.notReady.push({ id: r.id, why: `published/${r.id} exists before its release time ${at.toISOString()}: embargo breach, investigate` }); }
        continue;
      }
      const months = monthsOfYear(r.content.year);
      if (fs.existsSync(target)) {
        if (!fs.existsSync(path.join(target, 'manifest.json'))) {
          res.notReady.push({ id: r.id, why: `published/${r.id} exists without a manifest.json: it was not written by migstat release; investigate before anything else` });
          continue;
        }
        res.alreadyPublished.push(r.id);
        // A run killed between the rename and the closing of the months: finish the job. Killed before it could
        // log the publication: log it now, if what is published is exactly this release's content.
        if (!logRecords(store.logFile()).published.has(r.id)) {
          const c = inspectContent(store, r, opts.contentDir ? opts.contentDir(r) : store.yearDir(r.content.year));
          const pub = checkResultsDir(target, `published/${r.id}`);
          const same = c.files && pub.manifest && !pub.problems.length && pub.manifest.kind === 'release' && pub.manifest.id === r.id
            && JSON.stringify(pub.manifest.outputs.map((o) => [o.path, o.sha256])) === JSON.stringify(c.files.map((f) => [f.path, f.sha256]));
          if (same) {
            const ms = sha256File(path.join(target, 'manifest.json'));
            log.log({ stage: 'release', event: 'published', release_id: r.id, recovered: true, release_instant: at.toISOString(), now: now.toISOString(), files: c.files!.length, manifest_path: `published/${r.id}/manifest.json`, manifest_sha256: ms }, 'warn');
          }
        }
        const newly = store.close(months, r.id);
        if (newly.length) log.log({ stage: 'release', event: 'closed_months', release_id: r.id, months: newly });
        continue;
      }
      const dir = opts.contentDir ? opts.contentDir(r) : store.yearDir(r.content.year);
      if (!fs.existsSync(dir) && (first === undefined || `${r.content.year}-12` < first)) {
        res.predatesStore.push(r.id);
        continue;
      }
      // a content is published once: a release renamed in the calendar must not publish it again under its new id
      const twice = store.publishedOf(r.content.year).filter((id) => id !== r.id);
      const c = twice.length ? { why: `the annual results of ${r.content.year} were already published as ${twice.join(', ')} (published/${twice[0]}); a content is released once` } : inspectContent(store, r, dir);
      if (c.why || !c.files || !c.quality) {
        res.notReady.push({ id: r.id, why: c.why ?? 'content not ready' });
        log.log({ stage: 'release', event: 'not_ready', release_id: r.id, why: c.why }, 'error');
        continue;
      }
      const files = c.files;
      const q = c.quality;
      const srcRel = path.relative(store.root, dir).split(path.sep).join('/');
      let manifestText = '';
      replaceDirAtomic(target, (staging) => {
        const outputs: Manifest['outputs'] = [];
        for (const f of files) {
          const src = path.join(dir, ...f.path.split('/'));
          const buf = fs.readFileSync(src);
          const h = sha256(buf);
          if (h !== f.sha256) throw new Error(`release ${r.id}: ${srcRel}/${f.path} changed while it was being published; nothing was published`);
          const dst = path.join(staging, ...f.path.split('/'));
          writeFileDurable(dst, buf); // fsynced, as every artefact
          const o: Manifest['outputs'][number] = { path: f.path, sha256: h, bytes: buf.length };
          if (f.path.endsWith('.csv')) o.rows = csvRows(buf);
          outputs.push(o);
        }
        const manifest: Manifest = {
          kind: 'release',
          id: r.id,
          code_version: opts.codeVersion ?? codeVersion(),
          parameters: {
            title: r.title,
            content: r.content,
            date: r.date,
            time: r.time,
            time_zone: r.time_zone,
            release_instant: at.toISOString(),
            fixed_on: r.fixed_on,
            source: srcRel,
            ...(r.divergence ? { divergence: r.divergence } : {}),
          },
          inputs: [{ path: `${srcRel}/manifest.json`, sha256: c.manifestSha! }, ...files.map((f) => ({ path: `${srcRel}/${f.path}`, sha256: f.sha256 }))],
          outputs,
          counts: { files: outputs.length, events: q.events ?? 0, forms_read: q.forms_read ?? 0 },
        };
        manifestText = JSON.stringify(manifest, null, 2) + '\n';
        writeFileDurable(path.join(staging, 'manifest.json'), manifestText);
      });
      res.published.push(r.id);
      log.log({
        stage: 'release', event: 'published', release_id: r.id, release_instant: at.toISOString(), now: now.toISOString(),
        files: files.length, manifest_path: `published/${r.id}/manifest.json`, manifest_sha256: sha256(manifestText),
      });
      const newly = store.close(months, r.id);
      if (newly.length) log.log({ stage: 'release', event: 'closed_months', release_id: r.id, months: newly });
    }
    return res;
  });
}

/** Whether the log records the publication of `id` by a run whose clock was at or after its release instant. */
function publishedOnTime(store: Store, id: string, at: Date): boolean {
  const f = store.logFile();
  if (!fs.existsSync(f)) return false;
  for (const line of fs.readFileSync(f, 'utf8').split('\n')) {
    if (!line.includes('"event":"published"') || !line.includes(`"release_id":${JSON.stringify(id)}`)) continue;
    try {
      const o = JSON.parse(line) as { stage?: string; now?: string };
      if (o.stage === 'release' && typeof o.now === 'string' && Date.parse(o.now) >= at.getTime()) return true;
    } catch { /* not a log line: audit names it */ }
  }
  return false;
}

/** A short human summary for the CLI. */
export function formatRelease(r: ReleaseResult): string {
  const parts = [
    `published: ${r.published.join(', ') || 'none'}`,
    `already published: ${r.alreadyPublished.length}`,
    `not yet due: ${r.notYetDue.length}${r.notYetDue.length ? ` (next ${r.notYetDue[0]})` : ''}`,
  ];
  if (r.predatesStore.length) parts.push(`before this store: ${r.predatesStore.length}`);
  if (r.notReady.length) parts.push(`not ready: ${r.notReady.length}`);
  return parts.join('; ');
}
