import net from 'node:net';
import tls from 'node:tls';
import { readAck } from '../ack/ack.js';
import type { AckSummary } from '../ack/ack.js';
import type { Message } from '../hl7/message.js';
import { parseMessage } from '../hl7/parse.js';
import { readDelimiters } from '../hl7/delimiters.js';
import { unescapeValue } from '../hl7/escape.js';
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
  /**
   * The accept ACK (CA) that came before this application ACK, when MSH-16 asked for one
   * besides the accept ACK (enhanced mode).
   */
  accept?: AckSummary;
  /** The ACK as parsed, when one came. */
  message?: Message;
  raw?: Buffer;
}

/**
 * The common answer, a plain AA or CA without ERR, read from the MSA segment alone. Anything
 * else (errors, escapes, non-ASCII text) returns undefined and gets a full parse. The bytes are
 * walked directly: decoding the ACK to search it costs more than the search.
 */
function quickPositiveAck(payload: Buffer): { code: string; acknowledgedControlId: string; text: string } | undefined {
  const n = payload.length;
  if (n > 4096 || n < 9 || payload[0] !== 0x4d || payload[1] !== 0x53 || payload[2] !== 0x48) return undefined;
  const sep = payload[3]!;
  let msa = -1;
  for (let i = 4; i + 4 < n; i++) {
    if (payload[i] !== 0x0d || payload[i + 4] !== sep) continue;
    const a = payload[i + 1];
    const b = payload[i + 2];
    const c = payload[i + 3];
    if (a === 0x4d && b === 0x53 && c === 0x41) {
      if (msa === -1) msa = i + 5;
    } else if (a === 0x45 && b === 0x52 && c === 0x52) {
      return undefined;
    }
  }
  if (msa === -1) return undefined;
  // MSA-1 must be AA or CA, compared as bytes; MSA-2 and MSA-3 must be plain text. A value
  // holding a delimiter or anything but printable ASCII would need decoding: that is left to
  // the full parse.
  if (payload[msa + 1] !== 0x41 || payload[msa + 2] !== sep || (payload[msa] !== 0x41 && payload[msa] !== 0x43)) return undefined;
  const controlIdEnd = plainValueEnd(payload, msa + 3, sep);
  if (controlIdEnd === -1) return undefined;
  const textEnd = payload[controlIdEnd] === sep ? plainValueEnd(payload, controlIdEnd + 1, sep) : controlIdEnd;
  if (textEnd === -1) return undefined;
  const code = payload[msa] === 0x41 ? 'AA' : 'CA';
  const text = textEnd > controlIdEnd + 1 ? payload.toString('latin1', controlIdEnd + 1, textEnd) : '';
  return { code, acknowledgedControlId: payload.toString('latin1', msa + 3, controlIdEnd), text };
}

/** Where a plain value starting at `from` ends (a separator, line end or the end), or -1 when it is not plain. */
function plainValueEnd(payload: Buffer, from: number, sep: number): number {
  let i = from;
  for (; i < payload.length; i++) {
    const c = payload[i]!;
    if (c === sep || c === 0x0d || c === 0x0a) return i;
    if (c < 0x20 || c > 0x7e || isEncodingCharacter(payload, sep, c)) return -1;
  }
  return i;
}

/** Whether a byte is one of MSH-2's encoding characters (bytes 4 up to the next separator). */
function isEncodingCharacter(payload: Buffer, sep: number, c: number): boolean {
  for (let i = 4; i < 9 && payload[i] !== sep; i++) if (payload[i] === c) return true;
  return false;
}

/** A positive ACK read from MSA alone; the whole ACK is parsed only if someone asks for it. */
class QuickResult implements SendResult {
  readonly acknowledged = true;
  readonly errors: string[] = [];
  accept?: AckSummary;
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

/**
 * MSH-10 and MSH-15 of a framed message, found by walking the bytes of its first segment:
 * delimiters are ASCII whatever MSH-18 says, and decoding only the two values is several times
 * cheaper than decoding and splitting the whole line.
 */
function headerFieldsOf(framed: Buffer): HeaderFields {
  const end = framed.length - 2;
  if (end < 5 || framed[1] !== 0x4d || framed[2] !== 0x53 || framed[3] !== 0x48) return { controlId: '', decodedControlId: '', acceptAck: '', applicationAck: '' };
  const sep = framed[4]!;
  let msh10 = -1;
  let msh15 = -1;
  let msh16 = -1;
  // After MSH-1 (the separator itself) comes MSH-2; each separator starts the next field.
  let field = 2;
  for (let i = 5; i < end; i++) {
    const c = framed[i]!;
    if (c === 0x0d || c === 0x0a) break;
    if (c !== sep) continue;
    field++;
    if (field === 10) msh10 = i + 1;
    else if (field === 15) msh15 = i + 1;
    else if (field === 16) {
      msh16 = i + 1;
      break;
    }
  }
  const controlId = headerValue(framed, msh10, end, sep);
  return {
    controlId,
    decodedControlId: decodedHeaderValue(framed, controlId, msh10),
    acceptAck: headerValue(framed, msh15, end, sep).trim().toUpperCase(),
    applicationAck: headerValue(framed, msh16, end, sep).trim().toUpperCase(),
  };
}

/** The bytes of a header field from `start` to the next separator or line end, as Latin-1; '' when absent or empty. */
function headerValue(framed: Buffer, start: number, end: number, sep: number): string {
  if (start === -1) return '';
  let stop = start;
  while (stop < end && framed[stop] !== sep && framed[stop] !== 0x0d && framed[stop] !== 0x0a) stop++;
  return stop === start ? '' : framed.toString('latin1', start, stop);
}

/**
 * MSH-10 with its escapes decoded (`Q\S\7` is `Q^7`). A receiver writes MSA-2 with its own
 * delimiters, so only the decoded value can be compared whatever it uses.
 */
function decodedHeaderValue(framed: Buffer, raw: string, start: number): string {
  if (raw === '' || !hasEncodingCharacter(framed, raw)) return raw;
  try {
    return unescapeValue(raw, readDelimiters(framed.toString('latin1', 1, start)));
  } catch {
    return raw;
  }
}

/** Whether text holds one of the encoding characters MSH-2 declares (bytes 5 up to the next separator). */
function hasEncodingCharacter(framed: Buffer, text: string): boolean {
  const sep = framed[4]!;
  for (let i = 5; i < 10 && framed[i] !== sep; i++) if (text.includes(String.fromCharCode(framed[i]!))) return true;
  return false;
}

interface HeaderFields {
  /** MSH-10 as written (escapes kept). */
  controlId: string;
  /** MSH-10 decoded. */
  decodedControlId: string;
  /** MSH-15 and MSH-16, upper-cased (table 0155: AL, NE, ER, SU, or empty). */
  acceptAck: string;
  applicationAck: string;
}

/** Which ACK a sender waits for: always, only if something went wrong (silence means success), or none. */
type AckExpectation = 'always' | 'on-error' | 'none';

const ORIGINAL_MODE = Object.freeze({ accept: 'always', application: 'none' } as const);

/**
 * What MSH-15/16 make a sender wait for. Original mode (both empty): the one ACK. Enhanced
 * mode: the accept ACK unless MSH-15 is NE (ER: only on error), then the application ACK when
 * MSH-16 is AL (ER: only on error). MSH-16 SU is not waited for: silence cannot tell success
 * from a slow receiver.
 */
function expectedAcks({ acceptAck, applicationAck }: HeaderFields): { accept: AckExpectation; application: AckExpectation } {
  if (!acceptAck && !applicationAck) return ORIGINAL_MODE;
  return {
    accept: acceptAck === 'NE' ? 'none' : acceptAck === 'ER' ? 'on-error' : 'always',
    application: applicationAck === 'AL' ? 'always' : applicationAck === 'ER' ? 'on-error' : 'none',
  };
}

function unacknowledged(controlId: string, why: string): SendResult {
  return { acknowledged: false, code: '', acknowledgedControlId: controlId, text: why, errors: [] };
}

export class MllpError extends Error {
  override readonly name = 'MllpError';
  constructor(
    readonly code: 'ACK_TIMEOUT' | 'CONNECTION_CLOSED' | 'CONNECT_FAILED' | 'BAD_ACK' | 'NO_CONTROL_ID' | 'CLIENT_CLOSED' | 'UNFRAMABLE',
    message: string,
  ) {
    super(message);
  }
}

/** A send waiting for its turn, or in flight; settled once. */
interface PendingSend {
  message: string | Uint8Array | Message;
  resolve(result: SendResult): void;
  reject(err: Error): void;
}

/** The message in flight on a connection, waiting for its ACK. */
interface Waiter {
  send: PendingSend;
  /** MSH-10 as written, and decoded (see ackAnswers). */
  controlId: string;
  decodedControlId: string;
  socket: net.Socket;
  /** Which ACK comes next: the accept ACK, or the application ACK after it. */
  awaiting: 'accept' | 'application';
  /** Whether an application ACK follows the accept ACK (MSH-16). */
  application: AckExpectation;
  /** The accept ACK, kept while the application ACK is awaited. */
  accepted?: SendResult;
  /** performance.now() after which the wait is over. */
  deadline: number;
  timeoutMs: number;
  /** MSH-15 or MSH-16 ER: silence until the deadline means success. */
  errorOnly: boolean;
}

/**
 * Sends messages over one MLLP connection, one in flight at a time, and matches each ACK to
 * its message by MSA-2. A dropped connection is re-opened on the next send.
 */
export class MllpClient {
  private socket: net.Socket | null = null;
  private connecting: Promise<net.Socket> | null = null;
  private waiter: Waiter | null = null;
  /** Sends behind the one in progress, in the order they were made. */
  private readonly backlog: PendingSend[] = [];
  private busy = false;
  private readonly whenIdle: Array<() => void> = [];
  /**
   * One timer for every ACK wait, moved only when a wait would end before it fires: arming
   * and clearing a timer per message costs more than the rest of a send.
   */
  private ackTimer: NodeJS.Timeout | null = null;
  private ackTimerAt = Infinity;
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
    return new Promise<SendResult>((resolve, reject) => {
      const send: PendingSend = { message, resolve, reject };
      // Busy: wait for the message in flight (one at a time per connection).
      if (this.busy) {
        this.backlog.push(send);
        return;
      }
      this.busy = true;
      if (!this.start(send)) this.startNext();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.busy) await new Promise<void>((resolve) => this.whenIdle.push(resolve));
    if (this.ackTimer) clearTimeout(this.ackTimer);
    this.ackTimer = null;
    this.ackTimerAt = Infinity;
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

  /** Starts a send; false when it is already settled (so the caller goes on to the next). */
  private start(send: PendingSend): boolean {
    let framed: Buffer;
    let header: HeaderFields;
    try {
      if (this.closed) throw new MllpError('CLIENT_CLOSED', 'the MLLP client is closed');
      const { message } = send;
      // The frame is built once, straight from the message: no intermediate copy.
      framed = frame(typeof message === 'string' || message instanceof Uint8Array ? message : message.toBytes());
      // A start or end block inside the message would cut it into frames the receiver reads as
      // two messages (escapeValue writes them as \X0B\ and \X1C\; this catches raw text set directly).
      const inner = framed.subarray(1, framed.length - 2);
      if (inner.includes(0x0b) || inner.includes(0x1c)) throw new MllpError('UNFRAMABLE', 'the message holds a raw 0x0B or 0x1C byte, which would split its MLLP frame; not sent');
      header = headerFieldsOf(framed);
      if (!header.controlId) throw new MllpError('NO_CONTROL_ID', 'the message has no MSH-10 control id, so its ACK could not be matched');
    } catch (err) {
      send.reject(err as Error);
      return false;
    }
    const socket = this.socket;
    if (socket && !socket.destroyed) return this.transmit(socket, send, framed, header);
    this.ensureConnected().then(
      (connected) => {
        if (!this.transmit(connected, send, framed, header)) this.startNext();
      },
      (err: Error) => this.settle(send, err),
    );
    return true;
  }

  /** Writes the frame and waits for the ACK; false when no ACK is awaited (already settled). */
  private transmit(socket: net.Socket, send: PendingSend, framed: Buffer, header: HeaderFields): boolean {
    const { controlId } = header;
    const expected = expectedAcks(header);
    if (expected.accept === 'none' && expected.application === 'none') {
      socket.write(framed);
      send.resolve(unacknowledged(controlId, `MSH-15 is NE and MSH-16 is ${header.applicationAck || 'empty'}: no ACK awaited`));
      return false;
    }
    const awaiting = expected.accept === 'none' ? 'application' : 'accept';
    const errorOnly = (awaiting === 'accept' ? expected.accept : expected.application) === 'on-error';
    const timeoutMs = this.timeoutFor(errorOnly);
    const deadline = performance.now() + timeoutMs;
    this.waiter = { send, controlId, decodedControlId: header.decodedControlId, socket, awaiting, application: expected.application, deadline, timeoutMs, errorOnly };
    if (deadline < this.ackTimerAt) this.armAckTimer(deadline);
    socket.write(framed);
    return true;
  }

  private timeoutFor(errorOnly: boolean): number {
    return errorOnly ? (this.options.errorOnlyAckWaitMs ?? 1000) : (this.options.ackTimeoutMs ?? 30_000);
  }

  /** After a positive accept ACK (or silence under MSH-15 ER), waits on for the application ACK. */
  private awaitApplicationAck(w: Waiter, accepted: SendResult | undefined): void {
    w.awaiting = 'application';
    if (accepted) w.accepted = accepted;
    w.errorOnly = w.application === 'on-error';
    w.timeoutMs = this.timeoutFor(w.errorOnly);
    w.deadline = performance.now() + w.timeoutMs;
    if (w.deadline < this.ackTimerAt) this.armAckTimer(w.deadline);
  }

  /** The ACK that ends the wait, with the accept ACK that came before it. */
  private finish(w: Waiter, result: SendResult): void {
    this.waiter = null;
    if (w.accepted) result.accept = { code: w.accepted.code, acknowledgedControlId: w.accepted.acknowledgedControlId, text: w.accepted.text, errors: w.accepted.errors };
    this.settle(w.send, result);
  }

  /** Takes an ACK that answers the message in flight: it ends the wait, or moves it on to the application ACK. */
  private acknowledged(w: Waiter, result: SendResult): void {
    const isAccept = result.code.startsWith('C');
    if (w.awaiting === 'application' && isAccept) return; // a repeated accept ACK: keep waiting
    if (w.awaiting === 'accept' && result.code === 'CA' && w.application !== 'none') {
      this.awaitApplicationAck(w, result);
      return;
    }
    this.finish(w, result);
  }

  /** Settles the send in progress with its result or error, then starts the next one waiting. */
  private settle(send: PendingSend, outcome: SendResult | Error): void {
    if (outcome instanceof Error) send.reject(outcome);
    else send.resolve(outcome);
    this.startNext();
  }

  /** A loop, not recursion: a long backlog of sends that settle at once must not grow the stack. */
  private startNext(): void {
    for (let next = this.backlog.shift(); next; next = this.backlog.shift()) {
      if (this.start(next)) return;
    }
    this.busy = false;
    if (this.whenIdle.length > 0) for (const resolve of this.whenIdle.splice(0)) resolve();
  }

  private armAckTimer(at: number): void {
    if (this.ackTimer) clearTimeout(this.ackTimer);
    this.ackTimerAt = at;
    this.ackTimer = setTimeout(() => this.onAckTimer(), Math.max(0, at - performance.now()));
    // An open socket keeps the process alive while a send waits; the timer need not.
    this.ackTimer.unref();
  }

  private onAckTimer(): void {
    this.ackTimer = null;
    this.ackTimerAt = Infinity;
    const w = this.waiter;
    if (!w) return;
    if (performance.now() < w.deadline) {
      this.armAckTimer(w.deadline);
      return;
    }
    if (w.errorOnly) {
      // Silence under ER means success.
      if (w.awaiting === 'accept' && w.application !== 'none') {
        this.awaitApplicationAck(w, undefined);
        return;
      }
      this.waiter = null;
      if (w.accepted) this.settle(w.send, w.accepted);
      else this.settle(w.send, unacknowledged(w.controlId, `MSH-${w.awaiting === 'accept' ? 15 : 16} is ER and no error ACK came`));
      return;
    }
    this.waiter = null;
    const which = w.awaiting === 'application' && w.accepted ? 'application ACK' : 'ACK';
    this.log.warn({ controlId: w.controlId, timeoutMs: w.timeoutMs }, `no ${which} in time; dropping the connection`);
    // A late ACK must not be read as the answer to the next message: start afresh.
    if (this.socket === w.socket) this.socket = null;
    w.socket.destroy();
    this.settle(w.send, new MllpError('ACK_TIMEOUT', `no ${which} for message ${w.controlId} within ${w.timeoutMs} ms`));
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
        this.settle(w.send, new MllpError('CONNECTION_CLOSED', `connection closed before the ACK for message ${w.controlId}`));
      }
    });
  }

  private onFrame(socket: net.Socket, payload: Buffer): void {
    const w = this.waiter?.socket === socket ? this.waiter : null;
    const quick = quickPositiveAck(payload);
    if (quick && w && (quick.acknowledgedControlId === w.controlId || quick.acknowledgedControlId === w.decodedControlId)) {
      this.acknowledged(w, new QuickResult(quick.code, quick.acknowledgedControlId, quick.text, payload));
      return;
    }
    let ack: Message;
    try {
      ack = parseMessage(payload);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'unreadable reply discarded');
      if (w) {
        this.waiter = null;
        this.settle(w.send, new MllpError('BAD_ACK', `unreadable reply to message ${w.controlId}: ${(err as Error).message}`));
      }
      return;
    }
    const summary = readAck(ack);
    if (!w || !ackAnswers(w, ack, summary)) {
      // A late ACK for an earlier message, or one meant for someone else: never match it to the wrong message.
      this.log.warn({ msa2: summary.acknowledgedControlId, waitingFor: w?.controlId }, 'ACK does not match the message in flight; ignored');
      return;
    }
    this.acknowledged(w, { ...summary, message: ack, raw: payload, acknowledged: true });
  }
}

/**
 * Whether an ACK's MSA-2 names the message in flight. MSA-2 carries MSH-10 as sent, escapes
 * included, so the two are compared decoded: `MSA|AA|Q\S\7` answers `Q\S\7` (read as `Q^7`),
 * also from a receiver whose delimiters differ. A receiver that echoes the text as written
 * under other delimiters, or writes the decoded text unescaped, still names the same message.
 */
function ackAnswers(w: Waiter, ack: Message, summary: AckSummary): boolean {
  if (summary.acknowledgedControlId === w.decodedControlId) return true;
  const raw = ack.getRaw('MSA-2');
  return raw === w.controlId || raw === w.decodedControlId;
}
