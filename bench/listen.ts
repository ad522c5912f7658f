/**
 * `hl7c listen` as shipped: `node bin/hl7c.js listen` in its own process, logging at its
 * default level (info, one line per message) to a file, against the bare socket client; beside
 * it the limit (bare client → bare server) measured in the same run.
 * `node --expose-gc dist/bench/listen.js` runs this part alone and prints it.
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, statSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from './corpus.js';
import type { RoundTripRow } from './mllp.js';
import { measureRoundTrips, startServerProcess } from './mllp.js';

/** Starts the shipped command with its stderr (the JSON logs) going to a file, as under a service manager. */
export async function startListenCommand(): Promise<{ port: number; pid: number; stop: () => Promise<void>; logBytes: () => number }> {
  const dir = mkdtempSync(join(tmpdir(), 'hl7c-bench-listen-'));
  const logPath = join(dir, 'listen.log');
  const log = openSync(logPath, 'a');
  const child = spawn(process.execPath, [join(REPO_ROOT, 'bin/hl7c.js'), 'listen', '--port', '0', '--host', '127.0.0.1'], { stdio: ['ignore', 'pipe', log] });
  closeSync(log);
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (c) => {
      out += c;
      const m = /listening on port (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`hl7c listen exited ${code}`)));
  });
  return {
    port,
    pid: child.pid!,
    logBytes: () => statSync(logPath).size,
    // SIGTERM: the command's own stop, which flushes its logs.
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

export interface ListenRow {
  connections: number;
  limit: Omit<RoundTripRow, 'client' | 'server'>;
  listen: Omit<RoundTripRow, 'client' | 'server'>;
  /** Log bytes written per message by the command. */
  logBytesPerMessage: number;
  /** CPU time of the server process per round trip, in µs (less sensitive to a busy machine than the rate). */
  limitCpuUs: number;
  listenCpuUs: number;
}

/** User + system CPU time of a process so far, in µs (Linux; 0 elsewhere). */
export function cpuUs(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1e6) / 100;
  } catch {
    return 0;
  }
}

async function withCpu<T extends { total: number }>(pid: number, measure: () => Promise<T>): Promise<{ row: T; cpuUsPerMessage: number }> {
  const before = cpuUs(pid);
  const row = await measure();
  return { row, cpuUsPerMessage: (cpuUs(pid) - before) / Math.max(1, row.total) };
}

/** One round: the limit, then the shipped command, on `connections` connections. */
export async function measureListen(connections: number, payload: (id: number) => string, ms: number): Promise<ListenRow> {
  const bare = await startServerProcess('bare');
  let limit;
  try {
    limit = await withCpu(bare.child.pid!, () => measureRoundTrips('bare', bare.port, connections, payload, ms));
  } finally {
    bare.stop();
  }
  const listen = await startListenCommand();
  let shipped;
  try {
    shipped = await withCpu(listen.pid, () => measureRoundTrips('bare', listen.port, connections, payload, ms));
  } finally {
    await listen.stop();
  }
  return {
    connections,
    limit: limit.row,
    listen: shipped.row,
    logBytesPerMessage: listen.logBytes() / Math.max(1, shipped.row.total),
    limitCpuUs: limit.cpuUsPerMessage,
    listenCpuUs: shipped.cpuUsPerMessage,
  };
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

/** Medians over the rounds, per number of connections. */
export function summarizeListen(rows: ListenRow[]): Array<{ connections: number; limit: number; listen: number; share: number; limitCpuUs: number; listenCpuUs: number; logBytes: number; p99Ms: number }> {
  return [...new Set(rows.map((r) => r.connections))].map((connections) => {
    const of = rows.filter((r) => r.connections === connections);
    return {
      connections,
      limit: median(of.map((r) => r.limit.msgsPerSec)),
      listen: median(of.map((r) => r.listen.msgsPerSec)),
      // Each round's share against the limit measured right before it, then the median.
      share: median(of.map((r) => r.listen.msgsPerSec / r.limit.msgsPerSec)),
      limitCpuUs: median(of.map((r) => r.limitCpuUs)),
      listenCpuUs: median(of.map((r) => r.listenCpuUs)),
      logBytes: median(of.map((r) => r.logBytesPerMessage)),
      p99Ms: median(of.map((r) => r.listen.p99Ms)),
    };
  });
}

/** The RESULTS.md section: a heading, what was measured, the table. */
export function listenSection(rows: ListenRow[], rounds: number, ms: number): string[] {
  const lines = [
    '## `hl7c listen` as shipped',
    '',
    `\`node bin/hl7c.js listen\` in its own process, its JSON logs at the default level (info: one line per message) going to a file, against the bare socket client; each round measures the limit (bare socket client → bare socket server) right before it. Median of ${rounds} round(s) of ${ms / 1000} s. Server CPU is the server process's user + system time per round trip, which a busy machine disturbs less than the rate. Load average when written: ${loadavg()[0]!.toFixed(1)} on ${cpus().length} cores.`,
    '',
    '| connections | limit msgs/s | hl7c listen msgs/s | % of limit | p99 ms | server CPU µs/msg (limit / listen) | log bytes/msg |',
    '| --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const r of summarizeListen(rows)) {
    lines.push(`| ${r.connections} | ${fmt(r.limit)} | ${fmt(r.listen)} | ${fmt(100 * r.share)} % | ${fmt(r.p99Ms, 3)} | ${fmt(r.limitCpuUs)} / ${fmt(r.listenCpuUs)} | ${fmt(r.logBytes)} |`);
  }
  return lines;
}

const isMain = process.argv[1] !== undefined && import.meta.url.endsWith(process.argv[1].replace(/\\/g, '/'));
if (isMain) {
  // This part alone: prints its section and puts it in bench/RESULTS.md in place of the last one.
  const { ADT_A01 } = await import('./messages.js');
  const payload = (id: number) => ADT_A01.replace(/^(MSH(?:\|[^|\r]*){8}\|)[^|\r]*/, `$1BENCH${id}`);
  const rounds = Number(process.env.ROUNDS ?? 3);
  const ms = 3000;
  const rows: ListenRow[] = [];
  for (let round = 0; round < rounds; round++) for (const connections of [1, 8]) rows.push(await measureListen(connections, payload, ms));
  const section = listenSection(rows, rounds, ms);
  process.stdout.write(section.join('\n') + '\n');
  if (!process.argv.includes('--no-write')) {
    const { readFileSync: read, writeFileSync } = await import('node:fs');
    const path = join(REPO_ROOT, 'bench/RESULTS.md');
    const text = read(path, 'utf8');
    const at = text.indexOf('## `hl7c listen` as shipped');
    const before = at === -1 ? text.slice(0, text.indexOf('## Targets')) : text.slice(0, at);
    const rest = at === -1 ? text.slice(text.indexOf('## Targets')) : text.slice(text.indexOf('\n## ', at + 1) + 1);
    writeFileSync(path, `${before}${section.join('\n')}\n\n${rest}`);
  }
  process.exit(0);
}
