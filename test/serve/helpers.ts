import http from 'node:http';
import net from 'node:net';
import { Writable } from 'node:stream';
import pino from 'pino';
import type { Logger } from '../../runtime/index.js';
import type { NewMessage } from '../../runtime/serve/index.js';

/** A logger whose JSON lines are kept for assertions. */
export function memoryLogger(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n')) if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines };
}

export interface Webhook {
  url: string;
  port: number;
  received: Array<{ body: Record<string, unknown>; headers: http.IncomingHttpHeaders }>;
  /** Status to answer with; 0 destroys the connection (receiver down). */
  status: number;
  close(): Promise<void>;
}

/** A local HTTP receiver standing in for the app's webhook. */
export async function startWebhook(port = 0): Promise<Webhook> {
  const hook: Webhook = { url: '', port: 0, received: [], status: 200, close: async () => undefined };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (hook.status === 0) {
        req.socket.destroy();
        return;
      }
      if (hook.status < 300) hook.received.push({ body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>, headers: req.headers });
      res.writeHead(hook.status);
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
  hook.port = (server.address() as { port: number }).port;
  hook.url = `http://127.0.0.1:${hook.port}/hl7/patient-events`;
  hook.close = () =>
    new Promise<void>((r) => {
      server.close(() => r());
      server.closeAllConnections();
    });
  return hook;
}

/** An HTTP receiver that keeps each body as text with its content type (bodies that are not JSON). */
export async function startTextReceiver(): Promise<{ url: string; received: Array<{ body: string; type: string | undefined }>; close(): Promise<void> }> {
  const received: Array<{ body: string; type: string | undefined }> = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ body: Buffer.concat(chunks).toString('utf8'), type: req.headers['content-type'] });
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const close = () =>
    new Promise<void>((r) => {
      server.close(() => r());
      server.closeAllConnections();
    });
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}/notify`, received, close };
}

/** A port free a moment ago: for a process that must be told its port before it starts. */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

/**
 * Polls `check` until it holds. A check that throws (a folder not made yet, a file half written)
 * counts as "not yet"; if it never holds, the timeout names the last error.
 */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      if (await check()) return;
      lastError = undefined;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}${lastError ? ` (the check last threw: ${(lastError as Error).message})` : ''}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

export const adtSpec = (options: { attempts?: number; backoffMs?: number; onFailure?: string; family?: string } = {}) => `channel: adt-in
source:
  mllp:
    host: 127.0.0.1
    port: \${TEST_ADT_PORT:-0}
accept:
  - rule: adt-only
    if: { message_type: [ADT] }
    otherwise: reject
    reason: ADT only
identifiers:
  patient: { kind: patient, assigning_authority: EPI, type_code: MR, required: true }
map:
  message_id: { path: MSH-10 }
  mrn: { identifier: patient }
  family: { path: PID-5.1${options.family ? `, transform: [${options.family}]` : ''} }
destinations:
  webhook:
    http:
      url: \${TEST_WEBHOOK_URL}
    retry: { attempts: ${options.attempts ?? 20}, backoff_ms: ${options.backoffMs ?? 20}, max_backoff_ms: 200 }
    on_failure: ${options.onFailure ?? 'dead_letter'}
`;

export const adtMessage = (controlId: string, mrn = 'E100', trigger = 'A08') =>
  `MSH|^~\\&|EPIC|GH|HL7C|APP|20261125||ADT^${trigger}^ADT_A01|${controlId}|P|2.5.1\rPID|1||${mrn}^^^EPI^MR||Doe^Jane\r`;

/** What serve stores for an accepted ADT message with one queue entry, for tests of the store itself. */
export function receivedEntry(controlId: string, receivedAt = Date.now()): NewMessage {
  return {
    channel: 'adt-in',
    spec_version: 'v1',
    source: 'mllp:127.0.0.1:5000',
    received_at: receivedAt,
    control_id: controlId,
    message_type: 'ADT^A08',
    raw: Buffer.from(`MSH|^~\\&|EPIC|GH|HL7C|APP|20261125||ADT^A08|${controlId}|P|2.5.1\rPID|1||E100^^^EPI^MR\r`),
    status: 'accepted',
    reason: null,
    identifiers: { patient: { id: 'E100' } },
    ack_code: 'AA',
    ack: Buffer.from(`MSH|^~\\&|HL7C|APP|EPIC|GH|20261125||ACK^A08|A1|P|2.5.1\rMSA|AA|${controlId}\r`),
    deliveries: [{ destination: 'webhook', payload: Buffer.from(JSON.stringify({ controlId })) }],
  };
}
