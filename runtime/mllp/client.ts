import net from 'node:net';
import tls from 'node:tls';
import { readAck } from '../ack/ack.js';
import { mshField } from '../hl7/delimiters.js';
import type { AckSummary } from '../ack/ack.js';
import type { Message } from '../hl7/message.js';
import { parseMessage } from '../hl7/parse.js';
import type { Logger } from '../log.js';
import { silentLogger } from '../log.js';
import { DEFAULT_MAX_MESSAGE_BYTES, frame, MllpDecoder } from './framing.js';
import type { ClientTlsOptions } from './tls.js';

export interface MllpClientOptions {
  host: string;
  port: number;
  tls?: ClientTlsOptions;
  /** How long to wait for the ACK of one message. Default 30 s. */
  ackTimeoutMs?: number;
  connectTimeoutMs?: number;
  /** Connection attempts before a send fails, with exponential backoff between them. */
  reconnect?: { attempts?: number; initialDelayMs?: number; maxDelayMs?: number };
  maxMessageBytes?: number;
  /**
   * How long to wait for an ACK when MSH-15 is ER (an accept ACK only on error): silence past
   * this means accepted. Default 1 s.
   */
  errorOnlyAckWaitMs?: number;
  logger?: Logger;
}

/**
 * What came of a send. `acknowledged: false` means the message asked for no ACK in this case
 * (enhanced mode, MSH-15 NE, or ER with no error reported) and none came: then `code` is ''
 * and `text` says why.
 */
export interface SendResult extends AckSummary {
  acknowledged: boolean;
  /** The ACK as parsed, when one came. */
  message?: Message;
  raw?: Buffer;
}

/**
 * The common answer, a plain AA or CA without ERR, read from the MSA segment alone. Anything
 * else (errors, escapes, non-ASCII text) returns undefined and gets a full parse.
 */
function quickPositiveAck(payload: Buffer): Omit<SendResult, 'acknowledged'> | undefined {
  if (payload.length > 4096 || payload[0] !== 0x4d) return undefined;
  const text = payload.toString('latin1');
  const sep = text[3];
  if (!text.startsWith('MSH') || !sep) return undefined;
  const msa = text.indexOf(`\rMSA${sep}`);
  if (msa === -1 || text.includes(`\rERR${sep}`)) return undefined;
  const end = text.indexOf('\r', msa + 1);
  const fields = text.slice(msa + 1, end === -1 ? text.length : end).split(sep);
  const code = fields[1] ?? '';
  if (code !== 'AA' && code !== 'CA') return undefined;
  const delimiters = text.slice(4, text.indexOf(sep, 4));
  const plain = (v: string) => {
    if (!/^[\x20-\x7e]*$/.test(v)) return false;
    for (let i = 0; i < delimiters.length; i++) if (v.includes(delimiters[i]!)) return false;
    return true;
  };
  const controlId = fields[2] ?? '';
  const msa3 = fields[3] ?? '';
  if (!plain(controlId) || !plain(msa3)) return undefined;
  return { code, acknowledgedControlId: controlId, text: msa3, errors: [] };
}

/** A positive ACK read from MSA alone; the whole ACK is parsed only if someone asks for it. */
class QuickResult implements SendResult {
  readonly acknowledged = true;
  readonly errors: string[] = [];
  constructor(
    readonly code: string,
    readonly acknowledgedControlId: string,
    readonly text: string,
    readonly raw: Buffer,
  ) {}

  get message(): Message {
    return parseMessage(this.raw);
  }
}

function firstLineOfText(text: string): string {
  let end = text.indexOf('\r');
  const lf = text.indexOf('\n');
  if (end === -1 || (lf !== -1 && lf < end)) end = lf;
  return end === -1 ? text.slice(0, 4096) : text.slice(0, end);
}

/** The first segment of a payload, as Latin-1 (enough to read MSH-10 and MSH-15). */
function firstLine(bytes: Uint8Array): string {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let end = buf.indexOf(0x0d);
  const lf = buf.indexOf(0x0a);
  if (end === -1 || (lf !== -1 && lf < end)) end = lf;
  return buf.toString('latin1', 0, end === -1 ? Math.min(buf.length, 4096) : end);
}

function unacknowledged(controlId: string, why: string): SendResult {
  return { acknowledged: false, code: '', acknowledgedControlId: controlId, text: why, errors: [] };
}

export class MllpError extends Error {
  override readonly name = 'MllpError';
  constructor(
    readonly code: 'ACK_TIMEOUT' | 'CONNECTION_CLOSED' | 'CONNECT_FAILED' | 'BAD_ACK' | 'NO_CONTROL_ID' | 'CLIENT_CLOSED',
    message: string,
  ) {
    super(message);
  }
}

interface Waiter {
  controlId: string;
  socket: net.Socket;
  resolve(result: SendResult): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

/**
 * Sends messages over one MLLP connection, one in flight at a time, and matches each ACK to
 * its message by MSA-2. A dropped connection is re-opened on the next send.
 */
export class MllpClient {
  private socket: net.Socket | null = null;
  private connecting: Promise<net.Socket> | null = null;
  private waiter: Waiter | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private queued = 0;
  private closed = false;
  private readonly log: Logger;

  constructor(private readonly options: MllpClientOptions) {
    this.log = options.logger ?? silentLogger;
  }

  get connected(): boolean {
    return !!this.socket && !this.socket.destroyed;
  }

  /** Sends one message and resolves with its ACK; rejects on timeout or a lost connection. */
  send(message: string | Uint8Array | Message): Promise<SendResult> {
    // Idle: send at once; busy: wait for the message in flight (one at a time per connection).
    const run = this.queued === 0 ? this.sendNow(message) : this.queue.then(() => this.sendNow(message));
    this.queued++;
    const settled = run.then(
      () => this.queued--,
      () => this.queued--,
    );
    this.queue = settled;
    return run;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.queue;
    const socket = this.socket;
    this.socket = null;
    if (socket && !socket.destroyed) {
      await new Promise<void>((resolve) => {
        socket.once('close', () => resolve());
        socket.end();
        setTimeout(() => socket.destroy(), 1000).unref();
      });
    }
  }

  private async sendNow(message: string | Uint8Array | Message): Promise<SendResult> {
    if (this.closed) throw new MllpError('CLIENT_CLOSED', 'the MLLP client is closed');
    // The frame is built once, straight from the message: no intermediate copy.
    const framed = frame(typeof message === 'string' || message instanceof Uint8Array ? message : message.toBytes());
    const line = typeof message === 'string' ? firstLineOfText(message) : firstLine(framed.subarray(1));
    const controlId = mshField(line, 10);
    if (!controlId) throw new MllpError('NO_CONTROL_ID', 'the message has no MSH-10 control id, so its ACK could not be matched');
    const socket = this.socket && !this.socket.destroyed ? this.socket : await this.ensureConnected();
    const acceptAck = mshField(line, 15).trim().toUpperCase();
    if (acceptAck === 'NE') {
      socket.write(framed);
      return unacknowledged(controlId, 'MSH-15 is NE: no accept ACK requested');
    }
    const errorOnly = acceptAck === 'ER';
    const timeoutMs = errorOnly ? (this.options.errorOnlyAckWaitMs ?? 1000) : (this.options.ackTimeoutMs ?? 30_000);
    return new Promise<SendResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (errorOnly) {
          this.waiter = null;
          resolve(unacknowledged(controlId, 'MSH-15 is ER and no error ACK came'));
          return;
        }
        this.waiter = null;
        this.log.warn({ controlId, timeoutMs }, 'no ACK in time; dropping the connection');
        // A late ACK must not be read as the answer to the next message: start afresh.
        if (this.socket === socket) this.socket = null;
        socket.destroy();
        reject(new MllpError('ACK_TIMEOUT', `no ACK for message ${controlId} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiter = { controlId, socket, resolve, reject, timer };
      socket.write(framed);
    });
  }

  private async ensureConnected(): Promise<net.Socket> {
    if (this.socket && !this.socket.destroyed) return this.socket;
    if (!this.connecting) {
      this.connecting = this.connectWithRetry().finally(() => {
        this.connecting = null;
      });
    }
    return this.connecting;
  }

  private async connectWithRetry(): Promise<net.Socket> {
    const r = this.options.reconnect ?? {};
    const attempts = r.attempts ?? 5;
    let delay = r.initialDelayMs ?? 200;
    let lastError: Error | undefined;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      try {
        const socket = await this.connectOnce();
        this.attach(socket);
        this.socket = socket;
        this.log.info({ host: this.options.host, port: this.options.port, attempt }, 'MLLP connection opened');
        return socket;
      } catch (err) {
        lastError = err as Error;
        this.log.warn({ host: this.options.host, port: this.options.port, attempt, err: lastError.message }, 'MLLP connect failed');
        if (attempt < attempts) {
          await new Promise((res) => setTimeout(res, delay));
          delay = Math.min(delay * 2, r.maxDelayMs ?? 5000);
        }
      }
    }
    throw new MllpError('CONNECT_FAILED', `could not connect to ${this.options.host}:${this.options.port}: ${lastError?.message}`);
  }

  private connectOnce(): Promise<net.Socket> {
    const { host, port } = this.options;
    const t = this.options.tls;
    return new Promise((resolve, reject) => {
      const socket = t
        ? tls.connect({
            host,
            port,
            ca: t.ca,
            cert: t.cert,
            key: t.key,
            servername: t.servername ?? (net.isIP(host) ? undefined : host),
            rejectUnauthorized: !t.insecure,
          })
        : net.connect({ host, port });
      const timer = setTimeout(() => {
        socket.destroy(new Error(`connect timed out after ${this.options.connectTimeoutMs ?? 10_000} ms`));
      }, this.options.connectTimeoutMs ?? 10_000);
      const ready = t ? 'secureConnect' : 'connect';
      socket.once(ready, () => {
        clearTimeout(timer);
        socket.off('error', onError);
        resolve(socket);
      });
      const onError = (err: Error) => {
        clearTimeout(timer);
        reject(err);
      };
      socket.once('error', onError);
    });
  }

  private attach(socket: net.Socket): void {
    socket.setNoDelay(true);
    const decoder = new MllpDecoder(
      {
        frame: (payload) => this.onFrame(socket, payload),
        discarded: (count) => this.log.warn({ bytes: count }, 'bytes outside an MLLP frame discarded'),
        truncated: () => this.log.warn('MLLP frame cut off by a new start block'),
        oversize: (_head, size) => this.log.warn({ bytes: size }, 'oversize ACK discarded'),
      },
      this.options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
    );
    socket.on('data', (chunk: Buffer) => decoder.push(chunk));
    socket.on('error', (err) => this.log.warn({ err: err.message }, 'MLLP connection error'));
    socket.on('close', () => {
      if (this.socket === socket) this.socket = null;
      const w = this.waiter;
      if (w && w.socket === socket) {
        this.waiter = null;
        clearTimeout(w.timer);
        w.reject(new MllpError('CONNECTION_CLOSED', `connection closed before the ACK for message ${w.controlId}`));
      }
    });
  }

  private onFrame(socket: net.Socket, payload: Buffer): void {
    const w = this.waiter?.socket === socket ? this.waiter : null;
    const quick = quickPositiveAck(payload);
    if (quick && w && quick.acknowledgedControlId === w.controlId) {
      this.waiter = null;
      clearTimeout(w.timer);
      w.resolve(new QuickResult(quick.code, quick.acknowledgedControlId, quick.text, payload));
      return;
    }
    let ack: Message;
    try {
      ack = parseMessage(payload);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'unreadable reply discarded');
      if (w) {
        this.waiter = null;
        clearTimeout(w.timer);
        w.reject(new MllpError('BAD_ACK', `unreadable reply to message ${w.controlId}: ${(err as Error).message}`));
      }
      return;
    }
    const summary = readAck(ack);
    if (!w || summary.acknowledgedControlId !== w.controlId) {
      // A late ACK for an earlier message, or one meant for someone else: never match it to the wrong message.
      this.log.warn({ msa2: summary.acknowledgedControlId, waitingFor: w?.controlId }, 'ACK does not match the message in flight; ignored');
      return;
    }
    this.waiter = null;
    clearTimeout(w.timer);
    w.resolve({ ...summary, message: ack, raw: payload, acknowledged: true });
  }
}
