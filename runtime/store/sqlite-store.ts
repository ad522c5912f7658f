import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { LoggedMessage } from './received-log.js';
import { readReceivedLogs, ReceivedLog } from './received-log.js';
import { Checkpointer } from './checkpointer.js';
import type { AttemptRecord, ChannelSpec, Claim, ClaimRequest, DiscardResult, MessageCount, NodeReload, QueuedListener, ReplayOutcome, Store, StoreMetrics } from './store.js';
import type { AuditEntry, Delivery, DestinationPause, QueuedDelivery, MessageFilter, NewAuditEntry, NewMessage, StoredEvent, StoredMessage } from './types.js';
import { DELIVERY_STATES_FILTERED } from './types.js';
import { auditTableSql, insertAuditSql, leasesTableSql, LIST_PAUSED_SQL, listAuditSql, pausedTableSql, releaseLeaseSql, setPausedSql, takeLeaseSql } from './operator-sql.js';
import { faultPoint } from '../faults.js';
import { FAILING_QUEUES_SQL, nodeReloadsTableSql, queueAttemptsTableSql, recordAttemptsSql, recordReloadSql } from './alert-sql.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS messages (
  id INTEGER PRIMARY KEY,
  channel TEXT NOT NULL,
  spec_version TEXT NOT NULL,
  source TEXT NOT NULL,
  received_at INTEGER NOT NULL,
  control_id TEXT,
  message_type TEXT,
  raw BLOB,
  status TEXT NOT NULL,
  reason TEXT,
  identifiers TEXT,
  ack_code TEXT,
  ack BLOB,
  pruned INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS messages_by_channel ON messages (channel, status, received_at);
CREATE INDEX IF NOT EXISTS messages_by_time ON messages (received_at);
CREATE INDEX IF NOT EXISTS messages_by_control_id ON messages (control_id);
CREATE TABLE IF NOT EXISTS deliveries (
  id INTEGER PRIMARY KEY,
  message_id INTEGER NOT NULL REFERENCES messages (id),
  channel TEXT NOT NULL,
  destination TEXT NOT NULL,
  state TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  payload BLOB,
  last_error TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
-- Only unfinished entries: a worker's next batch is read in id order straight from it, however
-- many sent ones the table holds. (deliveries_queue, which needed a sort of the whole backlog,
-- is gone.)
DROP INDEX IF EXISTS deliveries_queue;
CREATE INDEX IF NOT EXISTS deliveries_open ON deliveries (channel, destination, id) WHERE state IN ('queued', 'sending', 'stopped');
CREATE INDEX IF NOT EXISTS deliveries_by_message ON deliveries (message_id);
CREATE TABLE IF NOT EXISTS events (
  id INTEGER PRIMARY KEY,
  message_id INTEGER NOT NULL,
  delivery_id INTEGER,
  at INTEGER NOT NULL,
  kind TEXT NOT NULL,
  detail TEXT
);
CREATE INDEX IF NOT EXISTS events_by_message ON events (message_id);
CREATE TABLE IF NOT EXISTS store_owner (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  pid INTEGER NOT NULL,
  since INTEGER NOT NULL
);
${auditTableSql('sqlite')}${pausedTableSql('sqlite')}${leasesTableSql('sqlite')}${queueAttemptsTableSql('sqlite')}${nodeReloadsTableSql('sqlite')}CREATE TABLE IF NOT EXISTS channels (
  name TEXT PRIMARY KEY,
  spec_path TEXT NOT NULL,
  spec_version TEXT NOT NULL,
  updated_at INTEGER NOT NULL
);
`;

/** A messages row as SQLite returns it. */
type MessageRow = Omit<StoredMessage, 'identifiers' | 'pruned'> & { identifiers: string | null; pruned: number };

function fromRow(r: MessageRow): StoredMessage {
  return { ...r, identifiers: r.identifiers ? (JSON.parse(r.identifiers) as Record<string, unknown>) : null, pruned: !!r.pruned };
}

export interface SqliteStoreOptions {
  /**
   * FULL (default): a message is acknowledged once the received-message log is synced to disk,
   * so it survives a power cut; NORMAL: once it is written to the log, so it survives a crash of
   * the process (not of the machine).
   */
  synchronous?: 'FULL' | 'NORMAL';
  /** Told when taking received messages into SQLite fails (they stay in the log and are retried). */
  onIngestError?: (err: Error, waiting: number) => void;
  /** Told every SQL statement the main connection runs (tests look at what a report costs). */
  traceStatements?: (sql: string) => void;
  /** The received-message log is emptied when it has grown past this and SQLite holds all of it. Default 64 MiB. */
  receivedLogLimitBytes?: number;
}

/** How long received messages wait to be taken into SQLite together, unless many are waiting. */
const INGEST_INTERVAL_MS = 5;
const INGEST_AT_ONCE = 256;
const DEFAULT_LOG_LIMIT_BYTES = 64 * 1024 * 1024;

export type { QueuedListener } from './store.js';

/**
 * Counts by channel and status (messages) and by queue and state (deliveries), kept by triggers
 * in the same transaction as the change: /metrics and /health read a few rows instead of
 * scanning tables that hold hundreds of thousands (a scan of 292k deliveries held the event
 * loop, and every ACK, for a second). Triggers, not counters in memory, because replay and
 * prune run in other processes on the same file.
 */
const COUNTS = `
CREATE TABLE message_counts (channel TEXT NOT NULL, status TEXT NOT NULL, count INTEGER NOT NULL, PRIMARY KEY (channel, status)) WITHOUT ROWID;
CREATE TABLE delivery_counts (channel TEXT NOT NULL, destination TEXT NOT NULL, state TEXT NOT NULL, count INTEGER NOT NULL, PRIMARY KEY (channel, destination, state)) WITHOUT ROWID;
INSERT INTO message_counts SELECT channel, status, COUNT(*) FROM messages GROUP BY channel, status;
INSERT INTO delivery_counts SELECT channel, destination, state, COUNT(*) FROM deliveries GROUP BY channel, destination, state;
CREATE TRIGGER message_counted AFTER INSERT ON messages BEGIN
  INSERT INTO message_counts VALUES (NEW.channel, NEW.status, 1) ON CONFLICT (channel, status) DO UPDATE SET count = count + 1;
END;
CREATE TRIGGER message_recounted AFTER UPDATE OF status ON messages WHEN OLD.status <> NEW.status BEGIN
  UPDATE message_counts SET count = count - 1 WHERE channel = OLD.channel AND status = OLD.status;
  INSERT INTO message_counts VALUES (NEW.channel, NEW.status, 1) ON CONFLICT (channel, status) DO UPDATE SET count = count + 1;
END;
CREATE TRIGGER message_uncounted AFTER DELETE ON messages BEGIN
  UPDATE message_counts SET count = count - 1 WHERE channel = OLD.channel AND status = OLD.status;
END;
CREATE TRIGGER delivery_counted AFTER INSERT ON deliveries BEGIN
  INSERT INTO delivery_counts VALUES (NEW.channel, NEW.destination, NEW.state, 1) ON CONFLICT (channel, destination, state) DO UPDATE SET count = count + 1;
END;
CREATE TRIGGER delivery_recounted AFTER UPDATE OF state ON deliveries WHEN OLD.state <> NEW.state BEGIN
  UPDATE delivery_counts SET count = count - 1 WHERE channel = OLD.channel AND destination = OLD.destination AND state = OLD.state;
  INSERT INTO delivery_counts VALUES (NEW.channel, NEW.destination, NEW.state, 1) ON CONFLICT (channel, destination, state) DO UPDATE SET count = count + 1;
END;
CREATE TRIGGER delivery_uncounted AFTER DELETE ON deliveries BEGIN
  UPDATE delivery_counts SET count = count - 1 WHERE channel = OLD.channel AND destination = OLD.destination AND state = OLD.state;
END;
`;

/** Columns added after the first release: added in place to a store an older hl7c made. */
const ADDED_COLUMNS: Array<[table: string, column: string, definition: string]> = [
  ['deliveries', 'lease_owner', 'TEXT'],
  ['deliveries', 'lease_until', 'INTEGER'],
  ['messages', 'dedupe_key', 'TEXT'],
];

/**
 * The embedded store: SQLite in WAL mode, fronted by an append-only log of received messages.
 * A received message is appended to the log before it is acknowledged (one write, no page
 * rewrites), and taken into SQLite with the others received in the same few milliseconds in one
 * transaction. Every read of messages or queues takes in what is waiting first, and opening a
 * store takes in whatever an earlier process left in the log, so nothing acknowledged is ever
 * only in memory.
 */
export class SqliteStore implements Store {
  private readonly connection: Database.Database;
  /**
   * A second connection for queue bookkeeping (sending/sent marks). Losing one of those in a
   * crash only means a message is sent again (at-least-once), so they are written behind, in
   * groups, without an fsync of their own.
   */
  private readonly bookkeeping: Database.Database;
  private readonly statements = new Map<string, Database.Statement>();
  private readonly synchronous: 'FULL' | 'NORMAL';
  private readonly onIngestError: SqliteStoreOptions['onIngestError'];
  private readonly receivedLogLimitBytes: number;
  private receivedLog: ReceivedLog | null = null;
  private nextId: number;
  private waiting: LoggedMessage[] = [];
  private ingestTimer: NodeJS.Timeout | null = null;
  private readonly queuedListeners: QueuedListener[] = [];
  /** Per queue (channel\0destination), whether its queue_attempts row has a failure open, once written here. */
  private readonly queueFailing = new Map<string, boolean>();

  /** Creates the count tables and their triggers on a store that has none: counted once, here. */
  private keepCounts(): void {
    const exists = this.connection.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'delivery_counts'").get();
    if (exists) return;
    this.connection.transaction(() => {
      // Another process may have made them meanwhile: checked again under the write lock.
      if (!this.connection.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'delivery_counts'").get()) this.connection.exec(COUNTS);
    }).immediate();
  }

  /** Prepared once per connection: preparing is a large part of a small query's cost. */
  private statement(sql: string, connection: Database.Database = this.connection): Database.Statement {
    const key = `${connection === this.connection ? 'db' : 'bk'}:${sql}`;
    let stmt = this.statements.get(key);
    if (!stmt) this.statements.set(key, (stmt = connection.prepare(sql)));
    return stmt;
  }

  constructor(
    readonly path: string,
    options: SqliteStoreOptions = {},
  ) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    this.synchronous = options.synchronous ?? 'FULL';
    this.onIngestError = options.onIngestError;
    this.receivedLogLimitBytes = options.receivedLogLimitBytes ?? DEFAULT_LOG_LIMIT_BYTES;
    this.connection = new Database(path, options.traceStatements ? { verbose: (sql) => options.traceStatements!(String(sql)) } : {});
    this.connection.pragma('journal_mode = WAL');
    // A reader's own changes (replay, prune) are synced; the writer relaxes this (openForWriting).
    this.connection.pragma('synchronous = FULL');
    this.connection.pragma('busy_timeout = 5000');
    // Checkpoints copy the WAL into the database and sync it; fewer, larger ones cost less.
    this.connection.pragma('wal_autocheckpoint = 4000');
    this.connection.pragma('cache_size = -32000');
    this.connection.exec(SCHEMA);
    for (const [table, column, definition] of ADDED_COLUMNS) {
      const columns = this.connection.prepare(`PRAGMA table_info(${table})`).all() as Array<{ name: string }>;
      if (!columns.some((c) => c.name === column)) this.connection.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${definition}`);
    }
    this.connection.exec('CREATE INDEX IF NOT EXISTS messages_by_dedupe_key ON messages (channel, dedupe_key, received_at) WHERE dedupe_key IS NOT NULL');
    this.keepCounts();
    this.bookkeeping = path === ':memory:' ? this.connection : new Database(path);
    this.bookkeeping.pragma('synchronous = NORMAL');
    this.bookkeeping.pragma('busy_timeout = 5000');
    this.nextId = this.takeOverReceivedLog().nextId;
  }

  /**
   * Takes in what the received-message log holds that SQLite does not (left by a crash, or not
   * yet taken in by a running serve); returns the next free message id. Messages go into SQLite
   * in id order, so only ids above the highest stored one can be missing.
   */
  private takeOverReceivedLog(): { nextId: number; wholeBytes: number } {
    const highest = () => (this.connection.prepare('SELECT MAX(id) AS id FROM messages').get() as { id: number | null }).id ?? 0;
    let wholeBytes = 0;
    if (this.path !== ':memory:') {
      const stored = highest();
      const log = readReceivedLogs(this.receivedLogPath, stored);
      this.ingest(log.messages);
      wholeBytes = log.wholeBytes;
    }
    return { nextId: highest() + 1, wholeBytes };
  }

  /**
   * The SQLite connection, with everything received so far taken in: for tests that look at the
   * rows themselves. hl7c's own code goes through the Store interface.
   */
  get db(): Database.Database {
    try {
      this.flushBookkeeping();
    } catch {
      // As for any report: a few milliseconds stale.
    }
    return this.connection;
  }

  get location(): string {
    return this.path;
  }

  /** Where received messages are appended before they are acknowledged. */
  get receivedLogPath(): string {
    return `${this.path}.received`;
  }

  /** The node that writes through this store (openForWriting), whose leases are live. */
  private owner: string | null = null;

  /**
   * Makes this store the one that receives messages: a second `hl7c serve` on the same store
   * would hand out the same message ids, so it is refused while the first one runs. Message ids
   * come from a counter in this process, which is correct because no other process writes.
   */
  openForWriting(owner?: string): Promise<void> {
    try {
      this.becomeWriter();
      if (owner) this.owner = owner;
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  private becomeWriter(): void {
    if (this.receivedLog || this.path === ':memory:') return;
    const claim = this.connection.transaction(() => {
      const owner = this.connection.prepare('SELECT pid FROM store_owner WHERE id = 1').get() as { pid: number } | undefined;
      if (owner && owner.pid !== process.pid && processIsAlive(owner.pid)) {
        throw new Error(`the store ${this.path} is in use by another hl7c serve (pid ${owner.pid}); stop it first, or give this one its own --store`);
      }
      this.connection.prepare('INSERT INTO store_owner (id, pid, since) VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE SET pid = excluded.pid, since = excluded.since').run(process.pid, Date.now());
    });
    claim.immediate();
    // Whatever is only in SQLite's WAL after a power cut is still in the received-message log,
    // which is emptied only after a checkpoint has synced both: so no commit needs its own fsync.
    this.connection.pragma('synchronous = NORMAL');
    // Read again after the claim: no other writer can append to it from here on.
    const { nextId, wholeBytes } = this.takeOverReceivedLog();
    this.nextId = nextId;
    this.receivedLog = new ReceivedLog(this.receivedLogPath, this.synchronous === 'FULL', wholeBytes);
    this.emptyReceivedLog();
    // Checkpoints from here on are made in a thread of their own, not inside this loop's commits.
    this.connection.pragma('wal_autocheckpoint = 0');
    this.bookkeeping.pragma('wal_autocheckpoint = 0');
    this.checkpointer = new Checkpointer(this.path);
  }

  private checkpointer: Checkpointer | null = null;

  onQueued(listener: QueuedListener): void {
    this.queuedListeners.push(listener);
  }

  /**
   * Stores a received message and its queue entries. Resolves with its id once it is as safe as
   * the store's durability promises: appended (a process crash keeps it) or appended and synced
   * to disk (a power cut keeps it too).
   */
  record(entry: NewMessage): Promise<number> {
    try {
      // First: opening for writing reads the log and so fixes the next id.
      this.becomeWriter();
    } catch (err) {
      return Promise.reject(err as Error);
    }
    const message: LoggedMessage = { ...entry, id: this.nextId++ };
    if (!this.receivedLog) {
      this.ingest([message]);
      return Promise.resolve(message.id);
    }
    return this.receivedLog.append(message).then(() => {
      // Only a message safely in the log goes on to SQLite: one that failed is answered with an
      // error, and the sender sends it again.
      this.waiting.push(message);
      if (this.waiting.length >= INGEST_AT_ONCE) this.ingestWaiting();
      else this.ingestTimer ??= setTimeout(() => this.ingestWaiting(), INGEST_INTERVAL_MS);
      return message.id;
    });
  }

  /** Takes the messages waiting in the log into SQLite; every read does this first. */
  ingestWaiting(): void {
    if (this.ingestTimer) clearTimeout(this.ingestTimer);
    this.ingestTimer = null;
    if (this.waiting.length === 0) return;
    const batch = this.waiting;
    this.waiting = [];
    try {
      this.ingest(batch);
    } catch (err) {
      // They are safe in the log: try again shortly, and at the latest on the next start.
      this.waiting = batch.concat(this.waiting);
      this.ingestTimer = setTimeout(() => this.ingestWaiting(), 1000);
      this.ingestFailures++;
      this.lastIngestError = (err as Error).message;
      this.onIngestError?.(err as Error, this.waiting.length);
      return;
    }
    if (this.waiting.length === 0 && this.receivedLog && this.receivedLog.bytes > this.receivedLogLimitBytes && this.receivedLog.canRotate) this.rotateReceivedLog();
  }

  /**
   * True once SQLite holds on disk everything taken in so far: a checkpoint that copies the
   * whole WAL syncs it and the database file. PASSIVE, because a FULL one would block this event
   * loop (and every ACK) for the busy timeout while a reader holds an old snapshot; one that
   * cannot finish leaves the log as it is, for the next try.
   */
  private checkpointed(): boolean {
    const [result] = this.connection.pragma('wal_checkpoint(PASSIVE)') as Array<{ busy: number; log: number; checkpointed: number }>;
    return !!result && result.busy === 0 && result.checkpointed >= result.log;
  }

  /**
   * Starts a new received-message log; the current one becomes the old one, which start-up reads
   * too. The previous old one is dropped, so this waits until SQLite holds all of it on disk:
   * its records were all taken in (nothing waits, and no sync on it is still in flight) and a
   * checkpoint completes. Records whose sync is in flight stay in the renamed file.
   */
  private rotateReceivedLog(): void {
    if (!this.checkpointed()) return;
    faultPoint('during-checkpoint');
    this.receivedLog!.rotate();
  }

  /** Empties the log (start-up, shutdown) once SQLite holds all of it on disk; nothing is in flight then. */
  private emptyReceivedLog(): void {
    if (!this.checkpointed()) return;
    faultPoint('during-checkpoint');
    this.receivedLog!.discardAll();
  }

  /** fdatasync calls made on the received-message log (each covers every message appended before it). */
  get receivedLogSyncs(): number {
    return this.receivedLog?.syncs ?? 0;
  }

  /** Times the received-message log was rotated (its file renamed to .old and a new one started). */
  get receivedLogRotations(): number {
    return this.receivedLog?.rotations ?? 0;
  }

  /** Received messages in the log that SQLite has not taken in yet (more than a few: it is failing). */
  get waitingToIngest(): number {
    return this.waiting.length;
  }

  /** Times taking received messages into SQLite failed (they stay in the log and are retried). */
  ingestFailures = 0;
  lastIngestError: string | null = null;

  /**
   * Inserts messages and their queue entries in one transaction. A message already there (the
   * log read again after a crash, or by two processes) is skipped, queue entries and all.
   */
  private ingest(messages: LoggedMessage[]): void {
    if (messages.length === 0) return;
    // Made once: building a transaction function prepares its BEGIN/COMMIT statements.
    this.ingestTransaction ??= this.connection.transaction((items: LoggedMessage[]) => {
      const insertMessage = this.statement(
        `INSERT INTO messages (id, channel, spec_version, source, received_at, control_id, message_type, raw, status, reason, identifiers, ack_code, ack, dedupe_key)
         VALUES (@id, @channel, @spec_version, @source, @received_at, @control_id, @message_type, @raw, @status, @reason, @identifiers, @ack_code, @ack, @dedupe_key)
         ON CONFLICT (id) DO NOTHING`,
      );
      const insertDelivery = this.statement(
        `INSERT INTO deliveries (message_id, channel, destination, state, attempts, next_attempt_at, payload, created_at, updated_at)
         VALUES (?, ?, ?, 'queued', 0, ?, ?, ?, ?)`,
      );
      const queued: Array<[string, string]> = [];
      // The first history entries (received, queued) are read from these rows, not written twice.
      for (const m of items) {
        if (insertMessage.run({ ...m, identifiers: m.identifiers ? JSON.stringify(m.identifiers) : null, dedupe_key: m.dedupe_key ?? null }).changes === 0) continue;
        for (const d of m.deliveries) {
          insertDelivery.run(m.id, m.channel, d.destination, m.received_at, d.payload, m.received_at, m.received_at);
          queued.push([m.channel, d.destination]);
        }
      }
      faultPoint('during-ingest');
      return queued;
    });
    const queued = this.ingestTransaction.immediate(messages);
    const seen = new Set<string>();
    for (const [channel, destination] of queued) {
      const key = `${channel}\u0000${destination}`;
      if (seen.has(key)) continue;
      seen.add(key);
      for (const listener of this.queuedListeners) listener(channel, destination);
    }
  }

  private ingestTransaction: Database.Transaction<(items: LoggedMessage[]) => Array<[string, string]>> | undefined;
  private bookkeepingTransaction: ((ops: Array<() => void>) => void) | undefined;

  private bookkeepingOps: Array<() => void> = [];
  private bookkeepingTimer: NodeJS.Timeout | null = null;

  /**
   * Queue bookkeeping is written behind, a few milliseconds' worth in one commit. Nothing depends
   * on these being on disk before the next step (an entry not marked sent is sent again), and
   * every read of the queues writes them first.
   */
  private defer(op: () => void): void {
    this.bookkeepingOps.push(op);
    this.bookkeepingTimer ??= setTimeout(() => this.catchUp(), INGEST_INTERVAL_MS);
  }

  /**
   * For reads that report (and the timer): a failing bookkeeping write leaves them a few
   * milliseconds stale rather than failing too; it is tried again shortly, and the worker of the
   * queue, which must not go on without it, gets the error.
   */
  private catchUp(): void {
    try {
      this.flushBookkeeping();
    } catch {
      this.bookkeepingTimer ??= setTimeout(() => this.catchUp(), 1000);
    }
  }

  /** Writes the queue bookkeeping waiting (after taking in received messages); throws if it cannot. */
  flushBookkeeping(): void {
    if (this.bookkeepingTimer) clearTimeout(this.bookkeepingTimer);
    this.bookkeepingTimer = null;
    this.ingestWaiting();
    const ops = this.bookkeepingOps;
    if (ops.length === 0) return;
    this.bookkeepingOps = [];
    this.bookkeepingTransaction ??= this.bookkeeping.transaction((list: Array<() => void>) => {
      for (const op of list) op();
    });
    try {
      this.bookkeepingTransaction(ops);
    } catch (err) {
      // Rolled back: kept, in order, for the next flush.
      this.bookkeepingOps = ops.concat(this.bookkeepingOps);
      throw err;
    }
  }

  /** The oldest unfinished entries of a queue, in FIFO order, without taking them (tests, tools). */
  nextDeliveries(channel: string, destination: string, limit: number): QueuedDelivery[] {
    this.flushBookkeeping();
    return this.queueHead(channel, destination, limit);
  }

  private queueHead(channel: string, destination: string, limit: number): LeasedRow[] {
    return this.statement(
      `SELECT d.*, m.control_id FROM deliveries d JOIN messages m ON m.id = d.message_id
       WHERE d.channel = ? AND d.destination = ? AND d.state IN ('queued', 'sending', 'stopped')
       ORDER BY d.id LIMIT ?`,
      this.bookkeeping,
    ).all(channel, destination, limit) as LeasedRow[];
  }

  /**
   * Reads the head of the queue and leases what may be taken, in one write transaction on the
   * bookkeeping connection (written after whatever bookkeeping is pending).
   */
  claimDeliveries(request: ClaimRequest): Promise<Claim> {
    try {
      this.flushBookkeeping();
      this.claimTransaction ??= this.bookkeeping.transaction((r: ClaimRequest & { now: number }) => this.claim(r));
      return Promise.resolve(this.claimTransaction.immediate({ ...request, now: request.now ?? Date.now() }));
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  private claimTransaction: Database.Transaction<(r: ClaimRequest & { now: number }) => Claim> | undefined;

  private claim(r: ClaimRequest & { now: number }): Claim {
    if (this.statement('SELECT 1 FROM paused_destinations WHERE channel = ? AND destination = ?', this.bookkeeping).get(r.channel, r.destination)) {
      // Taken by this owner in an earlier batch and not sent: back to the queue, so whichever
      // node works it after the resume starts at its head (nothing is in flight in an ordered queue now).
      if (r.ordered) {
        this.statement("UPDATE deliveries SET state = 'queued', lease_owner = NULL, lease_until = NULL WHERE channel = ? AND destination = ? AND state = 'sending' AND lease_owner = ?", this.bookkeeping).run(r.channel, r.destination, r.owner);
      }
      return { deliveries: [], nextDueAt: null, stopped: false, paused: true };
    }
    const leasedElsewhere = (d: LeasedRow) => d.state === 'sending' && d.lease_owner !== null && d.lease_owner !== r.owner && (d.lease_until ?? 0) > r.now;
    const taken: LeasedRow[] = [];
    let nextDueAt: number | null = null;
    let stopped = false;
    if (r.ordered) {
      const head = this.queueHead(r.channel, r.destination, r.limit);
      for (const d of head) {
        if (d.state === 'stopped') {
          stopped = true;
          break;
        }
        // One node at a time works an ordered queue: the one holding its head.
        if (leasedElsewhere(d)) break;
        if (d.next_attempt_at > r.now) {
          nextDueAt = d.next_attempt_at;
          break;
        }
        taken.push(d);
      }
    } else {
      const rows = this.statement(
        `SELECT d.*, m.control_id FROM deliveries d JOIN messages m ON m.id = d.message_id
         WHERE d.channel = ? AND d.destination = ? AND d.state IN ('queued', 'sending') AND d.next_attempt_at <= ?
           AND (d.lease_owner IS NULL OR d.lease_owner = ? OR d.lease_until <= ?)
         ORDER BY d.id LIMIT ?`,
        this.bookkeeping,
      ).all(r.channel, r.destination, r.now, r.owner, r.now, r.limit) as LeasedRow[];
      taken.push(...rows);
      if (taken.length === 0) {
        const due = this.statement("SELECT MIN(next_attempt_at) AS due FROM deliveries WHERE channel = ? AND destination = ? AND state = 'queued'", this.bookkeeping).get(r.channel, r.destination) as {
          due: number | null;
        };
        nextDueAt = due.due;
      }
    }
    const lease = this.statement("UPDATE deliveries SET state = 'sending', lease_owner = ?, lease_until = ?, updated_at = ? WHERE id = ?", this.bookkeeping);
    const until = r.now + r.leaseMs;
    for (const d of taken) lease.run(r.owner, until, r.now, d.id);
    return { deliveries: taken.map((d) => ({ ...d, state: 'sending', lease_owner: r.owner, lease_until: until })), nextDueAt, stopped, paused: false };
  }

  renewLease(ids: number[], owner: string, leaseMs: number, now = Date.now()): Promise<void> {
    this.defer(() => {
      const renew = this.statement("UPDATE deliveries SET lease_until = ? WHERE id = ? AND lease_owner = ? AND state = 'sending'", this.bookkeeping);
      for (const id of ids) renew.run(now + leaseMs, id, owner);
    });
    return Promise.resolve();
  }

  /** Records an attempt's outcome and the state it leaves the entry in; its lease ends. */
  finishAttempt(delivery: Delivery, outcome: AttemptRecord, now: number): Promise<void> {
    this.defer(() => {
      this.statement('UPDATE deliveries SET state = ?, attempts = ?, last_error = ?, next_attempt_at = ?, updated_at = ?, lease_owner = NULL, lease_until = NULL WHERE id = ?', this.bookkeeping).run(
        outcome.state,
        delivery.attempts,
        outcome.error ?? null,
        outcome.nextAttemptAt ?? delivery.next_attempt_at,
        now,
        delivery.id,
      );
      this.statement('INSERT INTO events (message_id, delivery_id, at, kind, detail) VALUES (?, ?, ?, ?, ?)', this.bookkeeping).run(delivery.message_id, delivery.id, now, `attempt ${delivery.attempts}: ${outcome.state}`, outcome.detail);
      const ok = outcome.state === 'sent';
      // One writer, attempts ending in order: a success changes the queue's row only when it
      // ends a failure (the write doubled what an attempt costs here), a failure always.
      const queue = `${delivery.channel}\u0000${delivery.destination}`;
      if (ok && this.queueFailing.get(queue) === false) return;
      this.statement(RECORD_ATTEMPT_SQL, this.bookkeeping).run({ channel: delivery.channel, destination: delivery.destination, ok_at: ok ? now : 0, fail_since: ok ? null : now, fails: ok ? 0 : 1 });
      this.queueFailing.set(queue, !ok);
    });
    return Promise.resolve();
  }

  /**
   * Entries being sent whose lease has run out go back to their queue (at-least-once). Only one
   * process writes a SQLite store, so once this one is the writer every lease held by another
   * owner belongs to a process that is gone: those come back at once, not after their expiry.
   */
  releaseExpiredLeases(now = Date.now()): Promise<number> {
    try {
      this.flushBookkeeping();
      const released = this.connection
        .prepare("UPDATE deliveries SET state = 'queued', lease_owner = NULL, lease_until = NULL WHERE state = 'sending' AND (lease_owner IS NULL OR lease_until <= ? OR (? IS NOT NULL AND lease_owner <> ?))")
        .run(now, this.owner, this.owner).changes;
      return Promise.resolve(released);
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  hasOpenDeliveries(channel: string, destination: string): Promise<boolean> {
    try {
      return Promise.resolve(this.nextDeliveries(channel, destination, 1).length > 0);
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  /** Destinations with unfinished work, for workers of channels that are gone (drain). */
  openQueues(): Promise<Array<{ channel: string; destination: string; count: number }>> {
    this.catchUp();
    return this.attempt(
      () =>
        this.connection
          .prepare("SELECT channel, destination, COUNT(*) AS count FROM deliveries WHERE state IN ('queued', 'sending') GROUP BY channel, destination")
          .all() as Array<{ channel: string; destination: string; count: number }>,
    );
  }

  findFirstByKey(channel: string, key: string, since: number): Promise<{ id: number; status: string; reason: string | null; ack_code: string | null; ack: Buffer | null } | undefined> {
    this.catchUp();
    return this.attempt(
      () =>
        this.statement(
          `SELECT id, status, reason, ack_code, ack FROM messages INDEXED BY messages_by_dedupe_key
           WHERE channel = ? AND dedupe_key = ? AND received_at >= ? AND status NOT IN ('duplicate', 'error') ORDER BY received_at, id LIMIT 1`,
        ).get(channel, key, since) as { id: number; status: string; reason: string | null; ack_code: string | null; ack: Buffer | null } | undefined,
    );
  }

  /** A synchronous read or write, as a promise (a thrown error becomes a rejection). */
  private attempt<T>(work: () => T): Promise<T> {
    try {
      return Promise.resolve(work());
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  listMessages(filter: MessageFilter = {}): Promise<Array<StoredMessage & { deliveries: string }>> {
    return this.attempt(() => this.listMessagesNow(filter));
  }

  private listMessagesNow(filter: MessageFilter): Array<StoredMessage & { deliveries: string }> {
    this.catchUp();
    const where: string[] = [];
    const args: unknown[] = [];
    if (filter.channel) {
      where.push('m.channel = ?');
      args.push(filter.channel);
    }
    if (filter.status === 'error_queue') {
      where.push("(m.status IN ('rejected', 'error') OR EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = m.id AND d.state IN ('dead', 'stopped')))");
    } else if (filter.status) {
      if ((DELIVERY_STATES_FILTERED as readonly string[]).includes(filter.status)) {
        where.push('EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = m.id AND d.state = ?)');
      } else where.push('m.status = ?');
      args.push(filter.status);
    }
    // A time bound is also turned into an id bound (exact: the lowest id received since, the
    // highest before), so the planner walks the id range instead of every message.
    if (filter.until !== undefined) {
      where.push('m.received_at < ? AND m.id <= (SELECT MAX(id) FROM messages INDEXED BY messages_by_time WHERE received_at < ?)');
      args.push(filter.until, filter.until);
    }
    if (filter.afterId !== undefined) {
      where.push(filter.newestFirst ? 'm.id < ?' : 'm.id > ?');
      args.push(filter.afterId);
    }
    if (filter.since !== undefined) {
      where.push('m.received_at >= ? AND m.id >= (SELECT MIN(id) FROM messages INDEXED BY messages_by_time WHERE received_at >= ?)');
      args.push(filter.since, filter.since);
    }
    if (filter.controlId !== undefined) {
      where.push('m.control_id = ?');
      args.push(filter.controlId);
    }
    if (filter.messageType !== undefined) {
      // A prefix that ends at a component: ADT^A08 matches ADT^A08^ADT_A01, not ADT^A081.
      where.push("(m.message_type = ? OR substr(m.message_type, 1, length(?) + 1) = ? || '^')");
      args.push(filter.messageType, filter.messageType, filter.messageType);
    }
    if (filter.identifier !== undefined) {
      where.push("EXISTS (SELECT 1 FROM json_each(m.identifiers) i WHERE json_extract(i.value, '$.id') = ?)");
      args.push(filter.identifier);
    }
    const rows = this.connection
      .prepare(
        `SELECT m.*, (SELECT GROUP_CONCAT(d.destination || ':' || d.state, ' ') FROM deliveries d WHERE d.message_id = m.id) AS deliveries
         FROM messages m ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY m.id${filter.newestFirst ? ' DESC' : ''} LIMIT ?`,
      )
      .all(...args, filter.limit ?? 1000) as Array<MessageRow & { deliveries: string | null }>;
    return rows.map((r) => ({ ...fromRow(r), deliveries: r.deliveries ?? '' }));
  }

  getMessage(id: number): Promise<{ message: StoredMessage; deliveries: Delivery[]; events: StoredEvent[] } | undefined> {
    return this.attempt(() => this.getMessageNow(id));
  }

  private getMessageNow(id: number): { message: StoredMessage; deliveries: Delivery[]; events: StoredEvent[] } | undefined {
    this.catchUp();
    const row = this.connection.prepare('SELECT * FROM messages WHERE id = ?').get(id) as MessageRow | undefined;
    if (!row) return undefined;
    const message = fromRow(row);
    const deliveries = this.connection.prepare('SELECT * FROM deliveries WHERE message_id = ? ORDER BY id').all(id) as Delivery[];
    const received: StoredEvent[] = [
      { id: 0, message_id: id, delivery_id: null, at: message.received_at, kind: message.status, detail: null },
      ...deliveries
        .filter((d) => d.created_at === message.received_at)
        .map((d) => ({ id: 0, message_id: id, delivery_id: d.id, at: d.created_at, kind: 'queued', detail: d.destination })),
    ];
    const later = this.connection.prepare('SELECT * FROM events WHERE message_id = ? ORDER BY id').all(id) as StoredEvent[];
    return { message, deliveries, events: [...received, ...later] };
  }

  recordAnswer(id: number, answer: { ack_code: string; ack: Buffer | null; detail: string }, now: number): Promise<void> {
    return this.attempt(() => {
      this.flushBookkeeping();
      this.connection.transaction(() => {
        this.connection.prepare('UPDATE messages SET ack_code = ?, ack = ? WHERE id = ?').run(answer.ack_code, answer.ack, id);
        this.connection.prepare('INSERT INTO events (message_id, delivery_id, at, kind, detail) VALUES (?, NULL, ?, ?, ?)').run(id, now, `answered ${answer.ack_code}`, answer.detail);
      })();
    });
  }

  /**
   * Replaces a message's outcome with a new run (replay): its unfinished or dead queue entries are
   * closed as replayed and new ones are queued, all in one transaction.
   */
  recordReplay(id: number, outcome: ReplayOutcome, now: number): Promise<void> {
    return this.attempt(() => this.recordReplayNow(id, outcome, now));
  }

  private recordReplayNow(id: number, outcome: ReplayOutcome, now: number): void {
    this.flushBookkeeping();
    const tx = this.connection.transaction(() => {
      this.connection
        .prepare('UPDATE messages SET spec_version = ?, status = ?, reason = ?, identifiers = ?, ack_code = COALESCE(ack_code, ?) WHERE id = ?')
        .run(outcome.spec_version, outcome.status, outcome.reason, outcome.identifiers ? JSON.stringify(outcome.identifiers) : null, outcome.ack_code, id);
      // A stopped entry holds its queue: it is sent again in its place, so order is kept.
      // With `only`, the other destinations' entries are left as they are.
      const only = outcome.only ?? null;
      const stopped = this.connection.prepare("SELECT id, destination FROM deliveries WHERE message_id = ? AND state = 'stopped' AND (? IS NULL OR destination = ?)").all(id, only, only) as Array<{ id: number; destination: string }>;
      this.connection.prepare("UPDATE deliveries SET state = 'replayed', updated_at = ? WHERE message_id = ? AND state IN ('dead', 'stopped', 'queued') AND (? IS NULL OR destination = ?)").run(now, id, only, only);
      const channel = (this.connection.prepare('SELECT channel FROM messages WHERE id = ?').get(id) as { channel: string }).channel;
      this.connection.prepare('INSERT INTO events (message_id, delivery_id, at, kind, detail) VALUES (?, NULL, ?, ?, ?)').run(id, now, `replayed: ${outcome.status}${only ? ` (to ${only})` : ''}`, outcome.reason);
      for (const d of outcome.deliveries) {
        const held = stopped.find((s) => s.destination === d.destination);
        if (held) {
          this.connection.prepare("UPDATE deliveries SET state = 'queued', attempts = 0, next_attempt_at = ?, payload = ?, last_error = NULL, updated_at = ? WHERE id = ?").run(now, d.payload, now, held.id);
          this.connection.prepare('INSERT INTO events (message_id, delivery_id, at, kind, detail) VALUES (?, ?, ?, ?, ?)').run(id, held.id, now, 'queued again in place', d.destination);
          continue;
        }
        const deliveryId = Number(
          this.connection
            .prepare("INSERT INTO deliveries (message_id, channel, destination, state, attempts, next_attempt_at, payload, created_at, updated_at) VALUES (?, ?, ?, 'queued', 0, ?, ?, ?, ?)")
            .run(id, channel, d.destination, now, d.payload, now, now).lastInsertRowid,
        );
        this.connection.prepare('INSERT INTO events (message_id, delivery_id, at, kind, detail) VALUES (?, ?, ?, ?, ?)').run(id, deliveryId, now, 'queued', d.destination);
      }
    });
    tx();
  }

  discardDelivery(messageId: number, destination: string, now: number, by: string, queuedToo = false): Promise<DiscardResult> {
    return this.attempt(() => {
      this.flushBookkeeping();
      return this.connection.transaction((): DiscardResult => {
        const entries = this.connection.prepare('SELECT id, state FROM deliveries WHERE message_id = ? AND destination = ?').all(messageId, destination) as Array<{ id: number; state: string }>;
        if (entries.length === 0) return 'no-such-entry';
        const held = entries.filter((e) => e.state === 'dead' || e.state === 'stopped' || (queuedToo && e.state === 'queued'));
        if (held.length === 0) return 'not-dead-or-stopped';
        for (const e of held) {
          this.connection.prepare("UPDATE deliveries SET state = 'discarded', updated_at = ? WHERE id = ?").run(now, e.id);
          this.connection.prepare('INSERT INTO events (message_id, delivery_id, at, kind, detail) VALUES (?, ?, ?, ?, ?)').run(messageId, e.id, now, 'discarded', `${e.state} entry discarded by ${by}`);
        }
        return 'discarded';
      }).immediate();
    });
  }

  recordAudit(entry: NewAuditEntry): Promise<void> {
    const sql = insertAuditSql('sqlite');
    return this.attempt(() => {
      this.statement(sql.text).run(...sql.values(entry));
    });
  }

  listAudit(options: { limit?: number; before?: number } = {}): Promise<AuditEntry[]> {
    const sql = listAuditSql('sqlite');
    return this.attempt(() => this.statement(sql.text).all(...sql.values(options)) as AuditEntry[]);
  }

  setPaused(channel: string, destination: string, pause: { by: string; at: number } | null): Promise<boolean> {
    const sql = setPausedSql('sqlite', channel, destination, pause);
    return this.attempt(() => this.connection.prepare(sql.text).run(...sql.values).changes > 0);
  }

  takeLease(name: string, owner: string, ttlMs: number, now = Date.now()): Promise<{ owner: string; until: number }> {
    const sql = takeLeaseSql('sqlite');
    return this.attempt(() => {
      this.statement(sql.take).run(name, owner, now + ttlMs, now);
      return this.statement(sql.read).get(name) as { owner: string; until: number };
    });
  }

  releaseLease(name: string, owner: string): Promise<void> {
    return this.attempt(() => {
      this.statement(releaseLeaseSql('sqlite')).run(name, owner);
    });
  }

  pausedDestinations(): Promise<DestinationPause[]> {
    return this.attempt(() => this.statement(LIST_PAUSED_SQL).all() as DestinationPause[]);
  }

  /**
   * Removes the content (raw bytes, ACK, identifiers, payloads) of messages older than a time
   * whose deliveries are finished; rows, outcomes and counts stay. A few hundred messages per
   * transaction, so a running serve is never kept waiting for the write lock for long.
   */
  prune(olderThan: number, perTransaction = 500): Promise<number> {
    return this.attempt(() => this.pruneNow(olderThan, perTransaction));
  }

  private pruneNow(olderThan: number, perTransaction: number): number {
    this.flushBookkeeping();
    const next = this.connection.prepare(
      `SELECT id FROM messages WHERE received_at < ? AND pruned = 0
         AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = messages.id AND d.state IN ('queued', 'sending', 'stopped'))
       ORDER BY id LIMIT ?`,
    );
    const clearMessage = this.connection.prepare('UPDATE messages SET raw = NULL, ack = NULL, identifiers = NULL, pruned = 1 WHERE id = ?');
    const clearPayloads = this.connection.prepare("UPDATE deliveries SET payload = NULL WHERE message_id = ? AND state IN ('sent', 'dead', 'replayed', 'discarded')");
    const pruneSome = this.connection.transaction((ids: number[]) => {
      for (const id of ids) {
        clearMessage.run(id);
        clearPayloads.run(id);
      }
    });
    let pruned = 0;
    for (;;) {
      const ids = (next.all(olderThan, perTransaction) as Array<{ id: number }>).map((r) => r.id);
      if (ids.length === 0) return pruned;
      pruneSome(ids);
      pruned += ids.length;
    }
  }

  counts(): Promise<MessageCount[]> {
    this.catchUp();
    return this.attempt(() => this.statement('SELECT channel, status, count FROM message_counts WHERE count > 0 ORDER BY channel, status').all() as MessageCount[]);
  }

  /**
   * From the count tables, and per queue with open entries its head (the partial index
   * deliveries_open): no statement here reads more than a few rows.
   */
  metrics(): Promise<StoreMetrics> {
    this.catchUp();
    return this.attempt(() => {
      const deliveries = this.statement('SELECT channel, destination, state, count FROM delivery_counts ORDER BY channel, destination, state').all() as StoreMetrics['deliveries'];
      const open = new Map<string, { channel: string; destination: string }>();
      for (const d of deliveries) if (d.count > 0 && OPEN_STATES.includes(d.state)) open.set(`${d.channel}\u0000${d.destination}`, d);
      const head = this.statement(
        `SELECT created_at FROM deliveries INDEXED BY deliveries_open
         WHERE channel = ? AND destination = ? AND state IN ('queued', 'sending', 'stopped') ORDER BY id LIMIT 1`,
      );
      const oldestOpen: StoreMetrics['oldestOpen'] = [];
      for (const q of open.values()) {
        const row = head.get(q.channel, q.destination) as { created_at: number } | undefined;
        if (row) oldestOpen.push({ channel: q.channel, destination: q.destination, oldest: row.created_at });
      }
      return {
        messages: this.statement('SELECT channel, status, count FROM message_counts WHERE count > 0 ORDER BY channel, status').all() as MessageCount[],
        deliveries,
        oldestOpen,
        waiting: this.waiting.length,
        ingestFailures: this.ingestFailures,
        lastError: this.lastIngestError,
        failing: this.statement(FAILING_QUEUES_SQL).all() as StoreMetrics['failing'],
        // One node writes a SQLite store: the live one is this process's.
        reloads: this.owner ? (this.statement('SELECT node, at, outcome, summary FROM node_reloads WHERE node = ?').all(this.owner) as NodeReload[]) : [],
      };
    });
  }

  recordReload(reload: Omit<NodeReload, 'node'>): Promise<void> {
    const owner = this.owner;
    if (!owner) return Promise.resolve();
    return this.attempt(() => {
      // Earlier processes' rows are of nodes gone: one writer at a time.
      this.connection.transaction(() => {
        this.statement('DELETE FROM node_reloads WHERE node <> ?').run(owner);
        this.statement(recordReloadSql('sqlite')).run(owner, reload.at, reload.outcome, reload.summary);
      })();
    });
  }

  setChannel(name: string, specPath: string, specVersion: string, now: number): Promise<void> {
    return this.attempt(() => {
      this.connection
      .prepare('INSERT INTO channels (name, spec_path, spec_version, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET spec_path = excluded.spec_path, spec_version = excluded.spec_version, updated_at = excluded.updated_at')
      .run(name, specPath, specVersion, now);
    });
  }

  channelSpecs(): Promise<ChannelSpec[]> {
    return this.attempt(() => this.connection.prepare('SELECT name, spec_path, spec_version FROM channels').all() as ChannelSpec[]);
  }

  close(): Promise<void> {
    // Appends in flight (a sync in the thread pool) finish first: their messages are answered.
    const log = this.receivedLog;
    if (log && !log.idle) return log.drain().then(() => new Promise<void>((r) => setImmediate(r))).then(() => this.close());
    return this.attempt(() => this.closeNow());
  }

  private closeNow(): void {
    this.catchUp();
    // Entries this process leased and did not send go back to their queue now, not at expiry.
    if (this.owner) {
      try {
        this.connection.prepare("UPDATE deliveries SET state = 'queued', lease_owner = NULL, lease_until = NULL WHERE state = 'sending' AND lease_owner = ?").run(this.owner);
      } catch {
        // The next writer releases them.
      }
    }
    if (this.receivedLog) {
      // Everything it held is in SQLite now (a failed take-over leaves it for the next start).
      if (this.waiting.length === 0 && this.receivedLog.idle) this.emptyReceivedLog();
      this.receivedLog.close();
      this.receivedLog = null;
      this.connection.prepare('DELETE FROM store_owner WHERE pid = ?').run(process.pid);
    }
    if (this.ingestTimer) clearTimeout(this.ingestTimer);
    void this.checkpointer?.stop();
    this.checkpointer = null;
    if (this.bookkeeping !== this.connection) this.bookkeeping.close();
    this.connection.close();
  }
}

const OPEN_STATES = ['queued', 'sending', 'stopped'];

/** One attempt's outcome into its queue's row (one writer: slot 0). */
const RECORD_ATTEMPT_SQL = recordAttemptsSql('sqlite', 'SELECT @channel AS channel, @destination AS destination, 0 AS slot, @ok_at AS ok_at, @fail_since AS fail_since, @fails AS fails');

/** A deliveries row with its lease columns (not part of Delivery: only the store reads them). */
type LeasedRow = QueuedDelivery & { lease_owner: string | null; lease_until: number | null };

function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, it is just not ours to signal.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
