import { openStore } from '../../runtime/serve/index.js';
import { testSchema } from './pg-helpers.js';
import { storeContract } from './store-contract.js';

/** The shared store suite on PostgreSQL: each test in a schema of its own, dropped after. */
storeContract('PostgreSQL', async () => {
  const schema = testSchema('contract');
  const store = await openStore(schema.url);
  let current = store;
  return {
    store,
    reopen: async () => (current = await openStore(schema.url)),
    cleanup: async () => {
      await current.close().catch(() => undefined);
      await store.close().catch(() => undefined);
      await schema.drop();
    },
  };
});
