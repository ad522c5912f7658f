import { userInfo } from 'node:os';
import { openStore } from '../../runtime/serve/index.js';
import type { Operations } from '../../runtime/serve/index.js';
import { cliOperations } from '../serve/replay.js';

/** Who the CLI's audit rows name: the operating-system user running it. */
export function cliCaller(): { who: string; role: string; remote: string } {
  let user = 'unknown';
  try {
    user = userInfo().username;
  } catch {
    // No user entry (a container with an arbitrary uid): recorded as unknown.
  }
  return { who: `cli:${user}`, role: 'cli', remote: 'cli' };
}

/**
 * Opens the store, runs `work` with the query/action module over it (the one the admin API uses),
 * and closes the store. `readOnly`: a PostgreSQL schema is used as it is, never created or migrated.
 */
export async function withOperations(location: string, work: (ops: Operations) => Promise<number>, options: { readOnly?: boolean } = {}): Promise<number> {
  const store = await openStore(location, options.readOnly ? { migrate: false } : {});
  try {
    return await work(cliOperations(store));
  } finally {
    await store.close();
  }
}
