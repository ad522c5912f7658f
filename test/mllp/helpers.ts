import net from 'node:net';
import { acknowledge, frame, MllpDecoder, receive } from '../../runtime/index.js';
import type { MllpHandler } from '../../runtime/index.js';

/** A handler that answers AA to a readable message and the parser's AR to one that is not. */
export const ackingHandler: MllpHandler = (payload) => {
  const r = receive(payload);
  return r.ok ? acknowledge(r.message, 'accept') : r.reject;
};

/** A raw TCP peer that writes exactly the bytes it is given and collects the frames it gets back. */
export class RawPeer {
  readonly frames: Buffer[] = [];
  private waiters: Array<() => void> = [];
  closed = false;

  private constructor(readonly socket: net.Socket) {
    const decoder = new MllpDecoder({
      frame: (p) => {
        this.frames.push(p);
        this.waiters.splice(0).forEach((w) => w());
      },
      discarded: () => undefined,
      truncated: () => undefined,
      oversize: () => undefined,
    });
    socket.on('data', (c: Buffer) => decoder.push(c));
    // A peer refused or reset by the receiver: the test looks at `closed`, not at the error.
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closed = true;
      this.waiters.splice(0).forEach((w) => w());
    });
  }

  static connect(port: number, host = '127.0.0.1'): Promise<RawPeer> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port }, () => resolve(new RawPeer(socket)));
      socket.setNoDelay(true);
      socket.once('error', reject);
    });
  }

  /** Writes each chunk separately, waiting a little between them so they travel as separate TCP segments. */
  async write(...chunks: Buffer[]): Promise<void> {
    for (const chunk of chunks) {
      this.socket.write(chunk);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  async waitForFrames(count: number, timeoutMs = 5000): Promise<Buffer[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.frames.length < count) {
      if (this.closed || Date.now() > deadline) throw new Error(`got ${this.frames.length} of ${count} frames`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 50);
      });
    }
    return this.frames.slice(0, count);
  }

  async waitForClose(timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error('connection still open');
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  end(): void {
    this.socket.destroy();
  }
}

export const sampleMessage = (controlId: string, extra = '') =>
  `MSH|^~\\&|EPIC|HOSP|HL7C|APP|20261125120000||ADT^A01^ADT_A01|${controlId}|P|2.5.1\rPID|1||123^^^HOSP^MR||DOE^JANE${extra}\r`;

export { frame };
