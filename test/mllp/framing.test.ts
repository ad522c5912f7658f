import { describe, expect, test } from 'vitest';
import { BufferBudget, frame, MllpDecoder } from '../../runtime/index.js';

function collect(max?: number) {
  const frames: string[] = [];
  const events: string[] = [];
  const decoder = new MllpDecoder(
    {
      frame: (p) => frames.push(p.toString()),
      discarded: (n) => events.push(`discarded ${n}`),
      truncated: (p) => events.push(`truncated ${p.toString()}`),
      oversize: (head, size) => events.push(`oversize ${size} ${head.toString().slice(0, 3)}`),
    },
    max,
  );
  return { frames, events, decoder };
}

describe('MLLP framing', () => {
  test('frame is <VT> payload <FS><CR>', () => {
    expect([...frame('MSH|x\r')]).toEqual([0x0b, ...Buffer.from('MSH|x\r'), 0x1c, 0x0d]);
    // Text is written as UTF-8, including a multi-byte character at the very end.
    for (const text of ['PID|1||MÜLLER^藤\r', 'PID|1||RENÉ', '\u{1F600}']) {
      expect(frame(text).equals(Buffer.concat([Buffer.of(0x0b), Buffer.from(text, 'utf8'), Buffer.of(0x1c, 0x0d)]))).toBe(true);
    }
  });

  test('a frame split at every byte boundary', () => {
    const data = frame('MSH|^~\\&|A\rPID|1\r');
    for (let cut = 1; cut < data.length; cut++) {
      const { frames, decoder } = collect();
      decoder.push(data.subarray(0, cut));
      decoder.push(data.subarray(cut));
      expect(frames).toEqual(['MSH|^~\\&|A\rPID|1\r']);
    }
  });

  test('one byte at a time, several frames', () => {
    const { frames, decoder } = collect();
    const data = Buffer.concat([frame('A\r'), frame('B\r'), frame('C\r')]);
    for (const b of data) decoder.push(Buffer.from([b]));
    expect(frames).toEqual(['A\r', 'B\r', 'C\r']);
  });

  test('several frames in one chunk, bytes outside frames dropped and reported', () => {
    const { frames, events, decoder } = collect();
    decoder.push(Buffer.concat([Buffer.from('noise'), frame('A\r'), Buffer.from('\r\n'), frame('B\r'), Buffer.from('xy')]));
    expect(frames).toEqual(['A\r', 'B\r']);
    expect(events).toEqual(['discarded 5', 'discarded 2']);
  });

  test('a missing CR after FS is tolerated', () => {
    const { frames, decoder } = collect();
    decoder.push(Buffer.from('\x0bA\r\x1c\x0bB\r\x1c\r'));
    expect(frames).toEqual(['A\r', 'B\r']);
  });

  test('a new start block inside a frame reports the partial frame', () => {
    const { frames, events, decoder } = collect();
    decoder.push(Buffer.from('\x0bPARTIAL'));
    decoder.push(frame('WHOLE\r'));
    expect(frames).toEqual(['WHOLE\r']);
    expect(events).toEqual(['truncated PARTIAL']);
  });

  test('an oversize frame is skipped to its end without buffering it, and the next frame is read', () => {
    const { frames, events, decoder } = collect(100);
    decoder.push(Buffer.from('\x0bMSH'));
    for (let i = 0; i < 1000; i++) decoder.push(Buffer.alloc(1000, 0x41));
    decoder.push(Buffer.from('\x1c\x0d'));
    decoder.push(frame('NEXT\r'));
    expect(events).toEqual([`oversize ${3 + 1000 * 1000} MSH`]);
    expect(frames).toEqual(['NEXT\r']);
  });
});

describe('partial frames held by the decoder (dripped bytes)', () => {
  const corpusLike = `MSH|^~\\&|EPIC|HOSP|HL7C|APP|20261125120000||ORU^R01^ORU_R01|DRIP-1|P|2.5.1\r${'OBX|1|TX|NOTE||'.padEnd(200, 'x')}\r`.repeat(5);

  test('a frame dripped one byte per read decodes to the same payload as the whole frame', () => {
    const whole = collect();
    whole.decoder.push(frame(corpusLike));
    const dripped = collect();
    for (const b of frame(corpusLike)) dripped.decoder.push(Buffer.from([b]));
    expect(dripped.frames).toEqual(whole.frames);
    expect(dripped.frames).toEqual([corpusLike]);
  });

  test('memory held for a dripped frame is proportional to its bytes, not to the number of reads', () => {
    const { decoder } = collect();
    const data = frame(corpusLike);
    // Each socket read is its own allocation (here 64 KiB, as a read buffer): a decoder that
    // kept views of the reads would pin one of them per dripped byte.
    for (let k = 0; k < data.length - 2; k++) {
      const read = Buffer.allocUnsafe(64 * 1024);
      read[0] = data[k]!;
      decoder.push(read.subarray(0, 1));
      const held = Math.max(0, k); // payload bytes after the start block
      expect(decoder.bufferedBytes).toBe(held);
      expect(decoder.retainedBytes).toBeLessThanOrEqual(Math.max(256, 2 * held));
    }
    expect(decoder.pending).toBe(true);
  });

  test('the bytes held across decoders are bounded by a shared budget; past it the decoder gives up and says so', () => {
    const budget = new BufferBudget(4096);
    const spent: number[] = [];
    const decoders = Array.from({ length: 4 }, () => new MllpDecoder({ frame: () => undefined, discarded: () => undefined, truncated: () => undefined, oversize: () => undefined, overBudget: (n) => spent.push(n) }, 1 << 20, budget));
    for (const d of decoders) d.push(Buffer.from('\x0b' + 'A'.repeat(1000)));
    expect(budget.used).toBeLessThanOrEqual(4096);
    expect(spent).toEqual([]);
    for (const d of decoders) d.push(Buffer.from('B'.repeat(1500)));
    expect(spent.length).toBeGreaterThan(0);
    expect(budget.used).toBeLessThanOrEqual(4096);
    // A decoder that gave up holds nothing; the others still decode.
    const gaveUp = decoders.filter((d) => d.retainedBytes === 0);
    expect(gaveUp).toHaveLength(spent.length);
    for (const d of decoders) d.release();
    expect(budget.used).toBe(0);
  });
});
