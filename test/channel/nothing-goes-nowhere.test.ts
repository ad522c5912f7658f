import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { buildSpecs } from '../../src/compiler/build.js';
import { loadChannel } from '../../src/compiler/load-channel.js';
import { parseMessage, readAck, runChannel } from '../../runtime/index.js';
import { corpusFile } from '../corpus.js';

async function compile(yaml: string, files: Record<string, string> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'hl7c-unrouted-'));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  writeFileSync(join(dir, 'c.yaml'), yaml);
  const result = await buildSpecs([join(dir, 'c.yaml')], { cwd: dir, env: {} });
  expect(result.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  return { channel: loadChannel(result.files[0]!.code, result.files[0]!.fileName), diagnostics: result.diagnostics };
}

const A04 = corpusFile('adt/medplum-adt-a04-epic.hl7');
const ackOf = (b: Buffer | undefined) => readAck(parseMessage(b!));

describe('nothing accepted goes nowhere (issue 9, case 6)', () => {
  const routed = (extra = '') => `channel: adt-in
source: { mllp: { port: 0 } }
${extra}
destinations:
  inpatients:
    file: { dir: out }
    when: { path: PV1-2, equals: I }
`;

  test('a message no destination takes is an error by default: AE with the reason, status error', async () => {
    const { channel } = await compile(routed());
    const result = runChannel(channel, A04);
    expect(result.status).toBe('error');
    expect(result.outputs).toEqual({});
    expect(result.reason).toBe('not routed: no destination takes this message (inpatients needs PV1-2 = "I")');
    const ack = ackOf(result.ack);
    expect(ack.code).toBe('AE');
    expect(ack.errors).toEqual([result.reason]);
  });

  test('on_unrouted: filter acknowledges AA and records the message as filtered, with the reason', async () => {
    const { channel } = await compile(routed('on_unrouted: filter'));
    const result = runChannel(channel, A04);
    expect(result.status).toBe('filtered');
    expect(result.reason).toMatch(/^not routed: no destination takes this message/);
    expect(ackOf(result.ack).code).toBe('AA');
  });

  test('a message a destination takes is accepted as before', async () => {
    const { channel } = await compile(routed());
    const inpatient = Buffer.from(A04.toString('latin1').replace('PV1||O|', 'PV1||I|'), 'latin1');
    expect(runChannel(channel, inpatient)).toMatchObject({ status: 'accepted', ackCode: 'AA' });
  });

  const lookupSpec = (onMissing: string, table = '{ F: female, M: male }') => `channel: adt-json
source: { mllp: { port: 0 } }
map:
  sex: { path: PID-8, lookup: ${table}${onMissing} }
  class: { path: PV1-2, lookup: { file: tables/class.csv }${onMissing} }
destinations:
  out: { file: { dir: out } }
`;
  const CSV = { 'tables/class.csv': 'code,value\nI,inpatient\n' };

  test.each([
    [', on_missing: "null"', { sex: 'male', class: null }],
    ['', { sex: 'male', class: null }],
    [', on_missing: keep', { sex: 'male', class: 'O' }],
    [', default: unknown, on_missing: default', { sex: 'male', class: 'unknown' }],
  ])('lookup%s: an inline table and a CSV table', async (onMissing, expected) => {
    const { channel, diagnostics } = await compile(lookupSpec(onMissing), CSV);
    expect(runChannel(channel, A04).outputs.out).toEqual(expected);
    // Only the lookup that says nothing about missing values is warned about.
    expect(diagnostics.filter((d) => d.code === 'spec/lookup-unhandled-missing')).toHaveLength(onMissing === '' ? 2 : 0);
  });

  test('lookup on_missing: error fails the message with AE naming where the value went, never the value', async () => {
    const { channel } = await compile(lookupSpec(', on_missing: error'), CSV);
    const result = runChannel(channel, A04);
    expect(result.status).toBe('error');
    const ack = ackOf(result.ack);
    expect(ack.code).toBe('AE');
    expect(ack.errors.join(' ')).toMatch(/the value mapped to class is not in its lookup table/);
    expect(ack.errors.join(' ')).not.toMatch(/\bO\b/);
  });
});
