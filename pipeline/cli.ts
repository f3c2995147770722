/**
 * The `migstat` command line. The whole flow, one screen:
 *   month   ingest an extract → deliver (dedupe, systemic fix, attribution) → process each touched open month → months/<m>/
 *   close   make a month final (later forms for it are carried forward)
 *   year    Σ twelve months → years/<y>/ (tables, quality, workbook, SDMX, report; rates with --population)
 *   rebuild the whole history from archived extracts into a new store, on every core (worker threads)
 *   release publish due releases from the calendar into published/<id>/ (cron)
 *   audit   re-hash every artefact against its manifest; --explain a published cell
 *   demo    generate a year and run the whole chain (npm start)
 *   generate  synthetic extracts with ground truth
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ROOT } from './paths';
import { Command, CommanderError } from 'commander';
import { addMonths, count, isMonth } from './contracts';
import { RunLog } from './log';
import { Store, withLock } from './store';
import { fileMonthOf, InputError } from '../stages/ingest';
// Each command loads its own stages when it runs (start-up of `migstat month` does not pay for the workbook,
// SDMX and report libraries of `migstat year`).
const lazy = {
  month: () => import('./month'),
  year: () => import('./year'),
  release: () => import('../stages/release'),
  audit: () => import('../stages/audit'),
  demo: () => import('./demo'),
};

export async function main(argv: string[]): Promise<number> {
  const program = new Command();
  let code = 0;
  program.name('migstat').description('Internal-migration statistics of the Republic of Serbia from MoI residence extracts').exitOverride().showHelpAfterError(false)
    // an error is one line, "migstat: …" as every other error; help asked for, or shown for want of a command, whole
    .configureOutput({ writeErr: (s) => process.stderr.write(s.startsWith('Usage:') ? s : `migstat: ${s.split('\n').filter((l) => l.trim()).slice(0, 1).join('').replace(/^error: /, '')}\n`) });
  program.version((JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version, '--version', 'the version of migstat');
  const dataOpt = (c: Command): Command => c.option('--data <dir>', 'the working store of the office', './output');
  const logFor = (data: string): RunLog => new RunLog(new Store(data).logFile());

  dataOpt(program.command('month').description('ingest one monthly extract and run every monthly stage on it'))
    .requiredOption('--input <file>', 'the extract moi_YYYY_MM.csv')
    .option('--month <YYYY-MM>', 'the month of the extract (default: from the file name)')
    .option('--encoding <enc>', 'utf-8 or windows-1250', 'utf-8')
    .option('--settlements <file>', 'the settlements list (default: the bundled one)')
    .option('--allow-other-months', 'take an extract whose forms are mostly of other months (a supplement of late forms); refused otherwise')
    .action(async (o: { data: string; input: string; month?: string; encoding: string; settlements?: string; allowOtherMonths?: boolean }) => {
      const { runMonth } = await lazy.month();
      if (o.encoding !== 'utf-8' && o.encoding !== 'windows-1250') throw new UsageError(`--encoding must be utf-8 or windows-1250, not ${o.encoding}`);
      if (o.month !== undefined && !isMonth(o.month)) throw new UsageError(`--month must be YYYY-MM, not ${o.month}`);
      const log = logFor(o.data);
      const r = runMonth({ data: o.data, input: o.input, month: o.month, encoding: o.encoding, settlements: o.settlements ? path.resolve(o.settlements) : undefined, allowOtherMonths: o.allowOtherMonths, log });
      const st = new Store(o.data);
      if (r.rolledBack.length || r.interrupted.length) say(rollbackLine(r, path.basename(o.input), st.firstMonth()));
      const note = (m: string): string => (!st.hasOwnExtract(m) ? ', its own extract not yet received' : '');
      say(r.status === 'unchanged' ? `${path.basename(o.input)} was already ingested: nothing new in it` : `${path.basename(o.input)}: months ${r.months.join(', ')} processed (${r.months.map((m) => `${m}: ${count(r.quality[m]!.events, 'event')}${note(m)}`).join('; ')})`);
      if (r.delivery) {
        // what a statistician checks first, on the screen rather than only in the log
        const d = r.delivery;
        say(`  ${d.forms_read} forms read: ${d.accepted} accepted (${d.carried_forward} carried forward from closed months), ${count(d.duplicates, 'duplicate')}, ${d.quarantined} quarantined at delivery (quarantine.csv of the month), ${count(d.corrections_to_closed, 'correction')} to closed months withheld`);
        for (const x of d.systemic) say(`  systemic: office ${x.office}, rule ${x.rule} on ${(x.share * 100).toFixed(0)} % of its ${x.items} forms: ${x.action}`);
        // a year built from months this run changed is out of date now
        for (const y of [...new Set(r.months.map((m) => m.slice(0, 4)))]) {
          const mf = path.join(st.yearDir(y), 'manifest.json');
          if (!fs.existsSync(mf)) continue;
          let provisional = false;
          try { provisional = (JSON.parse(fs.readFileSync(mf, 'utf8')) as { parameters?: { provisional?: boolean } }).parameters?.provisional === true; } catch { /* an unreadable manifest: audit names it */ }
          say(`  years/${y} is out of date: this run changed ${r.months.filter((m) => m.startsWith(y)).join(', ')}; build it again (migstat year --year ${y}${provisional ? ' --provisional' : ''})`);
        }
      }
      // a rule that could not be evaluated does not stop the run (practice.md), but it is said, not only logged
      const broken = [...new Set(r.months.flatMap((m) => Object.entries(r.quality[m]!.rules).filter(([, s]) => s.error !== undefined).map(([id]) => id)))];
      if (broken.length) process.stderr.write(`migstat: warning: rule${broken.length > 1 ? 's' : ''} ${broken.join(', ')} could not be evaluated and ${broken.length > 1 ? 'were' : 'was'} not applied (see rules.csv of the month and the log): correct the rule file\n`);
    });

  dataOpt(program.command('close').description('close a month: its results become final'))
    .requiredOption('--month <YYYY-MM>', 'the month to close')
    .option('--without-extract', 'close it although its own extract has not been received (only forms carried in from other extracts)')
    .action((o: { data: string; month: string; withoutExtract?: boolean }) => {
      if (!isMonth(o.month)) throw new UsageError(`--month must be YYYY-MM, not ${o.month}`);
      const store = new Store(o.data);
      store.assertStore();
      const log = logFor(o.data);
      withLock(store, `close ${o.month}`, () => {
        store.assertCommitted('close');
        if (!store.months().includes(o.month)) throw new Error(`month ${o.month} has no results in ${o.data}: ${store.firstMonth() && o.month < store.firstMonth()! ? `it is before this store's first month ${store.firstMonth()} (counted as published before the store existed: final already)` : 'run it before closing it'}`);
        // a month built from forms other extracts attributed to it: closed, its own extract would be refused for good
        if (!o.withoutExtract && !store.isClosed(o.month) && !store.hasOwnExtract(o.month)) throw new Error(`month ${o.month} has no extract of its own yet: its results hold only forms carried in from other months' extracts, and once it is closed its extract is refused; run its extract first, or give --without-extract if it will not come`);
        const newly = store.close([o.month], 'close');
        log.log({ stage: 'close', event: newly.length ? 'closed' : 'already_closed', month: o.month });
        say(newly.length ? `month ${o.month} closed` : `month ${o.month} was already closed`);
      });
    });

  dataOpt(program.command('year').description('annual tables and datasets of a reference year from its twelve months'))
    .requiredOption('--year <YYYY>', 'the reference year')
    .option('--provisional', 'build provisional tables even if months are missing')
    .option('--settlements <file>', 'the settlements list (default: the bundled one)')
    .option('--population <file>', 'CSV code,year,population (municipalities, 30 June): adds rates per 1 000 population (tables/rates.csv)')
    .action(async (o: { data: string; year: string; provisional?: boolean; settlements?: string; population?: string }) => {
      const year = parseYear(o.year);
      new Store(o.data).assertStore();
      const { runYear } = await lazy.year();
      const q = await runYear({ data: o.data, year, provisional: o.provisional, settlements: o.settlements ? path.resolve(o.settlements) : undefined, population: o.population ? path.resolve(o.population) : undefined, log: logFor(o.data) });
      const yoy = q.yoy_flags ? count(q.yoy_flags.length, 'year-on-year flag') : `year on year ${q.yoy_note ?? 'not compared'}`;
      say(`year ${year}${q.provisional ? ' (provisional)' : ''}: ${q.events} events, identity ${q.identity.holds ? 'holds' : 'BROKEN'}, ${yoy}${o.population ? ', rates per 1 000 population' : ''}`);
    });

  dataOpt(program.command('rebuild').description('rebuild the whole history from archived extracts into a new store, on every core'))
    .requiredOption('--input-dir <dir>', 'the directory of extracts moi_YYYY_MM.csv')
    .option('--from <YYYY-MM>', 'first extract month').option('--to <YYYY-MM>', 'last extract month')
    .option('--workers <n>', 'worker threads (default: the number of cores)')
    .option('--no-years', 'do not build the annual results of complete years')
    .option('--no-progress', 'no progress bar even on a terminal')
    .option('--settlements <file>', 'the settlements list (default: the bundled one)')
    .option('--population <file>', 'population file for the rates of the annual results (as year --population)')
    .option('--encoding <enc>', 'utf-8, windows-1250, or windows-1250:YYYY-MM (the extracts up to that month in Windows-1250, later ones UTF-8)', 'utf-8')
    .option('--allow-missing-months', 'rebuild an archive that lacks extracts for some months (each then counts as closed when the next extract arrives)')
    .option('--allow-other-months', 'take extracts whose forms are mostly of other months (as migstat month --allow-other-months)')
    .option('--dry-run', 'check the archive and the target and list what would be built, without writing anything')
    .action(async (o: { data: string; inputDir: string; from?: string; to?: string; workers?: string; years: boolean; progress: boolean; settlements?: string; population?: string; encoding: string; allowMissingMonths?: boolean; allowOtherMonths?: boolean; dryRun?: boolean }) => {
      for (const [k, v] of [['--from', o.from], ['--to', o.to]] as const) if (v !== undefined && !isMonth(v)) throw new UsageError(`${k} must be YYYY-MM, not ${v}`);
      if (o.from && o.to && o.from > o.to) throw new UsageError(`--from ${o.from} is after --to ${o.to}`);
      if (o.workers !== undefined && !/^[1-9]\d*$/.test(o.workers)) throw new UsageError(`--workers must be a positive whole number, not ${o.workers}`);
      const { runRebuild, encodingOf, planRebuild } = await import('./rebuild');
      try { encodingOf(o.encoding); } catch (e) { throw new UsageError((e as Error).message); }
      const opts = { data: o.data, inputDir: o.inputDir, from: o.from, to: o.to, workers: o.workers ? +o.workers : undefined, years: o.years, progress: o.progress && Boolean(process.stderr.isTTY), settlements: o.settlements ? path.resolve(o.settlements) : undefined, population: o.population ? path.resolve(o.population) : undefined, encoding: o.encoding, allowMissingMonths: o.allowMissingMonths, allowOtherMonths: o.allowOtherMonths };
      if (o.dryRun) {
        const p = planRebuild(opts);
        const multi = p.months.filter((m) => p.units.filter((u) => u.fileMonth === m).length > 1).length;
        const enc = new Map<string, string[]>();
        for (const m of p.months) (enc.get(p.encoding(m)) ?? enc.set(p.encoding(m), []).get(p.encoding(m))!).push(m);
        say([
          `dry run: nothing written. migstat rebuild would build a new store in ${o.data} from ${count(p.units.length, 'extract')} in ${o.inputDir}:`,
          `  months  ${p.months.length}: ${rangesOf(p.months, (m) => addMonths(m, 1))}${multi ? ` (${count(multi, 'month')} with more than one extract, delivered in name order)` : ''}`,
          ...(p.missing.length ? [`  missing ${p.missing.length} (counted as closed when the next extract arrives, --allow-missing-months): ${rangesOf(p.missing, (m) => addMonths(m, 1))}`] : []),
          `  years   ${p.years.length ? `${p.years.length}: ${rangesOf(p.years, (y) => y + 1)}` : 'none'}${o.years === false ? ' (--no-years)' : ' (those whose twelve months all have an extract)'}`,
          `  encoding ${[...enc].map(([e, ms]) => `${e} (${count(ms.length, 'month')})`).join(', ')}`,
          `  workers ${p.workers}`,
        ].join('\n'));
        return;
      }
      const r = await runRebuild(opts);
      say(`rebuilt ${count(r.months, 'month')} and ${count(r.years.length, 'year')} from ${count(r.units, 'extract')} (${r.unchanged} already ingested): ${count(r.forms, 'form')}, ${count(r.events, 'event')} in ${r.seconds.toFixed(1)} s on ${r.workers} workers`);
    });

  dataOpt(program.command('release').description('publish every release whose time has come and that is not yet published'))
    .option('--due', 'publish the releases that are due (the only mode)')
    .option('--now <iso>', 'the current time (ISO 8601), for tests and replays')
    .option('--calendar <file>', 'the release calendar (default: config/calendar.json)')
    .action(async (o: { data: string; due?: boolean; now?: string; calendar?: string }) => {
      if (!o.due) throw new UsageError('release needs --due');
      // --now replays a past run: ISO 8601, read in Belgrade time when it has no offset (not in the machine's zone),
      // never later than the clock (that would publish before the release time)
      const { releaseDue, formatRelease, parseNow } = await lazy.release();
      const now = o.now === undefined ? new Date() : parseNow(o.now);
      if (!now) throw new UsageError(`--now must be an ISO 8601 date or time (without an offset it is Belgrade time), e.g. 2025-07-10T12:00 or 2025-07-10T10:00:00Z, not ${o.now}`);
      if (now.getTime() > Date.now() + 60_000) throw new UsageError(`--now ${o.now} is later than the clock: releases are never published ahead of time (--now replays past runs)`);
      const r = releaseDue({ store: new Store(o.data), calendarFile: o.calendar ? path.resolve(o.calendar) : undefined, now }); // (its log is opened once the store is known to be one)
      say(formatRelease(r));
      // a release that is due but cannot go out is an error, one line each, on stderr (cron mails or logs it)
      for (const n of r.notReady) process.stderr.write(`migstat: ${n.id} not ready: ${n.why}\n`);
      if (r.notReady.length) code = 1;
    });

  dataOpt(program.command('audit').description('re-hash every artefact against the manifests and logs; --explain re-traces one published cell'))
    .option('--explain <cell>', 'PERIOD:LEVEL:CODE:SEX:MEASURE (period YYYY or YYYY-MM; level republic, region, area or municipality; sex T, M or F; measure immigrants or emigrants), e.g. 2024:municipality:70106:T:immigrants')
    .option('--log-head <sha256>', 'the log head an earlier audit printed (kept outside the store): that line must still be in the log')
    .action(async (o: { data: string; explain?: string; logHead?: string }) => {
      if (o.logHead !== undefined && !/^[0-9a-f]{64}$/i.test(o.logHead)) throw new UsageError(`--log-head must be the 64 hex digits an audit printed, not ${o.logHead}`);
      const logHead = o.logHead?.toLowerCase();
      const store = new Store(o.data);
      if (o.explain) {
        const [period, level, unit, sex, measure] = o.explain.split(':');
        if (!period || !level || !unit || !measure) throw new UsageError('--explain takes PERIOD:LEVEL:CODE:SEX:MEASURE');
        const { explain, explainQueryProblem } = await lazy.audit();
        const bad = explainQueryProblem({ period, level, sex: sex || undefined, measure });
        if (bad) throw new UsageError(`--explain: ${bad}`);
        store.assertStore();
        const e = explain(store, { period, level, code: unit, sex: (sex || 'T') as 'T' | 'M' | 'F', measure: measure as 'immigrants' | 'emigrants' });
        process.stdout.write(JSON.stringify(e, null, 2) + '\n');
        // the trail holds only if the files are intact and the events add up to the published cell
        if (e.problems.length || !e.matches) {
          process.stderr.write(`migstat: ${e.problems.length ? `${e.problems.length} integrity problem(s) in the files read (${e.problems.slice(0, 2).map((p) => `${p.problem} ${p.path}`).join('; ')})` : ''}${e.problems.length && !e.matches ? '; ' : ''}${e.matches ? '' : `the ${e.count} events found do not add up to the ${e.published} published in ${e.table}`}\n`);
          code = 1;
        }
        return;
      }
      store.assertStore();
      const { audit } = await lazy.audit();
      const r = audit(store, logHead);
      for (const p of r.problems) process.stdout.write(`${p.problem}\t${p.path}\t${p.detail}\n`);
      say(`audit: ${count(r.checked, 'file')} checked, ${count(r.problems.length, 'problem')}${r.logHead ? `; log head ${r.logHead} (keep it outside the store, and give it to a later audit as --log-head)` : ''}`);
      if (!r.ok) { process.stderr.write(`migstat: audit found ${r.problems.length} problem(s): ${r.problems.slice(0, 3).map((p) => `${p.problem} ${p.path}`).join('; ')}\n`); code = 1; }
    });

  program.command('generate').description('write seeded synthetic monthly extracts (and their ground truth), and a synthetic truth/population.csv for year --population')
    .requiredOption('--year <YYYY>', 'the reference year').requiredOption('--out <dir>', 'output directory')
    .option('--seed <n>', 'random seed', '1').option('--records <n>', 'events in the year (default 150000)')
    // interface.md: all commands take --data; generate accepts it (a wrapper may pass it to every command) and writes only to --out
    .option('--data <dir>', 'accepted as by every command; generate writes only to --out')
    .action(async (o: { year: string; out: string; seed: string; records?: string }) => {
      const { runGenerate } = await lazy.demo();
      const s = runGenerate({ year: parseYear(o.year), out: o.out, seed: wholeNumber('--seed', o.seed), records: o.records === undefined ? undefined : wholeNumber('--records', o.records, 1) });
      say(`generated ${s.files.length} extracts, ${s.forms} forms, ${s.events} events in ${o.out}${s.population ? ` (population: ${s.population})` : ''}`);
    });

  dataOpt(program.command('demo').description('the embedded default: generate a realistic year and run the whole chain end to end'))
    .option('--year <YYYY>', 'the demo year', '2024').option('--records <n>', 'events in the year', '150000')
    .action(async (o: { data: string; year: string; records: string }) => {
      const { runDemo } = await lazy.demo();
      await runDemo({ data: o.data, year: parseYear(o.year), records: wholeNumber('--records', o.records, 1), say });
    });

  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version') return 0;
      // a usage error, or no command given (the help went to stderr)
      return e.exitCode === 0 ? 0 : 2;
    }
    if (e instanceof UsageError) { process.stderr.write(`migstat: ${e.message}\n`); return 2; }
    const msg = e instanceof InputError ? e.message : systemError(e as NodeJS.ErrnoException) ?? (e as Error).message;
    // one line: the first line of the message, with any control character from the input escaped
    process.stderr.write(`migstat: ${msg.split('\n')[0]!.replace(/[^ -~\u00a0-\uffff]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)}\n`);
    if (process.env.MIGSTAT_DEBUG) process.stderr.write(`${(e as Error).stack}\n`);
    code = 1;
  }
  return code;
}

export class UsageError extends Error {}

/** A file-system error in words, with the path it concerns (Node's own text names the system call, not the problem). */
function systemError(e: NodeJS.ErrnoException): string | undefined {
  const what: Record<string, string> = {
    ENOTDIR: 'is a file where a directory is needed (check --data, --out and --input-dir)',
    EISDIR: 'is a directory where a file is needed',
    ENOENT: 'does not exist',
    EACCES: 'cannot be accessed: permission denied',
    EPERM: 'cannot be changed: operation not permitted',
    ENOSPC: 'cannot be written: no space left on the device',
    EROFS: 'cannot be written: read-only file system',
    EMFILE: 'cannot be opened: too many open files',
  };
  if (!e || typeof e.code !== 'string' || !what[e.code] || typeof e.path !== 'string') return undefined;
  // (ENOTDIR names the path below the file: name the first part of it that is a file)
  let p = e.path;
  if (e.code === 'ENOTDIR') for (let q = p; q !== path.dirname(q); q = path.dirname(q)) if (fs.existsSync(q) && !fs.statSync(q).isDirectory()) { p = q; break; }
  return `${p} ${what[e.code]}`;
}

/** Sorted years or months as ranges of consecutive ones: "1991–1997, 1999", "2012-01–2023-12" */
export function rangesOf<T extends number | string>(xs: T[], next: (x: T) => T): string {
  const out: string[] = [];
  for (let i = 0; i < xs.length;) {
    let j = i;
    while (j + 1 < xs.length && xs[j + 1] === next(xs[j]!)) j++;
    out.push(j > i ? `${xs[i]}–${xs[j]}` : String(xs[i]));
    i = j + 1;
  }
  return out.join(', ');
}

/** What `migstat month` says when it rolled back an interrupted run before its own work. */
function rollbackLine(r: { rolledBack: string[]; removed: string[]; interrupted: string[] }, input: string, first: string | undefined): string {
  const rebuilt = r.rolledBack.filter((m) => !r.removed.includes(m));
  const months = [...(rebuilt.length ? [`month${rebuilt.length > 1 ? 's' : ''} ${rebuilt.join(', ')} built again without it`] : []), ...(r.removed.length ? [`the results of ${r.removed.join(', ')}, which were its alone, removed`] : [])];
  const others = r.interrupted.filter((f) => f !== input);
  // (a killed first run leaves no first month: the run that follows sets it, and an earlier extract is then before it)
  const early = others.filter((f) => first && (fileMonthOf(f) ?? first) < first);
  const again = others.filter((f) => !early.includes(f));
  return `an interrupted run${r.interrupted.length ? ` of ${r.interrupted.join(', ')}` : ''} was rolled back${months.length ? ` (${months.join('; ')})` : ''}${r.interrupted.includes(input) ? `; ${input} is run again now` : ''}${again.length ? `: run ${again.join(', ')} again` : ''}${early.length ? `: ${early.join(', ')} ${early.length > 1 ? 'are' : 'is'} now before this store's first month ${first} (to include ${early.length > 1 ? 'them' : 'it'}, rebuild the history into a new store with migstat rebuild)` : ''}`;
}

function wholeNumber(opt: string, v: string, min = 0): number {
  if (!/^\d{1,9}$/.test(v) || Number(v) < min) throw new UsageError(`${opt} must be a whole number${min ? ` from ${min}` : ''}, not ${v}`);
  return Number(v);
}

function parseYear(v: string): number {
  if (!/^(19|20)\d{2}$/.test(v) || +v < 1991) throw new UsageError(`--year must be a year from 1991, not ${v}`);
  return +v;
}

function say(msg: string): void {
  process.stdout.write(msg + '\n');
}
