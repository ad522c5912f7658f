import type { Delimiters } from './delimiters.js';
import { isHeaderSegmentName } from './delimiters.js';
import { Hl7EditError } from './errors.js';
import type { Hl7Path } from './path.js';
import type { Hl7Value } from './read.js';
import { readLeaf } from './read.js';

/**
 * One segment, kept as its encoded text until a field is read. Field values stay encoded
 * (escape sequences intact) so the segment writes back exactly as it was read; decoding
 * happens when a value is asked for, encoding when one is written.
 *
 * `fields` uses HL7 numbering: fields[0] is the segment name, fields[n] is field n. In header
 * segments (MSH, FHS, BHS) fields[1] is the field separator and fields[2] the encoding characters.
 */
export class Segment {
  /** Encoded text without terminator; null once a field has been changed. */
  private raw: string | null;
  private parsed: string[] | null = null;
  /**
   * Until the fields are split: where each piece of raw between field separators ends. A read
   * slices the one field it wants, so a mapping that reads a few fields of a long segment
   * never makes a string of every field.
   */
  private ends: number[] | null = null;
  /** Whether ends holds the end of the last piece (the segment has been scanned to its end). */
  private allEnds = false;
  /** MSH, FHS or BHS: field 1 is the separator itself. */
  readonly isHeader: boolean;
  /** The name as a number (segmentNameCode): looking a segment up by name compares these. */
  readonly nameCode: number;

  constructor(
    readonly name: string,
    raw: string,
    private readonly delimiters: Delimiters,
  ) {
    this.raw = raw;
    this.isHeader = isHeaderSegmentName(name);
    this.nameCode = segmentNameCode(name);
  }

  /** A segment built from encoded field values (fields[0] is field 1). */
  static fromFields(name: string, encodedFields: readonly string[], delimiters: Delimiters): Segment {
    const segment = new Segment(name, '', delimiters);
    segment.parsed = [name, ...encodedFields];
    segment.raw = null;
    return segment;
  }

  /** True for an empty line kept only so the message writes back as it came. */
  get isBlank(): boolean {
    return this.name === '';
  }

  /** All fields, HL7-numbered (see class comment). */
  get fields(): readonly string[] {
    return this.split();
  }

  /** Number of the last field present (trailing empty fields count: they were sent). */
  get fieldCount(): number {
    if (this.parsed || !this.raw) return this.split().length - 1;
    // Pieces of raw: the name and each field, MSH-1 (the separator) not being one of them.
    const pieces = this.pieceEnds(Number.MAX_SAFE_INTEGER).length;
    return this.isHeader ? pieces : pieces - 1;
  }

  /** The encoded text of field n ('' when absent). */
  field(n: number): string {
    if (this.parsed || !this.raw) return this.split()[n] ?? '';
    if (this.isHeader && n === 1) return this.delimiters.field;
    const piece = this.isHeader && n > 1 ? n - 1 : n;
    if (piece < 0) return '';
    const ends = this.pieceEnds(piece);
    if (piece >= ends.length) return '';
    return this.raw.slice(piece === 0 ? 0 : ends[piece - 1]! + 1, ends[piece]);
  }

  /**
   * The value p names in this segment (p.field set): see Message.get. Read where it lies in
   * the segment's text, without making a string of the field on the way.
   */
  read(p: Hl7Path): Hl7Value {
    const n = p.field!;
    const whole = (p.repetition === undefined && p.component === undefined) || (this.isHeader && n <= 2);
    const repetition = p.repetition ?? 1;
    if (this.parsed || !this.raw || (this.isHeader && n === 1)) {
      const text = this.field(n);
      return readLeaf(text, 0, text.length, p, this.delimiters, whole, repetition);
    }
    const piece = this.isHeader && n > 1 ? n - 1 : n;
    const ends = this.pieceEnds(piece);
    if (piece >= ends.length) return '';
    return readLeaf(this.raw, piece === 0 ? 0 : ends[piece - 1]! + 1, ends[piece]!, p, this.delimiters, whole, repetition);
  }

  /**
   * Where the pieces of raw end, found at least up to the given piece (all of them when there
   * are fewer): reading PV1-3 never looks for the separators of the forty fields after it.
   */
  private pieceEnds(piece: number): number[] {
    let ends = this.ends;
    if (ends === null) ends = this.ends = [];
    if (ends.length > piece || this.allEnds) return ends;
    const raw = this.raw!;
    const sep = this.delimiters.field;
    let at = ends.length === 0 ? 0 : ends[ends.length - 1]! + 1;
    while (ends.length <= piece) {
      const next = raw.indexOf(sep, at);
      if (next === -1) {
        ends.push(raw.length);
        this.allEnds = true;
        break;
      }
      ends.push(next);
      at = next + 1;
    }
    return ends;
  }

  setField(n: number, encoded: string): void {
    if (this.isHeader && (n === 1 || n === 2)) {
      throw new Hl7EditError(`${this.name}-${n} holds the message delimiters and cannot be set`);
    }
    if (n < 1) throw new Hl7EditError(`field numbers start at 1 (got ${n})`);
    const fields = this.split();
    while (fields.length <= n) fields.push('');
    fields[n] = encoded;
    this.raw = null;
  }

  /** Drops the fields after field n (empty places at the end of a segment carry nothing). */
  truncate(n: number): void {
    const fields = this.split();
    if (fields.length <= n + 1) return;
    fields.length = n + 1;
    this.raw = null;
  }

  toString(): string {
    if (this.raw !== null) return this.raw;
    const f = this.split();
    if (this.isHeader) {
      // The separator after the name is MSH-1 itself, so it is written once.
      return f[0]! + f[1]! + f.slice(2).join(this.delimiters.field);
    }
    return f.join(this.delimiters.field);
  }

  private split(): string[] {
    if (this.parsed) return this.parsed;
    const raw = this.raw ?? '';
    if (raw === '') {
      this.parsed = [this.name];
    } else if (this.isHeader) {
      // raw[3] is MSH-1 itself: split on it, then put it back as field 1.
      const sep = this.delimiters.field;
      const parts = raw.split(sep);
      const fields = new Array<string>(parts.length + 1);
      fields[0] = parts[0]!;
      fields[1] = sep;
      for (let i = 1; i < parts.length; i++) fields[i + 1] = parts[i]!;
      this.parsed = fields;
    } else {
      this.parsed = raw.split(this.delimiters.field);
    }
    return this.parsed;
  }
}

/**
 * A segment name as one number, so that finding a segment by name compares numbers: the names
 * sliced from each message are never the same strings as a path's, and comparing two strings'
 * characters costs several times more. -1 for anything but three ASCII characters (a blank line).
 */
export function segmentNameCode(name: string): number {
  if (name.length !== 3) return -1;
  const a = name.charCodeAt(0);
  const b = name.charCodeAt(1);
  const c = name.charCodeAt(2);
  return (a | b | c) < 0x80 ? (a << 14) | (b << 7) | c : -1;
}
