/**
 * `npm run bench`: parse speed and MLLP round trips, each beside a baseline measured in the same
 * run, printed as tables and written to bench/RESULTS.md.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from './corpus.js';
import { ADT_A01, ORU_R01 } from './messages.js';
import type { RoundTripRow, ServerKind } from './mllp.js';
import { measureRoundTrips, startServerProcess } from './mllp.js';
import { runParseBench } from './parse.js';
import { benchPostgres, measureFdatasync, startDurableServer } from './durable.js';
import type { ListenRow } from './listen.js';
import { listenSection, measureListen, summarizeListen } from './listen.js';
import { keptSections } from './results-file.js';
import { measureDurableCosts } from './durable-costs.js';
import { MAP_TARGET_US, mapSection, mapTargetMet, runMapBench } from './map.js';

// `npm run bench -- --connections`: only the 2,000-connections benchmark (it writes its own section and exits).
if (process.argv.includes('--connections')) await import('./connections.js');

const quick = process.argv.includes('--quick');

// `npm run bench -- --only map`: only the generated code per message (map, transform, build), printed; bench/RESULTS.md is left as it is.
if (process.argv[process.argv.indexOf('--only') + 1] === 'map') {
  const rounds = quick ? 3 : 7;
  const ms = quick ? 200 : 500;
  const before = os.loadavg().map((l) => l.toFixed(2)).join(' ');
  process.stdout.write(mapSection(await runMapBench(rounds, ms), rounds, ms, before).join('\n') + '\n');
  process.exit(0);
}
const parseMs = quick ? 300 : 1500;
const rtMs = quick ? 500 : 3000;

const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

function table(headers: string[], rows: string[][]): string {
  const lines = [`| ${headers.join(' | ')} |`, `| ${headers.map(() => '---').join(' | ')} |`];
  for (const r of rows) lines.push(`| ${r.join(' | ')} |`);
  return lines.join('\n');
}

const out: string[] = [];
const say = (s = '') => {
  process.stdout.write(s + '\n');
  out.push(s);
};

say('# hl7c benchmark results');
say();
// Other work on the machine skews every figure (the baselines too): the load says how much.
say(
  `Run ${new Date().toISOString().slice(0, 10)} on ${os.cpus()[0]?.model ?? 'unknown CPU'} × ${os.cpus().length}, Node ${process.version}, load average ${os.loadavg()[0]!.toFixed(1)} at the start. Produced by \`npm run bench\`${quick ? ' --quick' : ''}.`,
);
say();

// ---- parse
const parseRows = runParseBench({ 'ADT^A01': ADT_A01, 'ORU^R01 (22 OBX)': ORU_R01 }, parseMs);
say('## Parse (then read PID-3.1)');
say();
say(
  table(
    ['message', 'bytes', 'parser', 'msgs/s', 'MB/s', 'vs fastest peer'],
    parseRows.map((r) => {
      const peer = Math.max(...parseRows.filter((p) => p.message === r.message && p.parser.startsWith('@medplum')).map((p) => p.msgsPerSec));
      return [r.message, String(r.bytes), r.parser, fmt(r.msgsPerSec), fmt(r.mbPerSec, 1), `${fmt(r.msgsPerSec / peer, 2)}×`];
    }),
  ),
);
say();

// ---- generated code: map() (or transform, build) per message beside parse, same rounds
const mapRounds = quick ? 3 : 7;
const mapMs = quick ? 200 : 500;
const loadBeforeMap = os.loadavg().map((l) => l.toFixed(2)).join(' ');
const mapRows = await runMapBench(mapRounds, mapMs);
for (const line of mapSection(mapRows, mapRounds, mapMs, loadBeforeMap)) say(line);
say();

// ---- MLLP round trips
const combos: Array<[client: 'bare' | 'hl7c', server: ServerKind, label: string]> = [
  ['bare', 'bare', 'bare socket client → bare socket server, fixed ACK (the limit)'],
  ['hl7c', 'hl7c', 'hl7c client → hl7c server (parse, build ACK)'],
  ['hl7c', 'bare', 'hl7c client → bare socket server'],
  ['bare', 'hl7c', 'bare socket client → hl7c server'],
  ['hl7c', 'medplum', 'hl7c client → @medplum/hl7 server'],
];
const payload = (id: number) => ADT_A01.replace(/^(MSH(?:\|[^|\r]*){8}\|)[^|\r]*/, `$1BENCH${id}`);
// This machine's timing drifts (shared cores): every setup is measured in several rounds,
// interleaved with the limit, and the median is reported.
const rounds = quick ? 1 : 3;
const samples = new Map<string, RoundTripRow[]>();
const record = (key: string, row: RoundTripRow) => samples.set(key, [...(samples.get(key) ?? []), row]);
const durableLabel = (d: string) => `hl7c client → hl7c serve --durability ${d} (SQLite, stored before ACK, file destination)`;
const pgLabel = (nodes: number) =>
  nodes === 1 ? 'hl7c client → hl7c serve --store postgres:// (1 node, --durability disk, file destination)' : `hl7c client → ${nodes} hl7c serve nodes on one PostgreSQL (connections spread over them)`;
const drains: Array<{ durability: string; connections: number; acked: number; duringWindow: number; drainMs: number }> = [];
const fsyncRates: number[] = [];
const fsyncP50s: number[] = [];
let postgresSkipped = false;
for (let round = 0; round < rounds; round++) {
  const fsync = measureFdatasync(quick ? 300 : 1000);
  fsyncRates.push(fsync.perSecond);
  fsyncP50s.push(fsync.p50Ms);
  for (const [client, server, label] of combos) {
    const s = await startServerProcess(server);
    try {
      for (const connections of [1, 8]) record(`${label}|${connections}`, { ...(await measureRoundTrips(client, s.port, connections, payload, rtMs)), client, server });
    } finally {
      s.stop();
    }
  }
  for (const durability of ['disk', 'process'] as const) {
    const durable = await startDurableServer(durability);
    try {
      for (const connections of [1, 8]) {
        const before = durable.delivered();
        const row = await measureRoundTrips('hl7c', durable.port, connections, payload, rtMs);
        record(`${durableLabel(durability)}|${connections}`, { ...row, client: 'hl7c', server: `serve-${durability}` as ServerKind });
        // Did the destination keep up? Files written by the end of the window, then time to
        // write the rest.
        const duringWindow = durable.delivered() - before;
        const drainStart = Date.now();
        while (durable.delivered() - before < row.total && Date.now() - drainStart < 60_000) await new Promise((r) => setTimeout(r, 20));
        drains.push({ durability, connections, acked: row.total, duringWindow, drainMs: Date.now() - drainStart });
      }
    } finally {
      durable.stop();
    }
  }
  // PostgreSQL: one node, then two on one database with the connections spread over both.
  for (const nodeCount of [1, 2]) {
    const pg = await benchPostgres();
    if (!pg) {
      postgresSkipped = true;
      break;
    }
    const out = join(os.tmpdir(), `hl7c-bench-pg-out-${process.pid}-${round}-${nodeCount}`);
    // Started one after the other: the first creates the schema.
    const nodes = [];
    for (let n = 0; n < nodeCount; n++) nodes.push(await startDurableServer('disk', pg.url, out));
    try {
      for (const connections of [1, 8]) {
        const row = await measureRoundTrips('hl7c', nodes.map((n) => n.port), connections, payload, rtMs);
        record(`${pgLabel(nodeCount)}|${connections}`, { ...row, client: 'hl7c', server: (nodeCount === 1 ? 'serve-pg' : 'serve-pg-2') as ServerKind });
      }
    } finally {
      for (const n of nodes) n.stop();
      await new Promise((r) => setTimeout(r, 200));
      await pg.drop().catch(() => undefined);
    }
  }
}
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const listenRows: ListenRow[] = [];
for (let round = 0; round < rounds; round++) for (const connections of [1, 8]) listenRows.push(await measureListen(connections, payload, rtMs));
const rtRows: Array<RoundTripRow & { label: string }> = [...samples.entries()].map(([key, rows]) => ({
  label: key.split('|')[0]!,
  client: rows[0]!.client,
  server: rows[0]!.server,
  connections: rows[0]!.connections,
  msgsPerSec: median(rows.map((r) => r.msgsPerSec)),
  p50Ms: median(rows.map((r) => r.p50Ms)),
  p99Ms: median(rows.map((r) => r.p99Ms)),
  count: median(rows.map((r) => r.count)),
  total: median(rows.map((r) => r.total)),
}));

say('## MLLP round trips (send ADT^A01, wait for the ACK, send the next)');
say();
say(`Servers run in a child process, clients in the benchmark process (one core each). Median of ${rounds} interleaved round(s) of ${rtMs / 1000} s per setup.`);
say();
say(
  table(
    ['setup', 'connections', 'msgs/s', 'p50 ms', 'p99 ms', '% of limit'],
    rtRows.map((r) => {
      const limit = rtRows.find((l) => l.client === 'bare' && l.server === 'bare' && l.connections === r.connections)!;
      return [r.label, String(r.connections), fmt(r.msgsPerSec), fmt(r.p50Ms, 3), fmt(r.p99Ms, 3), `${fmt((100 * r.msgsPerSec) / limit.msgsPerSec, 0)} %`];
    }),
  ),
);
say();

say('### Did the destination keep up?');
say();
say(
  `Messages ACKed in each durable run (warm-up included), files the destination had written by its end, and how long the rest took to be written after it (medians of ${rounds} round(s)). ` +
    'The destination worker shares the event loop with receiving, and each file takes four trips through libuv\'s thread pool (open, write, close, rename): under full load it falls behind, and catches up once the load stops. ' +
    'Measured while choosing: with synchronous file writes the destination keeps up, but the ACK rate drops by about a third, and a slow network share would stall every listener; so the writes stay asynchronous.',
);
say();
say(
  table(
    ['durability', 'connections', 'ACKed', 'written in the window', 'rest written within'],
    [...new Set(drains.map((d) => `${d.durability}|${d.connections}`))].map((key) => {
      const rows = drains.filter((d) => `${d.durability}|${d.connections}` === key);
      const acked = median(rows.map((d) => d.acked));
      const written = median(rows.map((d) => d.duringWindow));
      return [rows[0]!.durability, String(rows[0]!.connections), fmt(acked), `${fmt(written)} (${fmt((100 * written) / Math.max(1, acked))} %)`, `${fmt(median(rows.map((d) => d.drainMs)) / 1000, 1)} s`];
    }),
  ),
);
say();
const fsyncRate = median(fsyncRates);
const fsyncP50 = median(fsyncP50s);
say(`The disk's own limit for a power-loss-safe ACK on one connection (append 2 KB + fdatasync, in a loop, same run): ${fmt(fsyncRate)} /s, i.e. ${fmt(1000 / fsyncRate, 3)} ms each (p50 ${fmt(fsyncP50, 3)} ms). --durability disk on 1 connection cannot exceed it.`);
say();
if (postgresSkipped) {
  say('PostgreSQL rows skipped: no database at HL7C_BENCH_PG (default postgres://postgres@127.0.0.1:5432/test).');
  say();
}

for (const line of listenSection(listenRows, rounds, rtMs)) say(line);
say();
const listenShare = summarizeListen(listenRows).find((r) => r.connections === 1)!.share;

// ---- durable path: what each step costs per message
const costs = await measureDurableCosts(payload, quick ? 1000 : 4000);
const plainStep = costs[0]!.cpuUs;
const socketUs = summarizeListen(listenRows).find((r) => r.connections === 8)!.limitCpuUs;
const costOf = (prefix: string) => costs.find((c) => c.step.startsWith(prefix))?.cpuUs ?? 0;
const sqliteLoop = ['run the channel', 'encode', 'write the log', 'SQLite: insert', 'SQLite: claim'].reduce((s, p) => s + costOf(p), socketUs);
const pgRow = costs.find((c) => c.step.startsWith('PostgreSQL'));
const pgLoop = socketUs + costOf('run the channel') + (pgRow?.cpuUs ?? 0);
const plainLoop = socketUs + plainStep;
say('## Durable path: what each message costs');
say();
say(
  `Each step \`hl7c serve\` takes for a message on the durable path, with the benchmark's spec and ADT^A01, measured one at a time in the benchmark process (CPU time, user + system, per message; ${quick ? 1000 : 4000} messages after a warm-up). ` +
    `The sockets (read the frame, write the ACK) cost the same on every server: ${fmt(socketUs)} µs per message, the bare socket server's CPU at 8 connections in the \`hl7c listen\` rounds above. Load average ${os.loadavg()[0]!.toFixed(1)} when measured.`,
);
say();
say(
  table(
    ['step', 'hl7c CPU µs/msg', 'PostgreSQL backend CPU µs/msg', '× the plain server\'s parse + ACK'],
    costs.map((c) => [c.step, fmt(c.cpuUs, 1), c.backendUs === undefined ? '' : fmt(c.backendUs, 1), `${fmt(c.cpuUs / plainStep, 1)}×`]),
  ),
);
say();
say(
  `At 8 connections both servers keep one core busy (the client has the other), so their rates stand in the inverse ratio of their CPU per message. ` +
    `The plain server: sockets + parse + ACK = ${fmt(plainLoop)} µs. ` +
    `SQLite, --durability disk, on the event loop: sockets + channel + log record + SQLite insert + queue bookkeeping = ${fmt(sqliteLoop)} µs, so at most ${fmt((100 * plainLoop) / sqliteLoop)} % of the plain server's rate even with every fdatasync hidden, and before the file destination writes its file (${fmt(costOf('file destination'))} µs, most of it the kernel's, in the thread pool on the same two cores). ` +
    (pgRow
      ? `PostgreSQL: sockets + channel + the record statement's share = ${fmt(pgLoop)} µs on the event loop (${fmt((100 * plainLoop) / pgLoop)} % at most), and ${fmt(pgRow.backendUs ?? 0)} µs per message in the PostgreSQL backend, on the same two cores as the client and hl7c. `
      : '') +
    'The 50 % target needs the durable path to cost at most twice the plain server per message.',
);
say();

// ---- targets
const speedup = (message: string) => {
  const ours = parseRows.find((r) => r.message === message && r.parser === 'hl7c (string)')!.msgsPerSec;
  const peer = Math.max(...parseRows.filter((r) => r.message === message && r.parser.startsWith('@medplum')).map((r) => r.msgsPerSec));
  return ours / peer;
};
const share = (connections: number, server: string = 'hl7c') => {
  const ours = rtRows.find((r) => r.client === 'hl7c' && r.server === server && r.connections === connections)!.msgsPerSec;
  const limit = rtRows.find((r) => r.client === 'bare' && r.server === 'bare' && r.connections === connections)!.msgsPerSec;
  return ours / limit;
};
/** A durable setup against the plain hl7c MLLP server (parse, build ACK, nothing stored), same run. */
const ofPlain = (connections: number, server: string) => {
  const ours = rtRows.find((r) => r.server === server && r.connections === connections)?.msgsPerSec;
  const plain = rtRows.find((r) => r.client === 'hl7c' && r.server === 'hl7c' && r.connections === connections)!.msgsPerSec;
  return ours === undefined ? undefined : ours / plain;
};
const p50 = (connections: number, server: string) => rtRows.find((r) => r.server === server && r.connections === connections)?.p50Ms;
const durableTargets = (['serve-disk', 'serve-pg', 'serve-pg-2'] as const).flatMap((server) => {
  const name = { 'serve-disk': 'SQLite --durability disk', 'serve-pg': 'PostgreSQL, 1 node', 'serve-pg-2': 'PostgreSQL, 2 nodes' }[server];
  const share8 = ofPlain(8, server);
  if (share8 === undefined) return [];
  const rows = [[`${name}: 8 connections ≥ 50 % of the plain hl7c MLLP server`, `${fmt(100 * share8)} %`, share8 >= 0.5 ? 'yes' : 'no']];
  const latency = p50(1, server);
  if (server !== 'serve-pg-2' && latency !== undefined) {
    rows.push([`${name}: 1 connection p50 ≤ fdatasync p50 + 0.3 ms (${fmt(fsyncP50 + 0.3, 3)} ms)`, `${fmt(latency, 3)} ms`, latency <= fsyncP50 + 0.3 ? 'yes' : 'no']);
  }
  return rows;
});
const adtMap = mapRows.find((r) => r.example === 'adt-to-webhook')!;
say('## Targets');
say();
say(
  table(
    ['target', 'measured', 'met'],
    [
      ['parse ≥ 2× fastest peer, ADT^A01', `${fmt(speedup('ADT^A01'), 2)}×`, speedup('ADT^A01') >= 2 ? 'yes' : 'no'],
      ['parse ≥ 2× fastest peer, ORU^R01', `${fmt(speedup('ORU^R01 (22 OBX)'), 2)}×`, speedup('ORU^R01 (22 OBX)') >= 2 ? 'yes' : 'no'],
      [`map() of the ADT example ≤ ${MAP_TARGET_US} µs per message (CPU time)`, `${fmt(adtMap.stageCpuUs, 2)} µs (${fmt(adtMap.stageUs, 2)} µs wall-clock)`, mapTargetMet(adtMap) ? 'yes' : 'no'],
      ['MLLP round trip ≥ 80 % of limit, 1 connection', `${fmt(100 * share(1))} %`, share(1) >= 0.8 ? 'yes' : 'no'],
      ['MLLP round trip ≥ 80 % of limit, 8 connections', `${fmt(100 * share(8))} %`, share(8) >= 0.8 ? 'yes' : 'no'],
      ['`hl7c listen` as shipped (logs on) ≥ 80 % of limit, 1 connection', `${fmt(100 * listenShare)} %`, listenShare >= 0.8 ? 'yes' : 'no'],
      ...(['disk', 'process'] as const).flatMap((d) => [
        [`durable round trip (--durability ${d}) ≥ 50 % of limit, 1 connection`, `${fmt(100 * share(1, `serve-${d}`))} %`, share(1, `serve-${d}`) >= 0.5 ? 'yes' : 'no'],
        [`durable round trip (--durability ${d}) ≥ 70 % of limit, 8 connections`, `${fmt(100 * share(8, `serve-${d}`))} %`, share(8, `serve-${d}`) >= 0.7 ? 'yes' : 'no'],
      ]),
      ...durableTargets,
      [
        '(not a target) --durability disk, 1 connection, against the disk\'s fdatasync limit',
        `${fmt((100 * rtRows.find((r) => r.server === 'serve-disk' && r.connections === 1)!.msgsPerSec) / fsyncRate)} %`,
        '—',
      ],
    ],
  ),
);

if (!quick) {
  // Sections other benchmarks wrote (2,000 connections) stay.
  const path = join(REPO_ROOT, 'bench/RESULTS.md');
  const kept = existsSync(path) ? keptSections(readFileSync(path, 'utf8')) : '';
  writeFileSync(path, out.join('\n') + '\n' + (kept ? '\n' + kept : ''));
}
process.exit(0);
