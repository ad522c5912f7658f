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
