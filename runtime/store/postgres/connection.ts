import pg from 'pg';

/** A `postgres://` store address, with hl7c's own `schema` parameter taken out. */
export interface PostgresTarget {
  /** The connection string pg is given (without `schema`). */
  connectionString: string;
  /** The schema hl7c's tables live in (`?schema=…`, default `public`). */
  schema: string;
  /** The address with any password masked, for logs and messages. */
  display: string;
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * Reads a store address. `?schema=name` puts hl7c's tables in a schema of their own: several
 * hl7c installations (or the channels of one, partitioned) can share one database that way.
 */
export function parsePostgresUrl(store: string): PostgresTarget {
  const url = new URL(store);
  const schema = url.searchParams.get('schema') ?? 'public';
  if (!SCHEMA_NAME.test(schema)) throw new Error(`schema "${schema}" in the store address: use lower-case letters, digits and _ (it is used as a PostgreSQL identifier)`);
  url.searchParams.delete('schema');
  const display = new URL(url.toString());
  if (display.password) display.password = '***';
  return { connectionString: url.toString(), schema, display: `${display.toString()}${schema === 'public' ? '' : `${display.search ? '&' : '?'}schema=${schema}`}` };
}

/** BIGINT columns (ids, times in ms) as numbers: both stay far below 2^53. */
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => (oid === 20 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text'))) as typeof pg.types.getTypeParser,
};

export interface PoolOptions {
  max?: number;
  /** How long a query may take before it fails (a network cut must not hold an ACK forever). */
  queryTimeoutMs?: number;
  /** `off` when the messages only need to survive a crash of hl7c (see --durability). */
  synchronousCommit?: 'on' | 'off';
  /** Told about errors on idle connections (PostgreSQL restarted, network cut). */
  onError?: (err: Error) => void;
}

/**
 * A pool whose connections use hl7c's schema. A connection that breaks while idle is dropped
 * (and the error reported, never thrown: it must not end the process); the next query opens a
 * new one, so the store resumes by itself when the database is back.
 */
export function createPool(target: PostgresTarget, options: PoolOptions = {}): pg.Pool {
  const settings = [`-c search_path=${target.schema}`];
  if (options.synchronousCommit) settings.push(`-c synchronous_commit=${options.synchronousCommit}`);
  const pool = new pg.Pool({
    connectionString: target.connectionString,
    max: options.max ?? 8,
    options: settings.join(' '),
    types,
    keepAlive: true,
    connectionTimeoutMillis: 5000,
    query_timeout: options.queryTimeoutMs ?? 10_000,
    idleTimeoutMillis: 30_000,
    application_name: 'hl7c',
  });
  pool.on('error', (err) => options.onError?.(err));
  return pool;
}

/** Quotes an identifier already checked against SCHEMA_NAME. */
export function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
