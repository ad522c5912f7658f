import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { cli } from './helpers.js';

/** A spec whose one test states `output`: the test passes only when the channel's output holds it. */
const spec = (output: string) => `channel: adt-out
source: { mllp: { port: 2575 } }
accept:
  - rule: adt-only
    if: { message_type: [ADT^A01] }
    otherwise: reject
    reason: ADT A01 only
map:
  family: { path: PID-5.1 }
  birth_date: { path: PID-7, transform: [date] }
destinations:
  out: { file: { dir: out } }
tests:
  - name: the admit
    input: |
      MSH|^~\\&|ADT|HOSP|APP|FAC|20260101120000||ADT^A01|C1|P|2.5.1
      PID|1||E1^^^EPI^MR||DOE^JANE||19800102|F
    expect:
      output: ${output}
  - name: an order is refused, so it has no output
    input: |
      MSH|^~\\&|ADT|HOSP|APP|FAC|20260101120000||ORM^O01|C2|P|2.5.1
      PID|1||E1^^^EPI^MR||DOE^JANE||19800102|F
    expect:
      output: { family: DOE }
`;

const run = async (output: string) => {
  const dir = mkdtempSync(join(tmpdir(), 'hl7c-test-cmd-'));
  writeFileSync(join(dir, 'adt.yaml'), spec(output));
  return cli('test', join(dir, 'adt.yaml'));
};

test('hl7c test compares expect.output with what the channel outputs, and an output expected of a refused message fails', async () => {
  const right = await run('{ family: DOE, birth_date: "1980-01-02" }');
  expect(right.stdout).toContain('✓ the admit');
  expect(right.stdout).toMatch(/✗ an order is refused, so it has no output\n\s+output: expected \{"family":"DOE"\}, but the message was rejected \(ADT A01 only/);
  expect(right.code).toBe(1);

  const wrong = await run('{ family: NOTDOE, birth_date: "1999-99-99" }');
  expect(wrong.code).toBe(1);
  expect(wrong.stdout).toContain('output.family: expected "NOTDOE", got "DOE"');
  expect(wrong.stdout).toContain('output.birth_date: expected "1999-99-99", got "1980-01-02"');
});

/** An HL7 forward with two destinations: what each receives, and the whole message, as tests state them. */
const forward = (expectations: string) => `channel: adt-forward
source: { mllp: { port: 2576 } }
transform:
  - set: { path: MSH-5, value: LAB }
  - set: { path: PID-5.1, value: "O'NEIL^JR" }
destinations:
  lab: { mllp: { host: 127.0.0.1, port: 6663 } }
  inpatients:
    file: { dir: out }
    when: { path: PV1-2, equals: I }
tests:
  - name: the outpatient
    input: |
      MSH|^~\\&|EPIC|GOOD|HL7C|HERE|20260101120000||ADT^A04^ADT_A01|C1|P|2.5.1
      PID|1||E1^^^EPI^MR||DOE^JANE
      PV1|1|O
    expect:
${expectations}
`;

test('hl7c test: expect.message (all but MSH-7/MSH-10), expect.route and expect.destinations compare what goes on the wire', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hl7c-test-wire-'));
  const runWith = async (expectations: string) => {
    writeFileSync(join(dir, 'fwd.yaml'), forward(expectations));
    return cli('test', join(dir, 'fwd.yaml'));
  };
  // Another MSH-7 and MSH-10 than the output's: those two are new for every message, so not compared.
  const message = `      message: |
        MSH|^~\\&|EPIC|GOOD|LAB|HERE|20991231000000||ADT^A04^ADT_A01|OTHER-ID|P|2.5.1
        PID|1||E1^^^EPI^MR||O'NEIL\\S\\JR^JANE
        PV1|1|O`;
  const right = await runWith(`${message}
      route: [lab]
      destinations:
        inpatients: null
        lab: |
          MSH|^~\\&|EPIC|GOOD|LAB|HERE|20260101120000||ADT^A04^ADT_A01|C1|P|2.5.1
          PID|1||E1^^^EPI^MR||O'NEIL\\S\\JR^JANE
          PV1|1|O`);
  expect(right.stdout).toMatch(/^1 passed, 0 failed$/m);
  expect(right.code).toBe(0);

  // The literal was escaped on the wire: an expectation of the unescaped structure fails, as does a wrong route or destination.
  const wrong = await runWith(`      message: |
        MSH|^~\\&|EPIC|GOOD|LAB|HERE|20260101120000||ADT^A04^ADT_A01|C1|P|2.5.1
        PID|1||E1^^^EPI^MR||O'NEIL^JR^JANE
        PV1|1|O
      route: [lab, inpatients]
      destinations:
        lab: null
        inpatients: { anything: true }`);
  expect(wrong.code).toBe(1);
  expect(wrong.stdout).toContain(`message segment 2: expected "PID|1||E1^^^EPI^MR||O'NEIL^JR^JANE", got "PID|1||E1^^^EPI^MR||O'NEIL\\\\S\\\\JR^JANE"`);
  expect(wrong.stdout).toContain('route: expected ["lab","inpatients"], got ["lab"]');
  expect(wrong.stdout).toContain('destinations.lab: expected nothing sent there, but the message goes there');
  expect(wrong.stdout).toContain('destinations.inpatients: expected output, but the message does not go there (route: ["lab"])');
  expect(wrong.stdout).toMatch(/^0 passed, 1 failed$/m);
});

test('hl7c test: expect.message is exact: spaces at the end of a segment on the wire fail it, with where and what differs; the YAML block\'s final line end and a final CR are allowed', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hl7c-test-exact-'));
  const spec = (transform: string, expected: string) => `channel: fwd
source: { mllp: { port: 6664 } }
${transform}destinations:
  lab: { mllp: { host: 127.0.0.1, port: 6665 } }
tests:
  - name: forwarded as is
    input: |
      MSH|^~\\&|EPIC|GOOD|LAB|HERE|20260101120000||ADT^A04^ADT_A01|C1|P|2.5.1
      PID|1||E1^^^EPI^MR||DOE^JANE||19840512|M
    expect:
      message: ${expected}
`;
  const run = async (transform: string, expected: string) => {
    writeFileSync(join(dir, 'fwd.yaml'), spec(transform, expected));
    return cli('test', join(dir, 'fwd.yaml'));
  };
  const block = '|\n        MSH|^~\\&|EPIC|GOOD|LAB|HERE|20260101120000||ADT^A04^ADT_A01|C1|P|2.5.1\n        PID|1||E1^^^EPI^MR||DOE^JANE||19840512|F\n';
  const spaces = await run('transform:\n  - set: { path: PID-8, value: "F  " }\n', block);
  expect(spaces.code).toBe(1);
  expect(spaces.stdout).toContain(
    'message segment 2: expected "PID|1||E1^^^EPI^MR||DOE^JANE||19840512|F", got "PID|1||E1^^^EPI^MR||DOE^JANE||19840512|F  "\n      first difference at character 41: expected the end of the segment, got "  " (white space)\n',
  );
  const exact = await run('transform:\n  - set: { path: PID-8, value: F }\n', block);
  expect(exact.stdout).toMatch(/^1 passed, 0 failed$/m);
  // Spaces the expectation has and the wire does not fail too (a YAML block keeps them).
  const expectedSpaces = await run('transform:\n  - set: { path: PID-8, value: F }\n', block.replace('|F\n', '|F \n'));
  expect(expectedSpaces.stdout).toContain('first difference at character 41: expected " ", got the end of the segment (white space)');
  // A quoted message with CR segment ends, the last one included.
  const quoted = await run('transform:\n  - set: { path: PID-8, value: F }\n', '"MSH|^~\\\\&|EPIC|GOOD|LAB|HERE|20260101120000||ADT^A04^ADT_A01|C1|P|2.5.1\\rPID|1||E1^^^EPI^MR||DOE^JANE||19840512|F\\r"');
  expect(quoted.stdout).toMatch(/^1 passed, 0 failed$/m);
});
