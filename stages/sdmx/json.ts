/** SDMX-JSON 2.0.0 writers: structure message and flat data message (dimensionAtObservation=AllDimensions). */
import type { Series } from '../territory';
import {
  AGENCY, type Annotation, type Codelist, CONCEPT_SCHEME, CONCEPTS, DATAFLOW_NAME, DATASET_ATTRIBUTES, type DataModel, DIMENSIONS, DSD_NAME,
  OBS_ATTRIBUTES, STATIC_CODELISTS, type StructureModel, type Text, VERSION, codeName, codelistOf, conceptName, dataflowId, dsdId, usedValues,
} from './model';
import { ByteWriter } from '../../pipeline/bytes';

/** JSON language keys: BCP 47 is case-insensitive; the SDMX-JSON schema pattern wants lower case. */
const JSON_LANGS: Record<keyof Text, string> = { en: 'en', 'sr-Latn': 'sr-latn' };
const CONTENT_LANGUAGES = ['en', 'sr-latn'];
const names = (t: Text): Record<string, string> => ({ [JSON_LANGS.en]: t.en, [JSON_LANGS['sr-Latn']]: t['sr-Latn'] });
const nameable = (t: Text): { name: string; names: Record<string, string> } => ({ name: t.en, names: names(t) });

const STRUCTURE_SCHEMA = 'https://raw.githubusercontent.com/sdmx-twg/sdmx-json/v2.0.0/structure-message/tools/schemas/2.0.0/sdmx-json-structure-schema.json';
const DATA_SCHEMA = 'https://raw.githubusercontent.com/sdmx-twg/sdmx-json/v2.0.0/data-message/tools/schemas/2.0.0/sdmx-json-data-schema.json';

const maint = (cls: string, id: string): string => `urn:sdmx:org.sdmx.infomodel.${cls}=${AGENCY.id}:${id}(${VERSION})`;
const conceptUrn = (id: string): string => `${maint('conceptscheme.Concept', CONCEPT_SCHEME)}.${id}`;
const codelistUrn = (id: string): string => maint('codelist.Codelist', id);

function meta(id: string, prepared: string, schema: string): Record<string, unknown> {
  return { schema, id, test: false, prepared, contentLanguages: CONTENT_LANGUAGES, sender: { id: AGENCY.id, ...nameable(AGENCY.name) } };
}

const annotationsJson = (a: Annotation[]): Record<string, unknown>[] => a.map((x) => ({ type: x.type, text: x.text, texts: { en: x.text } }));

function codelistJson(cl: Codelist): Record<string, unknown> {
  return {
    id: cl.id, version: VERSION, agencyID: AGENCY.id, isExternalReference: false, isFinal: false, ...nameable(cl.name),
    ...(cl.description ? { description: cl.description.en, descriptions: names(cl.description) } : {}),
    links: [{ rel: 'self', urn: codelistUrn(cl.id), type: 'codelist' }],
    isPartial: false,
    codes: cl.codes.map((c) => ({
      id: c.id, ...nameable(c.name), ...(c.annotations?.length ? { annotations: annotationsJson(c.annotations) } : {}), ...(c.parent ? { parent: c.parent } : {}),
    })),
  };
}

function dsdJson(s: Series): Record<string, unknown> {
  const id = dsdId(s);
  const dims = DIMENSIONS.filter((d) => d !== 'TIME_PERIOD').map((d, i) => ({
    id: d, position: i, type: 'Dimension', conceptIdentity: conceptUrn(d), localRepresentation: { enumeration: codelistUrn(codelistOf(d, s)!) },
  }));
  const attributes = [...OBS_ATTRIBUTES, ...DATASET_ATTRIBUTES].map((a) => {
    const cl = codelistOf(a, s);
    return {
      id: a, usage: 'mandatory',
      attributeRelationship: (OBS_ATTRIBUTES as readonly string[]).includes(a) ? { observation: {} } : { dataflow: {} },
      conceptIdentity: conceptUrn(a),
      localRepresentation: cl ? { enumeration: codelistUrn(cl) } : { format: { dataType: 'String' } },
    };
  });
  return {
    id, version: VERSION, agencyID: AGENCY.id, isExternalReference: false, isFinal: false, ...nameable(DSD_NAME(s)),
    links: [{ rel: 'self', urn: maint('datastructure.DataStructure', id), type: 'datastructure' }],
    dataStructureComponents: {
      attributeList: { id: 'AttributeDescriptor', attributes },
      dimensionList: {
        id: 'DimensionDescriptor', dimensions: dims,
        timeDimension: { id: 'TIME_PERIOD', position: dims.length, conceptIdentity: conceptUrn('TIME_PERIOD'), localRepresentation: { format: { dataType: 'ObservationalTimePeriod' } } },
      },
      measureList: { id: 'MeasureDescriptor', measures: [{ id: 'OBS_VALUE', usage: 'mandatory', conceptIdentity: conceptUrn('OBS_VALUE'), localRepresentation: { format: { dataType: 'Integer' } } }] },
    },
  };
}

export function structureJson(m: StructureModel): string {
  const msg = {
    meta: meta('MIGR_STRUCTURE', m.prepared, STRUCTURE_SCHEMA),
    data: {
      agencySchemes: [{
        id: 'AGENCIES', version: '1.0', agencyID: 'SDMX', isExternalReference: false, isFinal: false, name: 'SDMX Agency Scheme', names: { en: 'SDMX Agency Scheme' },
        isPartial: true, agencies: [{ id: AGENCY.id, ...nameable(AGENCY.name) }],
      }],
      dataflows: m.series.map((s) => ({
        id: dataflowId(s.series), version: VERSION, agencyID: AGENCY.id, isExternalReference: false, isFinal: false, ...nameable(DATAFLOW_NAME(s.series)),
        description: s.areas.description!.en, descriptions: names(s.areas.description!),
        links: [{ rel: 'self', urn: maint('datastructure.Dataflow', dataflowId(s.series)), type: 'dataflow' }],
        structure: maint('datastructure.DataStructure', dsdId(s.series)),
      })),
      codelists: m.codelists.map(codelistJson),
      conceptSchemes: [{
        id: CONCEPT_SCHEME, version: VERSION, agencyID: AGENCY.id, isExternalReference: false, isFinal: false,
        ...nameable({ en: 'Internal migration concepts', 'sr-Latn': 'Pojmovi unutrašnjih migracija' }), isPartial: false,
        concepts: CONCEPTS.map((c) => ({ id: c.id, ...nameable(c.name), ...(c.description ? { description: c.description.en, descriptions: names(c.description) } : {}) })),
      }],
      dataStructures: m.series.map((s) => dsdJson(s.series)),
    },
  };
  return JSON.stringify(msg, null, 1) + '\n';
}

const OBSERVATIONS_PLACEHOLDER = '\u0000observations\u0000';

/**
 * The observations object ("i:j:k": [value, status]) as bytes. A function of its own, not a loop inside dataJson: V8
 * then compiles this loop alone, not the whole of dataJson on the stack again every year.
 */
function observationBytes(m: DataModel, obsDims: readonly (typeof DIMENSIONS)[number][], index: readonly Map<string, number>[], statusIdx: Map<string, number>): Buffer {
  const out = new ByteWriter(m.observations.length * 24);
  out.char(123); // '{'
  observationEntries(out, m, obsDims, index, statusIdx);
  out.char(125); // '}'
  return out.result();
}
/** observationBytes' loop, alone in a function (LOOP_TAIL in pipeline/memo.ts) */
function observationEntries(out: ByteWriter, m: DataModel, obsDims: readonly (typeof DIMENSIONS)[number][], index: readonly Map<string, number>[], statusIdx: Map<string, number>): void {
  let first = true;
  for (const o of m.observations) {
    if (!first) out.char(44); // ','
    first = false;
    out.char(34); // '"'
    for (let i = 0; i < obsDims.length; i++) {
      if (i) out.char(58); // ':'
      out.number(index[i]!.get(o.key[obsDims[i]!])!);
    }
    out.char(34);
    out.char(58);
    out.char(91); // '[' value ',' status ']'
    if (Number.isFinite(o.value)) out.number(o.value);
    else out.text(JSON.stringify(o.value));
    out.char(44);
    out.number(statusIdx.get(o.status)!);
    out.char(93);
  }
}

/** The SDMX-JSON data message, as UTF-8 bytes. */
export function dataJson(m: DataModel): Buffer {
  const used = usedValues(m);
  const df = dataflowId(m.series);
  // dimensions with a single value in the data go to dataSet level (SDMX-JSON recommendation), the rest to observation level
  const dsDims = DIMENSIONS.filter((d) => used[d].length === 1);
  const obsDims = DIMENSIONS.filter((d) => used[d].length !== 1);
  const dimJson = (d: (typeof DIMENSIONS)[number]): Record<string, unknown> => ({
    id: d, ...nameable(conceptName(d)), keyPosition: DIMENSIONS.indexOf(d),
    ...(d === 'FREQ' || d === 'REF_AREA' || d === 'TIME_PERIOD' ? { roles: [d] } : {}),
    values: used[d].map((v) =>
      d === 'TIME_PERIOD'
        ? { id: v, name: v, names: { en: v }, start: `${v}-01-01T00:00:00Z`, end: `${v}-12-31T23:59:59Z` }
        : { id: v, ...nameable(codeName(m, d, v)) },
    ),
  });
  const statusCodes = STATIC_CODELISTS.find((c) => c.id === 'CL_OBS_STATUS')!.codes.filter((c) => m.observations.some((o) => o.status === c.id));
  const statusIdx = new Map(statusCodes.map((c, i) => [c.id, i]));
  const dsAttr = DATASET_ATTRIBUTES.map((a) => {
    const cl = codelistOf(a, m.series);
    const v = m.datasetAttributes[a];
    const value = cl ? { id: v, ...nameable(STATIC_CODELISTS.find((c) => c.id === cl)!.codes.find((c) => c.id === v)!.name) } : { value: v };
    return { id: a, ...nameable(conceptName(a)), isMandatory: true, relationship: { dataflow: {} }, ...(a === 'UNIT_MEASURE' || a === 'UNIT_MULT' ? { roles: [a] } : {}), values: [value] };
  });
  const index = obsDims.map((d) => new Map(used[d].map((v, i) => [v, i])));
  // The observations object ("i:j:k": [value, status]) is written as bytes and spliced into the message in
  // place of a placeholder: JSON.stringify of a 35 000-key object costs far more. Its keys are unique (the
  // single-valued dimensions are not in them) and, with two or more observation dimensions, not integer-like,
  // so JSON.stringify would also keep them in insertion order; otherwise the object is built as before.
  let observations: Record<string, [number, number]> | string = {};
  let obsBytes: Buffer | undefined;
  if (obsDims.length >= 2) {
    obsBytes = observationBytes(m, obsDims, index, statusIdx);
    observations = OBSERVATIONS_PLACEHOLDER;
  } else {
    for (const o of m.observations) {
      const k = obsDims.map((d, i) => index[i]!.get(o.key[d])!).join(':');
      observations[k] = [o.value, statusIdx.get(o.status)!];
    }
  }
  const msg = {
    meta: meta(`MIGR_${m.year}`, m.prepared, DATA_SCHEMA),
    data: {
      structures: [{
        links: [
          { rel: 'dataflow', urn: maint('datastructure.Dataflow', df) },
          { rel: 'datastructure', urn: maint('datastructure.DataStructure', dsdId(m.series)) },
        ],
        dimensions: { dataSet: dsDims.map(dimJson), series: [], observation: obsDims.map(dimJson) },
        measures: { observation: [{ id: 'OBS_VALUE', ...nameable(conceptName('OBS_VALUE')), isMandatory: true, roles: ['OBS_VALUE'], format: { dataType: 'Integer' } }] },
        attributes: {
          dataSet: dsAttr,
          series: [],
          observation: [{ id: 'OBS_STATUS', ...nameable(conceptName('OBS_STATUS')), isMandatory: true, relationship: { observation: {} }, roles: ['OBS_STATUS'], values: statusCodes.map((c) => ({ id: c.id, ...nameable(c.name) })) }],
        },
        dataSets: [0],
      }],
      dataSets: [{ structure: 0, action: 'Information', links: [{ rel: 'dataflow', urn: maint('datastructure.Dataflow', df) }], attributes: DATASET_ATTRIBUTES.map(() => 0), observations }],
    },
  };
  const json = `${JSON.stringify(msg)}\n`;
  if (!obsBytes) return Buffer.from(json, 'utf8');
  const at = json.indexOf(JSON.stringify(OBSERVATIONS_PLACEHOLDER));
  return Buffer.concat([Buffer.from(json.slice(0, at), 'utf8'), obsBytes, Buffer.from(json.slice(at + JSON.stringify(OBSERVATIONS_PLACEHOLDER).length), 'utf8')]);
}
