import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, test } from 'vitest';
import { MllpClient } from '../../runtime/index.js';
import { startServing } from '../../src/serve/serve.js';
import { memoryLogger, waitFor } from '../serve/helpers.js';

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

// hl7c's groups are v2.5.1's, which have no PRT: a v2.8 ORU's PRT after the first OBX, like a
// Z-segment, belongs to that result. The second result has neither and must not get the first's.
test("inside each: OBX, a segment the structure does not know (v2.8's PRT, a Z-segment) is the result's own, never another result's", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hv2-unknown-seg-'));
  writeFileSync(join(dir, 'results.yaml'), `channel: results
hl7_version: "2.8"
source: { mllp: { host: 127.0.0.1, port: 0 } }
map:
  results:
    each: OBX
    fields:
      value: { path: OBX-5 }
      performer: { path: PRT-5.1 }
      flag: { path: ZOB-1 }
destinations:
  out: { file: { dir: ${dir}/out } }
`);
  const { logger } = memoryLogger();
  const serving = await startServing({ specs: [join(dir, 'results.yaml')], storePath: join(dir, 'store.db'), cwd: dir, env: {}, logger, watch: false });
  cleanups.push(() => serving.close());
  const client = new MllpClient({ host: '127.0.0.1', port: serving.ports().results! });
  cleanups.push(() => client.close());
  const oru = 'MSH|^~\\&|LAB|LRH|HL7C|APP|20261125||ORU^R01^ORU_R01|PRT-1|P|2.8\rPID|1||E1^^^LRH^MR\rOBR|1||A1|K^Potassium\r' +
    'OBX|1|NM|K||6.9\rPRT||AD||RO|DOC1^Smith\rZOB|critical\rOBX|2|NM|NA||140\rOBX|3|NM|CL||101\rZOB|repeat\r';
  expect((await client.send(oru)).code).toBe('AA');
  await waitFor(() => existsSync(join(dir, 'out', 'PRT-1.json')), 10_000, 'the mapped results');
  expect(JSON.parse(readFileSync(join(dir, 'out', 'PRT-1.json'), 'utf8'))).toEqual({
    results: [
      { value: '6.9', performer: 'DOC1', flag: 'critical' },
      { value: '140', performer: '', flag: '' },
      { value: '101', performer: '', flag: 'repeat' },
    ],
  });
});
