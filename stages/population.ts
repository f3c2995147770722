/**
 * Population figures for the rates per 1 000 population (domain.md §7), and the rates table.
 *
 * File: CSV with the header `code,year,population` (any column order), one row per municipality/city of the
 * classification of 31 December of the year (SORS codes, as tabulated: city municipalities separately) and
 * year; `population` = persons on 30 June of the year (the mid-year estimate SORS divides its vital rates
 * by). A file may hold several years; only the rows of the year asked for are used, and that year must give
 * every municipality of its classification and series (series 1998-: without K&M), each exactly once.
 * Areas, regions and the Republic are the sums of their municipalities.
 *
 * Rate = 1000 × count / population, rounded to one decimal, half away from zero, in exact integer
 * arithmetic (no binary floating-point surprises at .x5); net rate = the rounded 1000 × net / population
 * (not the difference of two rounded rates).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readCsvText, type Row } from '../pipeline/csv';
import { validateOrThrow } from '../pipeline/schemas';
import type { Table } from './tabulate';
import { unitsOf } from './tabulate';
import { type Classification, seriesOf } from './territory';

export const POPULATION_HEADER = ['code', 'year', 'population'] as const;

export class PopulationError extends Error {}

/** The population of every municipality of the year's classification: code → persons. */
export function loadPopulation(file: string, C: Classification, year: number): Map<string, number> {
  const name = path.basename(file);
  if (!fs.existsSync(file)) throw new PopulationError(`population file not found: ${file}`);
  const text = fs.readFileSync(file, 'utf8');
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const head = (body.split(/\r?\n/, 1)[0] ?? '').split(',').map((h) => h.trim());
  if (head.length !== POPULATION_HEADER.length || POPULATION_HEADER.some((h) => !head.includes(h)))
    throw new PopulationError(`${name} line 1: header must be ${POPULATION_HEADER.join(',')}, not "${head.join(',')}"`);
  let rows: Row[];
  try {
    rows = readCsvText(body);
  } catch (e) {
    throw new PopulationError(`${name}: ${(e as Error).message}`);
  }
  const units = new Map(C.unitsForYear(year).map((m) => [m.code, m]));
  const pop = new Map<string, number>();
  const where = new Map<string, number>();
  rows.forEach((r, i) => {
    const line = i + 2;
    validateOrThrow('population', r, `${name} line ${line}`);
    if (Number(r.year) !== year) return;
    const code = r.code!;
    if (!units.has(code)) {
      const why = C.isMunicipality(code)
        ? C.isKM(code) && seriesOf(year) === '1998-' ? 'a K&M municipality, not covered by the series 1998-' : `not a unit of the classification of 31 December ${year}`
        : 'not a municipality code of the classification';
      throw new PopulationError(`${name} line ${line}: field code: ${code} is ${why}`);
    }
    if (pop.has(code)) throw new PopulationError(`${name} line ${line}: field code: ${code} is given twice for ${year} (first on line ${where.get(code)})`);
    pop.set(code, Number(r.population));
    where.set(code, line);
  });
  const missing = [...units.keys()].filter((c) => !pop.has(c));
  if (missing.length)
    throw new PopulationError(`${name}: no population for ${year} of ${missing.length} of the ${units.size} municipalities of its classification (31 December ${year}, series ${seriesOf(year)}): ${missing.slice(0, 10).join(', ')}${missing.length > 10 ? ', …' : ''}`);
  return pop;
}

/** 1000 × count / population rounded to one decimal, half away from zero, as text ('12.3', '-0.4', '0.0'). */
export function ratePerThousand(count: number, population: number): string {
  if (!Number.isInteger(count) || !Number.isInteger(population) || population <= 0) throw new Error(`rate of ${count} per ${population}: needs integers and a positive population`);
  const a = Math.abs(count) * 10000; // tenths of per-mille × population
  const tenths = Math.floor((2 * a + population) / (2 * population));
  const s = `${Math.floor(tenths / 10)}.${tenths % 10}`;
  return count < 0 && tenths > 0 ? `-${s}` : s;
}

/**
 * The rates table (TABLE_HEADERS.rates) from a territory table: one row per territory (the sex T rows), in
 * the territory table's order; population summed from the municipalities to every level.
 */
export function ratesTable(territory: Table, C: Classification, year: number, population: Map<string, number>): Table {
  const { units, index } = unitsOf(C, year);
  const popOf = new Float64Array(units.length);
  for (const [code, idx] of index) for (const u of idx) popOf[u]! += population.get(code) ?? 0;
  const pos = new Map(units.map((u, i) => [`${u.level}:${u.code}`, i]));
  const out: Table = [];
  for (const r of territory) {
    if (r[3] !== 'T') continue;
    const ui = pos.get(`${r[1]}:${r[2]}`);
    if (ui === undefined) throw new Error(`rates: ${r[1]} ${r[2]} is not a unit of ${year}`);
    const p = popOf[ui]!;
    out.push([r[0]!, r[1]!, r[2]!, p, ratePerThousand(Number(r[4]), p), ratePerThousand(Number(r[5]), p), ratePerThousand(Number(r[6]), p)]);
  }
  return out;
}
