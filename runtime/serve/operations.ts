import { ackCodesOf, deliveryPayloads, runChannel } from '../channel/channel.js';
import { fieldName } from '../hl7/field-names.js';
import { parseMessage } from '../hl7/parse.js';
import { DEFAULT_HL7_VERSION, tableVersionOf } from '../hl7/versions/tables.js';
import type { DiscardResult, Store, StoreMetrics, StoreStatus } from '../store/store.js';
import type { AuditEntry, MessageFilter, NewAuditEntry, StoredMessage } from '../store/types.js';
import type { ChannelHost, LoadedChannel } from './host.js';
import { openEnvelope } from './senders.js';

/**
 * What operators read and do, over the `Store` interface (whichever store is in use): the one
 * module behind both the CLI (`messages`, `messages show`, `replay`, `prune`, `status`, `audit`)
 * and the admin HTTP API. With a host (inside `hl7c serve`) it also sees the running channels and
 * queue workers, replays through the channels as loaded, and pauses destinations; without one
 * (the CLI) replay compiles the channel from its recorded spec (`loadChannel`).
 */
export interface OperationsOptions {
  store: Store;
  host?: ChannelHost;
  /** A channel's current version when no host runs it (the CLI compiles it from its spec). */
  loadChannel?: (name: string) => Promise<LoadedChannel>;
}

/** Search keys, as the API's query string and the CLI's options give them. */
export interface MessageQuery {
  channel?: string;
  type?: string;
  /** A message status, a delivery state, or `error_queue` (rejected, error, dead, stopped). */
  status?: string;
  since?: number;
  until?: number;
  controlId?: string;
  identifier?: string;
  limit?: number;
  /** Paging: the `next` of the previous page. */
  before?: string;
  oldestFirst?: boolean;
}

const MAX_LIMIT = 1000;

/** One line of a message list: no content and no identifiers (PHI-free). */
export interface MessageSummary {
  id: number;
  channel: string;
  received_at: string;
  type: string | null;
  control_id: string | null;
  status: string;
  reason: string | null;
  deliveries: Array<{ destination: string; state: string }>;
}

export interface FieldView {
  position: string;
  name: string | null;
  value: string;
}

export interface MessageDetail {
  message: MessageSummary & { spec_version: string; source: string; ack_code: string | null; identifiers: Record<string, unknown> | null; pruned: boolean };
  raw: string | null;
  segments: Array<{ name: string; index: number; fields: FieldView[] }>;
  /** The HL7 tables the field names come from: the message's own MSH-12 (v2.8.2 reads v2.8), v2.5.1 when it has none hl7c knows. */
  field_names_version?: string;
  /** Why the segments are empty although the message has content. */
  parse_error?: string;
  ack: string | null;
  /** The first destination's payload (the channel's output unless that destination makes its own). */
  output: unknown;
  deliveries: Array<{
    id: number;
    destination: string;
    state: string;
    /** What was (or is to be) sent, without the envelope. */
    payload: unknown;
    /** What the sender took from the message: the file name, query or headers. */
    envelope?: Record<string, unknown>;
    attempts: Array<{ at: string; outcome: string; answer: string | null }>;
    last_error: string | null;
  }>;
  history: Array<{ at: string; kind: string; detail: string | null }>;
}

export interface ChannelView {
  name: string;
  state: 'running' | 'stopped' | 'failed';
  spec: { file: string; hash: string };
  source: { kind: string; port?: number; listening: boolean };
  counts: { received: number; accepted: number; filtered: number; rejected: number; error: number; duplicate: number };
  last_message_at: string | null;
  per_minute: number[];
}

export interface DestinationView {
  channel: string;
  destination: string;
  kind: string | null;
  paused: boolean;
  /** Who paused it and when (ISO-8601), while it is paused. */
  paused_by: string | null;
  paused_at: string | null;
  state: 'ok' | 'failing' | 'stopped' | 'paused';
  depth: number;
  dead: number;
  oldest_age_seconds: number | null;
  last_error: string | null;
  last_error_at: string | null;
}

export interface ReplayReport {
  id: number;
  channel: string;
  status: string;
  reason?: string;
  replayed: Array<{ destination: string; entry_id: number }>;
  /** Destinations the new run goes to that were left alone: already delivered (name one to send it again). */
  skipped: Array<{ destination: string; why: string }>;
}

export interface HealthReport {
  /** ok: every channel listens and the store takes messages, nothing needs looking at; degraded: it
   * takes messages, but something needs an operator (reasons); unavailable: it cannot take messages. */
  status: 'ok' | 'degraded' | 'unavailable';
  reasons: string[];
  store: Record<string, unknown>;
  channels: Record<string, number>;
  messages: StoreMetrics['messages'];
}

/** What `hl7c status` prints and GET /api/status returns. */
export interface StatusReport extends StoreStatus {
  /** A store one node writes at a time (SQLite): no nodes are listed. */
  embedded: boolean;
  /** Destinations an operator paused: no node sends from them until resumed. */
  paused: Array<{ channel: string; destination: string; paused_by: string; paused_at: string }>;
  /** Open queues of destinations their channel's spec does not define (renamed or removed): nothing works them. */
  undefined_destinations: Array<{ channel: string; destination: string; count: number }>;
}

/** An error an API caller made (unknown id, wrong state): 404 / 409 rather than 500. */
export class OperationError extends Error {
  constructor(
    readonly status: 404 | 409 | 400,
    message: string,
  ) {
    super(message);
  }
}

/** A time as operators write it: "30d", "12h", "15m" ago, or an ISO date. */
export function parseTime(text: string, now = Date.now()): number {
  const m = /^(\d+)([dhm])$/.exec(text);
  if (m) return now - Number(m[1]) * { d: 86_400_000, h: 3_600_000, m: 60_000 }[m[2] as 'd' | 'h' | 'm'];
  const t = Date.parse(text);
  if (Number.isNaN(t)) throw new Error(`"${text}" is not a duration (30d, 12h, 15m) or a date`);
  return t;
}

const iso = (ms: number | null | undefined) => (ms === null || ms === undefined ? null : new Date(ms).toISOString());

/** Minutes over which messages answered AE/AR make /health say `degraded`. */
const RECENT_PROBLEM_MINUTES = 15;

export class Operations {
  readonly store: Store;
  readonly host?: ChannelHost;
  private readonly loadChannel?: (name: string) => Promise<LoadedChannel>;

  constructor(options: OperationsOptions) {
    this.store = options.store;
    this.host = options.host;
    this.loadChannel = options.loadChannel;
  }

  /** Stored messages, newest first unless `oldestFirst`, one page at a time. */
  async listStored(query: MessageQuery): Promise<{ rows: Array<StoredMessage & { deliveries: string }>; next: string | null }> {
    const limit = Math.max(1, query.limit ?? 100);
    const filter: MessageFilter = {
      channel: query.channel || undefined,
      status: query.status || undefined,
      since: query.since,
      until: query.until,
      controlId: query.controlId || undefined,
      messageType: query.type || undefined,
      identifier: query.identifier || undefined,
      newestFirst: !query.oldestFirst,
      afterId: query.before ? Number(query.before) : undefined,
      limit: limit + 1,
    };
    if (filter.afterId !== undefined && !Number.isInteger(filter.afterId)) throw new OperationError(400, `before=${query.before}: pass the "next" of the previous page`);
    const rows = await this.store.listMessages(filter);
    const more = rows.length > limit;
    const page = more ? rows.slice(0, limit) : rows;
    return { rows: page, next: more ? String(page[page.length - 1]!.id) : null };
  }

  async messages(query: MessageQuery): Promise<{ messages: MessageSummary[]; next: string | null }> {
    const { rows, next } = await this.listStored(query);
    return { messages: rows.map(summary), next };
  }

  /** One message, whole: content segment by segment with field names, ACK, output, every attempt. */
  async message(id: number): Promise<MessageDetail | undefined> {
    const found = await this.store.getMessage(id);
    if (!found) return undefined;
    const { message: m, deliveries, events } = found;
    const states = deliveries.map((d) => `${d.destination}:${d.state}`).join(' ');
    const enveloped = await this.envelopedDestinations(m.channel);
    const payloads = new Map(deliveries.map((d) => [d.id, openEnvelope(d.payload, enveloped(d.destination, d.payload))]));
    const first = deliveries.find((d) => d.payload);
    const detail: MessageDetail = {
      message: { ...summary({ ...m, deliveries: states }), spec_version: m.spec_version, source: m.source, ack_code: m.ack_code, identifiers: m.identifiers, pruned: m.pruned },
      raw: m.raw ? m.raw.toString('utf8') : null,
      segments: [],
      ack: m.ack ? m.ack.toString('utf8') : null,
      output: first ? outputOf(payloads.get(first.id)!.payload) : null,
      deliveries: deliveries.map((d) => ({
        id: d.id,
        destination: d.destination,
        state: d.state,
        payload: d.payload ? outputOf(payloads.get(d.id)!.payload) : null,
        ...(d.payload && enveloped(d.destination, d.payload) ? { envelope: payloads.get(d.id)!.envelope } : {}),
        last_error: d.last_error,
        attempts: events
          .filter((e) => e.delivery_id === d.id && /^attempt \d+: /.test(e.kind))
          .map((e) => ({ at: iso(e.at)!, outcome: e.kind.replace(/^attempt \d+: /, ''), answer: e.detail })),
      })),
      history: events.map((e) => ({ at: iso(e.at)!, kind: e.kind, detail: e.detail })),
    };
    if (m.raw) {
      try {
        Object.assign(detail, segmentsOf(m.raw));
      } catch (err) {
        detail.parse_error = (err as Error).message;
      }
    }
    return detail;
  }

  /** Channels: running ones from the host, and those the store knows that no longer run here. */
  async channels(): Promise<ChannelView[]> {
    const [specs, counts] = await Promise.all([this.store.channelSpecs(), this.store.counts()]);
    const running = new Map((this.host?.channelStates() ?? []).map((c) => [c.name, c]));
    const names = [...new Set([...running.keys(), ...specs.map((s) => s.name)])].sort();
    return names.map((name) => {
      const r = running.get(name);
      const spec = specs.find((s) => s.name === name);
      const byStatus = { accepted: 0, filtered: 0, rejected: 0, error: 0, duplicate: 0 };
      let received = 0;
      for (const c of counts.filter((x) => x.channel === name)) {
        received += c.count;
        if (c.status in byStatus) byStatus[c.status as keyof typeof byStatus] += c.count;
      }
      return {
        name,
        state: r ? 'running' : 'stopped',
        spec: { file: r?.specPath ?? spec?.spec_path ?? '', hash: r?.specVersion ?? spec?.spec_version ?? '' },
        source: r?.source ?? { kind: 'unknown', listening: false },
        counts: { received, ...byStatus },
        last_message_at: iso(this.host?.activity.lastMessageAt(name)),
        per_minute: this.host?.activity.perMinute(name) ?? new Array<number>(60).fill(0),
      };
    });
  }

  /** Every destination queue: the ones workers run here, and any the store has entries for. */
  async destinations(metrics?: StoreMetrics): Promise<DestinationView[]> {
    const [m, pauses] = await Promise.all([metrics ?? this.store.metrics(), this.store.pausedDestinations()]);
    const now = Date.now();
    const views = new Map<string, DestinationView>();
    const view = (channel: string, destination: string) => {
      const key = `${channel}\u0000${destination}`;
      let v = views.get(key);
      if (!v) views.set(key, (v = { channel, destination, kind: null, paused: false, paused_by: null, paused_at: null, state: 'ok', depth: 0, dead: 0, oldest_age_seconds: null, last_error: null, last_error_at: null }));
      return v;
    };
    for (const w of this.host?.workerStates() ?? []) {
      const v = view(w.channel, w.destination);
      v.kind = w.kind;
      if (w.lastError && (w.lastSentAt === null || w.lastError.at > w.lastSentAt)) {
        v.state = 'failing';
      }
      if (w.lastError) {
        v.last_error = w.lastError.error;
        v.last_error_at = iso(w.lastError.at);
      }
    }
    // Failing as the store has it: every node's attempts, so each node's API tells the same.
    for (const f of m.failing) view(f.channel, f.destination).state = 'failing';
    const stopped = new Set<string>();
    for (const d of m.deliveries) {
      const v = view(d.channel, d.destination);
      if (d.state === 'queued' || d.state === 'sending' || d.state === 'stopped') v.depth += d.count;
      if (d.state === 'dead') v.dead += d.count;
      if (d.state === 'stopped' && d.count > 0) stopped.add(`${d.channel}\u0000${d.destination}`);
    }
    // Paused in the store: by whoever, on whichever node, and honoured by all of them.
    for (const p of pauses) Object.assign(view(p.channel, p.destination), { paused: true, paused_by: p.paused_by, paused_at: iso(p.paused_at) });
    for (const o of m.oldestOpen) view(o.channel, o.destination).oldest_age_seconds = Math.max(0, (now - o.oldest) / 1000);
    for (const [key, v] of views) {
      if (stopped.has(key)) v.state = 'stopped';
      if (v.paused) v.state = 'paused';
    }
    return [...views.values()].sort((a, b) => a.channel.localeCompare(b.channel) || a.destination.localeCompare(b.destination));
  }

  /**
   * Runs a stored message again through its channel's current version (the one the host runs,
   * else compiled from its recorded spec). With `destination`, only that destination is queued
   * again (whatever it did before) and the others are left alone; without, every destination
   * the new run goes to except those that already have the message (a destination delivered to
   * is never sent it twice unless named).
   */
  async replay(id: number, options: { destination?: string } = {}): Promise<ReplayReport> {
    const found = await this.store.getMessage(id);
    if (!found) throw new OperationError(404, `no message ${id}`);
    const { message, deliveries: before } = found;
    if (!message.raw) throw new OperationError(409, `message ${id} was pruned; its content is gone`);
    const loaded = await this.channel(message.channel);
    const { definition } = loaded;
    if (options.destination !== undefined && !(options.destination in definition.destinations)) {
      throw new OperationError(404, `channel ${message.channel} has no destination ${options.destination}`);
    }
    const result = runChannel(definition, message.raw);
    let deliveries = deliveryPayloads(result, { channel: definition, raw: message.raw });
    const skipped: ReplayReport['skipped'] = [];
    if (options.destination !== undefined) {
      const wanted = options.destination;
      if (!deliveries.some((d) => d.destination === wanted)) {
        throw new OperationError(409, `message ${id} does not go to ${wanted} with the current spec (${result.status}${result.reason ? `: ${result.reason}` : ''})`);
      }
      deliveries = deliveries.filter((d) => d.destination === wanted);
    } else {
      const delivered = new Set(before.filter((d) => d.state === 'sent').map((d) => d.destination));
      for (const d of deliveries) if (delivered.has(d.destination)) skipped.push({ destination: d.destination, why: 'already delivered; name the destination to send it again' });
      deliveries = deliveries.filter((d) => !delivered.has(d.destination));
    }
    const now = Date.now();
    await this.store.recordReplay(
      id,
      {
        spec_version: loaded.specVersion,
        status: result.status,
        reason: result.reason ?? null,
        identifiers: Object.keys(result.identifiers).length ? result.identifiers : null,
        ack_code: ackCodesOf(result) ?? null,
        ack: null,
        deliveries,
        ...(options.destination !== undefined ? { only: options.destination } : {}),
      },
      now,
    );
    const after = (await this.store.getMessage(id))?.deliveries ?? [];
    const replayed = deliveries.map((d) => {
      const entry = after.filter((x) => x.destination === d.destination && x.state === 'queued').pop();
      this.host?.wake(message.channel, d.destination);
      return { destination: d.destination, entry_id: entry?.id ?? 0 };
    });
    this.host?.activity.emit({ kind: 'replay', at: now, channel: message.channel, ...(options.destination ? { destination: options.destination } : {}), summary: `message ${id} replayed (${result.status})` });
    return { id, channel: message.channel, status: result.status, ...(result.reason ? { reason: result.reason } : {}), replayed, skipped };
  }

  /** Replays every message a search finds (up to 10,000), one by one. */
  async replayMatching(query: MessageQuery, options: { destination?: string } = {}): Promise<ReplayReport[]> {
    const { rows } = await this.listStored({ ...query, limit: Math.min(query.limit ?? 10_000, 10_000), oldestFirst: true, before: undefined });
    const reports: ReplayReport[] = [];
    // Oldest first: an ordered queue gets them back in the order they were received.
    for (const m of rows) {
      if (options.destination !== undefined) {
        try {
          reports.push(await this.replay(m.id, options));
        } catch (err) {
          // A message of the set that does not go there: skipped, the rest still replayed.
          if (!(err instanceof OperationError && err.status === 409)) throw err;
        }
      } else reports.push(await this.replay(m.id, options));
    }
    return reports;
  }

  /**
   * The dead or stopped entries a search finds (only `destination`'s, when named), oldest first,
   * up to 10,000: what discardMatching would discard. The search's status is `dead`, `stopped`
   * or `error_queue` (both), whatever else it names.
   */
  async discardable(query: MessageQuery, destination?: string): Promise<Array<{ id: number; channel: string; destination: string; state: string }>> {
    const status = query.status === 'dead' || query.status === 'stopped' ? query.status : 'error_queue';
    const { rows } = await this.listStored({ ...query, status, limit: Math.min(query.limit ?? 10_000, 10_000), oldestFirst: true, before: undefined });
    const held = rows.flatMap((m) =>
      summary(m)
        .deliveries.filter((d) => (d.state === 'dead' || d.state === 'stopped') && (status === 'error_queue' || d.state === status) && (destination === undefined || d.destination === destination))
        .map((d) => ({ id: m.id, channel: m.channel, destination: d.destination, state: d.state })),
    );
    if (query.status !== undefined || destination === undefined) return held;
    // Queued for a destination no spec defines: nothing will ever work them, so they can go too.
    const orphaned: typeof held = [];
    for (const q of await this.undefinedQueues()) {
      if (q.destination !== destination || (query.channel !== undefined && q.channel !== query.channel)) continue;
      const { rows: queued } = await this.listStored({ channel: q.channel, status: 'queued', limit: 10_000, oldestFirst: true });
      for (const m of queued) {
        for (const d of summary(m).deliveries) if (d.destination === destination && d.state === 'queued') orphaned.push({ id: m.id, channel: m.channel, destination, state: d.state });
      }
    }
    return [...held, ...orphaned];
  }

  /**
   * Whether a channel's spec (the one running here, or else the one the store recorded) does
   * not define this destination; undefined when that cannot be told (a channel this node does
   * not run, and no way to load its spec).
   */
  async destinationUndefined(channel: string, destination: string): Promise<boolean | undefined> {
    if (this.host?.loaded(channel)) return !this.host.hasDestination(channel, destination);
    if (!this.loadChannel) return undefined;
    try {
      return !(destination in (await this.loadChannel(channel)).definition.destinations);
    } catch {
      return undefined;
    }
  }

  /** Open queues (entries waiting) of destinations their channel's spec does not define: nothing delivers them. */
  async undefinedQueues(): Promise<Array<{ channel: string; destination: string; count: number }>> {
    const out: Array<{ channel: string; destination: string; count: number }> = [];
    for (const q of await this.store.openQueues()) if ((await this.destinationUndefined(q.channel, q.destination)) === true) out.push(q);
    return out;
  }

  /** Discards every entry discardable() finds; returns them. */
  async discardMatching(query: MessageQuery, destination: string | undefined, by: string): Promise<Array<{ id: number; channel: string; destination: string; state: string }>> {
    const entries = await this.discardable(query, destination);
    for (const e of entries) await this.discard(e.id, e.destination, by);
    return entries;
  }

  /** Gives up on a dead or stopped entry (a stopped one no longer holds its queue). */
  async discard(id: number, destination: string, by: string): Promise<void> {
    const message = (await this.store.getMessage(id))?.message;
    if (!message) throw new OperationError(404, `no message ${id}`);
    const orphaned = (await this.destinationUndefined(message.channel, destination)) === true;
    const result: DiscardResult = await this.store.discardDelivery(id, destination, Date.now(), by, orphaned);
    if (result === 'no-such-entry') throw new OperationError(404, `message ${id} has no entry for destination ${destination}`);
    if (result === 'not-dead-or-stopped') throw new OperationError(409, `message ${id}'s entry for ${destination} is neither dead nor stopped; only those can be discarded`);
    this.host?.wake(message.channel, destination);
    this.host?.activity.emit({ kind: 'discard', at: Date.now(), channel: message.channel, destination, summary: `message ${id}'s entry for ${destination} discarded by ${by}` });
  }

  /**
   * Pauses or resumes a destination for every node on the store (kept there: a restart keeps it,
   * and a serve honours one made by the CLI or another node at its next claim). `changed` is
   * false when it already was so (a second pause keeps the first one's who and when).
   */
  async setPaused(channel: string, destination: string, paused: boolean, by: string): Promise<{ changed: boolean; destination: DestinationView }> {
    if (!(await this.knowsDestination(channel, destination, paused))) throw new OperationError(404, `no destination ${channel}/${destination}: name a channel and one of its destinations`);
    const changed = await this.store.setPaused(channel, destination, paused ? { by, at: Date.now() } : null);
    this.host?.pausedChanged(channel, destination, paused);
    if (changed) this.host?.activity.emit({ kind: paused ? 'pause' : 'resume', at: Date.now(), channel, destination, summary: `${channel}/${destination} ${paused ? 'paused' : 'resumed'} by ${by}` });
    const view = (await this.destinations()).find((d) => d.channel === channel && d.destination === destination)!;
    return { changed, destination: view };
  }

  /** A destination of a channel running here, of a spec the store recorded, or one with entries (or paused, to resume). */
  private async knowsDestination(channel: string, destination: string, pausing: boolean): Promise<boolean> {
    if (this.host?.hasDestination(channel, destination)) return true;
    const m = await this.store.metrics();
    if (m.deliveries.some((d) => d.channel === channel && d.destination === destination)) return true;
    if (!pausing && (await this.store.pausedDestinations()).some((p) => p.channel === channel && p.destination === destination)) return true;
    if (!this.loadChannel || this.host?.loaded(channel)) return false;
    try {
      return destination in (await this.loadChannel(channel)).definition.destinations;
    } catch {
      return false;
    }
  }

  /**
   * unavailable (503): the store cannot take messages, or a channel's source does not listen.
   * degraded (200): messages are taken, but something needs an operator: dead letters, a stopped
   * or paused queue, a failing destination, messages answered AE/AR lately, a rejected reload,
   * received messages waiting to be taken into SQLite.
   */
  async health(): Promise<HealthReport> {
    const reachable = this.store.health?.();
    const channels = this.host?.ports() ?? {};
    if (reachable && reachable.status !== 'ok') {
      return { status: 'unavailable', reasons: [`the store cannot be reached: ${reachable.error ?? 'unknown error'}`], store: { ...reachable }, channels, messages: [] };
    }
    let m: StoreMetrics;
    try {
      m = await this.store.metrics();
    } catch (err) {
      return { status: 'unavailable', reasons: [`the store could not be read: ${(err as Error).message}`], store: { status: 'unavailable', error: (err as Error).message }, channels, messages: [] };
    }
    const unavailable: string[] = [];
    const degraded: string[] = [];
    for (const c of this.host?.channelStates() ?? []) {
      if (!c.source.listening) unavailable.push(`channel ${c.name}: its ${c.source.kind} source is not listening`);
      const problems = this.host!.activity.recentProblems(c.name, RECENT_PROBLEM_MINUTES);
      if (problems > 0) degraded.push(`channel ${c.name}: ${problems} message(s) answered with an error or a rejection in the last ${RECENT_PROBLEM_MINUTES} minutes`);
    }
    const store: Record<string, unknown> = { ...(reachable ?? {}), status: 'ok' };
    if (m.waiting > 0) {
      store.waiting = m.waiting;
      store.error = m.lastError;
      degraded.push(`${m.waiting} received message(s) not yet taken into the store${m.lastError ? `: ${m.lastError}` : ''}`);
    }
    for (const d of await this.destinations(m)) {
      const q = `${d.channel}/${d.destination}`;
      if (d.dead > 0) degraded.push(`${q}: ${d.dead} dead-lettered entr${d.dead === 1 ? 'y' : 'ies'} (replay or discard them)`);
      if (d.state === 'stopped') degraded.push(`${q}: queue stopped by an entry that failed for good (replay or discard it)`);
      else if (d.state === 'failing') degraded.push(`${q}: failing (${d.last_error ?? 'no answer'})`);
      if (d.paused) degraded.push(`${q}: paused by an operator`);
    }
    // From the counters already read (openQueues would scan the deliveries table).
    const waiting = new Map<string, { channel: string; destination: string; count: number }>();
    for (const d of m.deliveries) {
      if (d.state !== 'queued' && d.state !== 'sending') continue;
      const key = `${d.channel}\u0000${d.destination}`;
      const q = waiting.get(key) ?? { channel: d.channel, destination: d.destination, count: 0 };
      q.count += d.count;
      waiting.set(key, q);
    }
    const undefinedHere = [...waiting.values()].filter((q) => q.count > 0 && this.host?.loaded(q.channel) && !this.host.hasDestination(q.channel, q.destination));
    for (const q of undefinedHere) {
      degraded.push(`${q.channel}/${q.destination}: ${q.count} entr${q.count === 1 ? 'y' : 'ies'} queued for a destination the channel's spec does not define, which nothing delivers (replay them to another destination, or discard them)`);
    }
    const last = this.host?.activity.reloads.last;
    if (last?.outcome === 'rejected') degraded.push(`the last spec change was rejected (${iso(last.at)}), the running version stays: ${last.error ?? 'see the log'}`);
    const config = this.host?.activity.configReloads.last;
    if (config?.outcome === 'rejected') degraded.push(`the last serve config change was rejected (${iso(config.at)}), the alert rules in force stay: ${config.error ?? 'see the log'}`);
    const status = unavailable.length ? 'unavailable' : degraded.length ? 'degraded' : 'ok';
    return { status, reasons: [...unavailable, ...degraded], store, channels, messages: m.messages };
  }

  /**
   * The nodes on the store, the spec versions they run, the open queues and the paused
   * destinations: from the store (so the same wherever it is asked, CLI or API). A store of one
   * node (SQLite) lists no nodes; its queues come from the counters.
   */
  async status(): Promise<StatusReport> {
    const [base, paused] = await Promise.all([this.store.status ? this.store.status() : this.embeddedStatus(), this.store.pausedDestinations()]);
    return { ...base, embedded: !this.store.status, paused: paused.map((p) => ({ ...p, paused_at: iso(p.paused_at)! })), undefined_destinations: await this.undefinedQueues() };
  }

  private async embeddedStatus(): Promise<StoreStatus> {
    const [specs, metrics] = await Promise.all([this.store.channelSpecs(), this.store.metrics()]);
    const now = Date.now();
    const open = new Map<string, StoreStatus['queues'][number]>();
    for (const d of metrics.deliveries) {
      if (d.state !== 'queued' && d.state !== 'sending' && d.state !== 'stopped') continue;
      const key = `${d.channel}\u0000${d.destination}`;
      const q = open.get(key) ?? { channel: d.channel, destination: d.destination, queued: 0, sending: 0, stopped: 0, oldest_age_ms: 0, owner: null };
      q[d.state] += d.count;
      open.set(key, q);
    }
    for (const o of metrics.oldestOpen) {
      const q = open.get(`${o.channel}\u0000${o.destination}`);
      if (q) q.oldest_age_ms = Math.max(0, now - o.oldest);
    }
    const queues = [...open.values()].filter((q) => q.queued + q.sending + q.stopped > 0).sort((a, b) => a.channel.localeCompare(b.channel) || a.destination.localeCompare(b.destination));
    return { now, nodes: [], channels: specs.map((c) => ({ name: c.name, spec_version: c.spec_version, nodes: [] })).sort((a, b) => a.name.localeCompare(b.name)), queues };
  }

  audit(entry: Omit<NewAuditEntry, 'at' | 'detail'> & { detail?: string | null }): Promise<void> {
    return this.store.recordAudit({ ...entry, at: Date.now(), detail: entry.detail ?? null });
  }

  auditTrail(options: { limit?: number; before?: number } = {}): Promise<AuditEntry[]> {
    return this.store.listAudit({ limit: Math.min(Math.max(1, options.limit ?? 100), MAX_LIMIT), before: options.before });
  }

  /**
   * Which destinations' stored payloads start with an envelope line, from the channel as it runs
   * (or as compiled from its spec). A channel that can no longer be loaded is judged by the payload:
   * a first line that is a JSON object, followed by more, where the whole is not one JSON value.
   */
  private async envelopedDestinations(channel: string): Promise<(destination: string, payload: Buffer | null) => boolean> {
    let definition: LoadedChannel['definition'] | undefined;
    try {
      definition = (await this.channel(channel)).definition;
    } catch {
      definition = undefined;
    }
    if (definition) {
      const destinations = definition.destinations;
      return (destination) => {
        const target = destinations[destination]?.target;
        return !!target && 'envelope' in target && !!target.envelope;
      };
    }
    return (_destination, payload) => looksEnveloped(payload);
  }

  private async channel(name: string): Promise<LoadedChannel> {
    const running = this.host?.loaded(name);
    if (running) return running;
    if (!this.loadChannel) throw new OperationError(409, `channel ${name} is not running here`);
    return this.loadChannel(name);
  }
}

function summary(m: StoredMessage & { deliveries: string }): MessageSummary {
  return {
    id: m.id,
    channel: m.channel,
    received_at: iso(m.received_at)!,
    type: m.message_type,
    control_id: m.control_id,
    status: m.status,
    reason: m.reason,
    deliveries: m.deliveries
      ? m.deliveries.split(' ').map((d) => {
          const at = d.lastIndexOf(':');
          return { destination: d.slice(0, at), state: d.slice(at + 1) };
        })
      : [],
  };
}

/** Each segment's fields that hold something, named from the HL7 tables of the message's own version (MSH-12). */
function segmentsOf(raw: Buffer): Pick<MessageDetail, 'segments' | 'field_names_version'> {
  const message = parseMessage(raw);
  const version = tableVersionOf(message.version) ?? DEFAULT_HL7_VERSION;
  const segments = message.segments
    .filter((s) => !s.isBlank)
    .map((s, index) => {
      const fields: FieldView[] = [];
      for (let n = 1; n <= s.fieldCount; n++) {
        const value = s.field(n);
        if (value !== '') fields.push({ position: `${s.name}-${n}`, name: fieldName(s.name, n, version), value });
      }
      return { name: s.name, index: index + 1, fields };
    });
  return { segments, field_names_version: version };
}

function looksEnveloped(payload: Buffer | null): boolean {
  if (!payload || payload[0] !== 0x7b) return false;
  const newline = payload.indexOf(0x0a);
  if (newline < 0 || newline === payload.length - 1) return false;
  try {
    JSON.parse(payload.toString('utf8'));
    return false;
  } catch {
    try {
      const line: unknown = JSON.parse(payload.subarray(0, newline).toString('utf8'));
      return typeof line === 'object' && line !== null && !Array.isArray(line);
    } catch {
      return false;
    }
  }
}

/** A delivery payload as the API shows it: JSON parsed, anything else as text. */
function outputOf(payload: Buffer | null): unknown {
  if (!payload) return null;
  const text = payload.toString('utf8');
  const first = text.trimStart()[0];
  if (first === '{' || first === '[') {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      // Not JSON after all: shown as text.
    }
  }
  return text;
}
