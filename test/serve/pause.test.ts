import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { MllpClient } from '../../runtime/index.js';
import type { AdminToken } from '../../runtime/serve/index.js';
import { startServing } from '../../src/serve/serve.js';
import type { Serving } from '../../src/serve/serve.js';
import { cli, runBin, startBin, stop } from '../cli/helpers.js';
import { sql, testSchema } from '../store/pg-helpers.js';
import { adtMessage, adtSpec, memoryLogger, startWebhook, waitFor } from './helpers.js';

/**
 * A paused destination is held in the store: it survives a restart, every node on the store
 * honours it, and the CLI pauses and resumes it against the store while a serve runs.
 */

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const OPERATOR: AdminToken = { name: 'alice', token: 'op-' + randomBytes(16).toString('hex'), role: 'operator' };
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

/** Several claim polls of a worker (250 ms each): long enough for a paused queue to have been looked at. */
const settle = () => new Promise((r) => setTimeout(r, 1200));

async function adminCall(port: number, path: string, token: string, body?: unknown): Promise<{ status: number; json: Record<string, any> }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Record<string, any> };
}

/** The status as CLI and API give it, without what moves between two reads (clocks, ages). */
function comparable(status: Record<string, any>): unknown {
  return JSON.parse(JSON.stringify(status, (key, value: unknown) => (['now', 'oldest_age_ms', 'heartbeat_at'].includes(key) ? 0 : value)));
}

describe('pausing a destination', () => {
  test('SQLite: a pause made through the API holds across a restart; hl7c resume (CLI) lets the running serve send, hl7c pause stops it; who and when are shown and audited', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hl7c-pause-'));
    const spec = join(dir, 'adt.yaml');
    writeFileSync(spec, adtSpec());
    const store = join(dir, 'store.db');
    const hook = await startWebhook();
    cleanups.push(() => hook.close());
    const start = async () => {
      const serving = await startServing({ specs: [spec], storePath: store, cwd: dir, env: { TEST_WEBHOOK_URL: hook.url }, logger: memoryLogger().logger, watch: false, adminPort: 0, adminTokens: [OPERATOR] });
      const client = new MllpClient({ host: '127.0.0.1', port: serving.ports()['adt-in']! });
      return { serving, client, call: (path: string, body?: unknown) => adminCall(serving.adminPort!, path, OPERATOR.token, body) };
    };
    const stopServing = async (s: { serving: Serving; client: MllpClient }) => {
      await s.client.close();
      await s.serving.close();
    };
    const delivered = () => hook.received.map((r) => r.body.message_id);
    const queue = async (call: (path: string) => ReturnType<typeof adminCall>) => (await call('/api/destinations')).json.destinations.find((d: { destination: string }) => d.destination === 'webhook');

    let node = await start();
    const paused = await node.call('/api/destinations/adt-in/webhook/pause', {});
    expect(paused.json).toEqual({ paused: true, changed: true, paused_by: 'alice', paused_at: expect.stringMatching(ISO) });
    expect((await node.client.send(adtMessage('P1'))).code).toBe('AA');
    await settle();
    expect(delivered()).toEqual([]);
    expect(await queue(node.call)).toMatchObject({ paused: true, state: 'paused', paused_by: 'alice', paused_at: paused.json.paused_at, depth: 1 });

    // A restart keeps the pause: it is in the store, not in the process.
    await stopServing(node);
    node = await start();
    cleanups.push(() => stopServing(node));
    expect((await node.client.send(adtMessage('P2'))).code).toBe('AA');
    await settle();
    expect(delivered()).toEqual([]);
    expect(await queue(node.call)).toMatchObject({ paused: true, paused_by: 'alice', paused_at: paused.json.paused_at, depth: 2 });

    // The CLI acts on the store itself; the running serve honours it without a restart.
    const resumed = await cli('resume', 'adt-in', 'webhook', '--store', store);
    expect(resumed).toEqual({ code: 0, stdout: 'adt-in/webhook  running\n', stderr: 'the serve working adt-in/webhook sends its queue again\n' });
    await waitFor(() => delivered().length === 2, 10_000, 'P1 and P2 delivered after the resume');
    expect(delivered()).toEqual(['P1', 'P2']);

    const pausedByCli = await cli('pause', 'adt-in', 'webhook', '--store', store);
    expect(pausedByCli.code).toBe(0);
    expect(pausedByCli.stdout).toMatch(/^adt-in\/webhook {2}paused {2}by cli:\S+ {2}at \d{4}-\d\d-\d\dT\S+Z\n$/);
    const who = /by (cli:\S+)/.exec(pausedByCli.stdout)![1]!;
    // A second pause changes nothing (the first one's who and when stay), and says so.
    expect(await cli('pause', 'adt-in', 'webhook', '--store', store)).toMatchObject({ code: 0, stdout: pausedByCli.stdout, stderr: 'adt-in/webhook was already paused\n' });
    expect((await node.client.send(adtMessage('P3'))).code).toBe('AA');
    await settle();
    expect(delivered()).toEqual(['P1', 'P2']);
    expect(await queue(node.call)).toMatchObject({ paused: true, paused_by: who });

    // hl7c status and GET /api/status are one report from one module.
    const status = await cli('status', '--store', store, '--json');
    expect(status.code).toBe(0);
    const fromCli = JSON.parse(status.stdout) as Record<string, any>;
    expect(fromCli).toMatchObject({ embedded: true, nodes: [], queues: [{ channel: 'adt-in', destination: 'webhook', queued: 1 }], paused: [{ channel: 'adt-in', destination: 'webhook', paused_by: who }] });
    expect(comparable(fromCli)).toEqual(comparable((await node.call('/api/status')).json));
    const text = await cli('status', '--store', store);
    expect(text.stdout).toContain(`paused:\n  adt-in -> webhook  paused by ${who} at `);
    expect(text.stdout).toMatch(/queues:\n {2}adt-in -> webhook {2}queued 1 {2}sending 0 {2}stopped 0 {2}oldest \S+ \S+\n/);

    expect((await node.call('/api/destinations/adt-in/webhook/resume', {})).json).toMatchObject({ paused: false, changed: true, paused_by: null });
    await waitFor(() => delivered().length === 3, 10_000, 'P3 delivered after the API resume');

    // Unknown destination: exit 1, nothing paused.
    expect(await cli('pause', 'adt-in', 'nowhere', '--store', store)).toEqual({ code: 1, stdout: '', stderr: 'hl7c: no destination adt-in/nowhere: name a channel and one of its destinations\n' });
    const audit = JSON.parse((await cli('audit', '--store', store, '--json')).stdout) as Array<{ who: string; action: string; target: string; remote: string; detail: string }>;
    expect(audit.filter((e) => e.action.startsWith('destination.')).map((e) => `${e.who} ${e.action} ${e.target} ${e.detail}`).reverse()).toEqual([
      'alice destination.pause adt-in/webhook paused',
      `${who} destination.resume adt-in/webhook resumed`,
      `${who} destination.pause adt-in/webhook paused`,
      `${who} destination.pause adt-in/webhook already paused`,
      'alice destination.resume adt-in/webhook resumed',
      `${who} destination.pause adt-in/nowhere failed: no destination adt-in/nowhere: name a channel and one of its destinations`,
    ]);
  }, 60_000);

  test('PostgreSQL, two serve processes: a pause made on node A (which does not run the channel) holds node B, also after B is killed and started again; resume on A lets B send', async () => {
    const schema = testSchema('pause');
    cleanups.push(() => schema.drop());
    const hook = await startWebhook();
    cleanups.push(() => hook.close());
    const root = mkdtempSync(join(tmpdir(), 'hl7c-pause-pg-'));
    mkdirSync(join(root, 'a'));
    mkdirSync(join(root, 'b'));
    writeFileSync(join(root, 'b', 'adt.yaml'), adtSpec());
    writeFileSync(join(root, 'a', 'other.yaml'), adtSpec().replace('channel: adt-in', 'channel: other-in'));
    const token = randomBytes(20).toString('hex');
    const env = { ...process.env, TEST_WEBHOOK_URL: hook.url, HL7C_LOG_LEVEL: 'warn', HL7C_ADMIN_TOKEN: token };
    const startB = async () => {
      const b = await startBin(['serve', join(root, 'b'), '--store', schema.url, '--no-watch'], /channel adt-in on port (\d+)/, env, 60_000);
      cleanups.push(() => stop(b.child, 'SIGKILL'));
      return { child: b.child, port: Number(b.match[1]) };
    };
    let b = await startB();
    const a = await startBin(['serve', join(root, 'a'), '--store', schema.url, '--no-watch', '--admin-port', '0'], /admin on port (\d+)/, env, 60_000);
    cleanups.push(() => stop(a.child, 'SIGKILL'));
    const call = (path: string, body?: unknown) => adminCall(Number(a.match[1]), path, token, body);
    const send = async (port: number, controlId: string) => {
      const client = new MllpClient({ host: '127.0.0.1', port });
      try {
        expect((await client.send(adtMessage(controlId))).code).toBe('AA');
      } finally {
        await client.close();
      }
    };
    const states = async () => (await sql<{ control_id: string; state: string }>(schema.name, 'SELECT m.control_id, d.state FROM deliveries d JOIN messages m ON m.id = d.message_id ORDER BY d.id')).map((r) => `${r.control_id}:${r.state}`);

    const paused = await call('/api/destinations/adt-in/webhook/pause', {});
    expect(paused).toEqual({ status: 200, json: { paused: true, changed: true, paused_by: 'HL7C_ADMIN_TOKEN', paused_at: expect.stringMatching(ISO) } });
    await send(b.port, 'G1');
    await send(b.port, 'G2');
    await settle();
    expect(hook.received).toEqual([]);
    expect(await states()).toEqual(['G1:queued', 'G2:queued']);

    // B dies and comes back: the pause is in the database, and the new process honours it.
    await stop(b.child, 'SIGKILL');
    b = await startB();
    await send(b.port, 'G3');
    await settle();
    expect(hook.received).toEqual([]);
    expect(await states()).toEqual(['G1:queued', 'G2:queued', 'G3:queued']);

    // Who and when, from any machine that reaches the database, and from A's API: one report.
    const status = await runBin(['status', '--store', schema.url, '--json']);
    expect(status.code).toBe(0);
    const fromCli = JSON.parse(status.stdout) as Record<string, any>;
    expect(fromCli).toMatchObject({ embedded: false, paused: [{ channel: 'adt-in', destination: 'webhook', paused_by: 'HL7C_ADMIN_TOKEN', paused_at: paused.json.paused_at }] });
    // A, the killed B and the new B.
    expect(fromCli.nodes).toHaveLength(3);
    expect(comparable(fromCli)).toEqual(comparable((await call('/api/status')).json));
    expect((await call('/api/destinations')).json.destinations).toContainEqual(expect.objectContaining({ channel: 'adt-in', destination: 'webhook', paused: true, state: 'paused', depth: 3, paused_by: 'HL7C_ADMIN_TOKEN' }));

    expect((await call('/api/destinations/adt-in/webhook/resume', {})).json).toMatchObject({ paused: false, changed: true });
    await waitFor(() => hook.received.length === 3, 15_000, 'B sends G1–G3 after the resume on A');
    expect(hook.received.map((r) => r.body.message_id)).toEqual(['G1', 'G2', 'G3']);
    const audit = await sql<{ who: string; action: string; target: string }>(schema.name, "SELECT who, action, target FROM audit WHERE action LIKE 'destination.%' ORDER BY id");
    expect(audit).toEqual([
      { who: 'HL7C_ADMIN_TOKEN', action: 'destination.pause', target: 'adt-in/webhook' },
      { who: 'HL7C_ADMIN_TOKEN', action: 'destination.resume', target: 'adt-in/webhook' },
    ]);
    expect(await stop(b.child, 'SIGTERM')).toBe(0);
    expect(await stop(a.child, 'SIGTERM')).toBe(0);
  }, 180_000);
});
