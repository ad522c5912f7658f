import { hostname } from 'node:os';
import type pg from 'pg';
import type { AttemptRecord, ChannelSpec, Claim, ClaimRequest, DiscardResult, MessageCount, NodeReload, NodeStatus, QueuedListener, ReplayOutcome, Store, StoreHealth, StoreMetrics, StoreStatus } from '../store.js';
import type { AuditEntry, Delivery, DestinationPause, MessageFilter, NewAuditEntry, NewMessage, QueuedDelivery, StoredEvent, StoredMessage } from '../types.js';
import { DELIVERY_STATES_FILTERED } from '../types.js';
import type { PostgresTarget } from './connection.js';
import { createPool, parsePostgresUrl } from './connection.js';
import { GroupCommit } from './group-commit.js';
import { migrate, SCHEMA_VERSION } from './migrations.js';
import { FAILING_QUEUES_SQL, recordAttemptsSql, recordReloadSql } from '../alert-sql.js';
import { insertAuditSql, LIST_PAUSED_SQL, listAuditSql, releaseLeaseSql, setPausedSql, takeLeaseSql } from '../operator-sql.js';

export interface PostgresStoreOptions {
  /** disk (default): commits wait for the WAL flush; process: they do not (synchronous_commit off). */
  durability?: 'disk' | 'process';
  /** Told about database errors (a connection lost, a commit failed); they are never thrown at the process. */
  onError?: (err: Error) => void;
  /** Told when the database becomes unreachable, and when it is reachable again. */
  onHealthChange?: (health: StoreHealth) => void;
  /** Pool size (default 8). */
  maxConnections?: number;
  /**
   * false: use the schema as it is, without creating or migrating it (read-only tools); a
   * missing schema is an error. Default true.
   */
  migrate?: boolean;
  /**
   * How often this node tells the database it is alive; `hl7c status` calls it lost after three
   * missed beats. Default a third of HL7C_LEASE_MS (or of 30 s).
   */
  heartbeatMs?: number;
}

/** A deliveries row with its lease, as the queue queries read it. */
type LeasedRow = QueuedDelivery & { lease_owner: string | null; lease_until: number | null; prev_owner?: string | null; prev_until?: number | null };

/** A claimed row as callers see it: without what the claim read before taking it. */
function claimed({ prev_owner: _o, prev_until: _u, ...row }: LeasedRow): QueuedDelivery {
  return row;
}

/**
 * One statement, so one round trip and one transaction, for every message of a group commit:
 * message ids from the sequence, then the messages and their queue entries, each table written
 * by one multi-row INSERT. Queue entries are inserted in message order, so a queue's FIFO order
 * (by entry id) is the order the messages were received in.
 */
/** The history entry of an entry claimed after another node's lease on it ran out (columns kind, detail). */
const TAKEN_OVER = `'lease taken over', 'from ' || prev_owner || ', whose lease ran out at ' || to_char(to_timestamp(prev_until / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

const RECORD_SQL = `
WITH input AS (
  SELECT * FROM unnest($1::int[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::text[], $8::bytea[], $9::text[], $10::text[], $11::text[], $12::text[], $13::bytea[], $17::text[])
    AS t(ord, channel, spec_version, source, received_at, control_id, message_type, raw, status, reason, identifiers, ack_code, ack, dedupe_key)
), ids AS MATERIALIZED (
  SELECT ord, nextval('messages_id_seq') AS id FROM input ORDER BY ord
), m AS (
  INSERT INTO messages (id, channel, spec_version, source, received_at, control_id, message_type, raw, status, reason, identifiers, ack_code, ack, dedupe_key)
  SELECT ids.id, i.channel, i.spec_version, i.source, i.received_at, i.control_id, i.message_type, i.raw, i.status, i.reason, i.identifiers::jsonb, i.ack_code, i.ack, i.dedupe_key
  FROM input i JOIN ids USING (ord)
), d AS (
  INSERT INTO deliveries (message_id, channel, destination, state, attempts, next_attempt_at, payload, created_at, updated_at)
  SELECT ids.id, i.channel, q.destination, 'queued', 0, i.received_at, q.payload, i.received_at, i.received_at
  FROM unnest($14::int[], $15::text[], $16::bytea[]) WITH ORDINALITY AS q(ord, destination, payload, n)
  JOIN input i USING (ord) JOIN ids USING (ord)
  ORDER BY ids.id, q.n
)
SELECT ord, id FROM ids ORDER BY ord`;

/**
 * Attempt outcomes, several in one statement. An entry whose lease went to another node in the
 * meantime (this one stalled past it) keeps that node's state; the attempt still enters the
 * history.
 */
const FINISH_SQL = `
WITH f AS (
  SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::int[], $5::text[], $6::bigint[], $7::bigint[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[])
    AS t(id, message_id, state, attempts, last_error, next_attempt_at, at, kind, detail, owner, channel, destination)
), h AS (
  ${recordAttemptsSql(
    'postgres',
    `SELECT f.channel, f.destination, pg_backend_pid() % 64 AS slot, b.ok_at,
       MIN(f.at) FILTER (WHERE f.state <> 'sent' AND f.at > b.ok_at) AS fail_since,
       COUNT(*) FILTER (WHERE f.state <> 'sent' AND f.at > b.ok_at) AS fails
     FROM f JOIN (SELECT channel, destination, COALESCE(MAX(at) FILTER (WHERE state = 'sent'), 0) AS ok_at FROM f GROUP BY channel, destination) b
       ON b.channel = f.channel AND b.destination = f.destination
     GROUP BY f.channel, f.destination, b.ok_at`,
  )}
), u AS (
  UPDATE deliveries d SET state = f.state, attempts = f.attempts, last_error = f.last_error, next_attempt_at = COALESCE(f.next_attempt_at, d.next_attempt_at),
    updated_at = f.at, lease_owner = NULL, lease_until = NULL
  FROM f WHERE d.id = f.id AND (d.lease_owner IS NULL OR d.lease_owner = f.owner OR f.owner IS NULL)
  RETURNING d.id
)
INSERT INTO events (message_id, delivery_id, at, kind, detail)
SELECT f.message_id, f.id, f.at, CASE WHEN u.id IS NULL THEN f.kind || ' (its lease had passed to another node)' ELSE f.kind END, f.detail
FROM f LEFT JOIN u ON u.id = f.id`;

/**
 * Unordered queues: any due entry no live lease holds, oldest first (none while the destination
 * is paused); rows another claim is taking are skipped. An entry whose lease another node let run out (it died) says so in its history.
 */
const CLAIM_SQL = `
WITH c AS (
  SELECT id, lease_owner AS prev_owner, lease_until AS prev_until FROM deliveries
  WHERE channel = $1 AND destination = $2 AND state IN ('queued', 'sending') AND next_attempt_at <= $6
    AND (lease_owner IS NULL OR lease_owner = $4 OR lease_until <= $6)
    AND NOT EXISTS (SELECT 1 FROM paused_destinations p WHERE p.channel = $1 AND p.destination = $2)
  ORDER BY id LIMIT $3
  FOR UPDATE SKIP LOCKED
), u AS (
  UPDATE deliveries d SET state = 'sending', lease_owner = $4, lease_until = $6::bigint + $5::bigint, updated_at = $6
  FROM c WHERE d.id = c.id
  RETURNING d.*, c.prev_owner, c.prev_until
), e AS (
  INSERT INTO events (message_id, delivery_id, at, kind, detail)
  SELECT message_id, id, $6, ${TAKEN_OVER}
  FROM u WHERE state = 'sending' AND prev_owner IS NOT NULL AND prev_owner <> $4
)
SELECT u.*, m.control_id FROM u JOIN messages m ON m.id = u.message_id`;

const HEAD_SQL = `
SELECT d.*, m.control_id FROM deliveries d JOIN messages m ON m.id = d.message_id
WHERE d.channel = $1 AND d.destination = $2 AND d.state IN ('queued', 'sending', 'stopped')
ORDER BY d.id LIMIT $3`;

const LEASE_SQL = `
WITH c AS (
  SELECT id, lease_owner AS prev_owner, lease_until AS prev_until FROM deliveries WHERE id = ANY($1::bigint[])
), u AS (
  UPDATE deliveries d SET state = 'sending', lease_owner = $2, lease_until = $3, updated_at = $4
  FROM c WHERE d.id = c.id
  RETURNING d.*, c.prev_owner, c.prev_until
), e AS (
  INSERT INTO events (message_id, delivery_id, at, kind, detail)
  SELECT message_id, id, $4, ${TAKEN_OVER}
  FROM u WHERE prev_owner IS NOT NULL AND prev_owner <> $2
)
SELECT u.*, m.control_id FROM u JOIN messages m ON m.id = u.message_id`;

const RENEW_SQL = `
WITH d AS (
  UPDATE deliveries SET lease_until = $3 WHERE id = ANY($1::bigint[]) AND lease_owner = $2 AND state = 'sending' RETURNING channel, destination
)
UPDATE queue_owners q SET lease_until = $3 FROM (SELECT DISTINCT channel, destination FROM d) k
WHERE q.channel = k.channel AND q.destination = k.destination AND q.owner = $2`;

function defaultHeartbeatMs(): number {
  const lease = Number(process.env.HL7C_LEASE_MS);
  return Math.max(50, Math.floor((Number.isFinite(lease) && lease > 0 ? lease : 30_000) / 3));
}

/** SQLSTATE classes that mean the database could not be reached or is going away. */
function isConnectionError(err: Error): boolean {
  const code = (err as { code?: string }).code;
  return !code || /^(08|57P|53|58|XX)/.test(code) || /^E[A-Z]+$/.test(code);
}

/**
 * The PostgreSQL store: several `hl7c serve` nodes on one database. A received message is
 * committed (message, outcome, identifiers, ACK, queue entries) before its ACK, those of one
 * event-loop turn in one statement. Queue entries are claimed under a lease (FOR UPDATE SKIP
 * LOCKED); an ordered queue is worked by one node at a time, the one leasing its head, with its
 * row in queue_owners as the lock that keeps two nodes from reading the head at once. A node
 * that dies gives its entries up when their leases expire; one that is alive renews them.
 */
export class PostgresStore implements Store {
  readonly target: PostgresTarget;
  readonly pool: pg.Pool;
  /**
   * Queue bookkeeping (claims, leases, outcomes, heartbeats) on connections that do not wait for
   * the WAL flush: losing the last of these in a crash of the database only means an entry is
   * sent again (at-least-once), and their commits no longer compete with the received messages'
   * for the disk. What is acknowledged, and replays, go through `pool`, which does wait.
   */
  private readonly bookkeeping: pg.Pool;
  private readonly onError: PostgresStoreOptions['onError'];
  private readonly onHealthChange: PostgresStoreOptions['onHealthChange'];
  private readonly heartbeatMs: number;
  private readonly records: GroupCommit<NewMessage, number>;
  private readonly finishes: GroupCommit<{ delivery: Delivery; outcome: AttemptRecord; now: number }, void>;
  private readonly queuedListeners: QueuedListener[] = [];
  private heartbeatTimer: NodeJS.Timeout | null = null;
  /** Attempt outcomes given so far, and when (in that count) each entry's last one was: see claim. */
  private outcomesGiven = 0;
  private readonly outcomeGivenAt = new Map<number, number>();
  /** The outcome count at the start of each claim running now. */
  private readonly claimsRunning: number[] = [];
  /** The node writing through this store (openForWriting). */
  private node: string | null = null;
  private closed = false;
  /** Set when the database cannot be reached; cleared by the next query that succeeds. */
  private unavailable: { since: number; error: string } | null = null;
  private failures = 0;
  private lastError: string | null = null;

  private constructor(store: string, options: PostgresStoreOptions) {
    this.target = parsePostgresUrl(store);
    this.onError = options.onError;
    this.onHealthChange = options.onHealthChange;
    this.heartbeatMs = options.heartbeatMs ?? defaultHeartbeatMs();
    this.pool = createPool(this.target, {
      max: options.maxConnections ?? 4,
      synchronousCommit: options.durability === 'process' ? 'off' : 'on',
      onError: (err) => this.failed(err),
    });
    this.bookkeeping = createPool(this.target, { max: 4, synchronousCommit: 'off', onError: (err) => this.failed(err) });
    this.records = new GroupCommit((items) => this.insertMessages(items), { concurrency: 2, maxBatch: 1000 });
    this.finishes = new GroupCommit((items) => this.writeFinishes(items), { concurrency: 2, maxBatch: 1000 });
  }

  /** Connects and brings the schema up to date (several nodes may start at once). */
  static async open(store: string, options: PostgresStoreOptions = {}): Promise<PostgresStore> {
    const s = new PostgresStore(store, options);
    try {
      if (options.migrate === false) await s.checkSchema();
      else await migrate(s.pool, s.target.schema);
    } catch (err) {
      await Promise.all([s.pool.end(), s.bookkeeping.end()]).catch(() => undefined);
      throw err;
    }
    return s;
  }

  private async checkSchema(): Promise<void> {
    const found = await this.query<{ t: string | null }>("SELECT to_regclass('schema_version')::text AS t");
    if (!found.rows[0]?.t) throw new Error(`no hl7c schema "${this.target.schema}" at ${this.target.display}: hl7c serve or hl7c migrate creates it`);
    const version = (await this.query<{ v: number }>('SELECT COALESCE(MAX(version), 0) AS v FROM schema_version')).rows[0]!.v;
    if (version < SCHEMA_VERSION) throw new Error(`the hl7c schema "${this.target.schema}" at ${this.target.display} is at version ${version}, older than this hl7c reads (${SCHEMA_VERSION}): run hl7c migrate (or restart a node with this hl7c)`);
  }

  get location(): string {
    return this.target.display;
  }

  /** A query through the pool that keeps track of whether the database is reachable. */
  private async query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string | pg.QueryConfig, values?: unknown[], pool = this.pool): Promise<pg.QueryResult<R>> {
    try {
      const result = await pool.query<R>(text as string, values);
      this.reachable();
      return result;
    } catch (err) {
      this.failed(err as Error);
      throw err;
    }
  }

  private failed(err: Error): void {
    this.failures++;
    this.lastError = err.message;
    if (isConnectionError(err) && !this.unavailable) {
      this.unavailable = { since: Date.now(), error: err.message };
      this.onHealthChange?.(this.health());
    }
    this.onError?.(err);
  }

  private reachable(): void {
    if (!this.unavailable) return;
    this.unavailable = null;
    this.onHealthChange?.({ status: 'ok' });
  }

  /** ok, or unavailable since when and why: new messages are answered AE meanwhile. */
  health(): StoreHealth {
    return this.unavailable ? { status: 'unavailable', ...this.unavailable } : { status: 'ok' };
  }

  /**
   * Registers this process as node `owner` and starts its heartbeat. Any number of nodes write
   * to one database; message ids come from its sequence.
   */
  async openForWriting(owner: string): Promise<void> {
    if (this.node) return;
    await this.query(
      `INSERT INTO nodes (id, host, pid, started_at, heartbeat_at, lease_ms) VALUES ($1, $2, $3, $4, hl7c_now_ms(), $5)
       ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at, stopped_at = NULL`,
      [owner, hostname(), process.pid, Date.now(), this.heartbeatMs * 3],
    );
    this.node = owner;
    this.heartbeatTimer = setInterval(() => void this.heartbeat().catch(() => undefined), this.heartbeatMs);
    this.heartbeatTimer.unref();
  }

  /** Tells the database this node is alive; also how a lost database is noticed coming back. */
  async heartbeat(): Promise<void> {
    if (this.node) await this.query({ name: 'hl7c_heartbeat', text: 'UPDATE nodes SET heartbeat_at = hl7c_now_ms(), stopped_at = NULL WHERE id = $1', values: [this.node] }, undefined, this.bookkeeping);
  }

  onQueued(listener: QueuedListener): void {
    this.queuedListeners.push(listener);
  }

  /**
   * Stores a received message and its queue entries; resolves with its id once committed. The
   * messages recorded in the same event-loop turn share the commit; if it fails, every one of
   * them is rejected (and answered AE).
   */
  record(entry: NewMessage): Promise<number> {
    if (this.closed) return Promise.reject(new Error('the store is closed'));
    return this.records.add(entry);
  }

  private async insertMessages(items: NewMessage[]): Promise<number[]> {
    const col = <K extends keyof NewMessage>(k: K) => items.map((m) => m[k]);
    const dOrd: number[] = [];
    const dDest: string[] = [];
    const dPayload: Buffer[] = [];
    items.forEach((m, i) => {
      for (const d of m.deliveries) {
        dOrd.push(i);
        dDest.push(d.destination);
        dPayload.push(d.payload);
      }
    });
    const result = await this.query<{ ord: number; id: number }>({
      name: 'hl7c_record',
      text: RECORD_SQL,
      values: [
        items.map((_, i) => i),
        col('channel'),
        col('spec_version'),
        col('source'),
        col('received_at'),
        col('control_id'),
        col('message_type'),
        col('raw'),
        col('status'),
        col('reason'),
        items.map((m) => (m.identifiers ? JSON.stringify(m.identifiers) : null)),
        col('ack_code'),
        col('ack'),
        dOrd,
        dDest,
        dPayload,
        items.map((m) => m.dedupe_key ?? null),
      ],
    });
    const ids = new Array<number>(items.length);
    for (const r of result.rows) ids[r.ord] = r.id;
    const seen = new Set<string>();
    for (const m of items) {
      for (const d of m.deliveries) {
        const key = `${m.channel}\u0000${d.destination}`;
        if (seen.has(key)) continue;
        seen.add(key);
        for (const listener of this.queuedListeners) listener(m.channel, d.destination);
      }
    }
    return ids;
  }

  async claimDeliveries(request: ClaimRequest): Promise<Claim> {
    const now = request.now ?? Date.now();
    const start = this.outcomesGiven;
    this.claimsRunning.push(start);
    try {
      // Outcomes given before this claim are written before it reads.
      await this.finishes.idle();
      return await this.claim(request, now, start);
    } finally {
      this.claimsRunning.splice(this.claimsRunning.indexOf(start), 1);
      const oldest = this.claimsRunning.length ? Math.min(...this.claimsRunning) : Infinity;
      for (const [id, given] of this.outcomeGivenAt) if (given <= oldest) this.outcomeGivenAt.delete(id);
    }
  }

  private async claim(request: ClaimRequest, now: number, start: number): Promise<Claim> {
    if (!request.ordered) {
      // An entry this node holds comes back to it (its worker knows which it is sending) unless
      // its outcome was given while this claim ran: read before that was written, it would look
      // unsent, and be sent again.
      const taken = (
        await this.query<LeasedRow>({ name: 'hl7c_claim', text: CLAIM_SQL, values: [request.channel, request.destination, request.limit, request.owner, request.leaseMs, now] }, undefined, this.bookkeeping)
      ).rows
        .filter((d) => (this.outcomeGivenAt.get(d.id) ?? -1) <= start)
        .sort((a, b) => a.id - b.id)
        .map(claimed);
      let nextDueAt: number | null = null;
      let paused = false;
      if (taken.length === 0) {
        const due = await this.query<{ due: number | null; paused: boolean }>({
          name: 'hl7c_next_due',
          text: `SELECT MIN(next_attempt_at) AS due, EXISTS (SELECT 1 FROM paused_destinations p WHERE p.channel = $1 AND p.destination = $2) AS paused
                 FROM deliveries WHERE channel = $1 AND destination = $2 AND state = 'queued'`,
          values: [request.channel, request.destination],
        }, undefined, this.bookkeeping);
        paused = due.rows[0]?.paused ?? false;
        nextDueAt = paused ? null : (due.rows[0]?.due ?? null);
      }
      return { deliveries: taken, nextDueAt, stopped: false, paused };
    }
    return this.transaction(async (c) => {
      // The queue's row is the lock: claims on one ordered queue are made one after the other.
      await c.query({ name: 'hl7c_queue_row', text: 'INSERT INTO queue_owners (channel, destination) VALUES ($1, $2) ON CONFLICT DO NOTHING', values: [request.channel, request.destination] });
      const lock = await c.query<{ paused: boolean }>({
        name: 'hl7c_queue_lock',
        text: 'SELECT EXISTS (SELECT 1 FROM paused_destinations p WHERE p.channel = $1 AND p.destination = $2) AS paused FROM queue_owners WHERE channel = $1 AND destination = $2 FOR UPDATE',
        values: [request.channel, request.destination],
      });
      if (lock.rows[0]?.paused) {
        // What this node took in an earlier batch and did not send goes back, and the queue is
        // free: whichever node works it after the resume starts at its head.
        await c.query({
          name: 'hl7c_paused_release',
          text: "WITH d AS (UPDATE deliveries SET state = 'queued', lease_owner = NULL, lease_until = NULL WHERE channel = $1 AND destination = $2 AND state = 'sending' AND lease_owner = $3) UPDATE queue_owners SET owner = NULL, lease_until = NULL WHERE channel = $1 AND destination = $2 AND owner = $3",
          values: [request.channel, request.destination, request.owner],
        });
        return { deliveries: [], nextDueAt: null, stopped: false, paused: true };
      }
      const head = (await c.query<LeasedRow>({ name: 'hl7c_head', text: HEAD_SQL, values: [request.channel, request.destination, request.limit] })).rows;
      const ready: number[] = [];
      let nextDueAt: number | null = null;
      let stopped = false;
      for (const d of head) {
        if (d.state === 'stopped') {
          stopped = true;
          break;
        }
        // Another node is sending the head: it owns the queue until its lease runs out.
        if (d.state === 'sending' && d.lease_owner !== null && d.lease_owner !== request.owner && (d.lease_until ?? 0) > now) break;
        if (d.next_attempt_at > now) {
          nextDueAt = d.next_attempt_at;
          break;
        }
        ready.push(d.id);
      }
      if (ready.length === 0) return { deliveries: [], nextDueAt, stopped, paused: false };
      const until = now + request.leaseMs;
      const taken = (await c.query<LeasedRow>({ name: 'hl7c_lease', text: LEASE_SQL, values: [ready, request.owner, until, now] })).rows.sort((a, b) => a.id - b.id).map(claimed);
      await c.query({ name: 'hl7c_queue_owner', text: 'UPDATE queue_owners SET owner = $3, lease_until = $4 WHERE channel = $1 AND destination = $2', values: [request.channel, request.destination, request.owner, until] });
      return { deliveries: taken, nextDueAt, stopped, paused: false };
    }, this.bookkeeping);
  }

  async renewLease(ids: number[], owner: string, leaseMs: number, now = Date.now()): Promise<void> {
    if (ids.length === 0) return;
    await this.query({ name: 'hl7c_renew', text: RENEW_SQL, values: [ids, owner, now + leaseMs] }, undefined, this.bookkeeping);
  }

  /** Records an attempt's outcome (the attempts of one turn share a commit); its lease ends. */
  finishAttempt(delivery: Delivery, outcome: AttemptRecord, now: number): Promise<void> {
    this.outcomeGivenAt.set(delivery.id, ++this.outcomesGiven);
    return this.finishes.add({ delivery, outcome, now });
  }

  private async writeFinishes(items: Array<{ delivery: Delivery; outcome: AttemptRecord; now: number }>): Promise<void[]> {
    await this.query({
      name: 'hl7c_finish',
      text: FINISH_SQL,
      values: [
        items.map((f) => f.delivery.id),
        items.map((f) => f.delivery.message_id),
        items.map((f) => f.outcome.state),
        items.map((f) => f.delivery.attempts),
        items.map((f) => f.outcome.error ?? null),
        items.map((f) => f.outcome.nextAttemptAt ?? null),
        items.map((f) => f.now),
        items.map((f) => `attempt ${f.delivery.attempts}: ${f.outcome.state}`),
        items.map((f) => f.outcome.detail),
        items.map((f) => f.delivery.lease_owner ?? null),
        items.map((f) => f.delivery.channel),
        items.map((f) => f.delivery.destination),
      ],
    }, undefined, this.bookkeeping);
    return items.map(() => undefined);
  }

  /** Entries whose node died while sending go back to their queue; live nodes' leases stay. */
  async releaseExpiredLeases(now = Date.now()): Promise<number> {
    const result = await this.query<{ n: number }>(
      `WITH c AS (
         SELECT id, lease_owner AS prev_owner, lease_until AS prev_until FROM deliveries
         WHERE state = 'sending' AND (lease_until IS NULL OR lease_until <= $1) FOR UPDATE SKIP LOCKED
       ), u AS (
         UPDATE deliveries d SET state = 'queued', lease_owner = NULL, lease_until = NULL FROM c WHERE d.id = c.id
         RETURNING d.id, d.message_id, c.prev_owner, c.prev_until
       ), e AS (
         INSERT INTO events (message_id, delivery_id, at, kind, detail)
         SELECT message_id, id, $1, ${TAKEN_OVER} FROM u WHERE prev_owner IS NOT NULL
       )
       SELECT COUNT(*)::int AS n FROM u`,
      [now],
    );
    return result.rows[0]!.n;
  }

  async hasOpenDeliveries(channel: string, destination: string): Promise<boolean> {
    await this.finishes.idle();
    const r = await this.query({
      name: 'hl7c_has_open',
      text: "SELECT EXISTS (SELECT 1 FROM deliveries WHERE channel = $1 AND destination = $2 AND state IN ('queued', 'sending', 'stopped')) AS open",
      values: [channel, destination],
    });
    return (r.rows[0] as { open: boolean }).open;
  }

  async findFirstByKey(channel: string, key: string, since: number): Promise<{ id: number; status: string; reason: string | null; ack_code: string | null; ack: Buffer | null } | undefined> {
    const r = await this.query<{ id: number; status: string; reason: string | null; ack_code: string | null; ack: Buffer | null }>({
      name: 'hl7c_first_by_key',
      text: `SELECT id, status, reason, ack_code, ack FROM messages
             WHERE channel = $1 AND dedupe_key = $2 AND received_at >= $3 AND dedupe_key IS NOT NULL AND status NOT IN ('duplicate', 'error')
             ORDER BY received_at, id LIMIT 1`,
      values: [channel, key, since],
    });
    return r.rows[0];
  }

  async openQueues(): Promise<Array<{ channel: string; destination: string; count: number }>> {
    return (await this.query<{ channel: string; destination: string; count: number }>("SELECT channel, destination, COUNT(*)::int AS count FROM deliveries WHERE state IN ('queued', 'sending') GROUP BY channel, destination")).rows;
  }

  async listMessages(filter: MessageFilter = {}): Promise<Array<StoredMessage & { deliveries: string }>> {
    const where: string[] = [];
    const args: unknown[] = [];
    const arg = (v: unknown) => {
      args.push(v);
      return `$${args.length}`;
    };
    if (filter.channel) where.push(`m.channel = ${arg(filter.channel)}`);
    if (filter.status === 'error_queue') {
      where.push("(m.status IN ('rejected', 'error') OR EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = m.id AND d.state IN ('dead', 'stopped')))");
    } else if (filter.status) {
      if ((DELIVERY_STATES_FILTERED as readonly string[]).includes(filter.status)) where.push(`EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = m.id AND d.state = ${arg(filter.status)})`);
      else where.push(`m.status = ${arg(filter.status)}`);
    }
    if (filter.until !== undefined) where.push(`m.received_at < ${arg(filter.until)}`);
    if (filter.afterId !== undefined) where.push(`m.id ${filter.newestFirst ? '<' : '>'} ${arg(filter.afterId)}`);
    if (filter.since !== undefined) where.push(`m.received_at >= ${arg(filter.since)}`);
    if (filter.controlId !== undefined) where.push(`m.control_id = ${arg(filter.controlId)}`);
    if (filter.messageType !== undefined) {
      // A prefix that ends at a component: ADT^A08 matches ADT^A08^ADT_A01, not ADT^A081.
      const t = arg(filter.messageType);
      where.push(`(m.message_type = ${t} OR starts_with(m.message_type, ${t} || '^'))`);
    }
    if (filter.identifier !== undefined) where.push(`EXISTS (SELECT 1 FROM jsonb_each(m.identifiers) i WHERE i.value->>'id' = ${arg(filter.identifier)})`);
    const rows = (
      await this.query<StoredMessage & { deliveries: string | null }>(
        `SELECT m.*, (SELECT string_agg(d.destination || ':' || d.state, ' ' ORDER BY d.id) FROM deliveries d WHERE d.message_id = m.id) AS deliveries
         FROM messages m ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY m.id${filter.newestFirst ? ' DESC' : ''} LIMIT ${arg(filter.limit ?? 1000)}`,
        args,
      )
    ).rows;
    return rows.map((r) => ({ ...r, deliveries: r.deliveries ?? '' }));
  }

  async getMessage(id: number): Promise<{ message: StoredMessage; deliveries: Delivery[]; events: StoredEvent[] } | undefined> {
    await this.finishes.idle();
    const message = (await this.query<StoredMessage>('SELECT * FROM messages WHERE id = $1', [id])).rows[0];
    if (!message) return undefined;
    const deliveries = (await this.query<Delivery>('SELECT * FROM deliveries WHERE message_id = $1 ORDER BY id', [id])).rows;
    const received: StoredEvent[] = [
      { id: 0, message_id: id, delivery_id: null, at: message.received_at, kind: message.status, detail: null },
      ...deliveries.filter((d) => d.created_at === message.received_at).map((d) => ({ id: 0, message_id: id, delivery_id: d.id, at: d.created_at, kind: 'queued', detail: d.destination })),
    ];
    const later = (await this.query<StoredEvent>('SELECT * FROM events WHERE message_id = $1 ORDER BY id', [id])).rows;
    return { message, deliveries, events: [...received, ...later] };
  }

  /** Runs fn in one transaction on one connection. */
  private async transaction<R>(fn: (client: pg.PoolClient) => Promise<R>, pool = this.pool): Promise<R> {
    let client: pg.PoolClient;
    try {
      client = await pool.connect();
    } catch (err) {
      this.failed(err as Error);
      throw err;
    }
    let broken: Error | undefined;
    const onError = (err: Error) => (broken = err);
    client.on('error', onError);
    try {
      await client.query('BEGIN');
      const result = await fn(client);
      await client.query('COMMIT');
      this.reachable();
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      this.failed(err as Error);
      throw err;
    } finally {
      client.off('error', onError);
      client.release(broken);
    }
  }

  async recordAnswer(id: number, answer: { ack_code: string; ack: Buffer | null; detail: string }, now: number): Promise<void> {
    await this.transaction(async (c) => {
      await c.query('UPDATE messages SET ack_code = $1, ack = $2 WHERE id = $3', [answer.ack_code, answer.ack, id]);
      await c.query('INSERT INTO events (message_id, delivery_id, at, kind, detail) VALUES ($1, NULL, $2, $3, $4)', [id, now, `answered ${answer.ack_code}`, answer.detail]);
    });
  }

  /**
   * Replaces a message's outcome with a new run (replay): unfinished or dead queue entries are
   * closed as replayed, a stopped one is queued again in its place (its queue keeps its order),
   * and new ones are queued, in one transaction. Any machine that reaches the database may do it.
   */
  async recordReplay(id: number, outcome: ReplayOutcome, now: number): Promise<void> {
    await this.finishes.idle();
    await this.transaction(async (c) => {
      const found = (await c.query<{ channel: string }>('SELECT channel FROM messages WHERE id = $1 FOR UPDATE', [id])).rows[0];
      if (!found) throw new Error(`no message ${id}`);
      await c.query('UPDATE messages SET spec_version = $1, status = $2, reason = $3, identifiers = $4::jsonb, ack_code = COALESCE(ack_code, $5) WHERE id = $6', [
        outcome.spec_version,
        outcome.status,
        outcome.reason,
        outcome.identifiers ? JSON.stringify(outcome.identifiers) : null,
        outcome.ack_code,
        id,
      ]);
      // With `only`, the other destinations' entries are left as they are.
      const only = outcome.only ?? null;
      const stopped = (await c.query<{ id: number; destination: string }>("SELECT id, destination FROM deliveries WHERE message_id = $1 AND state = 'stopped' AND ($2::text IS NULL OR destination = $2) FOR UPDATE", [id, only])).rows;
      await c.query("UPDATE deliveries SET state = 'replayed', updated_at = $1, lease_owner = NULL, lease_until = NULL WHERE message_id = $2 AND state IN ('dead', 'stopped', 'queued') AND ($3::text IS NULL OR destination = $3)", [now, id, only]);
      await c.query('INSERT INTO events (message_id, delivery_id, at, kind, detail) VALUES ($1, NULL, $2, $3, $4)', [id, now, `replayed: ${outcome.status}${only ? ` (to ${only})` : ''}`, outcome.reason]);
      for (const d of outcome.deliveries) {
        const held = stopped.find((s) => s.destination === d.destination);
        if (held) {
          await c.query("UPDATE deliveries SET state = 'queued', attempts = 0, next_attempt_at = $1, payload = $2, last_error = NULL, updated_at = $1 WHERE id = $3", [now, d.payload, held.id]);
          await c.query('INSERT INTO events (message_id, delivery_id, at, kind, detail) VALUES ($1, $2, $3, $4, $5)', [id, held.id, now, 'queued again in place', d.destination]);
          continue;
        }
        const inserted = await c.query<{ id: number }>(
          "INSERT INTO deliveries (message_id, channel, destination, state, attempts, next_attempt_at, payload, created_at, updated_at) VALUES ($1, $2, $3, 'queued', 0, $4, $5, $4, $4) RETURNING id",
          [id, found.channel, d.destination, now, d.payload],
        );
        await c.query('INSERT INTO events (message_id, delivery_id, at, kind, detail) VALUES ($1, $2, $3, $4, $5)', [id, inserted.rows[0]!.id, now, 'queued', d.destination]);
      }
    });
  }

  async discardDelivery(messageId: number, destination: string, now: number, by: string, queuedToo = false): Promise<DiscardResult> {
    await this.finishes.idle();
    return this.transaction(async (c) => {
      const entries = (await c.query<{ id: number; state: string }>('SELECT id, state FROM deliveries WHERE message_id = $1 AND destination = $2 FOR UPDATE', [messageId, destination])).rows;
      if (entries.length === 0) return 'no-such-entry';
      const held = entries.filter((e) => e.state === 'dead' || e.state === 'stopped' || (queuedToo && e.state === 'queued'));
      if (held.length === 0) return 'not-dead-or-stopped';
      for (const e of held) {
        await c.query("UPDATE deliveries SET state = 'discarded', updated_at = $1 WHERE id = $2", [now, e.id]);
        await c.query('INSERT INTO events (message_id, delivery_id, at, kind, detail) VALUES ($1, $2, $3, $4, $5)', [messageId, e.id, now, 'discarded', `${e.state} entry discarded by ${by}`]);
      }
      return 'discarded';
    });
  }

  async recordAudit(entry: NewAuditEntry): Promise<void> {
    const sql = insertAuditSql('postgres');
    await this.query(sql.text, sql.values(entry));
  }

  async listAudit(options: { limit?: number; before?: number } = {}): Promise<AuditEntry[]> {
    const sql = listAuditSql('postgres');
    return (await this.query<AuditEntry>(sql.text, sql.values(options))).rows;
  }

  async setPaused(channel: string, destination: string, pause: { by: string; at: number } | null): Promise<boolean> {
    const sql = setPausedSql('postgres', channel, destination, pause);
    return ((await this.query(sql.text, sql.values)).rowCount ?? 0) > 0;
  }

  async takeLease(name: string, owner: string, ttlMs: number, now = Date.now()): Promise<{ owner: string; until: number }> {
    const sql = takeLeaseSql('postgres');
    await this.query(sql.take, [name, owner, now + ttlMs, now], this.bookkeeping);
    return (await this.query<{ owner: string; until: number }>(sql.read, [name], this.bookkeeping)).rows[0]!;
  }

  async recordReload(reload: Omit<NodeReload, 'node'>): Promise<void> {
    if (this.node) await this.query(recordReloadSql('postgres'), [this.node, reload.at, reload.outcome, reload.summary]);
  }

  async releaseLease(name: string, owner: string): Promise<void> {
    await this.query(releaseLeaseSql('postgres'), [name, owner]);
  }

  async pausedDestinations(): Promise<DestinationPause[]> {
    return (await this.query<DestinationPause>(LIST_PAUSED_SQL)).rows;
  }

  /**
   * Removes the content (raw bytes, ACK, identifiers, payloads) of messages older than a time
   * whose deliveries are finished; rows, outcomes and counts stay. A few hundred per statement,
   * skipping rows another statement holds.
   */
  async prune(olderThan: number, perTransaction = 500): Promise<number> {
    await this.finishes.idle();
    let pruned = 0;
    for (;;) {
      const result = await this.query(
        `WITH ids AS (
           SELECT id FROM messages m WHERE received_at < $1 AND NOT pruned
             AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = m.id AND d.state IN ('queued', 'sending', 'stopped'))
           ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED
         ), p AS (
           UPDATE deliveries SET payload = NULL WHERE message_id IN (SELECT id FROM ids) AND state IN ('sent', 'dead', 'replayed', 'discarded')
         )
         UPDATE messages SET raw = NULL, ack = NULL, identifiers = NULL, pruned = true WHERE id IN (SELECT id FROM ids)`,
        [olderThan, perTransaction],
      );
      if (!result.rowCount) return pruned;
      pruned += result.rowCount;
    }
  }

  async counts(): Promise<MessageCount[]> {
    // Kept by triggers as rows change (message_counts): no scan of the messages.
    return (await this.query<MessageCount>('SELECT channel, status, SUM(count)::int AS count FROM message_counts GROUP BY channel, status HAVING SUM(count) <> 0 ORDER BY channel, status')).rows;
  }

  async metrics(): Promise<StoreMetrics> {
    await this.finishes.idle();
    const [messages, deliveries, oldestOpen, failing, reloads] = await Promise.all([
      this.counts(),
      this.query<StoreMetrics['deliveries'][number]>(
        'SELECT channel, destination, state, SUM(count)::int AS count FROM delivery_counts GROUP BY channel, destination, state HAVING SUM(count) <> 0 ORDER BY channel, destination, state',
      ),
      // Only unfinished entries, through their partial index.
      this.query<StoreMetrics['oldestOpen'][number]>("SELECT channel, destination, MIN(created_at) AS oldest FROM deliveries WHERE state IN ('queued', 'sending', 'stopped') GROUP BY channel, destination"),
      this.query<StoreMetrics['failing'][number]>(FAILING_QUEUES_SQL),
      // Live nodes only (as hl7c status judges them): a node gone no longer holds a rejection open.
      this.query<NodeReload>(
        `SELECT r.node, r.at, r.outcome, r.summary FROM node_reloads r JOIN nodes n ON n.id = r.node
         WHERE n.stopped_at IS NULL AND n.heartbeat_at + n.lease_ms >= hl7c_now_ms() ORDER BY r.node`,
      ),
    ]);
    return {
      messages,
      deliveries: deliveries.rows,
      oldestOpen: oldestOpen.rows,
      waiting: 0,
      ingestFailures: this.failures,
      lastError: this.unavailable?.error ?? null,
      failing: failing.rows,
      reloads: reloads.rows,
    };
  }

  /** The channel's spec (for replay from any machine), and the version this node runs. */
  async setChannel(name: string, specPath: string, specVersion: string, now: number): Promise<void> {
    await this.query(
      `WITH c AS (
         INSERT INTO channels (name, spec_path, spec_version, updated_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (name) DO UPDATE SET spec_path = excluded.spec_path, spec_version = excluded.spec_version, updated_at = excluded.updated_at
       )
       INSERT INTO node_channels (node_id, channel, spec_version, updated_at) SELECT $5, $1, $3, $4 WHERE $5::text IS NOT NULL
       ON CONFLICT (node_id, channel) DO UPDATE SET spec_version = excluded.spec_version, updated_at = excluded.updated_at`,
      [name, specPath, specVersion, now, this.node],
    );
  }

  async channelSpecs(): Promise<ChannelSpec[]> {
    return (await this.query<ChannelSpec>('SELECT name, spec_path, spec_version FROM channels ORDER BY name')).rows;
  }

  /** Nodes (alive or lost), the spec version each runs per channel, and the queues: for `hl7c status`. */
  async status(): Promise<StoreStatus> {
    await this.finishes.idle();
    const now = (await this.query<{ now: number }>('SELECT hl7c_now_ms() AS now')).rows[0]!.now;
    const [nodes, running, channels, queues] = await Promise.all([
      this.query<Omit<NodeStatus, 'alive' | 'channels'> & { lease_ms: number }>('SELECT * FROM nodes ORDER BY started_at, id'),
      this.query<{ node_id: string; channel: string; spec_version: string }>('SELECT node_id, channel, spec_version FROM node_channels ORDER BY channel, node_id'),
      this.query<{ name: string; spec_version: string }>('SELECT name, spec_version FROM channels ORDER BY name'),
      this.query<StoreStatus['queues'][number]>(
        `SELECT d.channel, d.destination,
           COUNT(*) FILTER (WHERE state = 'queued')::int AS queued,
           COUNT(*) FILTER (WHERE state = 'sending')::int AS sending,
           COUNT(*) FILTER (WHERE state = 'stopped')::int AS stopped,
           GREATEST(0, $1::bigint - MIN(created_at)) AS oldest_age_ms,
           (SELECT owner FROM queue_owners q WHERE q.channel = d.channel AND q.destination = d.destination AND q.lease_until > $1) AS owner
         FROM deliveries d WHERE state IN ('queued', 'sending', 'stopped') GROUP BY d.channel, d.destination ORDER BY d.channel, d.destination`,
        [Date.now()],
      ),
    ]);
    const alive = new Map(nodes.rows.map((n) => [n.id, n.stopped_at === null && n.heartbeat_at + n.lease_ms >= now]));
    return {
      now,
      nodes: nodes.rows.map(({ lease_ms: _lease, ...n }) => ({
        ...n,
        alive: alive.get(n.id)!,
        channels: running.rows.filter((r) => r.node_id === n.id).map((r) => ({ channel: r.channel, spec_version: r.spec_version })),
      })),
      channels: channels.rows.map((c) => ({
        ...c,
        nodes: running.rows.filter((r) => r.channel === c.name).map((r) => ({ node: r.node_id, spec_version: r.spec_version, alive: alive.get(r.node_id) ?? false })),
      })),
      queues: queues.rows,
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([this.records.idle(), this.finishes.idle()]);
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    if (this.node) {
      // A clean stop: what it held is free at once, and status shows it stopped, not lost.
      await this.query(
        `WITH q AS (UPDATE queue_owners SET owner = NULL, lease_until = NULL WHERE owner = $1),
         d AS (UPDATE deliveries SET state = 'queued', lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1 AND state = 'sending')
         UPDATE nodes SET stopped_at = hl7c_now_ms(), heartbeat_at = hl7c_now_ms() WHERE id = $1`,
        [this.node],
      ).catch(() => undefined);
    }
    await Promise.all([this.pool.end(), this.bookkeeping.end()]);
  }
}
