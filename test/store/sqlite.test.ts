import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../../runtime/serve/index.js';
import { storeContract } from './store-contract.js';

storeContract('SQLite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hl7c-store-'));
  const path = join(dir, 'store.db');
  const store = await openStore(path, { durability: 'process' });
  let current = store;
  return {
    store,
    reopen: async () => (current = await openStore(path, { durability: 'process' })),
    cleanup: async () => {
      await current.close().catch(() => undefined);
      await store.close().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
});
