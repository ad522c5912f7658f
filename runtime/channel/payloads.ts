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
  if (!/^\s*[{[]/.test(template)) return false;
  try {
    JSON.parse(template.replace(/\{\{[^{}]*\}\}/g, '0'));
    return true;
  } catch {
    return false;
  }
}

/** The JSON a template's `{{$.a.b}}` reads: the channel's mapped output when it maps, else the JSON it received. */
export function templateJson(output: unknown, input: unknown): unknown {
  return output !== null && typeof output === 'object' ? output : input;
}
