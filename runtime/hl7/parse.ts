import type { Charset } from './charset.js';
import { charsetOfAscii, decodeBytes, encodeText, encodingForDeclared } from './charset.js';
import type { Delimiters } from './delimiters.js';
import { DEFAULT_DELIMITERS, firstRepetition, isHeaderSegmentName, mshField, printable, readDelimiters } from './delimiters.js';
import { Hl7ParseError } from './errors.js';
import { Message } from './message.js';
import { Segment } from './segment.js';

/** MSH-12 (version) is required in every HL7 version; a header that stops earlier was cut off. */
const MIN_MSH_FIELDS = 12;

export interface ParseOptions {
  /** MSH-18 to assume when it is empty (default: UTF-8 with a Latin-1 fallback). */
  defaultCharset?: string;
}

/** Parses one message from text or bytes (bytes are decoded per MSH-18). */
export function parseMessage(input: string | Uint8Array, options: ParseOptions = {}): Message {
  const { text, charset, scanned, lineFeeds } = toText(input, options, true);
  const lines = splitLines(text, !scanned, lineFeeds);
  const first = firstContentLine(lines);
  if (first === -1) throw new Hl7ParseError('EMPTY', 'the input holds no segments');
  const name = lines[first]!.slice(0, 3);
  if (name === 'FHS' || name === 'BHS') {
    throw new Hl7ParseError('BAD_BATCH', `the input is a batch (starts with ${name}); read it with parseBatch`, {
      segmentIndex: first + 1,
      segmentName: name,
    });
  }
  // All-ASCII bytes: MSH-18 is read from the header once it is parsed.
  const charsetOfHeader = (header: Segment) => charsetOfAscii(firstRepetition(header.field(18), header.field(2)[1]) || options.defaultCharset || '');
  return buildMessage(lines, first, lines.length, charset ?? charsetOfHeader, first);
}

/** One entry of a batch file, in file order, so it writes back exactly. */
export type BatchItem = { kind: 'segment'; segment: Segment } | { kind: 'message'; message: Message };

/**
 * A batch file: `[FHS] { [BHS] { MSH … } [BTS] } [FTS]`, or plain concatenated messages.
 * Header and trailer segments are kept; counts in BTS/FTS are reported, not enforced, since
 * real files get them wrong.
 */
export class Batch {
  constructor(
    readonly items: BatchItem[],
    readonly charset: Charset,
  ) {}

  get messages(): Message[] {
    return this.items.flatMap((i) => (i.kind === 'message' ? [i.message] : []));
  }

  /** FHS, BHS, BTS and FTS segments, in order. */
  get envelope(): Segment[] {
    return this.items.flatMap((i) => (i.kind === 'segment' ? [i.segment] : []));
  }

  toString(): string {
    let out = '';
    for (const item of this.items) out += item.kind === 'segment' ? item.segment.toString() + '\r' : item.message.toString();
    return out;
  }

  toBytes(): Buffer {
    return encodeText(this.toString(), this.charset.encoding);
  }
}

/** Parses a batch file, a single message, or several messages one after another. */
export function parseBatch(input: string | Uint8Array, options: ParseOptions = {}): Batch {
  const { text, charset, scanned, lineFeeds } = toText(input, options, false);
  const lines = splitLines(text, !scanned, lineFeeds);
  if (firstContentLine(lines) === -1) throw new Hl7ParseError('EMPTY', 'the input holds no segments');
  const items: BatchItem[] = [];
  let envelopeDelimiters: Delimiters | undefined;
  let inFile = false;
  let fileClosed = false;
  let inBatch = false;
  let messageStart = -1;
  const where = (i: number) => ({ segmentIndex: i + 1, segmentName: lines[i]!.slice(0, 3) });
  const closeMessage = (end: number) => {
    if (messageStart === -1) return;
    items.push({ kind: 'message', message: buildMessage(lines, messageStart, end, charset, messageStart) });
    messageStart = -1;
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const name = line.slice(0, 3);
    const envelope = (d: Delimiters) => {
      closeMessage(i);
      items.push({ kind: 'segment', segment: new Segment(name, line, d) });
    };
    switch (name) {
      case 'FHS':
        if (inFile || items.length > 0 || messageStart !== -1) {
          throw new Hl7ParseError('BAD_BATCH', 'FHS may only start a file; found another FHS inside it', where(i));
        }
        envelopeDelimiters = readDelimiters(line, i + 1);
        inFile = true;
        envelope(envelopeDelimiters);
        break;
      case 'BHS':
        if (inBatch) throw new Hl7ParseError('BAD_BATCH', 'BHS inside a batch that has no BTS yet', where(i));
        if (fileClosed) throw new Hl7ParseError('BAD_BATCH', 'BHS after FTS', where(i));
        envelopeDelimiters = readDelimiters(line, i + 1);
        inBatch = true;
        envelope(envelopeDelimiters);
        break;
      case 'BTS':
        if (!inBatch && !envelopeDelimiters) throw new Hl7ParseError('BAD_BATCH', 'BTS without a BHS', where(i));
        inBatch = false;
        envelope(envelopeDelimiters ?? readDelimitersOfLastMessage(items, i));
        break;
      case 'FTS':
        if (!inFile) throw new Hl7ParseError('BAD_BATCH', 'FTS without an FHS', where(i));
        inFile = false;
        fileClosed = true;
        envelope(envelopeDelimiters!);
        break;
      case 'MSH':
        closeMessage(i);
        if (fileClosed) throw new Hl7ParseError('BAD_BATCH', 'message after FTS', where(i));
        messageStart = i;
        break;
      default:
        if (messageStart === -1 && isContent(line)) {
          throw new Hl7ParseError('BAD_BATCH', `${printable(name)} segment outside a message: expected MSH first`, where(i));
        }
        if (messageStart === -1) {
          // A blank line between envelope segments; keep it so the file writes back unchanged.
          items.push({ kind: 'segment', segment: new Segment('', line, envelopeDelimiters ?? DEFAULT_DELIMITERS) });
        }
    }
  }
  closeMessage(lines.length);
  return new Batch(items, charset);
}

function readDelimitersOfLastMessage(items: BatchItem[], i: number): Delimiters {
  for (let k = items.length - 1; k >= 0; k--) {
    const item = items[k]!;
    if (item.kind === 'message') return item.message.delimiters;
  }
  throw new Hl7ParseError('BAD_BATCH', 'BTS without a BHS', { segmentIndex: i + 1, segmentName: 'BTS' });
}

interface DecodedText<C> {
  text: string;
  charset: C;
  scanned: boolean;
  /** Whether the text holds an LF, when the bytes were scanned. */
  lineFeeds?: boolean;
}

/** The character set, or how to read it from the parsed header (see toText). */
type CharsetOrReader = Charset | ((header: Segment) => Charset);

function buildMessage(lines: string[], start: number, end: number, charset: CharsetOrReader, offset: number): Message {
  const header = lines[start]!;
  if (!header.startsWith('MSH')) {
    throw new Hl7ParseError('NO_MSH', `a message must start with MSH, found "${printable(header.slice(0, 3))}"`, {
      segmentIndex: offset + 1,
    });
  }
  const d = readDelimiters(header, offset + 1);
  const segments: Segment[] = [];
  const separator = d.field.charCodeAt(0);
  for (let i = start; i < end; i++) {
    const line = lines[i]!;
    const index = i - offset + 1;
    if (!isContent(line)) {
      segments.push(new Segment('', line, d));
      continue;
    }
    const name = line.slice(0, 3);
    if (!isSegmentName(line) || (line.length > 3 && line.charCodeAt(3) !== separator)) {
      throw new Hl7ParseError(
        'BAD_SEGMENT_NAME',
        `"${printable(line.slice(0, 12))}" does not start with a segment name and a field separator "${d.field}" (a line break inside a field, or two segments joined?)`,
        { segmentIndex: index },
      );
    }
    if (i > start && isHeaderSegmentName(name)) {
      throw new Hl7ParseError('BAD_BATCH', `a second ${name} inside one message; read several messages with parseBatch`, {
        segmentIndex: index,
        segmentName: name,
      });
    }
    segments.push(new Segment(name, line, d));
  }
  const msh = segments[0]!;
  if (msh.fieldCount < MIN_MSH_FIELDS) {
    throw new Hl7ParseError('TRUNCATED', `MSH ends at field ${msh.fieldCount}; MSH-9 to MSH-12 are required`, {
      segmentIndex: 1,
      segmentName: 'MSH',
      field: msh.fieldCount + 1,
    });
  }
  return new Message(d, segments, typeof charset === 'function' ? charset(msh) : charset);
}


function isSegmentName(line: string): boolean {
  const a = line.charCodeAt(0);
  const b = line.charCodeAt(1);
  const c = line.charCodeAt(2);
  return a >= 65 && a <= 90 && isUpperOrDigit(b) && isUpperOrDigit(c);
}

function isUpperOrDigit(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 48 && c <= 57);
}

function isContent(line: string): boolean {
  // Almost every line starts with a segment name; only the rest need trimming.
  return line.charCodeAt(0) > 0x20 || line.trim() !== '';
}

function firstContentLine(lines: string[]): number {
  return lines.findIndex(isContent);
}

/**
 * Splits text into segment lines. CR, LF and CRLF all end a segment; one final terminator
 * is dropped (output always writes CR), further empty lines are kept as blank segments.
 */
export function splitLines(text: string, checkControlCharacters = true, lineFeeds = text.indexOf('\n') !== -1): string[] {
  if (checkControlCharacters) {
    const binary = firstControlCharacter(text);
    if (binary !== -1) throw binaryError(text, binary);
  }
  const lines = lineFeeds ? text.split(/\r\n|\r|\n/) : text.split('\r');
  if (lines.length > 1 && lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/**
 * Index of the first control character other than TAB, CR and LF (which never belong in HL7
 * text), or -1. A plain loop: several times faster than a regular expression on this hot path.
 */
function firstControlCharacter(text: string): number {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 ? c !== 0x0d && c !== 0x0a && c !== 0x09 : c === 0x7f) return i;
  }
  return -1;
}

function binaryError(text: string, at: number): Hl7ParseError {
  const before = text.slice(0, at);
  const segmentIndex = before.split(/\r\n|\r|\n/).length;
  const lineStart = Math.max(before.lastIndexOf('\r'), before.lastIndexOf('\n')) + 1;
  const line = before.slice(lineStart);
  const segmentName = /^[A-Z][A-Z0-9]{2}/.test(line) ? line.slice(0, 3) : undefined;
  const sep = segmentName ? line[3] : undefined;
  let field: number | undefined;
  if (segmentName && sep) {
    const count = line.split(sep).length - 1;
    field = segmentName === 'MSH' ? count + 1 : count;
  }
  const code = text.charCodeAt(at).toString(16).padStart(2, '0');
  return new Hl7ParseError('BINARY_CONTENT', `control byte 0x${code} in the message text (binary data, or MLLP framing inside the payload?)`, {
    segmentIndex,
    ...(segmentName ? { segmentName } : {}),
    ...(field !== undefined ? { field } : {}),
  });
}

/**
 * The text of the input and its character set. Bytes are checked for control characters before
 * decoding (`scanned`), which is cheaper on bytes than on text; every supported character set
 * keeps bytes below 0x20 as those same characters. With `charsetLater`, all-ASCII bytes come
 * back without a character set: MSH-18 is then read from the parsed header instead of apart.
 */
function toText(input: string | Uint8Array, options: ParseOptions, charsetLater: false): DecodedText<Charset>;
function toText(input: string | Uint8Array, options: ParseOptions, charsetLater: true): DecodedText<Charset | undefined>;
function toText(input: string | Uint8Array, options: ParseOptions, charsetLater: boolean): DecodedText<Charset | undefined> {
  if (typeof input === 'string') {
    const declared = declaredCharset(input);
    return { text: input, charset: { declared, encoding: encodingForDeclared(declared) ?? 'utf-8' }, scanned: false };
  }
  const buf = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  const scan = scanBytes(buf);
  const lineFeeds = (scan & SAW_LINE_FEED) !== 0;
  if (scan >= 0 && (scan & SAW_NON_ASCII) === 0) {
    // Every supported character set reads ASCII the same way, so MSH-18 is only needed to
    // write the message back; the text is read first and the header from it.
    const text = buf.toString('latin1');
    if (charsetLater) return { text, charset: undefined, scanned: true, lineFeeds };
    const declared = declaredCharset(text, lineFeeds) || options.defaultCharset || '';
    return { text, charset: charsetOfAscii(declared), scanned: true, lineFeeds };
  }
  // Delimiters and MSH-18 are ASCII, so the header can be read before the character set is known.
  const declared = declaredCharset(headerText(buf)) || options.defaultCharset || '';
  const decoded = decodeBytes(buf, declared);
  if (scan < 0) {
    let control = 0;
    while (byteFlags(buf[control]!) >= 0) control++;
    const at = decoded.charset.encoding === 'utf-8' ? buf.toString('utf8', 0, control).length : control;
    throw binaryError(decoded.text, at);
  }
  return { ...decoded, scanned: true, lineFeeds };
}

/** scanBytes flags: a byte above 0x7f, and an LF (so segments may end in LF or CRLF). */
const SAW_NON_ASCII = 1 << 29;
const SAW_LINE_FEED = 1 << 28;

/**
 * Looks at every byte once: flags non-ASCII bytes and LFs, or stops at the first control byte
 * other than TAB, CR and LF (the result is then negative). Four bytes at a time: a word holds
 * a byte below 0x20 exactly when (w - 0x20202020) & ~w & 0x80808080 is not zero, and one at
 * 0x7f or above when (w + 0x01010101) | w has a high bit set. Only such words (most often one
 * holding a CR) are looked at byte by byte.
 */
function scanBytes(buf: Uint8Array): number {
  const n = buf.length;
  let flags = 0;
  let i = 0;
  const misalign = (4 - (buf.byteOffset & 3)) & 3;
  for (; i < misalign && i < n; i++) {
    flags |= byteFlags(buf[i]!);
    if (flags < 0) return flags;
  }
  const words = (n - i) >>> 2;
  if (words > 0) {
    const view = new Int32Array(buf.buffer, buf.byteOffset + i, words);
    for (let k = 0; k < words; k++) {
      const w = view[k]!;
      if ((((w - 0x20202020) & ~w) | (w + 0x01010101) | w) & 0x80808080) {
        const base = i + k * 4;
        for (let b = base; b < base + 4; b++) {
          flags |= byteFlags(buf[b]!);
          if (flags < 0) return flags;
        }
      }
    }
    i += words * 4;
  }
  for (; i < n; i++) {
    flags |= byteFlags(buf[i]!);
    if (flags < 0) return flags;
  }
  return flags;
}

/** What one byte adds to scanBytes' result; the sign bit for a control byte that has no place in HL7 text. */
function byteFlags(c: number): number {
  if (c >= 0x20) return c === 0x7f ? BAD_CONTROL_BYTE : c > 0x7f ? SAW_NON_ASCII : 0;
  if (c === 0x0d || c === 0x09) return 0;
  return c === 0x0a ? SAW_LINE_FEED : BAD_CONTROL_BYTE;
}

const BAD_CONTROL_BYTE = 1 << 31;

/** The first MSH line of the bytes (as Latin-1), or of the first 64 KiB when there is none. */
function headerText(buf: Buffer): string {
  const msh = buf[0] === 0x4d && buf[1] === 0x53 && buf[2] === 0x48 ? 0 : buf.indexOf('MSH');
  if (msh === -1) return '';
  let end = buf.indexOf(0x0d, msh);
  const lf = buf.indexOf(0x0a, msh);
  if (end === -1 || (lf !== -1 && lf < end)) end = lf;
  return buf.toString('latin1', msh, end === -1 ? Math.min(buf.length, msh + 64 * 1024) : end);
}

/** MSH-18's first repetition from the first MSH in the text, '' when absent. */
function declaredCharset(text: string, lineFeeds = true): string {
  const start = text.startsWith('MSH') ? 0 : text.search(/(?:^|[\r\n])MSH/);
  if (start === -1) return '';
  const from = text[start] === 'M' ? start : start + 1;
  let end = text.indexOf('\r', from);
  const lf = lineFeeds ? text.indexOf('\n', from) : -1;
  if (end === -1 || (lf !== -1 && lf < end)) end = lf;
  const line = text.slice(from, end === -1 ? text.length : end);
  return firstRepetition(mshField(line, 18), line[5]);
}
