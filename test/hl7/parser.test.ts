import { describe, expect, test } from 'vitest';
import { Hl7ParseError, parseBatch, parseMessage } from '../../runtime/index.js';
import { corpusFile } from '../corpus.js';

const ADT = [
  'MSH|^~\\&|ADT1|GOOD HEALTH|HL7C|APP|20261125120000||ADT^A01^ADT_A01|MSG00001|P|2.5.1',
  'EVN|A01|20261125120000',
  'PID|1||12345^^^HOSP^MR~987-65-4321^^^SSA^SS||DOE^JANE^Q||19800101|F|||1 MAIN ST^^TOWN^CA^90000||""|',
  'PV1|1|I|W^101^1||||1234^WELBY^MARCUS|||||||||||V100^^^HOSP^VN',
  'ZPI|1|custom^value',
  '',
].join('\r');

function errorOf(fn: () => unknown): Hl7ParseError {
  try {
    fn();
  } catch (err) {
    if (err instanceof Hl7ParseError) return err;
    throw err;
  }
  throw new Error('expected an Hl7ParseError');
}

describe('delimiters from MSH-1 and MSH-2', () => {
  test('MSH numbering: MSH-1 is the field separator, MSH-2 the encoding characters', () => {
    const m = parseMessage(ADT);
    expect(m.get('MSH-1')).toBe('|');
    expect(m.get('MSH-2')).toBe('^~\\&');
    expect(m.get('MSH-3')).toBe('ADT1');
    expect(m.get('MSH-9.2')).toBe('A01');
    expect(m.controlId).toBe('MSG00001');
    expect(m.type).toEqual({ code: 'ADT', trigger: 'A01', structure: 'ADT_A01' });
  });

  test('a field separator other than |, and custom encoding characters', () => {
    const m = parseMessage(corpusFile('edge/hl7apy-msh-only-custom-field-sep.hl7'));
    expect(m.delimiters).toEqual({ field: '!', component: '$', repetition: 'r', escape: '?', subcomponent: '@' });
    expect(m.get('MSH-3')).toBe('LIP');
    expect(m.get('MSH-10')).toBe('430102');
    const underscore = parseMessage(corpusFile('edge/medplum-ack-underscore-field-sep.hl7'));
    expect(underscore.get('MSA-1')).toBe('AA');
    expect(underscore.get('MSA-3')).toBe('Everything was okay dokay!');
  });

  test('v2.7 truncation character is a delimiter, not data', () => {
    const m = parseMessage(corpusFile('edge/hl7apy-rsp-k22-v27-truncation-char.hl7'));
    expect(m.delimiters.truncation).toBe('#');
    expect(m.get('MSH-2')).toBe('^~\\&#');
    expect(m.version).toBe('2.7');
    const t = parseMessage('MSH|^~\\&#|A|B|C|D|20260101||ADT^A01|1|P|2.7\rNTE|1||see \\P\\3 and #4\r');
    expect(t.get('NTE-3')).toBe('see #3 and #4');
  });

  test('a 3-character MSH-2 (no subcomponent separator) still parses', () => {
    const m = parseMessage(corpusFile('edge/hapi-bar-p01-msh2-three-chars.hl7'));
    expect(m.delimiters.escape).toBe('}');
    expect(m.delimiters.subcomponent).toBeUndefined();
    expect(m.get('PID-5.1')).toBe('CRESWELL');
  });

  test('messages one after another with different delimiters each get their own', () => {
    // The delimiters last read are reused when the next header starts the same way.
    const standard = 'MSH|^~\\&|A|B|C|D|20260101||ADT^A01|1|P|2.5\rPID|1||7^^^H&1.2&ISO||DOE^JANE\r';
    const withTruncation = 'MSH|^~\\&#|A|B|C|D|20260101||ADT^A01|2|P|2.7\rPID|1||8^^^H&1.2&ISO||DOE#^JO\r';
    const otherSeparator = 'MSH!^~\\&!A!B!C!D!20260101!!ADT^A01!3!P!2.5\rPID!1!!9^^^H&1.2&ISO!!DOE^JIM\r';
    for (let round = 0; round < 2; round++) {
      const a = parseMessage(Buffer.from(standard));
      expect(a.delimiters.truncation).toBeUndefined();
      expect(a.get('PID-3.4.2')).toBe('1.2');
      const b = parseMessage(Buffer.from(withTruncation));
      expect(b.delimiters.truncation).toBe('#');
      expect(b.get('PID-5.1')).toBe('DOE#');
      const c = parseMessage(Buffer.from(otherSeparator));
      expect(c.delimiters.field).toBe('!');
      expect(c.get('PID-5.2')).toBe('JIM');
    }
    const again = parseMessage(Buffer.from(standard)).delimiters;
    expect(parseMessage(Buffer.from(standard)).delimiters).toBe(again);
    expect(Object.isFrozen(again)).toBe(true);
    expect(() => parseMessage('MSH|^~\\&\r')).toThrow(Hl7ParseError);
  });

  test('a non-standard subcomponent separator is honoured', () => {
    const m = parseMessage(corpusFile('edge/hapi-bar-p01-subcomponent-brace.hl7'));
    expect(m.delimiters.subcomponent).toBe('}');
  });
});

describe('structure', () => {
  const m = parseMessage(ADT);

  test('fields, repetitions, components, subcomponents', () => {
    expect(m.get('PID-3')).toBe('12345^^^HOSP^MR~987-65-4321^^^SSA^SS');
    expect(m.get('PID-3[2]')).toBe('987-65-4321^^^SSA^SS');
    expect(m.get('PID-3[2].1')).toBe('987-65-4321');
    expect(m.get('PID-3[2].5')).toBe('SS');
    expect(m.get('PID-3.4')).toBe('HOSP');
    expect(m.get('PID-3[3].1')).toBe('');
    expect(m.repetitions('PID-3')).toHaveLength(2);
    const hd = parseMessage('MSH|^~\\&|A|B|C|D|1||ADT^A01|1|P|2.5\rPID|1||12345^^^MIE&1.2.840.114398.1.100&ISO^MR\r');
    expect(hd.get('PID-3.4.2')).toBe('1.2.840.114398.1.100');
    expect(hd.get('PID-3.4')).toBe('MIE&1.2.840.114398.1.100&ISO');
  });

  test('the null value "" is distinct from empty and missing', () => {
    expect(m.get('PID-13')).toBeNull();
    expect(m.get('PID-14')).toBe('');
    expect(m.get('PID-40')).toBe('');
    const nulls = parseMessage(corpusFile('edge/hapi-bar-p01-null-values.hl7'));
    expect(nulls.get('PID-7')).toBeNull();
  });

  test('Z-segments are ordinary segments', () => {
    expect(m.get('ZPI-2.2')).toBe('value');
    expect(m.segmentsNamed('ZPI')).toHaveLength(1);
  });

  test('trailing delimiters are kept', () => {
    const text = 'MSH|^~\\&|A|B|C|D|1||ADT^A01|1|P|2.5|||\rPID|1||X^^^|||\r';
    const t = parseMessage(text);
    expect(t.toString()).toBe(text);
    expect(t.segment('PID')!.fieldCount).toBe(6);
  });

  test('segment occurrences: OBX[3]-5', () => {
    const oru = parseMessage(corpusFile('oru/prime-oru-newborn-screening-150obx.hl7'));
    const obx = oru.segmentsNamed('OBX');
    expect(obx.length).toBeGreaterThan(100);
    expect(oru.get('OBX[3]-1')).toBe(obx[2]!.field(1));
    expect(oru.get('OBX[200]-5')).toBe('');
  });

  test('CR, LF and CRLF segment terminators are accepted; output uses CR', () => {
    for (const eol of ['\n', '\r\n', '\r']) {
      const t = parseMessage(ADT.replace(/\r/g, eol));
      expect(t.get('PID-5.1')).toBe('DOE');
      expect(t.toString()).toBe(ADT);
    }
  });

  test('blank lines are kept for the round trip but are not segments', () => {
    const m2 = parseMessage(corpusFile('edge/efferent-adt-o01-blank-line.hl7'));
    expect(m2.segments.some((s) => s.isBlank)).toBe(true);
    expect(m2.segmentsNamed('PV1')).toHaveLength(1);
  });
});

describe('escape sequences', () => {
  const msg = (value: string) => parseMessage(`MSH|^~\\&|A|B|C|D|1||ORU^R01|1|P|2.5\rOBX|1|TX|||${value}\r`);

  test.each([
    ['\\F\\', '|'],
    ['\\S\\', '^'],
    ['\\T\\', '&'],
    ['\\R\\', '~'],
    ['\\E\\', '\\'],
    ['a\\X0D\\\\X0A\\b', 'a\r\nb'],
    ['\\XC2B5\\g', 'µg'],
    ['line1\\.br\\line2', 'line1\nline2'],
    ['\\H\\bold\\N\\', '\\H\\bold\\N\\'],
    ['\\C2D41\\caf\\M2442\\', '\\C2D41\\caf\\M2442\\'],
    ['\\.sp 2\\x\\.in +4\\', '\\.sp 2\\x\\.in +4\\'],
    ['\\Zlocal\\', '\\Zlocal\\'],
    ['unterminated \\F', 'unterminated \\F'],
  ])('%s decodes to %j', (encoded, decoded) => {
    expect(msg(encoded).get('OBX-5')).toBe(decoded);
  });

  test('decoded values encode back on write; formatting escapes pass through unchanged', () => {
    const m = msg('');
    for (const value of ['a|b^c&d~e\\f', 'x\\H\\y\\N\\', 'one\ntwo', '\\C2D41\\']) {
      m.set('OBX-5', value);
      expect(m.get('OBX-5')).toBe(value.replace(/\r\n|\r/g, '\n'));
    }
    m.set('OBX-5', 'a|b^c&d~e\\f');
    expect(m.getRaw('OBX-5')).toBe('a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f');
    m.set('OBX-5', 'one\r\ntwo');
    expect(m.getRaw('OBX-5')).toBe('one\\.br\\two');
  });

  test('escapes use the escape character the message declares', () => {
    const m = parseMessage(corpusFile('edge/hl7apy-msh-only-custom-field-sep.hl7'));
    m.set('MSH-8', 'a$b!c');
    expect(m.getRaw('MSH-8')).toBe('a?S?b?F?c');
    expect(m.get('MSH-8')).toBe('a$b!c');
  });

  test('\\S\\ in MSH-5 and \\R\\ in free text from the corpus', () => {
    expect(parseMessage(corpusFile('edge/hamaluik-adt-a08-msh5-escape-s.hl7')).get('MSH-5')).toBe('Isaac^2');
    expect(parseMessage(corpusFile('edge/lfh-custom-pat-repetition-escape.hl7')).getText('AL1[1]-5')).not.toContain('\\R\\');
  });
});

describe('batches', () => {
  test.each([
    ['batch/pyhl7-fhs-bhs-bts-fts.hl7', ['FHS', 'BHS', 'BTS', 'FTS']],
    ['batch/pyhl7-fhs-two-batches.hl7', ['FHS', 'BHS', 'BTS', 'BHS', 'BTS', 'FTS']],
    ['batch/pyhl7-fhs-fts-no-bhs.hl7', ['FHS', 'FTS']],
    ['batch/pyhl7-two-msgs-no-headers.hl7', []],
  ])('%s splits into messages inside %j', (file, envelope) => {
    const batch = parseBatch(corpusFile(file));
    expect(batch.envelope.filter((s) => !s.isBlank).map((s) => s.name)).toEqual(envelope);
    expect(batch.messages.length).toBeGreaterThanOrEqual(1);
    for (const m of batch.messages) expect(m.header.name).toBe('MSH');
  });

  test('a 20-message batch whose BTS count is wrong is read leniently', () => {
    const batch = parseBatch(corpusFile('batch/prime-fhs-bhs-20-oru-83kb.hl7'));
    expect(batch.messages).toHaveLength(20);
    expect(new Set(batch.messages.map((m) => m.controlId)).size).toBe(20);
  });

  test('parseMessage points batches to parseBatch', () => {
    expect(errorOf(() => parseMessage(corpusFile('batch/pyhl7-fhs-bhs-bts-fts.hl7'))).code).toBe('BAD_BATCH');
    expect(errorOf(() => parseMessage(corpusFile('batch/pyhl7-two-msgs-no-headers.hl7'))).code).toBe('BAD_BATCH');
  });
});

describe('malformed input gives a typed, located error', () => {
  test.each([
    ['', 'EMPTY', undefined, undefined],
    ['\r\r', 'EMPTY', undefined, undefined],
    ['PID|1||123\r', 'NO_MSH', 1, undefined],
    ['MSH|^~\\&|SEND', 'TRUNCATED', 1, 4],
    ['MSH|^|A|B\r', 'TRUNCATED', 1, 2],
    ['MSH|^^\\&|A|B|C|D|1||ADT^A01|1|P|2.5\r', 'BAD_ENCODING_CHARACTERS', 1, 2],
    ['MSH|^~ &|A|B|C|D|1||ADT^A01|1|P|2.5\r', 'BAD_ENCODING_CHARACTERS', 1, 2],
    ['MSH|^~\\&|A|B|C|D|1||ADT^A01|1|P|2.5\rPID|1||12\x0034\r', 'BINARY_CONTENT', 2, 3],
    ['MSH|^~\\&|A|B|C|D|1||ADT^A01|1|P|2.5\rPID|1\rSCT^871810001^SCT\r', 'BAD_SEGMENT_NAME', 3, undefined],
    ['MSH|^~\\&|A|B|C|D|1||ADT^A01|1|P|2.5\rpid|1\r', 'BAD_SEGMENT_NAME', 2, undefined],
  ])('%j → %s at segment %s field %s', (input, code, segmentIndex, field) => {
    const err = errorOf(() => parseMessage(input));
    expect(err.code).toBe(code);
    expect(err.location.segmentIndex).toBe(segmentIndex);
    expect(err.location.field).toBe(field);
  });

  test('random garbage and truncations never crash or hang', () => {
    let seed = 42;
    const random = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x7fffffff;
    };
    const base = Buffer.from(ADT);
    let parsed = 0;
    let rejected = 0;
    for (let i = 0; i < 3000; i++) {
      const kind = i % 3;
      let input: Buffer;
      if (kind === 0) input = base.subarray(0, Math.floor(random() * base.length));
      else if (kind === 1) input = Buffer.from(Array.from({ length: Math.floor(random() * 300) }, () => Math.floor(random() * 256)));
      else {
        input = Buffer.from(base);
        for (let k = 0; k < 5; k++) input[Math.floor(random() * input.length)] = Math.floor(random() * 256);
      }
      try {
        const m = parseMessage(input);
        m.toBytes();
        parsed++;
      } catch (err) {
        expect(err).toBeInstanceOf(Hl7ParseError);
        rejected++;
      }
    }
    expect(parsed).toBeGreaterThan(0);
    expect(rejected).toBeGreaterThan(0);
  });
});
