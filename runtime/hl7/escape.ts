import type { Delimiters } from './delimiters.js';
import { Hl7EditError } from './errors.js';

/**
 * Escape sequences that carry formatting or character-set switches. They are kept as text in
 * decoded values (always written with a backslash, whatever the message's escape character)
 * and written back unchanged, so copying a value between messages never mangles them.
 */
const PRESERVED_SEQUENCE = /^(?:H|N|\.sp(?: ?[+-]?\d+)?|\.fi|\.nf|\.in ?[+-]?\d+|\.ti ?[+-]?\d+|\.sk ?[+-]?\d+|\.ce|C[0-9A-Fa-f]{4}|M[0-9A-Fa-f]{4}(?:[0-9A-Fa-f]{2})?|Z[^\\]*)$/;

const HEX_SEQUENCE = /^X((?:[0-9A-Fa-f]{2})+)$/;

/** Decodes HL7 escape sequences in one leaf value (field, component or subcomponent). */
export function unescapeValue(text: string, d: Delimiters): string {
  const esc = d.escape;
  if (esc === undefined) return text;
  let start = text.indexOf(esc);
  if (start === -1) return text;
  let out = '';
  let copied = 0;
  while (start !== -1) {
    const end = text.indexOf(esc, start + 1);
    if (end === -1) break; // an unterminated escape is literal text
    const body = text.slice(start + 1, end);
    const decoded = decodeSequence(body, d);
    if (decoded === undefined) {
      // Not a sequence we know: keep the escape character and move on one character, so
      // that the closing character can still open the next sequence.
      start = text.indexOf(esc, start + 1);
      continue;
    }
    out += text.slice(copied, start) + decoded;
    copied = end + 1;
    start = text.indexOf(esc, copied);
  }
  return out + text.slice(copied);
}

function decodeSequence(body: string, d: Delimiters): string | undefined {
  switch (body) {
    case 'F':
      return d.field;
    case 'S':
      return d.component;
    case 'T':
      return d.subcomponent ?? '&';
    case 'R':
      return d.repetition;
    case 'E':
      return d.escape;
    case 'P':
      return d.truncation ?? '#';
    case '.br':
      return '\n';
    case '':
      return undefined;
  }
  const hex = HEX_SEQUENCE.exec(body);
  if (hex) return decodeHexBytes(hex[1]!);
  if (PRESERVED_SEQUENCE.test(body)) return `\\${body}\\`;
  return undefined;
}

function decodeHexBytes(hex: string): string {
  const bytes = Buffer.from(hex, 'hex');
  // \X..\ carries bytes in the message's character set; UTF-8 when they form it, else Latin-1.
  return bytes.toString(isUtf8Bytes(bytes) ? 'utf8' : 'latin1');
}

function isUtf8Bytes(bytes: Buffer): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return true;
  } catch {
    return false;
  }
}

/** Characters that need escaping, by delimiter set; built once per distinct set. */
const specialCache = new Map<string, RegExp>();

let lastDelimiters: Delimiters | null = null;
let lastSpecials: RegExp | null = null;

function specialsFor(d: Delimiters): RegExp {
  // Messages usually share one delimiters object (see readDelimiters): skip building the key.
  if (d === lastDelimiters) return lastSpecials!;
  const key = d.field + d.component + d.repetition + (d.escape ?? '') + (d.subcomponent ?? '') + (d.truncation ?? '');
  let re = specialCache.get(key);
  if (!re) {
    const chars = [d.field, d.component, d.repetition, d.escape, d.subcomponent, d.truncation, '\\']
      .filter((c): c is string => c !== undefined)
      .map((c) => c.replace(/[\\\]^-]/g, '\\$&'));
    // Control characters too (CR and LF among them): see CONTROL.
    re = new RegExp(`[${chars.join('')}\\x00-\\x08\\x0a-\\x1f\\x7f]`);
    specialCache.set(key, re);
  }
  lastDelimiters = d;
  lastSpecials = re;
  return re;
}

/**
 * C0 control characters other than tab, CR and LF, and DEL. Written raw they break the message
 * on the wire (0x0B starts and 0x1C ends an MLLP frame, a NUL ends C strings at the receiver), so
 * they go out as HL7 hexadecimal data, `\X1C\`, which decodes back to the same character. CR and
 * LF are a line break, `\.br\`: never a segment end. A tab is ordinary text.
 */
const CONTROL = /[\x00-\x08\x0b-\x0c\x0e-\x1f\x7f]/;

/** Encodes a decoded leaf value for writing into a message with these delimiters. */
export function escapeValue(value: string, d: Delimiters): string {
  if (value === '' || !specialsFor(d).test(value)) return value;
  const esc = d.escape;
  if (esc === undefined) {
    throw new Hl7EditError(
      `cannot write "${value}": the message declares no escape character in MSH-2, so delimiters cannot be escaped`,
    );
  }
  let out = '';
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (c === '\\') {
      const end = value.indexOf('\\', i + 1);
      if (end !== -1 && PRESERVED_SEQUENCE.test(value.slice(i + 1, end))) {
        out += esc + value.slice(i + 1, end) + esc;
        i = end;
        continue;
      }
    }
    if (c === '\r' || c === '\n') {
      if (c === '\r' && value[i + 1] === '\n') i++;
      out += `${esc}.br${esc}`;
    } else if (CONTROL.test(c)) {
      out += `${esc}X${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}${esc}`;
    } else if (c === d.field) out += `${esc}F${esc}`;
    else if (c === d.component) out += `${esc}S${esc}`;
    else if (c === d.repetition) out += `${esc}R${esc}`;
    else if (c === esc) out += `${esc}E${esc}`;
    else if (c === d.subcomponent) out += `${esc}T${esc}`;
    else if (c === d.truncation) out += `${esc}P${esc}`;
    else out += c;
  }
  return out;
}
