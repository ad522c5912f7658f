import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, test } from 'vitest';
import { MllpClient } from '../../runtime/index.js';
import { buildSpecs } from '../../src/compiler/build.js';
import { startServing } from '../../src/serve/serve.js';
import { corpusFile } from '../corpus.js';
import { memoryLogger, startTextReceiver, waitFor } from '../serve/helpers.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const SECRET = 'tok-7Hq2Xv9-not-in-code';

const SPEC = `channel: notify
source: { mllp: { host: 127.0.0.1, port: 0 } }
destinations:
  pager:
    http: { url: "\${PAGER_URL}" }
    body: "token=\${PAGER_TOKEN} site=\${SITE:-main} mrn={{PID-3.1}} channel={{channel}}"
  archive:
    file: { dir: "$DIR/out", file_name: "\${SITE_PREFIX}-{{MSH-9.2}}-{control_id}.txt" }
    body: "\${PAGER_TOKEN}|{{PID-5.1}}"
`;

test('${ENV} in body templates and file names stays a reference in the generated code, and is filled when the channel runs', async () => {
  const receiver = await startTextReceiver();
  cleanups.push(() => receiver.close());
  const dir = mkdtempSync(join(tmpdir(), 'hl7c-env-body-'));
  writeFileSync(join(dir, 'notify.yaml'), SPEC.replace('$DIR', dir));
  const env = { PAGER_URL: receiver.url, PAGER_TOKEN: SECRET, SITE_PREFIX: 'east' };

  // What hl7c build writes: the references, never the secret.
  const built = await buildSpecs([join(dir, 'notify.yaml')], { cwd: dir, env });
  expect(built.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  const code = built.files[0]!.code;
  expect(code).not.toContain(SECRET);
  expect(code).not.toContain('east-');
  expect(code).toContain('${PAGER_TOKEN}');
  expect(code).toContain('${SITE_PREFIX}');

  const serving = await startServing({ specs: [join(dir, 'notify.yaml')], storePath: join(dir, 'store.db'), cwd: dir, env, logger: memoryLogger().logger, watch: false });
  cleanups.push(() => serving.close());
  const client = new MllpClient({ host: '127.0.0.1', port: serving.ports().notify! });
  cleanups.push(() => client.close());
  expect((await client.send(corpusFile('adt/fhirconv-adt-a01-v23.hl7'))).code).toBe('AA');
  await waitFor(() => receiver.received.length === 1, 10_000, 'the page');
  expect(receiver.received[0]!.body).toBe(`token=${SECRET} site=main mrn=10006579 channel=notify`);
  // A file being written is a hidden temporary one until it is whole.
  const files = () => readdirSync(join(dir, 'out')).filter((f) => !f.startsWith('.'));
  await waitFor(() => files().length === 1, 10_000, 'the archive file');
  expect(files()).toEqual(['east-A01-599102.txt']);
  expect(readFileSync(join(dir, 'out', 'east-A01-599102.txt'), 'utf8')).toBe(`${SECRET}|DUCK`);
});
