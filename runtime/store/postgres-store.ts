/**
 * The PostgreSQL store, as `openStore()` loads it for `postgres://` addresses (only then: the
 * SQLite path never loads the pg driver).
 */
import type { OpenStoreOptions } from './open.js';
import { createPool, parsePostgresUrl } from './postgres/connection.js';
import { migrate } from './postgres/migrations.js';
import { PostgresStore } from './postgres/postgres-store.js';
import type { PostgresStoreOptions } from './postgres/postgres-store.js';

export { PostgresStore } from './postgres/postgres-store.js';
export type { PostgresStoreOptions } from './postgres/postgres-store.js';
export type { StoreStatus, NodeStatus } from './store.js';
export { migrate, SCHEMA_VERSION } from './postgres/migrations.js';

/** Creates or updates the schema the address names, as `hl7c migrate` does; returns the versions. */
export async function migratePostgres(url: string): Promise<{ schema: string; from: number; to: number }> {
  const target = parsePostgresUrl(url);
  const pool = createPool(target, { max: 1 });
  try {
    return { schema: target.schema, ...(await migrate(pool, target.schema)) };
  } finally {
    await pool.end();
  }
}

export function openPostgresStore(url: string, options: OpenStoreOptions & PostgresStoreOptions = {}): Promise<PostgresStore> {
  return PostgresStore.open(url, options);
}
