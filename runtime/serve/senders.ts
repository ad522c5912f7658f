import { readFileSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { appendFile, link, mkdir, unlink, writeFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import type { DestinationConfig } from '../channel/channel.js';
import { interpolateTemplate } from './template.js';
import { databaseSender } from './database.js';
import { smtpSender } from './smtp.js';
import { MllpClient } from '../mllp/client.js';
import type { Logger } from '../log.js';
import type { Delivery } from '../store/types.js';

/** How one attempt went: delivered, or failed and whether trying again could help. */
/** `answer`: the receiver's own ACK as it came (MLLP), for a source that passes it through (answer_from). */
export type AttemptOutcome = ({ ok: true; detail: string } | { ok: false; retry: boolean; error: string }) & { answer?: Buffer };

export interface DeliveryContext {
  controlId: string | null;
  /** Hands a payload to another channel as if it had been received there. */
  handToChannel(channel: string, payload: Buffer, from: string): Promise<AttemptOutcome>;
}

export interface Sender {
  send(delivery: Delivery, context: DeliveryContext): Promise<AttemptOutcome>;
  close(): Promise<void>;
}

/**
 * What receivers de-duplicate with: a retry, or a resend after a crash, repeats it. It ends with
 * a hash of the body, so a replay that sends other content (the spec was fixed since) is not
 * taken for a repeat and dropped by a receiver that honours the key.
 */
export function idempotencyKey(channel: string, messageId: number, destination: string, body: Buffer | string): string {
  return `${channel}:${messageId}:${destination}:${createHash('sha256').update(body).digest('hex').slice(0, 16)}`;
}

export function createSender(channel: string, destination: string, config: DestinationConfig, log: Logger): Sender {
  const t = config.target;
  switch (t.kind) {
    case 'http':
      return {
        async send(delivery, context) {
          try {
            const { envelope, payload } = openEnvelope(delivery.payload, !!t.envelope);
            const url = new URL(typeof envelope.url === 'string' ? envelope.url : t.url);
            for (const [k, v] of Object.entries((envelope.query as Record<string, string> | undefined) ?? {})) url.searchParams.append(k, v);
            // GET and DELETE carry no body: what they need is in the query and the headers.
            const bodyless = t.method === 'GET' || t.method === 'DELETE';
            const response = await fetch(url, {
              method: t.method,
              headers: {
                ...(bodyless ? {} : { 'content-type': t.content_type ?? (looksLikeJson(payload) ? 'application/json' : 'application/hl7-v2') }),
                'idempotency-key': idempotencyKey(channel, delivery.message_id, destination, payload),
                ...t.headers,
                ...((envelope.headers as Record<string, string> | undefined) ?? {}),
              },
              ...(bodyless ? {} : { body: payload }),
              signal: AbortSignal.timeout(t.timeout_ms),
            });
            const answer = Buffer.from(await response.arrayBuffer().catch(() => new ArrayBuffer(0)));
            if (response.ok && t.response_channel) {
              // The answer goes on to another channel; the attempt counts once that channel took it.
              const handed = await context.handToChannel(t.response_channel, answer, channel);
              return handed.ok ? { ok: true, detail: `HTTP ${response.status}; response ${handed.detail}` } : { ...handed, error: `HTTP ${response.status}; response not taken: ${handed.error}` };
            }
            if (response.ok) return { ok: true, detail: `HTTP ${response.status}` };
            if (t.delivered_status?.includes(response.status)) return { ok: true, detail: `HTTP ${response.status}, counted as delivered (delivered_status)` };
            const retry = response.status >= 500 || response.status === 408 || response.status === 425 || response.status === 429;
            return { ok: false, retry, error: `HTTP ${response.status}` };
          } catch (err) {
            return { ok: false, retry: true, error: describeFetchError(err) };
          }
        },
        close: async () => undefined,
      };
    case 'file': {
      let dirReady = false;
      return {
        async send(delivery, context) {
          try {
            if (!dirReady) {
              await mkdir(t.dir, { recursive: true });
              dirReady = true;
            }
            const { envelope, payload } = openEnvelope(delivery.payload, !!t.envelope);
            const template = typeof envelope.file_name === 'string' ? envelope.file_name : t.file_name;
            const name = interpolateTemplate(template, { control_id: context.controlId ?? String(delivery.message_id), message_id: String(delivery.message_id), channel });
            if (t.append) {
              // O_APPEND: each write lands whole at the end, also with two workers on one file.
              const bytes = payload;
              await appendFile(join(t.dir, name), bytes);
              return { ok: true, detail: `appended ${bytes.length} bytes to ${name}` };
            }
            const written = await writeNewFile(t.dir, name, payload, t.on_exists ?? 'suffix');
            return { ok: true, detail: `wrote ${written}` };
          } catch (err) {
            // The directory may have been removed under us: make it again next time.
            dirReady = false;
            return { ok: false, retry: true, error: (err as Error).message };
          }
        },
        close: async () => undefined,
      };
    }
    case 'mllp': {
      const tls = t.tls
        ? { ca: t.tls.ca ? readFileSync(t.tls.ca) : undefined, cert: t.tls.cert ? readFileSync(t.tls.cert) : undefined, key: t.tls.key ? readFileSync(t.tls.key) : undefined }
        : undefined;
      const client = new MllpClient({ host: t.host, port: t.port, tls, reconnect: { attempts: 1 }, ackTimeoutMs: 30_000, logger: log });
      return {
        async send(delivery) {
          // MLLP carries HL7: JSON (a channel that maps) can never be acknowledged, so fail once, clearly.
          if (looksLikeJson(delivery.payload)) return { ok: false, retry: false, error: 'the payload is JSON (this channel maps); an MLLP destination takes HL7' };
          try {
            const ack = await client.send(delivery.payload ?? Buffer.alloc(0));
            const answer = ack.raw ? { answer: ack.raw } : {};
            if (!ack.acknowledged || ack.code === 'AA' || ack.code === 'CA') return { ok: true, detail: ack.code ? `${ack.code} ${ack.acknowledgedControlId}` : ack.text, ...answer };
            const setting = ack.code === 'AR' || ack.code === 'CR' ? t.on_ar : t.on_ae;
            return { ok: false, retry: setting === 'retry', error: `${ack.code}: ${[ack.text, ...ack.errors].filter(Boolean).join('; ') || 'no reason given'}`, ...answer };
          } catch (err) {
            return { ok: false, retry: true, error: (err as Error).message };
          }
        },
        close: () => client.close(),
      };
    }
    case 'database':
      return databaseSender(t, log);
    case 'smtp':
      return smtpSender(t, log);
    case 'channel':
      return {
        send: (delivery, context) => context.handToChannel(t.channel, delivery.payload ?? Buffer.alloc(0), channel),
        close: async () => undefined,
      };
  }
}

const MAX_SUFFIX = 10_000;

/**
 * Writes a file under `name` in `dir` without ever replacing one: the bytes go to a temporary
 * file first (readers never see half a file), which is then hard-linked to its name. link()
 * fails with EEXIST when the name is taken, atomically, so two workers or two nodes writing the
 * same name cannot overwrite each other (a check-then-rename could). A taken name is written as
 * `name-2.ext`, `name-3.ext` … or, with `on_exists: fail`, is an error. Returns the name written.
 */
export async function writeNewFile(dir: string, name: string, bytes: Buffer, onExists: 'suffix' | 'fail'): Promise<string> {
  const tmp = join(dir, `.hl7c-${process.pid}-${randomBytes(6).toString('hex')}.tmp`);
  await writeFile(tmp, bytes, { flag: 'wx' });
  try {
    const ext = extname(name);
    const stem = name.slice(0, name.length - ext.length);
    for (let n = 1; n <= MAX_SUFFIX; n++) {
      const candidate = n === 1 ? name : `${stem}-${n}${ext}`;
      try {
        await link(tmp, join(dir, candidate));
        return candidate;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EEXIST') {
          if (onExists === 'fail') throw new Error(`${name} already exists in ${dir} (on_exists: fail)`);
          continue;
        }
        // No hard links here (some network shares): an exclusive create is still never an overwrite.
        if (code === 'EPERM' || code === 'ENOTSUP' || code === 'ENOSYS' || code === 'EXDEV') {
          try {
            await writeFile(join(dir, candidate), bytes, { flag: 'wx' });
            return candidate;
          } catch (inner) {
            if ((inner as NodeJS.ErrnoException).code !== 'EEXIST') throw inner;
            if (onExists === 'fail') throw new Error(`${name} already exists in ${dir} (on_exists: fail)`);
            continue;
          }
        }
        throw err;
      }
    }
    throw new Error(`${name} and ${MAX_SUFFIX - 1} suffixed names already exist in ${dir}`);
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
}

/** A queue entry whose first line is a JSON envelope (rendered file name, query, headers), and the payload after it. */
/** A stored payload split into its envelope line (file name, query, headers) and what is sent. */
export function openEnvelope(stored: Buffer | null, enveloped: boolean): { envelope: Record<string, unknown>; payload: Buffer } {
  const bytes = stored ?? Buffer.alloc(0);
  if (!enveloped) return { envelope: {}, payload: bytes };
  const newline = bytes.indexOf(0x0a);
  return { envelope: JSON.parse(bytes.subarray(0, newline).toString('utf8')) as Record<string, unknown>, payload: bytes.subarray(newline + 1) };
}

function looksLikeJson(payload: Buffer | null): boolean {
  const first = payload?.[0];
  return first === 0x7b || first === 0x5b;
}

function describeFetchError(err: unknown): string {
  const e = err as Error & { cause?: { code?: string; message?: string } };
  if (e.name === 'TimeoutError') return 'timed out';
  return e.cause?.code ?? e.cause?.message ?? e.message;
}
