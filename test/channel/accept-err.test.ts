import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { MllpClient } from '../../runtime/index.js';
import { startServing } from '../../src/serve/serve.js';
import { memoryLogger, startWebhook } from '../serve/helpers.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const SPEC = `channel: adt
source: { mllp: { host: 127.0.0.1, port: 0 } }
accept:
  - rule: adt-only
    if: { message_type: [ADT^A01] }
    otherwise: reject
    reason: ADT A01 only
  - rule: named
    if: { path: PID-5.1, exists: true }
    otherwise: reject
    reason: a patient needs a family name
  - rule: production
    if: { path: MSH-11, equals: P }
    otherwise: reject
    reason: production messages only
destinations:
  webhook:
    http: { url: "\${TEST_WEBHOOK_URL}" }
`;

const adt = (type: string, processing: string, name: string) => Buffer.from(`MSH|^~\\&|EPIC|GH|HL7C|APP|20261125||${type}|C1|${processing}|2.5.1\rPID|1||M1^^^EPI^MR||${name}\r`, 'latin1');

async function serve() {
  const hook = await startWebhook();
  cleanups.push(() => hook.close());
  const dir = mkdtempSync(join(tmpdir(), 'hl7c-accept-err-'));
  writeFileSync(join(dir, 'a.yaml'), SPEC);
  const serving = await startServing({ specs: [join(dir, 'a.yaml')], storePath: join(dir, 'store.db'), cwd: dir, env: { TEST_WEBHOOK_URL: hook.url }, logger: memoryLogger().logger, watch: false });
  cleanups.push(() => serving.close());
  const client = new MllpClient({ host: '127.0.0.1', port: serving.ports()['adt']! });
  cleanups.push(() => client.close());
  return { client };
}

describe('a message an accept rule rejects', () => {
  test('is answered AR with ERR at the field the rule reads and the table 0357 code for it', async () => {
    const { client } = await serve();
    const err = async (message: Buffer) => {
      const ack = await client.send(message);
      expect(ack.code).toBe('AR');
      return ack.raw!.toString('latin1').split('\r').find((l) => l.startsWith('ERR|'))!;
    };
    expect(await err(adt('ORU^R01', 'P', 'DOE'))).toBe('ERR||MSH^1^9^1|200^Unsupported message type^HL70357|E||||ADT A01 only (rule adt-only)');
    expect(await err(adt('ADT^A01', 'P', ''))).toBe('ERR||PID^1^5^1^1|199^Other HL7 error^HL70357|E||||a patient needs a family name (rule named)');
    expect(await err(adt('ADT^A01', 'T', 'DOE'))).toBe('ERR||MSH^1^11^1|202^Unsupported processing id^HL70357|E||||production messages only (rule production)');
  });
});
