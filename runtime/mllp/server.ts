import { EventEmitter } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import { ackForPayload, HL7_ERROR } from '../ack/ack.js';
import type { Logger } from '../log.js';
import { silentLogger, ThrottledLog } from '../log.js';
import { BufferBudget, DEFAULT_MAX_MESSAGE_BYTES, frame, MllpDecoder } from './framing.js';
import type { ServerTlsOptions } from './tls.js';

export interface ConnectionInfo {
  id: number;
  remoteAddress: string;
  remotePort: number;
  /** Subject CN of a verified client certificate (mutual TLS). */
  clientCertificateCn?: string;
}

/**
 * What a handler sends back: one reply (usually an ACK), several in order (an accept ACK then
 * an application ACK, as MSH-15/16 may ask), or nothing.
 */
export type MllpReply = Uint8Array | string | ReadonlyArray<Uint8Array | string> | undefined;

/**
 * Answers one received payload. Each reply is framed and sent back. Calls on one connection
 * never overlap, so replies keep the order of messages.
 */
export type MllpHandler = (payload: Buffer, connection: ConnectionInfo) => Promise<MllpReply> | MllpReply;

/** A frame over the size limit: its first bytes (enough for MSH), its size and the limit. */
export type OversizeHandler = (head: Buffer, size: number, limit: number, connection: ConnectionInfo) => Promise<MllpReply> | MllpReply;

export interface MllpServerOptions {
  host?: string;
  port: number;
  tls?: ServerTlsOptions;
  /** Largest payload accepted; bigger frames are skipped and answered with AR. Default 10 MiB. */
  maxMessageBytes?: number;
  /**
   * Bytes all connections together may hold in partial frames (default 256 MiB). A connection
   * whose partial frame would go past it is closed, logged and counted.
   */
  maxBufferedBytes?: number;
  /** Close a connection with no traffic for this long; 0 keeps it open. Default 10 minutes. */
  idleTimeoutMs?: number;
  /** Connections open at once; more are closed on arrival, logged and counted. 0 (default): no limit. */
  maxConnections?: number;
  /** Addresses allowed to connect, as CIDR blocks (IPv4 or IPv6) or single addresses; empty or absent: any. */
  allow?: readonly string[];
  /** Answers a frame over maxMessageBytes (default: AR naming the size and the limit). */
  oversize?: OversizeHandler;
  logger?: Logger;
  handler: MllpHandler;
}

/** Frames queued on one connection before we stop reading from it (back-pressure). */
const MAX_QUEUED_FRAMES = 64;

export const DEFAULT_IDLE_TIMEOUT_MS = 10 * 60 * 1000;
export const DEFAULT_MAX_BUFFERED_BYTES = 256 * 1024 * 1024;

/** What a listener refused or dropped, counted for metrics (the log lines about them are throttled). */
export interface MllpServerCounters {
  /** Bytes outside any frame, dropped (line ends and spaces between frames not counted). */
  bytesOutsideFrames: number;
  /** Frames over the size limit, answered AR. */
  oversizeFrames: number;
  /** Partial frames cut off by a new start block. */
  truncatedFrames: number;
  /** Connections refused because their address is not in `allow`. */
  refusedNotAllowed: number;
  /** Connections refused because `maxConnections` were open. */
  refusedTooMany: number;
  /** TLS handshakes that failed (plaintext on a TLS port, bad or missing client certificate). */
  refusedTls: number;
  /** Connections closed because the shared budget of buffered bytes was spent. */
  closedOverBudget: number;
  /** Connections closed after idleTimeoutMs without traffic. */
  closedIdle: number;
  /** Frames that arrived while the listener was closing, left unanswered and unstored (the sender resends). */
  unreadAtClose: number;
}

export function emptyCounters(): MllpServerCounters {
  return { bytesOutsideFrames: 0, oversizeFrames: 0, truncatedFrames: 0, refusedNotAllowed: 0, refusedTooMany: 0, refusedTls: 0, closedOverBudget: 0, closedIdle: 0, unreadAtClose: 0 };
}

/** A block list that answers "allowed?" for addresses in CIDR notation; throws on a malformed entry. */
export function allowList(entries: readonly string[]): net.BlockList {
  const list = new net.BlockList();
  for (const entry of entries) {
    const [address = '', bits] = entry.trim().split('/');
    const type = net.isIP(address) === 6 ? 'ipv6' : net.isIP(address) === 4 ? 'ipv4' : undefined;
    const prefix = bits === undefined ? (type === 'ipv6' ? 128 : 32) : Number(bits);
    if (!type || !Number.isInteger(prefix) || prefix < 0 || prefix > (type === 'ipv6' ? 128 : 32)) {
      throw new Error(`allow: "${entry}" is not an IPv4 or IPv6 address or CIDR block (e.g. 10.20.0.0/16, fd00::/8)`);
    }
    list.addSubnet(address, prefix, type);
  }
  return list;
}

export function isAllowed(list: net.BlockList, address: string | undefined): boolean {
  if (!address) return false;
  const type = net.isIP(address);
  return type !== 0 && list.check(address, type === 6 ? 'ipv6' : 'ipv4');
}

export class MllpServer extends EventEmitter {
  private server: net.Server | tls.Server | null = null;
  private readonly sockets = new Set<net.Socket>();
  private readonly inFlight = new Set<Promise<void>>();
  private handler: MllpHandler;
  private nextConnectionId = 1;
  private readonly log: Logger;
  private readonly throttled: ThrottledLog;
  private readonly budget: BufferBudget;
  private readonly allowed: net.BlockList | undefined;
  /** Raw TCP connections open (TLS ones counted from before their handshake). */
  private open = 0;
  /** Set when close() begins: nothing read from then on is handled. */
  private closing = false;
  readonly counters: MllpServerCounters = emptyCounters();

  constructor(private readonly options: MllpServerOptions) {
    super();
    this.handler = options.handler;
    this.log = options.logger ?? silentLogger;
    this.throttled = new ThrottledLog(this.log);
    this.budget = new BufferBudget(options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES);
    this.allowed = options.allow?.length ? allowList(options.allow) : undefined;
  }

  /** Bytes held in partial frames across all connections now. */
  get bufferedBytes(): number {
    return this.budget.used;
  }

  /** Starts listening; resolves with the bound port (useful with port 0). */
  async listen(): Promise<number> {
    const t = this.options.tls;
    const server = t
      ? tls.createServer({ key: t.key, cert: t.cert, ca: t.ca, requestCert: !!t.requireClientCertificate, rejectUnauthorized: !!t.requireClientCertificate })
      : net.createServer();
    // Refusals happen on the raw connection, before a TLS handshake costs anything.
    server.on('connection', (raw: net.Socket) => this.admit(raw));
    if (t) server.on('secureConnection', (socket: tls.TLSSocket) => this.accept(socket));
    else server.on('connection', (socket: net.Socket) => !socket.destroyed && this.accept(socket));
    server.on('tlsClientError', (err: Error, socket: net.Socket) => {
      this.counters.refusedTls++;
      this.throttled.warn('tls', { remote: socket.remoteAddress, err: err.message, refused: this.counters.refusedTls }, 'TLS handshake refused (plaintext on a TLS port, or a bad client certificate)');
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port, this.options.host ?? '0.0.0.0', () => {
        server.off('error', reject);
        resolve();
      });
    });
    // An error after listen (EMFILE on accept, say) must not end the process: log it.
    server.on('error', (err: Error) => this.log.error({ err: err.message }, 'MLLP listener error'));
    const port = this.port;
    this.log.info({ port, tls: !!t }, 'MLLP listener started');
    return port;
  }

  /** True while the listener accepts connections (not yet closing). */
  get listening(): boolean {
    return !!this.server?.listening && !this.closing;
  }

  get port(): number {
    const address = this.server?.address();
    return typeof address === 'object' && address ? address.port : 0;
  }

  get connectionCount(): number {
    return this.sockets.size;
  }

  /** Replaces the handler for the messages that arrive from now on; open connections stay up. */
  setHandler(handler: MllpHandler): void {
    this.handler = handler;
  }

  /**
   * Stops accepting connections and reading from open ones; every message already read
   * finishes its handler and has its ACK written (waiting at most drainTimeoutMs); then the
   * connections are ended. A message not read by then is neither stored nor answered, so its
   * sender sends it again: never stored and left unanswered.
   */
  async close(drainTimeoutMs = 30_000): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = null;
    this.closing = true;
    for (const socket of this.sockets) socket.pause();
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    const deadlineAt = Date.now() + drainTimeoutMs;
    while (this.inFlight.size > 0 && Date.now() < deadlineAt) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<void>((r) => (timer = setTimeout(r, deadlineAt - Date.now())));
      await Promise.race([Promise.allSettled([...this.inFlight]), timeout]);
      clearTimeout(timer);
    }
    if (this.inFlight.size > 0) {
      this.log.warn({ unanswered: this.inFlight.size, drainTimeoutMs }, 'closing with messages still being handled; they were not acknowledged');
    }
    for (const socket of this.sockets) {
      socket.end();
      // Read on, so the peer's end is seen and the connection closes; frames are ignored now.
      socket.resume();
    }
    const deadline = setTimeout(() => {
      for (const socket of this.sockets) socket.destroy();
    }, 2000);
    await closed;
    clearTimeout(deadline);
    this.log.info('MLLP listener closed');
  }

  /** Checks a new TCP connection against `allow` and `maxConnections`; closes it when refused. */
  private admit(raw: net.Socket): void {
    const remote = raw.remoteAddress;
    if (this.allowed && !isAllowed(this.allowed, remote)) {
      this.counters.refusedNotAllowed++;
      this.throttled.warn('allow', { remote, refused: this.counters.refusedNotAllowed }, 'connection refused: address not in the allow list');
      raw.destroy();
      return;
    }
    const max = this.options.maxConnections ?? 0;
    if (max > 0 && this.open >= max) {
      this.counters.refusedTooMany++;
      this.throttled.warn('max_connections', { remote, open: this.open, limit: max, refused: this.counters.refusedTooMany }, 'connection refused: max_connections open');
      raw.destroy();
      return;
    }
    this.open++;
    raw.once('close', () => this.open--);
    // Errors before the handshake ends (a reset during it) are not the MLLP socket's to report.
    raw.on('error', () => undefined);
  }

  private accept(socket: net.Socket): void {
    const id = this.nextConnectionId++;
    const info: ConnectionInfo = { id, remoteAddress: socket.remoteAddress ?? '', remotePort: socket.remotePort ?? 0 };
    if (socket instanceof tls.TLSSocket) {
      const cert = socket.getPeerCertificate();
      const cn = cert?.subject?.CN;
      if (cn) info.clientCertificateCn = Array.isArray(cn) ? cn[0] : cn;
    }
    this.sockets.add(socket);
    socket.setNoDelay(true);
    const log = this.log.child({ connection: id, remote: `${info.remoteAddress}:${info.remotePort}` });
    log.info('connection opened');
    const maxMessageBytes = this.options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    let chain: Promise<void> = Promise.resolve();
    let queued = 0;

    const enqueue = (work: () => Promise<void>) => {
      queued++;
      if (queued >= MAX_QUEUED_FRAMES) socket.pause();
      const run = chain.then(work).finally(() => {
        queued--;
        this.inFlight.delete(run);
        if (queued < MAX_QUEUED_FRAMES && socket.isPaused() && !this.closing) socket.resume();
      });
      this.inFlight.add(run);
      chain = run;
    };

    const reply = (response: MllpReply) => {
      if (response === undefined || socket.destroyed || socket.writableEnded) return;
      if (typeof response === 'string' || response instanceof Uint8Array) {
        socket.write(frame(response));
        return;
      }
      for (const each of response) socket.write(frame(each));
    };

    // A handler must answer every message itself; a throw is a bug, so say so and answer AE
    // rather than leave the sender waiting.
    const fail = (payload: Buffer, err: unknown) => {
      log.error({ err }, 'message handler failed');
      reply(internalErrorAck(payload));
    };
    /** Calls the handler; a synchronous answer is replied to at once, an async one when ready. */
    const answer = (payload: Buffer): Promise<void> | undefined => {
      let result: ReturnType<MllpHandler>;
      try {
        result = this.handler(payload, info);
      } catch (err) {
        fail(payload, err);
        return undefined;
      }
      if (!(result instanceof Promise)) {
        reply(result);
        return undefined;
      }
      return result.then(reply, (err: unknown) => fail(payload, err));
    };
    const rejectOversize = async (head: Buffer, size: number) => {
      this.counters.oversizeFrames++;
      this.throttled.warn('oversize', { connection: id, bytes: size, limit: maxMessageBytes }, 'message larger than the maximum size rejected');
      const custom = this.options.oversize;
      if (!custom) return reply(oversizeAck(head, size, maxMessageBytes));
      try {
        reply(await custom(head, size, maxMessageBytes, info));
      } catch (err) {
        fail(head, err);
      }
    };

    const decoder = new MllpDecoder(
      {
        frame: (payload) => {
          // Read after close() began: nobody will be there to answer, so it is not handled at all.
          if (this.closing) {
            this.counters.unreadAtClose++;
            return;
          }
          // Behind other messages: wait in line, so replies keep the order of messages.
          if (queued > 0) return enqueue(async () => answer(payload));
          // Nothing waiting: no trip through the promise queue unless the handler is async.
          const pending = answer(payload);
          if (pending) enqueue(() => pending);
        },
        discarded: (count) => {
          this.counters.bytesOutsideFrames += count;
          this.throttled.warn('outside', { connection: id, bytes: count, total: this.counters.bytesOutsideFrames }, 'bytes outside an MLLP frame discarded');
        },
        truncated: (partial) => {
          this.counters.truncatedFrames++;
          this.throttled.warn('truncated', { connection: id, bytes: partial.length }, 'MLLP frame cut off by a new start block; partial message dropped unacknowledged');
        },
        oversize: (head, size) => {
          if (!this.closing) enqueue(() => rejectOversize(head, size));
        },
        overBudget: () => {
          this.counters.closedOverBudget++;
          this.throttled.warn(
            'budget',
            { connection: id, buffered: this.budget.used, limit: this.budget.limit, closed: this.counters.closedOverBudget },
            'connection closed: partial frames of all connections hold the maximum buffered bytes',
          );
          socket.destroy();
        },
      },
      maxMessageBytes,
      this.budget,
    );

    socket.on('data', (chunk: Buffer) => decoder.push(chunk));
    const idle = this.options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    if (idle > 0) {
      socket.setTimeout(idle, () => {
        this.counters.closedIdle++;
        log.info({ idleMs: idle, partialFrame: decoder.pending }, 'connection idle too long; closing');
        socket.end();
        setTimeout(() => socket.destroy(), 1000).unref();
      });
    }
    socket.on('error', (err) => log.warn({ err: err.message }, 'connection error'));
    socket.on('close', () => {
      this.sockets.delete(socket);
      log.info({ partialFrame: decoder.pending }, 'connection closed');
      decoder.release();
      this.emit('connectionClosed', info);
    });
    this.emit('connection', info);
  }
}

function oversizeAck(head: Buffer, size: number, limit: number): Buffer {
  return ackForPayload(head, 'AR', { code: HL7_ERROR.otherHl7Error, userMessage: `message of ${size} bytes exceeds the receiver's limit of ${limit} bytes` });
}

function internalErrorAck(payload: Buffer): Buffer {
  return ackForPayload(payload, 'AE', { code: HL7_ERROR.applicationInternalError, userMessage: 'internal error in the receiving application; the message can be resent' });
}
