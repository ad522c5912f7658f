import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, test } from 'vitest';
import { MllpClient } from '../../runtime/index.js';
import { startServing } from '../../src/serve/serve.js';
import { cli } from '../cli/helpers.js';
import { corpusFile } from '../corpus.js';
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

test('dedupe: a corpus ADT sent twice is ACKed alike, the repeat stored as duplicate of the first and delivered nowhere, listed by hl7c messages --status duplicate (issue 9)', async () => {
  const hook = await startWebhook();
  cleanups.push(() => hook.close());
  const dir = mkdtempSync(join(tmpdir(), 'hl7c-dedupe-'));
  writeFileSync(join(dir, 'adt.yaml'), SPEC);
  const { logger } = memoryLogger();
  const serving = await startServing({ specs: [join(dir, 'adt.yaml')], storePath: join(dir, 'store.db'), cwd: dir, env: { TEST_WEBHOOK_URL: hook.url }, logger, watch: false });
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

  const listed = await cli('messages', '--store', join(dir, 'store.db'), '--status', 'duplicate', '--json');
  expect(listed.code).toBe(0);
  expect((JSON.parse(listed.stdout) as Array<{ id: number; status: string }>).map((m) => [m.id, m.status])).toEqual([[rows[1]!.id, 'duplicate']]);
});
