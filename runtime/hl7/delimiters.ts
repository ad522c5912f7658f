import { Hl7ParseError } from './errors.js';

/**
 * The separators a message declares in MSH-1 and MSH-2 (or FHS/BHS-1/2).
 * Optional ones are absent when MSH-2 is shorter than four or five characters,
 * which real senders do (e.g. `^~}`).
 */
export interface Delimiters {
  field: string;
  component: string;
  repetition: string;
  escape?: string;
  subcomponent?: string;
  /** v2.7+ truncation character, normally `#`. */
  truncation?: string;
}

export const DEFAULT_DELIMITERS: Readonly<Delimiters> = Object.freeze({
  field: '|',
  component: '^',
  repetition: '~',
  escape: '\\',
  subcomponent: '&',
});

/** MSH-2 text for a set of delimiters, in the standard order. */
export function encodingCharacters(d: Delimiters): string {
  return d.component + d.repetition + (d.escape ?? '') + (d.subcomponent ?? '') + (d.truncation ?? '');
}

/** MSH, FHS or BHS: the segments that declare delimiters. Char codes, as this runs per segment. */
export function isHeaderSegmentName(name: string): boolean {
  if (name.length !== 3) return false;
  const a = name.charCodeAt(0);
  const b = name.charCodeAt(1);
  const c = name.charCodeAt(2);
  // M S H, or F H S / B H S
  return a === 0x4d ? b === 0x53 && c === 0x48 : (a === 0x46 || a === 0x42) && b === 0x48 && c === 0x53;
}

/**
 * Reads the delimiters of a header segment (MSH, FHS or BHS).
 * `segmentIndex` is only used to locate errors.
 */
export function readDelimiters(segment: string, segmentIndex = 1): Delimiters {
  // Nearly every message from one sender declares the same delimiters: reuse the last ones read.
  if (lastRead !== null && segment.startsWith(lastRead.prefix)) return lastRead.delimiters;
  const delimiters = readDelimitersAnew(segment, segmentIndex);
  const prefix = segment.slice(0, 4 + encodingCharacters(delimiters).length + 1);
  if (prefix.endsWith(delimiters.field)) lastRead = { prefix, delimiters: Object.freeze(delimiters) };
  return delimiters;
}

/** The header start ("MSH|^~\\&|", MSH-2 closed by a separator) the last delimiters were read from. */
let lastRead: { prefix: string; delimiters: Readonly<Delimiters> } | null = null;

function readDelimitersAnew(segment: string, segmentIndex: number): Delimiters {
  const name = segment.slice(0, 3);
  if (!isHeaderSegmentName(name)) {
    throw new Hl7ParseError('NO_MSH', `expected an MSH header segment, found "${printable(segment.slice(0, 3))}"`, {
      segmentIndex,
    });
  }
  const where = { segmentIndex, segmentName: name };
  if (segment.length < 4) {
    throw new Hl7ParseError('TRUNCATED', `${name} segment ends before its field separator`, { ...where, field: 1 });
  }
  const field = segment[3]!;
  if (isUnusableDelimiter(field)) {
    throw new Hl7ParseError('BAD_ENCODING_CHARACTERS', `${name}-1 field separator ${describeChar(field)} is not usable`, {
      ...where,
      field: 1,
    });
  }
  let end = segment.indexOf(field, 4);
  if (end === -1) end = segment.length;
  const chars = segment.slice(4, end);
  if (chars.length < 2 || chars.length > 5) {
    throw new Hl7ParseError(
      chars.length < 2 ? 'TRUNCATED' : 'BAD_ENCODING_CHARACTERS',
      `${name}-2 encoding characters "${printable(chars)}" must be 2 to 5 characters (component, repetition, escape, subcomponent, truncation)`,
      { ...where, field: 2 },
    );
  }
  const seen = new Set<string>([field]);
  for (const c of chars) {
    if (seen.has(c) || isUnusableDelimiter(c)) {
      throw new Hl7ParseError(
        'BAD_ENCODING_CHARACTERS',
        `${name}-2 encoding characters "${printable(chars)}" repeat or contain ${describeChar(c)}; each separator must be a distinct punctuation character`,
        { ...where, field: 2 },
      );
    }
    seen.add(c);
  }
  const d: Delimiters = { field, component: chars[0]!, repetition: chars[1]! };
  if (chars.length > 2) d.escape = chars[2]!;
  if (chars.length > 3) d.subcomponent = chars[3]!;
  if (chars.length > 4) d.truncation = chars[4]!;
  return d;
}

/**
 * Control characters and space cannot separate anything; nor can digits and capital letters,
 * which make up segment names, message codes, versions and table values (`MSH|^H|` or
 * `MSH|7C|` would split `ADT^A08` or `2.5.1`). Lower-case letters are seen in the wild (`$r?@`).
 */
function isUnusableDelimiter(c: string): boolean {
  const code = c.charCodeAt(0);
  return code < 0x21 || code === 0x7f || (code >= 0x30 && code <= 0x39) || (code >= 0x41 && code <= 0x5a);
}

function describeChar(c: string): string {
  const code = c.charCodeAt(0);
  return code < 0x21 || code >= 0x7f ? `0x${code.toString(16).padStart(2, '0')}` : `"${c}"`;
}

/** Text safe to put in an error message: control characters shown as hex. */
export function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** The first repetition of a field's encoded text, trimmed (MSH-18, for one, may repeat). */
export function firstRepetition(field: string, repetition: string | undefined): string {
  const at = repetition ? field.indexOf(repetition) : -1;
  return (at === -1 ? field : field.slice(0, at)).trim();
}

/**
 * Field n of an MSH line as written (MSH-1 is the separator), found by counting separators
 * rather than splitting the whole line: used on hot paths that need one or two header fields.
 */
export function mshField(line: string, n: number): string {
  if (line.length < 4 || !line.startsWith('MSH')) return '';
  const sep = line[3]!;
  if (n === 1) return sep;
  // The k-th separator after MSH-1 starts MSH-(k+2).
  let at = 3;
  for (let k = 0; k < n - 2; k++) {
    at = line.indexOf(sep, at + 1);
    if (at === -1) return '';
  }
  const stop = line.indexOf(sep, at + 1);
  return line.slice(at + 1, stop === -1 ? line.length : stop);
}
