import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { ackForPayload, HL7_ERROR, MllpClient, MllpServer } from '../../runtime/index.js';
import { startServing } from '../../src/serve/serve.js';
import { adtMessage, adtSpec, memoryLogger, startWebhook, waitFor } from './helpers.js';

/**
 * What /health says for each thing that needs an operator while messages are still taken, and
 * GET /api/messages searched by each of its keys, over HTTP against a running serve.
 */

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const oru = (controlId: string) => `MSH|^~\\&|LAB|GH|HL7C|APP|20261125||ORU^R01^ORU_R01|${controlId}|P|2.5.1\rPID|1||E1^^^EPI^MR||Doe^Jane\r`;

async function serveTwoChannels() {
  const app = await startWebhook();
  cleanups.push(() => app.close());
  app.status = 500;
  const dir = mkdtempSync(join(tmpdir(), 'hl7c-health-search-'));
  // adt-in: its receiver is down, one try, then dead-lettered. adt-two: the same spec, another channel.
  writeFileSync(join(dir, 'adt.yaml'), adtSpec({ attempts: 1 }));
  writeFileSync(join(dir, 'two.yaml'), adtSpec().replace('channel: adt-in', 'channel: adt-two').replace('${TEST_WEBHOOK_URL}', '${TWO_URL}'));
  const two = await startWebhook();
  cleanups.push(() => two.close());
  const { logger } = memoryLogger();
  const serving = await startServing({ specs: [dir], storePath: join(dir, 'store.db'), cwd: dir, env: { TEST_WEBHOOK_URL: app.url, TWO_URL: two.url }, logger, adminPort: 0, watch: false });
  cleanups.push(() => serving.close());
  const base = `http://127.0.0.1:${serving.adminPort}`;
  const get = async (path: string) => {
    const res = await fetch(base + path);
    return { status: res.status, json: (await res.json()) as Record<string, any> };
  };
  const clientOf = (channel: string) => {
    const client = new MllpClient({ host: '127.0.0.1', port: serving.ports()[channel]! });
    cleanups.push(() => client.close());
    return client;
  };
  return { serving, app, two, base, get, adt: clientOf('adt-in'), other: clientOf('adt-two') };
}

describe('/health reasons and message search over the admin API', () => {
  test('/health: 200 degraded for messages answered AR lately, a dead letter, a failing destination and a pause, each with its reason', async () => {
    const { get, adt, base } = await serveTwoChannels();
    expect(await get('/health')).toMatchObject({ status: 200, json: { status: 'ok', reasons: [] } });

    expect((await adt.send(oru('H-AR'))).code).toBe('AR');
    const rejected = await get('/health');
    expect(rejected.status).toBe(200);
    expect(rejected.json).toMatchObject({ status: 'degraded', reasons: ['channel adt-in: 1 message(s) answered with an error or a rejection in the last 15 minutes'] });

    expect((await adt.send(adtMessage('H-DEAD'))).code).toBe('AA');
    await waitFor(async () => (await get('/health')).json.reasons.some((r: string) => r.startsWith('adt-in/webhook: 1 dead-lettered')), 10_000, 'the dead letter on /health');
    const dead = await get('/health');
    expect(dead.status).toBe(200);
    expect(dead.json.reasons).toEqual(expect.arrayContaining(['adt-in/webhook: 1 dead-lettered entry (replay or discard them)', expect.stringMatching(/^adt-in\/webhook: failing \(.*500.*\)$/)]));

    expect((await fetch(`${base}/api/destinations/adt-in/webhook/pause`, { method: 'POST' })).status).toBe(200);
    const paused = await get('/health');
    expect(paused.status).toBe(200);
    expect(paused.json.reasons).toContain('adt-in/webhook: paused by an operator');
  });

  test('GET /api/messages by channel, type, status, control id and time range; a bad time is a 400', async () => {
    const { get, adt, other } = await serveTwoChannels();
    const ids = async (query: string) => ((await get(`/api/messages?${query}`)).json.messages as Array<{ control_id: string }>).map((m) => m.control_id);
    expect((await adt.send(adtMessage('S-1'))).code).toBe('AA');
    expect((await adt.send(oru('S-2'))).code).toBe('AR');
    await new Promise((r) => setTimeout(r, 20));
    const between = new Date().toISOString();
    await new Promise((r) => setTimeout(r, 20));
    expect((await other.send(adtMessage('S-3', 'E100', 'A01'))).code).toBe('AA');
    expect((await adt.send(adtMessage('S-4'))).code).toBe('AA');

    expect(await ids('')).toEqual(['S-4', 'S-3', 'S-2', 'S-1']);
    expect(await ids('channel=adt-two')).toEqual(['S-3']);
    expect(await ids('type=ORU')).toEqual(['S-2']);
    expect(await ids('type=ADT%5EA01')).toEqual(['S-3']);
    expect(await ids('status=rejected')).toEqual(['S-2']);
    expect(await ids('control_id=S-4')).toEqual(['S-4']);
    expect(await ids(`until=${encodeURIComponent(between)}`)).toEqual(['S-2', 'S-1']);
    expect(await ids(`since=${encodeURIComponent(between)}&channel=adt-in`)).toEqual(['S-4']);
    expect(await ids('oldest_first=1&limit=2')).toEqual(['S-1', 'S-2']);
    const bad = await get('/api/messages?since=yesterday');
    expect(bad.status).toBe(400);
    expect(bad.json.error).toMatch(/^since: "yesterday" is not a duration/);
  });
});

describe('/health without admin tokens', () => {
  test("masks a receiver's answer quoting the patient, which the loopback operator reads whole in the API", async () => {
    // The EMR answers AE quoting the patient, as many do.
    const emr = new MllpServer({
      host: '127.0.0.1',
      port: 0,
      handler: async (payload) => ackForPayload(payload, 'AE', { code: HL7_ERROR.unknownKeyIdentifier, userMessage: 'Unknown patient QUILLFEATHER^ADA, MRN77123' }),
    });
    const emrPort = await emr.listen();
    cleanups.push(() => emr.close());
    const dir = mkdtempSync(join(tmpdir(), 'hl7c-health-no-tokens-'));
    writeFileSync(
      join(dir, 'adt.yaml'),
      `channel: adt-in
source: { mllp: { host: 127.0.0.1, port: 0 } }
destinations:
  emr:
    mllp: { host: 127.0.0.1, port: "\${EMR_PORT}", on_ae: fail }
    retry: { attempts: 1, backoff_ms: 10, max_backoff_ms: 10 }
`,
    );
    const serving = await startServing({ specs: [dir], storePath: join(dir, 'store.db'), cwd: dir, env: { EMR_PORT: String(emrPort) }, logger: memoryLogger().logger, adminPort: 0, watch: false });
    cleanups.push(() => serving.close());
    const client = new MllpClient({ host: '127.0.0.1', port: serving.ports()['adt-in']! });
    cleanups.push(() => client.close());
    expect((await client.send('MSH|^~\\&|EPIC|GH|HL7C|EMR|20261125||ADT^A08^ADT_A01|NT-1|P|2.5.1\rPID|1||MRN77123^^^EPI^MR||QUILLFEATHER^ADA\r')).code).toBe('AA');
    const base = `http://127.0.0.1:${serving.adminPort}`;
    await waitFor(async () => (await serving.store.metrics()).deliveries.some((d) => d.state === 'dead'), 20_000, 'the EMR entry dead-lettered');

    const destinations = (await (await fetch(`${base}/api/destinations`)).json()) as { destinations: Array<{ destination: string; last_error: string }> };
    expect(destinations.destinations.find((d) => d.destination === 'emr')!.last_error).toContain('QUILLFEATHER^ADA, MRN77123');
    const health = await (await fetch(`${base}/health`)).text();
    expect(health).toContain('adt-in/emr: failing (AE: ••• patient •••, •••');
    expect(health).not.toMatch(/QUILLFEATHER|MRN77123/);
  });
});
