/**
 * What a channel's generated code costs per message: each example's output stage (map, or
 * transform, or build where the example has no map) beside parsing the same message, both
 * measured in the same rounds so machine load skews them alike.
 */
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import YAML from 'yaml';
import type { ChannelDefinition, Identification, Message } from '../runtime/index.js';
import { parseMessage } from '../runtime/index.js';
import { buildSpecs } from '../src/compiler/build.js';
import { loadChannel } from '../src/compiler/load-channel.js';
import { testInput } from '../src/testing/run-tests.js';
import { REPO_ROOT } from './corpus.js';
import { replaceSection } from './results-file.js';

export const MAP_HEADING = /^## Generated code per message/m;

/** `map()` of the ADT example: at most this many µs per message. */
export const MAP_TARGET_US = 10;

export const EXAMPLES = ['adt-to-webhook', 'siu-appointments', 'adt-forward', 'results-to-ehr', 'notes-to-ehr'];

export interface MapRow {
  example: string;
  /** The stage measured: map, transform or build. */
  stage: string;
  /** What parse measured: the HL7 parser, or JSON.parse for a JSON input. */
  parser: string;
  bytes: number;
  /** Wall-clock µs per call. */
  parseUs: number;
  stageUs: number;
  /** This process's CPU time (user + system) per call: what other work on a shared machine disturbs least. */
  parseCpuUs: number;
  stageCpuUs: number;
}

interface Prepared {
  example: string;
  stage: string;
  parser: string;
  bytes: number;
  parse: () => unknown;
  /** Untimed setup of one call (a freshly parsed message, its identifiers), then the timed call. */
  setup: () => () => unknown;
}

/** Each example built as `hl7c build` builds it, with the input of its first test. */
async function prepare(example: string): Promise<Prepared> {
  const specPath = `examples/${example}.yaml`;
  const result = await buildSpecs([specPath], { cwd: REPO_ROOT, env: {} });
  if (!result.ok) throw new Error(`${specPath} does not build`);
  const file = result.files[0]!;
  const channel: ChannelDefinition = loadChannel(file.code, file.fileName, {});
  const spec = YAML.parse(readFileSync(join(REPO_ROOT, specPath), 'utf8')) as { tests: Array<{ input: string | Record<string, unknown> }> };
  const payload = await testInput(spec.tests[0]!.input, dirname(join(REPO_ROOT, specPath)));
  const text = payload.toString('utf8');
  if (channel.build) {
    const input: unknown = JSON.parse(text);
    const build = channel.build;
    return { example, stage: 'build', parser: 'JSON.parse', bytes: payload.length, parse: () => JSON.parse(text), setup: () => () => build(input) };
  }
  const fresh = (): { message: Message; ids: Identification['identifiers'] } => {
    const message = parseMessage(text);
    return { message, ids: channel.identify(message).identifiers };
  };
  const stage = channel.map ? 'map' : 'transform';
  const run = channel.map ?? ((message: Message) => channel.transform!(message));
  const sample = fresh();
  if (channel.map && JSON.stringify(channel.map(sample.message, sample.ids)) === '{}') throw new Error(`${example}: map gave nothing for its first test's input`);
  return {
    example,
    stage,
    parser: 'parseMessage',
    bytes: payload.length,
    parse: () => parseMessage(text),
    setup: () => {
      const { message, ids } = fresh();
      return () => run(message, ids);
    },
  };
}

/** V8's collector when node runs with --expose-gc (as `npm run bench` does). */
const collectYoung = (globalThis as { gc?: (options: { type: 'minor' }) => void }).gc;

/** Wall-clock and CPU µs per call of fn over about ms milliseconds, each call set up beforehand outside the clock. */
function timeCalls(setup: () => () => unknown, ms: number): { wall: number; cpu: number } {
  const batch = 200;
  let calls = 0;
  let spent = 0n;
  let cpu = 0;
  const until = Date.now() + ms;
  while (Date.now() < until) {
    // Set up outside the timed part (a fresh message for every call: reads split fields lazily).
    const fns = Array.from({ length: batch }, setup);
    // The setup's garbage is collected before the clock starts, not charged to the stage.
    collectYoung?.({ type: 'minor' });
    const cpuStart = process.cpuUsage();
    const start = process.hrtime.bigint();
    for (const fn of fns) fn();
    spent += process.hrtime.bigint() - start;
    const used = process.cpuUsage(cpuStart);
    cpu += used.user + used.system;
    calls += batch;
  }
  return { wall: Number(spent) / 1000 / calls, cpu: cpu / calls };
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

/** Median of `rounds` rounds; in each, every example's parse and stage one after the other. */
export async function runMapBench(rounds: number, ms: number): Promise<MapRow[]> {
  const prepared = await Promise.all(EXAMPLES.map(prepare));
  // Warm-up: the JIT has compiled every path before anything counts.
  for (const p of prepared) {
    timeCalls(() => p.parse, 200);
    timeCalls(p.setup, 200);
  }
  const samples = prepared.map(() => ({ parse: [] as Array<{ wall: number; cpu: number }>, stage: [] as Array<{ wall: number; cpu: number }> }));
  for (let round = 0; round < rounds; round++) {
    prepared.forEach((p, i) => {
      samples[i]!.parse.push(timeCalls(() => p.parse, ms));
      samples[i]!.stage.push(timeCalls(p.setup, ms));
    });
  }
  return prepared.map((p, i) => {
    const { parse, stage } = samples[i]!;
    return {
      example: p.example,
      stage: p.stage,
      parser: p.parser,
      bytes: p.bytes,
      parseUs: median(parse.map((s) => s.wall)),
      stageUs: median(stage.map((s) => s.wall)),
      parseCpuUs: median(parse.map((s) => s.cpu)),
      stageCpuUs: median(stage.map((s) => s.cpu)),
    };
  });
}

const fmt = (n: number, digits = 1) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const loads = () => loadavg().map((l) => l.toFixed(2)).join(' ');

/** The RESULTS.md section, with the load average (1, 5, 15 min) before and after the measurement. */
export function mapSection(rows: MapRow[], rounds: number, ms: number, loadBefore: string): string[] {
  const adt = rows.find((r) => r.example === 'adt-to-webhook')!;
  return [
    '## Generated code per message',
    '',
    `Each example as \`hl7c build\` generates it, run on the input of its first test: the stage that makes its output (\`map()\` for a JSON output, \`transform()\` for HL7 → HL7, \`build()\` from JSON) beside parsing the same input, in the same rounds. ` +
      `Every call gets a freshly parsed message and its identifiers, made outside the clock (fields are split when first read, so that work counts as the stage's). ` +
      `Median of ${rounds} round(s) of ${ms / 1000} s each, as wall-clock time and as this process's CPU time (user + system), which a machine busy with other work inflates far less: with the load average above the core count, wall-clock time includes waiting for a core. ` +
      `Run ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC on ${cpus().length} cores shared with other work; load average (1, 5, 15 min) ${loadBefore} before, ${loads()} after.`,
    '',
    '| example | stage | input bytes | parse µs/msg (wall / CPU) | stage µs/msg (wall / CPU) | stage / parse (CPU) |',
    '| --- | --- | --- | --- | --- | --- |',
    ...rows.map((r) => `| ${r.example} | ${r.stage}() | ${r.bytes} | ${fmt(r.parseUs, 2)} / ${fmt(r.parseCpuUs, 2)} (${r.parser}) | ${fmt(r.stageUs, 2)} / ${fmt(r.stageCpuUs, 2)} | ${fmt(r.stageCpuUs / r.parseCpuUs, 1)}× |`),
    '',
    `Target: \`map()\` of the ADT example (adt-to-webhook) at most ${MAP_TARGET_US} µs per message: ${fmt(adt.stageCpuUs, 2)} µs of CPU (${fmt(adt.stageUs, 2)} µs wall-clock), ${mapTargetMet(adt) ? 'met' : 'not met'}.`,
  ];
}

/** The target is judged on CPU time: on a shared machine wall-clock time measures the other work too. */
export function mapTargetMet(adt: MapRow): boolean {
  return adt.stageCpuUs <= MAP_TARGET_US;
}

const isMain = process.argv[1] !== undefined && import.meta.url.endsWith(process.argv[1].replace(/\\/g, '/'));
if (isMain) {
  // This part alone (`node --expose-gc dist/bench/map.js`): prints its section and puts it in bench/RESULTS.md in place of the last one.
  const rounds = Number(process.env.ROUNDS ?? 7);
  const ms = Number(process.env.ROUND_MS ?? 500);
  const before = loads();
  const section = mapSection(await runMapBench(rounds, ms), rounds, ms, before);
  process.stdout.write(section.join('\n') + '\n');
  if (!process.argv.includes('--no-write')) {
    const { writeFileSync } = await import('node:fs');
    const path = join(REPO_ROOT, 'bench/RESULTS.md');
    writeFileSync(path, replaceSection(readFileSync(path, 'utf8'), MAP_HEADING, section.join('\n')));
  }
  process.exit(0);
}
