import { DEFAULT_HL7_VERSION, knownSegments, segmentFields, tableVersionOf } from './versions/tables.js';

/**
 * The HL7 name of field `n` (1-based) of a segment in the tables of `version` (a message's
 * MSH-12: "2.3", "2.8.2" reads the v2.8 tables; see tableVersionOf), for showing a message field
 * by field (the admin API's message detail, the dashboard). Null when the tables do not know the
 * segment or the field (Z-segments are site-defined): callers show its position.
 */
export function fieldName(segment: string, n: number, version: string = DEFAULT_HL7_VERSION): string | null {
  const tables = tableVersionOf(version) ?? DEFAULT_HL7_VERSION;
  return segmentFields(tables, segment)?.[n - 1]?.name ?? null;
}

/** Segments whose field names are known. */
export function namedSegments(): string[] {
  return knownSegments();
}
