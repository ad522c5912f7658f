import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, test } from 'vitest';
import { MllpClient } from '../../runtime/index.js';
import { startServing } from '../../src/serve/serve.js';
import { memoryLogger, startTextReceiver, waitFor } from '../serve/helpers.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A family name made to close the JSON string it lands in and add a second "mrn". */
const HOSTILE = 'MSH|^~\\&|STAR|LRH|APP|LRH|20261125083000||ADT^A01|JB-1|P|2.5.1\rPID|1||E12^^^EPI^MR||Smith","mrn":"E666^Ann \\E\\ O\'Neil||19840512|F\r';

test('a JSON body template escapes the values it inserts: a quote in a field cannot end its string or add a key', async () => {
  const app = await startTextReceiver();
  cleanups.push(() => app.close());
  const dir = mkdtempSync(join(tmpdir(), 'hl7c-json-body-'));
  writeFileSync(
    join(dir, 'hook.yaml'),
    `channel: hook
source: { mllp: { host: 127.0.0.1, port: 0 } }
destinations:
  app:
    http: { url: "${app.url}" }
    body: '{"mrn": "{{PID-3.1}}", "family": "{{PID-5.1}}", "given": "{{PID-5.2}}"}'
`,
  );
  const { logger } = memoryLogger();
  const serving = await startServing({ specs: [join(dir, 'hook.yaml')], storePath: join(dir, 'store.db'), cwd: dir, env: {}, logger, watch: false });
  cleanups.push(() => serving.close());
  const client = new MllpClient({ host: '127.0.0.1', port: serving.ports().hook! });
  cleanups.push(() => client.close());
  expect((await client.send(Buffer.from(HOSTILE, 'latin1'))).code).toBe('AA');
  await waitFor(() => app.received.length === 1, 10_000, 'the body delivered');

  expect(app.received[0]!.type).toBe('application/json');
  expect(app.received[0]!.body).toBe('{"mrn": "E12", "family": "Smith\\",\\"mrn\\":\\"E666", "given": "Ann \\\\ O\'Neil"}');
  expect(JSON.parse(app.received[0]!.body)).toEqual({ mrn: 'E12', family: 'Smith","mrn":"E666', given: "Ann \\ O'Neil" });
});
