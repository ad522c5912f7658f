import type { DestinationConfig } from '../channel/channel.js';
import type { Logger } from '../log.js';
import type { Store } from '../store/store.js';
import type { QueuedDelivery } from '../store/types.js';
import type { DeliveryContext, Sender } from './senders.js';
import { faultPoint } from '../faults.js';
// A receiver's or database's error text can quote the message ("Duplicate entry 'E77' …"): logs get
// it masked, the store keeps it whole for operators.
import { maskReason } from './mask-reason.js';

const IDLE_POLL_MS = 250;
const ERROR_PAUSE_MS = 1000;
/** How long claimed entries stay this node's without renewal (renewed every third of it while held). */
export const DEFAULT_LEASE_MS = 30_000;
/** Entries an ordered queue takes at once: their outcomes are written behind, together. */
const ORDERED_BATCH = 32;

/** Exponential backoff with ±20 % jitter, so many retrying queues do not move in step. */
export function backoffDelay(attempt: number, retry: DestinationConfig['retry'], random = Math.random): number {
  const base = Math.min(retry.backoff_ms * 2 ** Math.max(0, attempt - 1), retry.max_backoff_ms);
  return Math.round(base * (0.8 + 0.4 * random()));
}

/**
 * Works one destination queue: oldest first, one in flight by default (ordered interfaces).
 * Entries are claimed from the store under a lease in this node's name (`owner`), renewed while
 * they are held, so another node (or the next start) takes them only once this one is gone.
 * Every attempt is recorded; after the last one the entry is dead-lettered, or the queue stops
 * there (nothing behind it is sent) until someone replays it. `max_in_flight` is read from the
 * current config before every claim: a reload that lowers it to 1 waits for the sends in flight
 * before the next one, so FIFO order holds from there on.
 */
export class DestinationWorker {
  private stopping = false;
  private running: Promise<void> | null = null;
  private wakeUp: (() => void) | null = null;
  private readonly inFlight = new Set<number>();
  /** Entries claimed (leased to this node) and not finished yet: their leases are renewed. */
  private readonly held = new Set<number>();
  private renewTimer: NodeJS.Timeout | null = null;
  /**
   * Paused by an operator, as the store said at the last claim (the pause is kept in the store,
   * so every node and every restart honours it); while paused the store hands out nothing.
   */
  paused = false;
  /** When the store was last asked whether the destination is paused (claims ask too). */
  private pauseCheckedAt = 0;
  /** The last failed attempt, and the last delivered one: the destination is failing while the failure is newer. */
  lastError: { error: string; at: number } | null = null;
  lastSentAt: number | null = null;

  constructor(
    private readonly store: Store,
    readonly channel: string,
    readonly destination: string,
    private config: DestinationConfig,
    private sender: Sender,
    private readonly context: (delivery: QueuedDelivery) => DeliveryContext,
    private readonly log: Logger,
    /** This node, as the owner of the leases it takes. */
    private readonly owner: string,
    private readonly leaseMs = DEFAULT_LEASE_MS,
  ) {}

  start(): void {
    this.renewTimer ??= setInterval(() => this.renewLeases(), Math.max(10, Math.floor(this.leaseMs / 3)));
    this.renewTimer.unref();
    this.running ??= this.keepWorking();
  }

  private get maxInFlight(): number {
    return Math.max(1, this.config.max_in_flight ?? 1);
  }

  private renewLeases(): void {
    if (this.held.size === 0) return;
    this.store.renewLease([...this.held], this.owner, this.leaseMs).catch((err: Error) => this.log.warn({ err: err.message }, 'could not renew the lease on entries being sent'));
  }

  /**
   * A failure of the store itself (a lock held too long, a full disk) must not end the queue
   * unnoticed: it is logged, and the queue is worked again after a pause.
   */
  private async keepWorking(): Promise<void> {
    while (!this.stopping) {
      try {
        await this.loop();
      } catch (err) {
        this.log.error({ err: (err as Error).message }, 'destination queue failed; working it again shortly');
        await this.sleep(ERROR_PAUSE_MS);
      }
    }
  }

  /**
   * Told on this node that an operator paused or resumed the destination (the store holds it):
   * a pause stops the batch in hand before its next entry, a resume looks at the queue now.
   */
  setPaused(paused: boolean): void {
    this.paused = paused;
    if (!paused) this.wake();
  }

  /**
   * Between the entries of a batch: whether an operator paused the destination since it was
   * claimed (on another node, or with the CLI). Asked at most every poll interval.
   */
  private async pausedMeanwhile(): Promise<boolean> {
    if (this.paused) return true;
    const now = Date.now();
    if (now - this.pauseCheckedAt < IDLE_POLL_MS) return false;
    this.pauseCheckedAt = now;
    const paused = (await this.store.pausedDestinations()).some((p) => p.channel === this.channel && p.destination === this.destination);
    if (paused) this.paused = true;
    return paused;
  }

  /** New work was queued: look now rather than at the next poll. */
  wake(): void {
    this.wakeUp?.();
  }

  get currentConfig(): DestinationConfig {
    return this.config;
  }

  /** A new spec version: later attempts use its settings (max_in_flight included). */
  update(config: DestinationConfig, sender: Sender): void {
    const old = this.sender;
    this.config = config;
    this.sender = sender;
    if (old !== sender) void old.close();
    this.wake();
  }

  /** True when nothing is queued or being sent. */
  async isIdle(): Promise<boolean> {
    return this.inFlight.size === 0 && !(await this.store.hasOpenDeliveries(this.channel, this.destination));
  }

  /** Stops taking new entries; resolves when the ones being sent are finished. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wake();
    await this.running;
    if (this.renewTimer) clearInterval(this.renewTimer);
    this.renewTimer = null;
    await this.sender.close();
  }

  private claim(limit: number, ordered: boolean) {
    return this.store.claimDeliveries({ channel: this.channel, destination: this.destination, limit, owner: this.owner, leaseMs: this.leaseMs, ordered }).then((claim) => {
      this.paused = claim.paused;
      this.pauseCheckedAt = Date.now();
      // Held from here on: what is in flight and what was just taken (the rest went back or was finished).
      this.held.clear();
      for (const id of this.inFlight) this.held.add(id);
      for (const d of claim.deliveries) this.held.add(d.id);
      return claim;
    });
  }

  /** How long to wait when nothing could be taken. */
  private pause(claim: { nextDueAt: number | null; stopped: boolean; paused: boolean }): number {
    // A stopped entry holds its queue until it is replayed: nothing behind it goes first.
    if (claim.stopped) return IDLE_POLL_MS * 4;
    // A resume on this node wakes the worker; one elsewhere is seen at the next poll.
    if (claim.paused) return IDLE_POLL_MS;
    const now = Date.now();
    return claim.nextDueAt !== null && claim.nextDueAt > now ? Math.min(claim.nextDueAt - now, 1000) : IDLE_POLL_MS;
  }

  private async loop(): Promise<void> {
    return this.maxInFlight > 1 ? this.parallelLoop() : this.orderedLoop();
  }

  private async orderedLoop(): Promise<void> {
    while (!this.stopping && this.maxInFlight === 1) {
      // A batch at a time: the outcomes of its attempts are written behind, together, and at the
      // latest when the queue is claimed from again.
      const claim = await this.claim(ORDERED_BATCH, true);
      if (claim.deliveries.length === 0) {
        await this.sleep(this.pause(claim));
        continue;
      }
      for (const delivery of claim.deliveries) {
        if (this.stopping || this.maxInFlight !== 1 || (await this.pausedMeanwhile())) break;
        // FIFO: when the head is not delivered, it is tried again before anything behind it.
        if (!(await this.attempt(delivery))) break;
      }
    }
  }

  private async parallelLoop(): Promise<void> {
    const pending = new Set<Promise<unknown>>();
    while (!this.stopping && this.maxInFlight > 1) {
      const room = this.maxInFlight - this.inFlight.size;
      if (room <= 0) {
        await Promise.race(pending);
        continue;
      }
      const claim = await this.claim(this.maxInFlight + this.inFlight.size, false);
      const ready = claim.deliveries.filter((d) => !this.inFlight.has(d.id)).slice(0, room);
      if (ready.length === 0) {
        await this.sleep(this.pause(claim));
        continue;
      }
      for (const delivery of ready) {
        const p = this.attempt(delivery)
          // Its lease runs out and it is sent again: at-least-once.
          .catch((err: Error) => this.log.error({ message: delivery.message_id, err: err.message }, 'could not record a delivery attempt'))
          .finally(() => pending.delete(p));
        pending.add(p);
      }
      if (this.inFlight.size >= this.maxInFlight) await Promise.race(pending);
    }
    // Leaving parallel mode (stopping, or a reload asked for one at a time): what is in flight
    // finishes before anything else is sent.
    await Promise.all(pending);
  }

  /** Sends one entry and records the outcome; true when it was delivered. */
  private async attempt(delivery: QueuedDelivery): Promise<boolean> {
    this.inFlight.add(delivery.id);
    try {
      const attempt = delivery.attempts + 1;
      const outcome = await this.sender.send(delivery, this.context(delivery));
      faultPoint('during-send');
      const now = Date.now();
      // channel and destination come from the logger (a child carrying them).
      const where = { message: delivery.message_id, attempt };
      if (outcome.ok) this.lastSentAt = now;
      else this.lastError = { error: outcome.error, at: now };
      if (outcome.ok) {
        await this.store.finishAttempt({ ...delivery, attempts: attempt }, { state: 'sent', detail: outcome.detail }, now);
        this.log.info(where, 'delivered');
        return true;
      } else if (outcome.retry && attempt < this.config.retry.attempts) {
        const delay = backoffDelay(attempt, this.config.retry);
        await this.store.finishAttempt({ ...delivery, attempts: attempt }, { state: 'queued', error: outcome.error, nextAttemptAt: now + delay, detail: `${outcome.error}; next try in ${delay} ms` }, now);
        this.log.warn({ ...where, error: maskReason(outcome.error), retryInMs: delay }, 'delivery failed; will retry');
      } else {
        const state = this.config.on_failure === 'stop_queue' ? 'stopped' : 'dead';
        await this.store.finishAttempt({ ...delivery, attempts: attempt }, { state, error: outcome.error, detail: `${outcome.error}; ${state === 'dead' ? 'dead-lettered' : 'queue stopped'}` }, now);
        this.log.error({ ...where, error: maskReason(outcome.error) }, state === 'dead' ? 'delivery dead-lettered' : 'delivery failed for good; queue stopped');
        // A dead-lettered entry is out of the way; a stopped one holds the queue.
        return state === 'dead';
      }
      return false;
    } finally {
      this.inFlight.delete(delivery.id);
      this.held.delete(delivery.id);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wakeUp = done;
    });
  }
}
