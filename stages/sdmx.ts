/**
 * SDMX publication of the annual tables (domain.md §6–8, interface.md: years/YYYY/sdmx/).
 *
 * buildSdmx is pure and deterministic: the same input gives the same bytes. It writes
 *   structure.xml   SDMX-ML 2.1 Structure: agency, codelists, concept scheme, the DSD and dataflow of BOTH
 *                   territorial series (DSD_IMIGR_1991_1997/DF_IMIGR_1991_1997 with K&M,
 *                   DSD_IMIGR_1998/DF_IMIGR_1998 without)
 *   structure.json  SDMX-JSON 2.0 structure message of the same
 *   data.csv        SDMX-CSV 2.0 (STRUCTURE,STRUCTURE_ID,ACTION, dimensions in DSD order, OBS_VALUE, attributes)
 *   data.json       SDMX-JSON 2.0 data message (flat: dimensionAtObservation=AllDimensions)
 *   data.xml        SDMX-ML 2.1 GenericData, flat (AllDimensions): the data format R rsdmx reads
 * validateSdmx checks the XML files against the official XSDs (xmllint-wasm) and the JSON files against
 * the official SDMX-JSON 2.0 schemas (ajv-draft-04), plus the SDMX-CSV header and row layout.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse } from 'csv-parse/sync';
import { csvCell } from '../pipeline/csv';
import { SCHEMAS } from '../pipeline/paths';
import { dataJson, structureJson } from './sdmx/json';
import {
  ATTRIBUTES, type AttrId, type DATASET_ATTRIBUTES, DIMENSIONS, type DataModel, MEASURE, type SdmxInput, buildDataModel, buildStructureModel, dataflowRef,
} from './sdmx/model';
import { dataXml, structureXml } from './sdmx/xml';
import { ByteWriter } from '../pipeline/bytes';
import { KeyedCache } from '../pipeline/memo';

export type { SdmxInput } from './sdmx/model';
export { SdmxInputError, dataflowId, dsdId, areaCodelistId, DIMENSIONS, ATTRIBUTES } from './sdmx/model';

export const SDMX_FILES = ['data.csv', 'data.json', 'data.xml', 'structure.json', 'structure.xml'] as const;

/** SDMX-CSV 2.0 header: structure columns, dimensions in DSD order, the measure, the attributes. */
export const CSV_HEADER = ['STRUCTURE', 'STRUCTURE_ID', 'ACTION', ...DIMENSIONS, MEASURE, ...ATTRIBUTES] as const;

/** RFC 4180 quoting, and spreadsheet formula neutralisation as in every CSV output (pipeline/csv.ts). */
const csvField = (s: string): string => csvCell(s);

/** RFC 4180, UTF-8 without BOM, CRLF line ends (as RFC 4180 says). Dataset-level attributes repeat on every row. */
export function dataCsv(m: DataModel): string {
  return dataCsvBytes(m).toString('utf8');
}

function dataCsvBytes(m: DataModel): Buffer {
  const ref = dataflowRef(m.series);
  // Every field is quoted/neutralised once per distinct value (the ~300-character series note repeats on
  // every one of the ~35 000 rows): the structure columns, each dimension value, the attributes per status.
  const head = ByteWriter.encode(['dataflow', ref, 'I'].map(csvField).join(','));
  const dims = DIMENSIONS.map(() => new KeyedCache((v) => ByteWriter.encode(`,${csvField(v)}`)));
  const tail = new KeyedCache((status) => ByteWriter.encode(`,${ATTRIBUTES.map((a: AttrId) => csvField(a === 'OBS_STATUS' ? status : m.datasetAttributes[a as (typeof DATASET_ATTRIBUTES)[number]])).join(',')}\r\n`));
  const out = new ByteWriter(m.observations.length * (head.length + m.datasetAttributes.SERIES_NOTE.length + 80));
  out.text(`${CSV_HEADER.join(',')}\r\n`);
  writeCsvObservations(out, m.observations, head, dims, tail);
  return out.result();
}

/**
 * The observation rows of dataCsvBytes, each from the bytes of its parts. A function of its own, not a loop inside
 * dataCsvBytes: V8 then compiles this loop alone, not the whole of dataCsvBytes on the stack again every year.
 */
function writeCsvObservations(out: ByteWriter, observations: DataModel['observations'], head: Buffer, dims: readonly KeyedCache<Buffer>[], tail: KeyedCache<Buffer>): void {
  for (const o of observations) {
    out.raw(head);
    for (let i = 0; i < DIMENSIONS.length; i++) out.raw(dims[i]!.get(o.key[DIMENSIONS[i]!]));
    out.char(44); // ','
    // csvCell looks at a leading - or +: String of a number starts with '-' exactly when it is negative and never
    // with '+', so only negative values need it (and no string is made of the others)
    if (o.value < 0) out.text(csvField(String(o.value)));
    else out.number(o.value);
    out.raw(tail.get(o.status));
  }
}

/** The five SDMX files of a year as UTF-8 text. */
export function buildSdmx(input: SdmxInput): Map<string, string> {
  return new Map([...buildSdmxFiles(input)].map(([f, b]) => [f, b.toString('utf8')]));
}

/** The five SDMX files of a year as UTF-8 bytes (what the year build writes; no string of the big ones is made). */
export function buildSdmxFiles(input: SdmxInput): Map<string, Buffer> {
  const data = buildDataModel(input);
  const structure = buildStructureModel(input.classification, input.prepared);
  return new Map<string, Buffer>([
    ['data.csv', dataCsvBytes(data)],
    ['data.json', dataJson(data)],
    ['data.xml', dataXml(data)],
    ['structure.json', Buffer.from(structureJson(structure), 'utf8')],
    ['structure.xml', Buffer.from(structureXml(structure), 'utf8')],
  ]);
}

/** ---------- validation ---------- */
const XSD_DIR = path.join(SCHEMAS, 'sdmx', 'sdmx-ml-2.1');
const JSON_DIR = path.join(SCHEMAS, 'sdmx', 'sdmx-json-2.0');

type XsdFile = { fileName: string; contents: string };
let xsdCache: { schema: XsdFile; preload: XsdFile[] } | undefined;
function xsds(): { schema: XsdFile; preload: XsdFile[] } {
  if (!xsdCache) {
    const read = (f: string): XsdFile => ({ fileName: f, contents: fs.readFileSync(path.join(XSD_DIR, f), 'utf8') });
    const files = fs.readdirSync(XSD_DIR).filter((f) => f.endsWith('.xsd')).sort();
    xsdCache = { schema: read('SDMXMessage.xsd'), preload: files.filter((f) => f !== 'SDMXMessage.xsd').map(read) };
  }
  return xsdCache;
}

type JsonValidator = ((d: unknown) => boolean) & { errors?: { instancePath?: string; message?: string }[] | null };
const jsonValidators = new Map<string, JsonValidator>();
function jsonValidator(kind: 'data' | 'structure'): JsonValidator {
  let v = jsonValidators.get(kind);
  if (!v) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const Ajv04 = require('ajv-draft-04') as new (o: object) => { compile(s: object): JsonValidator };
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const addFormats = require('ajv-formats') as (a: unknown) => void;
    const ajv = new Ajv04({ strict: false, allErrors: true, unicodeRegExp: false });
    addFormats(ajv);
    const file = path.join(JSON_DIR, `${kind}-message`, `sdmx-json-${kind}-schema.json`);
    v = ajv.compile(JSON.parse(fs.readFileSync(file, 'utf8')));
    jsonValidators.set(kind, v);
  }
  return v;
}

async function validateXml(name: string, xml: string): Promise<string[]> {
  const { validateXML, memoryPages } = await import('xmllint-wasm');
  const { schema, preload } = xsds();
  // libxml2 builds the whole tree: the default 16 MiB of WebAssembly memory is too small for a year's data
  const bytes = Buffer.byteLength(xml, 'utf8');
  const maxMemoryPages = Math.min(4 * memoryPages.GiB - 1, Math.max(256, Math.ceil((bytes * 12) / (64 * 1024)) + 1024));
  const r = await validateXML({ xml: [{ fileName: name, contents: xml }], schema: [schema], preload, maxMemoryPages });
  return r.valid ? [] : r.errors.slice(0, 20).map((e) => `${name}: ${e.rawMessage ?? e.message}`);
}

function validateJson(name: string, text: string, kind: 'data' | 'structure'): string[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    return [`${name}: not JSON: ${(e as Error).message}`];
  }
  const v = jsonValidator(kind);
  if (v(doc)) return [];
  return (v.errors ?? []).slice(0, 20).map((e) => `${name}: ${e.instancePath || '(root)'} ${e.message ?? ''}`.trim());
}

function validateCsv(name: string, text: string): string[] {
  let rows: string[][];
  try {
    rows = parse(text, { relax_column_count: false, skip_empty_lines: true }) as string[][];
  } catch (e) {
    return [`${name}: not RFC 4180 CSV: ${(e as Error).message}`];
  }
  const errs: string[] = [];
  const header = rows[0] ?? [];
  if (header.join(',') !== CSV_HEADER.join(',')) errs.push(`${name}: header must be ${CSV_HEADER.join(',')}, found ${header.join(',')}`);
  const ref = /^[A-Za-z][A-Za-z0-9_-]*:[A-Za-z0-9_@$-]+\(\d+(\.\d+){1,2}\)$/;
  const seen = new Set<string>();
  for (let i = 1; i < rows.length && errs.length < 20; i++) {
    const r = rows[i]!;
    if (r[0] !== 'dataflow' || !ref.test(r[1] ?? '') || r[2] !== 'I') errs.push(`${name} line ${i + 1}: must start dataflow,AGENCY:FLOW(VERSION),I`);
    const key = r.slice(3, 3 + DIMENSIONS.length).join('.');
    if (seen.has(key)) errs.push(`${name} line ${i + 1}: duplicate key ${key}`);
    seen.add(key);
    if (!/^-?\d+$/.test(r[3 + DIMENSIONS.length] ?? '')) errs.push(`${name} line ${i + 1}: OBS_VALUE is not an integer`);
  }
  return errs;
}

/**
 * Validate every SDMX file present: *.xml against SDMXMessage.xsd (structure and generic data messages),
 * data.json / structure.json against the SDMX-JSON 2.0 schemas, *.csv against the SDMX-CSV 2.0 layout.
 * A missing expected file is an error.
 */
export async function validateSdmx(files: Map<string, string>): Promise<{ ok: boolean; errors: string[] }> {
  const errors: string[] = [];
  for (const f of SDMX_FILES) if (!files.has(f)) errors.push(`${f}: missing`);
  for (const [name, text] of [...files.entries()].sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (name.endsWith('.xml')) errors.push(...(await validateXml(name, text)));
    else if (name.endsWith('.json')) errors.push(...validateJson(name, text, name.startsWith('structure') ? 'structure' : 'data'));
    else if (name.endsWith('.csv')) errors.push(...validateCsv(name, text));
    else errors.push(`${name}: not an SDMX file`);
  }
  return { ok: errors.length === 0, errors };
}
