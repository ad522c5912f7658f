import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { Delivery, DeliveryState, MessageFilter, NewMessage, StoredEvent, StoredMessage } from './types.js';

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
CREATE INDEX IF NOT EXISTS deliveries_queue ON deliveries (channel, destination, state, id);
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
CREATE TABLE IF NOT EXISTS channels (
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

interface Pending {
  entry: NewMessage;
  resolve(id: number): void;
  reject(err: Error): void;
}

export interface SqliteStoreOptions {
  /** FULL (default): a commit survives power loss; NORMAL: survives a process crash only. */
  synchronous?: 'FULL' | 'NORMAL';
}

/**
 * The embedded store: SQLite in WAL mode. Received messages are written in groups: every
 * message that arrives while a commit is being prepared shares its transaction (and its fsync),
 * and each caller is answered only once that transaction has committed.
 */
export class SqliteStore {
  readonly db: Database.Database;
  /**
   * A second connection for queue bookkeeping (sending/sent marks). Losing one of those in a
   * power cut only means a message is sent again (at-least-once), so its commits skip the fsync;
   * the next received-message commit, which does fsync the WAL, makes them durable too.
   */
  private readonly bookkeeping: Database.Database;
  private pending: Pending[] = [];
  private flushScheduled = false;
  private readonly statements = new Map<string, Database.Statement>();

  /** Prepared once per connection: preparing is a large part of a small query's cost. */
  private statement(sql: string, connection: Database.Database = this.db): Database.Statement {
    const key = `${connection === this.db ? 'db' : 'bk'}:${sql}`;
    let stmt = this.statements.get(key);
    if (!stmt) this.statements.set(key, (stmt = connection.prepare(sql)));
    return stmt;
  }

  constructor(
    readonly path: string,
    options: SqliteStoreOptions = {},
  ) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma(`synchronous = ${options.synchronous ?? 'FULL'}`);
    this.db.pragma('busy_timeout = 5000');
    // Checkpoints copy the WAL into the database and sync it; fewer, larger ones cost less.
    this.db.pragma('wal_autocheckpoint = 4000');
    this.db.pragma('cache_size = -32000');
    this.db.exec(SCHEMA);
    this.bookkeeping = path === ':memory:' ? this.db : new Database(path);
    this.bookkeeping.pragma('synchronous = NORMAL');
    this.bookkeeping.pragma('busy_timeout = 5000');
  }

  /** Stores a received message and its queue entries; resolves once committed. */
  record(entry: NewMessage): Promise<number> {
    return new Promise((resolve, reject) => {
      this.pending.push({ entry, resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Inserts a group of received messages and their queue entries in one transaction. */
  private insertAll(batch: Pending[]): number[] {
    // Made once: building a transaction function prepares its BEGIN/COMMIT statements.
    this.insertTransaction ??= this.db.transaction((items: Pending[]) => {
      const insertMessage = this.statement(
        `INSERT INTO messages (channel, spec_version, source, received_at, control_id, message_type, raw, status, reason, identifiers, ack_code, ack)
         VALUES (@channel, @spec_version, @source, @received_at, @control_id, @message_type, @raw, @status, @reason, @identifiers, @ack_code, @ack)`,
      );
      const insertDelivery = this.statement(
        `INSERT INTO deliveries (message_id, channel, destination, state, attempts, next_attempt_at, payload, created_at, updated_at)
         VALUES (?, ?, ?, 'queued', 0, ?, ?, ?, ?)`,
      );
      // The first history entries (received, queued) are read from these rows, not written twice.
      return items.map(({ entry }) => {
        const id = Number(insertMessage.run({ ...entry, identifiers: entry.identifiers ? JSON.stringify(entry.identifiers) : null }).lastInsertRowid);
        for (const d of entry.deliveries) insertDelivery.run(id, entry.channel, d.destination, entry.received_at, d.payload, entry.received_at, entry.received_at);
        return id;
      });
    });
    return this.insertTransaction(batch);
  }

  private insertTransaction: ((items: Pending[]) => number[]) | undefined;
  private bookkeepingTransaction: ((ops: Array<() => void>) => void) | undefined;

  private flush(): void {
    this.flushScheduled = false;
    const batch = this.pending;
    this.pending = [];
    if (batch.length === 0) return;
    try {
      const ids = this.insertAll(batch);
      batch.forEach((p, i) => p.resolve(ids[i]!));
    } catch (err) {
      for (const p of batch) p.reject(err as Error);
    }
  }

  private bookkeepingOps: Array<() => void> = [];
  private bookkeepingScheduled = false;

  /**
   * Queue bookkeeping is written behind: the "sending" mark of one entry and the outcome of the
   * previous one share a commit. Nothing depends on these being on disk before the next step
   * (an entry not marked sent is sent again), and every read of the queues flushes them first.
   */
  private defer(op: () => void): void {
    this.bookkeepingOps.push(op);
    if (!this.bookkeepingScheduled) {
      this.bookkeepingScheduled = true;
      setImmediate(() => this.flushBookkeeping());
    }
  }

  flushBookkeeping(): void {
    this.bookkeepingScheduled = false;
    const ops = this.bookkeepingOps;
    if (ops.length === 0) return;
    this.bookkeepingOps = [];
    this.bookkeepingTransaction ??= this.bookkeeping.transaction((list: Array<() => void>) => {
      for (const op of list) op();
    });
    this.bookkeepingTransaction(ops);
  }

  /** Work for a destination queue: the oldest entries not yet sent, in FIFO order. */
  nextDeliveries(channel: string, destination: string, limit: number): Delivery[] {
    this.flushBookkeeping();
    return this.statement(
      `SELECT * FROM deliveries WHERE channel = ? AND destination = ? AND state IN ('queued', 'sending', 'stopped')
       ORDER BY id LIMIT ?`,
      this.bookkeeping,
    ).all(channel, destination, limit) as Delivery[];
  }

  markSending(id: number, now: number): void {
    this.defer(() => this.statement("UPDATE deliveries SET state = 'sending', attempts = attempts + 1, updated_at = ? WHERE id = ?", this.bookkeeping).run(now, id));
  }

  /** Records an attempt's outcome and the state it leaves the entry in. */
  finishAttempt(delivery: Delivery, outcome: { state: DeliveryState; error?: string; nextAttemptAt?: number; detail: string }, now: number): void {
    this.defer(() => {
      this.statement('UPDATE deliveries SET state = ?, last_error = ?, next_attempt_at = ?, updated_at = ? WHERE id = ?', this.bookkeeping).run(outcome.state, outcome.error ?? null, outcome.nextAttemptAt ?? delivery.next_attempt_at, now, delivery.id);
      this.statement('INSERT INTO events (message_id, delivery_id, at, kind, detail) VALUES (?, ?, ?, ?, ?)', this.bookkeeping).run(delivery.message_id, delivery.id, now, `attempt ${delivery.attempts}: ${outcome.state}`, outcome.detail);
    });
  }

  /** After a restart: entries that were being sent go back to the queue (at-least-once). */
  requeueInFlight(): number {
    this.flushBookkeeping();
    return this.db.prepare("UPDATE deliveries SET state = 'queued' WHERE state = 'sending'").run().changes;
  }

  /** Destinations with unfinished work, for workers of channels that are gone (drain). */
  openQueues(): Array<{ channel: string; destination: string; count: number }> {
    this.flushBookkeeping();
    return this.db
      .prepare("SELECT channel, destination, COUNT(*) AS count FROM deliveries WHERE state IN ('queued', 'sending') GROUP BY channel, destination")
      .all() as Array<{ channel: string; destination: string; count: number }>;
  }

  listMessages(filter: MessageFilter = {}): Array<StoredMessage & { deliveries: string }> {
    this.flushBookkeeping();
    const where: string[] = [];
    const args: unknown[] = [];
    if (filter.channel) {
      where.push('m.channel = ?');
      args.push(filter.channel);
    }
    if (filter.status) {
      if (['queued', 'sending', 'sent', 'dead', 'stopped'].includes(filter.status)) {
        where.push('EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = m.id AND d.state = ?)');
      } else where.push('m.status = ?');
      args.push(filter.status);
    }
    if (filter.since !== undefined) {
      where.push('m.received_at >= ?');
      args.push(filter.since);
    }
    const rows = this.db
      .prepare(
        `SELECT m.*, (SELECT GROUP_CONCAT(d.destination || ':' || d.state, ' ') FROM deliveries d WHERE d.message_id = m.id) AS deliveries
         FROM messages m ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY m.id LIMIT ?`,
      )
      .all(...args, filter.limit ?? 1000) as Array<MessageRow & { deliveries: string | null }>;
    return rows.map((r) => ({ ...fromRow(r), deliveries: r.deliveries ?? '' }));
  }

  getMessage(id: number): { message: StoredMessage; deliveries: Delivery[]; events: StoredEvent[] } | undefined {
    this.flushBookkeeping();
    const row = this.db.prepare('SELECT * FROM messages WHERE id = ?').get(id) as MessageRow | undefined;
    if (!row) return undefined;
    const message = fromRow(row);
    const deliveries = this.db.prepare('SELECT * FROM deliveries WHERE message_id = ? ORDER BY id').all(id) as Delivery[];
    const received: StoredEvent[] = [
      { id: 0, message_id: id, delivery_id: null, at: message.received_at, kind: message.status, detail: null },
      ...deliveries
        .filter((d) => d.created_at === message.received_at)
        .map((d) => ({ id: 0, message_id: id, delivery_id: d.id, at: d.created_at, kind: 'queued', detail: d.destination })),
    ];
    const later = this.db.prepare('SELECT * FROM events WHERE message_id = ? ORDER BY id').all(id) as StoredEvent[];
    return { message, deliveries, events: [...received, ...later] };
  }

  /**
   * Replaces a message's outcome with a new run (replay): its unfinished or dead queue entries are
   * closed as replayed and new ones are queued, all in one transaction.
   */
  recordReplay(id: number, outcome: Omit<NewMessage, 'channel' | 'source' | 'received_at' | 'raw' | 'control_id' | 'message_type'>, now: number): void {
    this.flushBookkeeping();
    const tx = this.db.transaction(() => {
      this.db
        .prepare('UPDATE messages SET spec_version = ?, status = ?, reason = ?, identifiers = ?, ack_code = COALESCE(ack_code, ?) WHERE id = ?')
        .run(outcome.spec_version, outcome.status, outcome.reason, outcome.identifiers ? JSON.stringify(outcome.identifiers) : null, outcome.ack_code, id);
      // A stopped entry holds its queue: it is sent again in its place, so order is kept.
      const stopped = this.db.prepare("SELECT id, destination FROM deliveries WHERE message_id = ? AND state = 'stopped'").all(id) as Array<{ id: number; destination: string }>;
      this.db.prepare("UPDATE deliveries SET state = 'replayed', updated_at = ? WHERE message_id = ? AND state IN ('dead', 'stopped', 'queued')").run(now, id);
      const channel = (this.db.prepare('SELECT channel FROM messages WHERE id = ?').get(id) as { channel: string }).channel;
      this.db.prepare('INSERT INTO events (message_id, delivery_id, at, kind, detail) VALUES (?, NULL, ?, ?, ?)').run(id, now, `replayed: ${outcome.status}`, outcome.reason);
      for (const d of outcome.deliveries) {
        const held = stopped.find((s) => s.destination === d.destination);
        if (held) {
          this.db.prepare("UPDATE deliveries SET state = 'queued', attempts = 0, next_attempt_at = ?, payload = ?, last_error = NULL, updated_at = ? WHERE id = ?").run(now, d.payload, now, held.id);
          this.db.prepare('INSERT INTO events (message_id, delivery_id, at, kind, detail) VALUES (?, ?, ?, ?, ?)').run(id, held.id, now, 'queued again in place', d.destination);
          continue;
        }
        const deliveryId = Number(
          this.db
            .prepare("INSERT INTO deliveries (message_id, channel, destination, state, attempts, next_attempt_at, payload, created_at, updated_at) VALUES (?, ?, ?, 'queued', 0, ?, ?, ?, ?)")
            .run(id, channel, d.destination, now, d.payload, now, now).lastInsertRowid,
        );
        this.db.prepare('INSERT INTO events (message_id, delivery_id, at, kind, detail) VALUES (?, ?, ?, ?, ?)').run(id, deliveryId, now, 'queued', d.destination);
      }
    });
    tx();
  }

  /** Removes the content (raw bytes, ACK, payloads) of messages older than a time; rows and counts stay. */
  prune(olderThan: number): number {
    this.flushBookkeeping();
    const tx = this.db.transaction(() => {
      const changed = this.db
        .prepare("UPDATE messages SET raw = NULL, ack = NULL, identifiers = NULL, pruned = 1 WHERE received_at < ? AND pruned = 0 AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = messages.id AND d.state IN ('queued', 'sending', 'stopped'))")
        .run(olderThan).changes;
      this.db.prepare("UPDATE deliveries SET payload = NULL WHERE state IN ('sent', 'dead', 'replayed') AND message_id IN (SELECT id FROM messages WHERE pruned = 1)").run();
      return changed;
    });
    return tx();
  }

  counts(): Array<{ channel: string; status: string; count: number }> {
    this.flushBookkeeping();
    return this.db.prepare('SELECT channel, status, COUNT(*) AS count FROM messages GROUP BY channel, status ORDER BY channel, status').all() as Array<{ channel: string; status: string; count: number }>;
  }

  setChannel(name: string, specPath: string, specVersion: string, now: number): void {
    this.db
      .prepare('INSERT INTO channels (name, spec_path, spec_version, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET spec_path = excluded.spec_path, spec_version = excluded.spec_version, updated_at = excluded.updated_at')
      .run(name, specPath, specVersion, now);
  }

  channelSpecs(): Array<{ name: string; spec_path: string; spec_version: string }> {
    return this.db.prepare('SELECT name, spec_path, spec_version FROM channels').all() as Array<{ name: string; spec_path: string; spec_version: string }>;
  }

  /** MSH-10 of a stored message (for file names and logs). */
  controlIdOf(messageId: number): string | null {
    const row = this.statement('SELECT control_id FROM messages WHERE id = ?', this.bookkeeping).get(messageId) as { control_id: string | null } | undefined;
    return row?.control_id ?? null;
  }

  close(): void {
    this.flush();
    this.flushBookkeeping();
    if (this.bookkeeping !== this.db) this.bookkeeping.close();
    this.db.close();
  }
}
