import http from 'node:http';
import { Gauge, Registry } from 'prom-client';
import type { Logger } from '../log.js';
import type { Store, StoreMetrics } from '../store/store.js';

/**
 * The admin endpoint: GET /health (JSON) and GET /metrics (Prometheus), so errors piling up on
 * a connection show on a dashboard instead of going unnoticed. Every figure comes from one
 * `store.metrics()` read per request; a store that cannot answer gives 500 with the reason.
 */
export async function startAdminServer(
  store: Store,
  port: number,
  host = '127.0.0.1',
  channels: () => Record<string, number> = () => ({}),
  log?: Logger,
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
  const messages = new Gauge({ name: 'hl7c_messages', help: 'Stored messages by channel and status', labelNames: ['channel', 'status'], registers: [registry] });
  const deliveries = new Gauge({ name: 'hl7c_deliveries', help: 'Destination queue entries by channel, destination and state', labelNames: ['channel', 'destination', 'state'], registers: [registry] });
  const oldestAge = new Gauge({
    name: 'hl7c_queue_oldest_age_seconds',
    help: 'Age of the oldest unfinished entry of each destination queue: the one to alert on when a queue is stuck or falling behind',
    labelNames: ['channel', 'destination'],
    registers: [registry],
  });
  const ingestFailures = new Gauge({ name: 'hl7c_store_ingest_failures', help: 'Times received messages could not be taken into the store (they stay in the received-message log and are retried)', registers: [registry] });
  const waiting = new Gauge({ name: 'hl7c_store_waiting_messages', help: 'Received messages, safe in the received-message log, that the store has not taken in yet', registers: [registry] });

  const fill = (m: StoreMetrics) => {
    messages.reset();
    for (const r of m.messages) messages.set({ channel: r.channel, status: r.status }, r.count);
    deliveries.reset();
    for (const r of m.deliveries) deliveries.set({ channel: r.channel, destination: r.destination, state: r.state }, r.count);
    oldestAge.reset();
    const now = Date.now();
    for (const r of m.oldestOpen) oldestAge.set({ channel: r.channel, destination: r.destination }, Math.max(0, (now - r.oldest) / 1000));
    ingestFailures.set(m.ingestFailures);
    waiting.set(m.waiting);
  };

  const answer = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    if (req.url === '/health') {
      // A database that cannot be reached: every message is answered AE until it is back.
      const reachable = store.health?.();
      if (reachable && reachable.status !== 'ok') {
        res.writeHead(503, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ status: 'unavailable', store: reachable, channels: channels() }));
        return;
      }
      const m = await store.metrics();
      // Messages are still received and safe in the log, but nothing new reaches the queues.
      const ingesting = m.waiting === 0 ? { status: 'ok' } : { status: 'degraded', store: { waiting: m.waiting, error: m.lastError } };
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ ...ingesting, ...(reachable ? { store: { ...reachable, ...('store' in ingesting ? ingesting.store : {}) } } : {}), channels: channels(), messages: m.messages }));
      return;
    }
    if (req.url === '/metrics') {
      fill(await store.metrics());
      const text = await registry.metrics();
      res.writeHead(200, { 'content-type': registry.contentType });
      res.end(text);
      return;
    }
    res.writeHead(404);
    res.end();
  };

  const server = http.createServer((req, res) => {
    answer(req, res).catch((err: Error) => {
      // The store could not answer (locked, gone, disk full): say so, and keep serving.
      log?.error({ err: err.message, url: req.url }, 'admin request failed: the store could not be read');
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ status: 'error', reason: `the store could not be read: ${err.message}` }));
    });
  });
  await new Promise<void>((resolve, reject) => {
    const refused = (err: NodeJS.ErrnoException) =>
      reject(
        err.code === 'EADDRINUSE'
          ? new Error(`the admin port ${port} on ${host} is in use: choose another --admin-port, or stop what listens there`)
          : new Error(`the admin port ${port} on ${host} cannot be opened: ${err.message}`),
      );
    server.once('error', refused);
    server.listen(port, host, () => {
      server.off('error', refused);
      resolve();
    });
  });
  // After listening, an error (a socket the OS tears down, …) is reported, never a crash.
  server.on('error', (err) => log?.error({ err: err.message }, 'admin server error'));
  return {
    port: (server.address() as { port: number }).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
