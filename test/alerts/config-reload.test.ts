import { mkdtempSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { MllpClient } from '../../runtime/index.js';
import { startServing } from '../../src/serve/serve.js';
import { adtMessage, adtSpec, memoryLogger, startWebhook, waitFor } from '../serve/helpers.js';

/** The serve config is read again when it changes, as specs are: checked first, refused with file:line:col. */

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const config = (rules: string, url: string) => `alerts:
  check_every: 50ms
  webhook: { url: "${url}" }
  rules:
${rules}`;

describe('hl7c.config.yaml, changed while serve runs', () => {
  test('a change with an error is refused (file:line:col in the log, on /health and in metrics) and the rules in force stay; a valid change takes over without a restart', async () => {
    const alertHook = await startWebhook();
    cleanups.push(() => alertHook.close());
    const app = await startWebhook();
    cleanups.push(() => app.close());
    app.status = 500;
    const dir = mkdtempSync(join(tmpdir(), 'hl7c-config-reload-'));
    writeFileSync(join(dir, 'adt.yaml'), adtSpec({ attempts: 1 }));
    const configPath = join(dir, 'hl7c.config.yaml');
    writeFileSync(configPath, config('    - { name: first-rule, kind: errors, over: 5, window: 1h }\n', alertHook.url));
    const { logger, lines } = memoryLogger();
    const serving = await startServing({ specs: [dir], storePath: join(dir, 'store.db'), cwd: dir, env: { TEST_WEBHOOK_URL: app.url }, logger, adminPort: 0, settleMs: 20 });
    cleanups.push(() => serving.close());
    const admin = `http://127.0.0.1:${serving.adminPort}`;
    const health = async () => (await (await fetch(`${admin}/health`)).json()) as { status: string; reasons: string[] };
    const metrics = async () => (await fetch(`${admin}/metrics`)).text();
    const rules = async () => ((await (await fetch(`${admin}/api/alerts`)).json()) as { rules: Array<{ name: string }> }).rules.map((r) => r.name);
    expect(await rules()).toEqual(['first-rule']);

    // A misspelt kind on line 5, its value at column 34.
    writeFileSync(configPath, config('    - { name: second-rule, kind: dead_lettres }\n', alertHook.url));
    await waitFor(async () => (await health()).reasons.some((r) => r.includes('serve config')), 10_000, 'the rejection on /health');
    const reason = (await health()).reasons.find((r) => r.includes('serve config'))!;
    expect(reason).toMatch(/^the last serve config change was rejected \(\d{4}-\S+Z\), the alert rules in force stay: \S*hl7c\.config\.yaml:5:34: error schema\/invalid-value: alerts\.rules\.0\.kind must be one of /);
    expect((await health()).status).toBe('degraded');
    expect(await metrics()).toMatch(/hl7c_config_reloads_total\{outcome="rejected"\} 1\n/);
    expect(lines.find((l) => String(l.msg).startsWith('serve config change rejected'))?.msg).toMatch(/^serve config change rejected, the alert rules in force stay: \S*hl7c\.config\.yaml:5:34: error schema\/invalid-value: alerts\.rules\.0\.kind must be one of /);
    expect(await rules()).toEqual(['first-rule']);

    // Fixed: its rules take over, and they are the ones that fire.
    writeFileSync(configPath, config('    - { name: app-dead, kind: dead_letters, channel: adt-in, destination: webhook }\n', alertHook.url));
    await waitFor(async () => (await rules()).join() === 'app-dead', 10_000, 'the new rules in force');
    expect(await metrics()).toMatch(/hl7c_config_reloads_total\{outcome="applied"\} 1\n/);
    expect((await health()).reasons.filter((r) => r.includes('serve config'))).toEqual([]);
    const client = new MllpClient({ host: '127.0.0.1', port: serving.ports()['adt-in']! });
    cleanups.push(() => client.close());
    expect((await client.send(adtMessage('CFG-1'))).code).toBe('AA');
    await waitFor(() => alertHook.received.some((r) => r.body.rule === 'app-dead' && r.body.state === 'firing'), 10_000, 'the new rule fired');
    expect(alertHook.received.map((r) => r.body.rule)).toEqual(['app-dead']);
    // A spec reload did not happen for it: the config is not a spec.
    expect(lines.filter((l) => l.msg === 'spec change seen')).toEqual([]);
  }, 60_000);

  test('a config written after serve started is picked up; one removed while serving leaves the rules in force, with a warning', async () => {
    const alertHook = await startWebhook();
    cleanups.push(() => alertHook.close());
    const app = await startWebhook();
    cleanups.push(() => app.close());
    app.status = 500;
    const dir = mkdtempSync(join(tmpdir(), 'hl7c-config-later-'));
    writeFileSync(join(dir, 'adt.yaml'), adtSpec({ attempts: 1 }));
    const { logger, lines } = memoryLogger();
    const serving = await startServing({ specs: [dir], storePath: join(dir, 'store.db'), cwd: dir, env: { TEST_WEBHOOK_URL: app.url }, logger, adminPort: 0, settleMs: 20 });
    cleanups.push(() => serving.close());
    const admin = `http://127.0.0.1:${serving.adminPort}`;
    const rules = async () => ((await (await fetch(`${admin}/api/alerts`)).json()) as { rules: Array<{ name: string }> }).rules.map((r) => r.name);
    expect(await rules()).toEqual([]);

    const configPath = join(dir, 'hl7c.config.yaml');
    writeFileSync(configPath, config('    - { name: app-dead, kind: dead_letters, channel: adt-in, destination: webhook }\n', alertHook.url));
    await waitFor(async () => (await rules()).join() === 'app-dead', 10_000, 'the rules of the new config in force');
    const client = new MllpClient({ host: '127.0.0.1', port: serving.ports()['adt-in']! });
    cleanups.push(() => client.close());
    expect((await client.send(adtMessage('LATE-1'))).code).toBe('AA');
    await waitFor(() => alertHook.received.some((r) => r.body.rule === 'app-dead' && r.body.state === 'firing'), 10_000, 'the new rule fired');

    // Removed: the rules stay (alerting does not go quiet because a file went), and the log says so.
    unlinkSync(configPath);
    await waitFor(() => lines.some((l) => String(l.msg).startsWith('the serve config was removed')), 10_000, 'the warning');
    expect(lines.find((l) => String(l.msg).startsWith('the serve config was removed'))).toMatchObject({ level: 40 });
    expect(await rules()).toEqual(['app-dead']);
    const health = (await (await fetch(`${admin}/health`)).json()) as { reasons: string[] };
    expect(health.reasons.filter((r) => r.includes('serve config'))).toEqual([]);
    // Written again: its rules take over.
    writeFileSync(configPath, config('    - { name: app-failing, kind: destination_failing, for: 1s }\n', alertHook.url));
    await waitFor(async () => (await rules()).join() === 'app-failing', 10_000, 'the rules of the config written again');
  }, 60_000);
});
