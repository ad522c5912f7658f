import { EventEmitter } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import { ackForPayload, HL7_ERROR } from '../ack/ack.js';
import type { Logger } from '../log.js';
import { silentLogger } from '../log.js';
import { DEFAULT_MAX_MESSAGE_BYTES, frame, MllpDecoder } from './framing.js';
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

export interface MllpServerOptions {
  host?: string;
  port: number;
  tls?: ServerTlsOptions;
  /** Largest payload accepted; bigger frames are skipped and answered with AR. Default 10 MiB. */
  maxMessageBytes?: number;
  /** Close a connection with no traffic for this long; 0 (default) keeps it open. */
  idleTimeoutMs?: number;
  logger?: Logger;
  handler: MllpHandler;
}

/** Frames queued on one connection before we stop reading from it (back-pressure). */
const MAX_QUEUED_FRAMES = 64;

export class MllpServer extends EventEmitter {
  private server: net.Server | tls.Server | null = null;
  private readonly sockets = new Set<net.Socket>();
  private readonly inFlight = new Set<Promise<void>>();
  private handler: MllpHandler;
  private nextConnectionId = 1;
  private readonly log: Logger;

  constructor(private readonly options: MllpServerOptions) {
    super();
    this.handler = options.handler;
    this.log = options.logger ?? silentLogger;
  }

  /** Starts listening; resolves with the bound port (useful with port 0). */
  async listen(): Promise<number> {
    const onConnection = (socket: net.Socket) => this.accept(socket);
    const t = this.options.tls;
    const server = t
      ? tls.createServer(
          { key: t.key, cert: t.cert, ca: t.ca, requestCert: !!t.requireClientCertificate, rejectUnauthorized: !!t.requireClientCertificate },
          onConnection,
        )
      : net.createServer(onConnection);
    server.on('tlsClientError', (err: Error, socket: net.Socket) => {
      this.log.warn({ remote: socket.remoteAddress, err: err.message }, 'TLS handshake refused');
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port, this.options.host ?? '0.0.0.0', () => {
        server.off('error', reject);
        resolve();
      });
    });
    const port = this.port;
    this.log.info({ port, tls: !!t }, 'MLLP listener started');
    return port;
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
   * Stops accepting connections, lets every message already received finish and be answered
   * (waiting at most drainTimeoutMs), then closes the open connections.
   */
  async close(drainTimeoutMs = 30_000): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = null;
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
    for (const socket of this.sockets) socket.end();
    const deadline = setTimeout(() => {
      for (const socket of this.sockets) socket.destroy();
    }, 2000);
    await closed;
    clearTimeout(deadline);
    this.log.info('MLLP listener closed');
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
        if (queued < MAX_QUEUED_FRAMES && socket.isPaused()) socket.resume();
      });
      this.inFlight.add(run);
      chain = run;
    };

    const reply = (response: MllpReply) => {
      if (response === undefined || socket.destroyed) return;
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

    const decoder = new MllpDecoder(
      {
        frame: (payload) => {
          // Behind other messages: wait in line, so replies keep the order of messages.
          if (queued > 0) return enqueue(async () => answer(payload));
          // Nothing waiting: no trip through the promise queue unless the handler is async.
          const pending = answer(payload);
          if (pending) enqueue(() => pending);
        },
        discarded: (count) => log.warn({ bytes: count }, 'bytes outside an MLLP frame discarded'),
        truncated: (partial) =>
          log.warn({ bytes: partial.length }, 'MLLP frame cut off by a new start block; partial message dropped unacknowledged'),
        oversize: (head, size) =>
          enqueue(async () => {
            log.warn({ bytes: size, limit: maxMessageBytes }, 'message larger than the maximum size rejected');
            reply(oversizeAck(head, size, maxMessageBytes));
          }),
      },
      maxMessageBytes,
    );

    socket.on('data', (chunk: Buffer) => decoder.push(chunk));
    const idle = this.options.idleTimeoutMs ?? 0;
    if (idle > 0) {
      socket.setTimeout(idle, () => {
        log.info({ idleMs: idle, partialFrame: decoder.pending }, 'connection idle too long; closing');
        socket.end();
        setTimeout(() => socket.destroy(), 1000).unref();
      });
    }
    socket.on('error', (err) => log.warn({ err: err.message }, 'connection error'));
    socket.on('close', () => {
      this.sockets.delete(socket);
      log.info({ partialFrame: decoder.pending }, 'connection closed');
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
