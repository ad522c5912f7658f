import type { DtmParts, DtmText } from '../hl7/dtm.js';
import { checkDtm, readDtm } from '../hl7/dtm.js';
import type { Hl7Value } from '../hl7/message.js';
import './patterns.js'; // bounds the time of every pattern a spec gives

/** Where a date/time value came from and went, for the error that names it (never the value: it may be a birth date). */
export interface DateValueSource {
  /** The HL7 path read (or, building, written), e.g. PID-7. */
  field?: string;
  /** Where the mapping puts it, e.g. patient.birth_date. */
  target?: string;
  /** The JSON key a build: reads it from, e.g. dob. */
  json?: string;
  /** The transform step that read it, e.g. reformat_date: its failure is a transform's, not a mapping's. */
  step?: string;
}

/** A date/time value that names no real date or time: the message fails rather than carry a wrong date. */
export class DateValueError extends Error {
  readonly field?: string;
  readonly target?: string;
  readonly step?: string;
  constructor(
    readonly problem: string,
    source: DateValueSource = {},
  ) {
    const where = source.field ?? 'a date/time value';
    super(
      source.step
        ? `${source.step} ${where}: ${problem}`
        : `${where}${source.target ? ` (mapped to ${source.target})` : ''}${source.json ? ` (from ${source.json})` : ''} is not a valid date/time: ${problem}`,
    );
    this.name = 'DateValueError';
    if (source.field !== undefined) this.field = source.field;
    if (source.target !== undefined) this.target = source.target;
    if (source.step !== undefined) this.step = source.step;
  }
}

const NM = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$/;

/** A `number` transform of a value that is not HL7 NM: the message fails (ERR 102 at the field), as a date that is no date does. */
export class NumberValueError extends DateValueError {
  constructor(source: DateValueSource = {}) {
    super('not an HL7 number (NM: an optional sign, digits, an optional decimal point)', source);
    this.message = `${source.field ?? 'a number value'}${source.target ? ` (mapped to ${source.target})` : ''}${source.json ? ` (from ${source.json})` : ''} is ${this.problem}`;
    this.name = 'NumberValueError';
  }
}

function dtmParts(value: string, source: DateValueSource): DtmParts {
  const reading = readDtm(value);
  if (!reading.ok) throw new DateValueError(reading.problem, source);
  return reading.parts;
}

function checkedDtm(value: string, source: DateValueSource): DtmText {
  const dtm = checkDtm(value);
  if (!dtm.ok) throw new DateValueError(dtm.problem, source);
  return dtm;
}

/**
 * HL7 DTM to ISO 8601, at the precision sent: YYYY, YYYY-MM, YYYY-MM-DD for a value without a
 * time (a time is never invented), else date and time to the part sent, as ISO 8601 allows
 * (reduced precision): 2026120214 is 2026-12-02T14, 202612021430 is 2026-12-02T14:30; minutes
 * or seconds the sender did not give are never written as :00. A time without an offset takes
 * `defaultOffset`: a fixed offset ("-05:00") or an IANA zone ("America/New_York"), whose offset
 * is the one in force at that date and time (daylight saving time included); without either it
 * is written without an offset, never silently as UTC. A value that is no real date/time throws
 * DateValueError.
 */
export function hl7DateTimeToIso(value: string, defaultOffset?: string, source: DateValueSource = {}): string {
  const dtm = checkedDtm(value, source);
  const { text, digits, fractionAt, offsetAt } = dtm;
  if (digits < 10) return isoDate(dtm);
  let iso = isoDate(dtm) + 'T' + text.slice(8, 10);
  if (digits >= 12) iso += ':' + text.slice(10, 12);
  if (digits >= 14) iso += ':' + text.slice(12, 14) + (fractionAt === -1 ? '' : text.slice(fractionAt, offsetAt === -1 ? text.length : offsetAt));
  const number = (at: number, length: number) => (digits >= at + length ? Number(text.slice(at, at + length)) : 0);
  const offset =
    offsetAt !== -1
      ? text.slice(offsetAt, offsetAt + 3) + ':' + text.slice(offsetAt + 3)
      : defaultOffset && zoneOffset(defaultOffset, number(0, 4), number(4, 2), number(6, 2), number(8, 2), number(10, 2), number(12, 2));
  if (offset) iso += offset;
  return iso;
}

const FIXED_OFFSET = /^[+-]\d{2}:\d{2}$/;
const zoneFormats = new Map<string, Intl.DateTimeFormat>();

/** Whether `zone` is an offset such as -05:00 or a time zone this Node knows (America/New_York). */
export function isTimeZone(zone: string): boolean {
  if (FIXED_OFFSET.test(zone)) return true;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/** The zone's offset from UTC, in minutes, at an instant. */
function offsetAt(zone: string, instant: number): number {
  let format = zoneFormats.get(zone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', { timeZone: zone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric' });
    zoneFormats.set(zone, format);
  }
  const n: Record<string, number> = {};
  for (const part of format.formatToParts(instant)) if (part.type !== 'literal') n[part.type] = Number(part.value);
  const wall = Date.UTC(n.year!, n.month! - 1, n.day!, n.hour!, n.minute!, n.second!);
  return Math.round((wall - Math.floor(instant / 1000) * 1000) / 60_000);
}

/**
 * The offset ("-04:00") a zone has at a local date and time. A fixed offset is itself. A local
 * time the clocks skip (02:30 when they spring forward) takes the offset before the change, so it
 * means the instant it would be had the clocks not changed (as Temporal's "compatible"); a local
 * time that happens twice (01:30 when they fall back) is the first of the two, still in summer
 * time.
 */
export function zoneOffset(zone: string, year: number, month: number, day: number, hour: number, minute: number, second: number): string {
  if (FIXED_OFFSET.test(zone)) return zone;
  const local = Date.UTC(year, month - 1, day, hour, minute, second);
  const before = offsetAt(zone, local - 86_400_000);
  const after = offsetAt(zone, local + 86_400_000);
  const fits = [before, after].filter((o) => offsetAt(zone, local - o * 60_000) === o);
  // Two offsets fit in an overlap: the larger one is the earlier instant.
  const minutes = fits.length ? Math.max(...fits) : before;
  const sign = minutes < 0 ? '-' : '+';
  const abs = Math.abs(minutes);
  return `${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
}

/**
 * HL7 DT/DTM as text in a pattern: YYYY, MM, DD, HH, mm, ss (other characters as written).
 * A value without a part the pattern asks for (a date-only value and HH) gives null: a time is
 * never invented. A value that is no real date/time throws DateValueError.
 */
export function formatHl7DateTime(input: MappedValue, pattern: string, source: DateValueSource = {}): string | null {
  if (input === null || String(input).trim() === '') return input === null ? null : '';
  const p = dtmParts(String(input), source);
  const parts: Record<string, string | undefined> = { YYYY: p.year, MM: p.month, DD: p.day, HH: p.hour, mm: p.minute, ss: p.second };
  let missing = false;
  const out = pattern.replace(/YYYY|MM|DD|HH|mm|ss/g, (token) => parts[token] ?? ((missing = true), ''));
  return missing ? null : out;
}

/** HL7 DT/DTM to an ISO 8601 date at the precision sent (YYYY, YYYY-MM or YYYY-MM-DD), dropping any time. */
export function hl7DateToIso(value: string, source: DateValueSource = {}): string {
  return isoDate(checkedDtm(value, source));
}

function isoDate({ text, digits }: DtmText): string {
  if (digits === 4) return text.slice(0, 4);
  if (digits === 6) return text.slice(0, 4) + '-' + text.slice(4, 6);
  return text.slice(0, 4) + '-' + text.slice(4, 6) + '-' + text.slice(6, 8);
}

export type TransformName = 'trim' | 'upper' | 'lower' | 'date' | 'datetime' | 'number';

export type MappedValue = Hl7Value | number;

export function applyTransform(input: MappedValue, name: TransformName, options: { defaultOffset?: string } & DateValueSource = {}): MappedValue {
  if (input === null) return null;
  if (typeof input === 'number') return name === 'number' ? input : applyTransform(String(input), name, options);
  const value = input;
  switch (name) {
    case 'trim':
      return value.trim();
    case 'upper':
      return value.toUpperCase();
    case 'lower':
      return value.toLowerCase();
    case 'date':
      return value.trim() === '' ? '' : hl7DateToIso(value, options);
    case 'datetime':
      return value.trim() === '' ? '' : hl7DateTimeToIso(value, options.defaultOffset, options);
    case 'number': {
      const text = value.trim();
      if (text === '') return '';
      // HL7 NM: an optional sign, digits, an optional decimal point. Anything else (1,234.50, 0x1F, 1e400, an MRN) is not a number the sender meant.
      if (!NM.test(text)) throw new NumberValueError(options);
      return Number(text);
    }
  }
}

const compiledPatterns = new Map<string, RegExp>();

/**
 * `replace: [{pattern, with}]`: each regular expression in turn, every match replaced (JavaScript
 * syntax; `$1` … in `with` are its groups). Null stays null; a number is replaced as text.
 */
export function replacePatterns(input: MappedValue, pairs: ReadonlyArray<readonly [string, string]>): MappedValue {
  if (input === null) return null;
  let text = String(input);
  for (const [pattern, by] of pairs) {
    let re = compiledPatterns.get(pattern);
    if (!re) compiledPatterns.set(pattern, (re = new RegExp(pattern, 'g')));
    text = text.replace(re, by);
  }
  return text;
}

/**
 * `default` with `replace`, in the order of Mirth's mapper: an empty or missing value takes the
 * default first, and the replacements then apply to the value or the default alike (a default
 * of 00000-0000 under `-\\d{4}$` → "" is 00000).
 */
export function defaultThenReplace(input: MappedValue | undefined, fallback: string | number | null, pairs: ReadonlyArray<readonly [string, string]>): MappedValue {
  return replacePatterns(withDefault(input as MappedValue, fallback) as MappedValue, pairs);
}

/**
 * Where `map:` puts a value in the JSON it builds: `a.b.c` (objects), or `identifier[0].use`
 * (an index makes an array, as FHIR resources need). Parsed once, when a generated module loads.
 */
export interface JsonTarget {
  readonly text: string;
  readonly keys: ReadonlyArray<string | number>;
  /** Written with an index: objects on the way that are arrays where an index is not wanted are replaced. */
  readonly indexed: boolean;
}

export function jsonTarget(text: string): JsonTarget {
  if (!text.includes('[')) return { text, keys: text.split('.'), indexed: false };
  const keys = text.split('.').flatMap((part) => part.split(/\[(\d+)\]/).filter((k) => k !== '').map((k, i) => (i > 0 ? Number(k) : k)));
  return { text, keys, indexed: true };
}

/** Sets `a.b.c` in a JSON object, creating objects on the way. */
export function setJsonPath(target: Record<string, unknown>, path: string, value: unknown): void {
  setJsonAt(target, jsonTarget(path), value);
}

/**
 * Sets a value at a parsed target, creating objects (or arrays, before an index) on the way. Only
 * the target's own properties are walked into: a key such as `__proto__` never reaches a prototype.
 */
export function setJsonAt(target: Record<string, unknown>, path: JsonTarget, value: unknown): void {
  const keys = path.keys;
  let node = target as Record<string | number, unknown>;
  for (let i = 0; i < keys.length - 1; i++) {
    const key = keys[i]!;
    const current = Object.hasOwn(node, key) ? node[key] : undefined;
    if (path.indexed) {
      const wantArray = typeof keys[i + 1] === 'number';
      if (wantArray ? !Array.isArray(current) : typeof current !== 'object' || current === null || Array.isArray(current)) node[key] = wantArray ? [] : {};
    } else if (typeof current !== 'object' || current === null) node[key] = {};
    node = node[key] as Record<string | number, unknown>;
  }
  node[keys[keys.length - 1]!] = value;
}

/** What a lookup does with a value its table does not have (`on_missing`). */
export interface LookupOptions {
  /** null (the default): the value reads as null, so `default` can apply; keep: the value as it came; error: the message fails. */
  on_missing?: 'null' | 'keep' | 'default' | 'error';
  /** Where the value was mapped to, for the error (never the value itself: it may identify a patient). */
  target?: string;
}

/** A value a lookup table does not have, under `on_missing: error`. */
export class LookupError extends Error {
  constructor(readonly target: string | undefined) {
    super(`the value mapped to ${target ?? 'a lookup'} is not in its lookup table (on_missing: error)`);
    this.name = 'LookupError';
  }
}

/** A lookup table as generated code holds it: its rows in a Map, with what to do with a value it lacks. */
export class LookupTable {
  constructor(
    readonly rows: ReadonlyMap<string, string>,
    readonly options: LookupOptions = {},
  ) {}
}

/** A lookup table from its rows (code to value), made once when a generated module loads. */
export function lookupTable(rows: Readonly<Record<string, string>>, options: LookupOptions = {}): LookupTable {
  return new LookupTable(new Map(Object.entries(rows)), options);
}

/** A lookup table: a value not in the table reads as null (so `default` can apply), unless `on_missing` says otherwise. */
export function lookupValue(value: MappedValue, table: LookupTable | Readonly<Record<string, string>>, options?: LookupOptions): MappedValue {
  if (value === null || value === '') return value;
  const key = String(value);
  if (table instanceof LookupTable) {
    const found = table.rows.get(key);
    if (found !== undefined) return found;
    options ??= table.options;
  } else if (Object.hasOwn(table, key)) return table[key]!;
  if (options?.on_missing === 'keep') return value;
  if (options?.on_missing === 'error') throw new LookupError(options.target);
  return null;
}

/** The default for a value that is empty, null or missing. */
export function withDefault(value: MappedValue, fallback: string | number | boolean | null): MappedValue | boolean {
  // undefined: a JSON path that is not there.
  return value === null || value === undefined || value === '' ? fallback : value;
}
