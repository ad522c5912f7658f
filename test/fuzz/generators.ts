import fc from 'fast-check';
import { inject } from 'vitest';
import { corpusFiles } from '../corpus.js';

/** The run's seed (printed at start; FUZZ_SEED replays it) and the scale of the input counts (FUZZ_RUNS). */
export const FUZZ_SEED = inject('fuzzSeed');
const FUZZ_SCALE = inject('fuzzScale');

/**
 * fast-check settings for a property with `base` inputs per CI run (times FUZZ_RUNS). Without
 * `shrink` the first counterexample is reported as found: shrinking a serve-path case costs a
 * connection per step, and the seed and path printed replay it anyway.
 */
export function fuzzOptions(base: number, { shrink = true } = {}): { seed: number; numRuns: number; endOnFailure: boolean } {
  return { seed: FUZZ_SEED, numRuns: Math.max(1, Math.round(base * FUZZ_SCALE)), endOnFailure: !shrink };
}

/** Per-test timeout: the suite's default, stretched as FUZZ_RUNS stretches the counts. */
export const FUZZ_TIMEOUT_MS = Math.round(30_000 * Math.max(1, FUZZ_SCALE));

/** CPU time (user + system, all threads of this process) spent by fn, in microseconds. */
export function cpuMicros<T>(fn: () => T): { value: T; micros: number } {
  const before = process.cpuUsage();
  const value = fn();
  const used = process.cpuUsage(before);
  return { value, micros: used.user + used.system };
}

/** The bound: no single message may take more than 1 s of CPU. */
export const MAX_CPU_MICROS_PER_MESSAGE = 1_000_000;

/** Every real message of the shared corpus (malformed and batch files included), as bytes. */
export const CORPUS: Buffer[] = corpusFiles().map((f) => f.bytes);
/** Corpus files that are single messages (no batch envelope): the serve path gets one message per frame. */
export const CORPUS_MESSAGES: Buffer[] = corpusFiles((c) => c !== 'batch').map((f) => f.bytes);

/** Bytes that mean something to MLLP, HL7 or a decoder, drawn more often than chance would. */
const SPECIAL_BYTES = [0x00, 0x0b, 0x1c, 0x0d, 0x0a, 0x09, 0x7f, 0xff, 0xfe, 0xc3, 0x80, 0xe2, 0x7c, 0x5e, 0x7e, 0x5c, 0x26, 0x20, 0x23];
export const specialByte = fc.constantFrom(...SPECIAL_BYTES);
export const anyByte = fc.oneof({ weight: 3, arbitrary: fc.integer({ min: 0, max: 255 }) }, { weight: 2, arbitrary: specialByte }, { weight: 3, arbitrary: fc.integer({ min: 0x20, max: 0x7e }) });

/** Random bytes, biased towards the control bytes of MLLP and the HL7 delimiters. */
export const randomBytes = (maxLength = 300) => fc.array(anyByte, { maxLength }).map((a) => Buffer.from(a));

const INVALID_UTF8 = [[0xc3, 0x28], [0xa0, 0xa1], [0xe2, 0x28, 0xa1], [0xf0, 0x28, 0x8c, 0xbc], [0xfe], [0xed, 0xa0, 0x80], [0xc0, 0xaf]].map((b) => Buffer.from(b));
const MSH_2_VARIANTS = ['^~\\&', '^~\\&#', '^~', '^', '', '^H', '7C', '||||', '^~\\&\\', '^^^^', '\u0000~\\&', 'ÄÖÜß', '^~\\&|||'];
const FIELD_SEPARATORS = ['|', '^', '\r', '\u001c', '\u000b', 'A', ' ', '\u0000', '€'];
const CHARSETS = ['', 'UNICODE UTF-8', '8859/1', '8859/15', 'ISO IR87', 'UNICODE UTF-16', 'ASCII', 'garbage~8859/1', '8859/5'];
const ACK_REQUESTS = ['', 'AL', 'NE', 'ER', 'SU', 'XX'];
const MESSAGE_TYPES = ['ADT^A08^ADT_A01', 'ACK', 'ACK^A01', 'ORU^R01^ORU_R01', 'SIU^S12', 'ZZZ^Z99', '', '^^^', 'ADT^A40^ADT_A39'];

/** One edit to a message's bytes; positions are fractions of its length so shrinking keeps them meaningful. */
export type Mutation = (bytes: Buffer) => Buffer;

const at = (bytes: Buffer, fraction: number) => Math.floor(fraction * bytes.length);
const fraction = fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true });

/** Rewrites one MSH field (1-based as in HL7: MSH-3 is the third after the segment name) leniently. */
function setMshField(bytes: Buffer, field: number, value: string): Buffer {
  const text = bytes.toString('latin1');
  const end = text.search(/[\r\n]/);
  const line = end === -1 ? text : text.slice(0, end);
  if (!line.startsWith('MSH') || line.length < 4) return bytes;
  const sep = line[3]!;
  const parts = line.split(sep);
  // parts[0] = 'MSH', parts[1] = MSH-2, parts[k] = MSH-(k+1)
  while (parts.length <= field - 1) parts.push('');
  parts[field - 1] = value;
  return Buffer.concat([Buffer.from(parts.join(sep), 'latin1'), bytes.subarray(line.length)]);
}

const smallMutation: fc.Arbitrary<Mutation> = fc.oneof(
  // Overwrite, insert or delete bytes.
  fc.tuple(fraction, anyByte).map(([f, b]): Mutation => (m) => (m.length ? Buffer.concat([m.subarray(0, at(m, f)), Buffer.from([b]), m.subarray(at(m, f) + 1)]) : m)),
  fc.tuple(fraction, fc.array(anyByte, { minLength: 1, maxLength: 8 })).map(([f, b]): Mutation => (m) => Buffer.concat([m.subarray(0, at(m, f)), Buffer.from(b), m.subarray(at(m, f))])),
  fc.tuple(fraction, fc.integer({ min: 1, max: 200 })).map(([f, n]): Mutation => (m) => Buffer.concat([m.subarray(0, at(m, f)), m.subarray(at(m, f) + n)])),
  // Cut short anywhere (inside MSH, mid-field, mid-UTF-8 sequence).
  fraction.map((f): Mutation => (m) => m.subarray(0, at(m, f))),
  // Invalid UTF-8 somewhere.
  fc.tuple(fraction, fc.constantFrom(...INVALID_UTF8)).map(([f, b]): Mutation => (m) => Buffer.concat([m.subarray(0, at(m, f)), b, m.subarray(at(m, f))])),
  // Wrong delimiters: MSH-1 and MSH-2.
  fc.tuple(fc.constantFrom(...FIELD_SEPARATORS), fc.constantFrom(...MSH_2_VARIANTS)).map(([sep, enc]): Mutation => (m) => {
    const text = m.toString('latin1');
    if (!text.startsWith('MSH') || text.length < 4) return m;
    const old = text[3]!;
    const rest = text.slice(4);
    const fieldEnd = rest.indexOf(old);
    return Buffer.concat([Buffer.from('MSH' + sep + enc, 'utf8'), Buffer.from(fieldEnd === -1 ? '' : rest.slice(fieldEnd), 'latin1')]);
  }),
  // Header fields receivers branch on.
  fc.constantFrom(...CHARSETS).map((v): Mutation => (m) => setMshField(m, 18, v)),
  fc.tuple(fc.constantFrom(...ACK_REQUESTS), fc.constantFrom(...ACK_REQUESTS)).map(([a, b]): Mutation => (m) => setMshField(setMshField(m, 15, a), 16, b)),
  fc.constantFrom(...MESSAGE_TYPES).map((v): Mutation => (m) => setMshField(m, 9, v)),
  fc.string({ maxLength: 30, unit: 'binary' }).map((v): Mutation => (m) => setMshField(m, 10, v)),
  // Line ends: LF, CRLF, none.
  fc.constantFrom('\n', '\r\n', '', '\r\r').map((eol): Mutation => (m) => Buffer.from(m.toString('latin1').replace(/\r\n|\r|\n/g, eol), 'latin1')),
  // A slice repeated: segments or fields many times over.
  fc.tuple(fraction, fc.integer({ min: 1, max: 60 }), fc.integer({ min: 2, max: 400 })).map(([f, len, times]): Mutation => (m) => {
    const from = at(m, f);
    const piece = m.subarray(from, from + len);
    return Buffer.concat([m.subarray(0, from), ...Array<Buffer>(times).fill(piece), m.subarray(from)]);
  }),
);

/** Edits that make a message big (up to a few hundred KB): rarer, since each costs a parse of that size. */
const hugeMutation: fc.Arbitrary<Mutation> = fc.oneof(
  // Huge repetitions in PID-3 (the walk that once froze the engine), or in any field.
  fc.tuple(fc.integer({ min: 100, max: 20_000 }), fc.constantFrom('~E$^^^EPI^MR', '~', '~^', '~&&&', '~X')).map(([n, rep]): Mutation => (m) => {
    const text = m.toString('latin1');
    const pid = text.search(/(^|[\r\n])PID\|/);
    const start = pid === -1 ? text.indexOf('|', 4) : text.indexOf('|', text.indexOf('|', text.indexOf('|', pid + 4) + 1) + 1);
    if (start === -1) return m;
    const reps = rep.includes('$') ? Array.from({ length: n }, (_, i) => rep.replace('$', String(i))).join('') : rep.repeat(n);
    return Buffer.concat([Buffer.from(text.slice(0, start + 1), 'latin1'), Buffer.from(`X1^^^EPI^MR${reps}`, 'latin1'), Buffer.from(text.slice(start + 1), 'latin1')]);
  }),
  // Huge segments: one long field, or thousands of segments.
  fc.tuple(fc.integer({ min: 1_000, max: 200_000 }), fc.constantFrom('x', 'é', '\\X0D\\', '^', '&')).map(([n, unit]): Mutation => (m) => Buffer.concat([m, Buffer.from(`NTE|1||${unit.repeat(Math.ceil(n / unit.length))}\r`, 'utf8')])),
  fc.tuple(fc.integer({ min: 100, max: 5_000 }), fc.constantFrom('OBX|1|ST|X^Y||v||||||F\r', 'NTE|1||n\r', 'ZZ1|a\r', 'AIP|1||P^Q\r', '\r')).map(([n, seg]): Mutation => (m) => Buffer.concat([m, Buffer.from(seg.repeat(n), 'latin1')])),
);

const mutation: fc.Arbitrary<Mutation> = fc.oneof({ weight: 30, arbitrary: smallMutation }, { weight: 1, arbitrary: hugeMutation });

/** A real corpus message with one to four mutations applied. */
export const mutatedCorpusMessage = (pool: Buffer[] = CORPUS): fc.Arbitrary<Buffer> =>
  fc.tuple(fc.constantFrom(...pool), fc.array(mutation, { minLength: 1, maxLength: 4 })).map(([bytes, edits]) => edits.reduce((m, edit) => edit(m), bytes));

/** Random bytes after a plausible header start, so the parser gets past "no MSH". */
export const headerThenNoise = fc.tuple(fc.constantFrom('MSH|^~\\&|', 'MSH|', 'MSH^~|\\&^', 'FHS|^~\\&|', 'BHS|^~\\&|', 'MSH|^~\\&|A|B|C|D|20261125||ADT^A08|X|P|2.5.1\r'), randomBytes(200)).map(([head, noise]) => Buffer.concat([Buffer.from(head, 'latin1'), noise]));

/** Every kind of input the parser and the serve path get: real messages mutated, noise after a header, random bytes. */
export const hl7Input = (pool: Buffer[] = CORPUS): fc.Arbitrary<Buffer> =>
  fc.oneof({ weight: 6, arbitrary: mutatedCorpusMessage(pool) }, { weight: 1, arbitrary: fc.constantFrom(...pool) }, { weight: 2, arbitrary: headerThenNoise }, { weight: 1, arbitrary: randomBytes() });

/** Positions at which to cut a byte stream into chunks (as fractions, sorted later). */
export const cutPoints = fc.array(fraction, { maxLength: 12 });

/** A stream cut at those fractions (plus, sometimes, into single bytes): every way TCP may deliver it. */
export function cut(stream: Buffer, fractions: number[], dribble = false): Buffer[] {
  if (dribble && stream.length < 600) return Array.from(stream, (b) => Buffer.from([b]));
  const points = [...new Set(fractions.map((f) => Math.floor(f * stream.length)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const p of points) {
    if (p > from) chunks.push(stream.subarray(from, p));
    from = Math.max(from, p);
  }
  if (from < stream.length || chunks.length === 0) chunks.push(stream.subarray(from));
  return chunks;
}
