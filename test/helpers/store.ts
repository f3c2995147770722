import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { RunLog } from '../../pipeline/log';
import { Store } from '../../pipeline/store';
import { listFiles } from '../../pipeline/fsutil';

export const WE = path.join(__dirname, '..', '..', 'fixtures', 'worked-example');
export function tmpDir(prefix = 'migstat-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}
export function logFor(data: string): RunLog {
  return new RunLog(new Store(data).logFile());
}
/** Every file below dir → its content, for byte-identity comparisons. */
export function snapshot(dir: string, filter: (rel: string) => boolean = () => true): Record<string, string> {
  return Object.fromEntries(listFiles(dir).filter(filter).map((f) => [f, fs.readFileSync(path.join(dir, f), 'latin1')]));
}
