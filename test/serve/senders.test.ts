import { afterEach, expect, test } from 'vitest';
import { acknowledge, MllpServer, receive, silentLogger } from '../../runtime/index.js';
import { createSender } from '../../runtime/serve/senders.js';
import type { QueuedDelivery } from '../../runtime/serve/index.js';
import { adtMessage } from './helpers.js';

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const delivery = (payload: string): QueuedDelivery => ({ id: 1, message_id: 1, channel: 'c', destination: 'ehr', state: 'sending', attempts: 0, next_attempt_at: 0, payload: Buffer.from(payload), last_error: null, created_at: 0, updated_at: 0, control_id: 'M1' });
const context = { controlId: 'M1', handToChannel: () => Promise.reject(new Error('not a channel destination')) };

test('an MLLP destination given JSON fails once, for good, saying why; nothing goes on the wire', async () => {
  const received: Buffer[] = [];
  const ehr = new MllpServer({
    host: '127.0.0.1',
    port: 0,
    handler: (payload) => {
      received.push(payload);
      const r = receive(payload);
      return r.ok ? acknowledge(r.message, 'accept')! : r.reject;
    },
  });
  const port = await ehr.listen();
  cleanups.push(() => ehr.close());
  const sender = createSender('c', 'ehr', { target: { kind: 'mllp', host: '127.0.0.1', port, on_ae: 'retry', on_ar: 'fail' }, retry: { attempts: 5, backoff_ms: 1, max_backoff_ms: 1 }, on_failure: 'dead_letter' }, silentLogger);
  cleanups.push(() => sender.close());
  expect(await sender.send(delivery('{"mrn":"E1"}'), context)).toEqual({ ok: false, retry: false, error: 'the payload is JSON (this channel maps); an MLLP destination takes HL7' });
  expect(received).toEqual([]);
  // HL7 still goes through the same sender.
  expect(await sender.send(delivery(adtMessage('M1')), context)).toMatchObject({ ok: true, detail: 'AA M1' });
  expect(received).toHaveLength(1);
});
