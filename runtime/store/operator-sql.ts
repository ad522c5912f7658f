import type { NewAuditEntry } from './types.js';

/**
 * The SQL both stores use for what operators do: the audit trail and the paused destinations.
 * Written once, for either dialect: SQLite numbers its placeholders `?`, PostgreSQL `$1, $2…`;
 * ids and times are INTEGER in SQLite and BIGSERIAL / BIGINT in PostgreSQL.
 */
export type Dialect = 'sqlite' | 'postgres';

const placeholders = (dialect: Dialect, count: number) => Array.from({ length: count }, (_, i) => (dialect === 'sqlite' ? '?' : `$${i + 1}`));

const AUDIT_COLUMNS = ['at', 'who', 'role', 'action', 'target', 'remote', 'detail'] as const;

/** The audit table (PostgreSQL: schema version 3; SQLite: made when the store is opened). */
export function auditTableSql(dialect: Dialect): string {
  const [id, time, ifMissing] = dialect === 'sqlite' ? ['INTEGER PRIMARY KEY', 'INTEGER', 'IF NOT EXISTS '] : ['BIGSERIAL PRIMARY KEY', 'BIGINT', ''];
  return `
CREATE TABLE ${ifMissing}audit (
  id ${id},
  at ${time} NOT NULL,
  who TEXT NOT NULL,
  role TEXT NOT NULL,
  action TEXT NOT NULL,
  target TEXT NOT NULL,
  remote TEXT NOT NULL,
  detail TEXT
);
`;
}

export function insertAuditSql(dialect: Dialect): { text: string; values: (entry: NewAuditEntry) => unknown[] } {
  return {
    text: `INSERT INTO audit (${AUDIT_COLUMNS.join(', ')}) VALUES (${placeholders(dialect, AUDIT_COLUMNS.length).join(', ')})`,
    values: (entry) => AUDIT_COLUMNS.map((c) => entry[c]),
  };
}

/** Newest first, a page before an entry id. */
export function listAuditSql(dialect: Dialect): { text: string; values: (options: { limit?: number; before?: number }) => unknown[] } {
  const [before, limit] = placeholders(dialect, 2);
  return {
    text: `SELECT * FROM audit WHERE id < ${before} ORDER BY id DESC LIMIT ${limit}`,
    values: (options) => [options.before ?? Number.MAX_SAFE_INTEGER, options.limit ?? 100],
  };
}

/**
 * Destinations an operator paused (PostgreSQL: schema version 4). A row is a pause; resuming
 * deletes it. Claims read it, so every node honours a pause made on any of them, or by the CLI.
 */
export function pausedTableSql(dialect: Dialect): string {
  const [time, ifMissing] = dialect === 'sqlite' ? ['INTEGER', 'IF NOT EXISTS '] : ['BIGINT', ''];
  return `
CREATE TABLE ${ifMissing}paused_destinations (
  channel TEXT NOT NULL,
  destination TEXT NOT NULL,
  paused_by TEXT NOT NULL,
  paused_at ${time} NOT NULL,
  PRIMARY KEY (channel, destination)
);
`;
}

/** A pause, or a resume (`pause` null): the SQL and its values; changes one row when the state changed. */
export function setPausedSql(dialect: Dialect, channel: string, destination: string, pause: { by: string; at: number } | null): { text: string; values: unknown[] } {
  if (!pause) {
    const [c, d] = placeholders(dialect, 2);
    return { text: `DELETE FROM paused_destinations WHERE channel = ${c} AND destination = ${d}`, values: [channel, destination] };
  }
  return {
    text: `INSERT INTO paused_destinations (channel, destination, paused_by, paused_at) VALUES (${placeholders(dialect, 4).join(', ')}) ON CONFLICT (channel, destination) DO NOTHING`,
    values: [channel, destination, pause.by, pause.at],
  };
}

export const LIST_PAUSED_SQL = 'SELECT channel, destination, paused_by, paused_at FROM paused_destinations ORDER BY channel, destination';

/**
 * Leases a node holds for a job only one node may do at a time (`alerting`: sending the alert
 * notices). PostgreSQL: schema version 5. Times are the holder's clock, as for queue leases.
 */
export function leasesTableSql(dialect: Dialect): string {
  const [time, ifMissing] = dialect === 'sqlite' ? ['INTEGER', 'IF NOT EXISTS '] : ['BIGINT', ''];
  return `
CREATE TABLE ${ifMissing}leases (
  name TEXT PRIMARY KEY,
  owner TEXT NOT NULL,
  until ${time} NOT NULL
);
`;
}

/**
 * Takes the lease, or renews it, unless another owner holds it and it has not run out; then
 * (a second statement) who holds it. Values: name, owner, until, now.
 */
export function takeLeaseSql(dialect: Dialect): { take: string; read: string } {
  const [name, owner, until, now] = placeholders(dialect, 4);
  return {
    take: `INSERT INTO leases (name, owner, until) VALUES (${name}, ${owner}, ${until})
ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until = excluded.until WHERE leases.owner = excluded.owner OR leases.until <= ${now}`,
    read: `SELECT owner, until FROM leases WHERE name = ${placeholders(dialect, 1)[0]}`,
  };
}

export function releaseLeaseSql(dialect: Dialect): string {
  const [name, owner] = placeholders(dialect, 2);
  return `DELETE FROM leases WHERE name = ${name} AND owner = ${owner}`;
}
