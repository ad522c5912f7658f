import type { Charset } from './charset.js';
import { encodeText, firstUnencodable } from './charset.js';
import type { Delimiters } from './delimiters.js';
import { Hl7EditError } from './errors.js';
import { escapeValue, unescapeValue } from './escape.js';
import type { Hl7Path } from './path.js';
import { formatPath, parsePath } from './path.js';
import type { Hl7Value } from './read.js';
import { HL7_NULL, readLeaf } from './read.js';
import { Segment, segmentNameCode } from './segment.js';

export type { Hl7Value };

export { HL7_NULL };

export interface MessageType {
  /** MSH-9.1, e.g. ADT */
  code: string;
  /** MSH-9.2, e.g. A01 */
  trigger: string;
  /** MSH-9.3, e.g. ADT_A01 */
  structure: string;
}

/** Where a path landed, with the levels filled in. */
interface Located {
  segment: Segment;
  path: Hl7Path;
}

/**
 * One HL7 v2 message. Values are addressed with HL7 paths (see path.ts); reads decode escape
 * sequences, writes encode them. Everything not touched is written back byte for byte.
 */
export class Message {
  constructor(
    readonly delimiters: Delimiters,
    readonly segments: Segment[],
    readonly charset: Charset = { declared: '', encoding: 'utf-8' },
  ) {}

  get header(): Segment {
    return this.segments[0]!;
  }

  get type(): MessageType {
    return {
      code: this.getText('MSH-9.1'),
      trigger: this.getText('MSH-9.2'),
      structure: this.getText('MSH-9.3'),
    };
  }

  /** MSH-10 */
  get controlId(): string {
    return this.getText('MSH-10');
  }

  /** MSH-12.1 */
  get version(): string {
    return this.getText('MSH-12.1');
  }

  /** Segments with this name, in order (blank lines never match). */
  segmentsNamed(name: string): Segment[] {
    const code = segmentNameCode(name);
    return this.segments.filter((s) => (code === -1 ? s.name === name : s.nameCode === code));
  }

  /** The segment a path names, or undefined. `OBX[3]` is the third OBX. */
  segment(path: string | Hl7Path): Segment | undefined {
    const p = typeof path === 'string' ? parsePath(path) : path;
    let wanted = p.segmentRepetition ?? 1;
    const code = segmentNameCode(p.segment);
    for (const s of this.segments) {
      if ((code === -1 ? s.name === p.segment : s.nameCode === code) && --wanted === 0) return s;
    }
    return undefined;
  }

  /**
   * The value at a path. A leaf (no deeper delimiter in it) comes back decoded, `""` as null;
   * an element that still has structure (e.g. `PID-3` holding `123^^^MR`) comes back encoded,
   * because decoding it would make an escaped `\S\` indistinguishable from a component break.
   */
  get(path: string | Hl7Path): Hl7Value {
    const p = typeof path === 'string' ? parsePath(path) : path;
    return this.getIn(this.segment(p), p);
  }

  /**
   * Like get, in a segment already found, so a walk over many segments never looks one up by
   * name again; `repetition` is the encoded repetition of p's field already split out (a walk
   * over PID-3 holds the one it is on).
   */
  getIn(segment: Segment | undefined, p: Hl7Path, repetition?: string): Hl7Value {
    if (!segment) return '';
    if (p.field === undefined) {
      const raw = segment.toString();
      return raw === HL7_NULL ? null : raw;
    }
    if (repetition !== undefined) return readLeaf(repetition, 0, repetition.length, p, this.delimiters, p.component === undefined, 1);
    return segment.read(p);
  }

  /** Like get, with null and missing both as ''. */
  getText(path: string | Hl7Path): string {
    return this.get(path) ?? '';
  }

  /** The encoded text at a path, exactly as in the message ('' when absent). */
  getRaw(path: string | Hl7Path): string {
    const p = typeof path === 'string' ? parsePath(path) : path;
    const segment = this.segment(p);
    if (!segment) return '';
    if (p.field === undefined) return segment.toString();
    return readWithin(segment.field(p.field), p, this.delimiters, segment.isHeader && p.field <= 2);
  }

  /** Every repetition of a field, decoded (e.g. all PID-3 identifiers). */
  repetitions(path: string | Hl7Path): string[] {
    const p = typeof path === 'string' ? parsePath(path) : path;
    const segment = this.segment(p);
    if (!segment || p.field === undefined) return [];
    const text = segment.field(p.field);
    return text === '' ? [] : text.split(this.delimiters.repetition);
  }

  /** Writes a value, escaping delimiters in it; null writes the HL7 null `""`. */
  set(path: string | Hl7Path, value: Hl7Value): this {
    if (value !== null) this.checkEncodable(typeof path === 'string' ? path : path.text, value);
    return this.setRaw(path, value === null ? HL7_NULL : escapeValue(value, this.delimiters));
  }

  /**
   * Refuses a value the message's character set (MSH-18) cannot hold, naming the place and the
   * set: written, it would become `?` (8859/n) or raw bytes the receiver reads as something else
   * (ASCII). Only the character is named, never the value.
   */
  private checkEncodable(where: string, value: string): void {
    const c = firstUnencodable(value, this.charset);
    if (c === undefined) return;
    const code = `U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
    throw new Hl7EditError(
      `${where}: the character ${code} cannot be written in the message's character set (MSH-18 ${this.charset.declared || '(empty)'}); HL7 has no escape for it: send the message as UNICODE UTF-8 or leave the character out`,
    );
  }

  /** Writes already-encoded text (delimiters in it are structure, not data). */
  setRaw(path: string | Hl7Path, encoded: string): this {
    const p = typeof path === 'string' ? parsePath(path) : path;
    const { segment } = this.locateForWrite(p);
    return this.setRawIn(segment, p, encoded);
  }

  /** Like set, in a segment already found (a builder holds the segment it is writing). */
  setIn(segment: Segment, p: Hl7Path, value: Hl7Value): this {
    if (value !== null) this.checkEncodable(p.text, value);
    return this.setRawIn(segment, p, value === null ? HL7_NULL : escapeValue(value, this.delimiters));
  }

  private setRawIn(segment: Segment, p: Hl7Path, encoded: string): this {
    if (p.field === undefined) {
      throw new Hl7EditError(`${p.text} names a whole segment; name a field to write, such as ${p.segment}-1`);
    }
    segment.setField(p.field, writeWithin(segment.field(p.field), p, encoded, this.delimiters));
    return this;
  }

  /** Empties an element: a field, a repetition, a component or a subcomponent. */
  clear(path: string | Hl7Path): this {
    return this.setRaw(path, '');
  }

  /** Appends a segment; values are decoded text (null for `""`), values[0] being field 1. */
  addSegment(name: string, values: readonly Hl7Value[] = []): Segment {
    return this.insertSegment(this.segments.length, name, values);
  }

  /** Inserts a segment at a 0-based position in the segment list. */
  insertSegment(index: number, name: string, values: readonly Hl7Value[] = []): Segment {
    if (!/^[A-Z][A-Z0-9]{2}$/.test(name)) throw new Hl7EditError(`"${name}" is not a segment name`);
    if (name === 'MSH' || name === 'FHS' || name === 'BHS') {
      throw new Hl7EditError(`a message has one ${name}; edit it instead of adding another`);
    }
    if (index < 1 || index > this.segments.length) {
      throw new Hl7EditError(`segments can be inserted after MSH, at positions 1 to ${this.segments.length}`);
    }
    values.forEach((v, i) => v !== null && this.checkEncodable(`${name}-${i + 1}`, v));
    const encoded = values.map((v) => (v === null ? HL7_NULL : escapeValue(v, this.delimiters)));
    const segment = Segment.fromFields(name, encoded, this.delimiters);
    this.segments.splice(index, 0, segment);
    return segment;
  }

  /** Inserts a segment right after the one a path names (e.g. after `OBX[2]`). */
  insertSegmentAfter(path: string, name: string, values: readonly Hl7Value[] = []): Segment {
    const anchor = this.segment(path);
    if (!anchor) throw new Hl7EditError(`no segment ${path} to insert after`);
    return this.insertSegment(this.segments.indexOf(anchor) + 1, name, values);
  }

  /** Removes the segment a path names (e.g. `NTE[2]`); returns whether one was there. */
  removeSegment(path: string): boolean {
    const target = this.segment(path);
    if (!target) return false;
    if (target === this.header) throw new Hl7EditError('the MSH segment cannot be removed');
    this.segments.splice(this.segments.indexOf(target), 1);
    return true;
  }

  /** The message as text, segments ended by CR. */
  toString(): string {
    let out = '';
    for (const s of this.segments) out += s.toString() + '\r';
    return out;
  }

  /** The message as bytes in its character set (MSH-18). */
  toBytes(): Buffer {
    return encodeText(this.toString(), this.charset.encoding);
  }

  private locateForWrite(p: Hl7Path): Located {
    if (p.field === undefined) {
      throw new Hl7EditError(`${p.text} names a whole segment; name a field to write, such as ${p.segment}-1`);
    }
    const segment = this.segment(p);
    if (!segment) {
      throw new Hl7EditError(`the message has no ${formatPath({ segment: p.segment, segmentRepetition: p.segmentRepetition })} segment; add it first`);
    }
    return { segment, path: p };
  }
}

function readWithin(fieldText: string, p: Hl7Path, d: Delimiters, isDelimiterField: boolean): string {
  if (isDelimiterField || (p.repetition === undefined && p.component === undefined)) return fieldText;
  pieceStart = 0;
  pieceEnd = fieldText.length;
  narrow(fieldText, d.repetition, p.repetition ?? 1);
  return sliceWithinRepetition(fieldText, p, d);
}

function readWithinRepetition(rep: string, p: Hl7Path, d: Delimiters): string {
  if (p.component === undefined) return rep;
  pieceStart = 0;
  pieceEnd = rep.length;
  return sliceWithinRepetition(rep, p, d);
}

/** The component (and subcomponent) p names within the repetition at [pieceStart, pieceEnd) of text. */
function sliceWithinRepetition(text: string, p: Hl7Path, d: Delimiters): string {
  if (p.component !== undefined) {
    narrow(text, d.component, p.component);
    if (p.subcomponent !== undefined) {
      if (d.subcomponent !== undefined) narrow(text, d.subcomponent, p.subcomponent);
      else if (p.subcomponent !== 1) return '';
    }
  }
  return text.slice(pieceStart, pieceEnd);
}

/**
 * The piece of text a read is narrowing down, [pieceStart, pieceEnd): a read narrows it level by
 * level and slices once, at the end, rather than making a string of every level on the way.
 */
let pieceStart = 0;
let pieceEnd = 0;

/** Narrows the piece to its n-th (1-based) part split by sep, without looking further than needed; a part not there is empty. */
function narrow(text: string, sep: string, n: number): void {
  let start = pieceStart;
  const end = pieceEnd;
  for (let i = 1; i < n; i++) {
    const next = text.indexOf(sep, start);
    if (next === -1 || next >= end) {
      pieceStart = end;
      return;
    }
    start = next + 1;
  }
  const stop = text.indexOf(sep, start);
  pieceStart = start;
  if (stop !== -1 && stop < end) pieceEnd = stop;
}

function writeWithin(fieldText: string, p: Hl7Path, encoded: string, d: Delimiters): string {
  if (p.repetition === undefined && p.component === undefined) return encoded;
  const reps = fieldText === '' ? [''] : fieldText.split(d.repetition);
  const r = (p.repetition ?? 1) - 1;
  while (reps.length <= r) reps.push('');
  if (p.component === undefined) {
    reps[r] = encoded;
  } else {
    const comps = reps[r]!.split(d.component);
    const c = p.component - 1;
    while (comps.length <= c) comps.push('');
    if (p.subcomponent === undefined) {
      comps[c] = encoded;
    } else {
      if (d.subcomponent === undefined) {
        throw new Hl7EditError(`cannot write ${p.text}: the message declares no subcomponent separator in MSH-2`);
      }
      const subs = comps[c]!.split(d.subcomponent);
      const s = p.subcomponent - 1;
      while (subs.length <= s) subs.push('');
      subs[s] = encoded;
      comps[c] = subs.join(d.subcomponent);
    }
    reps[r] = comps.join(d.component);
  }
  return reps.join(d.repetition);
}

export function hasStructureBelow(raw: string, p: Hl7Path, d: Delimiters): boolean {
  if (p.field === undefined) return true;
  if (p.subcomponent !== undefined) return false;
  if (d.subcomponent !== undefined && raw.includes(d.subcomponent)) return true;
  if (p.component !== undefined) return false;
  if (raw.includes(d.component)) return true;
  return p.repetition === undefined && raw.includes(d.repetition);
}
