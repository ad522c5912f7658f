import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { validateSpecs } from '../../src/spec/validate.js';
import { cli } from '../cli/helpers.js';

const SPEC = `channel: conveniences
source: { mllp: { port: 0 } }
identifiers:
  patient: { kind: patient, assigning_authority: [LRH, LRHOLD], type_code: MR, required: true }
map:
  mrn: { identifier: patient }
  mrn_from: { identifier: patient.assigning_authority }
  test_code: { path: OBX-3, coded: code }
  test_name: { path: OBX-3, coded: text }
  test_system: { path: OBX-3, coded: system }
  born: { path: PID-7, transform: [datetime] }
  born_us: { path: PID-7, format: "MM/DD/YYYY" }
  born_at: { path: PID-7, format: "YYYY-MM-DD HH:mm" }
  observed: { path: OBX-14, format: "DD.MM.YYYY HH:mm" }
destinations:
  out: { file: { dir: out } }
tests:
  - name: the first authority in the list wins, coded components, a date stays a date
    input: "MSH|^~\\\\&|A|B|C|D|20261125||ORU^R01|C-1|P|2.5.1\\rPID|1||OLD1^^^LRHOLD^MR~NEW1^^^LRH^MR||Doe||19840512\\rOBX|1|NM|2823-3^Potassium^LN||6.9|||||||||202611250830\\r"
    expect:
      ack: AA
      output: { mrn: NEW1, mrn_from: LRH, test_code: 2823-3, test_name: Potassium, test_system: LN, born: "1984-05-12", born_us: 05/12/1984, born_at: null, observed: 25.11.2026 08:30 }
  - name: the second authority when the first is absent
    input: "MSH|^~\\\\&|A|B|C|D|20261125||ORU^R01|C-2|P|2.5.1\\rPID|1||X^^^SSA^SS~OLD1^^^LRHOLD^MR\\r"
    expect: { ack: AA, output: { mrn: OLD1, mrn_from: LRHOLD } }
  - name: two of the preferred authority are ambiguous, never a guess
    input: "MSH|^~\\\\&|A|B|C|D|20261125||ORU^R01|C-3|P|2.5.1\\rPID|1||A1^^^LRH^MR~A2^^^LRH^MR~OLD1^^^LRHOLD^MR\\r"
    expect: { ack: AE, reason: "2 repetitions of PID-3 match assigning authority (CX.4) LRH" }
`;

describe('mapping conveniences', () => {
  test('several assigning authorities in order of preference, coded: code | text | system, datetime never invents a time', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hv2-conv-'));
    writeFileSync(join(dir, 'c.yaml'), SPEC);
    const validated = await cli('validate', join(dir, 'c.yaml'));
    expect(validated.stderr).toMatch(/0 error\(s\), 0 warning\(s\)/);
    const r = await cli('test', join(dir, 'c.yaml'));
    expect(r.stdout).toMatch(/3 passed, 0 failed/);
  });

  test('build: MSH fields from the JSON when given (MSH-10 the app\'s id), else what build writes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hv2-msh-'));
    writeFileSync(join(dir, 'b.yaml'), `channel: b
source: { http: { host: 127.0.0.1, port: 0, path: /in } }
build:
  message_type: ADT^A08
  version: "2.5.1"
  sending_application: APP
  segments:
    - segment: MSH
      fields: { MSH-10: { json: message_id }, MSH-4: { json: facility } }
    - segment: PID
      fields: { PID-3.1: { json: mrn } }
destinations:
  out: { file: { dir: out } }
tests:
  - name: the app's id is MSH-10
    input: { message_id: APP-77, facility: LRH, mrn: E1 }
    expect: { hl7: { MSH-10: APP-77, MSH-4: LRH, MSH-3: APP, PID-3.1: E1 } }
  - name: without one, MSH-10 is new and MSH-4 stays empty
    input: { mrn: E2, message_id: "" }
    expect: { hl7: { MSH-4: "", PID-3.1: E2 } }
`);
    const r = await cli('test', join(dir, 'b.yaml'));
    expect(r.stdout).toMatch(/2 passed, 0 failed/);
    const bad = await validateSpecs([join(dir, 'b.yaml')].map((f) => { writeFileSync(f, readFileSync(f, 'utf8').replace('MSH-4: { json: facility }', 'MSH-2: "^~&"')); return f; }), { cwd: dir, env: {} });
    expect(bad.diagnostics.map((d) => d.code)).toEqual(['spec/build-msh']);
  });

  test('transform add_segment: a new segment after another, fields literal or read from the message', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hv2-add-'));
    writeFileSync(join(dir, 'a.yaml'), `channel: a
source: { mllp: { port: 0 } }
transform:
  - add_segment:
      segment: ZPI
      after: PID
      fields: { ZPI-1: "LRH^MAIN", ZPI-2: { path: PID-3.1 } }
  - add_segment: { segment: NTE, fields: { NTE-3: routed by hl7c } }
    when: { path: MSH-11, equals: P }
destinations:
  out: { file: { dir: out } }
tests:
  - name: ZPI after PID, NTE at the end
    input: "MSH|^~\\\\&|A|B|C|D|20261125||ADT^A08|Z-1|P|2.5.1\\rPID|1||E1^^^LRH^MR\\rPV1|1|I\\r"
    expect:
      message: |
        MSH|^~\\&|A|B|C|D|20261125||ADT^A08|Z-1|P|2.5.1
        PID|1||E1^^^LRH^MR
        ZPI|LRH\\S\\MAIN|E1
        PV1|1|I
        NTE|||routed by hl7c
`);
    const r = await cli('test', join(dir, 'a.yaml'));
    expect(r.stdout + r.stderr).toMatch(/1 passed, 0 failed/);
  });

  test('validate: coded needs a field path', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hv2-conv-v-'));
    writeFileSync(join(dir, 'c.yaml'), 'channel: c\nsource: { mllp: { port: 0 } }\nmap:\n  a: { path: OBX-3.1, coded: text }\n  b: { value: x, coded: code }\ndestinations:\n  out: { file: { dir: out } }\n');
    const result = await validateSpecs([join(dir, 'c.yaml')], { cwd: dir, env: {} });
    expect(result.diagnostics.map((d) => `${d.line}:${d.column} ${d.code}`)).toEqual(['4:30 spec/coded-needs-path', '5:25 spec/coded-needs-path']);
  });
});
