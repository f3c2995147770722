/**
 * The contracts between stages, and between the pipeline and its readers (interface.md, extended).
 * Everything that more than one module relies on is declared here.
 *
 * Store layout under --data DIR (default ./output):
 *   state/ingested.json           content hashes of every extract ingested (idempotent re-ingest)
 *   state/closed.json             closed months (final; never rewritten)
 *   state/first-month.json        the store's first month (months before it were published before the store existed)
 *   forms/YYYY-MM/<delivery>.json accepted, pseudonymised forms attributed to reference month YYYY-MM (columns)
 *   deliveries/<file-month>--<delivery>.json  what each ingested extract gave: counts, quarantine, dispositions, change log
 *   state/ids/<file-month>--<delivery>.tsv    record index (record id, reference month, hash of content) for duplicates
 *   months/YYYY-MM/               monthly results (see MONTH_FILES)
 *   years/YYYY/                   annual results: tables/, quality.json, tables.xlsx, report.html, sdmx/
 *   published/RELEASE-ID/         what a release made public (written only at/after release time)
 *   logs/migstat.jsonl            append-only structured log, one JSON object per stage event
 * Every results directory (months/*, years/*, published/*) carries a deterministic manifest.json:
 * see Manifest. `migstat audit` re-hashes every file against it.
 */

export const SERIES_VALUES = ['1991-1997', '1998-'] as const;
export const LEVELS = ['republic', 'region', 'area', 'municipality'] as const;
export type Level = (typeof LEVELS)[number];
export const SEXES = ['T', 'M', 'F'] as const;
export const MOVE_TYPES = ['within_municipality', 'between_municipalities_same_area', 'between_areas', 'total'] as const;

/** tables/*.csv headers. Rows are sorted: series, level (republic, region, area, municipality), code, then the other keys. */
export const TABLE_HEADERS = {
  /** interface.md: one row per territory and sex, zeros included. */
  territory: ['series', 'level', 'code', 'sex', 'immigrants', 'emigrants', 'net'],
  /** interface.md: move type of each migration, counted at its destination (immigrants) at every level. */
  move_type: ['series', 'level', 'code', 'move_type', 'migrants'],
  /** five-year age groups Y0T4 … Y80T84, Y_GE85 (SDMX AGE codes), at every level. */
  age: ['series', 'level', 'code', 'sex', 'age_group', 'immigrants', 'emigrants', 'net'],
  /** economic-activity groups: active (1,2), personal_income (3,4), dependents (5,6 and everyone under 15). */
  activity: ['series', 'level', 'code', 'sex', 'activity_group', 'immigrants', 'emigrants', 'net'],
  /** national affiliation codes 01–22, 98 undeclared, 99 unknown (never imputed); republic/region/area levels. */
  nationality: ['series', 'level', 'code', 'nationality', 'immigrants', 'emigrants', 'net'],
  /** origin of the migrants of each territory; `KM` = arrivals from Kosovo i Metohija (not covered), series 1998- only. */
  origin: ['series', 'level', 'code', 'origin', 'migrants'],
  /**
   * rates per 1 000 population: annual only (years/YYYY/tables/rates.csv), written only when `migstat year
   * --population FILE` is given; one row per territory (sex total), population summed from the
   * municipalities; rates as text with one decimal (stages/population.ts, docs/conventions.md "Rates").
   */
  rates: ['series', 'level', 'code', 'population', 'immigration_rate', 'emigration_rate', 'net_rate'],
} as const;
export type TableName = keyof typeof TABLE_HEADERS;

export const AGE_GROUPS = [
  'Y0T4', 'Y5T9', 'Y10T14', 'Y15T19', 'Y20T24', 'Y25T29', 'Y30T34', 'Y35T39', 'Y40T44',
  'Y45T49', 'Y50T54', 'Y55T59', 'Y60T64', 'Y65T69', 'Y70T74', 'Y75T79', 'Y80T84', 'Y_GE85',
] as const;
export const ACTIVITY_GROUPS = ['active', 'personal_income', 'dependents'] as const;

/** Index in AGE_GROUPS of an age (five-year groups, 85 and over last); -1 for an unknown (negative) age. */
export function ageGroupIndex(age: number): number {
  return age >= 85 ? AGE_GROUPS.length - 1 : age >= 0 ? Math.floor(age / 5) : -1;
}

export function ageGroup(age: number): string {
  return AGE_GROUPS[ageGroupIndex(age)]!;
}

/** Out-of-scope reasons (quality.json out_of_scope keys). */
export const OUT_OF_SCOPE = ['foreigner', 'from_abroad', 'departure_abroad', 'destination_km', 'same_settlement'] as const;
export type OutOfScope = (typeof OUT_OF_SCOPE)[number];

/** Quarantine reasons: one row per unusable form in quarantine.csv (file, line, record_id, field, reason, detail). */
export const QUARANTINE_REASONS = [
  'schema', // a field violates the record schema (detail names the field and the constraint)
  'unreadable_date', // registration_date is not a date
  'registration_after_file_month',
  'recorded_before_resend_window', // recorded more than RESEND_WINDOW_MONTHS before the extract's month: a re-send of it could not be recognised
  'no_destination', // R form whose new residence cannot be determined at all
  'field_count', // wrong number of fields on the line
] as const;

export interface RuleSummary { items: number; passes: number; fails: number; na: number; error?: string; severity: 'light' | 'hard'; expression: string }

/** quality.json of a month or a year (interface.md fields first, then extensions). */
export interface Quality {
  period: string; // 'YYYY-MM' or 'YYYY'
  series: string;
  provisional?: boolean;
  forms_read: number; // data lines of the month's extract(s)
  duplicates: number;
  quarantined: number;
  /** extension: quarantined forms by reason (QUARANTINE_REASONS); the rows are in quarantine.csv */
  quarantine_reasons?: Record<string, number>;
  out_of_scope: Record<string, number>;
  events: number;
  delayed_events: number;
  carried_forward: number;
  unmatched_departures: number;
  imputed: Record<string, number>; // variable → number of cells imputed (deductive + donor)
  rules: Record<string, RuleSummary>;
  /** extensions */
  linked_departures: number;
  replaced_versions: number; // earlier versions of re-sent forms, superseded by a correction
  corrections_to_closed: number; // corrections of forms of closed months: logged, not applied
  recoded_territory: number; // codes mapped through territorial changes
  delay_distribution: Record<string, number>; // whole months → events ('unknown' when no move date)
  imputation_by_method: Record<string, Record<string, number>>; // variable → method → count
  systemic: { rule: string; office: string; share: number; items: number; action: string }[];
  identity: { holds: boolean; lhs: number; rhs: Record<string, number> };
  checks: { id: string; ok: boolean; imbalance: number; detail: string }[];
  /** absent when the year was not compared (yoy_note says why); change_pct null: from 0 */
  yoy_flags?: { code: string; level: string; measure: string; previous: number; current: number; change_pct: number | null }[];
  /** why the year was not compared with the one before, or which territories were left out of the comparison */
  yoy_note?: string;
  provenance: Record<string, number>; // events by value provenance: reported, deduced, imputed, recoded, carried_forward
}

/** manifest.json of a results directory: deterministic (no clocks), so reruns are byte-identical. */
export interface Manifest {
  kind: 'month' | 'year' | 'release';
  id: string;
  code_version: string;
  parameters: Record<string, unknown>;
  inputs: { path: string; sha256: string; rows?: number }[];
  outputs: { path: string; sha256: string; bytes: number; rows?: number }[];
  counts: Record<string, number>;
}

/** Per-month audit trail (internal, never published): months/YYYY-MM/<name>.csv. */
export const MONTH_FILE_HEADERS = {
  /** one row per event (pseudonymised; no JMBG): what every table cell is built from. */
  events: ['record_id', 'registration_date', 'reference_month', 'from_municipality', 'to_municipality', 'origin_km', 'sex', 'age', 'age_group', 'activity_group', 'nationality', 'move_type', 'delay_months', 'carried_forward', 'provenance', 'donor_imputed'],
  /** one row per changed cell (practice.md): step, method, rule, record, variable, old, new, donor. */
  changes: ['step', 'method', 'rule', 'record_id', 'variable', 'old_value', 'new_value', 'donor_record_id'],
  /** one row per failed rule per record. */
  violations: ['record_id', 'rule_id', 'severity'],
  /** one row per rule: the run summary of practice.md. */
  rules: ['rule_id', 'severity', 'items', 'passes', 'fails', 'na', 'error', 'expression', 'description'],
  /** unusable forms with their reason (file, line, field). */
  quarantine: ['file', 'line', 'record_id', 'field', 'reason', 'detail'],
  /** the fate of every form line read: event, linked_departure, unmatched_departure, out_of_scope, duplicate, replaced, correction_to_closed, quarantined. */
  dispositions: ['file', 'line', 'record_id', 'form_type', 'disposition', 'reason'],
} as const;

/** tables/territory_imputed.csv and tables/age_imputed.csv: per cell, how many of its events carry a donor-imputed value that decides the cell. */
export const IMPUTED_HEADERS = {
  territory_imputed: ['series', 'level', 'code', 'sex', 'immigrants_imputed', 'emigrants_imputed'],
  age_imputed: ['series', 'level', 'code', 'sex', 'age_group', 'immigrants_imputed', 'emigrants_imputed'],
  /** the move type of an immigration is decided by its origin: a donor-imputed origin makes it imputed (never the total) */
  move_type_imputed: ['series', 'level', 'code', 'move_type', 'migrants_imputed'],
} as const;

/**
 * MoI's re-send window: the duplicate check of an extract sees the forms delivered in the 12 months before it, so a
 * form recorded earlier than that cannot be told from a re-send and is quarantined (recorded_before_resend_window).
 */
export const RESEND_WINDOW_MONTHS = 12;

/** The twelve months of a year, YYYY-MM. */
export const monthsOfYear = (y: number | string): string[] => Array.from({ length: 12 }, (_, i) => `${y}-${String(i + 1).padStart(2, '0')}`);

/** A month written YYYY-MM (01–12). */
export const isMonth = (s: string): boolean => /^\d{4}-(0[1-9]|1[0-2])$/.test(s);

/** "1 year", "2 years": a count in words for the CLI's lines */
export const count = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

/** The month k months after m (YYYY-MM; k may be negative). */
export const addMonths = (m: string, k: number): string => {
  const t = +m.slice(0, 4) * 12 + (+m.slice(5, 7) - 1) + k;
  return `${Math.floor(t / 12)}-${String((t % 12) + 1).padStart(2, '0')}`;
};
