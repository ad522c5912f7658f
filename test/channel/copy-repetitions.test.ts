import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { MllpClient } from '../../runtime/index.js';
import { startServing } from '../../src/serve/serve.js';
import { validateSpecs } from '../../src/spec/validate.js';
import { memoryLogger, waitFor } from '../serve/helpers.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const spec = (from: string) => `channel: c
source: { mllp: { host: 127.0.0.1, port: 0 } }
transform:
  - copy: { from: ${from}, to: PID-2 }
destinations:
  out: { file: { dir: out } }
`;

describe('copy never puts repetitions into a field that does not repeat', () => {
  test('validate: a whole repeating field copied into a non-repeating one is spec/copy-repetitions at the to:', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hl7c-copy-'));
    writeFileSync(join(dir, 'c.yaml'), spec('PID-3'));
    const r = await validateSpecs([join(dir, 'c.yaml')], { env: {} });
    expect(r.diagnostics.map((d) => `${d.line}:${d.column} ${d.code} ${d.message} | ${d.hint}`)).toEqual([
      '4:30 spec/copy-repetitions PID-3 repeats and PID-2 does not (HL7 v2.5.1): a copy would put several repetitions in it | copy one repetition, from: "PID-3[1]", or write the one a rule picks with set: {path: PID-2, identifier: patient}',
    ]);
    writeFileSync(join(dir, 'c.yaml'), spec('"PID-3[1]"'));
    expect((await validateSpecs([join(dir, 'c.yaml')], { env: {} })).diagnostics).toEqual([]);
  });

  test('serve: repetitions from a field validate cannot know (a Z-segment) are an AE, never written into PID-2; one value is copied', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hl7c-copy-'));
    writeFileSync(join(dir, 'c.yaml'), spec('ZPI-1'));
    const serving = await startServing({ specs: [join(dir, 'c.yaml')], storePath: join(dir, 'store.db'), cwd: dir, env: {}, logger: memoryLogger().logger, watch: false });
    cleanups.push(() => serving.close());
    const client = new MllpClient({ host: '127.0.0.1', port: serving.ports()['c']! });
    cleanups.push(() => client.close());
    const adt = (id: string, zpi: string) => Buffer.from(`MSH|^~\\&|EPIC|GH|HL7C|APP|20261125||ADT^A08|${id}|P|2.5.1\rPID|1||M1^^^EPI^MR\rZPI|${zpi}\r`, 'latin1');
    const refused = await client.send(adt('REPS', 'A1^^^EPI^MR~B2^^^SSA^SS'));
    expect(refused.code).toBe('AE');
    expect(refused.text).toBe('transform failed: cannot copy ZPI-1 to PID-2: it has repetitions, and PID-2 does not repeat in HL7 v2.5.1; copy one repetition (ZPI-1[1])');
    expect((await client.send(adt('ONE', 'A1^^^EPI^MR'))).code).toBe('AA');
    const files = () => (existsSync(join(dir, 'out')) ? readdirSync(join(dir, 'out')).filter((f) => f.endsWith('.hl7')) : []);
    await waitFor(() => files().length === 1, 10_000, 'one written');
    expect(files()).toEqual(['ONE.hl7']);
    expect(readFileSync(join(dir, 'out', 'ONE.hl7'), 'latin1')).toContain('\rPID|1|A1^^^EPI^MR|M1^^^EPI^MR\r');
  });
});
