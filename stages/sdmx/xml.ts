/** SDMX-ML 2.1 writers: the Structure message and the flat GenericData message (the one rsdmx reads). */
import type { Series } from '../territory';
import {
  AGENCY, ATTRIBUTES, type Codelist, CONCEPT_SCHEME, CONCEPTS, DATAFLOW_NAME, DATASET_ATTRIBUTES, type DataModel, DIMENSIONS, DSD_NAME,
  type StructureModel, type Text, VERSION, codelistOf, dataflowId, dsdId, LANGS,
} from './model';
import { ByteWriter } from '../../pipeline/bytes';
import { KeyedCache } from '../../pipeline/memo'; // the writers format each distinct dimension value once

const NS =
  'xmlns:message="http://www.sdmx.org/resources/sdmxml/schemas/v2_1/message" ' +
  'xmlns:structure="http://www.sdmx.org/resources/sdmxml/schemas/v2_1/structure" ' +
  'xmlns:common="http://www.sdmx.org/resources/sdmxml/schemas/v2_1/common"';
const NS_DATA =
  'xmlns:message="http://www.sdmx.org/resources/sdmxml/schemas/v2_1/message" ' +
  'xmlns:generic="http://www.sdmx.org/resources/sdmxml/schemas/v2_1/data/generic" ' +
  'xmlns:common="http://www.sdmx.org/resources/sdmxml/schemas/v2_1/common"';

export function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function texts(tag: string, t: Text, ind: string): string[] {
  return LANGS.map((l) => `${ind}<common:${tag} xml:lang="${l}">${esc(t[l])}</common:${tag}>`);
}

function header(id: string, prepared: string, extra: string[] = []): string[] {
  return [
    '  <message:Header>',
    `    <message:ID>${esc(id)}</message:ID>`,
    '    <message:Test>false</message:Test>',
    `    <message:Prepared>${esc(prepared)}</message:Prepared>`,
    `    <message:Sender id="${AGENCY.id}">`,
    ...texts('Name', AGENCY.name, '      '),
    '    </message:Sender>',
    ...extra,
    '  </message:Header>',
  ];
}

const urn = (cls: string, id: string, agency = AGENCY.id, version = VERSION): string => `urn:sdmx:org.sdmx.infomodel.${cls}=${agency}:${id}(${version})`;

function codelistXml(cl: Codelist): string[] {
  const out = [`      <structure:Codelist id="${cl.id}" urn="${urn('codelist.Codelist', cl.id)}" agencyID="${AGENCY.id}" version="${VERSION}">`];
  out.push(...texts('Name', cl.name, '        '));
  if (cl.description) out.push(...texts('Description', cl.description, '        '));
  for (const c of cl.codes) {
    out.push(`        <structure:Code id="${esc(c.id)}" urn="${urn('codelist.Code', cl.id)}.${esc(c.id)}">`);
    if (c.annotations?.length) {
      out.push('          <common:Annotations>');
      for (const a of c.annotations) {
        out.push('            <common:Annotation>', `              <common:AnnotationType>${esc(a.type)}</common:AnnotationType>`, `              <common:AnnotationText xml:lang="en">${esc(a.text)}</common:AnnotationText>`, '            </common:Annotation>');
      }
      out.push('          </common:Annotations>');
    }
    out.push(...texts('Name', c.name, '          '));
    if (c.parent) out.push(`          <structure:Parent><Ref id="${esc(c.parent)}" class="Code" package="codelist"/></structure:Parent>`);
    out.push('        </structure:Code>');
  }
  out.push('      </structure:Codelist>');
  return out;
}

// every Ref with its class and package: fixed in the XSD, so optional, but clients that read the XML without the schema
// (pysdmx) look them up
const conceptRef = (id: string): string => `<Ref agencyID="${AGENCY.id}" maintainableParentID="${CONCEPT_SCHEME}" maintainableParentVersion="${VERSION}" id="${id}" class="Concept" package="conceptscheme"/>`;
const enumRef = (cl: string): string => `<structure:LocalRepresentation><structure:Enumeration><Ref agencyID="${AGENCY.id}" id="${cl}" version="${VERSION}" class="Codelist" package="codelist"/></structure:Enumeration></structure:LocalRepresentation>`;

function dsdXml(s: Series): string[] {
  const id = dsdId(s);
  const base = `urn:sdmx:org.sdmx.infomodel.datastructure`;
  const dsdUrn = `${AGENCY.id}:${id}(${VERSION})`;
  const out = [`      <structure:DataStructure id="${id}" urn="${base}.DataStructure=${dsdUrn}" agencyID="${AGENCY.id}" version="${VERSION}">`];
  out.push(...texts('Name', DSD_NAME(s), '        '));
  out.push('        <structure:DataStructureComponents>', `          <structure:DimensionList id="DimensionDescriptor" urn="${base}.DimensionDescriptor=${dsdUrn}.DimensionDescriptor">`);
  DIMENSIONS.forEach((d, i) => {
    if (d === 'TIME_PERIOD') {
      out.push(
        `            <structure:TimeDimension id="TIME_PERIOD" urn="${base}.TimeDimension=${dsdUrn}.TIME_PERIOD" position="${i + 1}">`,
        `              <structure:ConceptIdentity>${conceptRef(d)}</structure:ConceptIdentity>`,
        '              <structure:LocalRepresentation><structure:TextFormat textType="ObservationalTimePeriod"/></structure:LocalRepresentation>',
        '            </structure:TimeDimension>',
      );
    } else {
      out.push(
        `            <structure:Dimension id="${d}" urn="${base}.Dimension=${dsdUrn}.${d}" position="${i + 1}">`,
        `              <structure:ConceptIdentity>${conceptRef(d)}</structure:ConceptIdentity>`,
        `              ${enumRef(codelistOf(d, s)!)}`,
        '            </structure:Dimension>',
      );
    }
  });
  out.push('          </structure:DimensionList>', `          <structure:AttributeList id="AttributeDescriptor" urn="${base}.AttributeDescriptor=${dsdUrn}.AttributeDescriptor">`);
  for (const a of ATTRIBUTES) {
    const cl = codelistOf(a, s);
    const datasetLevel = (DATASET_ATTRIBUTES as readonly string[]).includes(a);
    out.push(
      `            <structure:Attribute id="${a}" urn="${base}.DataAttribute=${dsdUrn}.${a}" assignmentStatus="Mandatory">`,
      `              <structure:ConceptIdentity>${conceptRef(a)}</structure:ConceptIdentity>`,
      cl ? `              ${enumRef(cl)}` : '              <structure:LocalRepresentation><structure:TextFormat textType="String"/></structure:LocalRepresentation>',
      datasetLevel
        ? '              <structure:AttributeRelationship><structure:None/></structure:AttributeRelationship>'
        : '              <structure:AttributeRelationship><structure:PrimaryMeasure><Ref id="OBS_VALUE" class="PrimaryMeasure" package="datastructure"/></structure:PrimaryMeasure></structure:AttributeRelationship>',
      '            </structure:Attribute>',
    );
  }
  out.push(
    '          </structure:AttributeList>',
    `          <structure:MeasureList id="MeasureDescriptor" urn="${base}.MeasureDescriptor=${dsdUrn}.MeasureDescriptor">`,
    `            <structure:PrimaryMeasure id="OBS_VALUE" urn="${base}.PrimaryMeasure=${dsdUrn}.OBS_VALUE">`,
    `              <structure:ConceptIdentity>${conceptRef('OBS_VALUE')}</structure:ConceptIdentity>`,
    '              <structure:LocalRepresentation><structure:TextFormat textType="Integer"/></structure:LocalRepresentation>',
    '            </structure:PrimaryMeasure>',
    '          </structure:MeasureList>',
    '        </structure:DataStructureComponents>',
    '      </structure:DataStructure>',
  );
  return out;
}

export function structureXml(m: StructureModel): string {
  const out = ['<?xml version="1.0" encoding="UTF-8"?>', `<message:Structure ${NS}>`];
  out.push(...header('MIGR_STRUCTURE', m.prepared));
  out.push('  <message:Structures>');
  // agency
  out.push(
    '    <structure:OrganisationSchemes>',
    '      <structure:AgencyScheme id="AGENCIES" urn="urn:sdmx:org.sdmx.infomodel.base.AgencyScheme=SDMX:AGENCIES(1.0)" agencyID="SDMX" version="1.0" isPartial="true">',
    '        <common:Name xml:lang="en">SDMX Agency Scheme</common:Name>',
    `        <structure:Agency id="${AGENCY.id}" urn="urn:sdmx:org.sdmx.infomodel.base.Agency=SDMX:AGENCIES(1.0).${AGENCY.id}">`,
    ...texts('Name', AGENCY.name, '          '),
    '        </structure:Agency>',
    '      </structure:AgencyScheme>',
    '    </structure:OrganisationSchemes>',
  );
  // dataflows
  out.push('    <structure:Dataflows>');
  for (const s of m.series) {
    const id = dataflowId(s.series);
    out.push(`      <structure:Dataflow id="${id}" urn="${urn('datastructure.Dataflow', id)}" agencyID="${AGENCY.id}" version="${VERSION}">`);
    out.push(...texts('Name', DATAFLOW_NAME(s.series), '        '));
    out.push(...texts('Description', s.areas.description!, '        '));
    out.push(`        <structure:Structure><Ref agencyID="${AGENCY.id}" id="${dsdId(s.series)}" version="${VERSION}" class="DataStructure" package="datastructure"/></structure:Structure>`);
    out.push('      </structure:Dataflow>');
  }
  out.push('    </structure:Dataflows>');
  out.push('    <structure:Codelists>');
  for (const cl of m.codelists) out.push(...codelistXml(cl));
  out.push('    </structure:Codelists>');
  out.push('    <structure:Concepts>');
  out.push(`      <structure:ConceptScheme id="${CONCEPT_SCHEME}" urn="${urn('conceptscheme.ConceptScheme', CONCEPT_SCHEME)}" agencyID="${AGENCY.id}" version="${VERSION}">`);
  out.push(...texts('Name', { en: 'Internal migration concepts', 'sr-Latn': 'Pojmovi unutrašnjih migracija' }, '        '));
  for (const c of CONCEPTS) {
    out.push(`        <structure:Concept id="${c.id}" urn="${urn('conceptscheme.Concept', CONCEPT_SCHEME)}.${c.id}">`);
    out.push(...texts('Name', c.name, '          '));
    if (c.description) out.push(...texts('Description', c.description, '          '));
    out.push('        </structure:Concept>');
  }
  out.push('      </structure:ConceptScheme>', '    </structure:Concepts>');
  out.push('    <structure:DataStructures>');
  for (const s of m.series) out.push(...dsdXml(s.series));
  out.push('    </structure:DataStructures>');
  out.push('  </message:Structures>', '</message:Structure>', '');
  return out.join('\n');
}

/**
 * The observations of dataXml, each from the bytes of its parts. A function of its own, not a loop inside dataXml: V8
 * then compiles this loop alone, not the whole of dataXml on the stack again every year.
 */
function writeObservations(out: ByteWriter, observations: DataModel['observations'], frag: readonly KeyedCache<Buffer>[], open: Buffer, value: Buffer, status: KeyedCache<Buffer>): void {
  for (const o of observations) {
    out.raw(open);
    for (let i = 0; i < DIMENSIONS.length; i++) out.raw(frag[i]!.get(o.key[DIMENSIONS[i]!]));
    out.raw(value);
    out.number(o.value);
    out.raw(status.get(o.status));
  }
}

/** Flat generic data: every observation carries its full key (dimensionAtObservation="AllDimensions"). As UTF-8 bytes. */
export function dataXml(m: DataModel): Buffer {
  const df = dataflowId(m.series);
  const head = ['<?xml version="1.0" encoding="UTF-8"?>', `<message:GenericData ${NS_DATA}>`];
  head.push(
    ...header(`MIGR_${m.year}`, m.prepared, [
      `    <message:Structure structureID="${df}" dimensionAtObservation="AllDimensions">`,
      `      <common:StructureUsage><Ref agencyID="${AGENCY.id}" id="${df}" version="${VERSION}" class="Dataflow" package="datastructure"/></common:StructureUsage>`,
      '    </message:Structure>',
      '    <message:DataSetAction>Information</message:DataSetAction>',
    ]),
  );
  head.push(`  <message:DataSet structureRef="${df}" action="Information">`);
  head.push('    <generic:Attributes>');
  for (const a of DATASET_ATTRIBUTES) head.push(`      <generic:Value id="${a}" value="${esc(m.datasetAttributes[a])}"/>`);
  head.push('    </generic:Attributes>');
  const out = new ByteWriter(m.observations.length * 480);
  out.text(head.join('\n'));
  // A year has ~35 000 observations (16 MB) but few distinct dimension values: each value's escaped element
  // is encoded once, and each observation copies those bytes.
  const frag = DIMENSIONS.map((d) => new KeyedCache((v) => ByteWriter.encode(`<generic:Value id="${d}" value="${esc(v)}"/>`)));
  const open = ByteWriter.encode('\n    <generic:Obs><generic:ObsKey>');
  const value = ByteWriter.encode('</generic:ObsKey><generic:ObsValue value="');
  const status = new KeyedCache((st) => ByteWriter.encode(`"/><generic:Attributes><generic:Value id="OBS_STATUS" value="${st}"/></generic:Attributes></generic:Obs>`));
  writeObservations(out, m.observations, frag, open, value, status);
  out.text('\n  </message:DataSet>\n</message:GenericData>\n');
  return out.result();
}
