import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { MllpClient } from '../../runtime/index.js';
import { startServing } from '../../src/serve/serve.js';
import { memoryLogger, startWebhook, waitFor } from '../serve/helpers.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const SPEC = `channel: results
source: { mllp: { host: 127.0.0.1, port: 0 } }
map:
  value: { path: OBX-5, transform: [number] }
destinations:
  webhook:
    http: { url: "\${TEST_WEBHOOK_URL}" }
`;

const oru = (id: string, value: string) => Buffer.from(`MSH|^~\\&|LAB|GH|HL7C|APP|20261125||ORU^R01|${id}|P|2.5.1\rPID|1||M1^^^EPI^MR\rOBR|1\rOBX|1|NM|2823-3^Potassium^LN||${value}\r`, 'latin1');

async function serve() {
  const hook = await startWebhook();
  cleanups.push(() => hook.close());
  const dir = mkdtempSync(join(tmpdir(), 'hl7c-number-'));
  writeFileSync(join(dir, 'r.yaml'), SPEC);
  const serving = await startServing({ specs: [join(dir, 'r.yaml')], storePath: join(dir, 'store.db'), cwd: dir, env: { TEST_WEBHOOK_URL: hook.url }, logger: memoryLogger().logger, watch: false });
  cleanups.push(() => serving.close());
  const client = new MllpClient({ host: '127.0.0.1', port: serving.ports()['results']! });
  cleanups.push(() => client.close());
  return { hook, client };
}

describe('the number transform never turns a value into null', () => {
  test('a value that is not HL7 NM is an AE naming the field with ERR code 102; NM values, empty and "" map as before', async () => {
    const { hook, client } = await serve();
    for (const [id, value] of [['MRN', 'ZEBRA99887766'], ['COMMA', '1,234.50'], ['HEX', '0x1F'], ['HUGE', '1e400'], ['EXP', '1e3'], ['INF', 'Infinity']] as const) {
      const ack = await client.send(oru(id, value));
      expect(ack.code, id).toBe('AE');
      expect(ack.text, id).toBe('mapping failed: OBX-5 (mapped to value) is not an HL7 number (NM: an optional sign, digits, an optional decimal point)');
      const err = ack.raw!.toString('latin1').split('\r').find((l) => l.startsWith('ERR|'))!;
      expect(err, id).toMatch(/^ERR\|\|OBX\^1\^5\^1\|102\^Data type error\^HL70357\|E\|/);
      expect(err, id).not.toContain(value);
    }
    const good = [['NEG', '-4.5', -4.5], ['PLUS', '+12', 12], ['DOT', '.5', 0.5], ['TRAIL', '7.', 7], ['EMPTY', '', ''], ['NULL', '""', null]] as const;
    for (const [id, value] of good) expect((await client.send(oru(id, value))).code, id).toBe('AA');
    await waitFor(() => hook.received.length === good.length, 10_000, 'the good messages delivered');
    expect(hook.received.map((r) => r.body.value)).toEqual(good.map(([, , v]) => v));
  });
});
