/**
 * arquero, loaded from its own published single-file build (arquero/dist/arquero.min.js, the same release as
 * its ES modules): 10 ms instead of 70–110 ms for the ~150 ES modules through require(esm) — start-up time of
 * every `migstat month` run. Types come from the package as usual.
 */
import * as fs from 'node:fs';
import * as vm from 'node:vm';

type Arquero = typeof import('arquero');

function load(): Arquero {
  const file = require.resolve('arquero/dist/arquero.min.js');
  const mod: { exports: Record<string, unknown> } = { exports: {} };
  const wrapper = new vm.Script(`(function (exports, module, require) {${fs.readFileSync(file, 'utf8')}\n})`, { filename: file }).runInThisContext() as (e: object, m: object, r: NodeJS.Require) => void;
  wrapper(mod.exports, mod, require);
  if (typeof mod.exports.table !== 'function' || typeof mod.exports.parse !== 'function') throw new Error(`internal: ${file} is not the arquero build expected`);
  return mod.exports as unknown as Arquero;
}

export const aq: Arquero = load();
