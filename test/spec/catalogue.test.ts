import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { validateSpecs } from '../../src/spec/validate.js';

const BASE = `channel: base
source:
  mllp:
    port: 2600
accept:
  - rule: adt
    if: { message_type: [ADT^A01] }
    otherwise: reject
identifiers:
  patient:
    kind: patient
    type_code: MR
    required: true
map:
  mrn: { identifier: patient }
  family: { path: PID-5.1 }
destinations:
  hook:
    http:
      url: http://127.0.0.1:9/x
`;

/**
 * Each broken spec: how it is made from BASE, the diagnostic code expected, and the text the
 * diagnostic must point at (its first occurrence after the edit, plus an optional column shift).
 */
const CASES: Array<{ name: string; edit: (s: string) => string; code: string; at: string; shift?: number; severity?: 'warning' }> = [
  { name: 'a YAML null as a mapping name', edit: (s) => s.replace('  family: {', '  null: {'), code: 'yaml/key-not-text', at: 'null:' },
  { name: 'a YAML boolean as a destination name', edit: (s) => s.replace('  hook:', '  true:'), code: 'yaml/key-not-text', at: 'true:' },
  { name: 'a lookup code YAML reads as a number', edit: (s) => s.replace('{ path: PID-5.1 }', '{ path: PV1-2, lookup: { 01: I } }'), code: 'yaml/key-not-text', at: '01:' },
  { name: 'a dedupe key that is not an HL7 path', edit: (s) => s.replace('port: 2600', 'port: 2600\n    dedupe: { key: [msh-10], window: 1h }'), code: 'hl7/path-syntax', at: 'msh-10' },
  { name: 'a dedupe key without MSH-10', edit: (s) => s.replace('port: 2600', 'port: 2600\n    dedupe: { key: [MSH-3, MSH-4, MSH-11], window: 1h }'), code: 'spec/dedupe-key-without-control-id', at: '[MSH-3, MSH-4, MSH-11]', severity: 'warning' },
  { name: 'a dedupe window in milliseconds', edit: (s) => s.replace('port: 2600', 'port: 2600\n    dedupe: { window: 500ms }'), code: 'schema/invalid-format', at: '500ms' },
  { name: 'a default YAML reads as a number', edit: (s) => s.replace('{ path: PID-5.1 }', '{ path: PID-5.1, default: 007 }'), code: 'yaml/value-not-text', at: '007' },
  { name: 'unknown top-level key', edit: (s) => s.replace('channel: base', 'channel: base\nchanel: typo'), code: 'schema/unknown-property', at: 'chanel:' },
  { name: 'missing channel', edit: (s) => s.replace('channel: base\n', ''), code: 'schema/missing-property', at: 'source:' },
  { name: 'channel name with spaces', edit: (s) => s.replace('channel: base', 'channel: Bad Name'), code: 'schema/invalid-format', at: 'Bad Name' },
  { name: 'port is not a number', edit: (s) => s.replace('port: 2600', 'port: abc'), code: 'schema/wrong-type', at: 'abc' },
  { name: 'port out of range', edit: (s) => s.replace('port: 2600', 'port: 70000'), code: 'schema/maximum', at: '70000' },
  { name: 'two kinds of source', edit: (s) => s.replace('source:\n', 'source:\n  file: { dir: in }\n'), code: 'schema/wrong-shape', at: 'file: { dir' },
  { name: 'unknown ack mode', edit: (s) => s.replace('port: 2600', 'port: 2600\n    ack_mode: sometimes'), code: 'schema/invalid-value', at: 'sometimes' },
  { name: 'otherwise not filter/reject', edit: (s) => s.replace('otherwise: reject', 'otherwise: drop'), code: 'schema/invalid-value', at: 'drop' },
  { name: 'accept rule without otherwise', edit: (s) => s.replace('    otherwise: reject\n', ''), code: 'schema/missing-property', at: 'rule: adt' },
  { name: 'message type in the wrong form', edit: (s) => s.replace('[ADT^A01]', '[adt-a01]'), code: 'schema/invalid-format', at: 'adt-a01' },
  { name: 'unknown condition operator', edit: (s) => s.replace('if: { message_type: [ADT^A01] }', 'if: { path: MSH-11, equal: P }'), code: 'schema/unknown-property', at: 'equal:' },
  { name: 'unknown identifier kind', edit: (s) => s.replace('kind: patient', 'kind: person'), code: 'schema/invalid-value', at: 'person' },
  { name: 'misspelled identifier property', edit: (s) => s.replace('type_code: MR', 'typecode: MR'), code: 'schema/unknown-property', at: 'typecode' },
  { name: 'path without a dash', edit: (s) => s.replace('PID-5.1', 'PID5.1'), code: 'hl7/path-syntax', at: 'PID5.1', shift: 3 },
  { name: 'a Java year in a map format', edit: (s) => s.replace('{ path: PID-5.1 }', '{ path: PID-7, format: "yyyyMMdd HH:mm" }'), code: 'spec/date-pattern', at: '"yyyyMMdd' },
  { name: 'a 12-hour clock in a map format', edit: (s) => s.replace('{ path: PID-5.1 }', '{ path: PID-7, format: "DD.MM.YYYY hh:mm a" }'), code: 'spec/date-pattern', at: 'hh:mm a' },
  { name: 'a quarter in a reformat_date format', edit: (s) => s.replace('map:\n', 'transform:\n  - reformat_date: { path: PID-7, format: "YYYY-QQ" }\nmap:\n'), code: 'spec/date-pattern', at: 'QQ' },
  { name: 'reformat_date on a field with components', edit: (s) => s.replace('map:\n', 'transform:\n  - reformat_date: { path: PID-5, format: YYYYMMDD }\nmap:\n'), code: 'spec/date-field', at: 'PID-5, format' },
  { name: 'unknown segment', edit: (s) => s.replace('PID-5.1', 'PXD-5.1'), code: 'hl7/unknown-segment', at: 'PXD-5.1' },
  { name: 'field past the segment end', edit: (s) => s.replace('PID-5.1', 'PID-45'), code: 'hl7/unknown-field', at: 'PID-45' },
  { name: 'segment no accepted message has', edit: (s) => s.replace('PID-5.1', 'TXA-12'), code: 'spec/segment-not-in-message', at: 'TXA-12', severity: 'warning' },
  { name: 'unknown identifier in a mapping', edit: (s) => s.replace('{ identifier: patient }', '{ identifier: visit }'), code: 'spec/unknown-identifier', at: 'visit' },
  { name: 'identifier that can match any repetition', edit: (s) => s.replace('    type_code: MR\n', ''), code: 'spec/ambiguous-identifier', at: 'kind: patient', severity: 'warning' },
  { name: 'order identifier selected by CX.5', edit: (s) => s.replace('kind: patient', 'kind: order'), code: 'spec/not-a-cx-identifier', at: 'kind: order' },
  { name: 'prefer on a patient identifier', edit: (s) => s.replace('required: true', 'required: true\n    prefer: filler'), code: 'spec/prefer-not-applicable', at: 'filler' },
  { name: 'mapping with two sources', edit: (s) => s.replace('{ path: PID-5.1 }', '{ path: PID-5.1, value: x }'), code: 'spec/mapping-source', at: '{ path: PID-5.1, value' },
  { name: 'mapping with no source', edit: (s) => s.replace('{ path: PID-5.1 }', '{ transform: [trim] }'), code: 'spec/mapping-source', at: '{ transform' },
  { name: 'each without fields', edit: (s) => s.replace('{ path: PID-5.1 }', '{ each: NK1 }'), code: 'spec/each-without-fields', at: '{ each: NK1' },
  { name: 'each over a lowercase segment', edit: (s) => s.replace('{ path: PID-5.1 }', '{ each: nk1, fields: { n: { path: NK1-2 } } }'), code: 'schema/invalid-format', at: 'nk1' },
  { name: 'unknown transform', edit: (s) => s.replace('{ path: PID-5.1 }', '{ path: PID-5.1, transform: [titlecase] }'), code: 'schema/invalid-value', at: 'titlecase' },
  { name: 'destination url not http', edit: (s) => s.replace('http://127.0.0.1:9/x', 'ftp://127.0.0.1/x'), code: 'schema/invalid-format', at: 'ftp://' },
  { name: 'destination of two kinds', edit: (s) => s.replace('  hook:\n', '  hook:\n    file: { dir: out }\n'), code: 'spec/destination-kind', at: 'file: { dir: out }' },
  { name: 'destination to an undefined channel', edit: (s) => s.replace('  hook:\n    http:\n      url: http://127.0.0.1:9/x\n', '  hook:\n    channel: nowhere\n'), code: 'spec/unknown-channel', at: 'nowhere' },
  { name: 'unset environment variable', edit: (s) => s.replace('http://127.0.0.1:9/x', '${HL7C_TEST_UNSET_URL}'), code: 'spec/env-unset', at: '${HL7C_TEST_UNSET_URL}' },
  { name: 'YAML syntax error', edit: (s) => s.replace('  mllp:\n    port: 2600', '  mllp:\n    port: [2600'), code: 'yaml/syntax', at: 'accept:' },
  { name: 'duplicate key', edit: (s) => s.replace('channel: base', 'channel: base\nchannel: again'), code: 'yaml/duplicate-key', at: 'channel: again' },
  { name: 'test input that does not exist', edit: (s) => `${s}tests:\n  - name: t\n    input: messages/missing.hl7\n    expect: { ack: AA }\n`, code: 'spec/test-input-missing', at: 'messages/missing.hl7' },
  { name: 'test expecting an undefined identifier', edit: (s) => `${s}tests:\n  - name: t\n    input: "MSH|^~\\\\&|A|B|C|D|1||ADT^A01|1|P|2.5"\n    expect: { identifiers: { visit: V1 } }\n`, code: 'spec/unknown-identifier', at: 'V1' },
  { name: 'http source without build or map', edit: (s) => s.replace('  mllp:\n    port: 2600', '  http:\n    port: 2600\n    path: /in').replace(/map:[\s\S]*?destinations:/, 'destinations:'), code: 'spec/build-required', at: 'port: 2600\n    path' },
  { name: 'a JSON -> JSON channel reading HL7', edit: (s) => s.replace('  mllp:\n    port: 2600', '  http:\n    port: 2600\n    path: /in'), code: 'spec/path-needs-hl7', at: '- rule: adt' },
  { name: 'build without an http source', edit: (s) => `${s}build:\n  message_type: ORU^R01\n  version: 2.5.1\n  segments:\n    - segment: PID\n`, code: 'spec/build-needs-http-source', at: 'message_type: ORU' },
  { name: 'build field of another segment', edit: (s) => `${s.replace('  mllp:\n    port: 2600', '  http:\n    port: 2600\n    path: /in').replace(/map:\n(.*\n){2}/, '')}build:\n  message_type: ORU^R01\n  version: 2.5.1\n  segments:\n    - segment: PID\n      fields:\n        OBX-5: { json: x }\n`, code: 'spec/field-of-other-segment', at: 'OBX-5: { json' },
  { name: 'build entry that is neither segment nor each', edit: (s) => `${s.replace('  mllp:\n    port: 2600', '  http:\n    port: 2600\n    path: /in').replace(/map:\n(.*\n){2}/, '')}build:\n  message_type: ORU^R01\n  version: 2.5.1\n  segments:\n    - fields: { PID-1: "1" }\n`, code: 'spec/build-segment', at: 'fields: { PID-1' },
  { name: 'lookup table file missing', edit: (s) => s.replace('{ path: PID-5.1 }', '{ path: PID-8, lookup: { file: tables/sex.csv } }'), code: 'spec/lookup-file-missing', at: 'tables/sex.csv' },
  { name: 'an MLLP destination with an empty host', edit: (s) => s.replace('    http:\n      url: http://127.0.0.1:9/x', '    mllp: { host: "", port: 2575 }'), code: 'schema/minLength', at: '""' },
  { name: 'an MLLP destination on port 0', edit: (s) => s.replace('    http:\n      url: http://127.0.0.1:9/x', '    mllp: { host: lab, port: 0 }'), code: 'schema/minimum', at: '0 }' },
  { name: 'a file destination with an empty dir', edit: (s) => s.replace('    http:\n      url: http://127.0.0.1:9/x', '    file: { dir: "" }'), code: 'schema/minLength', at: '""' },
  { name: 'a test expecting a destination the spec does not have', edit: (s) => `${s}tests:\n  - name: t\n    input: "MSH|^~\\\\&|A|B|C|D|2026||ADT^A01|1|P|2.5.1"\n    expect: { destinations: { nope: null } }\n`, code: 'spec/unknown-destination', at: 'nope' },
  { name: 'a test routing to a destination the spec does not have', edit: (s) => `${s}tests:\n  - name: t\n    input: "MSH|^~\\\\&|A|B|C|D|2026||ADT^A01|1|P|2.5.1"\n    expect: { route: [hook, lab] }\n`, code: 'spec/unknown-destination', at: 'lab]' },
  { name: 'a composite field compared as a whole with text holding ^', edit: (s) => s.replace('if: { message_type: [ADT^A01] }', 'if: { path: MSH-9, equals: ADT^A01 }'), code: 'spec/composite-compare', at: 'ADT^A01 }', severity: 'warning' },
  { name: 'timezone neither an offset nor a zone name', edit: (s) => s.replace('channel: base', 'channel: base\ntimezone: "5 hours"'), code: 'schema/invalid-format', at: '"5 hours"' },
  { name: 'timezone a zone Node.js does not know', edit: (s) => s.replace('channel: base', 'channel: base\ntimezone: Mars/Olympus'), code: 'spec/unknown-timezone', at: 'Mars/Olympus' },
  { name: 'path inside each: that leaves the group', edit: (s) => s.replace('{ path: PID-5.1 }', '{ each: PR1, fields: { payer: { path: IN1-4.1 } } }'), code: 'spec/path-leaves-group', at: 'IN1-4.1' },
  { name: 'lookup with neither on_missing nor default', edit: (s) => s.replace('{ path: PID-5.1 }', '{ path: PID-8, lookup: { M: male } }'), code: 'spec/lookup-unhandled-missing', at: '{ M: male }', severity: 'warning' },
  { name: 'on_missing: default without a default', edit: (s) => s.replace('{ path: PID-5.1 }', '{ path: PID-8, lookup: { M: male }, on_missing: default }'), code: 'spec/on-missing-default', at: 'default }' },
  { name: 'on_missing without a lookup', edit: (s) => s.replace('{ path: PID-5.1 }', '{ path: PID-8, on_missing: keep }'), code: 'spec/on-missing-without-lookup', at: 'keep }' },
  { name: 'unknown on_missing', edit: (s) => s.replace('{ path: PID-5.1 }', '{ path: PID-8, lookup: { M: male }, on_missing: guess }'), code: 'schema/invalid-value', at: 'guess' },
  { name: 'unknown on_unrouted', edit: (s) => `${s}on_unrouted: drop\n`, code: 'schema/invalid-value', at: 'drop' },
  { name: 'transform step doing two things', edit: (s) => `${s}transform:\n  - { clear: PID-2, delete_segments: NTE }\n`, code: 'spec/transform-step', at: '{ clear: PID-2' },
  { name: 'keep_identifier of an undefined identifier', edit: (s) => `${s}transform:\n  - keep_identifier: nobody\n`, code: 'spec/unknown-identifier', at: 'nobody' },
  { name: 'keep_identifier of an EI identifier', edit: (s) => `${s.replace('identifiers:\n', 'identifiers:\n  order: { kind: order }\n')}transform:\n  - keep_identifier: order\n`, code: 'spec/keep-identifier-not-cx', at: 'keep_identifier: order', shift: 17 },
  { name: 'set with both a value and an identifier', edit: (s) => `${s}transform:\n  - set: { path: PID-2, value: x, identifier: patient }\n`, code: 'schema/oneOf', at: '{ path: PID-2, value' },
  { name: 'delete_segments with a lowercase name', edit: (s) => `${s}transform:\n  - delete_segments: [NTE, zpi]\n`, code: 'schema/invalid-format', at: 'zpi' },
  { name: 'mllp destination on a channel that maps to JSON', edit: (s) => s.replace('    http:\n      url: http://127.0.0.1:9/x\n', '    mllp: { host: ehr.local, port: 2575 }\n'), code: 'spec/mllp-needs-hl7', at: '{ host: ehr.local' },
  { name: 'channel handing messages to itself', edit: (s) => s.replace(/map:\n(.*\n){2}/, '').replace('    http:\n      url: http://127.0.0.1:9/x\n', '    channel: base # again\n'), code: 'spec/channel-cycle', at: 'base # again' },
  { name: 'JSON handed to a channel that takes HL7', edit: (s) => s.replace('    http:\n      url: http://127.0.0.1:9/x\n', '    channel: base # itself\n'), code: 'spec/hand-off-kind', at: 'base # itself' },
  { name: 'fields without each', edit: (s) => s.replace('{ path: PID-5.1 }', '{ path: PID-5.1, fields: { a: { path: PID-1 } } }'), code: 'spec/fields-without-each', at: '{ a: {' },
  // A destination's own map and transform get the checks the channel's map gets.
  { name: "a destination map reading a segment no accepted message has", edit: (s) => s.replace('      url: http://127.0.0.1:9/x', '      url: http://127.0.0.1:9/x\n    map:\n      doc: { path: TXA-12 }'), code: 'spec/segment-not-in-message', at: 'TXA-12', severity: 'warning' },
  { name: "a destination transform copying from a segment no accepted message has", edit: (s) => s.replace('      url: http://127.0.0.1:9/x', '      url: http://127.0.0.1:9/x\n    transform:\n      - copy: { from: ORC-2, to: PID-2 }'), code: 'spec/segment-not-in-message', at: 'ORC-2', severity: 'warning' },
  { name: "a destination map path leaving its each: group", edit: (s) => s.replace('      url: http://127.0.0.1:9/x', '      url: http://127.0.0.1:9/x\n    map:\n      procedures: { each: PR1, fields: { payer: { path: IN1-4.1 } } }'), code: 'spec/path-leaves-group', at: 'IN1-4.1' },
  { name: 'content: raw with a destination transform (it would be ignored)', edit: (s) => s.replace('  hook:\n', '  archive:\n    file: { dir: out, content: raw }\n    transform:\n      - clear: PID-2\n  hook:\n'), code: 'spec/raw-with-payload', at: '- clear: PID-2' },

];

function positionOf(text: string, needle: string): { line: number; column: number } {
  const index = text.indexOf(needle);
  if (index === -1) throw new Error(`needle ${needle} not in spec`);
  const before = text.slice(0, index).split('\n');
  return { line: before.length, column: before[before.length - 1]!.length + 1 };
}

describe('catalogue of broken specs', () => {
  test('the base spec is valid and clean', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hl7c-spec-'));
    writeFileSync(join(dir, 'base.yaml'), BASE);
    const result = await validateSpecs([join(dir, 'base.yaml')], { cwd: dir, env: {} });
    expect(result.diagnostics).toEqual([]);
  });

  test('has at least 30 cases', () => expect(CASES.length).toBeGreaterThanOrEqual(30));

  test.each(CASES.map((c) => [c.name, c] as const))('%s', async (_, c) => {
    const dir = mkdtempSync(join(tmpdir(), 'hl7c-spec-'));
    const text = c.edit(BASE);
    expect(text).not.toBe(BASE);
    writeFileSync(join(dir, 'broken.yaml'), text);
    const result = await validateSpecs([join(dir, 'broken.yaml')], { cwd: dir, env: {} });
    const expected = positionOf(text, c.at);
    const found = result.diagnostics.find((d) => d.code === c.code);
    expect(found, JSON.stringify(result.diagnostics, null, 1)).toBeDefined();
    expect(found!.file).toBe('broken.yaml');
    expect({ line: found!.line, column: found!.column }).toEqual({ line: expected.line, column: expected.column + (c.shift ?? 0) });
    expect(found!.severity).toBe(c.severity ?? 'error');
    expect(found!.message.length).toBeGreaterThan(10);
    expect(result.ok).toBe((c.severity ?? 'error') === 'warning');
  });

  test('a path leaving its each: group names the path and the each: line; reading up and within the group is fine', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hl7c-spec-'));
    const spec = `channel: results
source: { mllp: { port: 2601 } }
accept:
  - rule: results
    if: { message_type: [ORU^R01] }
    otherwise: reject
map:
  patients:
    each: PID
    fields:
      mrn: { path: PID-3.1 }
      test: { path: OBR-4.1 }
  orders:
    each: OBR
    fields:
      notes: { each: NTE, fields: { text: { path: NTE-3 } } }
      results:
        each: OBX
        fields:
          value: { path: OBX-5 }
          order: { path: OBR-4.1 }
          patient: { path: PID-3.1 }
          visit: { path: PV1-19 }
          note: { path: NTE-3 }
          specimen: { path: SPM-2 }
destinations:
  out: { file: { dir: out } }
`;
    writeFileSync(join(dir, 'oru.yaml'), spec);
    const result = await validateSpecs([join(dir, 'oru.yaml')], { cwd: dir, env: {} });
    const leaving = result.diagnostics.filter((d) => d.code === 'spec/path-leaves-group');
    expect(leaving.map((d) => `${d.file}:${d.line}:${d.column}`)).toEqual(['oru.yaml:12:21', 'oru.yaml:25:29']);
    expect(leaving[0]!.message).toContain('each: PID (oru.yaml:9:11)');
    expect(leaving[0]!.message).toContain('OBR-4.1 reads OBR');
    expect(leaving[1]!.message).toContain('each: OBX (oru.yaml:18:15)');
    expect(leaving[0]!.hint).toContain('each: OBR');
    expect(result.ok).toBe(false);
  });

  test('a ${…} value takes the type of its field: text stays text, a port becomes a number (issue 9, case 8)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hl7c-spec-'));
    writeFileSync(join(dir, 'env.yaml'), BASE.replace('port: 2600', 'port: ${ADT_PORT}').replace('type_code: MR', 'type_code: MR\n    assigning_authority: ${LAB_MRN_AUTHORITY}'));
    const result = await validateSpecs([join(dir, 'env.yaml')], { cwd: dir, env: { ADT_PORT: '2601', LAB_MRN_AUTHORITY: '1' } });
    expect(result.diagnostics).toEqual([]);
    const data = result.specs[0]!.data as { source: { mllp: { port: unknown } }; identifiers: { patient: { assigning_authority: unknown } } };
    expect(data.source.mllp.port).toBe(2601);
    expect(data.identifiers.patient.assigning_authority).toBe('1');
    // A reference that does not read as the field's type is still a wrong value.
    const bad = await validateSpecs([join(dir, 'env.yaml')], { cwd: dir, env: { ADT_PORT: 'abc', LAB_MRN_AUTHORITY: '1' } });
    expect(bad.diagnostics.map((d) => d.code)).toEqual(['schema/wrong-type']);
  });

  test('an unset ${URL} is one diagnostic, not a second misleading invalid-format one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hl7c-spec-'));
    writeFileSync(join(dir, 'unset.yaml'), BASE.replace('http://127.0.0.1:9/x', '${HOOK_URL}'));
    const result = await validateSpecs([join(dir, 'unset.yaml')], { cwd: dir, env: {} });
    expect(result.diagnostics.map((d) => `${d.line} ${d.code}`)).toEqual(['20 spec/env-unset']);
  });

  test.each([
    ['a dedupe window in milliseconds', (s: string) => s.replace('port: 2600', 'port: 2600\n    dedupe: { window: 500ms }'), 'a whole number and a unit: 30s, 15m, 24h, 7d'],
    ['a number where text belongs', (s: string) => s.replace('type_code: MR', 'type_code: 2.5'), 'YAML reads this as a number or a boolean: quote it, e.g. "2.5.1"'],
    ['a path with [ ] inside { … }', (s: string) => s.replace('{ path: PID-5.1 }', '{ path: PID-5[1].1 }'), 'inside { … } a path with [ ] must be quoted: "PID-3[1]"'],
    ['retry attempts 0', (s: string) => s.replace('      url: http://127.0.0.1:9/x', '      url: http://127.0.0.1:9/x\n    retry: { attempts: 0 }'), 'a positive whole number of tries (1, 5, 20), or unlimited'],
    ['a path with [ ] as a flow mapping value', (s: string) => s.replace('  family: { path: PID-5.1 }', '  family: { path: PID-5.1 }\ntransform:\n  - { clear: PID-3[1] }'), 'inside { … } a path with [ ] must be quoted: "PID-3[1]"'],
  ])('%s gets a hint that says how to write it', async (_name, edit, hint) => {
    const dir = mkdtempSync(join(tmpdir(), 'hl7c-spec-'));
    writeFileSync(join(dir, 'hint.yaml'), edit(BASE));
    const result = await validateSpecs([join(dir, 'hint.yaml')], { cwd: dir, env: {} });
    expect(result.diagnostics[0]!.hint).toBe(hint);
  });

  test('a misspelled property gets a "did you mean" hint', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hl7c-spec-'));
    writeFileSync(join(dir, 'typo.yaml'), BASE.replace('type_code: MR', 'typecode: MR'));
    const result = await validateSpecs([join(dir, 'typo.yaml')], { cwd: dir, env: {} });
    expect(result.diagnostics[0]!.hint).toBe('did you mean "type_code"?');
  });

  test('a YAML syntax error is reported once, not with its echoes; ${…} inside { … } gets its own hint', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hl7c-spec-'));
    writeFileSync(join(dir, 'flow.yaml'), BASE.replace('    port: 2600', '    port: 2600\n    tls: { key: ${KEY_FILE}, cert: c }'));
    const result = await validateSpecs([join(dir, 'flow.yaml')], { cwd: dir, env: {} });
    expect(result.diagnostics).toHaveLength(1);
    expect(result.diagnostics[0]).toMatchObject({ code: 'yaml/syntax', line: 5, hint: 'inside { … } a ${…} reference must be quoted: "${NAME}"' });
  });

  test('duplicate channel names and ports across specs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hl7c-spec-'));
    writeFileSync(join(dir, 'a.yaml'), BASE);
    writeFileSync(join(dir, 'b.yaml'), BASE);
    const result = await validateSpecs([join(dir, 'a.yaml'), join(dir, 'b.yaml')], { cwd: dir, env: {} });
    expect(result.diagnostics.map((d) => `${d.file}:${d.line}:${d.column} ${d.code}`)).toEqual(['b.yaml:1:10 spec/duplicate-channel', 'b.yaml:4:11 spec/duplicate-port']);
  });

  test('environment values and defaults are interpolated; a reference alone takes its type', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hl7c-spec-'));
    writeFileSync(join(dir, 'env.yaml'), BASE.replace('port: 2600', 'port: ${HL7C_PORT:-2700}'));
    const withDefault = await validateSpecs([join(dir, 'env.yaml')], { cwd: dir, env: {} });
    expect((withDefault.specs[0]!.data as { source: { mllp: { port: number } } }).source.mllp.port).toBe(2700);
    const set = await validateSpecs([join(dir, 'env.yaml')], { cwd: dir, env: { HL7C_PORT: '2801' } });
    expect((set.specs[0]!.data as { source: { mllp: { port: number } } }).source.mllp.port).toBe(2801);
  });
});
