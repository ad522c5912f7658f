import { describe, expect, test } from 'vitest';
import { Hl7EditError, Hl7PathError, parseMessage, parsePath } from '../../runtime/index.js';

describe('path syntax', () => {
  test.each([
    ['PID-3', { segment: 'PID', field: 3 }],
    ['PID-3[2]', { segment: 'PID', field: 3, repetition: 2 }],
    ['PID-3[2].4.1', { segment: 'PID', field: 3, repetition: 2, component: 4, subcomponent: 1 }],
    ['OBX[3]-5', { segment: 'OBX', segmentRepetition: 3, field: 5 }],
    ['MSH-9.2', { segment: 'MSH', field: 9, component: 2 }],
    ['ZPI-1', { segment: 'ZPI', field: 1 }],
    ['NTE[2]', { segment: 'NTE', segmentRepetition: 2 }],
  ])('%s', (text, expected) => {
    expect(parsePath(text)).toEqual({ text, ...expected });
  });

  test.each([
    ['pid-3', 1],
    ['PID3', 4],
    ['PID-0', 5],
    ['PID-3[0]', 7],
    ['PID-3[2', 8],
    ['PID-3.', 7],
    ['PID-3.1.2.3', 10],
    ['MSH-2.1', 5],
    ['PID-x', 5],
  ])('%s is refused, pointing at character %i', (text, column) => {
    let error: Hl7PathError | undefined;
    try {
      parsePath(text);
    } catch (err) {
      error = err as Hl7PathError;
    }
    expect(error).toBeInstanceOf(Hl7PathError);
    expect(error!.offset + 1).toBe(column);
  });
});

describe('editing', () => {
  const base = () =>
    parseMessage('MSH|^~\\&|A|B|C|D|20260101||ORU^R01|1|P|2.5.1\rPID|1||123^^^HOSP^MR||DOE^JANE\rOBR|1|PL1|FL1\rOBX|1|NM|GLU||5.4\rOBX|2|NM|K||4.1\r');

  test('set a field, a component, a subcomponent, a repetition; the rest is untouched', () => {
    const m = base();
    m.set('PID-8', 'F');
    m.set('PID-5.3', 'Q');
    m.set('PID-3[2]', 'X');
    m.set('PID-3[2].4', 'SSA');
    m.set('PID-3.4.2', '1.2.3');
    expect(m.getRaw('PID')).toBe('PID|1||123^^^HOSP&1.2.3^MR~X^^^SSA||DOE^JANE^Q|||F');
    expect(m.toString().startsWith('MSH|^~\\&|A|B|C|D|20260101||ORU^R01|1|P|2.5.1\r')).toBe(true);
  });

  test('values are escaped on write; null writes ""', () => {
    const m = base();
    m.set('OBX[2]-5', 'a^b|c');
    expect(m.getRaw('OBX[2]-5')).toBe('a\\S\\b\\F\\c');
    m.set('PID-8', null);
    expect(m.getRaw('PID-8')).toBe('""');
    expect(m.get('PID-8')).toBeNull();
  });

  test('clear a field, a component, a repetition', () => {
    const m = base();
    m.clear('PID-5.2');
    expect(m.getRaw('PID-5')).toBe('DOE^');
    m.set('PID-3[2]', 'X');
    m.clear('PID-3[1]');
    expect(m.getRaw('PID-3')).toBe('~X');
    m.clear('PID-3');
    expect(m.getRaw('PID-3')).toBe('');
  });

  test('add, insert and remove segments', () => {
    const m = base();
    m.addSegment('NTE', ['1', 'L', 'note with ^ caret']);
    expect(m.getRaw('NTE-3')).toBe('note with \\S\\ caret');
    m.insertSegmentAfter('OBX[1]', 'NTE', ['1', '', 'after first']);
    expect(m.segments.map((s) => s.name)).toEqual(['MSH', 'PID', 'OBR', 'OBX', 'NTE', 'OBX', 'NTE']);
    expect(m.get('NTE[1]-3')).toBe('after first');
    expect(m.removeSegment('OBX[2]')).toBe(true);
    expect(m.removeSegment('OBX[5]')).toBe(false);
    expect(m.segments.map((s) => s.name)).toEqual(['MSH', 'PID', 'OBR', 'OBX', 'NTE', 'NTE']);
    const again = parseMessage(m.toString());
    expect(again.get('NTE[2]-3')).toBe('note with ^ caret');
  });

  test('MSH-1/MSH-2 and the MSH segment are protected', () => {
    const m = base();
    expect(() => m.set('MSH-1', '!')).toThrow(Hl7EditError);
    expect(() => m.set('MSH-2', '^~\\&')).toThrow(Hl7EditError);
    expect(() => m.removeSegment('MSH')).toThrow(Hl7EditError);
    expect(() => m.set('PV1-2', 'I')).toThrow(/no PV1 segment/);
    m.set('MSH-10', 'NEW1');
    expect(m.controlId).toBe('NEW1');
    expect(m.get('MSH-2')).toBe('^~\\&');
  });
});
