/**
 * The other connections of `bench/connections.ts`, in a process of their own so that their
 * work (thousands of writes a second) does not slow the measured sender's event loop:
 * `node connection-holder.js <port> <idle> <dripping> <dripMs>` (port 0: into a sink of its own). Opens the connections, prints
 * `{"open":n}`; on SIGUSR2 it starts dripping: each dripping connection opens a frame and sends
 * a message one byte every dripMs, never its end block. On SIGTERM it prints
 * `{"dripped":bytes,"seconds":s,"stillOpen":n}`, closes them all and exits.
 */
import net from 'node:net';
import { ADT_A01 } from './messages.js';

const [given, idle, dripping, dripMs] = process.argv.slice(2).map(Number) as [number, number, number, number];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// Port 0: a control run, the same connections and drip into a sink of this process's own
// (what the drip costs the machine, without hl7c reading it).
const port =
  given !== 0
    ? given
    : await new Promise<number>((resolve) => {
        const sink = net.createServer((s) => s.resume().on('error', () => undefined));
        sink.listen(0, '127.0.0.1', () => resolve((sink.address() as net.AddressInfo).port));
      });

const sockets: net.Socket[] = [];
for (let i = 0; i < idle + dripping; i++) {
  const socket = net.connect({ host: '127.0.0.1', port });
  socket.setNoDelay(true);
  socket.on('error', () => undefined);
  sockets.push(socket);
  // Opened in batches: a burst of 2,000 SYNs would overflow the listen backlog and measure that instead.
  if (i % 100 === 99) await sleep(20);
}
await Promise.all(sockets.map((s) => (s.connecting ? new Promise<void>((r) => s.once('connect', () => r()).once('error', () => r())) : undefined)));
const open = () => sockets.filter((s) => !s.destroyed).length;

const drippers = sockets.slice(idle);
const message = Buffer.from(ADT_A01, 'latin1');
let dripped = 0;
let tick = 0;
let started = performance.now();
let timer: NodeJS.Timeout | undefined;
process.once('SIGUSR2', () => {
  for (const s of drippers) s.write(Buffer.from([0x0b]));
  started = performance.now();
  timer = setInterval(() => {
    const byte = Buffer.from([message[tick++ % message.length]!]);
    for (const s of drippers) {
      if (s.destroyed) continue;
      s.write(byte);
      dripped++;
    }
  }, dripMs);
});

process.once('SIGTERM', () => {
  clearInterval(timer);
  process.stdout.write(`${JSON.stringify({ dripped, seconds: (performance.now() - started) / 1000, stillOpen: open() })}\n`);
  for (const s of sockets) s.destroy();
  process.exit(0);
});
// Said only once both signals are handled (SIGUSR1 would start Node's inspector: not used).
process.stdout.write(`${JSON.stringify({ open: open() })}\n`);
