import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import type { Delimiters, Hl7Path, Message } from '../../runtime/index.js';
import { parseMessage, parsePath, Scope, unescapeValue } from '../../runtime/index.js';
import { readDtm } from '../../runtime/hl7/dtm.js';
import { hl7DateTimeToIso, hl7DateToIso } from '../../runtime/channel/transforms.js';
import { FUZZ_TIMEOUT_MS, fuzzOptions } from './generators.js';

/** Inputs per CI run (times FUZZ_RUNS). */
const RUNS = { reads: 3000, dates: 5000 };

/**
 * The reads as they were before they were made to scan in place: split the text level by
 * level, then decide on the piece. Slow and plain, to hold the fast reader to.
 */
function referenceGet(message: Message, p: Hl7Path, repetitionText?: string): string | null {
  const d = message.delimiters;
  let wanted = p.segmentRepetition ?? 1;
  const segment = message.segments.find((s) => s.name === p.segment && --wanted === 0);
  if (!segment) return '';
  if (p.field === undefined) {
    const whole = segment.toString();
    return whole === '""' ? null : whole;
  }
  const delimiterField = segment.isHeader && p.field <= 2;
  let raw: string;
  if (repetitionText !== undefined) raw = withinRepetition(repetitionText, p, d);
  else if (delimiterField || (p.repetition === undefined && p.component === undefined)) raw = segment.fields[p.field] ?? '';
  else raw = withinRepetition(nth(segment.fields[p.field] ?? '', d.repetition, p.repetition ?? 1), p, d);
  if (raw === '""') return null;
  const below =
    p.subcomponent === undefined &&
    ((d.subcomponent !== undefined && raw.includes(d.subcomponent)) || (p.component === undefined && (raw.includes(d.component) || (p.repetition === undefined && raw.includes(d.repetition)))));
  return below ? raw : unescapeValue(raw, d);
}

function withinRepetition(rep: string, p: Hl7Path, d: Delimiters): string {
  if (p.component === undefined) return rep;
  const component = nth(rep, d.component, p.component);
  if (p.subcomponent === undefined || d.subcomponent === undefined) return p.subcomponent === undefined || p.subcomponent === 1 ? component : '';
  return nth(component, d.subcomponent, p.subcomponent);
}

function nth(text: string, sep: string, n: number): string {
  return text.split(sep)[n - 1] ?? '';
}

/** Encoding characters: the usual ones, short ones (no escape, no subcomponent) and unusual ones. */
const encoding = fc.constantFrom('^~\\&', '^~\\&#', '^~\\', '^~', '$*?@', '^~}');

/** Field text drawn from letters, every delimiter a message might use, escape sequences and the HL7 null. */
const fieldText = fc
  .array(fc.constantFrom('A', 'b', '1', ' ', '^', '~', '\\', '&', '$', '*', '?', '@', '}', '#', '""', '\\F\\', '\\S\\', '\\T\\', '\\R\\', '\\E\\', '\\X41\\', '\\H\\', '\\.br\\', '|'), { maxLength: 14 })
  .map((parts) => parts.join(''));

const segmentName = fc.constantFrom('PID', 'PV1', 'ZZ1', 'NTE');

const message = fc
  .record({
    encoding,
    msh: fc.array(fieldText, { minLength: 10, maxLength: 14 }),
    segments: fc.array(fc.record({ name: segmentName, fields: fc.array(fieldText, { maxLength: 9 }) }), { maxLength: 6 }),
  })
  .map(({ encoding, msh, segments }) => {
    // Field text holding '|' makes more fields: that is part of what is read, and MSH-9..12 are set apart.
    const header = `MSH|${encoding}|${msh.slice(0, 6).join('|')}|ADT^A01|C1|P|2.5.1|${msh.slice(6).join('|')}`;
    return [header, ...segments.map((s) => [s.name, ...s.fields].join('|'))].join('\r');
  });

const path = fc
  .record({
    segment: fc.constantFrom('MSH', 'PID', 'PV1', 'ZZ1', 'NTE', 'OBX'),
    segmentRepetition: fc.option(fc.integer({ min: 1, max: 3 }), { nil: undefined }),
    field: fc.option(fc.integer({ min: 1, max: 12 }), { freq: 12, nil: undefined }),
    repetition: fc.option(fc.integer({ min: 1, max: 3 }), { nil: undefined }),
    component: fc.option(fc.integer({ min: 1, max: 4 }), { nil: undefined }),
    subcomponent: fc.option(fc.integer({ min: 1, max: 3 }), { nil: undefined }),
  })
  .map((p) => {
    let text = p.segment + (p.segmentRepetition ? `[${p.segmentRepetition}]` : '');
    if (p.field === undefined) return text;
    text += `-${p.field}`;
    if (p.segment === 'MSH' && p.field <= 2) return text;
    if (p.repetition) text += `[${p.repetition}]`;
    if (p.component) text += `.${p.component}${p.subcomponent ? `.${p.subcomponent}` : ''}`;
    return text;
  });

describe('fuzz: reads give what splitting level by level gives', () => {
  test(
    `Message.get, Scope.get and reads inside each: over a field's repetitions (${fuzzOptions(RUNS.reads).numRuns} messages)`,
    () => {
      fc.assert(
        fc.property(message, fc.array(path, { minLength: 1, maxLength: 12 }), (text, paths) => {
          const m = parseMessage(text);
          const scope = Scope.of(m);
          for (const p of paths.map(parsePath)) {
            const expected = referenceGet(m, p);
            expect(m.get(p), p.text).toBe(expected);
            expect(scope.get(p), p.text).toBe(expected);
            if (p.field === undefined || p.segmentRepetition !== undefined || p.repetition !== undefined) continue;
            // The same path read inside each: over its field, against each repetition split out.
            const fieldPath = parsePath(`${p.segment}-${p.field}`);
            const repetitions = (m.segment(fieldPath)?.field(p.field) ?? '').split(m.delimiters.repetition);
            const inEach = scope.eachRepetition(fieldPath, (rep, k) => [rep.get(p), referenceGet(m, p, repetitions[k])]);
            for (const [got, want] of inEach) expect(got, `${p.text} in each: ${fieldPath.text}`).toBe(want);
          }
          // Edited segments are read from their fields rather than their text.
          const edited = parseMessage(text);
          if (edited.segments.length > 1 && edited.segments[1]!.fieldCount > 0) {
            edited.segments[1]!.setField(1, edited.segments[1]!.field(1));
            for (const p of paths.map(parsePath)) expect(edited.get(p), `${p.text} after an edit`).toBe(m.get(p));
          }
        }),
        fuzzOptions(RUNS.reads),
      );
    },
    FUZZ_TIMEOUT_MS,
  );
});

/** The DTM pattern dates were read with before they were checked character by character. */
const DTM = /^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\.\d{1,4})?([+-]\d{4})?$/;

function referenceDtm(text: string): Record<string, string> | string {
  const m = DTM.exec(text.trim());
  if (!m) return 'not';
  const [, year, month, day, hour, minute, second, fraction, offset] = m;
  if (fraction && !second) return 'fraction';
  const n = (s: string | undefined) => Number(s);
  if (month !== undefined && (n(month) < 1 || n(month) > 12)) return 'month';
  if (day !== undefined) {
    const y = n(year);
    const days = n(month) === 2 ? ((y % 4 === 0 && y % 100 !== 0) || y % 400 === 0 ? 29 : 28) : [4, 6, 9, 11].includes(n(month)) ? 30 : 31;
    if (n(day) < 1 || n(day) > days) return 'day';
  }
  if (hour !== undefined && n(hour) > 23) return 'hour';
  if (minute !== undefined && n(minute) > 59) return 'minute';
  if (second !== undefined && n(second) > 59) return 'second';
  if (offset !== undefined) {
    if (n(offset.slice(3)) > 59) return 'offset minutes';
    if (n(offset.slice(1, 3)) * 60 + n(offset.slice(3)) > (offset[0] === '+' ? 840 : 720)) return 'offset';
  }
  const parts = { year, month, day, hour, minute, second, fraction, offset };
  return Object.fromEntries(Object.entries(parts).filter(([, v]) => v !== undefined)) as Record<string, string>;
}

const problemKind = (problem: string) =>
  problem.startsWith('it is not') ? 'not' : problem.includes('fractions') ? 'fraction' : problem.includes('UTC offset minutes') ? 'offset minutes' : problem.includes('UTC offset') ? 'offset' : /its (\w+)/.exec(problem)![1]!;

describe('fuzz: dates are checked as the DTM pattern checks them', () => {
  const digits = (n: number) => fc.array(fc.constantFrom(...'0123456789'), { minLength: n, maxLength: n }).map((d) => d.join(''));
  const plausible = fc
    .tuple(
      fc.constantFrom('', ' ', '\t'),
      fc.integer({ min: 0, max: 16 }).chain(digits),
      fc.constantFrom('', '.', '.5', '.1234', '.12345', 'x'),
      fc.constantFrom('', '+0000', '-0500', '+1400', '+1401', '-1200', '-1201', '+0560', '+05', '-05000', '+ab12'),
      fc.constantFrom('', ' ', '\n', 'Z'),
    )
    .map((parts) => parts.join(''));
  // Years and pairs at the edges of each range (month 13, day 31, hour 24, minute 60).
  const edges = fc
    .tuple(
      fc.constantFrom('2024', '2023', '1900', '2000'),
      fc.array(fc.constantFrom('00', '01', '02', '04', '11', '12', '13', '23', '24', '28', '29', '30', '31', '32', '59', '60'), { maxLength: 5 }),
      fc.constantFrom('', '.0', '+0059', '-0060', '+1400', '-1159'),
    )
    .map(([year, pairs, tail]) => year + pairs.join('') + tail);
  const value = fc.oneof(plausible, edges, fc.string({ maxLength: 24 }), fc.constantFrom('20240229', '20230229', '19000229', '20000229', '20261131', '20261130235959.9999-1200'));

  test(
    `readDtm, and dates and times written as ISO 8601 (${fuzzOptions(RUNS.dates).numRuns} values)`,
    () => {
      fc.assert(
        fc.property(value, (text) => {
          const expected = referenceDtm(text);
          const reading = readDtm(text);
          if (typeof expected === 'string') {
            expect(reading.ok, text).toBe(false);
            if (!reading.ok) expect(problemKind(reading.problem), text).toBe(expected);
            expect(() => hl7DateToIso(text)).toThrow();
            return;
          }
          expect(reading.ok ? { ...reading.parts } : reading.problem, text).toEqual(expected);
          const { year, month, day, hour, minute, second, fraction, offset } = expected;
          const date = [year, month, day].filter((p) => p !== undefined).join('-');
          expect(hl7DateToIso(text), text).toBe(date);
          const time =
            hour === undefined
              ? ''
              : `T${hour}${minute === undefined ? '' : `:${minute}`}${second === undefined ? '' : `:${second}${fraction ?? ''}`}${offset ? `${offset.slice(0, 3)}:${offset.slice(3)}` : '-05:00'}`;
          expect(hl7DateTimeToIso(text, '-05:00'), text).toBe(date + time);
        }),
        fuzzOptions(RUNS.dates),
      );
    },
    FUZZ_TIMEOUT_MS,
  );
});
