/**
 * HL7 DT / DTM values, read strictly: YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ]. A value
 * is kept at the precision it was sent with (a month stays a month) and a value that names no
 * real instant (month 13, 30 February, hour 25) is refused, never passed on as a wrong date.
 */
export interface DtmParts {
  year: string;
  month?: string;
  day?: string;
  hour?: string;
  minute?: string;
  second?: string;
  /** With its dot: ".1234". */
  fraction?: string;
  /** +HHMM / -HHMM as sent. */
  offset?: string;
}

export type DtmReading = { ok: true; parts: DtmParts } | { ok: false; problem: string };

const DTM = /^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\.\d{1,4})?([+-]\d{4})?$/;

/** The parts of an HL7 DT/DTM, or what makes it none (said without the value: it may be a birth date). */
export function readDtm(text: string): DtmReading {
  const m = DTM.exec(text.trim());
  if (!m) return { ok: false, problem: 'it is not an HL7 date/time (YYYY[MM[DD[HH[MM[SS[.SSSS]]]]]][+/-ZZZZ])' };
  const [, year, month, day, hour, minute, second, fraction, offset] = m;
  if (fraction && !second) return { ok: false, problem: 'it has fractions of a second but no seconds' };
  const parts: DtmParts = { year: year! };
  if (month !== undefined) {
    if (!inRange(month, 1, 12)) return { ok: false, problem: 'its month is not 01-12' };
    parts.month = month;
  }
  if (day !== undefined) {
    const days = daysInMonth(Number(year), Number(month));
    if (!inRange(day, 1, days)) return { ok: false, problem: `its day is not 01-${days} for its month` };
    parts.day = day;
  }
  if (hour !== undefined) {
    if (!inRange(hour, 0, 23)) return { ok: false, problem: 'its hour is not 00-23' };
    parts.hour = hour;
  }
  if (minute !== undefined) {
    if (!inRange(minute, 0, 59)) return { ok: false, problem: 'its minute is not 00-59' };
    parts.minute = minute;
  }
  if (second !== undefined) {
    if (!inRange(second, 0, 59)) return { ok: false, problem: 'its second is not 00-59' };
    parts.second = second;
  }
  if (fraction !== undefined) parts.fraction = fraction;
  if (offset !== undefined) {
    const problem = offsetProblem(offset);
    if (problem) return { ok: false, problem };
    parts.offset = offset;
  }
  return { ok: true, parts };
}

/**
 * What is wrong with a +HHMM / -HHMM offset, if anything: its minutes are 00-59 and it lies
 * within -1200 to +1400, the offsets zones use (UTC-12:00 Baker Island to UTC+14:00 Line Islands).
 */
function offsetProblem(offset: string): string | undefined {
  if (!inRange(offset.slice(3), 0, 59)) return 'its UTC offset minutes are not 00-59';
  const minutes = Number(offset.slice(1, 3)) * 60 + Number(offset.slice(3));
  if (minutes > (offset[0] === '+' ? 14 * 60 : 12 * 60)) return 'its UTC offset is not -1200 to +1400';
  return undefined;
}

/** Days in a month of the proleptic Gregorian calendar. */
export function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

function inRange(digits: string, low: number, high: number): boolean {
  const n = Number(digits);
  return n >= low && n <= high;
}
