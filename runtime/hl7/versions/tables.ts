import { DATA_TYPE_COMPONENT_TYPES, DATA_TYPE_COMPONENTS, HL7_VERSIONS, SEGMENT_FIELDS } from './definitions.js';

export { HL7_VERSIONS };

/** A version hl7c has tables for. */
export type Hl7Version = (typeof HL7_VERSIONS)[number];

/** The tables used when a spec says no version (hl7c checked against v2.5.1 before it knew others). */
export const DEFAULT_HL7_VERSION: Hl7Version = '2.5.1';

/** One field of a segment in one version. */
export interface FieldDefinition {
  name: string;
  /** The data type; '-' for a field withdrawn in this version. */
  type: string;
  /** 1: once; a number: at most that many; Infinity: unbounded. */
  maxRepetitions: number;
  withdrawn: boolean;
}

export function isHl7Version(value: string): value is Hl7Version {
  return (HL7_VERSIONS as readonly string[]).includes(value);
}

/** The order of a version string, "2.5.1" → [2, 5, 1]; undefined when it is not one. */
function numbersOf(version: string): number[] | undefined {
  const m = /^\s*(\d+)\.(\d+)(?:\.(\d+))?/.exec(version);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)] : undefined;
}

function compare(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

/**
 * The tables to read a message of version `version` (MSH-12, e.g. "2.5.1", "2.8.2", "2.6^DEU") with:
 * that version's, else the latest older one hl7c has (v2.8.2 → v2.8, v2.6.1 → v2.6), v2.3 for
 * anything older, and undefined for something that is no version.
 */
export function tableVersionOf(version: string): Hl7Version | undefined {
  const wanted = numbersOf(version.split('^')[0] ?? '');
  if (!wanted) return undefined;
  let best: Hl7Version = HL7_VERSIONS[0];
  for (const v of HL7_VERSIONS) if (compare(numbersOf(v)!, wanted) <= 0) best = v;
  return best;
}

const parsed = new Map<string, readonly FieldDefinition[] | null>();

/** The fields of `segment` in `version`, or undefined when that version has no such segment (or hl7c does not know it). */
export function segmentFields(version: Hl7Version, segment: string): readonly FieldDefinition[] | undefined {
  const key = `${version} ${segment}`;
  let fields = parsed.get(key);
  if (fields === undefined) {
    fields = readFields(version, segment);
    parsed.set(key, fields);
  }
  return fields ?? undefined;
}

function readFields(version: Hl7Version, segment: string): readonly FieldDefinition[] | null {
  const histories = SEGMENT_FIELDS[segment];
  if (!histories) return null;
  const fields: FieldDefinition[] = [];
  for (const variants of histories) {
    const text = variantIn(variants, version);
    if (text === undefined) break;
    const [name, type, repeat] = text.split('|') as [string, string, string];
    fields.push({ name, type, maxRepetitions: repeat === '' ? 1 : repeat === '*' ? Infinity : Number(repeat), withdrawn: type === '-' });
  }
  return fields.length ? fields : null;
}

/** The entry of a history in force in `version` ("version|rest" entries, oldest first), without its version. */
function variantIn(variants: readonly string[], version: Hl7Version): string | undefined {
  const at = numbersOf(version)!;
  let found: string | undefined;
  for (const v of variants) {
    const bar = v.indexOf('|');
    if (compare(numbersOf(v.slice(0, bar))!, at) > 0) break;
    found = v.slice(bar + 1);
  }
  return found;
}

/** Segments hl7c has tables for. */
export function knownSegments(): string[] {
  return Object.keys(SEGMENT_FIELDS);
}

/** The versions (of those hl7c has) whose `segment` has field `n`, withdrawn ones excluded. */
export function versionsWithField(segment: string, n: number): Hl7Version[] {
  return HL7_VERSIONS.filter((v) => {
    const f = segmentFields(v, segment)?.[n - 1];
    return f !== undefined && !f.withdrawn;
  });
}

/** The versions (of those hl7c has) that define `segment`. */
export function versionsWithSegment(segment: string): Hl7Version[] {
  return HL7_VERSIONS.filter((v) => segmentFields(v, segment) !== undefined);
}

/** How many components data type `type` has in `version` (1 for a primitive); undefined when unknown (varies, withdrawn). */
export function componentCount(version: Hl7Version, type: string): number | undefined {
  const variants = DATA_TYPE_COMPONENTS[type];
  if (!variants) return undefined;
  const text = variantIn(variants, version);
  return text === undefined ? undefined : Number(text);
}

/** The data type of component `n` (1-based) of composite type `type` in `version`; undefined when the tables do not say. */
export function componentType(version: Hl7Version, type: string, n: number): string | undefined {
  const variants = DATA_TYPE_COMPONENT_TYPES[type];
  if (!variants) return undefined;
  return variantIn(variants, version)?.split(',')[n - 1] || undefined;
}

/** "v2.6 and later", "v2.3 to v2.6", "v2.4": a run of versions, for messages. */
export function describeVersions(versions: readonly Hl7Version[]): string {
  if (versions.length === 0) return 'no version hl7c knows';
  const first = versions[0]!;
  const last = versions[versions.length - 1]!;
  if (versions.length === 1) return `v${first}`;
  const contiguous = HL7_VERSIONS.indexOf(last) - HL7_VERSIONS.indexOf(first) + 1 === versions.length;
  if (!contiguous) return versions.map((v) => `v${v}`).join(', ');
  return last === HL7_VERSIONS[HL7_VERSIONS.length - 1] ? `v${first} and later` : `v${first} to v${last}`;
}
