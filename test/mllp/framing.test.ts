import { describe, expect, test } from 'vitest';
import { frame, MllpDecoder } from '../../runtime/index.js';

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
