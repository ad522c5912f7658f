import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, test } from 'vitest';
import { SqliteStore, startAdminServer } from '../../runtime/serve/index.js';
import { receivedEntry } from './helpers.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

test('/metrics gives the age of the oldest unfinished entry per queue, and keeps it at 0 once the queue is empty (an alert on it resolves instead of going quiet)', async () => {
  const store = new SqliteStore(join(mkdtempSync(join(tmpdir(), 'hl7c-admin-')), 'store.db'), { synchronous: 'NORMAL' });
  cleanups.push(() => store.close());
  const now = Date.now();
  await store.record(receivedEntry('OLDEST', now - 120_000));
  await store.record(receivedEntry('NEWER', now - 5_000));
  const admin = await startAdminServer(store, 0);
  cleanups.push(() => admin.close());
  const age = async () => {
    const text = await (await fetch(`http://127.0.0.1:${admin.port}/metrics`)).text();
    const m = /hl7c_queue_oldest_age_seconds\{channel="adt-in",destination="webhook"\} ([\d.]+)/.exec(text);
    return m ? Number(m[1]) : undefined;
  };
  expect(await age()).toBeGreaterThanOrEqual(119);
  const [oldest, newer] = store.nextDeliveries('adt-in', 'webhook', 10);
  await store.finishAttempt(oldest!, { state: 'sent', detail: 'HTTP 200' }, Date.now());
  const second = (await age())!;
  expect(second).toBeGreaterThanOrEqual(4);
  expect(second).toBeLessThan(119);
  await store.finishAttempt(newer!, { state: 'sent', detail: 'HTTP 200' }, Date.now());
  expect(await age()).toBe(0);
});
