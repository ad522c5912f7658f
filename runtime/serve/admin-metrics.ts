import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { StoreMetrics } from '../store/store.js';
import { ACK_LATENCY_BUCKETS } from './activity.js';
import type { Operations } from './operations.js';

/**
 * The Prometheus registry behind /metrics. Store figures come from one `store.metrics()` read
 * per scrape (counters the store keeps, never a table scan); the rest from what this node saw.
 * A queue once seen keeps its gauges, at 0 when it is empty, so an alert on
 * `hl7c_queue_oldest_age_seconds` resolves instead of going quiet.
 */
export function adminMetrics(operations: Operations, sourceEvents: () => Record<string, Record<string, number>>): { registry: Registry; fill(m: StoreMetrics): Promise<void> } {
  const registry = new Registry();
  const host = operations.host;
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
    help: 'Age of the oldest unfinished entry of each destination queue (0 when it is empty): the one to alert on when a queue is stuck or falling behind',
    labelNames: ['channel', 'destination'],
    registers: [registry],
  });
  const depth = new Gauge({ name: 'hl7c_queue_depth', help: 'Unfinished entries (queued, being sent, stopped) of each destination queue', labelNames: ['channel', 'destination'], registers: [registry] });
  const dead = new Gauge({ name: 'hl7c_dead_letters', help: 'Dead-lettered entries of each destination queue, waiting for a replay or a discard', labelNames: ['channel', 'destination'], registers: [registry] });
  const paused = new Gauge({ name: 'hl7c_destination_paused', help: '1 while an operator has paused the destination (for every node on the store)', labelNames: ['channel', 'destination'], registers: [registry] });
  const ingestFailures = new Gauge({ name: 'hl7c_store_ingest_failures', help: 'Times received messages could not be taken into the store (they stay in the received-message log and are retried)', registers: [registry] });
  const waiting = new Gauge({ name: 'hl7c_store_waiting_messages', help: 'Received messages, safe in the received-message log, that the store has not taken in yet', registers: [registry] });
  const lastMessageAge = new Gauge({
    name: 'hl7c_channel_last_message_age_seconds',
    help: 'Seconds since the channel last received a message on this node (since start when none yet): a feed that silently stopped shows here',
    labelNames: ['channel'],
    registers: [registry],
  });
  const listening = new Gauge({ name: 'hl7c_channel_listening', help: '1 while the channel source listens', labelNames: ['channel'], registers: [registry] });
  const started = Date.now();
  if (host) {
    const latency = new Histogram({
      name: 'hl7c_ack_latency_seconds',
      help: 'Time from a message read to its answer ready (processed and stored), per channel',
      labelNames: ['channel'],
      buckets: ACK_LATENCY_BUCKETS,
      registers: [registry],
    });
    host.activity.onAck((channel, seconds) => latency.observe({ channel }, seconds));
    new Counter({
      name: 'hl7c_messages_other_version_total',
      help: 'Messages whose HL7 version (MSH-12) is not the one the channel spec states (hl7_version): processed all the same, their paths checked against the stated version',
      labelNames: ['channel', 'version'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [channel, byVersion] of host.activity.otherVersions) for (const [version, n] of byVersion) this.inc({ channel, version }, n);
      },
    });
    new Counter({
      name: 'hl7c_reloads_total',
      help: 'Spec changes applied or rejected (the running version stays) since start',
      labelNames: ['outcome'],
      registers: [registry],
      collect() {
        this.reset();
        this.inc({ outcome: 'applied' }, host.activity.reloads.applied);
        this.inc({ outcome: 'rejected' }, host.activity.reloads.rejected);
      },
    });
    new Counter({
      name: 'hl7c_config_reloads_total',
      help: 'Changes to the serve config (alert rules) applied or rejected (the rules in force stay) since start',
      labelNames: ['outcome'],
      registers: [registry],
      collect() {
        this.reset();
        this.inc({ outcome: 'applied' }, host.activity.configReloads.applied);
        this.inc({ outcome: 'rejected' }, host.activity.configReloads.rejected);
      },
    });
  }
  /** Queues seen since start: kept at 0 once empty. */
  const queues = new Map<string, { channel: string; destination: string }>();

  const fill = async (m: StoreMetrics) => {
    messages.reset();
    for (const r of m.messages) messages.set({ channel: r.channel, status: r.status }, r.count);
    deliveries.reset();
    for (const r of m.deliveries) deliveries.set({ channel: r.channel, destination: r.destination, state: r.state }, r.count);
    const views = await operations.destinations(m);
    for (const v of views) queues.set(`${v.channel}\u0000${v.destination}`, v);
    for (const q of queues.values()) {
      const v = views.find((x) => x.channel === q.channel && x.destination === q.destination);
      const labels = { channel: q.channel, destination: q.destination };
      oldestAge.set(labels, v?.oldest_age_seconds ?? 0);
      depth.set(labels, v?.depth ?? 0);
      dead.set(labels, v?.dead ?? 0);
      paused.set(labels, v?.paused ? 1 : 0);
    }
    ingestFailures.set(m.ingestFailures);
    waiting.set(m.waiting);
    if (host) {
      const now = Date.now();
      for (const c of host.channelStates()) {
        lastMessageAge.set({ channel: c.name }, (now - (host.activity.lastMessageAt(c.name) ?? started)) / 1000);
        listening.set({ channel: c.name }, c.source.listening ? 1 : 0);
      }
    }
  };
  return { registry, fill };
}
