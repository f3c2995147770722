/**
 * `node dist/pipeline/measure.js <migstat arguments>`: runs the CLI like bin/migstat.js, then prints the
 * process's peak resident memory on stderr (MIGSTAT_MEASURE {...}) for `npm run bench`.
 */
import { main } from './cli';

main(['node', 'migstat', ...process.argv.slice(2)]).then((code) => {
  process.stderr.write(`MIGSTAT_MEASURE ${JSON.stringify({ maxRssMb: Math.round(process.resourceUsage().maxRSS / 1024), code })}\n`);
  process.exitCode = code;
});
