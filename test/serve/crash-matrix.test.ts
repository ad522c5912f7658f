import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, test } from 'vitest';
import { MllpClient } from '../../runtime/index.js';
import { FAULT_POINTS, parseFault } from '../../runtime/faults.js';
import type { FaultPoint } from '../../runtime/faults.js';
import { corpusTemplates, startCountingReceiver, startServe, withControlId } from '../../bench/traffic.js';
import type { CountingReceiver, ServeProcess } from '../../bench/traffic.js';
import { waitFor } from './helpers.js';

/**
 * The crash matrix: `hl7c serve` as shipped is SIGKILLed (HL7C_FAULT, runtime/faults.ts) at each
 * moment where a crash could lose or double a message, while corpus messages stream in over
 * MLLP; then it is started again without the fault. Whatever got AA/CA must be stored and
 * delivered; a message that got no ACK may be there or not, but never half; a message is
 * delivered more than once only under the same Idempotency-Key.
 */

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const DESTINATIONS = ['ordered', 'parallel'] as const;

const spec = (comment = '') => `channel: crash-in
source:
  mllp:
    host: 127.0.0.1
    port: \${CRASH_PORT:-0}
map:
  message_id: { path: MSH-10 }
  type: { path: MSH-9 }
destinations:
  ordered:
    http: { url: "\${CRASH_RECEIVER}/ordered" }
    retry: { attempts: 1000, backoff_ms: 10, max_backoff_ms: 100 }
  parallel:
    http: { url: "\${CRASH_RECEIVER}/parallel" }
    max_in_flight: 4
    retry: { attempts: 1000, backoff_ms: 10, max_backoff_ms: 100 }
${comment}`;

interface Case {
  point: FaultPoint;
  /** Killed on this hit of the point. */
  hit: number;
  durability: 'disk' | 'process';
  /** What brings the process to the point, besides the traffic. */
  trigger?: 'change the spec' | 'SIGTERM';
  /** Extra environment for both runs. */
  env?: Record<string, string>;
}

/** A received-message log this small is rotated every few messages. */
const ROTATING = { HL7C_RECEIVED_LOG_BYTES: '20000' };

// A point that depends on --durability (whether the log is synced before the ACK) runs with both.
const CASES: Case[] = [
  { point: 'after-receive', hit: 60, durability: 'disk' },
  { point: 'after-log-append', hit: 20, durability: 'disk' },
  { point: 'after-log-append', hit: 20, durability: 'process' },
  // The fdatasync in the thread pool is in flight; messages queued behind it wait for the next.
  { point: 'during-log-sync', hit: 20, durability: 'disk' },
  { point: 'during-log-sync', hit: 20, durability: 'disk', env: ROTATING },
  // Renamed to .old, the new log not made yet; the syncs of the renamed one may be in flight.
  { point: 'during-log-rotation', hit: 3, durability: 'disk', env: ROTATING },
  { point: 'during-log-rotation', hit: 3, durability: 'process', env: ROTATING },
  { point: 'during-ingest', hit: 10, durability: 'disk' },
  { point: 'during-ingest', hit: 10, durability: 'process' },
  { point: 'during-send', hit: 40, durability: 'disk' },
  { point: 'during-reload', hit: 1, durability: 'disk', trigger: 'change the spec' },
  // Hit 1 is the checkpoint at start-up, with nothing received; hit 2 the one SIGTERM makes after the drain.
  { point: 'during-checkpoint', hit: 2, durability: 'disk', trigger: 'SIGTERM' },
  { point: 'during-drain', hit: 1, durability: 'process', trigger: 'SIGTERM' },
];

const templates = corpusTemplates();

/** Senders on a few connections, each sending corpus messages one after another until the server goes away. */
function startTraffic(port: number, prefix: string) {
  const sent = new Map<string, Buffer>();
  const acked = new Set<string>();
  let stopped = false;
  const loops = Array.from({ length: 3 }, async (_, connection) => {
    const client = new MllpClient({ host: '127.0.0.1', port, ackTimeoutMs: 5000, reconnect: { attempts: 1 } });
    try {
      for (let i = 0; !stopped; i++) {
        const id = `${prefix}-${connection}-${i}`;
        const bytes = withControlId(templates[(connection * 17 + i) % templates.length]!, id);
        sent.set(id, bytes);
        const result = await client.send(bytes);
        if (result.code === 'AA' || result.code === 'CA' || result.accept?.code === 'CA') acked.add(id);
      }
    } catch {
      // The server died: this message's fate is unknown to the sender, as in real life.
    } finally {
      await client.close().catch(() => undefined);
    }
  });
  return {
    sent,
    acked,
    async stop() {
      stopped = true;
      await Promise.all(loops);
    },
  };
}

/** The control id a receipt was for (the channel maps MSH-10 to message_id). */
const controlIdOf = (body: string) => String((JSON.parse(body) as { message_id: string }).message_id);

async function queuesEmpty(serve: ServeProcess): Promise<boolean> {
  const metrics = await (await fetch(`http://127.0.0.1:${serve.adminPort}/metrics`)).text();
  return !/^hl7c_deliveries\{[^}]*state="(queued|sending)"[^}]*\} [1-9]/m.test(metrics);
}

describe('crash matrix: SIGKILL at each named point, then a restart', () => {
  const named = CASES.map((c) => ({ ...c, name: `${c.point} (hit ${c.hit}, --durability ${c.durability})${c.env === ROTATING ? ', the log rotated every few messages' : ''}` }));
  test.each(named)('$name', async ({ point, hit, durability, trigger, env: extra }) => {
    const receiver: CountingReceiver = await startCountingReceiver();
    cleanups.push(() => receiver.close());
    const dir = mkdtempSync(join(tmpdir(), 'hl7c-crash-matrix-'));
    const specPath = join(dir, 'crash.yaml');
    writeFileSync(specPath, spec());
    const storePath = join(dir, 'store.db');
    const env = { ...process.env, CRASH_RECEIVER: receiver.url, HL7C_LOG_LEVEL: 'warn', ...extra };
    const args = [specPath, '--store', storePath, '--durability', durability, '--admin-port', '0'];

    const first = await startServe([...args, ...(trigger === 'change the spec' ? [] : ['--no-watch'])], { ...env, HL7C_FAULT: `${point}:${hit}` });
    cleanups.push(() => first.child.kill('SIGKILL'));
    const traffic = startTraffic(first.ports['crash-in']!, `${point}-${durability}`);
    if (trigger) {
      await waitFor(() => traffic.acked.size >= 30, 20_000, 'traffic flowing before the trigger');
      if (trigger === 'SIGTERM') first.child.kill('SIGTERM');
      else writeFileSync(specPath, spec('# a comment: a new version, the same channel\n'));
    }
    const death = await Promise.race([first.exited, new Promise((r) => setTimeout(() => r('still running'), 30_000))]);
    expect(death, first.stderr()).toBe('SIGKILL');
    expect(first.stderr()).toContain(`fault point ${point} reached (hit ${hit})`);
    await traffic.stop();
    expect(traffic.acked.size).toBeGreaterThan(0);

    // Restarted without the fault.
    const second = await startServe(['--no-watch', ...args], env);
    cleanups.push(() => second.child.kill('SIGKILL'));
    const deliveredIds = (destination: string) => new Set([...receiver.received].filter(([k]) => k.startsWith(`/${destination} `)).map(([, v]) => controlIdOf(v.body)));
    const undelivered = () => DESTINATIONS.flatMap((d) => [...traffic.acked].filter((id) => !deliveredIds(d).has(id)).map((id) => `${d} ${id}`));
    // On a timeout, the assertion below names what is missing.
    await waitFor(() => undelivered().length === 0, 30_000, 'every acknowledged message delivered').catch(() => undefined);
    expect(undelivered()).toEqual([]);
    // Messages stored but never acknowledged are delivered too: wait until nothing is left.
    for (let empty = false; !empty; ) {
      empty = await queuesEmpty(second);
      if (!empty) await new Promise((r) => setTimeout(r, 50));
    }
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);

    // What the store holds, read as any other program would read the table.
    const db = new Database(storePath, { readonly: true });
    cleanups.push(() => db.close());
    const messages = db.prepare('SELECT id, control_id, status, raw FROM messages ORDER BY id').all() as Array<{ id: number; control_id: string; status: string; raw: Buffer }>;
    const deliveries = db.prepare('SELECT message_id, destination, state FROM deliveries').all() as Array<{ message_id: number; destination: string; state: string }>;

    const stored = new Map<string, number[]>();
    for (const m of messages) stored.set(m.control_id, [...(stored.get(m.control_id) ?? []), m.id]);
    // Nothing acknowledged is lost: each acknowledged message is stored, once.
    expect([...traffic.acked].filter((id) => stored.get(id)?.length !== 1)).toEqual([]);
    // Nothing is half-stored: every message there, acknowledged or not, is whole (the bytes sent,
    // its outcome) and each of its queue entries was delivered.
    for (const m of messages) {
      expect(traffic.sent.get(m.control_id), `message ${m.id} (${m.control_id}) is one that was sent`).toBeDefined();
      expect(m.raw.equals(traffic.sent.get(m.control_id)!), `message ${m.id}: the bytes sent`).toBe(true);
      expect(m.status).toBe('accepted');
      expect(
        deliveries
          .filter((d) => d.message_id === m.id)
          .map((d) => `${d.destination}:${d.state}`)
          .sort(),
      ).toEqual(DESTINATIONS.map((d) => `${d}:sent`));
    }
    // The senders never send a message twice, so no control id may be stored twice.
    expect([...stored].filter(([, ids]) => ids.length > 1)).toEqual([]);
    // Delivered more than once only under the same Idempotency-Key (channel:message id:destination:body hash),
    // with the same body; a control id never reaches a destination under two keys.
    const keysOf = new Map<string, Set<string>>();
    for (const [key, { body }] of receiver.received) {
      expect(body, key).not.toMatch(/^MISMATCH/);
      const [path, idempotencyKey] = key.split(' ');
      const id = controlIdOf(body);
      const message = messages.find((m) => m.control_id === id);
      expect(idempotencyKey).toMatch(new RegExp(`^crash-in:${message?.id}:${path!.slice(1)}:[0-9a-f]{16}$`));
      const k = `${path} ${id}`;
      keysOf.set(k, new Set([...(keysOf.get(k) ?? []), idempotencyKey!]));
    }
    expect([...keysOf].filter(([, keys]) => keys.size > 1)).toEqual([]);
    // Killed after a destination answered and before its outcome was recorded: sent again, under the same key.
    if (point === 'during-send') expect(receiver.duplicates).toBeGreaterThan(0);
  }, 90_000);
});

describe('the fault hook (HL7C_FAULT)', () => {
  test('names a point and the hit to die on; a typo is refused rather than run without its crash', () => {
    expect(parseFault(undefined)).toBeNull();
    expect(parseFault('after-log-append')).toEqual({ point: 'after-log-append', hit: 1 });
    expect(parseFault('during-send:40')).toEqual({ point: 'during-send', hit: 40 });
    for (const bad of ['after-log-apend', 'during-send:0', 'during-send:x']) expect(() => parseFault(bad)).toThrow(`expected <point>[:<hit>] with a point among ${FAULT_POINTS.join(', ')}`);
  });

  test('a process dies by SIGKILL on the named hit of the named point, and only there', () => {
    const script = "const { faultPoint } = await import(process.argv[1]); faultPoint('during-send'); faultPoint('after-receive'); process.stdout.write('past the first; '); faultPoint('after-receive'); process.stdout.write('past the second');";
    const run = (fault: string) => spawnSync(process.execPath, ['--input-type=module', '-e', script, join(process.cwd(), 'dist/runtime/faults.js')], { encoding: 'utf8', env: { ...process.env, HL7C_FAULT: fault } });
    const killed = run('after-receive:2');
    expect([killed.signal, killed.stdout]).toEqual(['SIGKILL', 'past the first; ']);
    expect(killed.stderr).toContain('fault point after-receive reached (hit 2)');
    const elsewhere = run('during-reload');
    expect([elsewhere.signal, elsewhere.status, elsewhere.stdout]).toEqual([null, 0, 'past the first; past the second']);
  });
});
