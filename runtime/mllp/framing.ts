/** MLLP release 1 framing: <SB> payload <EB><CR>. */
export const START_BLOCK = 0x0b;
export const END_BLOCK = 0x1c;
export const CARRIAGE_RETURN = 0x0d;

export const DEFAULT_MAX_MESSAGE_BYTES = 10 * 1024 * 1024;

const utf8 = new TextEncoder();

/** Wraps a payload in an MLLP frame (text is written as UTF-8, in place). */
export function frame(payload: Uint8Array | string): Buffer {
  if (typeof payload === 'string') {
    // Most messages are ASCII, so one byte per character is tried first: a single pass
    // instead of measuring the UTF-8 length and then writing it.
    const guess = Buffer.allocUnsafe(payload.length + 3);
    if (utf8.encodeInto(payload, guess.subarray(1, payload.length + 1)).read === payload.length) {
      guess[0] = START_BLOCK;
      guess[payload.length + 1] = END_BLOCK;
      guess[payload.length + 2] = CARRIAGE_RETURN;
      return guess;
    }
    const length = Buffer.byteLength(payload, 'utf8');
    const out = Buffer.allocUnsafe(length + 3);
    out[0] = START_BLOCK;
    out.write(payload, 1, 'utf8');
    out[length + 1] = END_BLOCK;
    out[length + 2] = CARRIAGE_RETURN;
    return out;
  }
  const body = payload;
  const out = Buffer.allocUnsafe(body.length + 3);
  out[0] = START_BLOCK;
  out.set(body, 1);
  out[body.length + 1] = END_BLOCK;
  out[body.length + 2] = CARRIAGE_RETURN;
  return out;
}

export interface FrameEvents {
  frame(payload: Buffer): void;
  /** Bytes that arrived outside any frame and were dropped. */
  discarded(count: number): void;
  /** A frame grew past the limit; `head` holds its first bytes so the sender can still be answered. */
  oversize(head: Buffer, size: number): void;
  /** A new start block arrived before the end of the frame in progress, which was dropped. */
  truncated(partial: Buffer): void;
}

const HEAD_BYTES = 4096;

/**
 * Turns a TCP byte stream into MLLP payloads. Frames may be split across reads or several may
 * share one read. A frame ends at <EB>; the <CR> after it is consumed when present (some senders
 * omit it). Memory stays bounded by maxMessageBytes: an oversize frame is skipped to its end.
 */
export class MllpDecoder {
  private parts: Buffer[] = [];
  private size = 0;
  private inFrame = false;
  private skipping = false;
  private skipped = 0;
  private head: Buffer | null = null;
  private expectCr = false;

  constructor(
    private readonly events: FrameEvents,
    private readonly maxMessageBytes = DEFAULT_MAX_MESSAGE_BYTES,
  ) {}

  /** True while a frame has started but not ended (for idle and close diagnostics). */
  get pending(): boolean {
    return this.inFrame;
  }

  push(chunk: Buffer): void {
    let i = 0;
    const n = chunk.length;
    if (this.expectCr && n > 0) {
      this.expectCr = false;
      if (chunk[0] === CARRIAGE_RETURN) i = 1;
    }
    while (i < n) {
      if (!this.inFrame) {
        const start = chunk.indexOf(START_BLOCK, i);
        if (start === -1) {
          this.discard(chunk, i, n);
          return;
        }
        if (start > i) this.discard(chunk, i, start);
        this.inFrame = true;
        i = start + 1;
        continue;
      }
      const end = chunk.indexOf(END_BLOCK, i);
      const restart = chunk.indexOf(START_BLOCK, i);
      if (restart !== -1 && (end === -1 || restart < end)) {
        this.append(chunk, i, restart);
        this.events.truncated(this.take());
        i = restart + 1;
        this.inFrame = true;
        continue;
      }
      if (end === -1) {
        this.append(chunk, i, n);
        return;
      }
      this.append(chunk, i, end);
      this.inFrame = false;
      this.finishFrame();
      i = end + 1;
      if (i < n) {
        if (chunk[i] === CARRIAGE_RETURN) i++;
      } else {
        this.expectCr = true;
      }
    }
  }

  private discard(chunk: Buffer, from: number, to: number): void {
    let count = 0;
    for (let k = from; k < to; k++) {
      const b = chunk[k]!;
      // Line ends and spaces between frames are common keep-alive noise, not worth reporting.
      if (b !== CARRIAGE_RETURN && b !== 0x0a && b !== 0x20) count++;
    }
    if (count > 0) this.events.discarded(count);
  }

  private append(chunk: Buffer, from: number, to: number): void {
    if (to <= from) return;
    if (this.skipping) {
      this.skipped += to - from;
      return;
    }
    const piece = chunk.subarray(from, to);
    if (this.size + piece.length > this.maxMessageBytes) {
      const all = Buffer.concat([...this.parts, piece]);
      this.head = all.subarray(0, HEAD_BYTES);
      this.skipped = this.size + piece.length;
      this.parts = [];
      this.size = 0;
      this.skipping = true;
      return;
    }
    // Node hands each read a buffer of its own, so a view is safe to keep.
    this.parts.push(piece);
    this.size += piece.length;
  }

  private finishFrame(): void {
    if (this.skipping) {
      const head = this.head ?? Buffer.alloc(0);
      const size = this.skipped;
      this.skipping = false;
      this.skipped = 0;
      this.head = null;
      this.events.oversize(head, size);
      return;
    }
    this.events.frame(this.take());
  }

  private take(): Buffer {
    const payload = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.size);
    this.parts = [];
    this.size = 0;
    return payload;
  }
}
