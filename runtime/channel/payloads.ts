import { Message } from '../hl7/message.js';
import { Segment } from '../hl7/segment.js';

/**
 * A copy of a message that a destination's own transform may edit: the channel's message (and
 * every other destination's copy) stays as it was.
 */
export function copyMessage(message: Message): Message {
  return new Message(message.delimiters, message.segments.map((s) => new Segment(s.name, s.toString(), message.delimiters)), message.charset);
}

/** A value as template text: missing and null as '', numbers and booleans as written, objects as JSON. */
export function templateText(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

/**
 * A value as one line of template text: line breaks (CR, LF, U+2028/2029, NEL) and other control
 * characters become a space. A value decoded from HL7 may hold them (`\X0D0A\`, `\.br\`); written
 * as they are, one would start a new line in an `append` file or a new header in an HTTP request.
 */
export function templateLineText(value: unknown): string {
  const text = templateText(value);
  return LINE_BREAKING.test(text) ? text.replace(LINE_BREAKING_ALL, ' ') : text;
}

const LINE_BREAKING = /[\x00-\x08\x0a-\x1f\x7f\x85\u2028\u2029]/;
const LINE_BREAKING_ALL = new RegExp(`\\r\\n|${LINE_BREAKING.source}`, 'g');

/**
 * A placeholder outside quotes in a JSON-shaped `body:` template (`"mrn": {{PID-3.1}}`): a JSON
 * value of its own, so the body stays JSON. A value read from the JSON keeps its type (a number
 * stays a number); HL7 text becomes a JSON string; missing is null.
 */
export function templateJsonValue(value: unknown): string {
  return value === undefined ? 'null' : JSON.stringify(value);
}

/**
 * A value inside a JSON-shaped `body:` template: escaped as inside a JSON string, so a `"` or a
 * `\` in a field ends nothing (a family name `Smith","mrn":"E666` stays a family name).
 */
export function templateJsonText(value: unknown): string {
  return JSON.stringify(templateText(value)).slice(1, -1);
}

/**
 * Whether a `body:` template writes JSON: with every placeholder standing for 0 (a number
 * outside quotes, text inside them) it parses as JSON. Its placeholders are then escaped for JSON.
 */
export function isJsonTemplate(template: string): boolean {
  // Placeholders first: a template that is one placeholder, `{{PID-5.1}}`, is text, not an object.
  const filled = template.replace(/\{\{[^{}]*\}\}/g, '0');
  if (!/^\s*[{[]/.test(filled)) return false;
  try {
    JSON.parse(filled);
    return true;
  } catch {
    return false;
  }
}

/** The JSON a template's `{{$.a.b}}` reads: the channel's mapped output when it maps, else the JSON it received. */
export function templateJson(output: unknown, input: unknown): unknown {
  return output !== null && typeof output === 'object' ? output : input;
}

/** A mapped value as an SQL parameter: missing and empty text are NULL, objects and arrays JSON text. */
export function sqlValue(value: unknown): unknown {
  if (value === undefined || value === null || value === '') return null;
  if (typeof value === 'object') return JSON.stringify(value);
  return value;
}

/** Addresses as nodemailer takes them: a list, or comma-separated text split into one. */
export function addressList(value: string | string[]): string[] {
  return (Array.isArray(value) ? value : value.split(',')).map((a) => a.trim()).filter(Boolean);
}

/** A JSON value read as text for a transform or lookup: missing as null, objects as JSON text. */
export function jsonScalar(value: unknown): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

/** A value only when given: missing, null and empty text are undefined (the builder then keeps what it wrote). */
export function whenGiven(value: unknown): unknown {
  return value === null || value === '' ? undefined : value;
}
