import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import net from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { frame, MllpClient } from '../runtime/index.js';

export interface RoundTripRow {
  client: string;
  server: string;
  connections: number;
  msgsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** Round trips completed in the measured window. */
  count: number;
  /** Round trips completed in all, warm-up included. */
  total: number;
}

export type ServerKind = 'bare' | 'hl7c' | 'medplum' | 'serve-disk' | 'serve-process' | 'serve-pg' | 'serve-pg-2';

/** Starts a benchmark server in a child process; resolves with its port and a stop function. */
export async function startServerProcess(kind: ServerKind): Promise<{ port: number; stop: () => void; child: ChildProcess }> {
  const script = join(dirname(fileURLToPath(import.meta.url)), 'mllp-server.js');
  const child = spawn(process.execPath, [script, kind], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (c) => {
      out += c;
      const m = /port (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`${kind} server exited ${code}`)));
  });
  return { port, child, stop: () => child.kill('SIGKILL') };
}

type Sender = (id: number) => Promise<void>;

/** A bare MLLP client: writes the frame, waits for the end-of-block byte of the reply. */
async function bareSender(port: number, payload: (id: number) => string): Promise<{ send: Sender; close: () => void }> {
  const socket = await new Promise<net.Socket>((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => resolve(s));
  });
  socket.setNoDelay(true);
  let waiting: (() => void) | null = null;
  socket.on('data', (chunk: Buffer) => {
    if (chunk.indexOf(0x1c) !== -1 && waiting) {
      const w = waiting;
      waiting = null;
      w();
    }
  });
  return {
    send: (id) =>
      new Promise<void>((resolve) => {
        waiting = resolve;
        socket.write(frame(payload(id)));
      }),
    close: () => socket.destroy(),
  };
}

async function hl7cSender(port: number, payload: (id: number) => string): Promise<{ send: Sender; close: () => void }> {
  const client = new MllpClient({ host: '127.0.0.1', port, ackTimeoutMs: 10_000 });
  const check = (ack: { code: string }) => {
    if (ack.code !== 'AA' && ack.code !== 'CA') throw new Error(`unexpected ACK ${ack.code}`);
  };
  return {
    send: (id) => client.send(payload(id)).then(check),
    close: () => void client.close(),
  };
}

export const CLIENTS = { bare: bareSender, hl7c: hl7cSender };

/**
 * Round trips (send, wait for the ACK, send the next) on `connections` connections at once for
 * `ms` milliseconds; latency per round trip. Several ports (nodes behind a load balancer): the
 * connections are spread over them in turn.
 */
export async function measureRoundTrips(
  client: keyof typeof CLIENTS,
  port: number | number[],
  connections: number,
  payload: (id: number) => string,
  ms: number,
): Promise<Omit<RoundTripRow, 'client' | 'server'>> {
  const ports = Array.isArray(port) ? port : [port];
  const senders = await Promise.all(Array.from({ length: connections }, (_, i) => CLIENTS[client](ports[i % ports.length]!, payload)));
  const latencies: number[] = [];
  let next = 0;
  let total = 0;
  const run = async (s: { send: Sender }, until: number, record: boolean) => {
    while (Date.now() < until) {
      const t0 = process.hrtime.bigint();
      await s.send(next++);
      total++;
      if (record) latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
  };
  const warm = Date.now() + 300;
  await Promise.all(senders.map((s) => run(s, warm, false)));
  const start = process.hrtime.bigint();
  const until = Date.now() + ms;
  await Promise.all(senders.map((s) => run(s, until, true)));
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  senders.forEach((s) => s.close());
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))]!;
  return { connections, msgsPerSec: latencies.length / seconds, p50Ms: pct(50), p99Ms: pct(99), count: latencies.length, total };
}
