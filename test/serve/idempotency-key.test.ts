import http from 'node:http';
import { afterEach, expect, test } from 'vitest';
import { silentLogger } from '../../runtime/index.js';
import { createSender } from '../../runtime/serve/senders.js';
import type { Delivery } from '../../runtime/store/types.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const delivery = (payload: string): Delivery => ({
  id: 7,
  message_id: 42,
  channel: 'adt-in',
  destination: 'app',
  state: 'sending',
  attempts: 0,
  next_attempt_at: 0,
  payload: Buffer.from(payload),
  last_error: null,
  created_at: 0,
  updated_at: 0,
});

test('the Idempotency-Key repeats with the body it was sent with and changes with it: a replay after a spec fix is not dropped as a repeat', async () => {
  const keys: string[] = [];
  const server = http.createServer((req, res) => {
    keys.push(String(req.headers['idempotency-key']));
    req.resume().on('end', () => res.end());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  cleanups.push(() => new Promise((r) => server.close(r)));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/events`;
  const sender = createSender('adt-in', 'app', { target: { kind: 'http', url, method: 'POST', headers: {}, timeout_ms: 5000 } } as never, silentLogger);
  cleanups.push(() => sender.close());
  const context = { controlId: 'C1', handToChannel: async () => ({ ok: true }) as never };

  await sender.send(delivery('{"mrn":"SSN-123"}'), context);
  await sender.send(delivery('{"mrn":"SSN-123"}'), context);
  await sender.send(delivery('{"mrn":"E100"}'), context);
  expect(keys).toHaveLength(3);
  expect(keys[0]).toMatch(/^adt-in:42:app:[0-9a-f]{16}$/);
  expect(keys[1]).toBe(keys[0]);
  expect(keys[2]).not.toBe(keys[0]);
  expect(keys[2]!.startsWith('adt-in:42:app:')).toBe(true);
});
