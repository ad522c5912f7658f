import type { AuditEntry, Delivery, DestinationPause, DeliveryState, MessageFilter, NewAuditEntry, NewMessage, QueuedDelivery, StoredEvent, StoredMessage } from './types.js';

/** A queue that got work: its worker can look now rather than at its next poll. */
export type QueuedListener = (channel: string, destination: string) => void;

/** What a worker asks for when it takes work from a destination queue. */
export interface ClaimRequest {
  channel: string;
  destination: string;
  /** At most this many entries. */
  limit: number;
  /** The node taking them (given by the host; unique per running process). */
  owner: string;
  /** The entries are this node's for so long unless renewed; after that any node may take them. */
  leaseMs: number;
  /**
   * FIFO queue (`max_in_flight: 1`): entries are taken from the head only, in order; a stopped
   * head, a head not due yet or a head leased by another node holds the whole queue.
   * Otherwise any due, unleased entry may be taken, oldest first.
   */
  ordered: boolean;
  /** The time the lease and due dates are measured against (default: now). */
  now?: number;
}

export interface Claim {
  /** Entries now leased to the owner, in FIFO order, each with its message's MSH-10. */
  deliveries: QueuedDelivery[];
  /** When nothing was taken because entries wait for their next attempt: the earliest such time. */
  nextDueAt: number | null;
  /** An ordered queue held by a stopped entry (`on_failure: stop_queue`) until it is replayed. */
  stopped: boolean;
  /**
   * Nothing was taken because an operator paused the destination (setPaused). An ordered
   * queue's entries this owner had taken and not sent go back to the queue.
   */
  paused: boolean;
}

/** An attempt's outcome and the state it leaves the entry in; the lease on it ends. */
export interface AttemptRecord {
  state: DeliveryState;
  error?: string;
  nextAttemptAt?: number;
  /** For the message's history. */
  detail: string;
}

/** A message's replayed outcome: what `recordReplay` stores in place of the first run's. */
export type ReplayOutcome = Omit<NewMessage, 'channel' | 'source' | 'received_at' | 'raw' | 'control_id' | 'message_type'> & {
  /**
   * Replay to this destination only: only its unfinished, dead or stopped entries are closed (or
   * queued again in place), and the others are left as they are.
   */
  only?: string;
};

/** What `discardDelivery` did. */
export type DiscardResult = 'discarded' | 'no-such-entry' | 'not-dead-or-stopped';

export interface MessageCount {
  channel: string;
  status: string;
  count: number;
}

export interface DeliveryCount {
  channel: string;
  destination: string;
  state: string;
  count: number;
}

/** What /metrics and /health report. Implementations keep these cheap to read (no table scans). */
export interface StoreMetrics {
  messages: MessageCount[];
  deliveries: DeliveryCount[];
  /** Per queue with unfinished entries: when its oldest unfinished entry was queued. */
  oldestOpen: Array<{ channel: string; destination: string; oldest: number }>;
  /** Received messages accepted (safe) but not yet queryable; more than a few means the store is failing. */
  waiting: number;
  /** Times taking received messages in failed, and the last reason. */
  ingestFailures: number;
  lastError: string | null;
  /**
   * Queues whose attempts have all failed since their first failure after the last success (on
   * any node): since when, and how many attempts failed. A success anywhere ends it.
   */
  failing: Array<{ channel: string; destination: string; since: number; failures: number }>;
  /** The last spec reload of each live node writing to the store (SQLite: this one). */
  reloads: NodeReload[];
}

/** A node's last spec reload, as kept in the store for the alerting node to judge. */
export interface NodeReload {
  node: string;
  at: number;
  outcome: 'applied' | 'rejected';
  /** A rejection: how many errors and where the first is (file:line:col code), never the spec's text. */
  summary: string | null;
}

export interface StoreHealth {
  status: 'ok' | 'unavailable';
  /** Since when (ms) and why it is unavailable. */
  since?: number;
  error?: string;
}

/** One channel as last served: where its spec is and which version ran. */
export interface ChannelSpec {
  name: string;
  spec_path: string;
  spec_version: string;
}

export interface NodeStatus {
  id: string;
  host: string;
  pid: number;
  started_at: number;
  heartbeat_at: number;
  stopped_at: number | null;
  /** Heartbeat seen within three beats and not stopped. */
  alive: boolean;
  channels: Array<{ channel: string; spec_version: string }>;
}

/** What `hl7c status` and GET /api/status show: the nodes on the store, the versions they run, the queues. */
export interface StoreStatus {
  /** The database's clock, which judged the heartbeats. */
  now: number;
  nodes: NodeStatus[];
  channels: Array<{ name: string; spec_version: string; nodes: Array<{ node: string; spec_version: string; alive: boolean }> }>;
  queues: Array<{ channel: string; destination: string; queued: number; sending: number; stopped: number; oldest_age_ms: number; owner: string | null }>;
}

/**
 * Where messages, their outcomes and the destination queues live. The host, the workers, the
 * admin server and the CLI use this and nothing else: no caller outside `runtime/store/` holds a
 * database handle or writes SQL. `SqliteStore` (embedded, one node) and the PostgreSQL store
 * (several nodes) implement it, and `test/store/store-contract.ts` holds both to it.
 */
export interface Store {
  /** For logs and errors: a path, or a URL without its password. */
  readonly location: string;

  /**
   * Makes this store the one that receives messages for node `owner` (a second writer is refused
   * where the implementation cannot share: SQLite).
   */
  openForWriting(owner: string): Promise<void>;

  /**
   * Stores a received message and its queue entries; resolves with its id (issued by the store)
   * once it is as durable as the store promises. Messages recorded in the same event-loop turn
   * share one commit. Nothing is acknowledged before this resolves.
   */
  record(entry: NewMessage): Promise<number>;

  /** Told (in this process) when a queue got entries. */
  onQueued(listener: QueuedListener): void;

  /** Takes work from a destination queue under a lease (see ClaimRequest). */
  claimDeliveries(request: ClaimRequest): Promise<Claim>;

  /** Extends the owner's lease on entries still being sent. */
  renewLease(ids: number[], owner: string, leaseMs: number, now?: number): Promise<void>;

  /** Records an attempt (the count is `delivery.attempts`, this one included) and ends its lease. */
  finishAttempt(delivery: Delivery, outcome: AttemptRecord, now: number): Promise<void>;

  /**
   * Entries whose lease has expired (their node died while sending) go back to their queue; a
   * live node's leases are left alone. Returns how many. (SQLite has one writer at a time, so
   * there every lease not held by the current writer is expired.)
   */
  releaseExpiredLeases(now?: number): Promise<number>;

  /** True when the queue has entries not finished (queued, being sent, or stopped). */
  hasOpenDeliveries(channel: string, destination: string): Promise<boolean>;

  /** Queues with unfinished work (queued or being sent). */
  openQueues(): Promise<Array<{ channel: string; destination: string; count: number }>>;

  /**
   * The first message of a channel recorded with this dedupe key at or after `since` (not itself
   * a duplicate, nor an internal error the sender is right to send again); indexed. Needed by
   * sources with `dedupe`; a store without it refuses to run them.
   */
  findFirstByKey?(channel: string, key: string, since: number): Promise<{ id: number; status: string; reason: string | null; ack_code: string | null; ack: Buffer | null } | undefined>;

  listMessages(filter?: MessageFilter): Promise<Array<StoredMessage & { deliveries: string }>>;

  getMessage(id: number): Promise<{ message: StoredMessage; deliveries: Delivery[]; events: StoredEvent[] } | undefined>;

  /**
   * The answer the sender got after waiting for deliveries (answer_after / answer_from), in place
   * of the one made when the message was stored; the event says why. Stores that lack it keep
   * the first answer.
   */
  recordAnswer?(id: number, answer: { ack_code: string; ack: Buffer | null; detail: string }, now: number): Promise<void>;

  /**
   * Replaces a message's outcome with a new run: its unfinished or dead queue entries are closed
   * as replayed and new ones queued (a stopped entry is queued again in its place), atomically.
   */
  recordReplay(id: number, outcome: ReplayOutcome, now: number): Promise<void>;

  /**
   * An operator gives up on a message's dead or stopped entry for `destination`: it becomes
   * `discarded` (kept, with an event in its history), and a stopped one no longer holds its queue.
   */
  /**
   * Gives up on a dead or stopped entry; with `queuedToo`, on a queued one as well (entries of a
   * destination no spec defines any more, which nothing will ever work).
   */
  discardDelivery(messageId: number, destination: string, now: number, by: string, queuedToo?: boolean): Promise<DiscardResult>;

  /**
   * Pauses a destination's queue for every node working this store (`pause` given: who, when),
   * or resumes it (null): claims on it take nothing while it is paused. False when it already
   * was in that state (the first pause's who and when stay).
   */
  setPaused(channel: string, destination: string, pause: { by: string; at: number } | null): Promise<boolean>;

  /** Every paused destination, with who paused it and when. */
  pausedDestinations(): Promise<DestinationPause[]>;

  /**
   * Takes the lease `name` for `owner` until `now + ttlMs`, or renews it, unless another owner
   * holds it and it has not run out; resolves with whoever holds it now (and until when). A job
   * only one node may do at a time (sending alert notices) goes to the holder; when it dies, its
   * lease runs out and another node takes it.
   */
  takeLease(name: string, owner: string, ttlMs: number, now?: number): Promise<{ owner: string; until: number }>;

  /** Gives the lease up (a clean stop): another node takes it at its next try. */
  releaseLease(name: string, owner: string): Promise<void>;

  /**
   * Records how this node's (openForWriting) latest spec reload went, replacing the one before:
   * the alerting node tells a rejection on any node.
   */
  recordReload(reload: Omit<NodeReload, 'node'>): Promise<void>;

  /** Records what an operator did or looked at (who, what, when, from where). */
  recordAudit(entry: NewAuditEntry): Promise<void>;

  /** The audit trail, newest first; `before` pages on (an entry id). */
  listAudit(options?: { limit?: number; before?: number }): Promise<AuditEntry[]>;

  /** Removes the content of finished messages received before `olderThan`; rows and counts stay. */
  prune(olderThan: number, perTransaction?: number): Promise<number>;

  /** Stored messages by channel and status. */
  counts(): Promise<MessageCount[]>;

  /** Counters for /metrics and /health. */
  metrics(): Promise<StoreMetrics>;

  setChannel(name: string, specPath: string, specVersion: string, now: number): Promise<void>;
  channelSpecs(): Promise<ChannelSpec[]>;

  /**
   * Whether the store can take messages now, for /health. A store on a server (PostgreSQL) says
   * `unavailable` while it cannot reach it: messages are answered AE meanwhile.
   */
  health?(): StoreHealth;

  /**
   * Nodes (alive or lost), the spec version each runs per channel, and the open queues, judged by
   * the store's clock: a store shared by several nodes (PostgreSQL). A store with one node at a
   * time has none; Operations.status derives its queues from metrics().
   */
  status?(): Promise<StoreStatus>;

  /** Writes what is pending and releases the store; this process's leases end with it. */
  close(): Promise<void>;
}
