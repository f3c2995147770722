/**
 * The `migstat` command line. The whole flow, one screen:
 *   month   ingest an extract → deliver (dedupe, systemic fix, attribution) → process each touched open month → months/<m>/
 *   close   make a month final (later forms for it are carried forward)
 *   year    Σ twelve months → years/<y>/ (tables, quality, workbook, SDMX, report)
 *   release publish due releases from the calendar into published/<id>/ (cron)
 *   audit   re-hash every artefact against its manifest; --explain a published cell
 *   demo    generate a year and run the whole chain (npm start)
 *   generate  synthetic extracts with ground truth
 */
import * as path from 'node:path';
import { Command, CommanderError } from 'commander';
import { RunLog } from './log';
import { Store, withLock } from './store';
import { runMonth } from './month';
import { InputError } from '../stages/ingest';

export async function main(argv: string[]): Promise<number> {
  const program = new Command();
  let code = 0;
  program.name('migstat').description('Internal-migration statistics of the Republic of Serbia from MoI residence extracts').exitOverride().showHelpAfterError(false)
    .configureOutput({ writeErr: (s) => process.stderr.write(s.split('\n').filter((l) => l.trim()).slice(0, 1).join('\n') + '\n') });
  const dataOpt = (c: Command): Command => c.option('--data <dir>', 'the working store of the office', './output');
  const logFor = (data: string): RunLog => new RunLog(new Store(data).logFile());

  dataOpt(program.command('month').description('ingest one monthly extract and run every monthly stage on it'))
    .requiredOption('--input <file>', 'the extract moi_YYYY_MM.csv')
    .option('--month <YYYY-MM>', 'the month of the extract (default: from the file name)')
    .option('--encoding <enc>', 'utf-8 or windows-1250', 'utf-8')
    .option('--settlements <file>', 'the settlements list (default: the bundled one)')
    .action((o: { data: string; input: string; month?: string; encoding: string; settlements?: string }) => {
      if (o.encoding !== 'utf-8' && o.encoding !== 'windows-1250') throw new UsageError(`--encoding must be utf-8 or windows-1250, not ${o.encoding}`);
      const log = logFor(o.data);
      const r = runMonth({ data: o.data, input: o.input, month: o.month, encoding: o.encoding, settlements: o.settlements ? path.resolve(o.settlements) : undefined, log });
      say(r.status === 'unchanged' ? `${path.basename(o.input)} was already ingested: nothing changed` : `${path.basename(o.input)}: months ${r.months.join(', ')} processed (${r.months.map((m) => `${m}: ${r.quality[m]!.events} events`).join('; ')})`);
    });

  dataOpt(program.command('close').description('close a month: its results become final'))
    .requiredOption('--month <YYYY-MM>', 'the month to close')
    .action((o: { data: string; month: string }) => {
      if (!/^\d{4}-(0[1-9]|1[0-2])$/.test(o.month)) throw new UsageError(`--month must be YYYY-MM, not ${o.month}`);
      const store = new Store(o.data);
      const log = logFor(o.data);
      withLock(store, `close ${o.month}`, () => {
        if (!store.months().includes(o.month)) throw new Error(`month ${o.month} has no results in ${o.data}: run it before closing it`);
        const newly = store.close([o.month], 'close');
        log.log({ stage: 'close', event: newly.length ? 'closed' : 'already_closed', month: o.month });
        say(newly.length ? `month ${o.month} closed` : `month ${o.month} was already closed`);
      });
    });

  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.help' || e.code === 'commander.version') return 0;
      return e.exitCode === 0 ? 0 : 2;
    }
    if (e instanceof UsageError) { process.stderr.write(`migstat: ${e.message}\n`); return 2; }
    const msg = e instanceof InputError ? e.message : (e as Error).message;
    process.stderr.write(`migstat: ${msg.split('\n')[0]}\n`);
    if (process.env.MIGSTAT_DEBUG) process.stderr.write(`${(e as Error).stack}\n`);
    code = 1;
  }
  return code;
}

export class UsageError extends Error {}

function say(msg: string): void {
  process.stdout.write(msg + '\n');
}
