import { expect, test } from 'vitest';
import { fieldName, namedSegments } from '../../runtime/hl7/field-names.js';
import { parseMessage } from '../../runtime/index.js';
import { corpusFiles } from '../corpus.js';
import { componentCount, describeVersions, HL7_VERSIONS, segmentFields, tableVersionOf, versionsWithField, versionsWithSegment } from '../../runtime/hl7/versions/tables.js';

test.each(namedSegments())('%s: every field of every version that has the segment has a name and a data type', (segment) => {
  for (const version of versionsWithSegment(segment)) {
    const fields = segmentFields(version, segment)!;
    fields.forEach((f, i) => {
      expect(f.name, `${segment}-${i + 1} in v${version}`).toMatch(/\w/);
      expect(f.type, `${segment}-${i + 1} in v${version}`).toMatch(/^([A-Z][A-Z0-9_]+|varies|-)$/);
    });
    expect(fieldName(segment, fields.length + 1, version)).toBeNull();
  }
});

test('names read the HL7 way (1-based), v2.5.1 by default; unknown segments and fields have none', () => {
  expect(fieldName('MSH', 9)).toBe('Message Type');
  expect(fieldName('MSH', 10)).toBe('Message Control ID');
  expect(fieldName('PID', 3)).toBe('Patient Identifier List');
  expect(fieldName('PID', 5)).toBe('Patient Name');
  expect(fieldName('PV1', 19)).toBe('Visit Number');
  expect(fieldName('OBX', 5)).toBe('Observation Value');
  expect(fieldName('ZPI', 1)).toBeNull();
  expect(fieldName('MSH', 22)).toBeNull();
});

test('each version names its own fields: v2.3 PID-8 is Sex, v2.8 PID-35 is Taxonomic Classification Code, MSH-22 exists from v2.6', () => {
  expect(fieldName('PID', 8, '2.3')).toBe('Sex');
  expect(fieldName('PID', 8, '2.5.1')).toBe('Administrative Sex');
  expect(fieldName('PID', 35, '2.5.1')).toBe('Species Code');
  expect(fieldName('PID', 35, '2.8')).toBe('Taxonomic Classification Code');
  expect(fieldName('MSH', 22, '2.5.1')).toBeNull();
  expect(fieldName('MSH', 22, '2.8')).toBe('Sending Responsible Organization');
  expect(fieldName('MSH', 21, '2.4')).toBe('Conformance Statement ID');
  expect(fieldName('MSH', 21, '2.5')).toBe('Message Profile Identifier');
});

test('field counts per version of the segments that changed most', () => {
  const counts = (segment: string) => HL7_VERSIONS.map((v) => segmentFields(v, segment)?.length ?? 0);
  expect(counts('MSH')).toEqual([19, 20, 21, 21, 21, 25, 25, 25, 25]);
  expect(counts('PID')).toEqual([30, 30, 38, 39, 39, 39, 40, 40, 40]);
  expect(counts('OBX')).toEqual([17, 17, 19, 19, 25, 25, 26, 26, 28]);
  expect(counts('ORC')).toEqual([19, 24, 25, 30, 31, 31, 33, 33, 34]);
  expect(counts('SPM')).toEqual([0, 0, 0, 29, 29, 29, 32, 32, 32]);
});

test('data types, repetition and withdrawal follow the version', () => {
  expect(segmentFields('2.3', 'PID')![7]).toMatchObject({ type: 'IS', maxRepetitions: 1, withdrawn: false });
  expect(segmentFields('2.7', 'PID')![7]).toMatchObject({ type: 'CWE' });
  expect(segmentFields('2.5.1', 'PID')![2]).toMatchObject({ type: 'CX', maxRepetitions: Infinity });
  expect(segmentFields('2.5.1', 'PID')![18]).toMatchObject({ name: 'SSN Number - Patient', withdrawn: false });
  expect(segmentFields('2.7', 'PID')![18]).toMatchObject({ name: 'SSN Number - Patient', type: '-', withdrawn: true });
  expect(segmentFields('2.7.1', 'RXA')![10]!.withdrawn).toBe(false);
  expect(segmentFields('2.8', 'RXA')![10]!.withdrawn).toBe(true);
  expect(versionsWithField('MSH', 22)).toEqual(['2.6', '2.7', '2.7.1', '2.8']);
  expect(versionsWithField('PID', 19)).toEqual(['2.3', '2.3.1', '2.4', '2.5', '2.5.1', '2.6']);
  expect(versionsWithSegment('TQ1')).toEqual(['2.5', '2.5.1', '2.6', '2.7', '2.7.1', '2.8']);
});

test('component counts of data types per version: XPN grows, ST is a primitive', () => {
  expect(componentCount('2.3', 'XPN')).toBe(8);
  expect(componentCount('2.5.1', 'XPN')).toBe(14);
  expect(componentCount('2.8', 'XPN')).toBe(15);
  expect(componentCount('2.5.1', 'ST')).toBe(1);
  expect(componentCount('2.5.1', 'varies')).toBeUndefined();
});

test('a message version reads the nearest tables at or below it', () => {
  expect(tableVersionOf('2.5.1')).toBe('2.5.1');
  expect(tableVersionOf('2.8.2')).toBe('2.8');
  expect(tableVersionOf('2.6.1')).toBe('2.6');
  expect(tableVersionOf('2.9')).toBe('2.8');
  expect(tableVersionOf('2.1')).toBe('2.3');
  expect(tableVersionOf('2.4^DEU')).toBe('2.4');
  expect(tableVersionOf('')).toBeUndefined();
  expect(tableVersionOf('ABC')).toBeUndefined();
  expect(describeVersions(['2.6', '2.7', '2.7.1', '2.8'])).toBe('v2.6 and later');
  expect(describeVersions(['2.3', '2.3.1', '2.4'])).toBe('v2.3 to v2.4');
});

test('every corpus message (v2.1 to v2.8) is named from its own MSH-12 tables: its header fields all have names', () => {
  const seen = new Set<string>();
  for (const file of corpusFiles((c) => c !== 'malformed' && c !== 'batch')) {
    let message;
    try {
      message = parseMessage(file.bytes);
    } catch {
      continue; // edge cases the parser refuses are tested where they belong
    }
    const tables = tableVersionOf(message.version);
    if (!tables) continue;
    seen.add(tables);
    const msh = message.segments[0]!;
    const known = segmentFields(tables, 'MSH')!.length;
    for (let n = 1; n <= Math.min(msh.fieldCount, known); n++) expect(fieldName('MSH', n, message.version), `${file.category}/${file.name} MSH-${n}`).toBeTruthy();
  }
  expect([...seen].sort()).toEqual(['2.3', '2.3.1', '2.4', '2.5', '2.5.1', '2.6', '2.7', '2.8']);
});
