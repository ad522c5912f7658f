import type { DestinationConfig } from '../channel/channel.js';
import type { Logger } from '../log.js';
import type { SqliteStore } from '../store/sqlite-store.js';
import type { QueuedDelivery } from '../store/types.js';
import type { DeliveryContext, Sender } from './senders.js';
import { faultPoint } from '../faults.js';

const IDLE_POLL_MS = 250;
const ERROR_PAUSE_MS = 1000;

/** Exponential backoff with ±20 % jitter, so many retrying queues do not move in step. */
export function backoffDelay(attempt: number, retry: DestinationConfig['retry'], random = Math.random): number {
  const base = Math.min(retry.backoff_ms * 2 ** Math.max(0, attempt - 1), retry.max_backoff_ms);
  return Math.round(base * (0.8 + 0.4 * random()));
}

/**
 * Works one destination queue: oldest first, one in flight by default (ordered interfaces).
 * Every attempt is recorded; after the last one the entry is dead-lettered, or the queue stops
 * there (nothing behind it is sent) until someone replays it.
 */
export class DestinationWorker {
  private stopping = false;
  private running: Promise<void> | null = null;
  private wakeUp: (() => void) | null = null;
  private readonly inFlight = new Set<number>();

  constructor(
    private readonly store: SqliteStore,
    readonly channel: string,
    readonly destination: string,
    private config: DestinationConfig,
    private sender: Sender,
    private readonly context: (delivery: QueuedDelivery) => DeliveryContext,
    private readonly log: Logger,
    private readonly maxInFlight = 1,
  ) {}

  start(): void {
    this.running ??= this.keepWorking();
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
        this.log.error({ channel: this.channel, destination: this.destination, err: (err as Error).message }, 'destination queue failed; working it again shortly');
        await this.sleep(ERROR_PAUSE_MS);
      }
    }
  }

  /** New work was queued: look now rather than at the next poll. */
  wake(): void {
    this.wakeUp?.();
  }

  get currentConfig(): DestinationConfig {
    return this.config;
  }

  /** A new spec version: later attempts use its settings. */
  update(config: DestinationConfig, sender: Sender): void {
    const old = this.sender;
    this.config = config;
    this.sender = sender;
    if (old !== sender) void old.close();
  }

  /** True when nothing is queued or being sent. */
  get idle(): boolean {
    return this.inFlight.size === 0 && this.store.nextDeliveries(this.channel, this.destination, 1).length === 0;
  }

  /** Stops taking new entries; resolves when the ones being sent are finished. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wake();
    await this.running;
    await this.sender.close();
  }

  private async loop(): Promise<void> {
    if (this.maxInFlight > 1) return this.parallelLoop();
    while (!this.stopping) {
      // A batch at a time: the marks and outcomes of its attempts are written behind, together,
      // and at the latest when the queue is read again.
      const batch = this.store.nextDeliveries(this.channel, this.destination, 32);
      if (batch.length === 0) {
        await this.sleep(IDLE_POLL_MS);
        continue;
      }
      for (const delivery of batch) {
        if (this.stopping) break;
        if (delivery.state === 'stopped') {
          // The queue holds here until this entry is replayed: nothing behind it goes first.
          await this.sleep(IDLE_POLL_MS * 4);
          break;
        }
        const wait = delivery.next_attempt_at - Date.now();
        if (wait > 0) {
          await this.sleep(Math.min(wait, 1000));
          break;
        }
        // FIFO: when the head is not delivered, it is tried again before anything behind it.
        if (!(await this.attempt(delivery))) break;
      }
    }
  }

  private async parallelLoop(): Promise<void> {
    const pending = new Set<Promise<unknown>>();
    while (!this.stopping) {
      const now = Date.now();
      const head = this.store.nextDeliveries(this.channel, this.destination, this.maxInFlight + this.inFlight.size);
      const ready = head.filter((d) => !this.inFlight.has(d.id) && d.state !== 'stopped' && d.next_attempt_at <= now).slice(0, this.maxInFlight - this.inFlight.size);
      if (ready.length === 0) {
        const nextDue = head.find((d) => !this.inFlight.has(d.id))?.next_attempt_at;
        await this.sleep(nextDue !== undefined && nextDue > now ? Math.min(nextDue - now, 1000) : IDLE_POLL_MS);
        continue;
      }
      for (const delivery of ready) {
        const p = this.attempt(delivery).finally(() => pending.delete(p));
        pending.add(p);
      }
      if (this.inFlight.size >= this.maxInFlight) await Promise.race(pending);
    }
    await Promise.all(pending);
  }

  /** Sends one entry and records the outcome; true when it was delivered. */
  private async attempt(delivery: QueuedDelivery): Promise<boolean> {
    this.inFlight.add(delivery.id);
    try {
      this.store.markSending(delivery.id, Date.now());
      const attempt = delivery.attempts + 1;
      const outcome = await this.sender.send(delivery, this.context(delivery));
      faultPoint('during-send');
      const now = Date.now();
      const where = { channel: this.channel, destination: this.destination, message: delivery.message_id, attempt };
      if (outcome.ok) {
        this.store.finishAttempt({ ...delivery, attempts: attempt }, { state: 'sent', detail: outcome.detail }, now);
        this.log.info(where, 'delivered');
        return true;
      } else if (outcome.retry && attempt < this.config.retry.attempts) {
        const delay = backoffDelay(attempt, this.config.retry);
        this.store.finishAttempt({ ...delivery, attempts: attempt }, { state: 'queued', error: outcome.error, nextAttemptAt: now + delay, detail: `${outcome.error}; next try in ${delay} ms` }, now);
        this.log.warn({ ...where, error: outcome.error, retryInMs: delay }, 'delivery failed; will retry');
      } else {
        const state = this.config.on_failure === 'stop_queue' ? 'stopped' : 'dead';
        this.store.finishAttempt({ ...delivery, attempts: attempt }, { state, error: outcome.error, detail: `${outcome.error}; ${state === 'dead' ? 'dead-lettered' : 'queue stopped'}` }, now);
        this.log.error({ ...where, error: outcome.error }, state === 'dead' ? 'delivery dead-lettered' : 'delivery failed for good; queue stopped');
        // A dead-lettered entry is out of the way; a stopped one holds the queue.
        return state === 'dead';
      }
      return false;
    } finally {
      this.inFlight.delete(delivery.id);
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
