import { Hl7PathError } from './errors.js';

/**
 * A location in a message, written the HL7 way, 1-based throughout:
 *   PID-3          field 3 of the first PID (all repetitions)
 *   PID-3[2]       its second repetition
 *   PID-3[2].4.1   component 4, subcomponent 1 of that repetition
 *   PID-3.4        component 4 of the first repetition
 *   OBX[3]-5       field 5 of the third OBX segment
 *   OBX[3]         the third OBX segment itself
 * Absent levels mean "the whole element"; an absent repetition before a component means the first.
 */
export interface Hl7Path {
  readonly text: string;
  readonly segment: string;
  /** 1-based occurrence of the segment; undefined means the first. */
  readonly segmentRepetition?: number;
  readonly field?: number;
  readonly repetition?: number;
  readonly component?: number;
  readonly subcomponent?: number;
}

const cache = new Map<string, Hl7Path>();

export function parsePath(text: string): Hl7Path {
  const cached = cache.get(text);
  if (cached) return cached;
  const path = readPath(text);
  if (cache.size < 10_000) cache.set(text, path);
  return path;
}

/** The path text in its canonical form (used in error messages and ERR-2). */
export function formatPath(p: Omit<Hl7Path, 'text'>): string {
  let s = p.segment;
  if (p.segmentRepetition !== undefined) s += `[${p.segmentRepetition}]`;
  if (p.field === undefined) return s;
  s += `-${p.field}`;
  if (p.repetition !== undefined) s += `[${p.repetition}]`;
  if (p.component !== undefined) s += `.${p.component}`;
  if (p.subcomponent !== undefined) s += `.${p.subcomponent}`;
  return s;
}

function readPath(text: string): Hl7Path {
  let i = 0;
  const fail = (reason: string, at = i): never => {
    throw new Hl7PathError(text, reason, at);
  };
  const segment = text.slice(0, 3);
  if (!/^[A-Z][A-Z0-9]{2}$/.test(segment)) {
    fail('a path starts with a 3-character segment name in capitals, such as PID or ZPI', 0);
  }
  i = 3;
  const readIndex = (what: string): number => {
    const start = i;
    while (i < text.length && text.charCodeAt(i) >= 48 && text.charCodeAt(i) <= 57) i++;
    if (i === start) fail(`expected a ${what} number`);
    const n = Number(text.slice(start, i));
    if (n < 1) fail(`${what} numbers start at 1`, start);
    return n;
  };
  const readBracket = (what: string): number => {
    i++; // '['
    const n = readIndex(what);
    if (text[i] !== ']') fail(`expected "]" to close the ${what}`);
    i++;
    return n;
  };
  // Every level present, even when undefined: paths then share one shape, and the reads that
  // take them (once per value mapped) stay monomorphic.
  const path: { -readonly [K in keyof Hl7Path]: Hl7Path[K] } = {
    text,
    segment,
    segmentRepetition: undefined,
    field: undefined,
    repetition: undefined,
    component: undefined,
    subcomponent: undefined,
  };
  if (text[i] === '[') path.segmentRepetition = readBracket('segment occurrence');
  if (i === text.length) return path;
  if (text[i] !== '-') fail('expected "-" and a field number after the segment, as in PID-3');
  i++;
  path.field = readIndex('field');
  if (text[i] === '[') path.repetition = readBracket('repetition');
  if (text[i] === '.') {
    i++;
    path.component = readIndex('component');
    if (text[i] === '.') {
      i++;
      path.subcomponent = readIndex('subcomponent');
    }
  }
  if (i !== text.length) fail(`unexpected "${text[i]}"`);
  if (segment === 'MSH' || segment === 'FHS' || segment === 'BHS') {
    if ((path.field === 1 || path.field === 2) && (path.repetition ?? path.component) !== undefined) {
      fail(`${segment}-${path.field} holds the delimiters and has no repetitions or components`, 4);
    }
  }
  return path;
}
