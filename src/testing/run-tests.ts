import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { ChannelDefinition, ChannelResult } from '../../runtime/index.js';
import { runChannel } from '../../runtime/index.js';
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
  const ack = result.ackCode ?? 'none';
  if (e.ack !== undefined && e.ack !== ack) mismatches.push(`ack: expected ${e.ack}, got ${ack}${result.reason ? ` (${result.reason})` : ''}`);
  if (e.status !== undefined && e.status !== result.status) mismatches.push(`status: expected ${e.status}, got ${result.status}${result.reason ? ` (${result.reason})` : ''}`);
  if (e.reason !== undefined && !(result.reason ?? '').includes(e.reason)) mismatches.push(`reason: expected to contain "${e.reason}", got "${result.reason ?? ''}"`);
  for (const [name, expected] of Object.entries(e.identifiers ?? {})) {
    const got = result.identifiers[name]?.id ?? null;
    if (got !== expected) mismatches.push(`identifiers.${name}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(got)}`);
  }
  if (e.response_status !== undefined && e.response_status !== result.response?.status) {
    mismatches.push(`response status: expected ${e.response_status}, got ${result.response?.status ?? 'none'}${result.reason ? ` (${result.reason})` : ''}`);
  }
  for (const [path, expected] of Object.entries(e.hl7 ?? {})) {
    const got = result.message ? result.message.get(path) : undefined;
    if (got !== expected) mismatches.push(`${path}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(got ?? null)}`);
  }
  if (e.output !== undefined) {
    for (const [destination, output] of Object.entries(outputsOrNone(result))) {
      for (const diff of subsetDiff(e.output, output, `output[${destination}]`)) mismatches.push(diff);
    }
  }
  return { name: testCase.name, passed: mismatches.length === 0, mismatches };
}

function outputsOrNone(result: ChannelResult): Record<string, unknown> {
  return Object.keys(result.outputs).length ? result.outputs : { '(no destination)': undefined };
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
