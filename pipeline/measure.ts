/**
 * `node dist/pipeline/measure.js <migstat arguments>`: runs the CLI like bin/migstat.js, then prints the
 * process's peak resident memory and its CPU time (user and system, all threads: a rebuild's workers included) on
 * stderr (MIGSTAT_MEASURE {...}) for `npm run bench`.
 */
import { main } from './cli';

main(['node', 'migstat', ...process.argv.slice(2)]).then((code) => {
  const u = process.resourceUsage();
  process.stderr.write(`MIGSTAT_MEASURE ${JSON.stringify({ maxRssMb: Math.round(u.maxRSS / 1024), userS: u.userCPUTime / 1e6, systemS: u.systemCPUTime / 1e6, code })}\n`);
  process.exitCode = code;
});
