import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { openStore } from '../../runtime/serve/index.js';
import type { Store } from '../../runtime/serve/index.js';
import { testSchema } from '../store/pg-helpers.js';
import { entry } from '../store/store-contract.js';
import { cli } from './helpers.js';

/** `hl7c discard` against the store itself (SQLite file or PostgreSQL), as an operator's shell would. */

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const STORES = [
  { name: 'SQLite', location: async () => join(mkdtempSync(join(tmpdir(), 'hl7c-discard-')), 'store.db') },
  {
    name: 'PostgreSQL',
    location: async () => {
      const schema = testSchema('discard');
      cleanups.push(() => schema.drop());
      return schema.url;
    },
  },
];

/** D1 dead and S1 stopped (adt-in → webhook), Q1 still queued, L1 dead (lab-in → webhook). */
async function seed(store: Store): Promise<Record<'D1' | 'S1' | 'Q1' | 'L1', number>> {
  await store.openForWriting('seed');
  const ids = {
    D1: await store.record(entry('D1')),
    S1: await store.record(entry('S1')),
    Q1: await store.record(entry('Q1')),
    L1: await store.record(entry('L1', { channel: 'lab-in' })),
  };
  const outcome = { D1: 'dead', S1: 'stopped', L1: 'dead' } as const;
  for (const channel of ['adt-in', 'lab-in']) {
    const claim = await store.claimDeliveries({ channel, destination: 'webhook', limit: 10, owner: 'seed', leaseMs: 60_000, ordered: false });
    for (const d of claim.deliveries) {
      const state = outcome[d.control_id as keyof typeof outcome];
      await store.finishAttempt({ ...d, attempts: 1 }, state ? { state, error: 'HTTP 500', detail: 'HTTP 500' } : { state: 'queued', error: 'HTTP 503', nextAttemptAt: Date.now() + 60_000, detail: 'retry' }, Date.now());
    }
  }
  return ids;
}

describe.each(STORES)('hl7c discard on $name', (kind) => {
  test('by id, by a set listed first and discarded with --yes; refusals exit 1, usage errors 2; every discard is audited', async () => {
    const location = await kind.location();
    const store = await openStore(location);
    const ids = await seed(store);
    const states = async () => Object.fromEntries(await Promise.all(Object.entries(ids).map(async ([c, id]) => [c, (await store.getMessage(id))!.deliveries.map((d) => d.state).join()])));

    expect(await cli('discard', String(ids.D1), '--store', location)).toEqual({ code: 0, stdout: `${ids.D1}  adt-in  webhook  discarded\n`, stderr: '' });
    // A queued entry is not discarded; neither is a message that does not exist.
    const queued = await cli('discard', String(ids.Q1), '--destination', 'webhook', '--store', location);
    expect(queued).toEqual({ code: 1, stdout: '', stderr: `hl7c: message ${ids.Q1}'s entry for webhook is neither dead nor stopped; only those can be discarded\n` });
    expect((await cli('discard', '999999', '--store', location)).code).toBe(1);
    expect(await cli('discard', '--store', location)).toMatchObject({ code: 2, stdout: '' });
    expect((await cli('discard', '--status', 'queued', '--store', location)).code).toBe(2);

    // A set: listed, nothing done, until --yes.
    const listed = await cli('discard', '--channel', 'lab-in', '--store', location);
    expect(listed).toEqual({ code: 1, stdout: `${ids.L1}  lab-in  webhook  dead\n`, stderr: '1 entry would be discarded; run again with --yes to discard them\n' });
    expect((await states()).L1).toBe('dead');
    expect(await cli('discard', '--channel', 'lab-in', '--yes', '--store', location)).toEqual({ code: 0, stdout: `${ids.L1}  lab-in  webhook  discarded\n`, stderr: '1 entry discarded\n' });
    expect(await cli('discard', '--status', 'stopped', '--destination', 'webhook', '--yes', '--store', location)).toEqual({ code: 0, stdout: `${ids.S1}  adt-in  webhook  discarded\n`, stderr: '1 entry discarded\n' });
    expect(await cli('discard', '--status', 'dead', '--yes', '--store', location)).toEqual({ code: 1, stdout: '', stderr: '0 entries discarded\n' });
    expect(await states()).toEqual({ D1: 'discarded', S1: 'discarded', Q1: 'queued', L1: 'discarded' });
    // Discarded, the stopped head no longer holds the ordered queue.
    expect((await store.claimDeliveries({ channel: 'adt-in', destination: 'webhook', limit: 10, owner: 'seed', leaseMs: 60_000, ordered: true, now: Date.now() + 120_000 })).deliveries.map((d) => d.control_id)).toEqual(['Q1']);

    const audit = JSON.parse((await cli('audit', '--store', location, '--json')).stdout) as Array<{ who: string; action: string; target: string; remote: string; detail: string }>;
    const discards = audit.filter((e) => e.action === 'delivery.discard').reverse();
    expect(discards.every((e) => e.who.startsWith('cli:') && e.remote === 'cli')).toBe(true);
    expect(discards.map((e) => `${e.target}: ${e.detail.split(',')[0]}`)).toEqual([
      `message ${ids.D1} → webhook: discarded`,
      `message ${ids.Q1} → webhook: failed: message ${ids.Q1}'s entry for webhook is neither dead nor stopped; only those can be discarded`,
      'message 999999: failed: no message 999999',
      `message ${ids.L1} → webhook: discarded (dead)`,
      `message ${ids.S1} → webhook: discarded (stopped)`,
    ]);
    await store.close();
  }, 60_000);
});
