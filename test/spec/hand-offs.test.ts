import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { validateSpecs } from '../../src/spec/validate.js';

async function validate(specs: Record<string, string>) {
  const dir = mkdtempSync(join(tmpdir(), 'hl7c-hand-offs-'));
  for (const [name, text] of Object.entries(specs)) writeFileSync(join(dir, name), text);
  return validateSpecs(Object.keys(specs).map((n) => join(dir, n)), { cwd: dir, env: {} });
}

const mllpIn = (name: string, port: number, rest: string) => `channel: ${name}\nsource:\n  mllp: { port: ${port} }\n${rest}`;
const BUILD = `build:
  message_type: ORU^R01
  version: 2.5.1
  segments:
    - segment: PID
      fields: { PID-3.1: { json: mrn } }
`;

describe('typed hand-offs between channels', () => {
  test('JSON handed to a channel that takes HL7, and HL7 to one that takes JSON, are errors at the destination', async () => {
    const result = await validate({
      'mapper.yaml': mllpIn('mapper', 2601, 'map:\n  mrn: { path: PID-3.1 }\ndestinations:\n  next:\n    channel: forwarder\n'),
      'forwarder.yaml': mllpIn('forwarder', 2602, 'destinations:\n  app:\n    channel: writer\n'),
      'writer.yaml': `channel: writer\nsource:\n  http: { port: 2603, path: /in }\n${BUILD}destinations:\n  ehr:\n    mllp: { host: ehr.local, port: 2575 }\n`,
    });
    expect(result.ok).toBe(false);
    expect(result.diagnostics.map((d) => `${d.file}:${d.line}:${d.column} ${d.code}`)).toEqual(['forwarder.yaml:6:14 spec/hand-off-kind', 'mapper.yaml:8:14 spec/hand-off-kind']);
    const [hl7ToJson, jsonToHl7] = result.diagnostics;
    expect(jsonToHl7!.message).toBe('destination next hands JSON (this channel maps) to channel forwarder, which takes HL7 (forwarder.yaml)');
    expect(hl7ToJson!.message).toBe('destination app hands HL7 (this channel forwards HL7) to channel writer, which takes JSON (writer.yaml)');
    expect(hl7ToJson!.hint).toMatch(/http source \(or input: json\) takes JSON/);
  });

  test('HL7 to HL7 and JSON (built into HL7) to HL7 hand-offs validate', async () => {
    const result = await validate({
      'front.yaml': mllpIn('front', 2611, 'destinations:\n  next:\n    channel: back\n'),
      'back.yaml': mllpIn('back', 2612, 'map:\n  mrn: { path: PID-3.1 }\ndestinations:\n  out:\n    file: { dir: out }\n'),
      'writer.yaml': `channel: writer\nsource:\n  http: { port: 2613, path: /in }\n${BUILD}destinations:\n  next:\n    channel: back\n  ehr:\n    mllp: { host: ehr.local, port: 2575 }\n`,
    });
    expect(result.diagnostics).toEqual([]);
  });

  test('a loop among channels is spec/channel-cycle, naming each hop with file:line:col, reported once', async () => {
    const result = await validate({
      'a.yaml': mllpIn('a', 2621, 'destinations:\n  archive:\n    file: { dir: out }\n  to-b:\n    channel: b\n'),
      'b.yaml': mllpIn('b', 2622, 'destinations:\n  to-c:\n    channel: c\n'),
      'c.yaml': mllpIn('c', 2623, 'destinations:\n  back:\n    when: { path: MSH-11, equals: P }\n    channel: a\n'),
      'd.yaml': mllpIn('d', 2624, 'destinations:\n  into-loop:\n    channel: b\n'),
    });
    const cycles = result.diagnostics.filter((d) => d.code === 'spec/channel-cycle');
    expect(cycles).toHaveLength(1);
    expect(cycles[0]).toMatchObject({ file: 'a.yaml', line: 8, column: 14, severity: 'error' });
    expect(cycles[0]!.message).toBe('channels hand messages round in a loop: a → b (destination to-b, a.yaml:8:14), b → c (destination to-c, b.yaml:6:14), c → a (destination back, c.yaml:7:14)');
    expect(result.ok).toBe(false);
  });
});
