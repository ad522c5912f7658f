import pg from 'pg';
import type { DatabaseDestinationConfig } from '../channel/channel.js';
import type { Logger } from '../log.js';
import type { AttemptOutcome, Sender } from './senders.js';

/**
 * SQLSTATE classes a retry cannot fix: data exceptions (22), constraint violations (23), syntax
 * errors and missing tables or columns (42). The attempt fails for good at once (dead letter or
 * stopped queue); anything else (connection refused, the server restarting, a lock timeout) is
 * retried like any destination.
 */
const FINAL_SQLSTATE_CLASSES = new Set(['22', '23', '42']);

/** A database destination: the entry's statements, in one transaction, with the values queued with it. */
export function databaseSender(target: DatabaseDestinationConfig, log: Logger): Sender {
  if (!/^postgres(ql)?:\/\//.test(target.url)) {
    const scheme = /^([a-z0-9+]+):/i.exec(target.url)?.[1] ?? '(none)';
    return {
      send: async () => ({ ok: false, retry: false, error: `database url scheme ${scheme}: only postgres:// is supported` }),
      close: async () => undefined,
    };
  }
  // Two connections at most: one in flight per queue by default, a second for max_in_flight > 1.
  const pool = new pg.Pool({ connectionString: target.url, max: 2, idleTimeoutMillis: 30_000, connectionTimeoutMillis: 10_000 });
  // An idle connection the server drops must not crash the process; the next attempt reconnects.
  pool.on('error', (err) => log.warn({ err: err.message }, 'database destination: an idle connection failed'));
  return {
    async send(delivery): Promise<AttemptOutcome> {
      let values: unknown[][];
      try {
        values = (JSON.parse((delivery.payload ?? Buffer.from('{}')).toString('utf8')) as { params?: unknown[][] }).params ?? [];
      } catch (err) {
        return { ok: false, retry: false, error: `the queued parameters are not readable: ${(err as Error).message}` };
      }
      let client: pg.PoolClient;
      try {
        client = await pool.connect();
      } catch (err) {
        return { ok: false, retry: true, error: describe(err) };
      }
      let broken = false;
      try {
        await client.query('BEGIN');
        let rows = 0;
        for (const [i, statement] of target.statements.entries()) {
          const result = await client.query(statement, values[i] ?? []);
          rows += result.rowCount ?? 0;
        }
        await client.query('COMMIT');
        return { ok: true, detail: `${target.statements.length} statement${target.statements.length === 1 ? '' : 's'}, ${rows} row${rows === 1 ? '' : 's'}` };
      } catch (err) {
        await client.query('ROLLBACK').catch(() => (broken = true));
        const code = (err as { code?: string }).code;
        const final = typeof code === 'string' && FINAL_SQLSTATE_CLASSES.has(code.slice(0, 2));
        return { ok: false, retry: !final, error: describe(err) };
      } finally {
        client.release(broken);
      }
    },
    close: () => pool.end(),
  };
}

/** The database's message and SQLSTATE; never the URL (it may hold a password). */
function describe(err: unknown): string {
  const e = err as Error & { code?: string };
  return e.code ? `${e.message} (SQLSTATE ${e.code})` : e.message;
}
