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

/**
 * A DT/DTM that passed every check, as where its parts lie in its text: writers copy the digits
 * they need from it rather than take the value apart first.
 */
export interface DtmText {
  ok: true;
  /** The value, trimmed. */
  text: string;
  /** How many digits it starts with: 4 (YYYY) to 14 (YYYYMMDDHHMMSS), always even. */
  digits: number;
  /** Where the fraction starts (its dot), or -1. */
  fractionAt: number;
  /** Where the UTC offset starts (its sign), or -1. */
  offsetAt: number;
}

export type DtmCheck = DtmText | { ok: false; problem: string };

const NOT_DTM = 'it is not an HL7 date/time (YYYY[MM[DD[HH[MM[SS[.SSSS]]]]]][+/-ZZZZ])';

/** The parts of an HL7 DT/DTM, or what makes it none (said without the value: it may be a birth date). */
export function readDtm(text: string): DtmReading {
  const dtm = checkDtm(text);
  if (!dtm.ok) return dtm;
  const { text: s, digits, fractionAt, offsetAt } = dtm;
  const parts: DtmParts = { year: s.slice(0, 4) };
  if (digits >= 6) parts.month = s.slice(4, 6);
  if (digits >= 8) parts.day = s.slice(6, 8);
  if (digits >= 10) parts.hour = s.slice(8, 10);
  if (digits >= 12) parts.minute = s.slice(10, 12);
  if (digits >= 14) parts.second = s.slice(12, 14);
  if (fractionAt !== -1) parts.fraction = s.slice(fractionAt, offsetAt === -1 ? s.length : offsetAt);
  if (offsetAt !== -1) parts.offset = s.slice(offsetAt);
  return { ok: true, parts };
}

/**
 * Checks an HL7 DT/DTM and says where its parts lie, or what makes it none. Read character by
 * character, without making a string: every mapped date goes through here, and the regular
 * expression with eight groups it replaces cost more than the rest of a mapping's reads.
 */
export function checkDtm(text: string): DtmCheck {
  const s = text.trim();
  const n = s.length;
  let digits = 0;
  while (digits < n && isDigit(s.charCodeAt(digits))) digits++;
  // YYYY, then up to five more pairs of digits (MM DD HH MM SS).
  if (digits < 4 || digits > 14 || (digits & 1) === 1) return { ok: false, problem: NOT_DTM };
  let i = digits;
  let fractionAt = -1;
  if (i < n && s.charCodeAt(i) === 0x2e) {
    let end = i + 1;
    while (end < n && isDigit(s.charCodeAt(end))) end++;
    if (end === i + 1 || end - i > 5) return { ok: false, problem: NOT_DTM };
    fractionAt = i;
    i = end;
  }
  let offsetAt = -1;
  const sign = i < n ? s.charCodeAt(i) : 0;
  if (sign === 0x2b || sign === 0x2d) {
    if (n !== i + 5 || !isDigit(s.charCodeAt(i + 1)) || !isDigit(s.charCodeAt(i + 2)) || !isDigit(s.charCodeAt(i + 3)) || !isDigit(s.charCodeAt(i + 4))) {
      return { ok: false, problem: NOT_DTM };
    }
    offsetAt = i;
    i = n;
  }
  if (i !== n) return { ok: false, problem: NOT_DTM };
  if (fractionAt !== -1 && digits < 14) return { ok: false, problem: 'it has fractions of a second but no seconds' };
  if (digits >= 6) {
    const month = twoDigits(s, 4);
    if (month < 1 || month > 12) return { ok: false, problem: 'its month is not 01-12' };
    if (digits >= 8) {
      const days = daysInMonth(twoDigits(s, 0) * 100 + twoDigits(s, 2), month);
      const day = twoDigits(s, 6);
      if (day < 1 || day > days) return { ok: false, problem: `its day is not 01-${days} for its month` };
    }
  }
  if (digits >= 10 && twoDigits(s, 8) > 23) return { ok: false, problem: 'its hour is not 00-23' };
  if (digits >= 12 && twoDigits(s, 10) > 59) return { ok: false, problem: 'its minute is not 00-59' };
  if (digits >= 14 && twoDigits(s, 12) > 59) return { ok: false, problem: 'its second is not 00-59' };
  if (offsetAt !== -1) {
    // Minutes 00-59, and within -1200 to +1400, the offsets zones use (UTC-12:00 Baker Island to UTC+14:00 Line Islands).
    if (twoDigits(s, offsetAt + 3) > 59) return { ok: false, problem: 'its UTC offset minutes are not 00-59' };
    const minutes = twoDigits(s, offsetAt + 1) * 60 + twoDigits(s, offsetAt + 3);
    if (minutes > (s.charCodeAt(offsetAt) === 0x2b ? 14 * 60 : 12 * 60)) return { ok: false, problem: 'its UTC offset is not -1200 to +1400' };
  }
  return { ok: true, text: s, digits, fractionAt, offsetAt };
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/** The number written by the two digits at i (both known to be digits). */
function twoDigits(s: string, i: number): number {
  return (s.charCodeAt(i) - 0x30) * 10 + s.charCodeAt(i + 1) - 0x30;
}

/** Days in a month of the proleptic Gregorian calendar. */
export function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}
