import { readFileSync } from 'node:fs';
import { rename, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DestinationConfig } from '../channel/channel.js';
import { interpolateTemplate } from './template.js';
import { MllpClient } from '../mllp/client.js';
import type { Logger } from '../log.js';
import type { Delivery } from '../store/types.js';

/** How one attempt went: delivered, or failed and whether trying again could help. */
export type AttemptOutcome = { ok: true; detail: string } | { ok: false; retry: boolean; error: string };

export interface DeliveryContext {
  controlId: string | null;
  /** Hands a payload to another channel as if it had been received there. */
  handToChannel(channel: string, payload: Buffer, from: string): Promise<AttemptOutcome>;
}

export interface Sender {
  send(delivery: Delivery, context: DeliveryContext): Promise<AttemptOutcome>;
  close(): Promise<void>;
}

export function createSender(channel: string, destination: string, config: DestinationConfig, log: Logger): Sender {
  const t = config.target;
  switch (t.kind) {
    case 'http':
      return {
        async send(delivery) {
          try {
            const response = await fetch(t.url, {
              method: t.method,
              headers: {
                'content-type': looksLikeJson(delivery.payload) ? 'application/json' : 'application/hl7-v2',
                // Receivers de-duplicate with this: a retry or a replay after a crash repeats it.
                'idempotency-key': `${channel}:${delivery.message_id}:${destination}`,
                ...t.headers,
              },
              body: delivery.payload ?? '',
              signal: AbortSignal.timeout(t.timeout_ms),
            });
            await response.arrayBuffer().catch(() => undefined);
            if (response.ok) return { ok: true, detail: `HTTP ${response.status}` };
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
            const name = interpolateTemplate(t.file_name, { control_id: context.controlId ?? String(delivery.message_id), message_id: String(delivery.message_id), channel });
            const path = join(t.dir, name);
            // Written whole or not at all: readers never see half a file.
            const tmp = `${path}.tmp-${process.pid}`;
            await writeFile(tmp, delivery.payload ?? Buffer.alloc(0));
            await rename(tmp, path);
            return { ok: true, detail: `wrote ${name}` };
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
          try {
            const ack = await client.send(delivery.payload ?? Buffer.alloc(0));
            if (!ack.acknowledged || ack.code === 'AA' || ack.code === 'CA') return { ok: true, detail: ack.code ? `${ack.code} ${ack.acknowledgedControlId}` : ack.text };
            const setting = ack.code === 'AR' || ack.code === 'CR' ? t.on_ar : t.on_ae;
            return { ok: false, retry: setting === 'retry', error: `${ack.code}: ${[ack.text, ...ack.errors].filter(Boolean).join('; ') || 'no reason given'}` };
          } catch (err) {
            return { ok: false, retry: true, error: (err as Error).message };
          }
        },
        close: () => client.close(),
      };
    }
    case 'channel':
      return {
        send: (delivery, context) => context.handToChannel(t.channel, delivery.payload ?? Buffer.alloc(0), channel),
        close: async () => undefined,
      };
  }
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
