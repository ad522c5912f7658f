import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterEach, describe, expect, test } from 'vitest';
import { MllpClient } from '../../runtime/index.js';
import type { AdminToken } from '../../runtime/serve/index.js';
import { startServing } from '../../src/serve/serve.js';
import { REPO } from '../cli/helpers.js';
import { adtSpec, memoryLogger, startWebhook, waitFor } from '../serve/helpers.js';
import { openBrowser } from './browser.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const OPERATOR: AdminToken = { name: 'ops-desk', token: `op-${randomBytes(16).toString('hex')}`, role: 'operator' };
const VIEWER: AdminToken = { name: 'ward-screen', token: `view-${randomBytes(16).toString('hex')}`, role: 'viewer' };
/** Screenshots land here (git-ignored); HL7C_UPDATE_SCREENSHOT=1 also rewrites the README's. */
const ARTIFACTS = join(REPO, 'test-artifacts');

// Patient data in the messages: a viewer's page must not show it.
const FAMILY = 'Zzyzx';
const MRN = 'MRN424242';
const adt = (controlId: string, authority = 'EPI') => `MSH|^~\\&|EPIC|GH|HL7C|APP|20261125||ADT^A08^ADT_A01|${controlId}|P|2.5.1\rPID|1||${MRN}^^^${authority}^MR||${FAMILY}^Quentin||19700101|F\r`;
const oru = (controlId: string) => `MSH|^~\\&|LAB|GH|HL7C|APP|20261125||ORU^R01^ORU_R01|${controlId}|P|2.5.1\rPID|1||${MRN}^^^EPI^MR||${FAMILY}^Quentin\r`;

/** Waits for what the page shows (it refreshes itself), generously: the machine may be loaded. */
const poll = <T>(read: () => Promise<T> | T) => expect.poll(read, { timeout: 20_000, interval: 100 });

/** The text of a channel row's cells, by column header. */
async function channelRow(page: Page, channel: string): Promise<Record<string, string>> {
  const headers = await page.locator('#channels thead th').allInnerTexts();
  const cells = await page.locator(`#channels tr[data-channel="${channel}"] td`).allInnerTexts();
  return Object.fromEntries(headers.map((h, i) => [h.toLowerCase(), (cells[i] ?? '').trim()]));
}

async function signIn(page: Page, url: string, token: AdminToken): Promise<void> {
  await page.goto(url);
  // Tokens are configured: the API answers 401 and the page asks for one.
  await page.locator('#login').waitFor({ state: 'visible' });
  await page.fill('#token', token.token);
  await page.click('#login button[type=submit]');
  await page.locator('#channels tr[data-channel="adt-in"]').waitFor();
  await poll(() => page.locator('#who').innerText()).toBe(`${token.name} (${token.role})`);
}

describe('the dashboard, in headless Chromium', () => {
  test('channels with counts after messages over MLLP, the error queue with reasons, replay from the page delivers, a viewer cannot replay and sees no patient data', { timeout: 120_000 }, async () => {
    const app = await startWebhook();
    cleanups.push(() => app.close());
    app.status = 500;
    const dir = mkdtempSync(join(tmpdir(), 'hdash-dashboard-'));
    writeFileSync(join(dir, 'adt.yaml'), adtSpec({ attempts: 1 }));
    writeFileSync(join(dir, 'hl7c.config.yaml'), 'alerts:\n  check_every: 100ms\n  rules:\n    - { name: app-dead-letters, kind: dead_letters, channel: adt-in }\n');
    const { logger } = memoryLogger();
    const serving = await startServing({ specs: [dir], storePath: join(dir, 'store.db'), cwd: dir, env: { TEST_WEBHOOK_URL: app.url }, logger, watch: false, adminPort: 0, adminTokens: [OPERATOR, VIEWER] });
    cleanups.push(() => serving.close());
    const url = `http://127.0.0.1:${serving.adminPort}/?refresh=300`;

    // Real MLLP: one dead-lettered (the app answers 500, one attempt), one delivered, one error, one rejected.
    const client = new MllpClient({ host: '127.0.0.1', port: serving.ports()['adt-in']!, logger });
    cleanups.push(() => client.close());
    expect((await client.send(adt('DEAD-1'))).code).toBe('AA');
    await waitFor(async () => (await serving.store.metrics()).deliveries.some((d) => d.state === 'dead'), 20_000, 'the dead letter');
    app.status = 200;
    expect((await client.send(adt('OK-1'))).code).toBe('AA');
    await waitFor(() => app.received.length === 1, 20_000, 'OK-1 delivered');
    expect((await client.send(adt('ERR-1', 'SSA'))).code).toBe('AE');
    expect((await client.send(oru('ORU-1'))).code).toBe('AR');

    const browser = await openBrowser();
    cleanups.push(() => browser.close());
    const page = await browser.context.newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await signIn(page, url, OPERATOR);

    // Channels with live counters.
    await poll(() => channelRow(page, 'adt-in')).toMatchObject({ channel: 'adt-in', state: 'running', received: '4', accepted: '2', rejected: '1', error: '1' });
    expect((await channelRow(page, 'adt-in')).source).toMatch(/^mllp:\d+/);
    expect(await page.locator('#channels tr[data-channel="adt-in"] svg.spark polyline').count()).toBe(1);
    // The queue, and the alert on its dead letter.
    await poll(() => page.locator('#queues tr[data-queue="adt-in/webhook"]').innerText()).toMatch(/adt-in → webhook\s+http\s+\w+\s+0\s+1/);
    await poll(() => page.locator('#alerts li[data-rule="app-dead-letters"]').innerText()).toContain('queue adt-in → webhook: 1 dead-lettered entry');

    // The error queue: the rejected and the error message with their reasons, the dead letter with its destination.
    const ids = Object.fromEntries((await serving.store.listMessages()).map((m) => [m.control_id, m.id]));
    const errorRow = (controlId: string) => page.locator(`#errors tr[data-message-id="${ids[controlId]}"]`);
    await poll(() => errorRow('ORU-1').innerText()).toMatch(/ORU\^R01\S*\s+ORU-1\s+rejected\s+ADT only/);
    await poll(() => errorRow('ERR-1').innerText()).toMatch(/ERR-1\s+error\s+.*PID-3/);
    await poll(() => errorRow('DEAD-1').innerText()).toMatch(/DEAD-1\s+accepted\s+webhook dead/);
    expect(await errorRow('OK-1').count()).toBe(0);

    // The message view: the parsed tree with HL7 field names, the ACK, the attempts.
    await errorRow('DEAD-1').locator('a[data-open]').click();
    await poll(() => page.locator('#detail-body').innerText()).toContain('Patient Identifier List');
    const detail = await page.locator('#detail-body').innerText();
    expect(detail).toContain(`${MRN}^^^EPI^MR`);
    expect(detail).toMatch(/ACK SENT[\s\S]*MSA\|AA\|DEAD-1/i);
    expect(detail).toMatch(/webhook\s+dead[\s\S]*500/);
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-message.png') });
    await page.click('#detail-close');
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard.png'), fullPage: true });
    if (process.env.HL7C_UPDATE_SCREENSHOT === '1') await page.screenshot({ path: join(REPO, 'docs/dashboard.png'), fullPage: true });

    // Replay from the page: the app gets the dead-lettered message, and it leaves the error queue.
    await errorRow('DEAD-1').locator('button[data-action=replay]').click();
    await waitFor(() => app.received.some((r) => r.body.message_id === 'DEAD-1'), 20_000, 'the replayed message delivered');
    await poll(() => errorRow('DEAD-1').count()).toBe(0);
    await poll(() => page.locator('#notice').innerText()).toBe(`message ${ids['DEAD-1']} replayed to webhook`);
    const delivered = app.received.length;

    // A viewer, in a tab of its own (its own sessionStorage): no replay, no discard, no patient data.
    const viewer = await browser.context.newPage();
    viewer.on('pageerror', (e) => pageErrors.push(e.message));
    await signIn(viewer, url, VIEWER);
    const viewerRow = (controlId: string) => viewer.locator(`#errors tr[data-message-id="${ids[controlId]}"]`);
    await viewerRow('ERR-1').waitFor();
    for (const button of await viewer.locator('#errors button, #queues button').all()) expect(await button.isDisabled()).toBe(true);
    await viewerRow('ERR-1').locator('a[data-open]').click();
    await poll(() => viewer.locator('#detail-body [data-masked]').count()).toBe(1);
    const shown = await viewer.locator('body').innerText();
    for (const phi of [FAMILY, MRN, '19700101']) expect(shown).not.toContain(phi);
    expect(shown).toContain('hidden: your role does not allow patient data');
    // The API refuses it too, whatever the page shows: a replay posted with the viewer's token.
    const refused = await viewer.evaluate(async ([id, token]) => {
      const r = await fetch(`/api/messages/${id}/replay`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: '{}' });
      return { status: r.status, body: await r.text() };
    }, [ids['ERR-1'], VIEWER.token] as const);
    expect(refused.status).toBe(403);
    expect(app.received.length).toBe(delivered);
    expect((await serving.store.listMessages({ status: 'error' })).map((m) => m.control_id)).toEqual(['ERR-1']);
    expect(pageErrors).toEqual([]);
  });

  test('the page, its script and its stylesheet are served by the admin server from the package, with no outside address in them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hdash-dashboard-'));
    writeFileSync(join(dir, 'adt.yaml'), adtSpec());
    const { logger } = memoryLogger();
    const serving = await startServing({ specs: [dir], storePath: join(dir, 'store.db'), cwd: dir, env: { TEST_WEBHOOK_URL: 'http://127.0.0.1:9/' }, logger, watch: false, adminPort: 0 });
    cleanups.push(() => serving.close());
    const base = `http://127.0.0.1:${serving.adminPort}`;
    for (const [path, type] of [['/', 'text/html'], ['/dashboard/app.js', 'text/javascript'], ['/dashboard/style.css', 'text/css']] as const) {
      const r = await fetch(base + path);
      expect(r.status).toBe(200);
      expect(r.headers.get('content-type')).toContain(type);
      expect(r.headers.get('content-security-policy')).toContain("default-src 'none'");
      // Works offline: nothing loaded from another host.
      expect((await r.text()).match(/(src|href)=["']?(https?:)?\/\//g)).toBeNull();
    }
    expect((await fetch(`${base}/dashboard/nope.js`)).status).toBe(404);
    // Without tokens on loopback, /api/alerts answers (empty without a config).
    expect(await (await fetch(`${base}/api/alerts`)).json()).toEqual({ rules: [], recent: [] });
  });
});
