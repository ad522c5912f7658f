import { knownSegments } from '../hl7/versions/tables.js';

/**
 * A reason (why a message was rejected or failed, a destination's last error, a /health reason)
 * as a caller without the operator role sees it. Reasons are written for operators and can
 * quote patient data: a receiver's ACK text ("AE: Unknown patient SMITH^JOHN, MRN 77123"), a
 * JSON parser's excerpt of the body, a custom transform's message. What stays is what says what
 * went wrong without saying about whom: prose in lower case, field positions (PID-3, PID-3.1,
 * CX.4), segment names, ACK and HTTP codes, small numbers (counts, HL7 error codes, sizes with
 * their unit), hl7c's own timestamps and spec locations (file:line:col). Everything else (quoted text, HL7-encoded values, names, identifiers, dates) is
 * replaced by •••. Masking more than needed is the side it errs on.
 */
export const MASK = '•••';

/** Upper-case words that are kinds of things, never values. */
const CODES = new Set([
  'AA', 'AE', 'AR', 'CA', 'CE', 'CR', 'ACK', 'NAK', 'ERR', 'HL7', 'MLLP', 'HTTP', 'HTTPS', 'JSON', 'XML', 'TLS', 'SMTP', 'SQL', 'URL', 'ID', 'OK', 'UTC',
  'GET', 'POST', 'PUT', 'DELETE', 'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', 'EHOSTUNREACH', 'EPIPE', 'ENOENT', 'EACCES', 'ENOSPC',
]);
let segments: Set<string> | undefined;

/** HL7 positions: PID-3, PID[2]-3[1].4.1, MSH-9; components of a data type: CX.4. */
const POSITION = /^[A-Z][A-Z0-9]{2}(\[\d+\])?-\d+(\[\d+\])?(\.\d+){0,2}$|^[A-Z]{2,3}\.\d+$/;
/** Prose, error codes and names from the spec: spec/unknown-field, on_failure, dead-lettered, patient.birth_date. */
const WORD = /^[a-z]+(['’][a-z]+)?([/_.-][a-z0-9]+)*$/;
/** A capitalised word that starts a sentence ("Unexpected token …"). */
const SENTENCE_START = /^[A-Z][a-z]+$/;
const UNITS = /^(bytes?|ms|seconds?|s|minutes?|levels?|kb|mb|kib|mib|characters?|repetitions?|segments?|attempts?|entries|entry|messages?)\b/;
/** Text in quotes, as a whole: whatever it holds is a value. */
const QUOTED = /(^|[\s([{:,=])(['"`“‘])(.*?)(['"`”’])(?=$|[\s)\]},.;:!?…])/g;

function keeps(core: string, sentenceStart: boolean, next: string | undefined): boolean {
  if (core === '' || core === MASK) return true;
  if (WORD.test(core) || CODES.has(core) || POSITION.test(core)) return true;
  if (sentenceStart && SENTENCE_START.test(core)) return true;
  if (/^\d{1,4}(-\d{1,4})?$/.test(core) || /^2\.\d(\.\d)?$/.test(core)) return true;
  if (/^\d+$/.test(core) && next !== undefined && UNITS.test(next)) return true;
  if (/^\d+(ms|s)$/.test(core)) return true;
  // When hl7c did something (a system time, never a patient's date), and where in a spec.
  if (/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/.test(core)) return true;
  if (/^[\w./-]+\.(ya?ml|csv|json):\d+:\d+$/.test(core)) return true;
  if (/^[A-Z][A-Z0-9]{2}$/.test(core)) return (segments ??= new Set(knownSegments())).has(core);
  return false;
}

/** One word with its punctuation around it: the punctuation stays, the word is kept or masked. */
function maskWord(token: string, sentenceStart: boolean, next: string | undefined): string {
  // key=value: the key is kept as prose is, the value judged on its own.
  // hl7c's own plurals: message(s), attempt(s).
  if (/^[a-z]+\(s\)[,.;:]?$/.test(token)) return token;
  const eq = token.indexOf('=');
  if (eq > 0) return `${maskWord(token.slice(0, eq), false, undefined)}=${maskWord(token.slice(eq + 1), false, next)}`;
  const m = /^([({<'"`“‘]*)(.*?)([)}>'"`”’,.;:!?…]*)$/.exec(token)!;
  const [, open, core, close] = m as unknown as [string, string, string, string];
  return keeps(core, sentenceStart, next) ? token : `${open}${MASK}${close}`;
}

export function maskReason(text: string): string;
export function maskReason(text: string | null): string | null;
export function maskReason(text: string | null): string | null {
  if (text === null) return null;
  const unquoted = text.replace(QUOTED, (_all, before: string, open: string, _inner: string, close: string) => `${before}${open}${MASK}${close}`);
  const parts = unquoted.split(/(\s+)/);
  const words = parts.filter((_, i) => i % 2 === 0);
  let sentenceStart = true;
  return parts
    .map((part, i) => {
      if (i % 2 === 1) return part;
      const w = i / 2;
      const out = maskWord(part, sentenceStart, words[w + 1]);
      sentenceStart = /[.;!?]$/.test(part);
      return out;
    })
    .join('');
}
