import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, test } from 'vitest';
import { MllpClient } from '../../runtime/index.js';
import type { AdminToken } from '../../runtime/serve/index.js';
import { startServing } from '../../src/serve/serve.js';
import { corpusFile } from '../corpus.js';
import { memoryLogger, waitFor } from './helpers.js';

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const OPERATOR: AdminToken = { name: 'alice', token: 'op-' + randomBytes(16).toString('hex'), role: 'operator' };

/** A v2.8 channel (it reads MSH-22, which v2.8 has) archiving what it maps. */
const SPEC = (dir: string) => `channel: adt-in
hl7_version: "2.8"
source: { mllp: { host: 127.0.0.1, port: 0 } }
map:
  control_id: { path: MSH-10 }
  sender_org: { path: MSH-22.1 }
destinations:
  archive: { file: { dir: ${dir}/archive, file_name: "{control_id}.json" } }
`;

test('messages of v2.8 and v2.3 on a v2.8 channel: both accepted and archived, each named from its own MSH-12 tables, the v2.3 one counted and logged once', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hl7c-versions-serve-'));
  writeFileSync(join(dir, 'adt.yaml'), SPEC(dir));
  const { logger, lines } = memoryLogger();
  const serving = await startServing({ specs: [join(dir, 'adt.yaml')], storePath: join(dir, 'store.db'), cwd: dir, env: {}, logger, watch: false, adminPort: 0, adminTokens: [OPERATOR] });
  cleanups.push(() => serving.close());
  const client = new MllpClient({ host: '127.0.0.1', port: serving.ports()['adt-in']! });
  cleanups.push(() => client.close());
  const v28 = corpusFile('adt/fhirconv-adt-a01-v28.hl7');
  const v23 = corpusFile('adt/fhirconv-adt-a01-v23.hl7');
  expect((await client.send(v28)).code).toBe('AA');
  expect((await client.send(v23)).code).toBe('AA');
  expect((await client.send(v23.toString('latin1').replace('|599102|', '|599103|'))).code).toBe('AA');
  // What the receiver got: the v2.8 message's MSH-22, and the v2.3 messages mapped all the same.
  await waitFor(() => JSON.parse(readFileSync(join(dir, 'archive', '599103.json'), 'utf8')).control_id === '599103', 10_000, 'v2.3 messages archived');
  expect(JSON.parse(readFileSync(join(dir, 'archive', 'MSG00001.json'), 'utf8'))).toEqual({ control_id: 'MSG00001', sender_org: '22 GHH Inc.' });
  expect(JSON.parse(readFileSync(join(dir, 'archive', '599102.json'), 'utf8'))).toEqual({ control_id: '599102', sender_org: '' });

  const base = `http://127.0.0.1:${serving.adminPort}`;
  const get = async (path: string) => (await fetch(base + path, { headers: { authorization: `Bearer ${OPERATOR.token}` } })).text();
  const detail = async (controlId: string) => {
    const id = (await serving.store.listMessages({ controlId }))[0]!.id;
    const json = JSON.parse(await get(`/api/messages/${id}`)) as { field_names_version: string; segments: Array<{ name: string; fields: Array<{ position: string; name: string | null }> }> };
    const named = new Map(json.segments.flatMap((s) => s.fields.map((f) => [f.position, f.name] as const)));
    return { version: json.field_names_version, named };
  };
  const new28 = await detail('MSG00001');
  expect(new28.version).toBe('2.8');
  expect(new28.named.get('MSH-22')).toBe('Sending Responsible Organization');
  expect(new28.named.get('MSH-25')).toBe('Receiving Network Address');
  expect(new28.named.get('PID-35')).toBe('Taxonomic Classification Code');
  expect(new28.named.get('PID-40')).toBe('Patient Telecommunication Information');
  const old23 = await detail('599102');
  expect(old23.version).toBe('2.3');
  expect(old23.named.get('PID-3')).toBe('Patient ID');
  expect(old23.named.get('PID-7')).toBe('Date of Birth');
  expect(old23.named.get('PID-8')).toBe('Sex');

  const metrics = await get('/metrics');
  expect(metrics).toContain('hl7c_messages_other_version_total{channel="adt-in",version="2.3"} 2');
  expect(metrics).not.toContain('version="2.8"');
  const warned = lines.filter((l) => l.msg === 'message of another HL7 version than the spec states; processed, its paths were checked against the stated version');
  expect(warned).toEqual([expect.objectContaining({ channel: 'adt-in', version: '2.3', expected: '2.8' })]);
});
