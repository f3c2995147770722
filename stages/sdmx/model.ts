/**
 * The SDMX information model of migstat's publication: agency, codelists, concepts, the data structure
 * definitions (one per territorial series) and their dataflows, and the observations of one reference year.
 * Pure: the same input gives the same model, in a stable order. The writers (xml.ts, json.ts, csv.ts)
 * only serialise what is built here, so the three data formats cannot disagree.
 */
import { AGE_GROUPS } from '../../pipeline/contracts';
import type { Row } from '../../pipeline/csv';
import { type Classification, KM_REGION, REPUBLIC, SERIES_NOTE, type Series } from '../territory';

/** Localised text: English first (the SDMX default), then Serbian Latin. */
export interface Text { en: string; 'sr-Latn': string }
export const LANGS = ['en', 'sr-Latn'] as const;

export interface Annotation { type: string; text: string }
export interface Code { id: string; name: Text; parent?: string; annotations?: Annotation[] }
export interface Codelist { id: string; name: Text; description?: Text; codes: Code[] }
export interface Concept { id: string; name: Text; description?: Text }

/** ---------- fixed identifiers (change the versions when the structures change) ---------- */
export const AGENCY = {
  id: 'SORS',
  name: { en: 'Statistical Office of the Republic of Serbia', 'sr-Latn': 'Republički zavod za statistiku' } as Text,
};
export const VERSION = '1.0';
export const CONCEPT_SCHEME = 'CS_MIGR';
export const SERIES_IDS: Record<Series, { suffix: string; label: string }> = {
  '1991-1997': { suffix: '1991_1997', label: '1991-1997' },
  '1998-': { suffix: '1998', label: '1998-' },
};
export const ALL_SERIES: Series[] = ['1991-1997', '1998-'];
export const dsdId = (s: Series): string => `DSD_IMIGR_${SERIES_IDS[s].suffix}`;
export const dataflowId = (s: Series): string => `DF_IMIGR_${SERIES_IDS[s].suffix}`;
export const areaCodelistId = (s: Series): string => `CL_AREA_${SERIES_IDS[s].suffix}`;
/** AGENCY:FLOW(VERSION), as in the SDMX-CSV STRUCTURE_ID column. */
export const dataflowRef = (s: Series): string => `${AGENCY.id}:${dataflowId(s)}(${VERSION})`;

/** Dimensions in DSD order (TIME_PERIOD last), then the measure, then the attributes. */
export const DIMENSIONS = ['FREQ', 'REF_AREA', 'MIGR_FLOW', 'SEX', 'AGE', 'MOVE_TYPE', 'TIME_PERIOD'] as const;
export type DimId = (typeof DIMENSIONS)[number];
export const MEASURE = 'OBS_VALUE';
/** Observation-level attributes, then dataset-level attributes (attribute relationship None / dataflow). */
export const OBS_ATTRIBUTES = ['OBS_STATUS'] as const;
export const DATASET_ATTRIBUTES = ['UNIT_MEASURE', 'UNIT_MULT', 'SERIES_NOTE'] as const;
export const ATTRIBUTES = [...OBS_ATTRIBUTES, ...DATASET_ATTRIBUTES] as const;
export type AttrId = (typeof ATTRIBUTES)[number];

/** Codelist of each coded component; REF_AREA depends on the series. */
export function codelistOf(component: string, series: Series): string | undefined {
  switch (component) {
    case 'FREQ': return 'CL_FREQ';
    case 'REF_AREA': return areaCodelistId(series);
    case 'MIGR_FLOW': return 'CL_MIGR_FLOW';
    case 'SEX': return 'CL_SEX';
    case 'AGE': return 'CL_AGE';
    case 'MOVE_TYPE': return 'CL_MOVE_TYPE';
    case 'OBS_STATUS': return 'CL_OBS_STATUS';
    case 'UNIT_MEASURE': return 'CL_UNIT';
    case 'UNIT_MULT': return 'CL_UNIT_MULT';
    default: return undefined;
  }
}

const t = (en: string, sr: string): Text => ({ en, 'sr-Latn': sr });

export const CONCEPTS: Concept[] = [
  { id: 'FREQ', name: t('Frequency', 'Učestalost') },
  { id: 'REF_AREA', name: t('Reference area', 'Teritorija') },
  { id: 'MIGR_FLOW', name: t('Migration flow', 'Migracioni tok') },
  { id: 'SEX', name: t('Sex', 'Pol') },
  { id: 'AGE', name: t('Age group', 'Starosna grupa') },
  { id: 'MOVE_TYPE', name: t('Type of move', 'Vrsta preseljenja') },
  { id: 'TIME_PERIOD', name: t('Time period', 'Period') },
  { id: 'OBS_VALUE', name: t('Observation value', 'Vrednost') },
  { id: 'OBS_STATUS', name: t('Observation status', 'Status podatka') },
  { id: 'UNIT_MEASURE', name: t('Unit of measure', 'Jedinica mere') },
  { id: 'UNIT_MULT', name: t('Unit multiplier', 'Množilac jedinice') },
  {
    id: 'SERIES_NOTE',
    name: t('Territorial series note', 'Napomena o teritorijalnoj seriji'),
    description: t(
      'Which territorial series the data belong to (1991-1997 with Kosovo i Metohija, 1998- without) and why the coverage changes in 1998.',
      'Kojoj teritorijalnoj seriji pripadaju podaci (1991-1997 sa AP Kosovo i Metohija, od 1998. bez) i zašto se obuhvat menja 1998.',
    ),
  },
];

function ageName(id: string): Text {
  if (id === 'Y_GE85') return t('85 years and over', '85 i više godina');
  const m = /^Y(\d+)T(\d+)$/.exec(id)!;
  return t(`${m[1]}-${m[2]} years`, `${m[1]}-${m[2]} godina`);
}

/** Codelists shared by both series (codes of the SDMX cross-domain lists where they exist). */
export const STATIC_CODELISTS: Codelist[] = [
  { id: 'CL_FREQ', name: t('Frequency', 'Učestalost'), codes: [{ id: 'A', name: t('Annual', 'Godišnje') }] },
  {
    id: 'CL_MIGR_FLOW',
    name: t('Internal migration flow', 'Tok unutrašnje migracije'),
    codes: [
      { id: 'IMM', name: t('Immigrants (in-migrants)', 'Doseljeni') },
      { id: 'EMI', name: t('Emigrants (out-migrants)', 'Odseljeni') },
      { id: 'NET', name: t('Net migration (immigrants minus emigrants)', 'Migracioni saldo (doseljeni minus odseljeni)') },
    ],
  },
  {
    id: 'CL_SEX',
    name: t('Sex', 'Pol'),
    codes: [
      { id: 'T', name: t('Total', 'Ukupno') },
      { id: 'M', name: t('Male', 'Muško') },
      { id: 'F', name: t('Female', 'Žensko') },
    ],
  },
  {
    id: 'CL_AGE',
    name: t('Age group', 'Starosna grupa'),
    codes: [{ id: '_T', name: t('Total', 'Ukupno') }, ...AGE_GROUPS.map((id) => ({ id, name: ageName(id), parent: '_T' }))],
  },
  {
    id: 'CL_MOVE_TYPE',
    name: t('Type of move', 'Vrsta preseljenja'),
    codes: [
      { id: '_T', name: t('Total', 'Ukupno') },
      { id: 'WITHIN_MUN', name: t('Within the same municipality', 'Unutar iste opštine'), parent: '_T' },
      { id: 'BETWEEN_MUN_SAME_AREA', name: t('Between municipalities of the same area', 'Između opština iste oblasti'), parent: '_T' },
      { id: 'BETWEEN_AREAS', name: t('Between areas', 'Između oblasti'), parent: '_T' },
    ],
  },
  {
    id: 'CL_OBS_STATUS',
    name: t('Observation status', 'Status podatka'),
    codes: [
      { id: 'A', name: t('Normal value', 'Normalna vrednost') },
      { id: 'E', name: t('Estimated value', 'Procenjena vrednost') },
      { id: 'P', name: t('Provisional value', 'Privremena vrednost') },
    ],
  },
  { id: 'CL_UNIT', name: t('Unit of measure', 'Jedinica mere'), codes: [{ id: 'PERS', name: t('Persons', 'Lica') }] },
  { id: 'CL_UNIT_MULT', name: t('Unit multiplier', 'Množilac jedinice'), codes: [{ id: '0', name: t('Units', 'Jedinice') }] },
];

export const MOVE_TYPE_CODES: Record<string, string> = {
  within_municipality: 'WITHIN_MUN',
  between_municipalities_same_area: 'BETWEEN_MUN_SAME_AREA',
  between_areas: 'BETWEEN_AREAS',
  total: '_T',
};

const SERIES_START: Record<Series, string> = { '1991-1997': '1991-01-01', '1998-': '1998-01-01' };
const SERIES_END: Record<Series, string> = { '1991-1997': '1998-01-01', '1998-': '9999-12-31' }; // exclusive

/**
 * REF_AREA codelist of a series: the Republic, its regions, areas and every municipality/city valid at
 * any time within the series (older units carry VALID_FROM / VALID_TO annotations), with the parent
 * hierarchy RS → region → area → municipality. The 1998- list has no Kosovo i Metohija code.
 */
export function areaCodelist(c: Classification, series: Series): Codelist {
  const inScope = (x: { inScope1998: boolean }): boolean => series === '1991-1997' || x.inScope1998;
  const byId = (a: { code: string }, b: { code: string }): number => (a.code < b.code ? -1 : a.code > b.code ? 1 : 0);
  const rsName =
    series === '1991-1997'
      ? t('Republic of Serbia (including AP Kosovo i Metohija)', 'Republika Srbija (sa AP Kosovo i Metohija)')
      : t('Republic of Serbia (excluding AP Kosovo i Metohija)', 'Republika Srbija (bez AP Kosovo i Metohija)');
  const codes: Code[] = [{ id: REPUBLIC, name: rsName }];
  for (const r of [...c.regions.values()].filter(inScope).sort(byId)) codes.push({ id: r.code, name: t(r.nameEn, r.name), parent: REPUBLIC });
  for (const a of [...c.areas.values()].filter(inScope).sort(byId)) codes.push({ id: a.code, name: t(a.nameEn, a.name), parent: a.region });
  const start = SERIES_START[series];
  const end = SERIES_END[series];
  const munis = [...c.municipalities.values()]
    .filter((m) => inScope(m) && (m.validFrom === '' || m.validFrom < end) && (m.validTo === '' || m.validTo > start))
    .sort(byId);
  for (const m of munis) {
    const annotations: Annotation[] = [];
    if (m.validFrom) annotations.push({ type: 'VALID_FROM', text: m.validFrom });
    if (m.validTo) annotations.push({ type: 'VALID_TO', text: m.validTo });
    codes.push({ id: m.code, name: t(m.nameEn, m.name), parent: m.area, ...(annotations.length ? { annotations } : {}) });
  }
  return {
    id: areaCodelistId(series),
    name: t(`Territory, series ${series}`, `Teritorija, serija ${series}`),
    description: t(SERIES_NOTE[series], SERIES_NOTE[series]),
    codes,
  };
}

export interface SeriesStructure { series: Series; areas: Codelist }

/** Everything the structure messages describe: both series, always (so each release ships both dataflows). */
export interface StructureModel { prepared: string; codelists: Codelist[]; series: SeriesStructure[] }

export function buildStructureModel(c: Classification, prepared: string): StructureModel {
  const series = ALL_SERIES.map((s) => ({ series: s, areas: areaCodelist(c, s) }));
  const codelists = [...series.map((s) => s.areas), ...STATIC_CODELISTS].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return { prepared, codelists, series };
}

export const DSD_NAME = (s: Series): Text => t(`Internal migration, series ${s}`, `Unutrašnje migracije, serija ${s}`);
export const DATAFLOW_NAME = (s: Series): Text =>
  t(`Internal migration of the population of the Republic of Serbia, series ${s}`, `Unutrašnje migracije stanovništva Republike Srbije, serija ${s}`);

/** ---------- observations ---------- */
export type ObsStatus = 'A' | 'E' | 'P';
export interface Obs { key: Record<DimId, string>; value: number; status: ObsStatus }
export interface DataModel {
  year: number;
  series: Series;
  prepared: string;
  provisional: boolean;
  areas: Codelist;
  /** sorted by the codelist order of each dimension, in DSD order */
  observations: Obs[];
  datasetAttributes: Record<(typeof DATASET_ATTRIBUTES)[number], string>;
}

export class SdmxInputError extends Error {}

const INT = /^-?\d+$/;
function num(r: Row, col: string, where: string): number {
  const v = r[col];
  if (v === undefined || !INT.test(v.trim())) throw new SdmxInputError(`${where}: column ${col} is not an integer: ${JSON.stringify(v)}`);
  return Number(v.trim());
}

export interface SdmxInput {
  year: number;
  series: Series;
  tables: { territory: Row[]; age: Row[]; move_type: Row[] };
  /** move_type_imputed: absent for months built before it existed (then no move-type cell is marked estimated) */
  imputed: { territory_imputed: Row[]; age_imputed: Row[]; move_type_imputed?: Row[] };
  classification: Classification;
  /** an observation is estimated (E) when imputed / value > estimatedThreshold, e.g. 0.05 */
  estimatedThreshold: number;
  /** ISO 8601 date-time with a time zone (Z or ±hh:mm), passed by the caller so output is reproducible */
  prepared: string;
  provisional?: boolean;
}

export const PREPARED = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/;

/**
 * The observations of one reference year: territory table (AGE=_T, MOVE_TYPE=_T), age table
 * (MOVE_TYPE=_T), move_type table (MIGR_FLOW=IMM, SEX=T, AGE=_T; its `total` is the territory's
 * IMM/T/_T/_T cell and must agree with it). Duplicate keys with equal values are merged; with different
 * values they are an error, as are unknown codes, a row of the other series, and non-integer cells.
 */
export function buildDataModel(input: SdmxInput): DataModel {
  const { year, series } = input;
  if (!Number.isInteger(year) || year < 1991 || year > 9999) throw new SdmxInputError(`year must be an integer from 1991: ${year}`);
  if (!ALL_SERIES.includes(series)) throw new SdmxInputError(`unknown series ${JSON.stringify(series)}`);
  const expected: Series = year <= 1997 ? '1991-1997' : '1998-';
  if (series !== expected) throw new SdmxInputError(`year ${year} belongs to series ${expected}, not ${series}`);
  if (!PREPARED.test(input.prepared)) throw new SdmxInputError(`prepared must be an ISO 8601 date-time with a time zone: ${JSON.stringify(input.prepared)}`);
  if (!(input.estimatedThreshold >= 0 && input.estimatedThreshold < 1)) throw new SdmxInputError(`estimatedThreshold must be in [0, 1): ${input.estimatedThreshold}`);
  const b = new ModelBuilder(input);
  b.addImputed(input.imputed.territory_imputed, 'territory_imputed', false);
  b.addImputed(input.imputed.age_imputed, 'age_imputed', true);
  b.addImputedMoveTypes(input.imputed.move_type_imputed ?? []);
  b.flows(input.tables.territory, 'territory', false);
  b.flows(input.tables.age, 'age', true);
  b.moveTypes(input.tables.move_type);
  const observations = filledSlots(b.slots);
  return {
    year, series, prepared: input.prepared, provisional: b.provisional, areas: b.areas, observations,
    datasetAttributes: { UNIT_MEASURE: 'PERS', UNIT_MULT: '0', SERIES_NOTE: SERIES_NOTE[series] },
  };
}

/** The observations in slot order (a loop alone in a function: LOOP_TAIL in pipeline/memo.ts). */
function filledSlots(slots: readonly (Obs | undefined)[]): Obs[] {
  const observations: Obs[] = [];
  for (const o of slots) if (o) observations.push(o);
  return observations;
}

const rank = (cl: Codelist): Map<string, number> => new Map(cl.codes.map((c, i) => [c.id, i]));

/**
 * The state of one buildDataModel: a class (its methods compiled once for every year) rather than closures made
 * afresh by each call, which V8 compiled again every year.
 *
 * Observations go straight to their place in the publication order (codelist order of each dimension, in DSD order;
 * FREQ and TIME_PERIOD have one value): a dense slot per possible key, so no sort and no key strings. Every code is
 * validated against its codelist before its rank is taken.
 */
class ModelBuilder {
  readonly series: Series;
  readonly provisional: boolean;
  readonly areas: Codelist;
  private readonly areaIds: Set<string>;
  private readonly ageIds = new Set<string>(['_T', ...AGE_GROUPS]);
  private readonly time: string;
  private readonly threshold: number;
  private readonly areaR: Map<string, number>;
  private readonly flowR: Map<string, number>;
  private readonly sexR: Map<string, number>;
  private readonly ageR: Map<string, number>;
  private readonly mtR: Map<string, number>;
  private readonly nFlow: number;
  private readonly nSex: number;
  private readonly nAge: number;
  private readonly nMt: number;
  /** imputed counts per cell (area × sex × age); a later row of the same cell replaces an earlier one */
  private readonly impImm: Float64Array;
  private readonly impEmi: Float64Array;
  /** imputed immigrations per area × move type (their origin, which decides the type, was donor-imputed) */
  private readonly impMt: Float64Array;
  readonly slots: (Obs | undefined)[];

  constructor(input: SdmxInput) {
    this.series = input.series;
    this.provisional = input.provisional === true;
    this.areas = areaCodelist(input.classification, input.series);
    this.areaIds = new Set(this.areas.codes.map((c) => c.id));
    this.time = String(input.year);
    this.threshold = input.estimatedThreshold;
    const staticRank = (d: DimId): Map<string, number> => rank(STATIC_CODELISTS.find((c) => c.id === codelistOf(d, input.series))!);
    this.areaR = rank(this.areas);
    this.flowR = staticRank('MIGR_FLOW');
    this.sexR = staticRank('SEX');
    this.ageR = staticRank('AGE');
    this.mtR = staticRank('MOVE_TYPE');
    this.nFlow = this.flowR.size;
    this.nSex = this.sexR.size;
    this.nAge = this.ageR.size;
    this.nMt = this.mtR.size;
    const nCells = this.areaR.size * this.nSex * this.nAge;
    this.impImm = new Float64Array(nCells);
    this.impEmi = new Float64Array(nCells);
    this.impMt = new Float64Array(this.areaR.size * this.nMt);
    this.slots = new Array(nCells * this.nFlow * this.nMt);
  }

  private checkRow(r: Row, where: string): string {
    if (r.series !== undefined && r.series !== this.series) throw new SdmxInputError(`${where}: row of series ${r.series} in a ${this.series} dataset (the series are never mixed)`);
    const code = r.code ?? '';
    if (!this.areaIds.has(code)) throw new SdmxInputError(`${where}: territorial code ${JSON.stringify(code)} is not in ${this.areas.id}`);
    return code;
  }

  private checkSex(s: string | undefined, where: string): string {
    if (s !== 'T' && s !== 'M' && s !== 'F') throw new SdmxInputError(`${where}: sex must be T, M or F: ${JSON.stringify(s)}`);
    return s;
  }

  /** the slot of area × sex × age, before the flow and move type are known */
  private cellOf(code: string, sex: string, age: string): number {
    return (this.areaR.get(code)! * this.nSex + this.sexR.get(sex)!) * this.nAge + this.ageR.get(age)!;
  }

  private mtCell(code: string, mt: string): number {
    return this.areaR.get(code)! * this.nMt + this.mtR.get(mt)!;
  }

  private moveTypeOf(r: Row, where: string): string {
    const mt = MOVE_TYPE_CODES[r.move_type ?? ''];
    if (!mt) throw new SdmxInputError(`${where}: unknown move_type ${JSON.stringify(r.move_type)}`);
    return mt;
  }

  private est(imp: number, value: number): boolean {
    return value > 0 && imp / value > this.threshold;
  }

  /** the slot of a cell's observation: the flow sits between area and sex in the DSD order, the move type last */
  private slotOf(cell: number, flow: string, mt: string): number {
    const area = Math.floor(cell / (this.nSex * this.nAge)), sexAge = cell % (this.nSex * this.nAge);
    return ((area * this.nFlow + this.flowR.get(flow)!) * this.nSex * this.nAge + sexAge) * this.nMt + this.mtR.get(mt)!;
  }

  private put(slot: number, key: Record<DimId, string>, value: number, estimated: boolean, where: string): void {
    const prev = this.slots[slot];
    if (prev) {
      if (prev.value !== value) throw new SdmxInputError(`${where}: observation ${DIMENSIONS.map((d) => key[d]).join('.')} = ${value} contradicts an earlier value ${prev.value}`);
      return;
    }
    this.slots[slot] = { key, value, status: this.provisional ? 'P' : estimated ? 'E' : 'A' };
  }

  private obsKey(code: string, flow: string, sex: string, age: string, mt: string): Record<DimId, string> {
    return { FREQ: 'A', REF_AREA: code, MIGR_FLOW: flow, SEX: sex, AGE: age, MOVE_TYPE: mt, TIME_PERIOD: this.time };
  }

  addImputed(rows: Row[], name: string, withAge: boolean): void {
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i]!;
      const where = `${name} row ${i + 1}`;
      const code = this.checkRow(r, where);
      const sex = this.checkSex(r.sex, where);
      const age = withAge ? (r.age_group ?? '') : '_T';
      const imm = num(r, 'immigrants_imputed', where), emi = num(r, 'emigrants_imputed', where);
      if (!this.ageR.has(age)) continue; // (a cell no observation has: never looked up)
      const c = this.cellOf(code, sex, age);
      this.impImm[c] = imm;
      this.impEmi[c] = emi;
    }
  }

  addImputedMoveTypes(rows: Row[]): void {
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i]!;
      const where = `move_type_imputed row ${i + 1}`;
      const code = this.checkRow(r, where);
      this.impMt[this.mtCell(code, this.moveTypeOf(r, where))] = num(r, 'migrants_imputed', where);
    }
  }

  flows(rows: Row[], name: string, withAge: boolean): void {
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i]!;
      const where = `${name} row ${i + 1}`;
      const code = this.checkRow(r, where);
      const sex = this.checkSex(r.sex, where);
      let age = '_T';
      if (withAge) {
        age = r.age_group ?? '';
        if (age === 'total') age = '_T';
        if (!this.ageIds.has(age)) throw new SdmxInputError(`${where}: unknown age group ${JSON.stringify(age)}`);
      }
      const imm = num(r, 'immigrants', where);
      const emi = num(r, 'emigrants', where);
      const net = num(r, 'net', where);
      if (net !== imm - emi) throw new SdmxInputError(`${where}: net ${net} is not immigrants ${imm} minus emigrants ${emi}`);
      const cell = this.cellOf(code, sex, age);
      const eImm = this.est(this.impImm[cell]!, imm);
      const eEmi = this.est(this.impEmi[cell]!, emi);
      this.put(this.slotOf(cell, 'IMM', '_T'), this.obsKey(code, 'IMM', sex, age, '_T'), imm, eImm, where);
      this.put(this.slotOf(cell, 'EMI', '_T'), this.obsKey(code, 'EMI', sex, age, '_T'), emi, eEmi, where);
      this.put(this.slotOf(cell, 'NET', '_T'), this.obsKey(code, 'NET', sex, age, '_T'), net, eImm || eEmi, where);
    }
  }

  moveTypes(rows: Row[]): void {
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i]!;
      const where = `move_type row ${i + 1}`;
      const code = this.checkRow(r, where);
      const mt = this.moveTypeOf(r, where);
      const v = num(r, 'migrants', where);
      // a type is estimated by the imputed origins that decided it; the total inherits the territory cell's status
      const cell = this.cellOf(code, 'T', '_T');
      this.put(this.slotOf(cell, 'IMM', mt), this.obsKey(code, 'IMM', 'T', '_T', mt), v, mt === '_T' ? this.est(this.impImm[cell]!, v) : this.est(this.impMt[this.mtCell(code, mt)]!, v), where);
    }
  }
}

/** Ids of the values of each dimension used in the data, in codelist order (TIME_PERIOD: the year). */
export function usedValues(m: DataModel): Record<DimId, string[]> {
  const out = {} as Record<DimId, string[]>;
  const used = valuesUsed(m.observations);
  for (const d of DIMENSIONS) {
    if (d === 'TIME_PERIOD') { out[d] = [String(m.year)]; continue; }
    const cl = d === 'REF_AREA' ? m.areas : STATIC_CODELISTS.find((c) => c.id === codelistOf(d, m.series))!;
    out[d] = cl.codes.map((c) => c.id).filter((id) => used[d].has(id));
  }
  return out;
}

/**
 * The values each dimension takes in the observations, in one pass that reads each key's properties by name
 * (a read by a varying name was a megamorphic access, and a loop per dimension inside usedValues was compiled
 * again every year).
 */
function valuesUsed(observations: readonly Obs[]): Record<Exclude<DimId, 'TIME_PERIOD'>, Set<string>> {
  const FREQ = new Set<string>(), REF_AREA = new Set<string>(), MIGR_FLOW = new Set<string>(), SEX = new Set<string>(), AGE = new Set<string>(), MOVE_TYPE = new Set<string>();
  for (const o of observations) {
    const k = o.key;
    FREQ.add(k.FREQ); REF_AREA.add(k.REF_AREA); MIGR_FLOW.add(k.MIGR_FLOW); SEX.add(k.SEX); AGE.add(k.AGE); MOVE_TYPE.add(k.MOVE_TYPE);
  }
  return { FREQ, REF_AREA, MIGR_FLOW, SEX, AGE, MOVE_TYPE };
}

export function codeName(m: DataModel, dim: string, id: string): Text {
  if (dim === 'TIME_PERIOD') return { en: id, 'sr-Latn': id };
  const cl = dim === 'REF_AREA' ? m.areas : STATIC_CODELISTS.find((c) => c.id === codelistOf(dim, m.series))!;
  return cl.codes.find((c) => c.id === id)!.name;
}

export const conceptName = (id: string): Text => CONCEPTS.find((c) => c.id === id)!.name;
export { KM_REGION };
