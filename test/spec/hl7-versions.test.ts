import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { formatDiagnostic } from '../../src/diagnostics/diagnostic.js';
import { validateSpecs } from '../../src/spec/validate.js';
import { CORPUS_DIR } from '../corpus.js';

/** Writes the spec (and any corpus files it names) to a fresh folder and validates it there. */
async function validate(text: string, corpus: string[] = []) {
  const dir = mkdtempSync(join(tmpdir(), 'hl7c-versions-'));
  for (const f of corpus) copyFileSync(join(CORPUS_DIR, f), join(dir, f.split('/').pop()!));
  writeFileSync(join(dir, 'feed.yaml'), text);
  const result = await validateSpecs(['feed.yaml'], { cwd: dir, env: {} });
  return result.diagnostics.map(formatDiagnostic);
}

const spec = (head: string, map: string, tail = '') => `channel: feed
${head}source: { mllp: { port: 2575 } }
map:
${map}destinations:
  archive: { file: { dir: out } }
${tail}`;

test('v2.8 reads MSH-22 to MSH-25 and PID-40; v2.3 has none of them and says which version does', async () => {
  const map = '  sender_org: { path: MSH-22.1 }\n  network: { path: MSH-25 }\n  telecom: { path: PID-40.1 }\n';
  expect(await validate(spec('hl7_version: "2.8"\n', map))).toEqual([]);
  expect(await validate(spec('hl7_version: "2.3"\n', map))).toEqual([
    'feed.yaml:5:23: error hl7/unknown-field: MSH has 19 fields in HL7 v2.3; there is no MSH-22 (MSH-22 Sending Responsible Organization is in v2.6 and later); this channel reads v2.3 messages (hl7_version: 2.3)\n  hint: if the sender\'s messages carry MSH-22, set hl7_version: "2.6" or later, the version in their MSH-12',
    'feed.yaml:6:20: error hl7/unknown-field: MSH has 19 fields in HL7 v2.3; there is no MSH-25 (MSH-25 Receiving Network Address is in v2.6 and later); this channel reads v2.3 messages (hl7_version: 2.3)\n  hint: if the sender\'s messages carry MSH-25, set hl7_version: "2.6" or later, the version in their MSH-12',
    'feed.yaml:7:20: error hl7/unknown-field: PID has 30 fields in HL7 v2.3; there is no PID-40 (PID-40 Patient Telecommunication Information is in v2.7 and later); this channel reads v2.3 messages (hl7_version: 2.3)\n  hint: if the sender\'s messages carry PID-40, set hl7_version: "2.7" or later, the version in their MSH-12',
  ]);
});

test('a segment a version lacks (SPM before v2.5), a field withdrawn (PID-19 in v2.7) and a component past the data type (XPN in v2.3)', async () => {
  const each = '  specimens:\n    each: SPM\n    fields:\n      type: { path: SPM-4.1 }\n';
  expect(await validate(spec('hl7_version: "2.3"\n', each))).toEqual([
    'feed.yaml:6:11: error hl7/segment-not-in-version: SPM is not a segment of HL7 v2.3 (it is in v2.5 and later); this channel reads v2.3 messages (hl7_version: 2.3)\n  hint: if the sender\'s messages carry SPM, set hl7_version: "2.5" or later, the version in their MSH-12',
    'feed.yaml:8:21: error hl7/segment-not-in-version: SPM is not a segment of HL7 v2.3 (it is in v2.5 and later); this channel reads v2.3 messages (hl7_version: 2.3)\n  hint: if the sender\'s messages carry SPM, set hl7_version: "2.5" or later, the version in their MSH-12',
  ]);
  expect(await validate(spec('hl7_version: "2.5.1"\n', each))).toEqual([]);
  expect(await validate(spec('hl7_version: "2.7"\n', '  ssn: { path: PID-19 }\n'))).toEqual([
    'feed.yaml:5:16: warning hl7/withdrawn-field: PID-19 (SSN Number - Patient) was withdrawn in HL7 v2.7: messages that follow v2.7 leave it empty; this channel reads v2.7 messages (hl7_version: 2.7)\n  hint: if the sender still fills PID-19, its messages are of an older version: set hl7_version: to the version in their MSH-12',
  ]);
  expect(await validate(spec('hl7_version: "2.6"\n', '  ssn: { path: PID-19 }\n'))).toEqual([]);
  expect(await validate(spec('hl7_version: "2.3"\n', '  suffix: { path: PID-5.4 }\n  name_type: { path: PID-5.9 }\n'))).toEqual([
    'feed.yaml:6:22: warning hl7/unknown-component: PID-5 (Patient Name) is XPN in HL7 v2.3, with 8 components: PID-5.9 is empty in messages that follow v2.3; this channel reads v2.3 messages (hl7_version: 2.3)\n  hint: components of XPN are .1 to .8',
  ]);
});

test('without hl7_version the version is the one the test messages carry (corpus v2.3 and v2.8 files), else v2.5.1', async () => {
  const map = '  profile: { path: MSH-21 }\n';
  const tests = (file: string) => `tests:\n  - name: sample\n    input: ${file}\n    expect: { ack: AA }\n`;
  expect(await validate(spec('', map, tests('fhirconv-adt-a01-v23.hl7')), ['adt/fhirconv-adt-a01-v23.hl7'])).toEqual([
    'feed.yaml:4:20: error hl7/unknown-field: MSH has 19 fields in HL7 v2.3; there is no MSH-21 (MSH-21 Conformance Statement ID is in v2.4 and later); this channel reads v2.3 messages (the v2.3 its test messages carry in MSH-12; say hl7_version: to choose)\n  hint: if the sender\'s messages carry MSH-21, set hl7_version: "2.4" or later, the version in their MSH-12',
  ]);
  expect(await validate(spec('', '  org: { path: MSH-22 }\n', tests('fhirconv-adt-a01-v28.hl7')), ['adt/fhirconv-adt-a01-v28.hl7'])).toEqual([]);
  // Two versions among the tests: neither is chosen; no tests at all: v2.5.1, as before versions.
  const both = `tests:\n  - { name: a, input: fhirconv-adt-a01-v23.hl7, expect: { ack: AA } }\n  - { name: b, input: fhirconv-adt-a01-v28.hl7, expect: { ack: AA } }\n`;
  expect(await validate(spec('', '  org: { path: MSH-22 }\n', both), ['adt/fhirconv-adt-a01-v23.hl7', 'adt/fhirconv-adt-a01-v28.hl7'])).toEqual([
    'feed.yaml:4:16: error hl7/unknown-field: MSH has 21 fields in HL7 v2.5.1; there is no MSH-22 (MSH-22 Sending Responsible Organization is in v2.6 and later); this channel reads v2.5.1 messages (v2.5.1, the default; say hl7_version: for the version its messages carry)\n  hint: if the sender\'s messages carry MSH-22, set hl7_version: "2.6" or later, the version in their MSH-12',
  ]);
});

test('a version written as a YAML number is one error with the hint to quote it; build.version and hl7_version must agree', async () => {
  expect(await validate(spec('hl7_version: 2.8\n', '  id: { path: MSH-10 }\n'))).toEqual([
    'feed.yaml:2:14: error schema/wrong-type: hl7_version must be string\n  hint: YAML reads this as a number or a boolean: quote it, e.g. "2.5.1"',
  ]);
  const built = `channel: notes
hl7_version: "2.8"
source: { http: { port: 8080, path: /notes } }
build:
  message_type: MDM^T02
  version: "2.3"
  segments:
    - segment: MSH
      fields: { MSH-22: { json: org } }
destinations:
  ehr: { mllp: { host: 127.0.0.1, port: 2575 } }
`;
  expect(await validate(built)).toEqual([
    'feed.yaml:6:12: error spec/hl7-version-conflict: build: makes v2.3 messages, and hl7_version says this channel\'s messages are v2.8\n  hint: give both the same version, or drop hl7_version: (build.version then says it)',
  ]);
  expect(await validate(built.replace('hl7_version: "2.8"\n', ''))).toEqual([
    'feed.yaml:8:25: error hl7/unknown-field: MSH has 19 fields in HL7 v2.3; there is no MSH-22 (MSH-22 Sending Responsible Organization is in v2.6 and later); this channel reads v2.3 messages (build.version: 2.3)\n  hint: if the sender\'s messages carry MSH-22, set hl7_version: "2.6" or later, the version in their MSH-12',
  ]);
});

test('a subcomponent of a component without any (PID-22.1.2: CWE.1 is ST) is an error wherever a path is read or written; subcomponents of composite components stay valid', async () => {
  const valid = spec(
    'hl7_version: "2.5.1"\n',
    '  authority: { path: PID-3.4.1 }\n  second_universal: { path: "PID-3[2].4.2" }\n  orderer_surname: { path: ORC-12.2.1 }\n  surname: { path: PID-5.1.1 }\n  race_code: { path: PID-22.1.1 }\n',
  );
  expect(await validate(valid)).toEqual([]);
  const everywhere = `channel: feed
hl7_version: "2.5.1"
source: { mllp: { port: 2575 } }
accept:
  - { rule: female, if: { path: PID-8.1.2, equals: F }, otherwise: filter }
transform:
  - set: { path: PID-13.4.2, value: x }
map:
  race: { path: PID-22.1.2 }
destinations:
  archive:
    file: { dir: out }
    body: "{{OBX-3.1.3}}"
  app:
    http: { url: "http://127.0.0.1:9/x" }
    map:
      mrn: { path: "PID-3[2].1.2" }
`;
  const why = 'this channel reads v2.5.1 messages (hl7_version: 2.5.1)';
  const next = 'for the next component (components are separated by ^, subcomponents by &)';
  expect(await validate(everywhere)).toEqual([
    `feed.yaml:5:33: error hl7/no-subcomponents: PID-8 is IS in HL7 v2.5.1, a value without subcomponents: there is no PID-8.1.2; ${why}\n  hint: read PID-8.1`,
    `feed.yaml:7:18: error hl7/no-subcomponents: PID-13.4 (component 4 of XTN) is ST in HL7 v2.5.1, a value without subcomponents: there is no PID-13.4.2; ${why}\n  hint: read PID-13.4, or PID-13.5 ${next}`,
    `feed.yaml:9:17: error hl7/no-subcomponents: PID-22.1 (component 1 of CE) is ST in HL7 v2.5.1, a value without subcomponents: there is no PID-22.1.2; ${why}\n  hint: read PID-22.1, or PID-22.2 ${next}`,
    `feed.yaml:13:14: error hl7/no-subcomponents: OBX-3.1 (component 1 of CE) is ST in HL7 v2.5.1, a value without subcomponents: there is no OBX-3.1.3; ${why}\n  hint: read OBX-3.1, or OBX-3.2 ${next}`,
    `feed.yaml:17:20: error hl7/no-subcomponents: PID-3.1 (component 1 of CX) is ST in HL7 v2.5.1, a value without subcomponents: there is no PID-3[2].1.2; ${why}\n  hint: read PID-3[2].1, or PID-3[2].2 ${next}`,
  ]);
  // XPN.1 is ST in v2.3 and FN (surname & prefix …) from v2.3.1: a warning naming the versions.
  expect(await validate(spec('hl7_version: "2.3"\n', '  own_surname: { path: PID-5.1.2 }\n'))).toEqual([
    "feed.yaml:5:24: warning hl7/no-subcomponents: PID-5.1 (component 1 of XPN) is ST in HL7 v2.3, a value without subcomponents: PID-5.1.2 is empty in messages that follow v2.3 (it has subcomponents in v2.3.1 and later); this channel reads v2.3 messages (hl7_version: 2.3)\n  hint: read PID-5.1, or PID-5.2 for the next component (components are separated by ^, subcomponents by &); if the sender's messages are of a version where it has subcomponents, set hl7_version: to the version in their MSH-12",
  ]);
});

test('reformat_date on a component is checked like a field: PID-13.1 (XTN) and PID-5.1 are spec/date-field at their file:line:col; PID-7.1, PV1-44.1, SCH-11.4, PID-3.7 are dates, PID-7.1 in v2.3 too', async () => {
  const steps = (paths: string[], version = '2.5.1') => `channel: feed
hl7_version: "${version}"
source: { mllp: { port: 2575 } }
transform:
${paths.map((p) => `  - reformat_date: { path: ${p}, format: YYYYMMDD }\n`).join('')}destinations:
  archive: { file: { dir: out } }
`;
  expect(await validate(steps(['PID-7.1', 'PV1-44.1', 'SCH-11.4', 'PID-3.7', 'PID-7']))).toEqual([]);
  expect(await validate(steps(['PID-7.1', 'PV1-44.1'], '2.3'))).toEqual([]);
  expect(await validate(steps(['PID-13.1', 'PID-5.1', 'PID-11.1.1']))).toEqual([
    'feed.yaml:5:28: error spec/date-field: PID-13.1 (component 1 of XTN, in PID-13 Phone Number - Home) is ST in HL7 v2.5.1, not a date: reformat_date needs a DT, DTM or TS field or component\n  hint: PID-13 (XTN) has no date component: name a DT, DTM or TS field',
    "feed.yaml:6:28: error spec/date-field: PID-5.1 (component 1 of XPN, in PID-5 Patient Name) is FN in HL7 v2.5.1, not a date: reformat_date needs a DT, DTM or TS field or component\n  hint: XPN's date components: PID-5.12, PID-5.13",
    "feed.yaml:7:28: error spec/date-field: PID-11.1.1 (subcomponent 1 of SAD, in component 1 of XAD, in PID-11 Patient Address) is ST in HL7 v2.5.1, not a date: reformat_date needs a DT, DTM or TS field or component\n  hint: XAD's date components: PID-11.13, PID-11.14",
  ]);
  // A whole field of a composite type: the hint names its date components.
  expect(await validate(steps(['PID-5']))).toEqual([
    "feed.yaml:5:28: error spec/date-field: PID-5 (Patient Name) is XPN in HL7 v2.5.1, not a date: reformat_date needs a DT, DTM or TS field, or the date component of a composite field\n  hint: XPN's date components: PID-5.12, PID-5.13",
  ]);
});
