import { isUtf8 } from 'node:buffer';

/**
 * How a message's bytes become text and back. `declared` is MSH-18's first repetition as
 * written (empty when absent); `encoding` is what was actually used, which differs when the
 * bytes do not fit the declaration: then Latin-1 is used because it maps every byte to one
 * character and back, so nothing is lost and the round trip stays byte-exact.
 */
export interface Charset {
  declared: string;
  encoding: TextEncodingName;
  /** Set when the bytes did not match MSH-18, e.g. "declared UNICODE UTF-8 but bytes are not UTF-8". */
  mismatch?: string;
}

export type TextEncodingName =
  | 'utf-8'
  | 'latin1'
  | 'iso-8859-2'
  | 'iso-8859-3'
  | 'iso-8859-4'
  | 'iso-8859-5'
  | 'iso-8859-6'
  | 'iso-8859-7'
  | 'iso-8859-8'
  | 'iso-8859-9'
  | 'iso-8859-15';

/** HL7 table 0211 codes we read and write. Codes are compared without case and spaces. */
const TABLE_0211: Record<string, TextEncodingName> = {
  '': 'utf-8',
  ASCII: 'utf-8',
  ISOIR6: 'utf-8',
  UNICODEUTF8: 'utf-8',
  UTF8: 'utf-8',
  '8859/1': 'latin1',
  ISOIR100: 'latin1',
  '8859/2': 'iso-8859-2',
  '8859/3': 'iso-8859-3',
  '8859/4': 'iso-8859-4',
  '8859/5': 'iso-8859-5',
  '8859/6': 'iso-8859-6',
  '8859/7': 'iso-8859-7',
  '8859/8': 'iso-8859-8',
  '8859/9': 'iso-8859-9',
  '8859/15': 'iso-8859-15',
};

export function encodingForDeclared(declared: string): TextEncodingName | undefined {
  if (declared === '') return 'utf-8';
  return TABLE_0211[declared.replace(/[\s-]/g, '').toUpperCase()];
}

/** The character set of a message whose bytes are all ASCII, which every supported set reads alike. */
export function charsetOfAscii(declared: string): Charset {
  const wanted = encodingForDeclared(declared);
  if (wanted !== undefined) return { declared, encoding: wanted };
  return { declared, encoding: 'utf-8', mismatch: unsupportedCharset(declared) };
}

function unsupportedCharset(declared: string): string {
  return `MSH-18 "${declared}" is not a supported character set; read as UTF-8`;
}

/** Decodes bytes per the declared MSH-18 value, never losing a byte. */
export function decodeBytes(bytes: Uint8Array, declared: string): { text: string; charset: Charset } {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const wanted = encodingForDeclared(declared);
  if (wanted === 'utf-8' || wanted === undefined) {
    if (isUtf8(buf)) {
      const charset: Charset = { declared, encoding: 'utf-8' };
      if (wanted === undefined) charset.mismatch = unsupportedCharset(declared);
      return { text: buf.toString('utf8'), charset };
    }
    return {
      text: buf.toString('latin1'),
      charset: {
        declared,
        encoding: 'latin1',
        mismatch: `MSH-18 "${declared || '(empty)'}" but the bytes are not valid UTF-8; read as 8859/1`,
      },
    };
  }
  if (wanted === 'latin1') return { text: buf.toString('latin1'), charset: { declared, encoding: 'latin1' } };
  return { text: new TextDecoder(wanted).decode(buf), charset: { declared, encoding: wanted } };
}

/**
 * The first character of `text` the message's character set cannot hold, or undefined. MSH-18
 * ASCII (or ISO IR6) holds only 0x00-0x7F; 8859/n its own table; UTF-8 (and an empty MSH-18, read
 * as UTF-8) everything. HL7 has no escape for such a character: `\Xhh\` carries bytes of the
 * message's own set, and MSH-18 names no alternate set to switch to with `\C..\`/`\M..\`.
 */
export function firstUnencodable(text: string, charset: Charset): string | undefined {
  if (ASCII_ONLY.test(text)) return undefined;
  const ascii = /^(ASCII|ISOIR6)$/.test(charset.declared.split('~')[0]!.replace(/[\s-]/g, '').toUpperCase());
  if (!ascii && charset.encoding === 'utf-8') return undefined;
  const table = ascii || charset.encoding === 'latin1' ? undefined : reverseTable(charset.encoding);
  for (const c of text) {
    const code = c.codePointAt(0)!;
    if (code < 0x80) continue;
    if (ascii || (table ? !table.has(c) : code > 0xff)) return c;
  }
  return undefined;
}

const ASCII_ONLY = /^[\x00-\x7f]*$/;

/** Encodes text in a character set; characters the set cannot hold become `?`. */
export function encodeText(text: string, encoding: TextEncodingName): Buffer {
  if (encoding === 'utf-8') return Buffer.from(text, 'utf8');
  if (encoding === 'latin1') {
    // Buffer's latin1 keeps only the low byte of wider characters; make that explicit.
    return Buffer.from(/[^\x00-\xff]/.test(text) ? text.replace(/[^\x00-\xff]/g, '?') : text, 'latin1');
  }
  const table = reverseTable(encoding);
  const out = Buffer.allocUnsafe(text.length);
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    out[i] = code < 0x80 ? code : table.get(text[i]!) ?? 0x3f;
  }
  return out;
}

const reverseTables = new Map<string, Map<string, number>>();

function reverseTable(encoding: TextEncodingName): Map<string, number> {
  let table = reverseTables.get(encoding);
  if (!table) {
    table = new Map();
    const decoder = new TextDecoder(encoding);
    for (let b = 0x80; b <= 0xff; b++) {
      const ch = decoder.decode(Uint8Array.of(b));
      if (ch !== '\ufffd') table.set(ch, b);
    }
    reverseTables.set(encoding, table);
  }
  return table;
}
