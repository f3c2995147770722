/** Locations inside the project (works from the TypeScript sources under jest and from dist/ at run time). */
import * as fs from 'node:fs';
import * as path from 'node:path';

function findRoot(start: string): string {
  let dir = start;
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (fs.existsSync(pkg) && JSON.parse(fs.readFileSync(pkg, 'utf8')).name === 'migstat') return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`cannot find the migstat project root above ${start}`);
    dir = up;
  }
}

export const ROOT = findRoot(__dirname);
export const SCHEMAS = path.join(ROOT, 'schemas');
export const CONFIG = path.join(ROOT, 'config');
export const REFERENCE = path.join(ROOT, 'reference');
export const TERRITORY = path.join(REFERENCE, 'territory');
export const DEFAULT_SETTLEMENTS = path.join(TERRITORY, 'settlements.csv');
