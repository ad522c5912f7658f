import { resolve } from 'node:path';
import { SqliteStore } from './sqlite-store.js';
import type { Store, StoreHealth } from './store.js';

export interface OpenStoreOptions {
  /**
   * disk (default): a message is acknowledged once it is synced to disk (survives a power cut);
   * process: once it is written (survives a crash of hl7c, not of the machine).
   */
  durability?: 'disk' | 'process';
  /** Told when received messages could not be taken in yet (they are safe, and retried). */
  onIngestError?: (err: Error, waiting: number) => void;
  /** What a relative SQLite path is relative to (default: the working directory). */
  cwd?: string;
  /** Told when a store on a server (PostgreSQL) becomes unreachable, and when it is back. */
  onHealthChange?: (health: StoreHealth) => void;
  /**
   * false: a store on a server (PostgreSQL) is used as it is, neither created nor migrated (tools
   * that only read, as `hl7c status`); a missing schema is an error. Default true.
   */
  migrate?: boolean;
}

/** The options of a PostgreSQL store's module (runtime/store/postgres-store.ts). */
interface PostgresModule {
  openPostgresStore(url: string, options: OpenStoreOptions): Promise<Store>;
}

/** True when `location` names a PostgreSQL database rather than a SQLite file. */
export function isPostgresUrl(location: string): boolean {
  return /^postgres(ql)?:\/\//i.test(location);
}

/**
 * Opens the store `location` names: `postgres://…` (or `postgresql://…`) a PostgreSQL database
 * shared by several nodes, anything else the path of a SQLite file (one node). `--store` and
 * `HL7C_STORE` give it.
 */
export async function openStore(location: string, options: OpenStoreOptions = {}): Promise<Store> {
  if (isPostgresUrl(location)) {
    // Loaded only when asked for, so the SQLite path never loads the PostgreSQL driver.
    const modulePath = './postgres-store.js';
    let mod: PostgresModule;
    try {
      mod = (await import(modulePath)) as PostgresModule;
    } catch (err) {
      throw new Error(`this build of hl7c cannot open a PostgreSQL store (${(err as Error).message})`);
    }
    return mod.openPostgresStore(location, options);
  }
  return new SqliteStore(resolve(options.cwd ?? process.cwd(), location), {
    synchronous: options.durability === 'process' ? 'NORMAL' : 'FULL',
    onIngestError: options.onIngestError,
    // Crash tests make it small, to rotate the log under traffic.
    receivedLogLimitBytes: Number(process.env.HL7C_RECEIVED_LOG_BYTES) || undefined,
  });
}
