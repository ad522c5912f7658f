import { mkdir, readdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import type { Message } from '../hl7/message.js';
import http from 'node:http';
import { basename, join } from 'node:path';
import { timingSafeEqual } from 'node:crypto';
import { ackForPayload, acksForPayload, HL7_ERROR, readHeaderLeniently } from '../ack/ack.js';
import type { ChannelDefinition, ChannelResult, DestinationConfig, PayloadKind, SourceConfig, TlsFiles } from '../channel/channel.js';
import type { ServerTlsOptions } from '../mllp/tls.js';
import { readFileSync } from 'node:fs';
import { ackCodesOf, acksOf, answerFor, deliveryPayloads, inputKind, runChannel } from '../channel/channel.js';
import { receive } from '../ack/receive.js';
import { parseBatch } from '../hl7/parse.js';
import { tableVersionOf } from '../hl7/versions/tables.js';
import type { Logger } from '../log.js';
import { allowList, DEFAULT_IDLE_TIMEOUT_MS, isAllowed, MllpServer } from '../mllp/server.js';
import { ThrottledLog } from '../log.js';
import { maskReason } from './mask-reason.js';
import { checkHttpSourceAuth } from './source-guard.js';
import type { Store } from '../store/store.js';
import type { QueuedDelivery } from '../store/types.js';
import type { AttemptOutcome, DeliveryContext, Sender } from './senders.js';
import { createSender } from './senders.js';
import { withSpecRelativePaths } from './spec-paths.js';
import { DEFAULT_LEASE_MS, DestinationWorker } from './worker.js';
import { asDuplicate, dedupeKeyOf, dedupeOf } from './dedupe.js';
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { faultPoint } from '../faults.js';
import { ServeActivity } from './activity.js';

/** A compiled channel and the spec version it came from. */
export interface LoadedChannel {
  definition: ChannelDefinition;
  specPath: string;
  /** Hash of the spec text; stored with every message. */
  specVersion: string;
}

interface Listener {
  /** Where it actually listens (the real port when the spec says 0). */
  key: string;
  /** What the spec asked for; a reload moves the listener only when this changes. */
  configured: string;
  close(): Promise<void>;
  /** True while it accepts connections (or, for a file source, watches its directory). */
  listening(): boolean;
  /** What the source refused or dropped so far (see MllpServerCounters). */
  counters?(): Record<string, number>;
}

interface Runner {
  current: LoadedChannel;
  listener: Listener;
}

export interface HostOptions {
  /** This node's name as the owner of the queue entries it claims (default host:pid:random). */
  owner?: string;
  /** How long a claim holds without renewal. */
  leaseMs?: number;
  /** Milliseconds of event-loop time one message may take before it is stopped and answered AE (default 1000). */
  processingBudgetMs?: number;
}

/** A running channel as the admin API shows it. */
export interface ChannelState {
  name: string;
  specPath: string;
  specVersion: string;
  source: { kind: string; port?: number; listening: boolean };
}

/** A destination queue's worker on this node: paused, and how its last attempts went. */
export interface WorkerState {
  channel: string;
  destination: string;
  kind: string;
  paused: boolean;
  lastError: { error: string; at: number } | null;
  lastSentAt: number | null;
}

const MAX_HTTP_BODY = 10 * 1024 * 1024;

/**
 * Runs channels: their sources, store-before-ACK, and a worker per destination queue. A new set
 * of channels is applied without dropping connections: the version a message starts on is the
 * one it finishes on, an unchanged port keeps its listener and its open connections, a changed
 * port moves the listener, and a removed channel's queues drain before their workers stop.
 */
export class ChannelHost {
  private readonly runners = new Map<string, Runner>();
  private readonly workers = new Map<string, DestinationWorker>();
  private drainTimer: NodeJS.Timeout | null = null;
  /** Answers waiting for deliveries (answer_after / answer_from), by message id: the receivers' own ACKs as they come. */
  private readonly answerWaiters = new Map<number, { answers: Map<string, Buffer>; wake: () => void }>();
  /** Dedupe keys of messages being stored now: a second copy waits for the first. */
  private readonly dedupeKeysRecording = new Map<string, Promise<unknown>>();
  private closed = false;

  /** This node, as the owner of the queue entries it claims: unique per process, restarts included. */
  readonly owner: string;
  /** What this node saw (messages per channel, ACK latency, reloads), for the admin API. */
  readonly activity = new ServeActivity();
  private readonly leaseMs: number;

  constructor(
    private readonly store: Store,
    private readonly log: Logger,
    private readonly options: HostOptions = {},
  ) {
    this.owner = options.owner ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
    this.leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
  }

  /** Ports the channels listen on (useful when specs ask for port 0). */
  ports(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [name, runner] of this.runners) {
      // A channel source listens on nothing.
      if (runner.listener.key.startsWith('channel:')) continue;
      const port = Number(runner.listener.key.split(':').pop());
      out[name] = port;
    }
    return out;
  }

  /** Per channel, what its source refused or dropped (connections refused, noise bytes, oversize frames…), for metrics. */
  sourceCounters(): Record<string, Record<string, number>> {
    const out: Record<string, Record<string, number>> = {};
    for (const [name, runner] of this.runners) {
      const counters = runner.listener.counters?.();
      if (counters) out[name] = counters;
    }
    return out;
  }

  /** A sender whose attempts wake an answer waiting for them (answer_after / answer_from), with the receiver's own ACK. */
  private observed(destination: string, sender: Sender): Sender {
    return {
      send: async (delivery, context) => {
        const outcome = await sender.send(delivery, context);
        const waiter = this.answerWaiters.get(delivery.message_id);
        if (waiter) {
          if (outcome.answer) waiter.answers.set(destination, outcome.answer);
          // The worker records the outcome next: look again soon.
          waiter.wake();
        }
        return outcome;
      },
      close: () => sender.close(),
    };
  }

  /** The channels running now, with their spec and whether their source listens. */
  channelStates(): ChannelState[] {
    return [...this.runners.values()].map((r) => {
      const port = Number(r.listener.key.split(':').pop());
      return {
        name: r.current.definition.name,
        specPath: r.current.specPath,
        specVersion: r.current.specVersion,
        source: { kind: r.current.definition.source.kind, ...(Number.isInteger(port) && port > 0 ? { port } : {}), listening: r.listener.listening() },
      };
    });
  }

  /** The version of a channel running now (replay runs through it). */
  loaded(channel: string): LoadedChannel | undefined {
    return this.runners.get(channel)?.current;
  }

  /** Every destination queue this node works. */
  workerStates(): WorkerState[] {
    return [...this.workers.values()].map((w) => ({
      channel: w.channel,
      destination: w.destination,
      kind: w.currentConfig.target.kind,
      paused: w.paused,
      lastError: w.lastError,
      lastSentAt: w.lastSentAt,
    }));
  }

  /**
   * An operator paused or resumed a destination (the store holds it, for every node): this
   * node's worker stops before the next entry, or looks at its queue now. False when no such
   * destination is worked here.
   */
  pausedChanged(channel: string, destination: string, paused: boolean): boolean {
    const worker = this.workers.get(workerKey(channel, destination));
    worker?.setPaused(paused);
    return worker !== undefined;
  }

  /** Whether this node works a destination (a channel running here names it). */
  hasDestination(channel: string, destination: string): boolean {
    return this.workers.has(workerKey(channel, destination)) || destination in (this.runners.get(channel)?.current.definition.destinations ?? {});
  }

  /** New work for a queue (a replay, a discarded head): its worker looks now. */
  wake(channel: string, destination: string): void {
    this.workers.get(workerKey(channel, destination))?.wake();
  }

  async start(): Promise<void> {
    await this.store.openForWriting(this.owner);
    // A worker looks at its queue as soon as received messages are in it, not at its next poll.
    this.store.onQueued((channel, destination) => this.workers.get(workerKey(channel, destination))?.wake());
    // Only entries whose sender is gone: a live node's leases are its own.
    const requeued = await this.store.releaseExpiredLeases();
    if (requeued > 0) this.log.warn({ requeued }, 'deliveries interrupted by the last stop are queued again (at-least-once)');
    // Queues left by channels that are not loaded any more still drain.
    for (const q of await this.store.openQueues()) this.log.info(q, 'queued deliveries found');
  }

  /** Applies a set of channels: starts new ones, swaps changed ones, retires removed ones. */
  async apply(given: LoadedChannel[]): Promise<void> {
    const channels = given.map((c) => ({ ...c, definition: withSpecRelativePaths(c.definition, c.specPath) }));
    const wanted = new Map(channels.map((c) => [c.definition.name, c]));
    for (const c of channels) {
      if (dedupeOf(c.definition) && !this.store.findFirstByKey) throw new Error(`channel ${c.definition.name}: its source has dedupe, which the store ${this.store.location} cannot do yet; remove dedupe or use a SQLite store`);
    }
    for (const loaded of channels) {
      const name = loaded.definition.name;
      const runner = this.runners.get(name);
      await this.store.setChannel(name, loaded.specPath, loaded.specVersion, Date.now());
      if (!runner) {
        const fresh: Runner = { current: loaded, listener: { key: '', configured: '', close: async () => undefined, listening: () => false } };
        fresh.listener = await this.listen(fresh).catch((err: Error) => Promise.reject(listenError(err, name, loaded.specPath)));
        this.runners.set(name, fresh);
        this.log.info({ channel: name, version: loaded.specVersion, listener: fresh.listener.key }, 'channel started');
      } else {
        const before = runner.current;
        runner.current = loaded;
        const key = listenerKey(loaded.definition.source, name);
        if (key !== runner.listener.configured) {
          const old = runner.listener;
          runner.listener = await this.listen(runner).catch((err: Error) => Promise.reject(listenError(err, name, loaded.specPath)));
          await old.close();
          this.log.info({ channel: name, from: old.key, to: runner.listener.key }, 'channel listener moved');
        }
        if (before.specVersion !== loaded.specVersion) this.log.info({ channel: name, version: loaded.specVersion }, 'channel updated');
      }
      for (const [destination, config] of Object.entries(loaded.definition.destinations)) this.ensureWorker(name, destination, config);
    }
    for (const [name, runner] of this.runners) {
      if (wanted.has(name)) continue;
      this.runners.delete(name);
      await runner.listener.close();
      this.log.info({ channel: name }, 'channel removed; its queues drain before their workers stop');
    }
    this.scheduleDrainCheck();
    await this.warnUndefinedQueues();
  }

  /**
   * Entries queued for a destination a running channel no longer defines (renamed or removed
   * while they waited) have no worker: said at start and on every reload, or they would wait
   * unseen. Channel, destination and count only.
   */
  private async warnUndefinedQueues(): Promise<void> {
    const open = await this.store.openQueues().catch(() => []);
    for (const q of open) {
      if (!this.runners.has(q.channel) || this.hasDestination(q.channel, q.destination)) continue;
      this.log.warn(
        { channel: q.channel, destination: q.destination, count: q.count },
        "entries queued for a destination the channel's spec does not define: nothing delivers them; replay them to another destination (hl7c replay --destination) or discard them (hl7c discard --destination)",
      );
    }
  }

  /** The latest message in the window with the same key fields (whatever its content), if any. */
  private async reusedKey(channel: string, message: Message, paths: string[], since: number): Promise<number | undefined> {
    const keyOnly = dedupeKeyOf(channel, message, paths);
    if (!message.controlId || keyOnly === null) return undefined;
    const rows = await this.store.listMessages({ channel, controlId: message.controlId, since, newestFirst: true, limit: 20 }).catch(() => []);
    for (const row of rows) {
      if (!row.raw) continue;
      const earlier = receive(row.raw);
      if (earlier.ok && dedupeKeyOf(channel, earlier.message, paths) === keyOnly) return row.id;
    }
    return undefined;
  }

  /** Runs a payload through a channel and stores it; the result carries the ACK to send. */
  async process(channel: string, payload: Buffer, source: string): Promise<ChannelResult & { id?: number }> {
    const runner = this.runners.get(channel);
    if (!runner) throw new Error(`channel ${channel} is not running`);
    return this.handle(runner.current, payload, source);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.drainTimer) clearInterval(this.drainTimer);
    await Promise.all([...this.runners.values()].map((r) => r.listener.close()));
    this.runners.clear();
    // Every message received has been answered; deliveries in flight are finishing.
    faultPoint('during-drain');
    await Promise.all([...this.workers.values()].map((w) => w.stop()));
    this.workers.clear();
  }

  private async handle(version: LoadedChannel, payload: Buffer, source: string): Promise<ChannelResult & { id?: number }> {
    faultPoint('after-receive');
    const started = performance.now();
    const result = await this.handleAndStore(version, payload, source);
    this.activity.received(version.definition.name, result.id === undefined ? 'not_stored' : result.status, Date.now(), (performance.now() - started) / 1000);
    return result;
  }

  private async handleAndStore(version: LoadedChannel, payload: Buffer, source: string): Promise<ChannelResult & { id?: number }> {
    const definition = version.definition;
    let result: ChannelResult;
    try {
      result = runChannel(definition, payload, { processingBudgetMs: this.options.processingBudgetMs });
    } catch (err) {
      // A bug in generated or runtime code: the message is still stored and answered.
      this.log.error({ channel: definition.name, err: (err as Error).message }, 'channel failed on a message');
      result = { status: 'error', reason: `internal error: ${(err as Error).message}`, identifiers: {}, outputs: {}, ...errorAnswer(definition, payload, 'error', 'internal error in the receiving application') };
    }
    const message = result.message;
    if (message && definition.hl7_version) this.countOtherVersion(definition, message.version);
    const dedupe = dedupeOf(definition);
    const dedupeKey = dedupe && message && result.status !== 'error' ? dedupeKeyOf(definition.name, message, dedupe.key, payload) : null;
    let id: number;
    let deliveries: Array<{ destination: string; payload: Buffer }> = [];
    try {
      if (dedupe && dedupeKey && this.store.findFirstByKey) {
        // A first copy still being stored (same turn, another connection) is waited for.
        await this.dedupeKeysRecording.get(dedupeKey);
        const first = await this.store.findFirstByKey(definition.name, dedupeKey, Date.now() - dedupe.window_ms);
        // Answered from the header as received (a transform may have rewritten MSH).
        if (first) result = asDuplicate(result, first, (outcome, errors) => {
          const received = receive(payload);
          return received.ok ? answerFor(definition, received.message, outcome, errors) : {};
        });
        else if (message) {
          const reused = await this.reusedKey(definition.name, message, dedupe.key, Date.now() - dedupe.window_ms);
          if (reused !== undefined) {
            const note = `reuses the dedupe key (${dedupe.key.join(', ')}) of message ${reused} with other content: processed as a new message`;
            this.log.warn({ channel: definition.name, controlId: message.controlId, first: reused }, 'a control id seen within the dedupe window came with another message; processed as a new message, not as a duplicate');
            result = { ...result, reason: result.reason ? `${result.reason}; ${note}` : note };
          }
        }
      }
      deliveries = result.status === 'duplicate' ? [] : deliveryPayloads(result, { channel: definition, raw: payload });
      const recorded = this.store.record({
        channel: definition.name,
        spec_version: version.specVersion,
        source,
        received_at: Date.now(),
        control_id: message?.controlId ?? (readHeaderLeniently(payload.subarray(0, 4096).toString('latin1')).controlId || null),
        message_type: message ? message.getRaw('MSH-9') : null,
        raw: payload,
        status: result.status,
        reason: result.reason ?? null,
        identifiers: Object.keys(result.identifiers).length ? result.identifiers : null,
        ack_code: ackCodesOf(result) ?? (result.response ? String(result.response.status) : null),
        ack: result.ack ? Buffer.concat(acksOf(result)) : null,
        deliveries,
        dedupe_key: dedupeKey,
      });
      if (dedupeKey) {
        const settled = recorded.catch(() => undefined);
        this.dedupeKeysRecording.set(dedupeKey, settled);
        void settled.then(() => this.dedupeKeysRecording.get(dedupeKey) === settled && this.dedupeKeysRecording.delete(dedupeKey));
      }
      id = await recorded;
    } catch (err) {
      // Not stored means not acknowledged: the sender keeps the message and tries again.
      this.log.error({ channel: definition.name, err: (err as Error).message }, 'could not store a message; answering with an error');
      return { ...result, ...errorAnswer(definition, payload, 'not_stored', 'the message could not be stored; send it again') };
    }
    const log = { channel: definition.name, id, controlId: message?.controlId, type: message?.getRaw('MSH-9'), status: result.status, ack: ackCodesOf(result) };
    if (result.status === 'accepted' || result.status === 'filtered') this.log.info(log, 'message stored');
    else if (result.status === 'duplicate') this.log.info({ ...log, reason: result.reason }, 'duplicate stored; answered as the first copy was');
    else this.log.warn({ ...log, reason: result.reason }, 'message stored and not accepted');
    return { ...result, id };
  }

  /**
   * answer_after / answer_from (Mirth's "Destinations completed" and "respond from d1"): the
   * message is stored and queued as always, and the answer waits until the named destinations
   * delivered it (the answer stored at receipt: AA, HTTP 200; with answer_from, the receiver's
   * own ACK as it came) or one failed for good (AE naming it, HTTP 502; with answer_from, the
   * receiver's own AE/AR when it gave one). The store is asked, so a delivery another node made
   * counts too (its receiver's ACK is only known here: hl7c's AA stands in). Past wait_ms the
   * answer is the one made at receipt: the message is safe, and still being delivered.
   */
  private async answerAfterDeliveries(definition: ChannelDefinition, payload: Buffer, result: ChannelResult & { id?: number }): Promise<ChannelResult & { id?: number }> {
    const source = definition.source;
    const answer = source.kind === 'mllp' || source.kind === 'http' ? source.answer : undefined;
    const id = result.id;
    if (!answer || id === undefined || result.status !== 'accepted') return result;
    const waiter = { answers: new Map<string, Buffer>(), wake: () => undefined as void };
    this.answerWaiters.set(id, waiter);
    try {
      const deadline = Date.now() + answer.wait_ms;
      let pause = 5;
      for (;;) {
        let stored: Awaited<ReturnType<Store['getMessage']>>;
        try {
          stored = await this.store.getMessage(id);
        } catch (err) {
          // The message is stored: the answer made then stands.
          this.log.warn({ channel: definition.name, id, err: (err as Error).message }, 'could not read the deliveries the answer waits for: answered as stored');
          return result;
        }
        const deliveries = (stored?.deliveries ?? []).filter((d) => answer.after.includes(d.destination));
        const failed = deliveries.find((d) => d.state === 'dead' || d.state === 'stopped' || d.state === 'discarded');
        if (failed || deliveries.every((d) => d.state === 'sent')) {
          const passed = answer.from !== undefined ? waiter.answers.get(answer.from) : undefined;
          const settled = this.settledAnswer(definition, payload, result, passed, failed && { destination: failed.destination, error: failed.last_error ?? failed.state });
          if (settled !== result) await this.recordAnswer(definition, id, settled, failed ? `after ${failed.destination} failed` : `after ${deliveries.map((d) => d.destination).join(', ')} delivered`);
          return settled;
        }
        const left = deadline - Date.now();
        if (left <= 0 || this.closed) {
          this.log.warn({ channel: definition.name, id, waitMs: answer.wait_ms }, 'the answer did not wait longer for the deliveries: answered as stored, still being delivered');
          return result;
        }
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.min(pause, left));
          waiter.wake = () => {
            clearTimeout(timer);
            pause = 5;
            setTimeout(resolve, pause);
          };
        });
        pause = Math.min(pause * 2, 200);
      }
    } finally {
      this.answerWaiters.delete(id);
    }
  }

  /** The answer once the deliveries settled: the receiver's own ACK passed through, AE / 502 naming a failed destination, or the answer as stored. */
  private settledAnswer(definition: ChannelDefinition, payload: Buffer, result: ChannelResult, passed: Buffer | undefined, failed: { destination: string; error: string } | undefined): ChannelResult {
    const none = { ack: undefined, ackCode: undefined, applicationAck: undefined, applicationAckCode: undefined };
    if (passed && definition.source.kind === 'mllp') {
      const code = passed.toString('latin1').split(/\r\n?|\n/).find((segment) => segment.startsWith('MSA'))?.slice(4, 6) || 'AA';
      return { ...result, ...none, ack: passed, ackCode: code };
    }
    if (!failed) return result;
    // A receiver's error may quote the message's values: the sender gets it masked, as the logs do.
    const reason = `destination ${failed.destination} could not deliver the message: ${maskReason(failed.error)}`;
    if (definition.source.kind === 'http') return { ...result, response: { status: 502, body: { status: 'error', reason } } };
    const received = receive(payload);
    if (!received.ok) return result;
    return { ...result, ...none, ...answerFor(definition, received.message, 'error', [{ code: HL7_ERROR.applicationInternalError, userMessage: reason }]) };
  }

  private async recordAnswer(definition: ChannelDefinition, id: number, answer: ChannelResult, detail: string): Promise<void> {
    const code = ackCodesOf(answer) ?? (answer.response ? String(answer.response.status) : null);
    if (!code || !this.store.recordAnswer) return;
    await this.store.recordAnswer(id, { ack_code: code, ack: answer.ack ? Buffer.concat(acksOf(answer)) : null, detail }, Date.now()).catch((err: Error) => this.log.warn({ channel: definition.name, id, err: err.message }, 'could not record the answer sent after the deliveries'));
  }

  /**
   * A message whose MSH-12 is not the version the spec states is processed all the same (senders
   * upgrade without notice, and refusing their traffic would stop the feed), but counted in
   * hl7c_messages_other_version_total and logged the first time: its paths were checked against
   * other tables, so a field the spec reads may be empty or mean something else.
   */
  private countOtherVersion(definition: ChannelDefinition, raw: string): void {
    if (tableVersionOf(raw) === definition.hl7_version) return;
    // A label, not data: digits and dots only, so odd MSH-12 values do not multiply series.
    const version = /^\d+(\.\d+){0,2}$/.test(raw) ? raw : raw === '' ? 'none' : 'other';
    if (this.activity.otherVersion(definition.name, version) === 1) {
      this.log.warn({ channel: definition.name, version, expected: definition.hl7_version }, 'message of another HL7 version than the spec states; processed, its paths were checked against the stated version');
    }
  }

  private ensureWorker(channel: string, destination: string, config: DestinationConfig): void {
    const key = workerKey(channel, destination);
    const existing = this.workers.get(key);
    // Sender and worker lines get channel and destination from this child logger only.
    const log = this.log.child({ channel, destination });
    if (existing) {
      // An unchanged destination keeps its sender, and so its open connection to the far side.
      if (JSON.stringify(existing.currentConfig) !== JSON.stringify(config)) existing.update(config, this.observed(destination, createSender(channel, destination, config, log)));
      return;
    }
    const worker = new DestinationWorker(this.store, channel, destination, config, this.observed(destination, createSender(channel, destination, config, log)), (d) => this.deliveryContext(d), log, this.owner, this.leaseMs);
    this.workers.set(key, worker);
    worker.start();
  }

  private deliveryContext(delivery: QueuedDelivery): DeliveryContext {
    return {
      controlId: delivery.control_id,
      handToChannel: (target, payload, from) => this.handToChannel(delivery, target, payload, from),
    };
  }

  /**
   * One attempt to hand a payload to another channel. It counts as sent only when the target
   * stored and accepted (or filtered) it: a payload of the kind the target does not take, one the
   * target rejects or answers with an error, and the hand-off past the hop limit are final failures
   * (dead-lettered, or the queue stops, per on_failure); one the target could not store is retried.
   */
  private async handToChannel(delivery: QueuedDelivery, target: string, payload: Buffer, from: string): Promise<AttemptOutcome> {
    const runner = this.runners.get(target);
    if (!runner) return { ok: false, retry: true, error: `channel ${target} is not running` };
    const stored = await this.store.getMessage(delivery.message_id);
    const hop = handOffHop(stored?.message.source ?? '') + 1;
    if (hop > HAND_OFF_HOP_LIMIT) {
      return { ok: false, retry: false, error: `hop limit: handing it to ${target} would be hand-off ${hop} in a row (at most ${HAND_OFF_HOP_LIMIT}); do the channels hand messages round in a loop?` };
    }
    const kind = payloadKind(payload);
    const takes = inputKind(runner.current.definition);
    if (kind !== takes) return { ok: false, retry: false, error: `channel ${target} takes ${takes.toUpperCase()}; ${from} hands it ${kind.toUpperCase()}` };
    const result = await this.handle(runner.current, payload, handOffSource(from, hop));
    if (result.id === undefined) return { ok: false, retry: true, error: `${target} could not store it: ${result.reason ?? 'unknown error'}` };
    const where = `message ${result.id} in ${target}`;
    if (result.status === 'rejected' || result.status === 'error') {
      return { ok: false, retry: false, error: `${target} ${result.status === 'rejected' ? 'rejected' : 'could not take'} it (${where}, ${result.status}): ${result.reason ?? 'no reason given'}` };
    }
    return { ok: true, detail: `stored as ${where} (${result.status})` };
  }

  /** Workers of removed channels stop once their queues are empty. */
  private scheduleDrainCheck(): void {
    if (this.drainTimer || this.closed) return;
    let checking = false;
    this.drainTimer = setInterval(() => {
      if (checking) return;
      checking = true;
      void (async () => {
        for (const [key, worker] of this.workers) {
          if (this.runners.has(worker.channel)) continue;
          if (await worker.isIdle()) {
            this.workers.delete(key);
            void worker.stop();
            this.log.info({ channel: worker.channel, destination: worker.destination }, 'queue drained; worker stopped');
          }
        }
      })()
        .catch((err: Error) => this.log.error({ err: err.message }, 'could not check drained queues'))
        .finally(() => (checking = false));
    }, 500);
    this.drainTimer.unref();
  }

  private async listen(runner: Runner): Promise<Listener> {
    const source = runner.current.definition.source;
    const name = () => runner.current.definition.name;
    if (source.kind === 'mllp') {
      const server = new MllpServer({
        host: source.host,
        port: source.port,
        tls: serverTls(source.tls),
        maxMessageBytes: source.max_message_bytes,
        idleTimeoutMs: source.idle_timeout_ms,
        maxConnections: source.max_connections,
        allow: source.allow,
        logger: this.log.child({ channel: name() }),
        // Read the version when the message arrives: it finishes on that version.
        handler: async (payload, connection) => {
          const version = runner.current;
          return acksOf(await this.answerAfterDeliveries(version.definition, payload, await this.handle(version, payload, `mllp:${connection.remoteAddress}:${connection.remotePort}`)));
        },
        oversize: (head, size, limit, connection) => this.recordOversize(runner.current, head, size, limit, `mllp:${connection.remoteAddress}:${connection.remotePort}`),
      });
      const port = await server.listen();
      return { key: `mllp:${source.host}:${port}`, configured: listenerKey(source), close: () => server.close(), listening: () => server.listening, counters: () => ({ ...server.counters }) };
    }
    if (source.kind === 'http') return this.listenHttp(runner, source);
    // Fed by other channels' channel destinations (handToChannel): nothing to open.
    if (source.kind === 'channel') return { key: listenerKey(source, name()), configured: listenerKey(source, name()), close: async () => undefined, listening: () => true };
    return this.watchDirectory(runner, source);
  }

  /**
   * A frame over max_message_bytes: answered AR, and stored as rejected so that it shows in
   * `hl7c messages` and the counts. Only its first bytes are kept (enough for MSH); the reason
   * says so.
   */
  private async recordOversize(version: LoadedChannel, head: Buffer, size: number, limit: number, source: string): Promise<Buffer> {
    const reason = `message of ${size} bytes exceeds the receiver's limit of ${limit} bytes`;
    const ack = ackForPayload(head, 'AR', { code: HL7_ERROR.otherHl7Error, userMessage: reason });
    const header = readHeaderLeniently(head.toString('latin1'));
    try {
      await this.store.record({
        channel: version.definition.name,
        spec_version: version.specVersion,
        source,
        received_at: Date.now(),
        control_id: header.controlId || null,
        message_type: header.messageType || null,
        raw: head,
        status: 'rejected',
        reason: `${reason}; only its first ${head.length} bytes are kept`,
        identifiers: null,
        ack_code: 'AR',
        ack,
        deliveries: [],
      });
      this.activity.received(version.definition.name, 'rejected', Date.now());
    } catch (err) {
      this.log.error({ channel: version.definition.name, err: (err as Error).message }, 'could not store an oversize message; answering AR all the same');
      this.activity.received(version.definition.name, 'not_stored', Date.now());
    }
    return ack;
  }

  private async listenHttp(runner: Runner, source: Extract<SourceConfig, { kind: 'http' }>): Promise<Listener> {
    checkHttpSourceAuth(runner.current.definition.name, source);
    const maxBody = source.max_body_bytes ?? MAX_HTTP_BODY;
    const counters = { refusedNotAllowed: 0, refusedTooMany: 0, closedIdle: 0, bodyTooLarge: 0, unauthorized: 0 };
    const throttled = new ThrottledLog(this.log.child({ channel: runner.current.definition.name }));
    const allowed = source.allow?.length ? allowList(source.allow) : undefined;
    let open = 0;
    const server = http.createServer((req, res) => {
      const reply = (status: number, body: Record<string, unknown>) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      const current = runner.current.definition.source;
      if (current.kind !== 'http' || req.method !== 'POST' || req.url?.split('?')[0] !== current.path) return reply(404, { error: 'not found' });
      // Either credential the source sets will do: the bearer token or the Basic user and password.
      const needed = !!current.auth_token || !!current.basic_auth;
      const given = (current.auth_token && bearerMatches(req.headers.authorization, current.auth_token)) || (current.basic_auth && basicMatches(req.headers.authorization, current.basic_auth));
      if (needed && !given) {
        counters.unauthorized++;
        const what = current.basic_auth && !current.auth_token ? 'Basic credentials' : current.basic_auth ? 'bearer token or Basic credentials' : 'bearer token';
        throttled.warn('unauthorized', { remote: req.socket.remoteAddress, refused: counters.unauthorized }, `request refused: missing or wrong ${what}`);
        if (current.basic_auth) res.setHeader('www-authenticate', 'Basic realm="hl7c", charset="UTF-8"');
        return reply(401, { error: `missing or wrong ${what}` });
      }
      const declared = Number(req.headers['content-length'] ?? 0);
      if (declared > maxBody) {
        counters.bodyTooLarge++;
        res.setHeader('connection', 'close');
        return reply(413, { error: `body larger than ${maxBody} bytes` });
      }
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size > maxBody) {
          if (chunks.length) counters.bodyTooLarge++;
          chunks.length = 0;
          if (!res.headersSent) {
            res.setHeader('connection', 'close');
            reply(413, { error: `body larger than ${maxBody} bytes` });
          }
          req.destroy();
        } else chunks.push(c);
      });
      req.on('end', () => {
        if (size > maxBody) return;
        const version = runner.current;
        const body = Buffer.concat(chunks);
        this.handle(version, body, `http:${req.socket.remoteAddress}`)
          .then((r) => this.answerAfterDeliveries(version.definition, body, r))
          .then((r) => reply(r.response?.status ?? 500, r.response?.body ?? { status: r.status, reason: r.reason }))
          .catch((err: Error) => reply(500, { error: err.message }));
      });
    });
    // Refused before any request is read: an address outside `allow`, or past max_connections.
    server.on('connection', (socket: import('node:net').Socket) => {
      if (allowed && !isAllowed(allowed, socket.remoteAddress)) {
        counters.refusedNotAllowed++;
        throttled.warn('allow', { remote: socket.remoteAddress, refused: counters.refusedNotAllowed }, 'connection refused: address not in the allow list');
        socket.destroy();
        return;
      }
      const max = source.max_connections ?? 0;
      if (max > 0 && open >= max) {
        counters.refusedTooMany++;
        throttled.warn('max_connections', { remote: socket.remoteAddress, open, limit: max, refused: counters.refusedTooMany }, 'connection refused: max_connections open');
        socket.destroy();
        return;
      }
      open++;
      socket.once('close', () => open--);
    });
    const idle = source.idle_timeout_ms ?? DEFAULT_IDLE_TIMEOUT_MS;
    // Keep-alive connections with no request in progress close after this; so do stalled requests.
    server.keepAliveTimeout = idle > 0 ? Math.min(idle, 5000) : 5000;
    server.timeout = idle;
    server.on('timeout', (socket: import('node:net').Socket) => {
      counters.closedIdle++;
      socket.destroy();
    });
    server.headersTimeout = Math.min(60_000, idle > 0 ? idle : 60_000);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(source.port, source.host, () => resolve());
    });
    const port = (server.address() as { port: number }).port;
    return {
      key: `http:${source.host}:${port}`,
      configured: listenerKey(source),
      listening: () => server.listening,
      counters: () => ({ ...counters }),
      close: () => new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
    };
  }

  private async watchDirectory(runner: Runner, source: Extract<SourceConfig, { kind: 'file' }>): Promise<Listener> {
    await mkdir(source.dir, { recursive: true });
    let stopped = false;
    let busy: Promise<void> = Promise.resolve();
    // Files whose messages are stored but which could not be moved out yet (done_dir missing,
    // full or not writable): they are never read again while their size and mtime stay the
    // same; the move is retried every poll and its failure logged once. A marker beside the
    // file (written only when a move fails) keeps that across a restart.
    const stored = new Map<string, StoredFile>();
    const markerOf = (name: string) => join(source.dir, `.${name}.stored`);
    const wanted = globToRegExp(source.pattern ?? '*.hl7');
    // A file is taken only once its size and mtime have stayed the same for settle_ms: a writer
    // that writes in several steps (or pauses mid-file) must not have its first half read as a
    // whole message. Writers that write-then-rename are safe whatever the pause.
    const settleMs = source.settle_ms ?? DEFAULT_SETTLE_MS;
    const seen = new Map<string, { stamp: string; since: number }>();
    const move = async (name: string, done: StoredFile) => {
      const path = join(source.dir, name);
      try {
        await mkdir(done.target, { recursive: true });
        await rename(path, join(done.target, name));
        stored.delete(path);
        if (done.failed) {
          this.log.info({ file: name, dir: done.target }, 'file source: the stored file was moved after all');
          await unlink(markerOf(name)).catch(() => undefined);
        }
      } catch (err) {
        if (done.failed) return;
        done.failed = true;
        this.log.error(
          { file: name, dir: done.target, err: (err as Error).message },
          'file source: the messages are stored but the file could not be moved; it will not be read again, the move is retried every poll',
        );
        await writeFile(markerOf(name), JSON.stringify({ target: done.target, stamp: done.stamp })).catch(() => undefined);
      }
    };
    const scan = async () => {
      // Settling is judged against the scan's start, one reading for all its files: a file seen
      // first settles no later than one seen after it, so files that appeared together are read in
      // name order (a reading per file let a later name pass first), and the wait is never short.
      const now = Date.now();
      const names = (await readdir(source.dir).catch(() => [] as string[])).filter((n) => wanted.test(n) && !isTemporaryName(n)).sort();
      const present = new Set(names);
      for (const path of seen.keys()) if (!present.has(basename(path))) seen.delete(path);
      for (const name of names) {
        if (stopped) return;
        const path = join(source.dir, name);
        const st = await stat(path).catch(() => undefined);
        if (!st?.isFile()) continue;
        const stamp = `${st.size}:${st.mtimeMs}`;
        const earlier = stored.get(path) ?? (await readMarker(markerOf(name)));
        if (earlier && earlier.stamp === stamp) {
          stored.set(path, earlier);
          await move(name, earlier);
          continue;
        }
        const first = seen.get(path);
        if (!first || first.stamp !== stamp) {
          seen.set(path, { stamp, since: Date.now() });
          if (settleMs > 0) continue;
        } else if (now - first.since < settleMs) continue;
        const bytes = await readFile(path).catch(() => undefined);
        if (!bytes) continue;
        // Written to while it was read: wait for it to settle again.
        const after = await stat(path).catch(() => undefined);
        if (!after || `${after.size}:${after.mtimeMs}` !== stamp || after.size !== bytes.length) {
          seen.delete(path);
          continue;
        }
        seen.delete(path);
        let ok = true;
        let messages: Buffer[];
        try {
          messages = parseBatch(bytes).messages.map((m) => m.toBytes());
        } catch {
          messages = [bytes];
        }
        for (const m of messages) {
          const r = await this.handle(runner.current, m, `file:${name}`);
          if (r.status === 'rejected' || r.status === 'error' || r.id === undefined) ok = false;
        }
        // Moved only after every message in it is stored.
        const done: StoredFile = { target: ok ? source.done_dir : source.error_dir, stamp, failed: false };
        stored.set(path, done);
        await move(name, done);
      }
    };
    const timer = setInterval(() => {
      busy = busy.then(scan).catch((err: Error) => this.log.error({ err: err.message, dir: source.dir }, 'file source scan failed'));
    }, 500);
    return {
      key: `file:${source.dir}:0`,
      configured: listenerKey(source),
      listening: () => !stopped,
      close: async () => {
        stopped = true;
        clearInterval(timer);
        await busy;
      },
    };
  }
}

/**
 * A file-name glob (`*` any run of characters, `?` one) as a regular expression. Hidden files
 * (ours: the `.name.stored` markers, the writers' temporary files) never match.
 */
export function globToRegExp(glob: string): RegExp {
  const body = [...glob].map((c) => (c === '*' ? '[^/]*' : c === '?' ? '[^/]' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&'))).join('');
  return new RegExp(`^(?!\\.)${body}$`);
}

/**
 * A source that could not listen (a port in use, an address not here), naming the channel and
 * its spec: "listen EADDRINUSE 0.0.0.0:2610" alone left the operator to guess which of them.
 */
function listenError(err: Error & { code?: string }, channel: string, specPath: string): Error {
  const hint = err.code === 'EADDRINUSE' ? ': another process (or another channel) listens on that port; change source port in the spec or stop the other' : '';
  const wrapped = new Error(`channel ${channel} (${specPath}): its source could not listen: ${err.message}${hint}`) as Error & { code?: string };
  if (err.code !== undefined) wrapped.code = err.code;
  return wrapped;
}

/** How long (ms) a file's size and mtime must stay unchanged before the file source reads it. */
export const DEFAULT_SETTLE_MS = 1000;

/**
 * Names writers use while a file is still being written, to rename it when done: never read,
 * even when the pattern would match them (`pattern: "*"`).
 */
export function isTemporaryName(name: string): boolean {
  return name.startsWith('.') || name.endsWith('~') || /\.(tmp|temp|part|partial|filepart|crdownload|swp)$/i.test(name);
}

/** A file of the file source whose messages are stored: where it goes, and its size:mtime then. */
interface StoredFile {
  target: string;
  stamp: string;
  /** A move failed (and was logged). */
  failed: boolean;
}

async function readMarker(path: string): Promise<StoredFile | undefined> {
  try {
    const { target, stamp } = JSON.parse(await readFile(path, 'utf8')) as { target: string; stamp: string };
    return typeof target === 'string' && typeof stamp === 'string' ? { target, stamp, failed: true } : undefined;
  } catch {
    return undefined;
  }
}

function serverTls(tls: TlsFiles | undefined): ServerTlsOptions | undefined {
  if (!tls) return undefined;
  if (!tls.key || !tls.cert) throw new Error('an MLLP source with tls needs key and cert');
  return { key: readFileSync(tls.key), cert: readFileSync(tls.cert), ca: tls.ca ? readFileSync(tls.ca) : undefined, requireClientCertificate: !!tls.require_client_certificate };
}

/** Hand-offs in a row a message may make (channel to channel to …): guards loops validate cannot see. */
export const HAND_OFF_HOP_LIMIT = 8;

/** Where a handed-off message came from, as stored: `channel:<from>`, then `channel:<from>/hop<n>` from the second hop on. */
function handOffSource(from: string, hop: number): string {
  return hop <= 1 ? `channel:${from}` : `channel:${from}/hop${hop}`;
}

/** How many hand-offs in a row brought a message here (0 for one received from outside). */
export function handOffHop(source: string): number {
  if (!source.startsWith('channel:')) return 0;
  const m = /\/hop(\d+)$/.exec(source);
  return m ? Number(m[1]) : 1;
}

/** JSON starts with { or [ (after any whitespace); anything else is taken as HL7. */
function payloadKind(payload: Buffer): PayloadKind {
  const first = payload.toString('latin1', 0, 64).trimStart()[0];
  return first === '{' || first === '[' ? 'json' : 'hl7';
}

function workerKey(channel: string, destination: string): string {
  return `${channel}\u0000${destination}`;
}

function listenerKey(source: SourceConfig, channel = ''): string {
  if (source.kind === 'channel') return `channel:${channel}`;
  if (source.kind === 'file') return `file:${source.dir}:0`;
  return `${source.kind}:${source.host}:${source.port}`;
}

/** `Authorization: Basic base64(user:password)`, compared in constant time. */
function basicMatches(header: string | undefined, wanted: { user: string; password: string }): boolean {
  const given = Buffer.from(header?.startsWith('Basic ') ? Buffer.from(header.slice(6).trim(), 'base64').toString('utf8') : '');
  const expected = Buffer.from(`${wanted.user}:${wanted.password}`);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

function bearerMatches(header: string | undefined, token: string): boolean {
  const given = Buffer.from(header?.startsWith('Bearer ') ? header.slice(7) : '');
  const wanted = Buffer.from(token);
  return given.length === wanted.length && timingSafeEqual(given, wanted);
}

/**
 * The answer when the channel failed on the message ('error': it is stored and answered as an
 * application error) or the store failed ('not_stored': AE in original mode, CE in enhanced
 * mode, so the sender sends it again); it replaces whatever the channel would have answered.
 */
function errorAnswer(definition: ChannelDefinition, payload: Buffer, outcome: 'error' | 'not_stored', userMessage: string): Pick<ChannelResult, 'ack' | 'ackCode' | 'applicationAck' | 'applicationAckCode' | 'response'> {
  const none = { ack: undefined, ackCode: undefined, applicationAck: undefined, applicationAckCode: undefined };
  if (definition.source.kind === 'http') return { ...none, response: { status: outcome === 'not_stored' ? 503 : 500, body: { status: 'error', reason: userMessage } } };
  if (definition.source.kind !== 'mllp') return none;
  const setting = definition.source.ack_mode;
  const [first, second] = acksForPayload(payload, outcome, { code: HL7_ERROR.applicationInternalError, userMessage }, setting === 'as_requested' ? undefined : setting);
  return {
    ...none,
    ...(first ? { ack: first.ack, ackCode: first.code } : {}),
    ...(second ? { applicationAck: second.ack, applicationAckCode: second.code } : {}),
  };
}
