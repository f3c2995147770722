/**
 * The territorial classification: settlements → municipality/city → area → region → Republic, with
 * validity dates and the changes since 1991 (reference/territory/, see SOURCES.md there).
 * Loaded once, validated with ajv (including the mod-11 check digit of every municipality code).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readCsvText, type Row } from '../pipeline/csv';
import { DEFAULT_SETTLEMENTS, TERRITORY } from '../pipeline/paths';
import { loadJson, validateOrThrow } from '../pipeline/schemas';

export type Series = '1991-1997' | '1998-';
export const KM_REGION = 'RS-KM';
export const REPUBLIC = 'RS';

export interface Municipality {
  code: string;
  name: string;
  nameEn: string;
  kind: string;
  area: string;
  region: string;
  inScope1998: boolean;
  validFrom: string; // ISO date or '' (open)
  validTo: string; // ISO date (exclusive) or '' (open)
}
export interface Area { code: string; name: string; nameEn: string; region: string; inScope1998: boolean }
export interface Region { code: string; name: string; nameEn: string; inScope1998: boolean }
interface SettlementSpan { muni: string; from: string; to: string; name: string }

/** Mod-11 check digit of a SORS municipality code: weights 5,4,3,2; (11 - sum mod 11) mod 11; 10 → 0. */
export function mod11Ok(code: string): boolean {
  // five ASCII digits (what /^[0-9]{5}$/ tests), without a regex or an array per call: rules call this for every form
  if (code.length !== 5) return false;
  for (let i = 0; i < 5; i++) { const c = code.charCodeAt(i); if (c < 48 || c > 57) return false; }
  const s = (code.charCodeAt(0) - 48) * 5 + (code.charCodeAt(1) - 48) * 4 + (code.charCodeAt(2) - 48) * 3 + (code.charCodeAt(3) - 48) * 2;
  const k = ((11 - (s % 11)) % 11) % 10;
  return k === code.charCodeAt(4) - 48;
}

export function seriesOf(year: number): Series {
  return year <= 1997 ? '1991-1997' : '1998-';
}

export const SERIES_NOTE: Record<Series, string> = {
  '1991-1997':
    'Series 1991-1997: the Republic of Serbia including AP Kosovo i Metohija. From 1998 SORS has no data for Kosovo i Metohija, so the series 1998- excludes it; the two series are not comparable.',
  '1998-':
    'Series 1998-: the Republic of Serbia excluding AP Kosovo i Metohija (SORS has had no data for it since 1998); moves into Kosovo i Metohija are out of scope; arrivals from it count as immigrants of their destination and as emigrants of no territory, so the Republic\'s immigrants exceed its emigrants by their number (the origin table shows them as origin "KM", not covered). Not comparable with the series 1991-1997.',
};

/** Year-only dates ('2004') are read as 1 January of that year. */
function isoDate(v: string): string {
  if (!v) return '';
  return /^[0-9]{4}$/.test(v) ? `${v}-01-01` : v;
}

function validOn(from: string, to: string, date: string): boolean {
  return (from === '' || from <= date) && (to === '' || date < to);
}

export class Classification {
  readonly municipalities = new Map<string, Municipality>();
  readonly areas = new Map<string, Area>();
  readonly regions = new Map<string, Region>();
  private readonly settlements = new Map<string, SettlementSpan[]>();
  /** old code → successor codes (merge: one; split: several, the settlement decides). */
  private readonly changes = new Map<string, string[]>();
  /** the municipality codes a merge or split touched, by the year it took effect */
  private readonly changedByYear = new Map<number, Set<string>>();
  readonly settlementsFile: string;
  private readonly yearUnits = new Map<string, Municipality[]>();

  constructor(settlementsFile: string = DEFAULT_SETTLEMENTS) {
    this.settlementsFile = settlementsFile;
    const read = (f: string): Row[] => readCsvText(fs.readFileSync(path.join(TERRITORY, f), 'utf8'));
    for (const [i, r] of read('regions.csv').entries()) {
      validateOrThrow('territory-region', r, `regions.csv line ${i + 2}`);
      this.regions.set(r.region_code!, { code: r.region_code!, name: r.name_sr_latn!, nameEn: r.name_en!, inScope1998: r.in_scope_from_1998 === 'true' });
    }
    for (const [i, r] of read('areas.csv').entries()) {
      validateOrThrow('territory-area', r, `areas.csv line ${i + 2}`);
      if (!this.regions.has(r.region_code!)) throw new Error(`areas.csv line ${i + 2}: unknown region ${r.region_code}`);
      this.areas.set(r.area_code!, { code: r.area_code!, name: r.name_sr_latn!, nameEn: r.name_en!, region: r.region_code!, inScope1998: r.in_scope_from_1998 === 'true' });
    }
    const amend = loadJson<{ set: { sors_code: string; column: string; value: string }[]; add: { row: Row }[] }>(
      path.join(TERRITORY, 'amendments.json'),
      'territory-amendments',
    );
    const rows = read('municipalities.csv').map((r, i) => ({ r, where: `municipalities.csv line ${i + 2}` }));
    for (const a of amend.add) rows.push({ r: a.row, where: `amendments.json add ${a.row.sors_code}` });
    for (const s of amend.set) {
      const hit = rows.find((x) => x.r.sors_code === s.sors_code);
      if (!hit) throw new Error(`amendments.json: unknown municipality ${s.sors_code}`);
      hit.r[s.column] = s.value;
    }
    for (const { r, where } of rows) {
      validateOrThrow('territory-municipality', r, where);
      const code = r.sors_code!;
      if (!mod11Ok(code)) throw new Error(`${where}: municipality code ${code} fails the mod-11 check digit`);
      const area = this.areas.get(r.area_code!);
      if (!area || area.region !== r.region_code) throw new Error(`${where}: area ${r.area_code} / region ${r.region_code} inconsistent`);
      if (this.municipalities.has(code)) throw new Error(`${where}: duplicate municipality code ${code}`);
      this.municipalities.set(code, {
        code, name: r.name_sr_latn!, nameEn: r.name_en || r.name_sr_latn!, kind: r.kind!, area: r.area_code!, region: r.region_code!,
        inScope1998: r.in_scope_from_1998 === 'true', validFrom: isoDate(r.valid_from!), validTo: isoDate(r.valid_to!),
      });
    }
    const touched = (year: number, codes: string[]): void => { const s = this.changedByYear.get(year) ?? new Set<string>(); for (const c of codes) if (c) s.add(c); this.changedByYear.set(year, s); };
    for (const r of read('changes.csv')) {
      if (r.kind === 'merge' || r.kind === 'split') touched(Number(r.date!.slice(0, 4)), `${r.from_codes ?? ''};${r.to_codes ?? ''}`.split(';').map((s) => s.trim()));
      if ((r.kind === 'merge' || r.kind === 'split') && r.from_codes && r.to_codes) {
        const to = r.to_codes.split(';').map((s) => s.trim());
        for (const f of r.from_codes.split(';').map((s) => s.trim())) if (!to.includes(f)) this.changes.set(f, to);
      }
    }
    // Niš 70858 (project amendment) was split into four city municipalities in 2002.
    this.changes.set('70858', ['71307', '71315', '71323', '71331']);
    touched(2002, ['70858']);
    this.loadSettlements(settlementsFile);
  }

  /** Municipality codes whose territory a merge or split changed during `year` (not comparable with the year before). */
  changedIn(year: number): Set<string> {
    return this.changedByYear.get(year) ?? new Set<string>();
  }

  private loadSettlements(file: string): void {
    if (!fs.existsSync(file)) throw new Error(`settlements list not found: ${file}`);
    const text = fs.readFileSync(file, 'utf8');
    const name = path.basename(file);
    // the header first: another file given by mistake is named as such, not as a bad line 2
    const head = text.replace(/^\ufeff/, '').split(/\r?\n/, 1)[0]!.split(',').map((h) => h.trim());
    const want = ['settlement_code', 'municipality_code', 'name', 'valid_from', 'valid_to'];
    if (want.some((h) => !head.includes(h))) throw new Error(`${name} line 1: a settlements list has the columns ${want.join(',')}, not "${head.join(',').slice(0, 120)}"`);
    const rows = readCsvText(text);
    rows.forEach((r, i) => {
      validateOrThrow('settlement', r, `${name} line ${i + 2}`);
      if (!this.municipalities.has(r.municipality_code!)) throw new Error(`${name} line ${i + 2}: unknown municipality ${r.municipality_code}`);
      let spans = this.settlements.get(r.settlement_code!);
      if (!spans) this.settlements.set(r.settlement_code!, (spans = []));
      spans.push({ muni: r.municipality_code!, from: r.valid_from!, to: r.valid_to!, name: r.name! });
    });
  }

  isMunicipality(code: string): boolean {
    return this.municipalities.has(code);
  }

  /** A municipality code that exists and is valid on `date`. */
  validOn(code: string, date: string): boolean {
    const m = this.municipalities.get(code);
    return !!m && validOn(m.validFrom, m.validTo, date);
  }

  hasSettlement(code: string): boolean {
    return this.settlements.has(code);
  }

  /** The municipality a settlement belongs to on `date` (undefined if unknown or not valid then). */
  settlementMunicipality(code: string, date: string): string | undefined {
    const spans = this.settlements.get(code);
    if (!spans) return undefined;
    for (const s of spans) if (validOn(s.from, s.to, date)) return s.muni;
    return undefined;
  }

  /** Settlements of a municipality valid on a date (used by the generator). */
  settlementsOf(muni: string, date: string): string[] {
    const out: string[] = [];
    for (const [code, spans] of this.settlements) if (spans.some((s) => s.muni === muni && validOn(s.from, s.to, date))) out.push(code);
    return out.sort();
  }

  /**
   * Map a municipality code to the unit valid on `date` by following the changes list until no further
   * change; cycles are refused; a split without a continuing unit cannot be mapped from the code alone
   * (returns undefined: the settlement decides).
   */
  successorOn(code: string, date: string): string | undefined {
    if (this.validOn(code, date)) return code; // the common case, without a Set
    const seen = new Set<string>();
    let cur = code;
    for (;;) {
      if (this.validOn(cur, date)) return cur;
      if (seen.has(cur)) throw new Error(`territorial changes form a cycle at ${cur}`);
      seen.add(cur);
      const next = this.changes.get(cur);
      if (next?.length !== 1) return undefined;
      cur = next[0]!;
    }
  }

  /** The municipalities of the classification of 31 December of `year` that belong to the year's series. */
  unitsForYear(year: number): Municipality[] {
    const key = String(year);
    let u = this.yearUnits.get(key);
    if (!u) {
      const d = `${year}-12-31`;
      const series = seriesOf(year);
      u = [...this.municipalities.values()]
        .filter((m) => validOn(m.validFrom, m.validTo, d) && (series === '1991-1997' || m.inScope1998))
        .sort((a, b) => (a.code < b.code ? -1 : 1));
      this.yearUnits.set(key, u);
    }
    return u;
  }

  isKM(code: string): boolean {
    return this.municipalities.get(code)?.region === KM_REGION;
  }

  areaOf(code: string): string {
    return this.municipalities.get(code)!.area;
  }

  regionOf(code: string): string {
    return this.municipalities.get(code)!.region;
  }
}

const cache = new Map<string, Classification>();
/** Cached classification per settlements file. */
export function loadClassification(settlementsFile: string = DEFAULT_SETTLEMENTS): Classification {
  const key = path.resolve(settlementsFile);
  let c = cache.get(key);
  if (!c) cache.set(key, (c = new Classification(key)));
  return c;
}
