import { expect, test } from 'vitest';
import { fieldName, namedSegments } from '../../runtime/hl7/field-names.js';
import { SEGMENT_FIELD_COUNTS } from '../../src/spec/hl7-tables.js';

test.each(namedSegments())('%s: one name per field of the HL7 v2.5.1 segment, as many as the field table counts', (segment) => {
  const count = SEGMENT_FIELD_COUNTS[segment];
  expect(count).toBeDefined();
  for (let n = 1; n <= count!; n++) expect(fieldName(segment, n), `${segment}-${n}`).toBeTruthy();
  expect(fieldName(segment, count! + 1)).toBeNull();
});

test('names read the HL7 way (1-based); unknown segments and fields have none', () => {
  expect(fieldName('MSH', 9)).toBe('Message Type');
  expect(fieldName('MSH', 10)).toBe('Message Control ID');
  expect(fieldName('PID', 3)).toBe('Patient Identifier List');
  expect(fieldName('PID', 5)).toBe('Patient Name');
  expect(fieldName('PV1', 19)).toBe('Visit Number');
  expect(fieldName('OBX', 5)).toBe('Observation Value');
  expect(fieldName('ZPI', 1)).toBeNull();
});
