import mysql from 'mysql2/promise';
import pg from 'pg';
import type { DatabaseDestinationConfig } from '../channel/channel.js';
import type { Logger } from '../log.js';
import type { AttemptOutcome, Sender } from './senders.js';
import { questionMarkStatement, scanStatement, sqlDialect } from './sql-placeholders.js';

/**
 * SQLSTATE classes a retry cannot fix: data exceptions (22), constraint violations (23), syntax
 * errors and missing tables or columns (42). The attempt fails for good at once (dead letter or
 * stopped queue); anything else (connection refused, the server restarting, a lock timeout or a
 * deadlock) is retried like any destination. PostgreSQL and MySQL/MariaDB both report SQLSTATE.
 */
const FINAL_SQLSTATE_CLASSES = new Set(['22', '23', '42']);

/** One checked-out connection of either driver, inside the destination's transaction. */
interface SqlSession {
  begin(): Promise<void>;
  /** Runs statement i of the destination with its values; the rows it touched. */
  run(i: number, values: unknown[]): Promise<number>;
  commit(): Promise<void>;
  rollback(): Promise<void>;
  release(broken: boolean): void;
}

interface SqlPool {
  connect(): Promise<SqlSession>;
  end(): Promise<void>;
}

/** A database destination: the entry's statements, in one transaction, with the values queued with it. */
export function databaseSender(target: DatabaseDestinationConfig, log: Logger): Sender {
  const dialect = sqlDialect(target.url);
  const unusable = (error: string): Sender => ({ send: async () => ({ ok: false, retry: false, error }), close: async () => undefined });
  if (!dialect) return unusable(`database url scheme ${/^([a-z0-9+]+):/i.exec(target.url)?.[1] ?? '(none)'}: only postgres://, mysql:// and mariadb:// are supported`);
  if (dialect === 'mysql') {
    // A bare ? would take a value hl7c never gives it (validate says so when the url is known).
    const at = target.statements.findIndex((st) => scanStatement(st, 'mysql').questionMarks.length > 0);
    if (at >= 0) return unusable(`statement ${at + 1} has a bare ?: write the placeholders as $1, $2 … (hl7c sends them to MySQL as ?)`);
  }
  const pool = dialect === 'postgres' ? postgresPool(target, log) : mysqlPool(target, log);
  return {
    async send(delivery): Promise<AttemptOutcome> {
      let values: unknown[][];
      try {
        values = (JSON.parse((delivery.payload ?? Buffer.from('{}')).toString('utf8')) as { params?: unknown[][] }).params ?? [];
      } catch (err) {
        return { ok: false, retry: false, error: `the queued parameters are not readable: ${(err as Error).message}` };
      }
      let session: SqlSession;
      try {
        session = await pool.connect();
      } catch (err) {
        return { ok: false, retry: true, error: describe(err) };
      }
      let broken = false;
      try {
        await session.begin();
        let rows = 0;
        for (const i of target.statements.keys()) rows += await session.run(i, values[i] ?? []);
        await session.commit();
        return { ok: true, detail: `${target.statements.length} statement${target.statements.length === 1 ? '' : 's'}, ${rows} row${rows === 1 ? '' : 's'}` };
      } catch (err) {
        await session.rollback().catch(() => (broken = true));
        const state = sqlState(err);
        return { ok: false, retry: !(state && FINAL_SQLSTATE_CLASSES.has(state.slice(0, 2))), error: describe(err) };
      } finally {
        session.release(broken);
      }
    },
    close: () => pool.end(),
  };
}

// Two connections at most: one in flight per queue by default, a second for max_in_flight > 1.
function postgresPool(target: DatabaseDestinationConfig, log: Logger): SqlPool {
  const pool = new pg.Pool({ connectionString: target.url, max: 2, idleTimeoutMillis: 30_000, connectionTimeoutMillis: 10_000 });
  // An idle connection the server drops must not crash the process; the next attempt reconnects.
  pool.on('error', (err) => log.warn({ err: err.message }, 'database destination: an idle connection failed'));
  return {
    async connect() {
      const client = await pool.connect();
      return {
        begin: async () => void (await client.query('BEGIN')),
        run: async (i, values) => (await client.query(target.statements[i]!, values)).rowCount ?? 0,
        commit: async () => void (await client.query('COMMIT')),
        rollback: async () => void (await client.query('ROLLBACK')),
        release: (broken) => client.release(broken),
      };
    },
    end: () => pool.end(),
  };
}

function mysqlPool(target: DatabaseDestinationConfig, log: Logger): SqlPool {
  // MySQL binds ? in order: each statement is rewritten once, and its values put in that order.
  const statements = target.statements.map(questionMarkStatement);
  // mariadb:// is the same protocol; the driver reads the rest of the URL either way.
  const pool = mysql.createPool({ uri: target.url.replace(/^mariadb:/i, 'mysql:'), connectionLimit: 2, maxIdle: 2, idleTimeout: 30_000, connectTimeout: 10_000 });
  pool.pool.on('connection', (connection) => {
    connection.on('error', (err: Error) => log.warn({ err: err.message }, 'database destination: a connection failed'));
  });
  return {
    async connect() {
      const connection = await pool.getConnection();
      return {
        begin: () => connection.beginTransaction(),
        run: async (i, values) => {
          const { text, order } = statements[i]!;
          const [result] = await connection.execute(text, order.map((n) => (values[n] ?? null) as string | number | null));
          return (result as { affectedRows?: number }).affectedRows ?? 0;
        },
        commit: () => connection.commit(),
        rollback: () => connection.rollback(),
        release: (broken) => (broken ? connection.destroy() : connection.release()),
      };
    },
    end: () => pool.end(),
  };
}

/** The SQLSTATE of a database error (pg puts it in code, mysql2 in sqlState); none for a network error. */
function sqlState(err: unknown): string | undefined {
  const e = err as { code?: unknown; sqlState?: unknown; severity?: unknown };
  if (typeof e.sqlState === 'string') return e.sqlState;
  // pg's network errors carry a Node code (ECONNREFUSED) too; only the server's errors have a severity.
  return typeof e.code === 'string' && e.severity !== undefined ? e.code : undefined;
}

/** The database's message and SQLSTATE; never the URL (it may hold a password). */
function describe(err: unknown): string {
  const state = sqlState(err);
  return state ? `${(err as Error).message} (SQLSTATE ${state})` : (err as Error).message;
}
