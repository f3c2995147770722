/**
 * Vega-Lite → Vega → inline SVG, synchronously and offline, at build time.
 *
 * vega 6 and vega-lite 6 ship as ES modules with top-level await, which CommonJS (our build, jest) cannot
 * require(). Both packages also ship self-contained UMD bundles (vega/build/vega.js,
 * vega-lite/build/vega-lite.min.js); they are loaded here as CommonJS with node:vm, once, without network
 * or file loaders. Rendering uses vega's SVGStringRenderer directly after a synchronous dataflow run, which
 * is what View.toSVG() does asynchronously; specs carry their data inline, so nothing is ever fetched.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vm from 'node:vm';

// Minimal structural types for the parts of the UMD bundles used here.
interface VegaView {
  run(): VegaView;
  loader(): unknown;
  padding(): { left: number; right: number; top: number; bottom: number };
  background(): string;
  scenegraph(): { root: unknown };
  finalize(): void;
  _viewWidth: number;
  _viewHeight: number;
  _origin: [number, number];
}
interface VegaModule {
  View: new (runtime: unknown, opts: { renderer: string; logLevel?: number }) => VegaView;
  parse(spec: unknown, config?: unknown): unknown;
  SVGStringRenderer: new (loader: unknown) => {
    initialize(el: null, w: number, h: number, origin: [number, number]): { background(c: string): unknown };
    render(scene: unknown): unknown;
    svg(): string;
  };
  resetSVGDefIds(): void;
  Error: number;
}
interface VegaLiteModule { compile(spec: unknown): { spec: unknown } }

let cached: { vega: VegaModule; vl: VegaLiteModule } | undefined;

function packageDir(name: string): string {
  // the package's exports hide package.json; walk up from the resolved entry to the package root
  let d = path.dirname(require.resolve(name));
  while (!fs.existsSync(path.join(d, 'package.json')) || path.basename(d) === 'build') d = path.dirname(d);
  return d;
}

function loadUmd(file: string, req: (name: string) => unknown): unknown {
  const code = fs.readFileSync(file, 'utf8');
  const fn = vm.runInThisContext(`(function (exports, module, require) {${code}\n})`, { filename: file }) as (e: object, m: { exports: object }, r: (n: string) => unknown) => void;
  const mod = { exports: {} as object };
  fn(mod.exports, mod, req);
  return mod.exports;
}

export function vegaModules(): { vega: VegaModule; vl: VegaLiteModule } {
  if (!cached) {
    const vega = loadUmd(path.join(packageDir('vega'), 'build', 'vega.js'), (n) => {
      throw new Error(`vega bundle asked for ${n}`);
    }) as VegaModule;
    const vl = loadUmd(path.join(packageDir('vega-lite'), 'build', 'vega-lite.min.js'), (n) => {
      if (n === 'vega') return vega;
      throw new Error(`vega-lite bundle asked for ${n}`);
    }) as VegaLiteModule;
    cached = { vega, vl };
  }
  return cached;
}

/**
 * Vega-Lite → Vega of a spec whose data is `{ values: [...] }`, compiled once per spec without its values.
 * Vega-Lite's compiler does not look at inline values: it passes the array through, by reference, into one
 * data set of the Vega spec. So the Vega spec of a spec already seen with other values is a copy of the
 * cached one with the new array in that data set; the reports of every month and year share a few charts.
 */
type CompiledVega = { data?: { values?: unknown }[] };
const compiledCache = new Map<string, { vega: CompiledVega; dataIndex: number; marker: unknown[] }>();
function compileVegaLite(vl: VegaLiteModule, spec: Record<string, unknown>): unknown {
  const data = spec.data as { values?: unknown } | undefined;
  if (!data || !Array.isArray(data.values) || Object.keys(data).length !== 1) return vl.compile(spec).spec;
  const key = JSON.stringify({ ...spec, data: null });
  let c = compiledCache.get(key);
  if (!c) {
    const marker: unknown[] = [];
    const compiled = vl.compile({ ...spec, data: { values: marker } }).spec as CompiledVega;
    const dataIndex = compiled.data?.findIndex((d) => d.values === marker) ?? -1;
    if (dataIndex < 0) return vl.compile(spec).spec; // (not the shape described above: no caching)
    if (compiledCache.size >= 200) compiledCache.clear();
    compiledCache.set(key, (c = { vega: compiled, dataIndex, marker }));
  }
  // a deep copy (vega must not see a shared object), then the values, by reference as vega-lite would pass them
  const copy = structuredClone(c.vega);
  copy.data![c.dataIndex]!.values = data.values;
  return copy;
}

/**
 * Render a Vega-Lite spec (data inline) to an SVG string. `idPrefix` makes the ids of clip paths and
 * gradients unique inside one HTML page and independent of how many charts were rendered before (so the
 * output is deterministic).
 */
export function vegaLiteToSvg(spec: Record<string, unknown>, idPrefix: string): string {
  const { vega, vl } = vegaModules();
  const compiled = compileVegaLite(vl, spec);
  const view = new vega.View(vega.parse(compiled), { renderer: 'none', logLevel: 0 });
  view.run();
  vega.resetSVGDefIds();
  const pad = view.padding();
  const w = Math.max(0, view._viewWidth + pad.left + pad.right);
  const h = Math.max(0, view._viewHeight + pad.top + pad.bottom);
  const r = new vega.SVGStringRenderer(view.loader());
  r.initialize(null, w, h, [pad.left + view._origin[0], pad.top + view._origin[1]]).background(view.background());
  r.render(view.scenegraph().root);
  const svg = r.svg();
  view.finalize();
  return svg
    .replace(/\bid="([^"]+)"/g, (_m, id: string) => `id="${idPrefix}-${id}"`)
    .replace(/url\(#([^)]+)\)/g, (_m, id: string) => `url(#${idPrefix}-${id})`)
    .replace(/href="#([^"]+)"/g, (_m, id: string) => `href="#${idPrefix}-${id}"`);
}
