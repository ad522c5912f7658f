import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { MllpClient } from '../../runtime/index.js';
import { startServing } from '../../src/serve/serve.js';
import { validateSpecs } from '../../src/spec/validate.js';
import { memoryLogger } from '../serve/helpers.js';

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('accept rule otherwise: filter with ack: AR', () => {
  test('a filtered message is answered AR with the reason, stored as filtered, sent nowhere', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hv2-filter-'));
    writeFileSync(join(dir, 'r.yaml'), `channel: router
source: { mllp: { host: 127.0.0.1, port: 0 } }
accept:
  - rule: no-training-patients
    if: { not: { path: PID-5.1, matches: "^ZZTEST" } }
    otherwise: filter
    ack: AR
    reason: Message type not accepted by the LRH ADT router.
  - rule: production
    if: { path: MSH-11, equals: P }
    otherwise: filter
destinations:
  out: { file: { dir: ${dir}/out } }
`);
    const { logger } = memoryLogger();
    const serving = await startServing({ specs: [join(dir, 'r.yaml')], storePath: join(dir, 'store.db'), cwd: dir, env: {}, logger, watch: false });
    cleanups.push(() => serving.close());
    const client = new MllpClient({ host: '127.0.0.1', port: serving.ports().router! });
    cleanups.push(() => client.close());
    const training = await client.send('MSH|^~\\&|STAR|LRH|R|LRH|20261125||ADT^A01|T-1|P|2.5.1\rPID|1||E1^^^LRH^MR||ZZTEST^A\r');
    expect(training.code).toBe('AR');
    expect(training.text).toBe('Message type not accepted by the LRH ADT router. (rule no-training-patients)');
    // The other filter rule keeps the default answer.
    expect((await client.send('MSH|^~\\&|STAR|LRH|R|LRH|20261125||ADT^A01|T-2|T|2.5.1\rPID|1||E1^^^LRH^MR||Doe^A\r')).code).toBe('AA');
    const messages = await serving.store.listMessages();
    expect(messages.map((m) => [m.control_id, m.status, m.ack_code, m.deliveries])).toEqual([
      ['T-1', 'filtered', 'AR', ''],
      ['T-2', 'filtered', 'AA', ''],
    ]);
  });

  test('validate: ack: goes with otherwise: filter only', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hv2-filter-v-'));
    writeFileSync(join(dir, 'r.yaml'), 'channel: r\nsource: { mllp: { port: 2999 } }\naccept:\n  - rule: a\n    if: { path: MSH-11, equals: P }\n    otherwise: reject\n    ack: AR\ndestinations:\n  out: { file: { dir: out } }\n');
    const result = await validateSpecs([join(dir, 'r.yaml')], { cwd: dir, env: {} });
    expect(result.diagnostics.map((d) => `${d.line}:${d.column} ${d.code}`)).toEqual(['7:10 spec/ack-needs-filter']);
  });
});
