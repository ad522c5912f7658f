/**
 * `npm run bench -- --connections` (or `node dist/bench/connections.js` after a build): `hl7c
 * serve` as shipped (a child process, logs at info to a file, --durability disk) with one normal
 * sender doing round trips while 2,000 other connections are held open, some idle and some
 * dripping one byte every few milliseconds inside a frame that never ends. The same sender is
 * measured before (no other connections), during and after, in the same run; the server's RSS
 * and open file descriptors (/proc/<pid>/fd) likewise. Writes its own section of
 * bench/RESULTS.md (the sections `npm run bench` writes are kept).
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { REPO_ROOT } from './corpus.js';
import { ADT_A01 } from './messages.js';
import { measureRoundTrips } from './mllp.js';
import { CONNECTIONS_HEADING, replaceSection } from './results-file.js';
import { startServe } from './traffic.js';

const { values } = parseArgs({
  args: process.argv.slice(2).filter((a) => a !== '--connections'),
  options: {
    idle: { type: 'string', default: '1800' },
    dripping: { type: 'string', default: '200' },
    'drip-ms': { type: 'string', default: '5' },
    seconds: { type: 'string', default: '15' },
    'no-write': { type: 'boolean', default: false },
  },
});
const IDLE = Number(values.idle);
const DRIPPING = Number(values.dripping);
const DRIP_MS = Number(values['drip-ms']);
const MEASURE_MS = Number(values.seconds) * 1000;
const OTHERS = IDLE + DRIPPING;

const say = (s = '') => process.stdout.write(`${s}\n`);
const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const load = () => os.loadavg().map((l) => l.toFixed(2)).join(' ');

/** The soft limit on open files of a process (Linux /proc; Infinity when unknown). */
function openFilesLimit(pid: number | 'self'): number {
  try {
    const line = readFileSync(`/proc/${pid}/limits`, 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
    const soft = line?.split(/\s{2,}/)[1];
    return soft === undefined || soft === 'unlimited' ? Infinity : Number(soft);
  } catch {
    return Infinity;
  }
}

// Every connection costs one descriptor here and one in the server; the server inherits this limit.
const needed = OTHERS + 256;
if (openFilesLimit('self') < needed) {
  say(`The open-files limit is ${openFilesLimit('self')}; ${OTHERS} connections need about ${needed} here and as many in the server.`);
  say(`Raise it for this run: prlimit --nofile=${needed * 2} npm run bench -- --connections   (or: ulimit -n ${needed * 2} first)`);
  process.exit(2);
}

function rssMb(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'));
  return Number(line?.split(/\s+/)[1] ?? 0) / 1024;
}
const fds = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;
/** User + system CPU seconds a process has used so far (/proc/<pid>/stat, in clock ticks of 1/100 s). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

const spec = (dir: string) => `channel: bench-in
source:
  mllp:
    host: 127.0.0.1
    port: 0
    # max_connections and idle_timeout_ms at their defaults (no limit; 10 minutes)
map:
  message_id: { path: MSH-10 }
  type: { path: MSH-9 }
destinations:
  archive: { file: { dir: ${JSON.stringify(join(dir, 'out'))} } }
`;

const dir = mkdtempSync(join(os.tmpdir(), 'hl7c-bench-connections-'));
writeFileSync(join(dir, 'spec.yaml'), spec(dir));
const logPath = join(dir, 'serve.log');
const logFd = openSync(logPath, 'w');
const serve = await startServe([join(dir, 'spec.yaml'), '--store', join(dir, 'store.db'), '--no-watch'], { ...process.env }, { stderrTo: logFd });
closeSync(logFd);
const pid = serve.child.pid!;
const port = serve.ports['bench-in']!;
const payload = (id: number) => ADT_A01.replace(/^(MSH(?:\|[^|\r]*){8}\|)[^|\r]*/, `$1CONN${id}`);

say(`# ${OTHERS} idle or dripping connections against hl7c serve`);
say();
say(`${new Date().toISOString()} · ${os.cpus()[0]?.model ?? 'unknown CPU'} × ${os.cpus().length} · Node ${process.version} · load average at start ${load()}`);
say(`hl7c serve (pid ${pid}, --durability disk, logs at info to a file; open-files limit ${openFilesLimit(pid)}); ${IDLE} idle connections and ${DRIPPING} dripping one byte every ${DRIP_MS} ms into a frame that never ends; one sender doing round trips (ADT^A01, ${MEASURE_MS / 1000} s each)`);
say();

type Sample = { rssMb: number; fds: number };
const sample = (): Sample => ({ rssMb: rssMb(pid), fds: fds(pid) });

/** One measured run of the sender, with the server's CPU use (share of one core) meanwhile. */
async function senderRun(label: string) {
  const cpu0 = cpuSeconds(pid);
  const t0 = performance.now();
  const r = await measureRoundTrips('bare', port, 1, payload, MEASURE_MS);
  const serverCpu = (cpuSeconds(pid) - cpu0) / ((performance.now() - t0) / 1000);
  say(`${label}: ${fmt(r.msgsPerSec)} msgs/s, p50 ${fmt(r.p50Ms, 2)} ms, p99 ${fmt(r.p99Ms, 2)} ms, server CPU ${fmt(100 * serverCpu)} % of a core (load ${load()})`);
  return { ...r, serverCpu, load: os.loadavg()[0]! };
}

// Warm-up (JIT, the store's first pages), not recorded: otherwise "alone" pays for it.
await measureRoundTrips('bare', port, 1, payload, 2000);
const before = sample();
const alone = await senderRun('sender alone');

// ---- the other connections, held by a process of their own
function startHolder(target: number, idle: number, dripping: number) {
  return spawn(process.execPath, [fileURLToPath(new URL('./connection-holder.js', import.meta.url)), String(target), String(idle), String(dripping), String(DRIP_MS)], { stdio: ['ignore', 'pipe', 'inherit'] });
}
/** Resolves with the holder's first line that has `key`. */
function said(holder: ReturnType<typeof startHolder>, key: string) {
  const holderLines: Array<Record<string, number>> = [];
  return new Promise<Record<string, number>>((resolve, reject) => {
    let buffered = '';
    const onData = (c: Buffer) => {
      buffered += c.toString('utf8');
      for (const line of buffered.split('\n').slice(0, -1)) holderLines.push(JSON.parse(line) as Record<string, number>);
      buffered = buffered.slice(buffered.lastIndexOf('\n') + 1);
      const found = holderLines.find((l) => key in l);
      if (found) {
        holder.stdout!.off('data', onData);
        resolve(found);
      }
    };
    holder.stdout!.on('data', onData);
    holder.once('exit', (code) => reject(new Error(`the connection holder exited (${code}) before saying ${key}`)));
  });
}

// Control: the same drip into a sink outside hl7c, so the machine carries its cost while hl7c does not read it.
const control = startHolder(0, 0, DRIPPING);
await said(control, 'open');
control.kill('SIGUSR2');
await sleep(1000);
const controlRun = await senderRun(`sender alone while ${DRIPPING} connections drip into a sink (control)`);
const controlEnded = said(control, 'dripped');
control.kill('SIGTERM');
const controlDrip = (await controlEnded) as { dripped: number; seconds: number };

const holder = startHolder(port, IDLE, DRIPPING);
const holderSaid = (key: string) => said(holder, key);
const opened = await holderSaid('open');
await sleep(2000);
const settled = sample();
say(`${opened.open} of ${OTHERS} other connections open; server RSS ${fmt(settled.rssMb, 1)} MB, ${settled.fds} fds`);
/** The sender beside the others, with the highest RSS and fd count seen meanwhile (read every 250 ms). */
async function besideOthers(label: string) {
  const peak: Sample = sample();
  const sampler = setInterval(() => {
    const now = sample();
    peak.rssMb = Math.max(peak.rssMb, now.rssMb);
    peak.fds = Math.max(peak.fds, now.fds);
  }, 250);
  const run = await senderRun(label);
  clearInterval(sampler);
  return { run, peak };
}
const idleOnly = await besideOthers(`sender with ${OTHERS} idle`);
holder.kill('SIGUSR2');
await sleep(1000);
const { run: during, peak: duringSample } = await besideOthers(`sender with ${IDLE} idle and ${DRIPPING} dripping`);
const ended = holderSaid('dripped');
holder.kill('SIGTERM');
const { dripped: drippedBytes, seconds: dripSeconds, stillOpen } = (await ended) as { dripped: number; seconds: number; stillOpen: number };
say(`dripped ${fmt(drippedBytes)} bytes in ${fmt(dripSeconds, 1)} s (${fmt(drippedBytes / dripSeconds)} bytes/s; asked: one per connection every ${DRIP_MS} ms, ${fmt((DRIPPING * 1000) / DRIP_MS)} bytes/s); ${stillOpen} still open at the end`);

// ---- after: the others closed
const closeDeadline = Date.now() + 30_000;
while (fds(pid) > before.fds + 5 && Date.now() < closeDeadline) await sleep(100);
await sleep(1000);
const afterSample = sample();
const after = await senderRun('sender after the others closed');
const logBytes = statSync(logPath).size;

serve.child.kill('SIGTERM');
await serve.exited;

const rows = [
  ['alone (before)', alone, before],
  [`alone, while ${fmt(DRIPPING)} connections drip into a sink outside hl7c (control: the drip's cost to the machine)`, controlRun, before],
  [`with ${fmt(OTHERS)} idle connections`, idleOnly.run, idleOnly.peak],
  [`with ${fmt(IDLE)} idle and ${fmt(DRIPPING)} dripping`, during, duringSample],
  ['alone again, after they closed', after, afterSample],
] as const;
const section = [
  `## ${fmt(OTHERS)} idle or dripping connections (hl7c serve as shipped)`,
  '',
  `Produced by \`npm run bench -- --connections\` (\`bench/connections.ts\`), ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC on ${os.cpus()[0]?.model ?? 'unknown CPU'} × ${os.cpus().length}, Node ${process.version}. ` +
    `\`hl7c serve\` in its own process (\`--durability disk\`, logs at info to a file, a file destination), its source at the defaults: no \`max_connections\`, \`idle_timeout_ms\` 600000 (10 minutes, longer than the run). ` +
    `One sender (a bare socket client, one connection, in the benchmark's process; the other connections are held by a second process) does ADT^A01 round trips for ${MEASURE_MS / 1000} s each: alone (after a 2 s warm-up); while ${fmt(OTHERS)} other connections sit idle; while ${fmt(IDLE)} of them sit idle and ${fmt(DRIPPING)} drip one byte every ${DRIP_MS} ms into an MLLP frame that never ends (${fmt(drippedBytes / dripSeconds)} bytes/s in all, as this machine's timers managed); and alone again after those closed. ` +
    `${stillOpen} of ${fmt(OTHERS)} were still open at the end of the measurement. Server RSS and open file descriptors (\`/proc/<pid>/fd\`): before, the highest seen while the sender ran beside the others (read every 250 ms), and after they closed.`,
  '',
  '| sender | msgs/s | p50 ms | p99 ms | server CPU (share of a core) | server RSS MB | server fds | load average (1 min) |',
  '| --- | --- | --- | --- | --- | --- | --- | --- |',
  ...rows.map(([label, r, s]) => `| ${label} | ${fmt(r.msgsPerSec)} | ${fmt(r.p50Ms, 2)} | ${fmt(r.p99Ms, 2)} | ${fmt(100 * r.serverCpu)} % | ${fmt(s.rssMb, 1)} | ${s.fds} | ${r.load.toFixed(2)} |`),
  '',
  `With ${fmt(OTHERS)} idle connections the sender keeps ${fmt((100 * idleOnly.run.msgsPerSec) / alone.msgsPerSec)} % of its rate alone (p99 ${fmt(idleOnly.run.p99Ms / alone.p99Ms, 1)}×); with ${fmt(DRIPPING)} of them dripping, ${fmt((100 * during.msgsPerSec) / alone.msgsPerSec)} % (p99 ${fmt(during.p99Ms / alone.p99Ms, 1)}×): every dripped byte is a read the server handles. The control, the same drip (${fmt(controlDrip.dripped / controlDrip.seconds)} bytes/s) into a sink outside hl7c, leaves the sender ${fmt((100 * controlRun.msgsPerSec) / alone.msgsPerSec)} % (p99 ${fmt(controlRun.p99Ms / alone.p99Ms, 1)}×). ` +
    `RSS ${fmt(duringSample.rssMb - before.rssMb, 1)} MB above the start (${fmt(((duringSample.rssMb - before.rssMb) * 1024) / OTHERS, 1)} KB per connection), ` +
    `${afterSample.rssMb - before.rssMb >= 0 ? fmt(afterSample.rssMb - before.rssMb, 1) + ' MB' : 'nothing'} still above it after they closed; fds back to ${afterSample.fds} (from ${before.fds}). ` +
    `The server wrote ${fmt(logBytes / 1024)} KB of logs in the run.`,
  '',
].join('\n');
say();
say(section);

if (!values['no-write']) {
  const path = join(REPO_ROOT, 'bench/RESULTS.md');
  const existing = existsSync(path) ? readFileSync(path, 'utf8') : '# hl7c benchmark results\n';
  writeFileSync(path, replaceSection(existing, CONNECTIONS_HEADING, section));
  say(`written to ${path}`);
}
process.exit(0);
