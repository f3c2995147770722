/**
 * SDMX publication: schema validity (official XSDs and SDMX-JSON 2.0 schemas), refusal of broken messages,
 * identical observations in the three data formats, DSD order of the SDMX-CSV columns, codelist coverage,
 * the two territorial series, the estimated flag, determinism.
 * Fixtures: test/fixtures-sdmx/ (the worked example's territory and move_type tables of 2024-03), extended
 * here with zeros to every territory of the year and with a small deterministic age table.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse } from 'csv-parse/sync';
import { AGE_GROUPS } from '../pipeline/contracts';
import { readCsvText, type Row } from '../pipeline/csv';
import { CSV_HEADER, type SdmxInput, SdmxInputError, buildSdmx, validateSdmx } from '../stages/sdmx';
import { DIMENSIONS } from '../stages/sdmx/model';
import { type Classification, type Series, loadClassification } from '../stages/territory';

jest.setTimeout(40_000);

const FIX = path.join(__dirname, 'fixtures-sdmx');
const PREPARED = '2025-07-10T12:00:00+02:00';
let cls: Classification;
beforeAll(() => {
  cls = loadClassification();
});

/** All territories of a year at every level, sex T/M/F, zeros, overlaid with the given rows. */
function territoryTable(year: number, series: Series, given: Row[]): Row[] {
  const units = cls.unitsForYear(year);
  const areas = [...new Set(units.map((m) => m.area))].sort();
  const regions = [...new Set(units.map((m) => m.region))].sort();
  const byKey = new Map(given.map((r) => [`${r.level}|${r.code}|${r.sex}`, r]));
  const rows: Row[] = [];
  const add = (level: string, code: string): void => {
    for (const sex of ['T', 'M', 'F']) {
      rows.push(byKey.get(`${level}|${code}|${sex}`) ?? { series, level, code, sex, immigrants: '0', emigrants: '0', net: '0' });
    }
  };
  add('republic', 'RS');
  regions.forEach((c) => add('region', c));
  areas.forEach((c) => add('area', c));
  units.forEach((m) => add('municipality', m.code));
  return rows;
}

/** Age table: each territory cell's immigrants in Y20T24, its emigrants in Y30T34, zeros elsewhere. */
function ageTable(territory: Row[]): Row[] {
  const rows: Row[] = [];
  for (const r of territory) {
    for (const g of AGE_GROUPS) {
      const imm = g === 'Y20T24' ? Number(r.immigrants) : 0;
      const emi = g === 'Y30T34' ? Number(r.emigrants) : 0;
      rows.push({ series: r.series!, level: r.level!, code: r.code!, sex: r.sex!, age_group: g, immigrants: String(imm), emigrants: String(emi), net: String(imm - emi) });
    }
  }
  return rows;
}

function input2024(over: Partial<SdmxInput> = {}): SdmxInput {
  const territory = territoryTable(2024, '1998-', readCsvText(fs.readFileSync(path.join(FIX, 'territory-2024-03.csv'), 'utf8')));
  return {
    year: 2024,
    series: '1998-',
    tables: { territory, age: ageTable(territory), move_type: readCsvText(fs.readFileSync(path.join(FIX, 'move_type-2024-03.csv'), 'utf8')) },
    imputed: {
      // RS T: 1 of 11 immigrants imputed (9.1 %); RS12 T: 1 of 2 emigrants imputed (50 %)
      territory_imputed: [
        { series: '1998-', level: 'republic', code: 'RS', sex: 'T', immigrants_imputed: '1', emigrants_imputed: '0' },
        { series: '1998-', level: 'region', code: 'RS12', sex: 'T', immigrants_imputed: '0', emigrants_imputed: '1' },
      ],
      age_imputed: [{ series: '1998-', level: 'republic', code: 'RS', sex: 'T', age_group: 'Y20T24', immigrants_imputed: '1', emigrants_imputed: '0' }],
    },
    classification: cls,
    estimatedThreshold: 0.05,
    prepared: PREPARED,
    ...over,
  };
}

/** A 1991-1997 year with arrivals in a K&M municipality (Priština 90263). */
function input1995(): SdmxInput {
  const u = cls.unitsForYear(1995);
  const pr = u.find((m) => m.code === '90263')!;
  const given: Row[] = [];
  const put = (level: string, code: string, imm: number, emi: number): void => {
    for (const [sex, i, e] of [['T', imm, emi], ['M', imm, 0], ['F', 0, emi]] as const) {
      given.push({ series: '1991-1997', level, code, sex, immigrants: String(i), emigrants: String(e), net: String(i - e) });
    }
  };
  put('republic', 'RS', 3, 3);
  put('region', pr.region, 3, 0);
  put('area', pr.area, 3, 0);
  put('municipality', '90263', 3, 0);
  put('region', 'RS11', 0, 3);
  put('area', 'RS110', 0, 3);
  put('municipality', '70106', 0, 3);
  const territory = territoryTable(1995, '1991-1997', given);
  return {
    year: 1995, series: '1991-1997',
    tables: {
      territory, age: [],
      move_type: [{ series: '1991-1997', level: 'republic', code: 'RS', move_type: 'between_areas', migrants: '3' }, { series: '1991-1997', level: 'republic', code: 'RS', move_type: 'total', migrants: '3' }],
    },
    imputed: { territory_imputed: [], age_imputed: [] },
    classification: cls, estimatedThreshold: 0.05, prepared: '1996-07-10T12:00:00Z',
  };
}

type ObsMap = Map<string, string>; // key (dimensions in DSD order, dot-separated) → "value|status"

function obsFromXml(xml: string): ObsMap {
  const out: ObsMap = new Map();
  const re = /<generic:Obs>(.*?)<\/generic:Obs>/gs;
  for (const m of xml.matchAll(re)) {
    const body = m[1]!;
    const keyPart = /<generic:ObsKey>(.*?)<\/generic:ObsKey>/s.exec(body)![1]!;
    const dims = new Map([...keyPart.matchAll(/<generic:Value id="([^"]+)" value="([^"]*)"\/>/g)].map((x) => [x[1]!, x[2]!]));
    const key = DIMENSIONS.map((d) => dims.get(d)!).join('.');
    const value = /<generic:ObsValue value="([^"]*)"\/>/.exec(body)![1]!;
    const status = /<generic:Value id="OBS_STATUS" value="([^"]*)"\/>/.exec(body)![1]!;
    expect(out.has(key)).toBe(false);
    out.set(key, `${value}|${status}`);
  }
  return out;
}

interface JsonComp { id: string; keyPosition?: number; values: { id?: string; value?: string }[] }
function obsFromJson(text: string): ObsMap {
  const msg = JSON.parse(text);
  const st = msg.data.structures[0];
  const dsDims: JsonComp[] = st.dimensions.dataSet;
  const obsDims: JsonComp[] = st.dimensions.observation;
  const status: JsonComp = st.attributes.observation.find((a: JsonComp) => a.id === 'OBS_STATUS');
  const statusPos = st.attributes.observation.indexOf(status);
  const out: ObsMap = new Map();
  for (const [k, arr] of Object.entries(msg.data.dataSets[0].observations as Record<string, unknown[]>)) {
    const idx = k.split(':').map(Number);
    const key: string[] = [];
    for (const d of dsDims) key[d.keyPosition!] = d.values[0]!.id!;
    obsDims.forEach((d, i) => (key[d.keyPosition!] = d.values[idx[i]!]!.id!));
    out.set(key.join('.'), `${arr[0]}|${status.values[arr[1 + statusPos] as number]!.id}`);
  }
  return out;
}

function obsFromCsv(text: string): ObsMap {
  const rows = parse(text, { columns: true }) as Row[];
  const out: ObsMap = new Map();
  for (const r of rows) {
    const key = DIMENSIONS.map((d) => r[d]).join('.');
    expect(out.has(key)).toBe(false);
    out.set(key, `${r.OBS_VALUE}|${r.OBS_STATUS}`);
  }
  return out;
}

/** Code ids of a codelist in structure.xml. */
function xmlCodes(xml: string, codelist: string): string[] {
  const block = new RegExp(`<structure:Codelist id="${codelist}"[^>]*>(.*?)</structure:Codelist>`, 's').exec(xml);
  if (!block) throw new Error(`no codelist ${codelist}`);
  return [...block[1]!.matchAll(/<structure:Code id="([^"]+)"/g)].map((m) => m[1]!);
}

describe('SDMX publication', () => {
  let files: Map<string, string>;
  beforeAll(() => {
    files = buildSdmx(input2024());
  });

  test('writes the five files', () => {
    expect([...files.keys()].sort()).toEqual(['data.csv', 'data.json', 'data.xml', 'structure.json', 'structure.xml']);
  });

  test('SDMX-ML (XSD) and SDMX-JSON (ajv) validate against the official schemas; SDMX-CSV layout holds', async () => {
    const t0 = Date.now();
    const r = await validateSdmx(files);
    expect(r.errors).toEqual([]);
    expect(r.ok).toBe(true);
    // also the 1991-1997 series
    const r95 = await validateSdmx(buildSdmx(input1995()));
    expect(r95.errors).toEqual([]);
    expect(Date.now() - t0).toBeLessThan(30_000);
  });

  test('broken messages are refused (validation can fail)', async () => {
    const broken = new Map(files);
    // structure.xml with a stray header element
    broken.set('structure.xml', files.get('structure.xml')!.replace('<message:Test>', '<message:Bogus/><message:Test>'));
    // data.xml with an observation lacking its value element order (attributes before key)
    broken.set('data.xml', files.get('data.xml')!.replace(/<generic:Obs><generic:ObsKey>(.*?)<\/generic:ObsKey>/, '<generic:Obs><generic:ObsValue value="1"/><generic:ObsKey>$1</generic:ObsKey>'));
    // data.json: `prepared` without a time zone
    broken.set('data.json', files.get('data.json')!.replace(`"prepared":"${PREPARED}"`, '"prepared":"2025-07-10T12:00:00"'));
    // structure.json: a codelist without codes' ids
    const sj = JSON.parse(files.get('structure.json')!);
    delete sj.data.codelists[0].codes[0].id;
    broken.set('structure.json', JSON.stringify(sj));
    // data.csv: attributes before the dimensions
    const csv = files.get('data.csv')!.split('\r\n');
    csv[0] = csv[0]!.replace('FREQ,REF_AREA', 'REF_AREA,FREQ');
    broken.set('data.csv', csv.join('\r\n'));
    broken.set('extra.txt', 'x');
    const r = await validateSdmx(broken);
    expect(r.ok).toBe(false);
    for (const f of ['structure.xml', 'data.xml', 'data.json', 'structure.json', 'data.csv', 'extra.txt']) {
      expect(r.errors.some((e) => e.startsWith(f))).toBe(true);
    }
    expect(r.errors.join('\n')).toMatch(/Bogus/);
    expect(r.errors.join('\n')).toMatch(/prepared/);
    const missing = await validateSdmx(new Map([...files].filter(([k]) => k !== 'data.xml')));
    expect(missing.errors).toContain('data.xml: missing');
  });

  test('the three data formats carry exactly the same observations', () => {
    const x = obsFromXml(files.get('data.xml')!);
    const j = obsFromJson(files.get('data.json')!);
    const c = obsFromCsv(files.get('data.csv')!);
    expect(x.size).toBeGreaterThan(1000);
    expect([...j.entries()].sort()).toEqual([...x.entries()].sort());
    expect([...c.entries()].sort()).toEqual([...x.entries()].sort());
    // spot checks against the input tables
    expect(x.get('A.RS.IMM.T._T._T.2024')).toBe('11|E');
    expect(x.get('A.RS11.NET.T._T._T.2024')).toBe('-2|A');
    expect(x.get('A.RS.IMM.T._T.BETWEEN_AREAS.2024')).toBe('6|A');
    expect(x.get('A.RS.IMM.T._T.WITHIN_MUN.2024')).toBe('1|A');
    expect(x.get('A.RS.EMI.M.Y30T34._T.2024')).toBe('6|A');
    // move_type `total` is the territory cell: no duplicate key with MOVE_TYPE=_T
    expect([...x.keys()].filter((k) => k === 'A.RS.IMM.T._T._T.2024')).toHaveLength(1);
    // observation count: territory (units×3 sex×3 flows) + age (×18) + move types (3 non-total rows)
    const territories = new Set([...x.keys()].map((k) => k.split('.')[1])).size;
    expect(x.size).toBe(territories * 3 * 3 * (1 + AGE_GROUPS.length) + 3);
  });

  test('SDMX-CSV: header is STRUCTURE,STRUCTURE_ID,ACTION, dimensions in DSD order, OBS_VALUE, attributes; rows dataflow,SORS:DF_IMIGR_1998(1.0),I', () => {
    const lines = files.get('data.csv')!.split('\r\n');
    expect(lines[0]).toBe('STRUCTURE,STRUCTURE_ID,ACTION,FREQ,REF_AREA,MIGR_FLOW,SEX,AGE,MOVE_TYPE,TIME_PERIOD,OBS_VALUE,OBS_STATUS,UNIT_MEASURE,UNIT_MULT,SERIES_NOTE');
    expect(lines[0]).toBe(CSV_HEADER.join(','));
    // DSD order from the structure message itself
    const dsd = JSON.parse(files.get('structure.json')!).data.dataStructures.find((d: { id: string }) => d.id === 'DSD_IMIGR_1998');
    const dl = dsd.dataStructureComponents.dimensionList;
    const dsdOrder = [...dl.dimensions.sort((a: { position: number }, b: { position: number }) => a.position - b.position).map((d: { id: string }) => d.id), dl.timeDimension.id];
    expect(lines[0]!.split(',').slice(3, 3 + dsdOrder.length)).toEqual(dsdOrder);
    expect(lines[1]!.startsWith('dataflow,SORS:DF_IMIGR_1998(1.0),I,A,RS,')).toBe(true);
    expect(lines[1]).toContain('"Series 1998-:');
  });

  test('every REF_AREA used is in the codelist of the dataflow', () => {
    const sx = files.get('structure.xml')!;
    const codes = new Set(xmlCodes(sx, 'CL_AREA_1998'));
    const used = new Set([...obsFromCsv(files.get('data.csv')!).keys()].map((k) => k.split('.')[1]!));
    for (const u of used) expect(codes.has(u)).toBe(true);
    // the DSD of DF_IMIGR_1998 enumerates REF_AREA with CL_AREA_1998
    expect(sx).toMatch(/<structure:Dataflow id="DF_IMIGR_1998"[\s\S]*?<Ref agencyID="SORS" id="DSD_IMIGR_1998" version="1.0" class="DataStructure" package="datastructure"\/>/);
    expect(sx).toMatch(/DSD_IMIGR_1998\(1.0\)\.REF_AREA"[^>]*>[\s\S]*?<Ref agencyID="SORS" id="CL_AREA_1998" version="1.0" class="Codelist" package="codelist"\/>/);
    // every reference says what it refers to (class, package): clients that read without the XSD look them up
    for (const f of ['structure.xml', 'data.xml']) expect([f, files.get(f)!.match(/<Ref (?:(?![^>]*\bclass=)|(?![^>]*\bpackage=))[^>]*>/g)]).toEqual([f, null]);
    // a code outside the codelist is refused, not published
    const bad = input2024();
    bad.tables.territory = [...bad.tables.territory, { series: '1998-', level: 'municipality', code: '90263', sex: 'T', immigrants: '1', emigrants: '0', net: '1' }];
    expect(() => buildSdmx(bad)).toThrow(SdmxInputError);
    expect(() => buildSdmx(bad)).toThrow(/90263.*CL_AREA_1998/);
  });

  test('both dataflows are described; the 1998- one has no K&M code, the 1991-1997 one has', () => {
    const sx = files.get('structure.xml')!;
    expect(sx).toContain('<structure:Dataflow id="DF_IMIGR_1991_1997"');
    expect(sx).toContain('<structure:Dataflow id="DF_IMIGR_1998"');
    const km = new Set([...cls.municipalities.values()].filter((m) => m.region === 'RS-KM').map((m) => m.code));
    for (const a of cls.areas.values()) if (a.region === 'RS-KM') km.add(a.code);
    km.add('RS-KM');
    const c98 = xmlCodes(sx, 'CL_AREA_1998');
    const c91 = xmlCodes(sx, 'CL_AREA_1991_1997');
    expect(c98.filter((c) => km.has(c))).toEqual([]);
    expect(c91).toEqual(expect.arrayContaining([...km]));
    // same through the JSON structure: dataflow → DSD → REF_AREA enumeration → codelist
    const sj = JSON.parse(files.get('structure.json')!).data;
    for (const [df, hasKm] of [['DF_IMIGR_1998', false], ['DF_IMIGR_1991_1997', true]] as const) {
      const flow = sj.dataflows.find((d: { id: string }) => d.id === df);
      const dsdId = /DataStructure=SORS:(\w+)\(/.exec(flow.structure)![1];
      const dsd = sj.dataStructures.find((d: { id: string }) => d.id === dsdId);
      const ra = dsd.dataStructureComponents.dimensionList.dimensions.find((d: { id: string }) => d.id === 'REF_AREA');
      const clId = /Codelist=SORS:(\w+)\(/.exec(ra.localRepresentation.enumeration)![1];
      const cl = sj.codelists.find((c: { id: string }) => c.id === clId);
      const ids: string[] = cl.codes.map((c: { id: string }) => c.id);
      expect(ids.includes('90263')).toBe(hasKm);
      expect(ids.includes('RS-KM')).toBe(hasKm);
      expect(ids).toContain('RS');
    }
    // names in Serbian Latin and English, with the hierarchy
    expect(sx).toMatch(/<structure:Code id="70106"[^>]*>\s*<common:Name xml:lang="en">Voždovac<\/common:Name>\s*<common:Name xml:lang="sr-Latn">Voždovac<\/common:Name>\s*<structure:Parent><Ref id="RS110" class="Code" package="codelist"\/><\/structure:Parent>/);
    // 1991-1997 data use K&M codes and validate (checked above); the note travels with every dataset
    const f95 = buildSdmx(input1995());
    const o95 = obsFromXml(f95.get('data.xml')!);
    expect(o95.get('A.90263.IMM.T._T._T.1995')).toBe('3|A');
    expect(f95.get('data.xml')).toContain('<generic:Value id="SERIES_NOTE" value="Series 1991-1997:');
    expect(f95.get('data.csv')!.split('\r\n')[1]).toMatch(/^dataflow,SORS:DF_IMIGR_1991_1997\(1\.0\),I,/);
    // the series are never mixed
    expect(() => buildSdmx({ ...input1995(), series: '1998-' })).toThrow(/series/);
    const mixed = input2024();
    mixed.tables.territory = [{ ...mixed.tables.territory[0]!, series: '1991-1997' }, ...mixed.tables.territory.slice(1)];
    expect(() => buildSdmx(mixed)).toThrow(/never mixed/);
  });

  test('estimated (E) where the imputed share exceeds the threshold; net is E if either component is; provisional → P', () => {
    const x = obsFromXml(files.get('data.xml')!);
    expect(x.get('A.RS.IMM.T._T._T.2024')).toBe('11|E'); // 1/11 > 5 %
    expect(x.get('A.RS.NET.T._T._T.2024')).toBe('1|E');
    expect(x.get('A.RS.EMI.T._T._T.2024')).toBe('10|A');
    expect(x.get('A.RS12.EMI.T._T._T.2024')).toBe('2|E'); // 1/2
    expect(x.get('A.RS12.NET.T._T._T.2024')).toBe('2|E');
    expect(x.get('A.RS12.IMM.T._T._T.2024')).toBe('4|A');
    expect(x.get('A.RS.IMM.T.Y20T24._T.2024')).toBe('11|E'); // age_imputed
    expect(x.get('A.RS.IMM.M.Y20T24._T.2024')).toBe('6|A');
    const statuses = [...x.values()].map((v) => v.split('|')[1]);
    expect(statuses.filter((s) => s === 'E')).toHaveLength(6);
    // threshold 10 %: 1/11 is no longer estimated, 1/2 still is
    const x10 = obsFromXml(buildSdmx(input2024({ estimatedThreshold: 0.1 })).get('data.xml')!);
    expect(x10.get('A.RS.IMM.T._T._T.2024')).toBe('11|A');
    expect(x10.get('A.RS12.EMI.T._T._T.2024')).toBe('2|E');
    // the same flags in JSON and CSV
    const j = obsFromJson(files.get('data.json')!);
    expect(j.get('A.RS12.NET.T._T._T.2024')).toBe('2|E');
    const p = buildSdmx(input2024({ provisional: true }));
    expect(new Set([...obsFromCsv(p.get('data.csv')!).values()].map((v) => v.split('|')[1]))).toEqual(new Set(['P']));
  });

  test('a move type is estimated by the imputed origins that decided it; without move_type_imputed none is (review of 26 Nov)', () => {
    const mt = (rows: Row[]): ObsMap => obsFromXml(buildSdmx(input2024({ imputed: { ...input2024().imputed, move_type_imputed: rows } })).get('data.xml')!);
    const x = mt([
      { series: '1998-', level: 'republic', code: 'RS', move_type: 'between_areas', migrants_imputed: '1' }, // 1 of 6
      { series: '1998-', level: 'republic', code: 'RS', move_type: 'within_municipality', migrants_imputed: '0' },
    ]);
    expect(x.get('A.RS.IMM.T._T.BETWEEN_AREAS.2024')).toBe('6|E');
    expect(x.get('A.RS.IMM.T._T.WITHIN_MUN.2024')).toBe('1|A');
    expect(x.get('A.RS.IMM.T._T.BETWEEN_MUN_SAME_AREA.2024')).toBe('4|A');
    expect(obsFromXml(files.get('data.xml')!).get('A.RS.IMM.T._T.BETWEEN_AREAS.2024')).toBe('6|A');
    expect(() => mt([{ series: '1998-', level: 'republic', code: 'RS', move_type: 'sideways', migrants_imputed: '1' }])).toThrow('move_type_imputed row 1: unknown move_type "sideways"');
  });

  test('deterministic: same input → same bytes, whatever the order of the input rows', () => {
    const again = buildSdmx(input2024());
    for (const [k, v] of files) expect(again.get(k)).toBe(v);
    const shuffled = input2024();
    const rev = <T>(a: T[]): T[] => [...a].reverse();
    shuffled.tables = { territory: rev(shuffled.tables.territory), age: rev(shuffled.tables.age), move_type: rev(shuffled.tables.move_type) };
    shuffled.imputed = { territory_imputed: rev(shuffled.imputed.territory_imputed), age_imputed: rev(shuffled.imputed.age_imputed) };
    const s = buildSdmx(shuffled);
    for (const [k, v] of files) expect(s.get(k)).toBe(v);
    // the structure messages do not depend on the year's data
    const f95 = buildSdmx(input1995());
    expect(f95.get('structure.xml')!.replace('1996-07-10T12:00:00Z', PREPARED)).toBe(files.get('structure.xml'));
  });

  test('inconsistent input is refused with a clear reason', () => {
    const a = input2024();
    a.tables.move_type = a.tables.move_type.map((r) => (r.move_type === 'total' ? { ...r, migrants: '12' } : r));
    expect(() => buildSdmx(a)).toThrow(/contradicts/);
    expect(() => buildSdmx(input2024({ prepared: '2025-07-10T12:00:00' }))).toThrow(/time zone/);
    const b = input2024();
    b.tables.territory = b.tables.territory.map((r, i) => (i === 0 ? { ...r, net: '5' } : r));
    expect(() => buildSdmx(b)).toThrow(/net/);
  });
});
