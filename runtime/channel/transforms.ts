import type { Hl7Value } from '../hl7/message.js';

/**
 * HL7 DTM (YYYY[MM[DD[HH[MM[SS[.S+]]]]]][+/-ZZZZ]) to ISO 8601. A value without an offset
 * takes `defaultOffset` (e.g. "-05:00"); without either it is written without an offset,
 * never silently as UTC.
 */
export function hl7DateTimeToIso(value: string, defaultOffset?: string): string | null {
  const m = /^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\.\d{1,4})?([+-]\d{4})?$/.exec(value.trim());
  if (!m) return null;
  const [, y, mo, d, h, mi, s, frac, tz] = m;
  if (!h) return [y, mo, d].filter(Boolean).join('-');
  let iso = `${y}-${mo}-${d}T${h}:${mi ?? '00'}:${s ?? '00'}${frac ?? ''}`;
  const offset = tz ? `${tz.slice(0, 3)}:${tz.slice(3)}` : defaultOffset;
  if (offset) iso += offset;
  return iso;
}

/** HL7 DT/DTM to an ISO 8601 date (YYYY-MM-DD), dropping any time. */
export function hl7DateToIso(value: string): string | null {
  const m = /^(\d{4})(\d{2})(\d{2})/.exec(value.trim());
  return m ? `${m[1]}-${m[2]}-${m[3]}` : null;
}

export type TransformName = 'trim' | 'upper' | 'lower' | 'date' | 'datetime' | 'number';

export type MappedValue = Hl7Value | number;

export function applyTransform(input: MappedValue, name: TransformName, options: { defaultOffset?: string } = {}): MappedValue {
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
      return value === '' ? '' : hl7DateToIso(value);
    case 'datetime':
      return value === '' ? '' : hl7DateTimeToIso(value, options.defaultOffset);
    case 'number': {
      if (value.trim() === '') return '';
      const n = Number(value);
      return Number.isFinite(n) ? n : null;
    }
  }
}

/** Sets `a.b.c` in a JSON object, creating objects on the way. */
export function setJsonPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.');
  let node = target;
  for (const key of keys.slice(0, -1)) {
    if (typeof node[key] !== 'object' || node[key] === null) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[keys[keys.length - 1]!] = value;
}

/** A lookup table: a value not in the table reads as null (so `default` can apply). */
export function lookupValue(value: MappedValue, table: Readonly<Record<string, string>>): MappedValue {
  if (value === null || value === '') return value;
  return Object.hasOwn(table, String(value)) ? table[String(value)]! : null;
}

/** The default for a value that is empty, null or missing. */
export function withDefault(value: MappedValue, fallback: string | number | boolean | null): MappedValue | boolean {
  return value === null || value === '' ? fallback : value;
}
