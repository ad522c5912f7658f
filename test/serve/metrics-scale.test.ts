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

const DELIVERIES = 300_000;

/**
 * Issue 10, case 4: a /metrics scrape on a store with 292k deliveries scanned the whole table on
 * the main thread and held every ACK for a second. Time is not asserted (tests never do): what a
 * scrape asks SQLite is. Every statement it runs is traced and its query plan read; none may
 * scan the messages or deliveries tables.
 */
test('a /metrics or /health request on a store of 300k deliveries reads counters, never scans a table', { timeout: 120_000 }, async () => {
  let tracing = false;
  const statements: string[] = [];
  const path = join(mkdtempSync(join(tmpdir(), 'hl7c-metrics-')), 'store.db');
  const store = new SqliteStore(path, { synchronous: 'NORMAL', traceStatements: (sql) => tracing && statements.push(sql) });
  cleanups.push(() => store.close());
  await store.record(receivedEntry('FIRST', Date.now() - 3_600_000));
  // A history as a busy year leaves it: 300k delivered entries, and a few still queued.
  store.db.exec(`
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${DELIVERIES})
    INSERT INTO deliveries (message_id, channel, destination, state, attempts, next_attempt_at, payload, created_at, updated_at)
    SELECT 1, 'adt-in', 'webhook', 'sent', 1, 0, NULL, i, i FROM n`);
  for (let i = 0; i < 3; i++) await store.record(receivedEntry(`NEW-${i}`));
  const admin = await startAdminServer(store, 0);
  cleanups.push(() => admin.close());

  tracing = true;
  const metrics = await (await fetch(`http://127.0.0.1:${admin.port}/metrics`)).text();
  const health = (await (await fetch(`http://127.0.0.1:${admin.port}/health`)).json()) as { messages: unknown };
  tracing = false;

  // The figures are right …
  expect(metrics).toContain(`hl7c_deliveries{channel="adt-in",destination="webhook",state="sent"} ${DELIVERIES}`);
  expect(metrics).toContain('hl7c_deliveries{channel="adt-in",destination="webhook",state="queued"} 4');
  // The head of the queue was queued an hour ago.
  expect(Number(/hl7c_queue_oldest_age_seconds\{channel="adt-in",destination="webhook"\} ([\d.]+)/.exec(metrics)?.[1])).toBeGreaterThanOrEqual(3600);
  expect(health.messages).toEqual([{ channel: 'adt-in', status: 'accepted', count: 4 }]);
  // … and no statement that produced them walks the big tables.
  const reads = statements.filter((sql) => /^\s*SELECT/i.test(sql));
  expect(reads.length).toBeGreaterThan(0);
  for (const sql of reads) {
    const plan = (store.db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...placeholders(sql)) as Array<{ detail: string }>).map((r) => r.detail);
    expect({ sql, plan }).toEqual({ sql, plan: plan.filter((d) => !/^SCAN (deliveries|messages|d|m)\b/.test(d)) });
  }
});

/** Values for a statement's `?` placeholders: the plan does not depend on them. */
function placeholders(sql: string): string[] {
  return Array.from(sql.matchAll(/\?/g), () => '');
}
