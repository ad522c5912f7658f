import type pg from 'pg';
import { quoteIdentifier } from './connection.js';
import { nodeReloadsTableSql, queueAttemptsTableSql } from '../alert-sql.js';
import { auditTableSql, leasesTableSql, pausedTableSql } from '../operator-sql.js';

/**
 * The PostgreSQL schema, as numbered steps. A step is never edited once released: a change is
 * a new step. Times are milliseconds since the epoch (BIGINT), as in the SQLite store. Leases
 * are measured on the claiming node's clock (the nodes' clocks must agree to well within a lease,
 * as NTP keeps them); heartbeats on the database's (hl7c_now_ms()), so `hl7c status` judges every
 * node by one clock.
 */
export const MIGRATIONS: ReadonlyArray<{ version: number; description: string; sql: string }> = [
  {
    version: 1,
    description: 'messages, deliveries with leases, events, channels, nodes, ordered-queue owners',
    sql: `
CREATE FUNCTION hl7c_now_ms() RETURNS BIGINT LANGUAGE sql VOLATILE AS $$ SELECT (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT $$;
CREATE TABLE messages (
  id BIGSERIAL PRIMARY KEY,
  channel TEXT NOT NULL,
  spec_version TEXT NOT NULL,
  source TEXT NOT NULL,
  received_at BIGINT NOT NULL,
  control_id TEXT,
  message_type TEXT,
  raw BYTEA,
  status TEXT NOT NULL,
  reason TEXT,
  identifiers JSONB,
  ack_code TEXT,
  ack BYTEA,
  pruned BOOLEAN NOT NULL DEFAULT false
);
CREATE INDEX messages_by_channel ON messages (channel, status, received_at);
CREATE INDEX messages_by_time ON messages (received_at);
CREATE INDEX messages_by_control_id ON messages (control_id);
CREATE TABLE deliveries (
  id BIGSERIAL PRIMARY KEY,
  message_id BIGINT NOT NULL REFERENCES messages (id),
  channel TEXT NOT NULL,
  destination TEXT NOT NULL,
  state TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at BIGINT NOT NULL,
  payload BYTEA,
  last_error TEXT,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  -- The node sending it (state sending) and until when that claim holds unless renewed.
  lease_owner TEXT,
  lease_until BIGINT
);
CREATE INDEX deliveries_open ON deliveries (channel, destination, id) WHERE state IN ('queued', 'sending', 'stopped');
CREATE INDEX deliveries_by_message ON deliveries (message_id);
-- A node's heartbeat renews the claims it holds.
CREATE INDEX deliveries_leased ON deliveries (lease_owner) WHERE state = 'sending';
CREATE TABLE events (
  id BIGSERIAL PRIMARY KEY,
  message_id BIGINT NOT NULL,
  delivery_id BIGINT,
  at BIGINT NOT NULL,
  kind TEXT NOT NULL,
  detail TEXT
);
CREATE INDEX events_by_message ON events (message_id);
CREATE TABLE channels (
  name TEXT PRIMARY KEY,
  spec_path TEXT NOT NULL,
  spec_version TEXT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE TABLE nodes (
  id TEXT PRIMARY KEY,
  host TEXT NOT NULL,
  pid INTEGER NOT NULL,
  started_at BIGINT NOT NULL,
  heartbeat_at BIGINT NOT NULL,
  lease_ms INTEGER NOT NULL,
  stopped_at BIGINT
);
CREATE TABLE node_channels (
  node_id TEXT NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
  channel TEXT NOT NULL,
  spec_version TEXT NOT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (node_id, channel)
);
-- Counts for /metrics and /health, kept by the triggers below in the transaction that changes
-- the rows, so a scrape never scans the tables. Each connection adds to its own slot (its
-- backend's pid modulo 64): concurrent commits from several nodes rarely wait on one row.
CREATE TABLE message_counts (
  channel TEXT NOT NULL,
  status TEXT NOT NULL,
  slot INTEGER NOT NULL,
  count BIGINT NOT NULL,
  PRIMARY KEY (channel, status, slot)
);
CREATE TABLE delivery_counts (
  channel TEXT NOT NULL,
  destination TEXT NOT NULL,
  state TEXT NOT NULL,
  slot INTEGER NOT NULL,
  count BIGINT NOT NULL,
  PRIMARY KEY (channel, destination, state, slot)
);
CREATE FUNCTION hl7c_count_messages() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO message_counts AS c (channel, status, slot, count)
  SELECT channel, status, pg_backend_pid() % 64, SUM(n) FROM (
    SELECT channel, status, 1 AS n FROM new_rows
    UNION ALL SELECT channel, status, -1 FROM old_rows
  ) x GROUP BY channel, status HAVING SUM(n) <> 0 ORDER BY channel, status
  ON CONFLICT (channel, status, slot) DO UPDATE SET count = c.count + excluded.count;
  RETURN NULL;
END $$;
CREATE FUNCTION hl7c_count_new_messages() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO message_counts AS c (channel, status, slot, count)
  SELECT channel, status, pg_backend_pid() % 64, COUNT(*) FROM new_rows GROUP BY channel, status ORDER BY channel, status
  ON CONFLICT (channel, status, slot) DO UPDATE SET count = c.count + excluded.count;
  RETURN NULL;
END $$;
CREATE TRIGGER messages_counted_insert AFTER INSERT ON messages REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION hl7c_count_new_messages();
CREATE TRIGGER messages_counted_update AFTER UPDATE ON messages REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION hl7c_count_messages();
CREATE FUNCTION hl7c_count_deliveries() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO delivery_counts AS c (channel, destination, state, slot, count)
  SELECT channel, destination, state, pg_backend_pid() % 64, SUM(n) FROM (
    SELECT channel, destination, state, 1 AS n FROM new_rows
    UNION ALL SELECT channel, destination, state, -1 FROM old_rows
  ) x GROUP BY channel, destination, state HAVING SUM(n) <> 0 ORDER BY channel, destination, state
  ON CONFLICT (channel, destination, state, slot) DO UPDATE SET count = c.count + excluded.count;
  RETURN NULL;
END $$;
CREATE FUNCTION hl7c_count_new_deliveries() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO delivery_counts AS c (channel, destination, state, slot, count)
  SELECT channel, destination, state, pg_backend_pid() % 64, COUNT(*) FROM new_rows GROUP BY channel, destination, state ORDER BY channel, destination, state
  ON CONFLICT (channel, destination, state, slot) DO UPDATE SET count = c.count + excluded.count;
  RETURN NULL;
END $$;
CREATE TRIGGER deliveries_counted_insert AFTER INSERT ON deliveries REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION hl7c_count_new_deliveries();
CREATE TRIGGER deliveries_counted_update AFTER UPDATE ON deliveries REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION hl7c_count_deliveries();
-- An ordered queue (max_in_flight 1) is worked by one node at a time, the one holding its lease.
-- Claims on an ordered queue lock its row, so two nodes never read its head at the same time.
CREATE TABLE queue_owners (
  channel TEXT NOT NULL,
  destination TEXT NOT NULL,
  owner TEXT,
  lease_until BIGINT,
  PRIMARY KEY (channel, destination)
);
`,
  },
  {
    version: 2,
    description: 'dedupe keys of sources with dedupe',
    sql: `
ALTER TABLE messages ADD COLUMN dedupe_key TEXT;
CREATE INDEX messages_by_dedupe_key ON messages (channel, dedupe_key, received_at) WHERE dedupe_key IS NOT NULL;
`,
  },
  {
    version: 3,
    description: 'audit trail of what operators did or looked at through the admin API and the CLI',
    sql: auditTableSql('postgres'),
  },
  {
    version: 4,
    description: 'destinations paused by an operator, honoured by every node',
    sql: pausedTableSql('postgres'),
  },
  {
    version: 5,
    description: 'leases for jobs one node does at a time (sending alert notices)',
    sql: leasesTableSql('postgres'),
  },
  {
    version: 6,
    description: 'what the alerting node judges for every node: attempts per queue (a destination failing), each node\'s last spec reload',
    sql: queueAttemptsTableSql('postgres') + nodeReloadsTableSql('postgres'),
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

/** Advisory lock class for migrations; the second key is the schema's, so schemas migrate independently. */
const MIGRATION_LOCK_CLASS = 0x686c37; // "hl7"

/**
 * Creates or brings up to date hl7c's tables in the schema, under an advisory lock: several
 * nodes starting at once wait for the first to finish and then find nothing to do. Each step is
 * its own transaction, recorded in schema_version. A database migrated by a newer hl7c is
 * refused rather than used with a schema this one does not know.
 */
export async function migrate(pool: pg.Pool, schema: string): Promise<{ from: number; to: number }> {
  const client = await pool.connect();
  // An error on this connection while it is held (the server went away) fails the query; the
  // listener keeps it from being thrown as an uncaught 'error' event.
  const ignore = () => undefined;
  let broken: Error | undefined;
  const onError = (err: Error) => (broken = err);
  client.on('error', onError);
  try {
    await client.query('SELECT pg_advisory_lock($1, hashtext($2))', [MIGRATION_LOCK_CLASS, schema]);
    try {
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdentifier(schema)}`);
      await client.query(`SET search_path = ${quoteIdentifier(schema)}`);
      await client.query('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())');
      const from = ((await client.query('SELECT COALESCE(MAX(version), 0) AS v FROM schema_version')).rows[0] as { v: number }).v;
      if (from > SCHEMA_VERSION) {
        throw new Error(`the database schema "${schema}" is at version ${from}, newer than this hl7c knows (${SCHEMA_VERSION}): upgrade hl7c on this node`);
      }
      for (const step of MIGRATIONS.filter((m) => m.version > from)) {
        await client.query('BEGIN');
        try {
          await client.query(step.sql);
          await client.query('INSERT INTO schema_version (version, description) VALUES ($1, $2)', [step.version, step.description]);
          await client.query('COMMIT');
        } catch (err) {
          await client.query('ROLLBACK').catch(ignore);
          throw new Error(`migration ${step.version} (${step.description}) failed: ${(err as Error).message}`);
        }
      }
      return { from, to: SCHEMA_VERSION };
    } finally {
      await client.query('SELECT pg_advisory_unlock($1, hashtext($2))', [MIGRATION_LOCK_CLASS, schema]).catch(ignore);
    }
  } finally {
    client.off('error', onError);
    client.release(broken);
  }
}
