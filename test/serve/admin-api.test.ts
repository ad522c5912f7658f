import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterEach, describe, expect, test } from 'vitest';
import { MllpClient } from '../../runtime/index.js';
import { Operations, SqliteStore, startAdminServer } from '../../runtime/serve/index.js';
import type { AdminToken, ServeEvent } from '../../runtime/serve/index.js';
import { startServing } from '../../src/serve/serve.js';
import { TEST_PG_URL } from '../store/pg-helpers.js';
import { cli, runBin } from '../cli/helpers.js';
import { memoryLogger, startWebhook, waitFor } from './helpers.js';
import type { Webhook } from './helpers.js';

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const OPERATOR: AdminToken = { name: 'alice', token: 'op-' + randomBytes(16).toString('hex'), role: 'operator' };
const VIEWER: AdminToken = { name: 'bob', token: 'view-' + randomBytes(16).toString('hex'), role: 'viewer' };

/** Patient data that must never appear in what a viewer gets. */
const FAMILY = 'Quillfeather';
const MRN = 'MRN77123';

const message = (controlId: string) =>
  `MSH|^~\\&|EPIC|GH|HL7C|LAB|20261125||ADT^A08^ADT_A01|${controlId}|P|2.5.1\rPID|1||${MRN}^^^EPI^MR||${FAMILY}^Ada||19840512|F\r`;

/**
 * One channel, two destinations: a file archive (always works) and the lab's HTTP endpoint,
 * tried once, after which its queue stops (on_failure: stop_queue), as ordered interfaces do.
 */
const spec = (dir: string) => `channel: adt-in
source: { mllp: { host: 127.0.0.1, port: 0 } }
identifiers:
  patient: { kind: patient, assigning_authority: EPI, type_code: MR }
map:
  control_id: { path: MSH-10 }
  mrn: { identifier: patient }
  family: { path: PID-5.1 }
destinations:
  archive:
    file: { dir: ${dir}/archive, file_name: "{control_id}.json" }
  lab:
    http: { url: "\${LAB_URL:-http://127.0.0.1:9/unused}" }
    retry: { attempts: 1, backoff_ms: 10, max_backoff_ms: 10 }
    on_failure: stop_queue
`;

interface StoreKind {
  name: string;
  location(dir: string): Promise<string>;
}

/** A PostgreSQL schema of this developer's own for one test, dropped afterwards. */
async function pgSchema(): Promise<string> {
  const name = `hadmin_${randomBytes(5).toString('hex')}`;
  cleanups.push(async () => {
    const client = new pg.Client({ connectionString: TEST_PG_URL });
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS ${name} CASCADE`).finally(() => client.end());
  });
  return `${TEST_PG_URL}?schema=${name}`;
}

const STORES: StoreKind[] = [
  { name: 'SQLite', location: async (dir) => join(dir, 'store.db') },
  { name: 'PostgreSQL', location: () => pgSchema() },
];

async function serveAdmin(kind: StoreKind, tokens: AdminToken[] = [OPERATOR, VIEWER]) {
  const dir = mkdtempSync(join(tmpdir(), 'hl7c-admin-api-'));
  writeFileSync(join(dir, 'adt.yaml'), spec(dir));
  const lab: Webhook = await startWebhook();
  cleanups.push(() => lab.close());
  lab.status = 500;
  const { logger } = memoryLogger();
  const serving = await startServing({
    specs: [join(dir, 'adt.yaml')],
    storePath: await kind.location(dir),
    cwd: dir,
    env: { LAB_URL: lab.url },
    logger,
    watch: false,
    adminPort: 0,
    adminTokens: tokens,
  });
  cleanups.push(() => serving.close());
  const client = new MllpClient({ host: '127.0.0.1', port: serving.ports()['adt-in']! });
  cleanups.push(() => client.close());
  const base = `http://127.0.0.1:${serving.adminPort}`;
  const call = async (path: string, token?: AdminToken, body?: unknown) => {
    const res = await fetch(base + path, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { ...(token ? { authorization: `Bearer ${token.token}` } : {}), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, text, json: (text.startsWith('{') ? JSON.parse(text) : undefined) as Record<string, any> };
  };
  const files = () => readdirSync(join(dir, 'archive'), { withFileTypes: true }).filter((f) => f.isFile() && !f.name.startsWith('.')).map((f) => f.name);
  /** Sends one message and waits until it is archived and its lab entry stopped the queue. */
  const sendStopped = async (controlId: string) => {
    expect((await client.send(message(controlId))).code).toBe('AA');
    const id = (await serving.store.listMessages({ controlId }))[0]!.id;
    await waitFor(async () => (await serving.store.getMessage(id))!.deliveries.map((d) => d.state).sort().join() === 'sent,stopped', 10_000, `${controlId} archived and stopped at the lab`);
    return id;
  };
  return { dir, serving, client, lab, call, files, sendStopped, storePath: serving.store.location };
}

describe.each(STORES)('admin API on $name', (kind) => {
  test('a viewer sees channels, destinations and the message list without patient data; detail, identifier search and replay are 403', async () => {
    const { call, sendStopped } = await serveAdmin(kind);
    const id = await sendStopped('V1');
    const answers = await Promise.all(['/api/whoami', '/api/channels', '/api/destinations', '/api/messages', '/api/messages?status=error_queue', '/metrics', '/health'].map((p) => call(p, VIEWER)));
    for (const a of answers) {
      expect(a.status).toBe(200);
      // The raw bodies: no name, no MRN, anywhere.
      expect(a.text).not.toContain(FAMILY);
      expect(a.text).not.toContain(MRN);
    }
    const [whoami, channels, destinations, list, errors] = answers.map((a) => a.json);
    expect(whoami).toEqual({ name: 'bob', role: 'viewer' });
    expect(channels!.channels).toEqual([
      expect.objectContaining({ name: 'adt-in', state: 'running', source: expect.objectContaining({ kind: 'mllp', listening: true }), counts: { received: 1, accepted: 1, filtered: 0, rejected: 0, error: 0, duplicate: 0 } }),
    ]);
    expect(channels!.channels[0].per_minute).toHaveLength(60);
    expect(channels!.channels[0].per_minute.at(-1) + channels!.channels[0].per_minute.at(-2)).toBe(1);
    expect(channels!.channels[0].last_message_at).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(destinations!.destinations).toEqual([
      expect.objectContaining({ channel: 'adt-in', destination: 'archive', kind: 'file', state: 'ok', depth: 0, dead: 0 }),
      expect.objectContaining({ channel: 'adt-in', destination: 'lab', kind: 'http', state: 'stopped', depth: 1, last_error: expect.stringContaining('500') }),
    ]);
    expect(list!.messages).toEqual([{ id, channel: 'adt-in', received_at: expect.any(String), type: 'ADT^A08^ADT_A01', control_id: 'V1', status: 'accepted', reason: null, deliveries: expect.arrayContaining([{ destination: 'archive', state: 'sent' }, { destination: 'lab', state: 'stopped' }]) }]);
    expect(errors!.messages.map((m: { id: number }) => m.id)).toEqual([id]);

    expect((await call(`/api/messages/${id}`, VIEWER)).status).toBe(403);
    expect((await call(`/api/messages?identifier=${MRN}`, VIEWER)).status).toBe(403);
    expect((await call(`/api/messages/${id}/replay`, VIEWER, {})).status).toBe(403);
    expect((await call('/api/replay', VIEWER, { filter: { status: 'stopped' } })).status).toBe(403);
    expect((await call(`/api/messages/${id}/discard`, VIEWER, { destination: 'lab' })).status).toBe(403);
    expect((await call('/api/destinations/adt-in/lab/pause', VIEWER, {})).status).toBe(403);
    expect((await call('/api/audit', VIEWER)).status).toBe(403);
    // Nothing was replayed: the lab entry is still the stopped one.
    expect((await call('/api/destinations', VIEWER)).json.destinations[1].state).toBe('stopped');
  });

  test('no token or a wrong one is 401 (and audited); /health needs none', async () => {
    const { call } = await serveAdmin(kind);
    expect((await call('/api/channels')).status).toBe(401);
    const wrong = await call('/api/channels', { ...OPERATOR, token: OPERATOR.token.slice(0, -1) + 'x' });
    expect(wrong.status).toBe(401);
    expect(wrong.json).toEqual({ error: 'a valid bearer token is needed (Authorization: Bearer <token>)' });
    expect((await call('/metrics')).status).toBe(200);
    expect((await call('/health')).status).toBe(200);
    const audit = (await call('/api/audit', OPERATOR)).json.entries as Array<{ action: string; detail: string; who: string }>;
    expect(audit.filter((e) => e.action === 'auth.refused').map((e) => e.detail).sort()).toEqual(['no token', 'wrong token']);
    expect(audit.find((e) => e.action === 'auth.token')).toMatchObject({ who: 'alice' });
  });

  test('an operator sees the message field by field with HL7 names, its ACK, output and every attempt with its answer', async () => {
    const { call, sendStopped } = await serveAdmin(kind);
    const id = await sendStopped('D1');
    const { status, json } = await call(`/api/messages/${id}`, OPERATOR);
    expect(status).toBe(200);
    expect(json.raw).toBe(message('D1'));
    expect(json.segments.map((s: { name: string }) => s.name)).toEqual(['MSH', 'PID']);
    const pid = json.segments[1].fields as Array<{ position: string; name: string; value: string }>;
    expect(pid).toContainEqual({ position: 'PID-5', name: 'Patient Name', value: `${FAMILY}^Ada` });
    expect(pid).toContainEqual({ position: 'PID-3', name: 'Patient Identifier List', value: `${MRN}^^^EPI^MR` });
    expect(json.segments[0].fields).toContainEqual({ position: 'MSH-10', name: 'Message Control ID', value: 'D1' });
    expect(json.ack).toMatch(/MSA\|AA\|D1/);
    expect(json.output).toEqual({ control_id: 'D1', mrn: MRN, family: FAMILY });
    const lab = json.deliveries.find((d: { destination: string }) => d.destination === 'lab');
    expect(lab.state).toBe('stopped');
    expect(lab.attempts).toEqual([{ at: expect.any(String), outcome: 'stopped', answer: expect.stringContaining('HTTP 500') }]);
    const audit = (await call('/api/audit', OPERATOR)).json.entries;
    expect(audit[0]).toMatchObject({ who: 'alice', role: 'operator', action: 'message.view', target: `message ${id}`, from: '127.0.0.1' });
  });

  test('replay to one destination sends it there only: the archive keeps one file; replay without one skips what was delivered', async () => {
    const { call, lab, files, sendStopped, serving } = await serveAdmin(kind);
    const id = await sendStopped('R1');
    expect(files()).toEqual(['R1.json']);
    lab.status = 200;
    const replay = await call(`/api/messages/${id}/replay`, OPERATOR, { destination: 'lab' });
    expect(replay.status).toBe(200);
    expect(replay.json).toMatchObject({ id, status: 'accepted', replayed: [{ destination: 'lab', entry_id: expect.any(Number) }], skipped: [] });
    await waitFor(() => lab.received.length === 1, 10_000, 'the lab got the replayed message');
    await waitFor(async () => (await serving.store.getMessage(id))!.deliveries.every((d) => d.state === 'sent'), 10_000, 'replayed entry sent');
    expect(lab.received[0]!.body).toEqual({ control_id: 'R1', mrn: MRN, family: FAMILY });
    // The archive was written once: the replay did not go there.
    expect(files()).toEqual(['R1.json']);

    // Without a destination: everything already delivered is skipped, so nothing is sent twice.
    const again = await call(`/api/messages/${id}/replay`, OPERATOR, {});
    expect(again.json).toMatchObject({ replayed: [], skipped: [{ destination: 'archive' }, { destination: 'lab' }] });
    // Named, it is sent again (the file destination keeps both: R1-2.json).
    await call(`/api/messages/${id}/replay`, OPERATOR, { destination: 'archive' });
    await waitFor(() => files().length === 2, 10_000, 'a second archive file');
    expect(files().sort()).toEqual(['R1-2.json', 'R1.json']);
    expect(lab.received).toHaveLength(1);
    expect((await call(`/api/messages/${id}/replay`, OPERATOR, { destination: 'nowhere' })).status).toBe(404);
    expect((await call('/api/messages/999999/replay', OPERATOR, {})).status).toBe(404);
  });

  test('a filtered replay, a discard that frees a stopped queue, pause and resume; every action is in the audit trail', async () => {
    const { call, lab, sendStopped, client, serving } = await serveAdmin(kind);
    const first = await sendStopped('S1');
    // Behind the stopped head, the next message waits.
    expect((await client.send(message('S2'))).code).toBe('AA');
    // A queued entry is not dead or stopped: 409.
    const second = (await serving.store.listMessages({ controlId: 'S2' }))[0]!.id;
    expect((await call(`/api/messages/${second}/discard`, OPERATOR, { destination: 'lab' })).status).toBe(409);
    lab.status = 200;
    expect((await call('/api/destinations/adt-in/lab/pause', OPERATOR, {})).json).toMatchObject({ paused: true, changed: true, paused_by: 'alice' });
    expect((await call('/api/destinations', OPERATOR)).json.destinations[1]).toMatchObject({ destination: 'lab', paused: true, state: 'paused' });
    // Discarded, the stopped head no longer holds the queue, but the destination is paused.
    expect((await call(`/api/messages/${first}/discard`, OPERATOR, { destination: 'lab' })).json).toEqual({ discarded: true });
    expect((await serving.store.getMessage(first))!.deliveries.find((d) => d.destination === 'lab')!.state).toBe('discarded');
    expect((await call('/api/destinations/adt-in/lab/resume', OPERATOR, {})).json).toMatchObject({ paused: false, changed: true, paused_by: null });
    await waitFor(() => lab.received.length === 1, 10_000, 'S2 delivered once resumed');
    expect(lab.received.map((r) => r.body.control_id)).toEqual(['S2']);
    // While paused nothing was sent (S2 arrived only after resume, and is the only one).

    // A filtered replay: every discarded lab entry, to the lab.
    const filtered = await call('/api/replay', OPERATOR, { filter: { status: 'discarded', channel: 'adt-in' }, destination: 'lab' });
    expect(filtered.json).toMatchObject({ replayed: 1 });
    await waitFor(() => lab.received.length === 2, 10_000, 'S1 replayed to the lab');
    expect(lab.received.map((r) => r.body.control_id)).toEqual(['S2', 'S1']);
    expect((await call('/api/replay', OPERATOR, { filter: {} })).status).toBe(400);

    const actions = ((await call('/api/audit', OPERATOR)).json.entries as Array<{ action: string; who: string; from: string; target: string }>).map((e) => `${e.action} ${e.target}`);
    expect(actions).toEqual(
      expect.arrayContaining([
        `delivery.discard message ${second} → lab`,
        `delivery.discard message ${first} → lab`,
        'destination.pause adt-in/lab',
        'destination.resume adt-in/lab',
        'messages.replay {"status":"discarded","channel":"adt-in"}',
      ]),
    );
    // The audit trail is in the store itself: another reader of it finds the rows.
    const rows = await serving.store.listAudit({ limit: 100 });
    expect(rows.filter((r) => r.action === 'destination.pause')).toEqual([expect.objectContaining({ who: 'alice', role: 'operator', remote: '127.0.0.1' })]);
  });

  test('/health: degraded with the reasons for a stopped queue; 503 when a channel stops listening; /metrics keeps the queue gauges at 0', async () => {
    const { call, sendStopped, serving, lab } = await serveAdmin(kind);
    const healthy = await call('/health');
    expect(healthy.status).toBe(200);
    expect(healthy.json).toMatchObject({ status: 'ok', reasons: [] });
    const id = await sendStopped('H1');
    const degraded = await call('/health');
    expect(degraded.status).toBe(200);
    expect(degraded.json.status).toBe('degraded');
    expect(degraded.json.reasons).toEqual(expect.arrayContaining(['adt-in/lab: queue stopped by an entry that failed for good (replay or discard it)']));
    // Freed: the queue is empty again, and its gauges read 0 (they do not disappear).
    lab.status = 200;
    await call(`/api/messages/${id}/replay`, OPERATOR, { destination: 'lab' });
    await waitFor(() => lab.received.length === 1, 10_000, 'replayed');
    await waitFor(async () => /hl7c_queue_oldest_age_seconds\{channel="adt-in",destination="lab"\} 0\n/.test((await call('/metrics')).text), 10_000, 'the lab queue at 0');
    const metrics = (await call('/metrics')).text;
    expect(metrics).toMatch(/hl7c_queue_depth\{channel="adt-in",destination="lab"\} 0\n/);
    expect(metrics).toMatch(/hl7c_dead_letters\{channel="adt-in",destination="lab"\} 0\n/);
    expect(metrics).toMatch(/hl7c_ack_latency_seconds_count\{channel="adt-in"\} 1\n/);
    expect(metrics).toMatch(/hl7c_channel_last_message_age_seconds\{channel="adt-in"\} [\d.]+\n/);
    expect(metrics).toMatch(/hl7c_reloads_total\{outcome="rejected"\} 0\n/);

    // The channel's listener goes away (here: closed under the host): unavailable, 503.
    const runner = (serving.host as unknown as { runners: Map<string, { listener: { close(): Promise<void> } }> }).runners.get('adt-in')!;
    await runner.listener.close();
    const down = await call('/health');
    expect(down.status).toBe(503);
    expect(down.json).toMatchObject({ status: 'unavailable', reasons: expect.arrayContaining(['channel adt-in: its mllp source is not listening']) });
    expect((await call('/api/channels', OPERATOR)).json.channels[0].source.listening).toBe(false);
  });
});

describe('admin API, binding and tokens', () => {
  test('bound off loopback it refuses to start without a token, or with a weak one', async () => {
    const store = new SqliteStore(join(mkdtempSync(join(tmpdir(), 'hl7c-admin-bind-')), 'store.db'), { synchronous: 'NORMAL' });
    cleanups.push(() => store.close());
    const operations = new Operations({ store });
    await expect(startAdminServer({ operations, port: 0, host: '0.0.0.0' })).rejects.toThrow(/the admin API on 0\.0\.0\.0 would be reachable from the network without a token: set HL7C_ADMIN_TOKEN/);
    await expect(startAdminServer({ operations, port: 0, host: '0.0.0.0', tokens: [{ name: 'x', token: 'changeme', role: 'operator' }] })).rejects.toThrow(/admin token "x" is a well-known placeholder/);
    await expect(startAdminServer({ operations, port: 0, host: '0.0.0.0', tokens: [{ name: 'x', token: 'short', role: 'operator' }] })).rejects.toThrow(/shorter than 16 characters/);
  });

  test('on loopback without tokens every caller is the local operator', async () => {
    const store = new SqliteStore(join(mkdtempSync(join(tmpdir(), 'hl7c-admin-local-')), 'store.db'), { synchronous: 'NORMAL' });
    cleanups.push(() => store.close());
    const admin = await startAdminServer({ operations: new Operations({ store }), port: 0 });
    cleanups.push(() => admin.close());
    expect(await (await fetch(`http://127.0.0.1:${admin.port}/api/whoami`)).json()).toEqual({ name: 'local', role: 'operator' });
  });

  test('registerRoute adds a route (e.g. GET /api/alerts) under the same auth; extraRoutes at start too', async () => {
    const store = new SqliteStore(join(mkdtempSync(join(tmpdir(), 'hl7c-admin-routes-')), 'store.db'), { synchronous: 'NORMAL' });
    cleanups.push(() => store.close());
    const admin = await startAdminServer({
      operations: new Operations({ store }),
      port: 0,
      tokens: [OPERATOR, VIEWER],
      extraRoutes: [{ method: 'GET', path: '/dashboard/*', role: 'public', handler: (r) => ({ body: `page ${r.params['*']}`, contentType: 'text/html' }) }],
    });
    cleanups.push(() => admin.close());
    admin.registerRoute('GET', '/api/alerts', () => ({ json: { rules: [], recent: [] } }), { role: 'viewer' });
    const get = (path: string, token?: AdminToken) => fetch(`http://127.0.0.1:${admin.port}${path}`, { headers: token ? { authorization: `Bearer ${token.token}` } : {} });
    expect((await get('/api/alerts')).status).toBe(401);
    // A malformed path is no route (404), not a failure of the store (500).
    expect((await get('/api/messages/%E0%A4%A')).status).toBe(404);
    expect(await (await get('/api/alerts', VIEWER)).json()).toEqual({ rules: [], recent: [] });
    expect(await (await get('/dashboard/app.js')).text()).toBe('page app.js');
  });
});

describe('admin and CLI around one serve (SQLite)', () => {
  test('hl7c replay of a message that stopped the lab queue sends it to the lab only: the archive file is written once', async () => {
    const { lab, files, sendStopped, serving, storePath } = await serveAdmin(STORES[0]!);
    const id = await sendStopped('C1');
    expect(files()).toEqual(['C1.json']);
    lab.status = 200;
    const replayed = await cli('replay', String(id), '--store', storePath);
    expect(replayed.code).toBe(0);
    expect(replayed.stdout).toBe(`${id}  adt-in  accepted  queued for lab  not for archive (already delivered)\n`);
    await waitFor(() => lab.received.length === 1, 10_000, 'the lab got it');
    await waitFor(async () => (await serving.store.getMessage(id))!.deliveries.every((d) => d.state === 'sent'), 10_000, 'sent');
    expect(files()).toEqual(['C1.json']);
    const audit = JSON.parse((await cli('audit', '--store', storePath, '--json')).stdout) as Array<{ action: string; target: string; remote: string }>;
    expect(audit[0]).toMatchObject({ action: 'message.replay', target: `message ${id}`, remote: 'cli' });
  });

  test('a rejected spec reload: /health degraded with the reason, hl7c_reloads_total counts it, the event is told', async () => {
    const { call, serving, dir } = await serveAdmin(STORES[0]!);
    const events: ServeEvent[] = [];
    serving.host.activity.onEvent((e) => events.push(e));
    writeFileSync(join(dir, 'adt.yaml'), 'channel: adt-in\nsource: { mllp: { port: 0 } }\nmap: { x: { path: PID-999 } }\n');
    expect((await serving.reload()).applied).toBe(false);
    const health = await call('/health');
    expect(health.status).toBe(200);
    expect(health.json.status).toBe('degraded');
    expect(health.json.reasons).toEqual([expect.stringMatching(/^the last spec change was rejected \(.*\), the running version stays: .*adt\.yaml:\d+:\d+/)]);
    expect((await call('/metrics')).text).toMatch(/hl7c_reloads_total\{outcome="rejected"\} 1\n/);
    expect(events).toEqual([expect.objectContaining({ kind: 'reload-rejected', summary: expect.stringMatching(/^spec change rejected: /) })]);
  });

  test('hl7c serve --admin-host 0.0.0.0 without a token refuses to start (exit 2), naming what to do', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hl7c-admin-host-'));
    writeFileSync(join(dir, 'adt.yaml'), spec(dir));
    const env = { ...process.env };
    delete env.HL7C_ADMIN_TOKEN;
    const run = await runBin(['serve', join(dir, 'adt.yaml'), '--store', join(dir, 'store.db'), '--admin-port', '0', '--admin-host', '0.0.0.0', '--no-watch'], { env, timeoutMs: 30_000 });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('hl7c: the admin API on 0.0.0.0 would be reachable from the network without a token: set HL7C_ADMIN_TOKEN');
    expect(run.stdout).not.toContain('channel adt-in on port');
  });
});
