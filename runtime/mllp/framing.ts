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
  /**
   * A partial frame could not grow because the shared budget of buffered bytes (across
   * connections) is spent; the decoder dropped what it held and reads nothing more.
   */
  overBudget?(wanted: number): void;
}

/** First bytes of an oversize frame kept to answer (and store) it: enough for any MSH. */
export const HEAD_BYTES = 4096;

/**
 * Bytes held by the partial frames of many decoders (all connections of a listener), so that
 * many slow senders together cannot take more memory than this.
 */
export class BufferBudget {
  private held = 0;
  constructor(readonly limit: number) {}

  get used(): number {
    return this.held;
  }

  take(bytes: number): boolean {
    if (this.held + bytes > this.limit) return false;
    this.held += bytes;
    return true;
  }

  give(bytes: number): void {
    this.held = Math.max(0, this.held - bytes);
  }
}

/**
 * Turns a TCP byte stream into MLLP payloads. Frames may be split across reads or several may
 * share one read. A frame ends at <EB>; the <CR> after it is consumed when present (some senders
 * omit it). Memory stays bounded by maxMessageBytes: an oversize frame is skipped to its end.
 *
 * A frame that arrives whole in one read is handed on as a view of that read. A partial frame
 * is copied into one buffer of the decoder's own, grown by doubling: keeping the reads
 * themselves would pin a socket read buffer per dripped byte (each read is its own
 * allocation), which is how 3.7 MB dripped over 100 connections once held 1.1 GB.
 */
export class MllpDecoder {
  /** The partial frame; only bytes [0, size) are data. */
  private buffer: Buffer | null = null;
  private size = 0;
  private inFrame = false;
  private skipping = false;
  private skipped = 0;
  private head: Buffer | null = null;
  private expectCr = false;
  private spent = false;

  constructor(
    private readonly events: FrameEvents,
    private readonly maxMessageBytes = DEFAULT_MAX_MESSAGE_BYTES,
    private readonly budget?: BufferBudget,
  ) {}

  /** True while a frame has started but not ended (for idle and close diagnostics). */
  get pending(): boolean {
    return this.inFrame;
  }

  /** Payload bytes of the partial frame held now. */
  get bufferedBytes(): number {
    return this.size + (this.head?.length ?? 0);
  }

  /** Memory the decoder holds for them (its buffer's capacity): at most about twice bufferedBytes. */
  get retainedBytes(): number {
    return (this.buffer?.length ?? 0) + (this.head?.length ?? 0);
  }

  /** Drops any partial frame and returns its memory to the budget (the connection closed). */
  release(): void {
    this.drop();
    this.inFrame = false;
    this.skipping = false;
    this.skipped = 0;
    this.head = null;
  }

  push(chunk: Buffer): void {
    if (this.spent) return;
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
        // The frame in progress is cut off by a new one: report what was held, then start afresh.
        if (this.skipping) this.skipped += restart - i;
        const partial = this.skipping ? null : this.take(chunk, i, restart);
        if (partial) this.events.truncated(partial);
        else {
          this.events.truncated(this.head ?? Buffer.alloc(0));
          this.endSkip();
        }
        i = restart + 1;
        this.inFrame = true;
        continue;
      }
      if (end === -1) {
        this.append(chunk, i, n);
        return;
      }
      this.inFrame = false;
      if (this.skipping) {
        this.skipped += end - i;
        this.finishOversize();
      } else {
        const payload = this.take(chunk, i, end);
        if (payload) this.events.frame(payload);
        else this.finishOversize();
      }
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

  /** Keeps chunk[from, to) as part of the frame in progress. */
  private append(chunk: Buffer, from: number, to: number): void {
    if (to <= from) return;
    const length = to - from;
    if (this.skipping) {
      this.skipped += length;
      return;
    }
    if (this.size + length > this.maxMessageBytes) {
      this.startSkip(chunk.subarray(from, to));
      return;
    }
    const needed = this.size + length;
    if (!this.buffer || this.buffer.length < needed) {
      const capacity = Math.min(this.maxMessageBytes, Math.max(needed, 256, (this.buffer?.length ?? 0) * 2));
      const grown = capacity - (this.buffer?.length ?? 0);
      if (this.budget && !this.budget.take(grown)) {
        this.spent = true;
        this.release();
        this.events.overBudget?.(grown);
        return;
      }
      const next = Buffer.allocUnsafe(capacity);
      if (this.buffer) this.buffer.copy(next, 0, 0, this.size);
      this.buffer = next;
    }
    chunk.copy(this.buffer, this.size, from, to);
    this.size = needed;
  }

  /**
   * The frame ending at chunk[to]: the held bytes plus chunk[from, to), or null when that is
   * over the limit (the decoder is then skipping it, with its head kept). A frame read whole
   * is a view of the read; a held one is handed over with its buffer and the decoder starts afresh.
   */
  private take(chunk: Buffer, from: number, to: number): Buffer | null {
    const length = to - from;
    if (this.size + length > this.maxMessageBytes) {
      this.startSkip(chunk.subarray(from, to));
      return null;
    }
    if (!this.buffer) return chunk.subarray(from, to);
    let target = this.buffer;
    // The last piece needs no room from the budget: the frame leaves the decoder at once.
    if (target.length < this.size + length) {
      target = Buffer.allocUnsafe(this.size + length);
      this.buffer.copy(target, 0, 0, this.size);
    }
    chunk.copy(target, this.size, from, to);
    const payload = target.subarray(0, this.size + length);
    this.drop();
    return payload;
  }

  private drop(): void {
    if (this.buffer) this.budget?.give(this.buffer.length);
    this.buffer = null;
    this.size = 0;
  }

  private startSkip(piece: Buffer): void {
    const held = this.buffer ? this.buffer.subarray(0, this.size) : Buffer.alloc(0);
    const all = Buffer.concat([held.subarray(0, HEAD_BYTES), piece.subarray(0, HEAD_BYTES)]);
    this.head = Buffer.from(all.subarray(0, HEAD_BYTES));
    this.skipped = this.size + piece.length;
    this.drop();
    this.skipping = true;
  }

  private endSkip(): void {
    this.skipping = false;
    this.skipped = 0;
    this.head = null;
  }

  private finishOversize(): void {
    const head = this.head ?? Buffer.alloc(0);
    const size = this.skipped;
    this.endSkip();
    this.events.oversize(head, size);
  }
}
