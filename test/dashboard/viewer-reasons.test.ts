import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { ackForPayload, HL7_ERROR, MllpClient, MllpServer } from '../../runtime/index.js';
import type { AdminToken } from '../../runtime/serve/index.js';
import { startServing } from '../../src/serve/serve.js';
import { memoryLogger, waitFor } from '../serve/helpers.js';
import { openBrowser } from './browser.js';

/**
 * Reasons can quote patient data: the receiving system's ACK text, the JSON parser's excerpt of a
 * body. A viewer gets them with the values masked (codes, positions and what went wrong kept),
 * in the raw API bodies, on /health and on the dashboard; an operator gets the whole text.
 */

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const OPERATOR: AdminToken = { name: 'ops-desk', token: `op-${randomBytes(16).toString('hex')}`, role: 'operator' };
const VIEWER: AdminToken = { name: 'ward-screen', token: `view-${randomBytes(16).toString('hex')}`, role: 'viewer' };
const FAMILY = 'QUILLFEATHER';
const MRN = 'MRN77123';
const PHI = [FAMILY, 'Quillfeath', MRN, '19840512'];

const SPECS = {
  'adt.yaml': `channel: adt-in
source: { mllp: { host: 127.0.0.1, port: 0 } }
destinations:
  emr:
    mllp: { host: 127.0.0.1, port: "\${EMR_PORT}", on_ae: fail }
    retry: { attempts: 1, backoff_ms: 10, max_backoff_ms: 10 }
`,
  'json.yaml': `channel: json-in
source: { http: { host: 127.0.0.1, port: 0, path: /results } }
build:
  message_type: ORU^R01^ORU_R01
  version: 2.5.1
  segments:
    - segment: PID
      fields: { PID-3.1: { json: mrn } }
destinations: { out: { file: { dir: "\${OUT_DIR}" } } }
`,
};

describe('reasons shown to a viewer', () => {
  test('masked in /api/messages, /api/destinations, /health and on the dashboard; whole for an operator', { timeout: 120_000 }, async () => {
    // The EMR answers AE quoting the patient, as many do.
    const emr = new MllpServer({
      host: '127.0.0.1',
      port: 0,
      handler: async (payload) => ackForPayload(payload, 'AE', { code: HL7_ERROR.unknownKeyIdentifier, userMessage: `Unknown patient ${FAMILY}^ADA, ${MRN}, born 19840512, in PID-3` }),
    });
    const emrPort = await emr.listen();
    cleanups.push(() => emr.close());
    const dir = mkdtempSync(join(tmpdir(), 'hl7c-viewer-reasons-'));
    for (const [name, text] of Object.entries(SPECS)) writeFileSync(join(dir, name), text);
    const { logger } = memoryLogger();
    const serving = await startServing({ specs: [dir], storePath: join(dir, 'store.db'), cwd: dir, env: { EMR_PORT: String(emrPort), OUT_DIR: join(dir, 'out') }, logger, watch: false, adminPort: 0, adminTokens: [OPERATOR, VIEWER] });
    cleanups.push(() => serving.close());

    const client = new MllpClient({ host: '127.0.0.1', port: serving.ports()['adt-in']! });
    cleanups.push(() => client.close());
    expect((await client.send(`MSH|^~\\&|EPIC|GH|HL7C|EMR|20261125||ADT^A08^ADT_A01|AE-1|P|2.5.1\rPID|1||${MRN}^^^EPI^MR||${FAMILY}^ADA||19840512|F\r`)).code).toBe('AA');
    await waitFor(async () => (await serving.store.metrics()).deliveries.some((d) => d.state === 'dead'), 20_000, 'the EMR entry dead-lettered');
    const posted = await fetch(`http://127.0.0.1:${serving.ports()['json-in']}/results`, { method: 'POST', body: `${FAMILY.toLowerCase()} ${MRN}` });
    expect(posted.status).toBe(400);

    const base = `http://127.0.0.1:${serving.adminPort}`;
    const raw = async (path: string, token?: AdminToken) => (await fetch(base + path, { headers: token ? { authorization: `Bearer ${token.token}` } : {} })).text();

    // The operator reads the whole reasons: this is what the store holds.
    const full = JSON.parse(await raw('/api/messages?status=error_queue', OPERATOR)) as { messages: Array<{ control_id: string | null; reason: string | null; channel: string }> };
    const rejected = full.messages.find((m) => m.channel === 'json-in')!;
    expect(rejected.reason).toMatch(/^the body is not JSON: Unexpected token .*"quillfeath.*is not valid JSON$/i);
    const fullQueue = JSON.parse(await raw('/api/destinations', OPERATOR)) as { destinations: Array<{ destination: string; last_error: string }> };
    expect(fullQueue.destinations.find((d) => d.destination === 'emr')!.last_error).toContain(`${FAMILY}^ADA, ${MRN}, born 19840512`);

    // A viewer: the raw bodies hold none of it, but say what went wrong and where.
    const messages = await raw('/api/messages?status=error_queue', VIEWER);
    const destinations = await raw('/api/destinations', VIEWER);
    const health = await raw('/health');
    for (const body of [messages, destinations, health]) for (const phi of PHI) expect(body.toLowerCase()).not.toContain(phi.toLowerCase());
    const masked = JSON.parse(messages) as typeof full;
    expect(masked.messages.find((m) => m.channel === 'json-in')!.reason).toBe('the body is not JSON: ••• token \'•••\', "•••"... is not valid JSON');
    const emrQueue = (JSON.parse(destinations) as typeof fullQueue).destinations.find((d) => d.destination === 'emr')!;
    // MSA-3 and ERR-8 both carry the text.
    expect(emrQueue.last_error).toBe('AE: ••• patient •••, •••, born •••, in PID-3; Unknown patient •••, •••, born •••, in PID-3');
    expect((JSON.parse(health) as { reasons: string[] }).reasons).toContain('adt-in/emr: 1 dead-lettered entry (replay or discard them)');
    expect((JSON.parse(await raw('/health', OPERATOR)) as { reasons: string[] }).reasons.join('\n')).toContain(MRN);

    // Paused by the operator: who and when are on the page (the queue row), for a viewer too.
    const paused = await fetch(`${base}/api/destinations/adt-in/emr/pause`, { method: 'POST', headers: { authorization: `Bearer ${OPERATOR.token}` } });
    expect(paused.status).toBe(200);

    // The dashboard, as a viewer and as an operator.
    const browser = await openBrowser();
    cleanups.push(() => browser.close());
    const pageFor = async (token: AdminToken) => {
      const page = await browser.context.newPage();
      await page.goto(`${base}/?refresh=300`);
      await page.locator('#login').waitFor({ state: 'visible' });
      await page.fill('#token', token.token);
      await page.click('#login button[type=submit]');
      await page.locator('#errors tr[data-message-id]').first().waitFor();
      await expect.poll(() => page.locator('#queues tr[data-queue="adt-in/emr"]').innerText(), { timeout: 20_000 }).toContain('PID-3');
      return page;
    };
    const viewer = await pageFor(VIEWER);
    const shown = await viewer.locator('body').innerText();
    for (const phi of PHI) expect(shown.toLowerCase()).not.toContain(phi.toLowerCase());
    expect(shown).toContain('is not valid JSON');
    expect(shown).toContain('AE: ••• patient');
    await expect.poll(() => viewer.locator('#queues tr[data-queue="adt-in/emr"] [data-paused-by]').innerText(), { timeout: 20_000 }).toMatch(/^by ops-desk \S+ ago$/);
    expect(await viewer.locator('#queues tr[data-queue="adt-in/emr"]').innerText()).toContain('paused');
    const operator = await pageFor(OPERATOR);
    expect(await operator.locator('body').innerText()).toContain(MRN);
  });
});
