import { describe, expect, test } from 'vitest';
import { Hl7ParseError, parseBatch, parseMessage } from '../../runtime/index.js';
import { corpusFiles } from '../corpus.js';

const wellFormed = corpusFiles((c) => c !== 'malformed');
const malformed = corpusFiles((c) => c === 'malformed');

describe('whole corpus round trip', () => {
  test('the corpus is there and large', () => {
    expect(wellFormed.length).toBeGreaterThanOrEqual(85);
  });

  test.each(wellFormed.map((f) => [`${f.category}/${f.name}`, f] as const))('%s: parseBatch then encode gives the same bytes', (_, f) => {
    const batch = parseBatch(f.bytes);
    expect(batch.messages.length).toBeGreaterThan(0);
    expect(batch.toBytes().equals(f.bytes)).toBe(true);
  });

  test.each(wellFormed.filter((f) => f.category !== 'batch').map((f) => [`${f.category}/${f.name}`, f] as const))(
    '%s: parseMessage then encode gives the same bytes, and a re-parse reads the same values',
    (_, f) => {
      const message = parseMessage(f.bytes);
      const bytes = message.toBytes();
      expect(bytes.equals(f.bytes)).toBe(true);
      const again = parseMessage(bytes);
      expect(again.controlId).toBe(message.controlId);
      expect(again.segments.map((s) => s.name)).toEqual(message.segments.map((s) => s.name));
    },
  );
});

describe('malformed corpus', () => {
  test.each(malformed.map((f) => [f.name, f] as const))('%s: parses or fails with a located Hl7ParseError, never anything else', (_, f) => {
    for (const parse of [parseMessage, parseBatch]) {
      try {
        parse(f.bytes);
      } catch (err) {
        expect(err).toBeInstanceOf(Hl7ParseError);
        expect((err as Hl7ParseError).location.segmentIndex).toBeGreaterThanOrEqual(1);
      }
    }
  });

  const expected: Array<[string, string, number, number | undefined]> = [
    ['hl7apy-msh-duplicate-encoding-chars.hl7', 'BAD_ENCODING_CHARACTERS', 1, 2],
    ['lfh-sample-unix-double-backslash.hl7', 'BAD_ENCODING_CHARACTERS', 1, 2],
    ['pyhl7-bad-batch-nested-bhs.hl7', 'BAD_BATCH', 4, undefined],
    ['pyhl7-bad-batch-no-msh.hl7', 'BAD_BATCH', 2, undefined],
    ['pyhl7-bad-file-nested-fhs.hl7', 'BAD_BATCH', 5, undefined],
  ];
  test.each(expected)('%s fails as %s at segment %i field %s', (name, code, segmentIndex, field) => {
    const f = malformed.find((m) => m.name === name)!;
    let error: Hl7ParseError | undefined;
    try {
      parseBatch(f.bytes);
    } catch (err) {
      error = err as Hl7ParseError;
    }
    expect(error).toBeInstanceOf(Hl7ParseError);
    expect(error!.code).toBe(code);
    expect(error!.location.segmentIndex).toBe(segmentIndex);
    expect(error!.location.field).toBe(field);
  });
});
