import http from 'node:http';
import net from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { MllpClient } from '../../runtime/index.js';
import { runBin, startBin, stop } from '../cli/helpers.js';
import { sql, testSchema } from '../store/pg-helpers.js';
import { adtMessage, freePort, waitFor } from './helpers.js';

/**
 * Several `hl7c serve` nodes (child processes) on one PostgreSQL schema, each listening on its
 * own port (given through ${NODE_MLLP_PORT} in the spec), with load spread over all of them.
 */

const LEASE_MS = 2000;

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const SPEC = `channel: adt-in
source:
  mllp:
    host: 127.0.0.1
    port: \${NODE_MLLP_PORT}
accept:
  - rule: adt-only
    if: { message_type: [ADT] }
    otherwise: reject
    reason: ADT only
map:
  message_id: { path: MSH-10 }
destinations:
  ordered:
    http:
      url: \${TEST_RECEIVER}/ordered
    retry: { attempts: 1000, backoff_ms: 20, max_backoff_ms: 200 }
  parallel:
    http:
      url: \${TEST_RECEIVER}/parallel
    max_in_flight: 4
    retry: { attempts: 1000, backoff_ms: 20, max_backoff_ms: 200 }
`;

interface Arrival {
  key: string;
  /** The message id the Idempotency-Key names (channel:message-id:destination:body hash). */
  messageId: number;
  controlId: string;
}

/** The app's HTTP endpoint: every POST, by path, with its Idempotency-Key; answers after `delayMs`. */
async function startReceiver(delayMs: number): Promise<{ url: string; arrivals: Record<'ordered' | 'parallel', Arrival[]>; close(): Promise<void> }> {
  const arrivals: Record<'ordered' | 'parallel', Arrival[]> = { ordered: [], parallel: [] };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      setTimeout(() => {
        const path = req.url?.slice(1) as 'ordered' | 'parallel';
        const key = String(req.headers['idempotency-key']);
        arrivals[path].push({ key, messageId: Number(key.split(':')[1]), controlId: String((JSON.parse(Buffer.concat(chunks).toString('utf8')) as { message_id: string }).message_id) });
        res.writeHead(200);
        res.end();
      }, delayMs);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    arrivals,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

async function startNodes(count: number, receiverUrl: string): Promise<{ schema: string; url: string; nodes: Array<{ port: number; child: Awaited<ReturnType<typeof startBin>>['child'] }> }> {
  const schema = testSchema('nodes');
  cleanups.push(() => schema.drop());
  const dir = mkdtempSync(join(tmpdir(), 'hl7c-nodes-'));
  const spec = join(dir, 'adt.yaml');
  writeFileSync(spec, SPEC);
  // Started together: they race to create the schema, and the advisory lock lets one do it.
  const nodes = await Promise.all(
    Array.from({ length: count }, async () => {
      const port = await freePort();
      const env = { ...process.env, NODE_MLLP_PORT: String(port), TEST_RECEIVER: receiverUrl, HL7C_LEASE_MS: String(LEASE_MS), HL7C_LOG_LEVEL: 'warn' };
      const started = await startBin(['serve', spec, '--store', schema.url, '--no-watch'], /channel adt-in on port (\d+)/, env, 60_000);
      cleanups.push(() => stop(started.child, 'SIGKILL'));
      return { port: Number(started.match[1]), child: started.child };
    }),
  );
  return { schema: schema.name, url: schema.url, nodes };
}

/** Two senders per node, each sending one message at a time (as an HL7 sender does) until told to stop. */
function sendLoad(ports: number[]): { acked: Set<string>; stop(): Promise<void> } {
  const acked = new Set<string>();
  let stopping = false;
  const senders = ports.flatMap((port, n) =>
    [0, 1].map(async (s) => {
      const client = new MllpClient({ host: '127.0.0.1', port, reconnect: { attempts: 1 }, ackTimeoutMs: 5000 });
      try {
        for (let i = 0; !stopping; i++) {
          const id = `N${n}S${s}-${i}`;
          const ack = await client.send(adtMessage(id, `E${i}`));
          if (ack.code === 'AA' || ack.code === 'CA') acked.add(id);
        }
      } catch {
        // Its node was killed: the message in flight got no AA, so it does not count.
      } finally {
        await client.close().catch(() => undefined);
      }
    }),
  );
  return {
    acked,
    async stop() {
      stopping = true;
      await Promise.all(senders);
    },
  };
}

/**
 * Per sender, the sequence numbers of its messages in the order they first arrived. A sender
 * sends the next message only after the ACK of the one before, so FIFO means each of these is
 * ascending. (Messages of different senders committed at the same moment on different nodes
 * have no order between them: the queue holds them in the order their commits became visible.)
 */
function arrivalOrderBySender(arrivals: Arrival[]): Map<string, number[]> {
  const seen = new Set<string>();
  const bySender = new Map<string, number[]>();
  for (const a of arrivals) {
    if (seen.has(a.controlId)) continue;
    seen.add(a.controlId);
    const [sender, i] = a.controlId.split('-');
    bySender.set(sender!, [...(bySender.get(sender!) ?? []), Number(i)]);
  }
  return bySender;
}

function expectFifoPerSender(arrivals: Arrival[]): void {
  const bySender = arrivalOrderBySender(arrivals);
  expect(bySender.size).toBeGreaterThan(1);
  for (const [sender, order] of bySender) expect(order, `order of ${sender}'s messages`).toEqual([...order].sort((a, b) => a - b));
}

describe('several hl7c serve nodes on one PostgreSQL', () => {
  test('without a kill: every ACKed message is stored and delivered exactly once, the ordered queue in order', async () => {
    const receiver = await startReceiver(0);
    cleanups.push(() => receiver.close());
    const { schema, nodes } = await startNodes(2, receiver.url);
    const load = sendLoad(nodes.map((n) => n.port));
    await waitFor(() => load.acked.size >= 300, 60_000, '300 acknowledged messages');
    await load.stop();
    const acked = [...load.acked];
    const delivered = (path: 'ordered' | 'parallel') => new Set(receiver.arrivals[path].map((a) => a.controlId));
    await waitFor(() => acked.every((id) => delivered('ordered').has(id) && delivered('parallel').has(id)), 60_000, 'every ACKed message delivered to both destinations');

    const stored = await sql<{ control_id: string }>(schema, "SELECT control_id FROM messages WHERE status = 'accepted'");
    expect(new Set(stored.map((r) => r.control_id))).toEqual(new Set(acked));
    for (const path of ['ordered', 'parallel'] as const) {
      const keys = receiver.arrivals[path].map((a) => a.key);
      expect(keys.length, `${path}: no message delivered twice`).toBe(new Set(keys).size);
    }
    expectFifoPerSender(receiver.arrivals.ordered);
    for (const n of nodes) expect(await stop(n.child, 'SIGTERM')).toBe(0);
  }, 150_000);

  test('SIGKILL of the node working the ordered queue: every ACKed message is delivered at least once, the order is kept, and a survivor takes over within the lease', async () => {
    // A slow endpoint, so the queues have entries leased when the kill comes.
    const receiver = await startReceiver(5);
    cleanups.push(() => receiver.close());
    const { schema, url, nodes } = await startNodes(3, receiver.url);
    const load = sendLoad(nodes.map((n) => n.port));
    await waitFor(() => load.acked.size >= 200, 60_000, '200 acknowledged messages');

    // The node that holds the ordered queue's head right now.
    let victim: { pid: number; node: string } | undefined;
    await waitFor(
      () => {
        void sql<{ pid: number; node: string }>(
          schema,
          `SELECT n.pid, n.id AS node FROM queue_owners q JOIN nodes n ON n.id = q.owner
           WHERE q.destination = 'ordered' AND EXISTS (SELECT 1 FROM deliveries d WHERE d.destination = 'ordered' AND d.state = 'sending' AND d.lease_owner = q.owner)`,
        ).then((rows) => (victim ??= rows[0]));
        return victim !== undefined;
      },
      30_000,
      'a node sending from the ordered queue',
    );
    const killed = nodes.find((n) => n.child.pid === victim!.pid)!;
    killed.child.kill('SIGKILL');
    const ackedAtKill = load.acked.size;
    // The load goes on at the survivors for a while.
    await waitFor(() => load.acked.size >= ackedAtKill + 100, 60_000, 'more messages acknowledged by the survivors');
    await load.stop();

    const acked = [...load.acked];
    const delivered = (path: 'ordered' | 'parallel') => new Set(receiver.arrivals[path].map((a) => a.controlId));
    await waitFor(() => acked.every((id) => delivered('ordered').has(id) && delivered('parallel').has(id)), 90_000, 'every ACKed message delivered to both destinations');

    const stored = new Set((await sql<{ control_id: string }>(schema, "SELECT control_id FROM messages WHERE status = 'accepted'")).map((r) => r.control_id));
    expect(acked.filter((id) => !stored.has(id))).toEqual([]);
    expectFifoPerSender(receiver.arrivals.ordered);

    // What the dead node held was taken over once its lease ran out, and within one more lease.
    const takeovers = await sql<{ at: number; detail: string }>(schema, "SELECT at, detail FROM events WHERE kind = 'lease taken over' AND detail LIKE $1", [`from ${victim!.node},%`]);
    expect(takeovers.length).toBeGreaterThan(0);
    for (const t of takeovers) {
      const ranOut = Date.parse(/ran out at (\S+)$/.exec(t.detail)![1]!);
      expect(Number(t.at)).toBeGreaterThanOrEqual(ranOut);
      expect(Number(t.at) - ranOut).toBeLessThanOrEqual(LEASE_MS);
    }
    // hl7c status, from anywhere that reaches the database, tells the lost node from the live ones.
    const status = await runBin(['status', '--store', url]);
    expect(status.code).toBe(0);
    const line = (node: string) => status.stdout.split('\n').find((l) => l.includes(node)) ?? '';
    expect(line(victim!.node)).toContain('LOST');
    const alive = await sql<{ id: string }>(schema, 'SELECT id FROM nodes WHERE pid <> $1', [victim!.pid]);
    for (const n of alive) expect(line(n.id)).toMatch(/alive$/);
    for (const n of nodes.filter((x) => x !== killed)) expect(await stop(n.child, 'SIGTERM')).toBe(0);
  }, 240_000);
});
