import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { ChannelDefinition, ChannelResult } from '../../runtime/index.js';
import { ackCodesOf, HL7_NULL, runChannel } from '../../runtime/index.js';
import type { TestCase } from '../spec/types.js';

export interface CaseResult {
  name: string;
  passed: boolean;
  /** One line per mismatch: what was expected, what came. */
  mismatches: string[];
}

/** Reads a test input: inline segments (one per line), inline JSON, or a file relative to the spec. */
export async function testInput(input: string | Record<string, unknown>, specDir: string): Promise<Buffer> {
  if (typeof input === 'object') return Buffer.from(JSON.stringify(input), 'utf8');
  const trimmed = input.trim();
  if (trimmed.startsWith('MSH')) return Buffer.from(trimmed.split(/\r?\n/).map((l) => l.trim()).join('\r') + '\r', 'utf8');
  return readFile(resolve(specDir, trimmed));
}

/** Runs one test case against a compiled channel and compares what it expects. */
export async function runCase(channel: ChannelDefinition, testCase: TestCase, specDir: string): Promise<CaseResult> {
  const result = runChannel(channel, await testInput(testCase.input, specDir));
  const mismatches: string[] = [];
  const e = testCase.expect;
  const ack = ackCodesOf(result) ?? 'none';
  // After a CA, what happened is the application ACK's code: "AE" matches "CA AE", "CA" alone does not.
  const finalAck = result.applicationAckCode ?? result.ackCode ?? 'none';
  if (e.ack !== undefined && e.ack !== ack && e.ack !== finalAck) mismatches.push(`ack: expected ${e.ack}, got ${ack}${result.reason ? ` (${result.reason})` : ''}`);
  if (e.status !== undefined && e.status !== result.status) mismatches.push(`status: expected ${e.status}, got ${result.status}${result.reason ? ` (${result.reason})` : ''}`);
  if (e.reason !== undefined && !(result.reason ?? '').includes(e.reason)) mismatches.push(`reason: expected to contain "${e.reason}", got "${result.reason ?? ''}"`);
  for (const [name, expected] of Object.entries(e.identifiers ?? {})) {
    const got = result.identifiers[name]?.id ?? null;
    if (got !== expected) mismatches.push(`identifiers.${name}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(got)}`);
  }
  if (e.response_status !== undefined && e.response_status !== result.response?.status) {
    mismatches.push(`response status: expected ${e.response_status}, got ${result.response?.status ?? 'none'}${result.reason ? ` (${result.reason})` : ''}`);
  }
  // Fields as encoded on the wire: escapes and separators are part of what the receiver gets.
  for (const [path, expected] of Object.entries(e.hl7 ?? {})) {
    const got = result.message ? wireValue(result.message.getRaw(path)) : null;
    if (got !== expected) mismatches.push(`${path}: expected ${JSON.stringify(expected)} on the wire, got ${JSON.stringify(got)}`);
  }
  if (e.message !== undefined) {
    const got = result.message ? messageLines(result.message.toString()) : [];
    mismatches.push(...linesDiff(messageLines(e.message), got, 'message'));
  }
  if (e.output !== undefined) mismatches.push(...outputDiff(result, e.output));
  if (e.route !== undefined) {
    const got = Object.keys(result.outputs);
    if (JSON.stringify(got) !== JSON.stringify(e.route)) mismatches.push(`route: expected ${JSON.stringify(e.route)}, got ${JSON.stringify(got)}`);
  }
  for (const [destination, expected] of Object.entries(e.destinations ?? {})) {
    const sent = Object.hasOwn(result.outputs, destination);
    if (expected === null) {
      if (sent) mismatches.push(`destinations.${destination}: expected nothing sent there, but the message goes there`);
    } else if (!sent) {
      mismatches.push(`destinations.${destination}: expected output, but the message does not go there (route: ${JSON.stringify(Object.keys(result.outputs))})`);
    } else {
      const output = result.outputs[destination];
      if (typeof expected === 'string') {
        mismatches.push(...linesDiff(messageLines(expected), typeof output === 'string' ? messageLines(output) : [JSON.stringify(output)], `destinations.${destination}`));
      } else mismatches.push(...subsetDiff(expected, output, `destinations.${destination}`));
    }
  }
  return { name: testCase.name, passed: mismatches.length === 0, mismatches };
}

/** The encoded value as a test states it: the HL7 null `""` as null, absent as ''. */
function wireValue(raw: string): string | null {
  return raw === HL7_NULL ? null : raw;
}

/**
 * A message as lines to compare exactly: one segment per line (CR, LF or CRLF), nothing trimmed
 * (a space at the end of a segment is on the wire), one final line end allowed (a YAML block
 * ends with one, a message with its last CR), MSH-7 and MSH-10 blanked as they are new for every
 * message a channel builds.
 */
function messageLines(text: string): string[] {
  const lines = text.split(/\r\n|\r|\n/);
  if (lines.length > 1 && lines[lines.length - 1] === '') lines.pop();
  return lines.map((l) => (l.startsWith('MSH') ? blankMshTimeAndId(l) : l));
}

function blankMshTimeAndId(line: string): string {
  const sep = line[3] ?? '|';
  const fields = line.split(sep);
  // fields[0] is MSH, fields[1] is MSH-2, so MSH-n is fields[n - 1].
  if (fields.length > 6) fields[6] = '(MSH-7)';
  if (fields.length > 9) fields[9] = '(MSH-10)';
  return fields.join(sep);
}

/** Segment by segment, with where two differ and what differs there (spaces made visible). */
function linesDiff(expected: string[], actual: string[], what: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < Math.max(expected.length, actual.length); i++) {
    const want = expected[i];
    const got = actual[i];
    if (want === got) continue;
    if (want === undefined || got === undefined) {
      out.push(`${what} segment ${i + 1}: expected ${want === undefined ? '(none)' : JSON.stringify(want)}, got ${got === undefined ? '(none)' : JSON.stringify(got)}`);
      continue;
    }
    let at = 0;
    while (at < want.length && at < got.length && want[at] === got[at]) at++;
    const shown = (text: string) => (text === '' ? 'the end of the segment' : JSON.stringify(text.length > 24 ? `${text.slice(0, 24)}…` : text));
    out.push(
      `${what} segment ${i + 1}: expected ${JSON.stringify(want)}, got ${JSON.stringify(got)}\n      first difference at character ${at + 1}: expected ${shown(want.slice(at))}, got ${shown(got.slice(at))}${/^\s+$/.test(got.slice(at)) || /^\s+$/.test(want.slice(at)) ? ' (white space)' : ''}`,
    );
  }
  return out;
}

/**
 * `expect.output` against the channel's own output (its map, or the message it forwards), before
 * any destination's own payload: one that is not there (the message was filtered, rejected or
 * failed) is a mismatch too.
 */
function outputDiff(result: ChannelResult, expected: unknown): string[] {
  if (result.status !== 'accepted') {
    return [`output: expected ${JSON.stringify(expected)}, but the message was ${result.status}${result.reason ? ` (${result.reason})` : ''}: no output`];
  }
  return subsetDiff(expected, result.output, 'output');
}

/** Differences where `actual` does not contain `expected` (objects compared as subsets). */
export function subsetDiff(expected: unknown, actual: unknown, path: string): string[] {
  if (expected !== null && typeof expected === 'object' && !Array.isArray(expected)) {
    if (actual === null || typeof actual !== 'object' || Array.isArray(actual)) return [`${path}: expected an object, got ${JSON.stringify(actual)}`];
    return Object.entries(expected).flatMap(([k, v]) => subsetDiff(v, (actual as Record<string, unknown>)[k], `${path}.${k}`));
  }
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual)) return [`${path}: expected a list, got ${JSON.stringify(actual)}`];
    const diffs = expected.flatMap((v, i) => subsetDiff(v, actual[i], `${path}[${i}]`));
    if (actual.length !== expected.length) diffs.push(`${path}: expected ${expected.length} items, got ${actual.length}`);
    return diffs;
  }
  return JSON.stringify(expected) === JSON.stringify(actual) ? [] : [`${path}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`];
}
