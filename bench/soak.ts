/**
 * `npm run soak -- --minutes N`: steady MLLP traffic of corpus messages to `hl7c serve` as
 * shipped (a child process, logs on), delivering to an HTTP receiver that fails a share of its
 * requests through two queues: one FIFO (`max_in_flight: 1`) and one parallel. Every report
 * interval it prints throughput, ACK latency, the server's RSS, each queue's depth and the dead
 * letters; at the end it stops the server with SIGTERM and checks, in the store and at the
 * receiver, that nothing acknowledged was lost.
 */
import { closeSync, mkdtempSync, openSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { MllpClient } from '../runtime/index.js';
import { corpusTemplates, startCountingReceiver, startServe, withControlId } from './traffic.js';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '30' },
    rate: { type: 'string', default: '100' },
    connections: { type: 'string', default: '4' },
    'fail-rate': { type: 'string', default: '0.3' },
    'report-seconds': { type: 'string', default: '30' },
    durability: { type: 'string', default: 'disk' },
    'parallel-in-flight': { type: 'string', default: '8' },
  },
});
const minutes = Number(values.minutes);
const rate = Number(values.rate);
const connections = Number(values.connections);
const failRate = Number(values['fail-rate']);
const reportMs = Number(values['report-seconds']) * 1000;
const durability = values.durability === 'process' ? 'process' : 'disk';
const parallelInFlight = Number(values['parallel-in-flight']);
// The retry policy of the examples (attempts 8, 1 s doubling to 60 s): what a FIFO queue does with it is the point.
const RETRY = '{ attempts: 8, backoff_ms: 1000, max_backoff_ms: 60000 }';

const SPEC = `channel: soak-in
source:
  mllp:
    host: 127.0.0.1
    port: 0
map:
  message_id: { path: MSH-10 }
  type: { path: MSH-9 }
  sent_at: { path: MSH-7 }
destinations:
  fifo:
    http: { url: "\${SOAK_RECEIVER}/fifo" }
    max_in_flight: 1
    retry: ${RETRY}
    on_failure: dead_letter
  parallel:
    http: { url: "\${SOAK_RECEIVER}/parallel" }
    max_in_flight: ${parallelInFlight}
    retry: ${RETRY}
    on_failure: dead_letter
`;

const say = (s = '') => process.stdout.write(`${s}\n`);
const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const dir = mkdtempSync(join(os.tmpdir(), 'hl7c-soak-'));
const specPath = join(dir, 'soak.yaml');
const storePath = join(dir, 'store.db');
const logPath = join(dir, 'serve.log');
writeFileSync(specPath, SPEC);
const receiver = await startCountingReceiver({ failRate });
const logFd = openSync(logPath, 'w');
const serve = await startServe([specPath, '--store', storePath, '--durability', durability, '--admin-port', '0', '--no-watch'], { ...process.env, SOAK_RECEIVER: receiver.url }, { stderrTo: logFd });
closeSync(logFd);
const port = serve.ports['soak-in']!;
const templates = corpusTemplates();

say(`# hl7c soak: ${minutes} min`);
say();
say(`${new Date().toISOString()} · ${os.cpus()[0]?.model ?? 'unknown CPU'} × ${os.cpus().length} · Node ${process.version} · load average at start ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
say(`hl7c serve (pid ${serve.child.pid}, --durability ${durability}, logs at info to ${logPath}); ${connections} MLLP connections sending ${rate} msg/s of ${templates.length} corpus messages (each under its own MSH-10)`);
say(`HTTP receiver failing ${Math.round(failRate * 100)} % of requests (503); destinations fifo (max_in_flight 1) and parallel (max_in_flight ${parallelInFlight}), both retry ${RETRY}, dead_letter`);
say();

// ---- traffic
const acked = new Set<string>();
const codes = new Map<string, number>();
let sendErrors = 0;
let sent = 0;
let windowLatencies: number[] = [];
let windowAcked = 0;
let behindMs = 0;
const allLatencies: number[] = [];
const start = performance.now();
const endAt = start + minutes * 60_000;
const interval = 1000 / rate;
let nextIndex = 0;

async function sendLoop(): Promise<void> {
  const client = new MllpClient({ host: '127.0.0.1', port, ackTimeoutMs: 30_000, reconnect: { attempts: 5 } });
  try {
    for (;;) {
      const i = nextIndex++;
      // Scheduled: a server that cannot take the offered rate shows as a growing lag behind it.
      const due = start + i * interval;
      // A server that fell behind does not stretch the run: what was not sent by the end is not sent.
      if (due >= endAt || performance.now() >= endAt) return;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      const id = `SOAK${i}`;
      sent++;
      const sentAt = performance.now();
      // How far behind the schedule the senders are: above zero, the server takes less than offered.
      behindMs = sentAt - due;
      try {
        const result = await client.send(withControlId(templates[i % templates.length]!, id));
        windowLatencies.push(performance.now() - sentAt);
        const code = result.code || 'none asked';
        codes.set(code, (codes.get(code) ?? 0) + 1);
        if (code === 'AA' || code === 'CA' || result.accept?.code === 'CA') {
          acked.add(id);
          windowAcked++;
        }
      } catch {
        sendErrors++;
      }
    }
  } finally {
    await client.close().catch(() => undefined);
  }
}

// ---- reports
interface QueueDepths {
  [destination: string]: { queued: number; sent: number; dead: number };
}
async function queueDepths(): Promise<QueueDepths> {
  const text = await (await fetch(`http://127.0.0.1:${serve.adminPort}/metrics`)).text();
  const depths: QueueDepths = {};
  for (const m of text.matchAll(/^hl7c_deliveries\{([^}]*)\} (\d+)/gm)) {
    const labels = Object.fromEntries([...m[1]!.matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
    const d = (depths[labels.destination!] ??= { queued: 0, sent: 0, dead: 0 });
    const n = Number(m[2]);
    if (labels.state === 'queued' || labels.state === 'sending') d.queued += n;
    else if (labels.state === 'sent') d.sent += n;
    else if (labels.state === 'dead') d.dead += n;
  }
  return depths;
}

function rssMb(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0);
  return { rss: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 };
}

const percentile = (sorted: number[], p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! : 0);
const delivered = (path: string) => [...receiver.received.keys()].filter((k) => k.startsWith(`${path} `)).length;

say('ACK: the round trip of one message (sent to ACK read), per connection. Behind: how late the senders are against the offered rate.');
say();
say('| min | acked/s | ACK p50 ms | ACK p99 ms | ACK max ms | behind s | RSS MB | fifo queued | fifo delivered | parallel queued | parallel delivered | dead letters | load avg |');
say('| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
let lastReport = performance.now();
const rssSeen: number[] = [];
async function report(): Promise<void> {
  const now = performance.now();
  const latencies = windowLatencies.sort((a, b) => a - b);
  const ackRate = windowAcked / ((now - lastReport) / 1000);
  allLatencies.push(...latencies);
  windowLatencies = [];
  windowAcked = 0;
  lastReport = now;
  const depths = await queueDepths().catch(() => ({}) as QueueDepths);
  const { rss } = rssMb(serve.child.pid!);
  rssSeen.push(rss);
  const q = (d: string) => depths[d] ?? { queued: NaN, sent: NaN, dead: NaN };
  say(
    `| ${fmt((now - start) / 60_000, 1)} | ${fmt(ackRate, 1)} | ${fmt(percentile(latencies, 50), 1)} | ${fmt(percentile(latencies, 99), 1)} | ${fmt(latencies.at(-1) ?? 0, 1)} | ${fmt(Math.max(0, behindMs) / 1000, 1)} | ${fmt(rss)} | ${fmt(q('fifo').queued)} | ${fmt(delivered('/fifo'))} | ${fmt(q('parallel').queued)} | ${fmt(delivered('/parallel'))} | ${fmt(q('fifo').dead + q('parallel').dead)} | ${os.loadavg()[0]!.toFixed(2)} |`,
  );
}

const senders = Array.from({ length: connections }, () => sendLoop());
const reporter = setInterval(() => void report(), reportMs);
await Promise.all(senders);
const trafficEnd = performance.now();
clearInterval(reporter);
await report();

// ---- the end: drain what can drain, stop cleanly, then look at the store and the receiver.
const parallelDrainStart = performance.now();
for (;;) {
  const depths = await queueDepths().catch(() => ({}) as QueueDepths);
  if ((depths.parallel?.queued ?? 0) === 0 || performance.now() - parallelDrainStart > 120_000) break;
  await sleep(500);
}
const drainSeconds = (performance.now() - parallelDrainStart) / 1000;
const peakRss = rssMb(serve.child.pid!).peak;
const stopAt = performance.now();
serve.child.kill('SIGTERM');
const exit = await serve.exited;
const stopSeconds = (performance.now() - stopAt) / 1000;
await receiver.close();

const db = new Database(storePath, { readonly: true });
const rows = db.prepare('SELECT id, control_id, status FROM messages').all() as Array<{ id: number; control_id: string; status: string }>;
const deliveries = db.prepare('SELECT message_id, destination, state FROM deliveries').all() as Array<{ message_id: number; destination: string; state: string }>;
db.close();
const receivedLogBytes = statSync(`${storePath}.received`, { throwIfNoEntry: false })?.size ?? 0;
const byControlId = new Map<string, Array<{ id: number; status: string }>>();
for (const r of rows) byControlId.set(r.control_id, [...(byControlId.get(r.control_id) ?? []), r]);
const deliveriesOf = new Map<number, Array<{ destination: string; state: string }>>();
for (const d of deliveries) deliveriesOf.set(d.message_id, [...(deliveriesOf.get(d.message_id) ?? []), d]);

const problems: string[] = [];
const states = new Map<string, number>();
for (const id of acked) {
  const stored = byControlId.get(id) ?? [];
  if (stored.length !== 1) {
    problems.push(`${id}: acknowledged, stored ${stored.length} times`);
    continue;
  }
  const message = stored[0]!;
  for (const destination of ['fifo', 'parallel']) {
    const entry = deliveriesOf.get(message.id)?.find((d) => d.destination === destination);
    if (!entry) {
      problems.push(`${id}: acknowledged, no ${destination} queue entry`);
      continue;
    }
    states.set(`${destination} ${entry.state}`, (states.get(`${destination} ${entry.state}`) ?? 0) + 1);
    const got = receiver.received.get(`/${destination} soak-in:${message.id}:${destination}`);
    if (entry.state === 'sent' && !got) problems.push(`${id}: marked sent to ${destination}, never received`);
    if (got?.body.startsWith('MISMATCH')) problems.push(`${id}: ${destination} got different bodies under one Idempotency-Key`);
  }
}
const sortedAll = allLatencies.sort((a, b) => a - b);
const elapsedMinutes = (trafficEnd - start) / 60_000;

say();
say('## Summary');
say();
say(`- offered ${rate} msg/s; sent ${fmt(sent)} messages in ${fmt(elapsedMinutes, 1)} min (${fmt(sent / elapsedMinutes / 60, 1)} msg/s); acknowledged ${fmt(acked.size)} (${[...codes].map(([c, n]) => `${c} ${fmt(n)}`).join(', ')}); send errors ${sendErrors}`);
say(`- ACK latency over the whole run: p50 ${fmt(percentile(sortedAll, 50), 1)} ms, p99 ${fmt(percentile(sortedAll, 99), 1)} ms, p99.9 ${fmt(percentile(sortedAll, 99.9), 1)} ms, max ${fmt(sortedAll.at(-1) ?? 0, 1)} ms`);
say(`- RSS of hl7c serve: ${fmt(Math.min(...rssSeen))}–${fmt(Math.max(...rssSeen))} MB at the reports, peak ${fmt(peakRss)} MB`);
say(`- fifo (max_in_flight 1): ${fmt(delivered('/fifo'))} of ${fmt(acked.size)} delivered; parallel (max_in_flight ${parallelInFlight}): ${fmt(delivered('/parallel'))} (drained ${fmt(drainSeconds, 1)} s after the traffic stopped)`);
say(`- queue entries of acknowledged messages at the end: ${[...states].sort().map(([s, n]) => `${s} ${fmt(n)}`).join(', ')}`);
say(`- receiver: ${fmt(receiver.failed)} requests failed on purpose; ${fmt(receiver.duplicates)} repeated receipts (same Idempotency-Key, same body)`);
say(`- SIGTERM: exit ${exit} after ${fmt(stopSeconds, 1)} s; received-message log left ${receivedLogBytes} bytes; log file ${fmt(statSync(logPath).size / 1e6, 1)} MB; store ${fmt(statSync(storePath).size / 1e6, 1)} MB`);
say(`- load average at the end ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
say(problems.length === 0 && exit === 0 ? `- **nothing acknowledged was lost**: each of the ${fmt(acked.size)} acknowledged messages is stored once with both queue entries, and every entry marked sent was received` : `- **PROBLEMS** (${problems.length}, exit ${exit}):\n${problems.slice(0, 20).map((p) => `  - ${p}`).join('\n')}`);
process.exitCode = problems.length === 0 && exit === 0 ? 0 : 1;
