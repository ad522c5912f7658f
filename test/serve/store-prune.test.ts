import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, test } from 'vitest';
import { SqliteStore } from '../../runtime/serve/index.js';
import { receivedEntry } from './helpers.js';

const opened: SqliteStore[] = [];
afterEach(() => {
  for (const s of opened.splice(0)) s.close();
});

test('prune works through old messages a few at a time, keeps counts, and leaves unfinished ones whole', async () => {
  const store = new SqliteStore(join(mkdtempSync(join(tmpdir(), 'hl7c-prune-')), 'store.db'), { synchronous: 'NORMAL' });
  opened.push(store);
  const now = Date.now();
  for (let i = 1; i <= 7; i++) await store.record(receivedEntry(`OLD-${i}`, now - 60_000));
  await store.record(receivedEntry('NEW-1', now));
  // Every old one delivered except OLD-7, still queued.
  const queue = store.nextDeliveries('adt-in', 'webhook', 10);
  for (const d of queue.filter((d) => d.control_id !== 'OLD-7' && d.control_id !== 'NEW-1')) await store.finishAttempt(d, { state: 'sent', detail: 'HTTP 200' }, now);
  expect((await store.prune(now - 1000, 2))).toBe(6);
  const rows = (await store.listMessages());
  expect(rows.filter((m) => m.pruned).map((m) => m.control_id)).toEqual(['OLD-1', 'OLD-2', 'OLD-3', 'OLD-4', 'OLD-5', 'OLD-6']);
  expect(rows.find((m) => m.control_id === 'OLD-7')!.raw).not.toBeNull();
  expect(rows.find((m) => m.control_id === 'NEW-1')!.raw).not.toBeNull();
  const sentPayloads = store.db.prepare("SELECT COUNT(*) AS n FROM deliveries WHERE state = 'sent' AND payload IS NOT NULL").get() as { n: number };
  expect(sentPayloads.n).toBe(0);
  expect((await store.counts())).toEqual([{ channel: 'adt-in', status: 'accepted', count: 8 }]);
  // Nothing left to prune: a second run finds nothing.
  expect((await store.prune(now - 1000, 2))).toBe(0);
});
