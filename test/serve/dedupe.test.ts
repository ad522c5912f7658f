import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { MllpClient } from '../../runtime/index.js';
import { compileChannels, startServing } from '../../src/serve/serve.js';
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

describe('a repeat is answered in the ACK mode it asks for, with the first copy\'s outcome', () => {
  const adt = corpusFile('adt/fhirconv-adt-a01-v23.hl7').toString('latin1');
  // The same message (same MSH-3, MSH-4, MSH-10) with MSH-15/16 asking for enhanced mode.
  const enhanced = (msh15: string, msh16: string) => Buffer.from(adt.replace('|P|2.3||| \r', `|P|2.3|||${msh15}|${msh16}\r`), 'latin1');

  async function serveDedupe(spec: string) {
    const dir = mkdtempSync(join(tmpdir(), 'hl7c-dedupe-mode-'));
    writeFileSync(join(dir, 'adt.yaml'), spec.replaceAll('$DIR', dir));
    const serving = await startServing({ specs: [join(dir, 'adt.yaml')], storePath: join(dir, 'store.db'), cwd: dir, env: {}, logger: memoryLogger().logger, watch: false });
    cleanups.push(() => serving.close());
    const client = new MllpClient({ host: '127.0.0.1', port: serving.ports()['adt-dedupe']! });
    cleanups.push(() => client.close());
    return { dir, serving, client };
  }
  const FILE_SPEC = `channel: adt-dedupe
source:
  mllp: { host: 127.0.0.1, port: 0, ack_mode: as_requested, dedupe: { key: [MSH-3, MSH-4, MSH-10], window: 24h } }
destinations:
  archive: { file: { dir: $DIR/out } }
`;

  test('first in original mode (AA), repeats in enhanced mode get CA (and AA when MSH-16 asks), and the reverse', async () => {
    const { serving, client } = await serveDedupe(FILE_SPEC);
    expect((await client.send(Buffer.from(adt, 'latin1'))).code).toBe('AA');
    const both = await client.send(enhanced('AL', 'AL'));
    expect([both.accept?.code, both.code]).toEqual(['CA', 'AA']);
    expect(both.acknowledgedControlId).toBe('599102');
    expect((await client.send(enhanced('AL', 'NE'))).code).toBe('CA');

    const other = adt.replace('|599102|', '|599104|');
    const first = await client.send(Buffer.from(other.replace('|P|2.3||| \r', '|P|2.3|||AL|NE\r'), 'latin1'));
    expect(first.code).toBe('CA');
    expect((await client.send(Buffer.from(other, 'latin1'))).code).toBe('AA');

    const rows = await serving.store.listMessages();
    expect(rows.map((m) => [m.control_id, m.status, m.ack_code])).toEqual([
      ['599102', 'accepted', 'AA'],
      ['599102', 'duplicate', 'CA AA'],
      ['599102', 'duplicate', 'CA'],
      ['599104', 'accepted', 'CA'],
      ['599104', 'duplicate', 'AA'],
    ]);
  });

  test('the spec changed since the first was rejected: the repeat gets the first\'s AR (after CA in enhanced mode), not what this run would say', async () => {
    const rejecting = FILE_SPEC.replace('destinations:', 'accept:\n  - rule: results-only\n    if: { message_type: [ORU] }\n    otherwise: reject\n    reason: results only\ndestinations:');
    const { dir, serving, client } = await serveDedupe(rejecting);
    const first = await client.send(Buffer.from(adt, 'latin1'));
    expect(first.code).toBe('AR');
    // The rule is gone now; the repeat would be accepted if it were new.
    writeFileSync(join(dir, 'adt.yaml'), FILE_SPEC.replaceAll('$DIR', dir));
    const { channels } = await compileChannels([join(dir, 'adt.yaml')], dir, {});
    await serving.host.apply(channels!);
    const repeat = await client.send(enhanced('AL', 'AL'));
    expect([repeat.accept?.code, repeat.code]).toEqual(['CA', 'AR']);
    expect(repeat.text).toBe('results only (rule results-only)');
    expect((await client.send(Buffer.from(adt, 'latin1'))).code).toBe('AR');
    const rows = await serving.store.listMessages();
    expect(rows.map((m) => [m.status, m.ack_code, m.deliveries])).toEqual([
      ['rejected', 'AR', ''],
      ['duplicate', 'CA AR', ''],
      ['duplicate', 'AR', ''],
    ]);
  });
});

describe('a control id reused for another message (tester finding: dropped as a duplicate)', () => {
  test('same MSH-3/4/10 with other content is processed and delivered, with a warning and a note; a retransmission with a new MSH-7 is still a duplicate', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hl7c-dedupe-reuse-'));
    writeFileSync(join(dir, 'adt.yaml'), `channel: adt-dedupe
source:
  mllp: { host: 127.0.0.1, port: 0, dedupe: { key: [MSH-3, MSH-4, MSH-10], window: 24h } }
destinations:
  archive: { file: { dir: ${dir}/out, content: raw } }
`);
    const memory = memoryLogger();
    const serving = await startServing({ specs: [join(dir, 'adt.yaml')], storePath: join(dir, 'store.db'), cwd: dir, env: {}, logger: memory.logger, watch: false });
    cleanups.push(() => serving.close());
    const client = new MllpClient({ host: '127.0.0.1', port: serving.ports()['adt-dedupe']! });
    cleanups.push(() => client.close());

    const a01 = 'MSH|^~\\&|EPIC|GH|H|A|20260101080000||ADT^A01|DUP1|P|2.5.1\rPID|1||E1^^^EPI^MR||ALPHA^ANN\r';
    const a08 = 'MSH|^~\\&|EPIC|GH|H|A|20260101090000||ADT^A08|DUP1|P|2.5.1\rPID|1||E2^^^EPI^MR||BETA^BOB\r';
    const again = a01.replace('20260101080000', '20260101080500');
    for (const m of [a01, a08, again]) expect((await client.send(m)).code).toBe('AA');

    const rows = await serving.store.listMessages();
    expect(rows.map((m) => [m.control_id, m.message_type, m.status, m.deliveries])).toEqual([
      ['DUP1', 'ADT^A01', 'accepted', expect.stringMatching(/^archive:/)],
      ['DUP1', 'ADT^A08', 'accepted', expect.stringMatching(/^archive:/)],
      ['DUP1', 'ADT^A01', 'duplicate', ''],
    ]);
    expect(rows[1]!.reason).toBe(`reuses the dedupe key (MSH-3, MSH-4, MSH-10) of message ${rows[0]!.id} with other content: processed as a new message`);
    expect(rows[2]!.reason).toContain(`duplicate of message ${rows[0]!.id}`);
    // Read whole files only: the destination writes under a hidden temporary name, then renames.
    const written = () => (existsSync(join(dir, 'out')) ? readdirSync(join(dir, 'out')).filter((f) => !f.startsWith('.')).map((f) => readFileSync(join(dir, 'out', f), 'latin1')) : []);
    await waitFor(() => written().length === 2 && written().some((t) => t.includes('BETA^BOB')), 10_000, 'both messages written');
    const warned = memory.lines.filter((l) => String(l.msg).includes('came with another message'));
    expect(warned).toHaveLength(1);
    expect(warned[0]).toMatchObject({ channel: 'adt-dedupe', controlId: 'DUP1', first: rows[0]!.id });
    expect(JSON.stringify(warned[0])).not.toMatch(/BETA|ALPHA|E2\^/);
  });
});
