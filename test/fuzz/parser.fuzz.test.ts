import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { acknowledgements, Hl7ParseError, parseBatch, parseMessage, readAck, receive } from '../../runtime/index.js';
import type { Message } from '../../runtime/index.js';
import { FUZZ_TIMEOUT_MS, MAX_CPU_MICROS_PER_MESSAGE, cpuMicros, fuzzOptions, hl7Input } from './generators.js';

/** Inputs per CI run (times FUZZ_RUNS): 11,000 over the parser's entry points. */
const RUNS = { bytes: 4000, text: 3000, receive: 4000 };

/** Runs a parse and says how it ended: a message (or batch) or a typed parse error, nothing else. */
function outcome<T>(parse: () => T): { ok: true; value: T } | { ok: false; error: Hl7ParseError } {
  const { value, micros } = cpuMicros(() => {
    try {
      return { ok: true as const, value: parse() };
    } catch (err) {
      if (err instanceof Hl7ParseError) return { ok: false as const, error: err };
      throw err;
    }
  });
  expect(micros, 'CPU time of one parse (µs)').toBeLessThan(MAX_CPU_MICROS_PER_MESSAGE);
  return value;
}

/** A parsed message reads back: every segment's fields can be read and it encodes to text that parses the same. */
function readsBack(message: Message): void {
  const text = message.toString();
  const again = parseMessage(text);
  expect(again.toString()).toBe(text);
  expect(message.segments.length).toBeGreaterThan(0);
  void message.controlId;
  void message.getRaw('MSH-9');
}

/** parseMessage and parseBatch each end in messages that read back, or in a typed error. */
function bothEntryPoints(input: string | Buffer): void {
  const single = outcome(() => parseMessage(input));
  if (single.ok) readsBack(single.value);
  const batch = outcome(() => parseBatch(input));
  if (batch.ok) for (const m of batch.value.messages) readsBack(m);
}

/** An ACK a receiver could send: framable (no MLLP control bytes) and readable as an ACK. */
function isSendableAck(ack: Buffer, code: RegExp): void {
  expect(ack.includes(0x0b), 'ACK holds a 0x0B').toBe(false);
  expect(ack.includes(0x1c), 'ACK holds a 0x1C').toBe(false);
  expect(readAck(parseMessage(ack)).code).toMatch(code);
}

describe('fuzz: the parser ends every input as a message or a typed error', () => {
  test(`bytes (parseMessage and parseBatch): mutated corpus messages, noise after a header, random bytes (${fuzzOptions(RUNS.bytes).numRuns} inputs)`, () => {
    fc.assert(
      fc.property(hl7Input(), (bytes) => bothEntryPoints(bytes)),
      fuzzOptions(RUNS.bytes),
    );
  }, FUZZ_TIMEOUT_MS);

  test(`text (parseMessage and parseBatch on strings): the same inputs decoded, and arbitrary Unicode (${fuzzOptions(RUNS.text).numRuns} inputs)`, () => {
    const text = fc.oneof(
      hl7Input().map((b) => b.toString('utf8')),
      hl7Input().map((b) => b.toString('latin1')),
      fc.string({ unit: 'binary', maxLength: 200 }).map((s) => `MSH|^~\\&|${s}`),
      fc.string({ unit: 'binary', maxLength: 200 }),
    );
    fc.assert(
      fc.property(text, (input) => bothEntryPoints(input)),
      fuzzOptions(RUNS.text),
    );
  }, FUZZ_TIMEOUT_MS);

  test(`receive: an unreadable payload gets a sendable AR; a readable one sendable ACKs (${fuzzOptions(RUNS.receive).numRuns} inputs)`, () => {
    fc.assert(
      fc.property(hl7Input(), fc.constantFrom('accept', 'reject', 'error', 'not_stored') as fc.Arbitrary<'accept' | 'reject' | 'error' | 'not_stored'>, (bytes, result) => {
        const { value: received, micros } = cpuMicros(() => receive(bytes));
        expect(micros).toBeLessThan(MAX_CPU_MICROS_PER_MESSAGE);
        if (!received.ok) {
          expect(received.error).toBeInstanceOf(Hl7ParseError);
          isSendableAck(received.reject, /^AR$/);
          return;
        }
        for (const ack of acknowledgements(received.message, result)) isSendableAck(ack, /^(AA|AE|AR|CA|CE|CR)$/);
      }),
      fuzzOptions(RUNS.receive),
    );
  }, FUZZ_TIMEOUT_MS);
});
