export type FrameEvent = { frame: string } | { truncated: string } | { oversize: number; head: string };

export interface Decoded {
  events: Array<FrameEvent & { whole?: string }>;
  /** Bytes outside frames that were reported (line ends and spaces between frames are not). */
  discarded: number;
}

/**
 * The simplest reading of MLLP, one byte at a time, to hold the real decoder to: outside a frame
 * everything up to <SB> is dropped; inside, <EB> ends the frame (the <CR> after it is noise like
 * any other between frames) and a new <SB> cuts the frame in progress off. A frame over the
 * limit is reported with its size (`whole` keeps all of it, to check the head the decoder kept).
 */
export function reference(stream: Buffer, max: number): Decoded {
  const events: Array<FrameEvent & { whole?: string }> = [];
  let discarded = 0;
  /** Index of the first byte of the frame in progress, -1 outside a frame. */
  let start = -1;
  for (let i = 0; i < stream.length; i++) {
    const b = stream[i]!;
    const whole = () => stream.toString('latin1', start, i);
    if (start === -1) {
      if (b === 0x0b) start = i + 1;
      else if (b !== 0x0d && b !== 0x0a && b !== 0x20) discarded++;
    } else if (b === 0x0b) {
      events.push({ truncated: whole(), whole: whole() });
      start = i + 1;
    } else if (b === 0x1c) {
      events.push(i - start > max ? { oversize: i - start, head: '', whole: whole() } : { frame: whole() });
      start = -1;
    }
  }
  return { events, discarded };
}

