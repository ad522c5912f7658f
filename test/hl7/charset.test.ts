import { describe, expect, test } from 'vitest';
import { parseMessage } from '../../runtime/index.js';
import { corpusFile } from '../corpus.js';

const withCharset = (msh18: string, body: string) =>
  `MSH|^~\\&|A|B|C|D|20260101||ADT^A01|1|P|2.5||||||${msh18}\rPID|1||1||${body}\r`;

describe('character sets (MSH-18)', () => {
  test('8859/1 bytes are decoded as Latin-1 and encoded back the same way', () => {
    const bytes = Buffer.from(withCharset('8859/1', 'MÜLLER^JOSÉ'), 'latin1');
    const m = parseMessage(bytes);
    expect(m.charset.encoding).toBe('latin1');
    expect(m.get('PID-5.2')).toBe('JOSÉ');
    expect(m.toBytes().equals(bytes)).toBe(true);
    m.set('PID-5.1', 'FRANÇOIS');
    expect(m.toBytes().includes(Buffer.from('FRANÇOIS', 'latin1'))).toBe(true);
  });

  test('UNICODE UTF-8 and an absent MSH-18 read UTF-8', () => {
    for (const msh18 of ['UNICODE UTF-8', '']) {
      const bytes = Buffer.from(withCharset(msh18, 'ŁÓDŹ^藤'), 'utf8');
      const m = parseMessage(bytes);
      expect(m.charset.encoding).toBe('utf-8');
      expect(m.get('PID-5.2')).toBe('藤');
      expect(m.toBytes().equals(bytes)).toBe(true);
    }
    expect(parseMessage(corpusFile('edge/medplum-qbp-q11-utf8-registered-sign.hl7')).get('MSH-3')).toContain('®');
  });

  test('ASCII declared but not ASCII: nothing is lost', () => {
    const [head, tail] = withCharset('ASCII', 'REN@E').split('@') as [string, string];
    const bytes = Buffer.concat([Buffer.from(head), Buffer.from([0xe9]), Buffer.from(tail)]);
    const m = parseMessage(bytes);
    expect(m.charset.mismatch).toMatch(/not valid UTF-8/);
    expect(m.toBytes().equals(bytes)).toBe(true);
  });

  test('8859/2 and 8859/15 encode back through their own tables', () => {
    for (const [msh18, enc, text] of [
      ['8859/2', 'iso-8859-2', 'ŁÓDŹ'],
      ['8859/15', 'iso-8859-15', 'PRIX€'],
    ] as const) {
      const src = withCharset(msh18, text);
      const bytes = Buffer.from(new Uint8Array([...src].map((c) => encodeChar(c, enc))));
      const m = parseMessage(bytes);
      expect(m.get('PID-5')).toBe(text);
      expect(m.toBytes().equals(bytes)).toBe(true);
    }
  });

  test('all-ASCII bytes keep the declared set for writing back, and flag one not supported', () => {
    // ASCII reads the same in every supported set, so these bytes skip decoding by MSH-18.
    const latin2 = parseMessage(Buffer.from(withCharset('8859/2', 'NOWAK^JAN')));
    expect(latin2.charset).toEqual({ declared: '8859/2', encoding: 'iso-8859-2' });
    latin2.set('PID-5.1', 'ŁÓDŹ');
    expect(latin2.toBytes().includes(Buffer.from([0xa3]))).toBe(true);
    const unknown = parseMessage(Buffer.from(withCharset('EBCDIC', 'NOWAK^JAN')));
    expect(unknown.charset.encoding).toBe('utf-8');
    expect(unknown.charset.mismatch).toMatch(/"EBCDIC" is not a supported character set/);
    const absent = parseMessage(Buffer.from(withCharset('', 'NOWAK^JAN')), { defaultCharset: '8859/1' });
    expect(absent.charset).toEqual({ declared: '8859/1', encoding: 'latin1' });
  });

  test('a mislabelled corpus file round-trips byte for byte', () => {
    const bytes = corpusFile('edge/prime-elims-msh18-8859-1-with-fffd.hl7');
    const m = parseMessage(bytes);
    expect(m.charset.declared).toBe('8859/1');
    expect(m.toBytes().equals(bytes)).toBe(true);
  });
});

function encodeChar(c: string, encoding: string): number {
  if (c.charCodeAt(0) < 0x80) return c.charCodeAt(0);
  const decoder = new TextDecoder(encoding);
  for (let b = 0x80; b <= 0xff; b++) if (decoder.decode(Uint8Array.of(b)) === c) return b;
  throw new Error(`${c} not in ${encoding}`);
}
