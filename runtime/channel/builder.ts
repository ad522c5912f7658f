import { DEFAULT_DELIMITERS, encodingCharacters } from '../hl7/delimiters.js';
import type { Hl7Value } from '../hl7/message.js';
import { Message } from '../hl7/message.js';
import type { Hl7Path } from '../hl7/path.js';
import { parsePath } from '../hl7/path.js';
import { Segment } from '../hl7/segment.js';
import { hl7Timestamp, newControlId } from '../hl7/timestamp.js';
import { readDtm } from '../hl7/dtm.js';
import { spendBudget } from './budget.js';
import type { DateValueSource } from './transforms.js';
import { DateValueError } from './transforms.js';

export interface NewMessageHeader {
  /** MSH-9, e.g. ORU^R01^ORU_R01 */
  type: string;
  /** MSH-12 */
  version: string;
  sending_application?: string;
  sending_facility?: string;
  receiving_application?: string;
  receiving_facility?: string;
  /** MSH-11, default P */
  processing_id?: string;
  /** MSH-15 / MSH-16; empty for original mode. */
  accept_ack_type?: string;
  application_ack_type?: string;
  /** MSH-18; default UNICODE UTF-8 */
  charset?: string;
}

/**
 * Builds an outgoing message: MSH with a new MSH-10 and the current time in MSH-7, then
 * segments added in order. Values are escaped on write; null writes the HL7 null `""`,
 * undefined leaves the field empty.
 */
export class MessageBuilder {
  readonly message: Message;

  /** `now`: the time for MSH-7 and MSH-10; by default the current one (formatted once a second, see hl7Timestamp). */
  constructor(header: NewMessageHeader, now?: Date) {
    const d = { ...DEFAULT_DELIMITERS };
    const msh = Segment.fromFields('MSH', [d.field, encodingCharacters(d)], d);
    this.message = new Message(d, [msh], { declared: header.charset ?? 'UNICODE UTF-8', encoding: 'utf-8' });
    const m = this.message;
    m.set('MSH-3', header.sending_application ?? '');
    m.set('MSH-4', header.sending_facility ?? '');
    m.set('MSH-5', header.receiving_application ?? '');
    m.set('MSH-6', header.receiving_facility ?? '');
    m.set('MSH-7', hl7Timestamp(now));
    m.setRaw('MSH-9', header.type);
    m.set('MSH-10', newControlId(now?.getTime()));
    m.set('MSH-11', header.processing_id ?? 'P');
    m.set('MSH-12', header.version);
    if (header.accept_ack_type) m.set('MSH-15', header.accept_ack_type);
    if (header.application_ack_type) m.set('MSH-16', header.application_ack_type);
    m.set('MSH-18', header.charset ?? 'UNICODE UTF-8');
  }

  /** Appends a segment and returns a writer bound to it. */
  addSegment(name: string): SegmentWriter {
    spendBudget();
    return new SegmentWriter(this.message, this.message.addSegment(name));
  }

  /** Writes into MSH. */
  get header(): SegmentWriter {
    return new SegmentWriter(this.message, this.message.header);
  }
}

/** Writes the fields of one segment; it holds the segment, so a message of any length is built in linear time. */
export class SegmentWriter {
  constructor(
    private readonly message: Message,
    private readonly segment: Segment,
  ) {}

  /** `path` names this segment's field, e.g. OBX-5 or OBX-3.2 (generated code passes it parsed); undefined leaves it empty. */
  set(path: string | Hl7Path, value: unknown): this {
    if (value === undefined) return this;
    const p = typeof path === 'string' ? parsePath(path) : path;
    if (p.segment !== this.segment.name) throw new Error(`${p.text} is not a field of ${this.segment.name}`);
    this.message.setIn(this.segment, p, toHl7Value(value));
    return this;
  }
}

function toHl7Value(value: unknown): Hl7Value {
  if (value === null) return null;
  if (typeof value === 'boolean') return value ? 'Y' : 'N';
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

/** A JSON path a channel reads: `a.b[0].c` from the current item, `$.a.b` from the root, `.` the item itself. */
export interface JsonPath {
  readonly text: string;
  readonly fromRoot: boolean;
  readonly keys: readonly string[];
}

/** Parses a JSON path; generated code does it once, when its module loads. */
export function jsonPath(text: string): JsonPath {
  const fromRoot = text.startsWith('$.');
  const keys = text === '.' ? [] : (fromRoot ? text.slice(2) : text).split('.').flatMap((k) => k.split(/\[(\d+)\]/).filter(Boolean));
  return { text, fromRoot, keys };
}

/** Reads `a.b[0].c` from JSON; `$.` starts from the root instead of the current item. */
export function readJson(root: unknown, item: unknown, path: string | JsonPath): unknown {
  const p = typeof path === 'string' ? jsonPath(path) : path;
  let node = p.fromRoot ? root : item;
  for (const key of p.keys) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  return node;
}

/** A JSON value build cannot write into one HL7 field: the request is refused (422) rather than the receiver getting JSON text. */
export class BuildValueError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BuildValueError';
  }
}

const jsonKind = (value: object) => (Array.isArray(value) ? 'a JSON array' : 'a JSON object');

/**
 * The JSON value build writes into one HL7 field (`field`, e.g. PID-3.1): text, a number or a
 * boolean. An array or object is no one HL7 value; written as JSON text it would reach the
 * receiver as an identifier or a name, so it throws BuildValueError naming the JSON key and the
 * field (never the value: it may identify a patient).
 */
export function buildJson(root: unknown, item: unknown, path: JsonPath, field: string): unknown {
  const value = readJson(root, item, path);
  // JSON null is "no value" like a missing key: writing the HL7 null "" would make the receiver delete what it has.
  if (value === null) return undefined;
  if (typeof value === 'object') {
    throw new BuildValueError(`${field} (from ${path.text}) is ${jsonKind(value)}, not one value: an HL7 field takes text, a number or true/false (send one value, or one item per segment with each:)`);
  }
  return value;
}

/** For `on_null: delete`: the app sent JSON null at the path, so build writes the HL7 null "". */
export function isJsonNull(root: unknown, item: unknown, path: JsonPath): boolean {
  return readJson(root, item, path) === null;
}

/** The items of a JSON array at a path (none when absent). */
export function jsonItems(root: unknown, item: unknown, path: string | JsonPath): unknown[] {
  const value = readJson(root, item, path);
  return Array.isArray(value) ? value : value === undefined || value === null ? [] : [value];
}

/**
 * Lines of a text value, for one segment per line (e.g. OBX TX note lines). A number or a boolean
 * is one line, written as a field would be (12345, Y/N): a note's text is never dropped. An array
 * or object is no text and throws BuildValueError naming the key; absent or null is no lines.
 */
export function textLines(root: unknown, item: unknown, path: string | JsonPath): string[] {
  const p = typeof path === 'string' ? jsonPath(path) : path;
  const value = readJson(root, item, p);
  if (value === undefined || value === null) return [];
  if (typeof value === 'object') throw new BuildValueError(`each_line ${p.text} is ${jsonKind(value)}, not text: send the lines as one string, or use each: over an array`);
  return typeof value === 'string' ? value.split(/\r\n|\r|\n/) : [String(toHl7Value(value))];
}

/**
 * A JSON value to HL7 DTM (YYYY[MM[DD[HHMM[SS]]]][+ZZZZ]) for build: ISO 8601 text at the precision
 * given, keeping its offset; text already in HL7 DTM form (19840512) is read as HL7 and checked the
 * same way. Anything else (12/05/1984, 1984-5-2, a number) and a date that does not exist
 * (2026-02-30, hour 25) throws DateValueError naming the field and the JSON key: a date the
 * receiver should have is never dropped. `date` keeps the date only (HL7 DT). Absent stays absent,
 * null is the HL7 null, empty text stays empty.
 */
export function isoToHl7DateTime(value: unknown, source: DateValueSource = {}, date = false): string | null | undefined {
  if (value === undefined || value === null) return value;
  if (typeof value !== 'string') throw new DateValueError(`it is a JSON ${typeof value}, not date text (ISO 8601 YYYY-MM-DD[THH:MM[:SS]][Z|+HH:MM])`, source);
  const text = value.trim();
  if (text === '') return '';
  let out: string;
  const iso = /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?)?)?)?(Z|[+-]\d{2}:?\d{2})?$/.exec(text);
  if (iso) {
    const [, y, mo, d, h, mi, s, tz] = iso;
    out = `${y}${mo ?? ''}${d ?? ''}${h ? `${h}${mi}${s ?? ''}` : ''}`;
    if (h && tz) out += tz === 'Z' ? '+0000' : tz.replace(':', '');
  } else if (/^\d{4,14}(\.\d{1,4})?([+-]\d{4})?$/.test(text)) out = text;
  else throw new DateValueError('it is neither an ISO 8601 date/time (YYYY-MM-DD[THH:MM[:SS]][Z|+HH:MM]) nor an HL7 one (YYYYMMDD[HHMM[SS]][+ZZZZ])', source);
  const reading = readDtm(out);
  if (!reading.ok) throw new DateValueError(reading.problem, source);
  return date ? out.slice(0, 8) : out;
}

/**
 * A date/time read from JSON for map's `format:` and `date`/`datetime`, which read HL7 DTM: JSON
 * carries ISO 8601 (1984-05-12, 2026-11-25T08:30:00Z), or HL7 text; either is checked as build
 * checks it. Absent is null.
 */
export function jsonDateTime(value: unknown, source: DateValueSource = {}): string | null {
  return isoToHl7DateTime(value, source) ?? null;
}

/** A JSON value as an HL7 leaf for transforms and lookups: numbers and booleans as text. */
export function asHl7Value(value: unknown): Hl7Value {
  if (value === undefined || value === null) return value === null ? null : '';
  if (typeof value === 'boolean') return value ? 'Y' : 'N';
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}
