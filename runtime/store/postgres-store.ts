/**
 * The PostgreSQL store, as `openStore()` loads it for `postgres://` addresses (only then: the
 * SQLite path never loads the pg driver).
 */
import type { OpenStoreOptions } from './open.js';
import { PostgresStore } from './postgres/postgres-store.js';
import type { PostgresStoreOptions } from './postgres/postgres-store.js';

export { PostgresStore } from './postgres/postgres-store.js';
export type { PostgresStoreOptions, StoreStatus, NodeStatus } from './postgres/postgres-store.js';
export { migrate, SCHEMA_VERSION } from './postgres/migrations.js';

export function openPostgresStore(url: string, options: OpenStoreOptions & PostgresStoreOptions = {}): Promise<PostgresStore> {
  return PostgresStore.open(url, options);
}
