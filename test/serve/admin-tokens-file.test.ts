import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { MllpClient } from '../../runtime/index.js';
import { runBin, startBin, stop } from '../cli/helpers.js';
import { adtMessage, adtSpec, startWebhook } from './helpers.js';

/** `hl7c serve --admin-tokens FILE` (with HL7C_ADMIN_TOKEN beside it), as an operator starts it. */

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('hl7c serve --admin-tokens', () => {
  test('each token of the file gets its role, HL7C_ADMIN_TOKEN is an operator, the audit trail names who; a broken file stops the start (exit 2)', async () => {
    const app = await startWebhook();
    cleanups.push(() => app.close());
    const dir = mkdtempSync(join(tmpdir(), 'hl7c-admin-tokens-'));
    writeFileSync(join(dir, 'adt.yaml'), adtSpec());
    const viewer = randomBytes(16).toString('hex');
    const operator = randomBytes(16).toString('hex');
    const fromEnv = randomBytes(16).toString('hex');
    writeFileSync(join(dir, 'tokens.yaml'), `- { name: wallboard, token: "${viewer}", role: viewer }\n- { name: alice, token: "${operator}", role: operator }\n`);
    const env = { ...process.env, TEST_WEBHOOK_URL: app.url, HL7C_ADMIN_TOKEN: fromEnv, HL7C_LOG_LEVEL: 'warn' };
    const started = await startBin(['serve', join(dir, 'adt.yaml'), '--store', join(dir, 'store.db'), '--admin-port', '0', '--admin-tokens', join(dir, 'tokens.yaml'), '--no-watch'], /channel adt-in on port (\d+)\nadmin on port (\d+)/, env, 60_000);
    cleanups.push(() => stop(started.child, 'SIGKILL'));
    const base = `http://127.0.0.1:${started.match[2]}`;
    const status = async (path: string, token?: string) => (await fetch(base + path, { headers: token ? { authorization: `Bearer ${token}` } : {} })).status;

    const client = new MllpClient({ host: '127.0.0.1', port: Number(started.match[1]) });
    cleanups.push(() => client.close());
    expect((await client.send(adtMessage('TOK-1'))).code).toBe('AA');
    const list = (await (await fetch(`${base}/api/messages`, { headers: { authorization: `Bearer ${viewer}` } })).json()) as { messages: Array<{ id: number }> };
    const id = list.messages[0]!.id;

    expect(await status('/api/channels')).toBe(401);
    expect(await status('/api/channels', 'x'.repeat(32))).toBe(401);
    expect(await status('/api/channels', viewer)).toBe(200);
    expect(await status(`/api/messages/${id}`, viewer)).toBe(403);
    expect(await status(`/api/messages/${id}`, operator)).toBe(200);
    expect(await status(`/api/messages/${id}`, fromEnv)).toBe(200);

    const audit = (await (await fetch(`${base}/api/audit`, { headers: { authorization: `Bearer ${operator}` } })).json()) as { entries: Array<{ who: string; role: string; action: string }> };
    const views = audit.entries.filter((e) => e.action === 'message.view').map((e) => `${e.who} ${e.role}`);
    expect(views.sort()).toEqual(['HL7C_ADMIN_TOKEN operator', 'alice operator']);
    expect(JSON.stringify(audit)).not.toContain(operator);
    expect(await stop(started.child, 'SIGTERM')).toBe(0);

    // A file that is not a list of {name, token, role}: nothing starts.
    writeFileSync(join(dir, 'bad.yaml'), `- { name: wallboard, token: "${viewer}", role: admin }\n`);
    const bad = await runBin(['serve', join(dir, 'adt.yaml'), '--store', join(dir, 'store.db'), '--admin-port', '0', '--admin-tokens', join(dir, 'bad.yaml'), '--no-watch'], { env, timeoutMs: 30_000 });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('bad.yaml, entry 1: needs name, token (strings) and role (viewer or operator)');
    expect(bad.stdout).not.toContain('channel adt-in on port');
  }, 120_000);
});
