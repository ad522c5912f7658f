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

async function serve(spec: string) {
  const hook = await startWebhook();
  cleanups.push(() => hook.close());
  const dir = mkdtempSync(join(tmpdir(), 'hl7c-identifiers-'));
  writeFileSync(join(dir, 'c.yaml'), `channel: c\nsource: { mllp: { host: 127.0.0.1, port: 0 } }\n${spec}destinations:\n  webhook:\n    http: { url: "\${TEST_WEBHOOK_URL}" }\n`);
  const serving = await startServing({ specs: [join(dir, 'c.yaml')], storePath: join(dir, 'store.db'), cwd: dir, env: { TEST_WEBHOOK_URL: hook.url }, logger: memoryLogger().logger, watch: false });
  cleanups.push(() => serving.close());
  const client = new MllpClient({ host: '127.0.0.1', port: serving.ports()['c']! });
  cleanups.push(() => client.close());
  return { hook, client, dir };
}

const errOf = (raw: Buffer) => raw.toString('latin1').split('\r').find((l) => l.startsWith('ERR|'));

describe('order identifiers never pick one of two different numbers', () => {
  test('ORC-3 and OBR-3 (or ORC-2 and OBR-2) valued with different numbers are an AE naming both; the same number in both is taken', async () => {
    const { hook, client } = await serve('identifiers:\n  order: { kind: order, required: true }\nmap:\n  order: { identifier: order }\n');
    const orm = (id: string, orc: string, obr: string) => Buffer.from(`MSH|^~\\&|EPIC|GH|LAB|GH|20261125||ORM^O01|${id}|P|2.5.1\rPID|1||M1^^^EPI^MR\rORC|NW|${orc}\rOBR|1|${obr}\r`, 'latin1');
    const filler = await client.send(orm('F', 'PL1^EPIC|FI1^LAB', 'PL1^EPIC|FI2^LAB'));
    expect(filler.code).toBe('AE');
    expect(filler.text).toBe('identifier order: ORC-3 and OBR-3 are both valued and name different entities; which one is meant is not known');
    expect(errOf(filler.raw!)).toMatch(/^ERR\|\|ORC\^1\^3\^1\|101\^/);
    const placer = await client.send(orm('P', 'PL1^EPIC|FI1^LAB', 'PL2^EPIC|FI1^LAB'));
    expect(placer.code).toBe('AE');
    expect(placer.text).toContain('ORC-2 and OBR-2 are both valued and name different entities');
    expect((await client.send(orm('SAME', 'PL1^EPIC|FI1^LAB', 'PL1^EPIC|FI1'))).code).toBe('AA');
    expect((await client.send(orm('ONLY-ORC', 'PL1^EPIC|FI1^LAB', ''))).code).toBe('AA');
    await waitFor(() => hook.received.length === 2, 10_000, 'two delivered');
    expect(hook.received.map((r) => r.body.order)).toEqual(['FI1', 'FI1']);
  });
});

describe('an assigning authority named by OID', () => {
  test('assigning_authority matches CX.4.2 (universal id) as well as CX.4.1: validate takes it and serve selects the OID-only repetition', async () => {
    const spec = 'identifiers:\n  patient: { kind: patient, assigning_authority: 1.2.840.114398.1.100, type_code: MR, required: true }\nmap:\n  mrn: { identifier: patient }\n  mrn_from: { identifier: patient.assigning_authority }\n';
    const { hook, client, dir } = await serve(spec);
    const { validateSpecs } = await import('../../src/spec/validate.js');
    const validated = await validateSpecs([join(dir, 'c.yaml')], { env: { TEST_WEBHOOK_URL: 'http://127.0.0.1:1/' } });
    expect(validated.diagnostics).toEqual([]);
    const adt = (id: string, pid3: string) => Buffer.from(`MSH|^~\\&|EPIC|GH|HL7C|APP|20261125||ADT^A08|${id}|P|2.5.1\rPID|1||${pid3}\r`, 'latin1');
    expect((await client.send(adt('OID', '900^^^SSA^SS~E77^^^&1.2.840.114398.1.100&ISO^MR'))).code).toBe('AA');
    expect((await client.send(adt('BOTH', 'E78^^^MIE&1.2.840.114398.1.100&ISO^MR'))).code).toBe('AA');
    const other = await client.send(adt('OTHER', 'E79^^^&1.2.840.114398.1.999&ISO^MR'));
    expect(other.code).toBe('AE');
    expect(other.text).toContain('no repetition of PID-3 has assigning authority (CX.4) 1.2.840.114398.1.100');
    await waitFor(() => hook.received.length === 2, 10_000, 'two delivered');
    expect(hook.received.map((r) => [r.body.mrn, r.body.mrn_from])).toEqual([['E77', '1.2.840.114398.1.100'], ['E78', '1.2.840.114398.1.100']]);
  });
});
