import type { Delimiters } from './delimiters.js';
import { isHeaderSegmentName } from './delimiters.js';
import { Hl7EditError } from './errors.js';

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
  /** MSH, FHS or BHS: field 1 is the separator itself. */
  readonly isHeader: boolean;

  constructor(
    readonly name: string,
    raw: string,
    private readonly delimiters: Delimiters,
  ) {
    this.raw = raw;
    this.isHeader = isHeaderSegmentName(name);
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
    const pieces = this.pieceEnds().length;
    return this.isHeader ? pieces : pieces - 1;
  }

  /** The encoded text of field n ('' when absent). */
  field(n: number): string {
    if (this.parsed || !this.raw) return this.split()[n] ?? '';
    if (this.isHeader && n === 1) return this.delimiters.field;
    const piece = this.isHeader && n > 1 ? n - 1 : n;
    const ends = this.pieceEnds();
    if (piece < 0 || piece >= ends.length) return '';
    return this.raw.slice(piece === 0 ? 0 : ends[piece - 1]! + 1, ends[piece]);
  }

  private pieceEnds(): number[] {
    if (this.ends) return this.ends;
    const raw = this.raw!;
    const sep = this.delimiters.field;
    const ends: number[] = [];
    for (let at = raw.indexOf(sep); at !== -1; at = raw.indexOf(sep, at + 1)) ends.push(at);
    ends.push(raw.length);
    return (this.ends = ends);
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
