import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { MllpClient } from '../../runtime/index.js';
import { startServing } from '../../src/serve/serve.js';
import { cli } from '../cli/helpers.js';
import { corpusFile } from '../corpus.js';
import { sql, testSchema } from '../store/pg-helpers.js';
import { memoryLogger, startWebhook, waitFor } from './helpers.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const SPEC = `channel: adt-dedupe
source:
  mllp:
    host: 127.0.0.1
    port: 0
    dedupe: { key: [MSH-3, MSH-4, MSH-10], window: 24h }
map:
  message_id: { path: MSH-10 }
destinations:
  webhook:
    http:
      url: \${TEST_WEBHOOK_URL}
`;

/** Each store the dedupe index runs on: where serve keeps its messages, and the rows of messages as the database has them. */
const STORES = [
  {
    name: 'SQLite',
    open: (dir: string) => ({ store: join(dir, 'store.db'), rows: async () => null }),
  },
  {
    name: 'PostgreSQL',
    open: () => {
      const schema = testSchema('dedupe');
      cleanups.push(() => schema.drop());
      return { store: schema.url, rows: () => sql<{ control_id: string; status: string; dedupe_key: string | null }>(schema.name, 'SELECT control_id, status, dedupe_key FROM messages ORDER BY id') };
    },
  },
];

describe.each(STORES)('dedupe on $name', ({ open }) => {
  test('a corpus ADT sent twice is ACKed alike, the repeat stored as duplicate of the first and delivered nowhere, listed by hl7c messages --status duplicate (issue 9)', async () => {
    const hook = await startWebhook();
    cleanups.push(() => hook.close());
    const dir = mkdtempSync(join(tmpdir(), 'hl7c-dedupe-'));
    writeFileSync(join(dir, 'adt.yaml'), SPEC);
    const { logger } = memoryLogger();
    const where = open(dir);
    const serving = await startServing({ specs: [join(dir, 'adt.yaml')], storePath: where.store, cwd: dir, env: { TEST_WEBHOOK_URL: hook.url }, logger, watch: false });
    cleanups.push(() => serving.close());
    const client = new MllpClient({ host: '127.0.0.1', port: serving.ports()['adt-dedupe']!, logger });
    cleanups.push(() => client.close());

    const adt = corpusFile('adt/fhirconv-adt-a01-v23.hl7');
    const first = await client.send(adt);
    const repeat = await client.send(adt);
    expect(first.code).toBe('AA');
    expect(repeat.code).toBe(first.code);
    expect(repeat.acknowledgedControlId).toBe('599102');
    expect(repeat.acknowledgedControlId).toBe(first.acknowledgedControlId);
    // Another message from the same sender with another control id is no duplicate.
    const other = Buffer.from(adt.toString('latin1').replace('|599102|', '|599103|'), 'latin1');
    expect((await client.send(other)).code).toBe('AA');

    await waitFor(() => hook.received.length === 2, 10_000, 'two deliveries');
    await waitFor(async () => !(await serving.store.openQueues()).length, 10_000, 'queues empty');
    expect(hook.received.map((r) => r.body.message_id)).toEqual(['599102', '599103']);
    const rows = await serving.store.listMessages();
    expect(rows.map((m) => [m.control_id, m.status, m.ack_code, m.deliveries])).toEqual([
      ['599102', 'accepted', 'AA', 'webhook:sent'],
      ['599102', 'duplicate', 'AA', ''],
      ['599103', 'accepted', 'AA', 'webhook:sent'],
    ]);
    expect(rows[1]!.reason).toContain(`duplicate of message ${rows[0]!.id}`);
    // The repeat is kept as received, byte for byte.
    expect((await serving.store.getMessage(rows[1]!.id))!.message.raw).toEqual(adt);

    // In the database: one key (a hash, no patient data) on the first and its repeat, another on the next message.
    const inDatabase = await where.rows();
    if (inDatabase) {
      expect(inDatabase.map((r) => [r.control_id, r.status])).toEqual([['599102', 'accepted'], ['599102', 'duplicate'], ['599103', 'accepted']]);
      expect(inDatabase[0]!.dedupe_key).toMatch(/^[0-9a-f]{64}$/);
      expect(inDatabase[1]!.dedupe_key).toBe(inDatabase[0]!.dedupe_key);
      expect(inDatabase[2]!.dedupe_key).not.toBe(inDatabase[0]!.dedupe_key);
    }

    const listed = await cli('messages', '--store', where.store, '--status', 'duplicate', '--json');
    expect(listed.code).toBe(0);
    expect((JSON.parse(listed.stdout) as Array<{ id: number; status: string }>).map((m) => [m.id, m.status])).toEqual([[rows[1]!.id, 'duplicate']]);
  });
});
