import { afterEach, describe, expect, test } from 'vitest';
import { PostgresStore, SCHEMA_VERSION } from '../../runtime/store/postgres-store.js';
import { receivedEntry } from '../serve/helpers.js';
import { sql, testSchema } from './pg-helpers.js';

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function schemaWithStores(count: number): Promise<{ name: string; url: string; stores: PostgresStore[] }> {
  const schema = testSchema('pg');
  cleanups.push(() => schema.drop());
  const stores = await Promise.all(Array.from({ length: count }, () => PostgresStore.open(schema.url)));
  cleanups.push(() => Promise.all(stores.map((s) => s.close())));
  return { ...schema, stores };
}

describe('PostgreSQL schema', () => {
  test('several nodes starting at once create the schema once, under the advisory lock', async () => {
    const { name } = await schemaWithStores(6);
    const versions = await sql<{ version: number }>(name, 'SELECT version FROM schema_version ORDER BY version');
    expect(versions.map((v) => v.version)).toEqual(Array.from({ length: SCHEMA_VERSION }, (_, i) => i + 1));
    const tables = await sql<{ table_name: string }>('public', "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name", [name]);
    expect(tables.map((t) => t.table_name)).toEqual(['audit', 'channels', 'deliveries', 'delivery_counts', 'events', 'leases', 'message_counts', 'messages', 'node_channels', 'node_reloads', 'nodes', 'paused_destinations', 'queue_attempts', 'queue_owners', 'schema_version']);
  });

  test('a database migrated by a newer hl7c is refused, not used', async () => {
    const { name, url } = await schemaWithStores(1);
    await sql(name, "INSERT INTO schema_version (version, description) VALUES ($1, 'from the future')", [SCHEMA_VERSION + 1]);
    await expect(PostgresStore.open(url)).rejects.toThrow(`is at version ${SCHEMA_VERSION + 1}, newer than this hl7c knows (${SCHEMA_VERSION})`);
  });
});

describe('PostgreSQL group commit', () => {
  test('messages recorded in one turn share one statement: ids from the sequence, queue entries in message order', async () => {
    const {
      name,
      stores: [store],
    } = await schemaWithStores(1);
    const ids = await Promise.all(Array.from({ length: 50 }, (_, i) => store!.record(receivedEntry(`G${i}`))));
    expect(ids).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    const rows = await sql<{ control_id: string; delivery_id: number; message_id: number }>(
      name,
      'SELECT m.control_id, d.id AS delivery_id, m.id AS message_id FROM messages m JOIN deliveries d ON d.message_id = m.id ORDER BY d.id',
    );
    expect(rows.map((r) => r.control_id)).toEqual(Array.from({ length: 50 }, (_, i) => `G${i}`));
    // One transaction: every row of the batch carries the same xmin.
    const xmins = await sql<{ n: string }>(name, 'SELECT COUNT(DISTINCT xmin::text) AS n FROM messages');
    expect(Number(xmins[0]!.n)).toBe(1);
  });

  test('a commit that fails rejects every message of its batch, and stores none of them', async () => {
    const {
      name,
      stores: [store],
    } = await schemaWithStores(1);
    // PostgreSQL text cannot hold NUL: this one message makes the whole statement fail.
    const bad = { ...receivedEntry('BAD'), reason: 'nul \u0000 here' };
    const results = await Promise.allSettled([store!.record(receivedEntry('OK1')), store!.record(bad), store!.record(receivedEntry('OK2'))]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
    expect(await sql(name, 'SELECT id FROM messages')).toEqual([]);
    // The next turn's batch is committed as usual.
    expect(await store!.record(receivedEntry('LATER'))).toBeGreaterThan(0);
  });
});

describe('PostgreSQL queues shared by nodes', () => {
  test('two nodes claiming one unordered queue at once get disjoint entries; a live lease is left alone, an expired one taken', async () => {
    const {
      stores: [a, b],
    } = await schemaWithStores(2);
    for (let i = 0; i < 40; i++) await a!.record(receivedEntry(`U${i}`));
    const now = Date.now();
    const claim = (s: PostgresStore, owner: string, at = now, limit = 15) => s.claimDeliveries({ channel: 'adt-in', destination: 'webhook', limit, owner, leaseMs: 1000, ordered: false, now: at });
    const [fromA, fromB] = await Promise.all([claim(a!, 'node-a'), claim(b!, 'node-b')]);
    const idsA = fromA.deliveries.map((d) => d.id);
    const idsB = fromB.deliveries.map((d) => d.id);
    expect(idsA).toHaveLength(15);
    expect(idsB).toHaveLength(15);
    expect(idsA.filter((id) => idsB.includes(id))).toEqual([]);
    // Both leases live: c gets only the ten nobody holds.
    const fromC = await claim(b!, 'node-c', now + 500);
    expect(fromC.deliveries.map((d) => d.id).filter((id) => idsA.includes(id) || idsB.includes(id))).toEqual([]);
    expect(fromC.deliveries).toHaveLength(10);
    // a and b die: once their leases have run out, their entries go to whoever claims next (c's still hold).
    const afterExpiry = await claim(b!, 'node-d', now + 1001, 40);
    expect(afterExpiry.deliveries.map((d) => d.id).sort((x, y) => x - y)).toEqual([...idsA, ...idsB].sort((x, y) => x - y));
  });

  test('an ordered queue is worked by one node at a time, in FIFO order, and taken over when the holder stops renewing', async () => {
    const {
      name,
      stores: [a, b],
    } = await schemaWithStores(2);
    for (let i = 0; i < 6; i++) await a!.record(receivedEntry(`O${i}`));
    const now = Date.now();
    const claim = (s: PostgresStore, owner: string, at: number) => s.claimDeliveries({ channel: 'adt-in', destination: 'webhook', limit: 3, owner, leaseMs: 1000, ordered: true, now: at });
    const first = await claim(a!, 'node-a', now);
    expect(first.deliveries.map((d) => d.control_id)).toEqual(['O0', 'O1', 'O2']);
    expect((await sql<{ owner: string }>(name, 'SELECT owner FROM queue_owners'))[0]!.owner).toBe('node-a');
    // While a holds the head, b gets nothing, not even what is behind it.
    expect((await claim(b!, 'node-b', now + 10)).deliveries).toEqual([]);
    await a!.finishAttempt({ ...first.deliveries[0]!, attempts: 1 }, { state: 'sent', detail: 'HTTP 200' }, now + 20);
    expect((await claim(b!, 'node-b', now + 30)).deliveries).toEqual([]);
    // a renews while sending O1; then it dies. b waits for the renewed lease, then takes over at O1.
    await a!.renewLease([first.deliveries[1]!.id], 'node-a', 1000, now + 900);
    expect((await claim(b!, 'node-b', now + 1500)).deliveries).toEqual([]);
    const takeover = await claim(b!, 'node-b', now + 1901);
    expect(takeover.deliveries.map((d) => d.control_id)).toEqual(['O1', 'O2', 'O3']);
    // The history says who had it and when their lease ran out.
    const history = (await b!.getMessage(takeover.deliveries[0]!.message_id))!.events;
    expect(history.find((e) => e.kind === 'lease taken over')).toMatchObject({ at: now + 1901, detail: `from node-a, whose lease ran out at ${new Date(now + 1900).toISOString()}` });
    expect((await sql<{ owner: string }>(name, 'SELECT owner FROM queue_owners'))[0]!.owner).toBe('node-b');
  });

  test('a stopped entry holds an ordered queue for every node until it is replayed', async () => {
    const {
      stores: [a, b],
    } = await schemaWithStores(2);
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push(await a!.record(receivedEntry(`S${i}`)));
    const now = Date.now();
    const claim = (s: PostgresStore, owner: string) => s.claimDeliveries({ channel: 'adt-in', destination: 'webhook', limit: 5, owner, leaseMs: 1000, ordered: true, now });
    const first = await claim(a!, 'node-a');
    await a!.finishAttempt({ ...first.deliveries[0]!, attempts: 1 }, { state: 'stopped', error: 'HTTP 400', detail: 'HTTP 400; queue stopped' }, now);
    for (const [s, owner] of [
      [a!, 'node-a'],
      [b!, 'node-b'],
    ] as const) {
      const held = await claim(s, owner);
      expect(held).toMatchObject({ deliveries: [], stopped: true });
    }
    await b!.recordReplay(ids[0]!, { spec_version: 'v2', status: 'accepted', reason: null, identifiers: null, ack_code: 'AA', ack: null, deliveries: [{ destination: 'webhook', payload: Buffer.from('{}') }] }, now);
    expect((await claim(b!, 'node-b')).deliveries.map((d) => d.control_id)).toEqual(['S0']);
  });

  test('nodes register and heartbeat; status shows each node, the spec version it runs, and the queues', async () => {
    const {
      stores: [a, b],
    } = await schemaWithStores(2);
    await a!.openForWriting('node-a');
    await b!.openForWriting('node-b');
    await a!.setChannel('adt-in', '/specs/adt.yaml', 'v1', Date.now());
    await b!.setChannel('adt-in', '/specs/adt.yaml', 'v2', Date.now());
    await a!.record(receivedEntry('Q1'));
    await b!.close();
    const status = await a!.status();
    expect(status.nodes.map((n) => [n.id, n.alive, n.stopped_at !== null])).toEqual([
      ['node-a', true, false],
      ['node-b', false, true],
    ]);
    expect(status.channels).toEqual([{ name: 'adt-in', spec_version: 'v2', nodes: [{ node: 'node-a', spec_version: 'v1', alive: true }, { node: 'node-b', spec_version: 'v2', alive: false }] }]);
    expect(status.queues).toMatchObject([{ channel: 'adt-in', destination: 'webhook', queued: 1, sending: 0, stopped: 0 }]);
  });

  test('the counts /metrics reads are kept by triggers and agree with the rows, whichever connection wrote them', async () => {
    const {
      name,
      stores: [a, b],
    } = await schemaWithStores(2);
    const ids = await Promise.all([...Array.from({ length: 20 }, (_, i) => a!.record(receivedEntry(`M${i}`))), ...Array.from({ length: 10 }, (_, i) => b!.record({ ...receivedEntry(`R${i}`), status: 'rejected', deliveries: [] }))]);
    const now = Date.now();
    const claim = await a!.claimDeliveries({ channel: 'adt-in', destination: 'webhook', limit: 8, owner: 'node-a', leaseMs: 1000, ordered: false, now });
    await Promise.all(claim.deliveries.slice(0, 5).map((d) => a!.finishAttempt({ ...d, attempts: 1 }, { state: 'sent', detail: 'HTTP 200' }, now)));
    await b!.finishAttempt({ ...claim.deliveries[5]!, attempts: 1 }, { state: 'dead', error: 'HTTP 400', detail: 'dead' }, now);
    await b!.recordReplay(ids[25]!, { spec_version: 'v2', status: 'accepted', reason: null, identifiers: null, ack_code: 'AA', ack: null, deliveries: [{ destination: 'webhook', payload: Buffer.from('{}') }] }, now);
    const metrics = await b!.metrics();
    const truth = {
      messages: await sql(name, 'SELECT channel, status, COUNT(*)::int AS count FROM messages GROUP BY 1, 2 ORDER BY 1, 2'),
      deliveries: await sql(name, 'SELECT channel, destination, state, COUNT(*)::int AS count FROM deliveries GROUP BY 1, 2, 3 ORDER BY 1, 2, 3'),
    };
    expect(metrics.messages).toEqual(truth.messages);
    expect(metrics.deliveries).toEqual(truth.deliveries);
    expect(metrics.deliveries).toEqual([
      { channel: 'adt-in', destination: 'webhook', state: 'dead', count: 1 },
      { channel: 'adt-in', destination: 'webhook', state: 'queued', count: 13 },
      { channel: 'adt-in', destination: 'webhook', state: 'sending', count: 2 },
      { channel: 'adt-in', destination: 'webhook', state: 'sent', count: 5 },
    ]);
  });
});

describe('PostgreSQL going away under the store', () => {
  test('records fail while the network to the database is cut, health says so, and the store resumes by itself', async () => {
    const { startPgProxy } = await import('./pg-proxy.js');
    const proxy = await startPgProxy();
    cleanups.push(() => proxy.close());
    const schema = testSchema('cut');
    cleanups.push(() => schema.drop());
    const errors: Error[] = [];
    const store = await PostgresStore.open(schema.url.replace('127.0.0.1:5432', `127.0.0.1:${proxy.port}`), { onError: (err) => errors.push(err) });
    cleanups.push(() => store.close().catch(() => undefined));
    await store.openForWriting('node-cut');
    // Several idle connections in the pool, all about to be cut.
    await Promise.all(Array.from({ length: 5 }, (_, i) => store.record(receivedEntry(`BEFORE${i}`))));
    expect(store.health()).toEqual({ status: 'ok' });

    proxy.cut();
    await expect(store.record(receivedEntry('DURING'))).rejects.toThrow();
    expect(store.health()).toMatchObject({ status: 'unavailable' });
    // Idle connections broke too: reported, never thrown at the process (which is still here).
    expect(errors.length).toBeGreaterThan(0);

    proxy.restore();
    const id = await store.record(receivedEntry('AFTER'));
    expect(store.health()).toEqual({ status: 'ok' });
    const stored = await sql<{ control_id: string }>(schema.name, 'SELECT control_id FROM messages ORDER BY id');
    expect(stored.map((r) => r.control_id)).toEqual(['BEFORE0', 'BEFORE1', 'BEFORE2', 'BEFORE3', 'BEFORE4', 'AFTER']);
    expect(id).toBeGreaterThan(5);
  });
});

describe('hl7c migrate and hl7c status', () => {
  test('migrate creates the schema as a deploy step, then finds it up to date; status reads it without changing it', async () => {
    const { cli } = await import('../cli/helpers.js');
    const schema = testSchema('cli');
    cleanups.push(() => schema.drop());
    const missing = await cli('status', '--store', schema.url);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain(`no hl7c schema "${schema.name}"`);
    expect(await sql('public', 'SELECT 1 FROM information_schema.schemata WHERE schema_name = $1', [schema.name])).toEqual([]);

    const first = await cli('migrate', '--store', schema.url);
    expect(first).toMatchObject({ code: 0, stdout: `schema "${schema.name}" migrated from version 0 to ${SCHEMA_VERSION}\n` });
    const again = await cli('migrate', '--store', schema.url);
    expect(again).toMatchObject({ code: 0, stdout: `schema "${schema.name}" is up to date (version ${SCHEMA_VERSION})\n` });
    // A schema an older hl7c left (before its last migration) is not read as if it were current.
    await sql(schema.name, 'DELETE FROM schema_version WHERE version = $1', [SCHEMA_VERSION]);
    expect(await cli('status', '--store', schema.url)).toMatchObject({ code: 2, stderr: expect.stringContaining(`is at version ${SCHEMA_VERSION - 1}, older than this hl7c reads (${SCHEMA_VERSION}): run hl7c migrate`) });
    await sql(schema.name, "INSERT INTO schema_version (version, description) VALUES ($1, 'back')", [SCHEMA_VERSION]);

    const store = await PostgresStore.open(schema.url);
    await store.openForWriting('node-x');
    await store.setChannel('adt-in', '/specs/adt.yaml', 'abc123', Date.now());
    await store.record(receivedEntry('ST1'));
    const status = await cli('status', '--store', schema.url);
    await store.close();
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/^nodes: 1 alive, 0 lost, 0 stopped\n {2}node-x {2}host \S+ {2}pid \d+ .* alive\n/);
    expect(status.stdout).toContain('channels:\n  adt-in  spec abc123  on node-x\n');
    expect(status.stdout).toMatch(/queues:\n {2}adt-in -> webhook {2}queued 1 {2}sending 0 {2}stopped 0 {2}oldest /);
  });

  test('migrate is for PostgreSQL only', async () => {
    const { cli } = await import('../cli/helpers.js');
    const result = await cli('migrate', '--store', '/tmp/some.db');
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('hl7c migrate is for PostgreSQL stores');
  });
});

describe('the message commands on PostgreSQL, from any machine that reaches it', () => {
  test('messages lists and replay queues again what a node dead-lettered', async () => {
    const { cli } = await import('../cli/helpers.js');
    const { adtSpec } = await import('../serve/helpers.js');
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const {
      url,
      stores: [node],
    } = await schemaWithStores(1);
    const dir = mkdtempSync(join(tmpdir(), 'hl7c-pg-replay-'));
    writeFileSync(join(dir, 'adt.yaml'), adtSpec());
    // The spec's ${TEST_WEBHOOK_URL}, as the replaying machine's environment gives it.
    process.env.TEST_WEBHOOK_URL = 'http://127.0.0.1:9/hook';
    cleanups.push(() => delete process.env.TEST_WEBHOOK_URL);
    await node!.openForWriting('node-r');
    await node!.setChannel('adt-in', join(dir, 'adt.yaml'), 'v1', Date.now());
    const id = await node!.record(receivedEntry('DL1'));
    const [d] = (await node!.claimDeliveries({ channel: 'adt-in', destination: 'webhook', limit: 1, owner: 'node-r', leaseMs: 1000, ordered: true })).deliveries;
    await node!.finishAttempt({ ...d!, attempts: 1 }, { state: 'dead', error: 'HTTP 400', detail: 'dead-lettered' }, Date.now());

    const listed = await cli('messages', '--store', url, '--status', 'dead', '--json');
    expect(listed.stderr).toBe('');
    expect(listed.code).toBe(0);
    expect((JSON.parse(listed.stdout) as Array<{ id: number; deliveries: string }>).map((m) => [m.id, m.deliveries])).toEqual([[id, 'webhook:dead']]);
    const replayed = await cli('replay', '--store', url, '--channel', 'adt-in', '--status', 'dead');
    expect(replayed.stderr).toContain('1 message(s) replayed');
    expect(replayed.code).toBe(0);
    expect(replayed.stdout).toContain(`${id}  adt-in  accepted  queued for webhook`);
    expect((await node!.getMessage(id))!.deliveries.map((x) => x.state)).toEqual(['replayed', 'queued']);
  });
});
