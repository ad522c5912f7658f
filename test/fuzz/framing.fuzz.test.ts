import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { BufferBudget, HEAD_BYTES, MllpDecoder } from '../../runtime/index.js';
import { reference } from './reference.js';
import type { Decoded, FrameEvent } from './reference.js';
import { FUZZ_TIMEOUT_MS, anyByte, cut, cutPoints, fuzzOptions, hl7Input, randomBytes } from './generators.js';

/** Inputs per CI run (times FUZZ_RUNS): 7,200 byte streams through the MLLP decoder. */
const RUNS = { streams: 5000, framed: 1500, budget: 600, giant: 100 };

/**
 * The head kept of a frame over the limit is its first bytes as they were when the frame went
 * over: at most HEAD_BYTES, and at least the first max + 1 (all HEAD_BYTES when max is that
 * big, as any real limit is). How many more depends on where the reads were cut, so both sides
 * are compared as "a prefix of the frame of at least that length".
 */
function headMatches(actual: string, frame: string, max: number): boolean {
  return frame.startsWith(actual) && actual.length <= HEAD_BYTES && actual.length >= Math.min(HEAD_BYTES, max + 1, frame.length);
}

function sameEvents(actual: FrameEvent[], expected: Array<FrameEvent & { whole?: string }>, max: number): void {
  expect(actual.map((e) => Object.keys(e)[0])).toEqual(expected.map((e) => Object.keys(e)[0]));
  expected.forEach((want, i) => {
    const got = actual[i]!;
    if ('frame' in want) expect(got).toEqual({ frame: want.frame });
    else if ('oversize' in want) {
      expect((got as { oversize: number }).oversize).toBe(want.oversize);
      expect(headMatches((got as { head: string }).head, want.whole!, max), `head of an oversize frame`).toBe(true);
    } else if (want.whole !== undefined && want.whole.length > max) expect(headMatches((got as { truncated: string }).truncated, want.whole, max), 'head of a cut-off oversize frame').toBe(true);
    else expect(got).toEqual({ truncated: want.truncated });
  });
}

function decoder(max: number, budget?: BufferBudget) {
  const out: Decoded & { overBudget: boolean } = { events: [], discarded: 0, overBudget: false };
  const d = new MllpDecoder(
    {
      frame: (p) => out.events.push({ frame: p.toString('latin1') }),
      truncated: (p) => out.events.push({ truncated: p.toString('latin1') }),
      oversize: (head, size) => out.events.push({ oversize: size, head: head.toString('latin1') }),
      discarded: (n) => (out.discarded += n),
      overBudget: () => (out.overBudget = true),
    },
    max,
    budget,
  );
  return { d, out };
}

/** Frames of HL7-ish payloads with noise around and between them, lone <EB>s, and frames cut off by <SB>. */
const framedStream = fc
  .array(
    fc.oneof(
      { weight: 4, arbitrary: hl7Input().map((p) => Buffer.concat([Buffer.from([0x0b]), p, Buffer.from([0x1c, 0x0d])])) },
      { weight: 1, arbitrary: hl7Input().map((p) => Buffer.concat([Buffer.from([0x0b]), p, Buffer.from([0x1c])])) },
      { weight: 1, arbitrary: randomBytes(40) },
      { weight: 1, arbitrary: fc.constantFrom(Buffer.from([0x1c]), Buffer.from([0x1c, 0x0d]), Buffer.from([0x0b]), Buffer.from('\r\n '), Buffer.from([0x00, 0x00])) },
    ),
    { maxLength: 6 },
  )
  .map((parts) => Buffer.concat(parts));

/** A stream of raw bytes, most of them MLLP control bytes, for the state machine's corners. */
const controlStream = fc.array(fc.oneof({ weight: 1, arbitrary: fc.constantFrom(0x0b, 0x1c, 0x0d) }, { weight: 2, arbitrary: anyByte }), { maxLength: 400 }).map((a) => Buffer.from(a));

function checkAgainstReference(stream: Buffer, fractions: number[], dribble: boolean, max: number): void {
  const { d, out } = decoder(max);
  for (const chunk of cut(stream, fractions, dribble)) {
    // A chunk may be a view into a bigger buffer, as reads from a socket often are.
    d.push(chunk);
    expect(d.bufferedBytes, 'bytes held for a partial frame').toBeLessThanOrEqual(max + HEAD_BYTES);
    expect(d.retainedBytes, 'memory held for a partial frame').toBeLessThanOrEqual(max + HEAD_BYTES);
  }
  const expected = reference(stream, max);
  sameEvents(out.events, expected.events, max);
  expect(out.discarded).toBe(expected.discarded);
  expect(d.pending).toBe(stream.lastIndexOf(0x0b) > stream.lastIndexOf(0x1c));
}

describe('fuzz: MLLP framing gives the frames a simple reference does, however the bytes are cut', () => {
  test(`random byte streams rich in <SB>, <EB>, <CR>, NUL and invalid UTF-8, cut anywhere or into single bytes (${fuzzOptions(RUNS.streams).numRuns} streams)`, () => {
    fc.assert(
      fc.property(controlStream, cutPoints, fc.boolean(), fc.integer({ min: 0, max: 120 }), (stream, fractions, dribble, max) => checkAgainstReference(stream, fractions, dribble, max)),
      fuzzOptions(RUNS.streams),
    );
  }, FUZZ_TIMEOUT_MS);

  test(`framed corpus messages (mutated) with noise, lone <EB>, <SB> inside a frame, frames over the limit (${fuzzOptions(RUNS.framed).numRuns} streams)`, () => {
    fc.assert(
      fc.property(framedStream, cutPoints, fc.boolean(), fc.constantFrom(64, 512, 4096, 64 * 1024, 10 * 1024 * 1024), (stream, fractions, dribble, max) =>
        checkAgainstReference(stream, fractions, dribble, max),
      ),
      fuzzOptions(RUNS.framed),
    );
  }, FUZZ_TIMEOUT_MS);

  test(`giant frames beyond the limit are skipped with bounded memory and reported with their size (${fuzzOptions(RUNS.giant).numRuns} streams)`, () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 3 * 1024 * 1024 }), fc.integer({ min: 1, max: 64 }), fc.boolean(), (size, pieces, withCr) => {
        const max = 1024 * 1024;
        const body = Buffer.alloc(size, 0x41);
        body.write('MSH|^~\\&|', 0, 'latin1');
        const stream = Buffer.concat([Buffer.from([0x0b]), body, Buffer.from(withCr ? [0x1c, 0x0d] : [0x1c]), Buffer.from('\x0bMSH|after\x1c\r', 'latin1')]);
        const { d, out } = decoder(max);
        for (const chunk of cut(stream, Array.from({ length: pieces }, (_, i) => (i + 0.5) / pieces))) {
          d.push(chunk);
          expect(d.retainedBytes).toBeLessThanOrEqual(max + HEAD_BYTES);
        }
        const first = out.events[0]!;
        if (size > max) {
          expect((first as { oversize: number }).oversize).toBe(size);
          expect((first as { head: string }).head).toBe(body.subarray(0, HEAD_BYTES).toString('latin1'));
        } else expect((first as { frame: string }).frame.length).toBe(size);
        expect(out.events.slice(1)).toEqual([{ frame: 'MSH|after' }]);
        expect(out.discarded).toBe(0);
      }),
      fuzzOptions(RUNS.giant),
    );
  }, FUZZ_TIMEOUT_MS);

  test(`connections sharing a buffer budget never hold more than it, and give every byte back when they close (${fuzzOptions(RUNS.budget).numRuns} runs)`, () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 7 }), framedStream, cutPoints), { minLength: 1, maxLength: 12 }), fc.integer({ min: 64, max: 64 * 1024 }), (writes, limit) => {
        const budget = new BufferBudget(limit);
        const connections = Array.from({ length: 8 }, () => decoder(32 * 1024, budget));
        for (const [which, stream, fractions] of writes) {
          for (const chunk of cut(stream, fractions)) {
            connections[which]!.d.push(chunk);
            expect(budget.used).toBeLessThanOrEqual(limit);
          }
        }
        for (const c of connections) c.d.release();
        expect(budget.used).toBe(0);
      }),
      fuzzOptions(RUNS.budget),
    );
  }, FUZZ_TIMEOUT_MS);
});
