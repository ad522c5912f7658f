import http from 'node:http';
import { Gauge, Registry } from 'prom-client';
import type { SqliteStore } from '../store/sqlite-store.js';

/**
 * The admin endpoint: GET /health (JSON) and GET /metrics (Prometheus), so errors piling up on
 * a connection show on a dashboard instead of going unnoticed.
 */
export async function startAdminServer(
  store: SqliteStore,
  port: number,
  host = '127.0.0.1',
  channels: () => Record<string, number> = () => ({}),
  sourceEvents: () => Record<string, Record<string, number>> = () => ({}),
): Promise<{ port: number; close(): Promise<void> }> {
  const registry = new Registry();
  new Gauge({
    name: 'hl7c_source_events',
    help: 'What each source refused or dropped since its listener started: connections refused (allow list, max_connections, TLS), closed (idle, buffered-bytes budget), bytes outside frames, oversize and truncated frames',
    labelNames: ['channel', 'event'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [channel, counters] of Object.entries(sourceEvents())) {
        for (const [event, count] of Object.entries(counters)) this.set({ channel, event }, count);
      }
    },
  });
  new Gauge({
    name: 'hl7c_messages',
    help: 'Stored messages by channel and status',
    labelNames: ['channel', 'status'],
    registers: [registry],
    collect() {
      this.reset();
      for (const row of store.counts()) this.set({ channel: row.channel, status: row.status }, row.count);
    },
  });
  new Gauge({
    name: 'hl7c_deliveries',
    help: 'Destination queue entries by channel, destination and state',
    labelNames: ['channel', 'destination', 'state'],
    registers: [registry],
    collect() {
      this.reset();
      const rows = store.db.prepare('SELECT channel, destination, state, COUNT(*) AS count FROM deliveries GROUP BY channel, destination, state').all() as Array<{ channel: string; destination: string; state: string; count: number }>;
      for (const r of rows) this.set({ channel: r.channel, destination: r.destination, state: r.state }, r.count);
    },
  });
  new Gauge({
    name: 'hl7c_queue_oldest_age_seconds',
    help: 'Age of the oldest unfinished entry of each destination queue: the one to alert on when a queue is stuck or falling behind',
    labelNames: ['channel', 'destination'],
    registers: [registry],
    collect() {
      this.reset();
      const rows = store.db
        .prepare("SELECT channel, destination, MIN(created_at) AS oldest FROM deliveries WHERE state IN ('queued', 'sending', 'stopped') GROUP BY channel, destination")
        .all() as Array<{ channel: string; destination: string; oldest: number }>;
      const now = Date.now();
      for (const r of rows) this.set({ channel: r.channel, destination: r.destination }, Math.max(0, (now - r.oldest) / 1000));
    },
  });
  new Gauge({
    name: 'hl7c_store_ingest_failures',
    help: 'Times received messages could not be taken into SQLite (they stay in the received-message log and are retried)',
    registers: [registry],
    collect() {
      this.set(store.ingestFailures);
    },
  });
  new Gauge({
    name: 'hl7c_store_waiting_messages',
    help: 'Received messages, safe in the received-message log, that SQLite has not taken in yet',
    registers: [registry],
    collect() {
      store.ingestWaiting();
      this.set(store.waitingToIngest);
    },
  });
  const server = http.createServer((req, res) => {
    if (req.url === '/health') {
      const messages = store.counts();
      // Messages are still received and safe in the log, but nothing new reaches the queues.
      const ingesting = store.waitingToIngest === 0 ? { status: 'ok' } : { status: 'degraded', store: { waiting: store.waitingToIngest, error: store.lastIngestError } };
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ ...ingesting, channels: channels(), messages }));
      return;
    }
    if (req.url === '/metrics') {
      registry
        .metrics()
        .then((text) => {
          res.writeHead(200, { 'content-type': registry.contentType });
          res.end(text);
        })
        .catch((err: Error) => {
          res.writeHead(500);
          res.end(err.message);
        });
      return;
    }
    res.writeHead(404);
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(port, host, () => resolve()));
  return {
    port: (server.address() as { port: number }).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
