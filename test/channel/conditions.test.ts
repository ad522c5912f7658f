import { describe, expect, test } from 'vitest';
import { describeCondition, evaluate, parseMessage } from '../../runtime/index.js';
import type { Condition } from '../../runtime/index.js';

const m = parseMessage('MSH|^~\\&|EPIC|GH|HL7C|APP|20261125||ADT^A08^ADT_A01|C1|P|2.5.1\rPID|1||E1^^^EPI^MR||DOE^JANE||""\r');

describe('accept conditions', () => {
  test.each<[Condition, boolean]>([
    [{ path: 'MSH-11', equals: 'P' }, true],
    [{ path: 'MSH-11', equals: 'T' }, false],
    [{ path: 'MSH-9.2', in: ['A01', 'A08'] }, true],
    [{ path: 'MSH-9.2', in: ['A01'] }, false],
    [{ path: 'PID-3.1', matches: '^E\\d+$' }, true],
    [{ path: 'PID-3.1', matches: '^X' }, false],
    [{ path: 'PID-5', exists: true }, true],
    [{ path: 'PID-19', exists: true }, false],
    [{ path: 'PID-7', exists: true }, true], // "" is a value: delete
    [{ path: 'PID-19', empty: true }, true],
    [{ path: 'PID-7', empty: true }, true],
    [{ path: 'PID-5', empty: false }, true],
    [{ message_type: ['ADT'] }, true],
    [{ message_type: ['ADT^A01'] }, false],
    [{ all: [{ message_type: ['ADT^A08'] }, { path: 'MSH-11', equals: 'P' }] }, true],
    [{ all: [{ message_type: ['ADT^A08'] }, { path: 'MSH-11', equals: 'T' }] }, false],
    [{ any: [{ path: 'MSH-11', equals: 'T' }, { path: 'MSH-11', equals: 'P' }] }, true],
    [{ any: [{ path: 'MSH-11', equals: 'T' }, { path: 'MSH-11', equals: 'D' }] }, false],
    [{ not: { path: 'MSH-11', equals: 'T' } }, true],
  ])('%j → %s', (condition, expected) => {
    expect(evaluate(condition, m)).toBe(expected);
    expect(describeCondition(condition).length).toBeGreaterThan(5);
  });
});
