import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SMTPServer } from 'smtp-server';
import { afterEach, describe, expect, test } from 'vitest';
import { MllpClient } from '../../runtime/index.js';
import { startServing } from '../../src/serve/serve.js';
import { adtSpec, memoryLogger, startWebhook, waitFor } from '../serve/helpers.js';
import { testSchema } from '../store/pg-helpers.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A real SMTP server on a real socket, keeping each mail as received (headers and body). */
async function startSmtp() {
  const mails: Array<{ from: string; to: string[]; raw: string }> = [];
  const logins: string[] = [];
  const server = new SMTPServer({
    disabledCommands: ['STARTTLS'],
    allowInsecureAuth: true,
    logger: false,
    onAuth(auth, _session, callback) {
      logins.push(`${auth.username}:${auth.password}`);
      if (auth.username === 'hl7c' && auth.password === 'smtp-secret') callback(null, { user: auth.username });
      else callback(new Error('bad login'));
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        mails.push({ from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '', to: session.envelope.rcptTo.map((r) => r.address), raw: Buffer.concat(chunks).toString('utf8') });
        callback();
      });
    },
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.server.address() as { port: number }).port;
  return { port, mails, logins, close: () => new Promise<void>((r) => server.close(() => r())) };
}

// Patient data in the messages sent: none of it may appear in a notice.
const FAMILY = 'Zzyzx';
const GIVEN = 'Quentin';
const MRN = 'MRN987654';
const message = (controlId: string, authority = 'EPI') => `MSH|^~\\&|EPIC|GH|HL7C|APP|20261125||ADT^A08^ADT_A01|${controlId}|P|2.5.1\rPID|1||${MRN}^^^${authority}^MR||${FAMILY}^${GIVEN}||19700101|F\r`;

describe('alerts from a running serve', () => {
  test('errors, a dead letter, a failing destination, a silent feed and a rejected reload reach the webhook and the mailbox, edge-triggered, with no patient data', async () => {
    const alertHook = await startWebhook();
    cleanups.push(() => alertHook.close());
    const app = await startWebhook();
    cleanups.push(() => app.close());
    app.status = 500;
    const smtp = await startSmtp();
    cleanups.push(() => smtp.close());

    const dir = mkdtempSync(join(tmpdir(), 'hdash-alerts-'));
    const spec = adtSpec({ attempts: 1 });
    writeFileSync(join(dir, 'adt.yaml'), spec);
    writeFileSync(
      join(dir, 'hl7c.config.yaml'),
      `alerts:
  check_every: 50ms
  cool_down: 1h
  webhook:
    url: "\${ALERT_URL}"
    headers: { Authorization: "Bearer \${ALERT_TOKEN}" }
  email:
    smtp: { host: 127.0.0.1, port: ${smtp.port}, user: hl7c, password: "\${SMTP_PASSWORD}" }
    from: hl7c@hospital.example
    to: [integration@hospital.example]
  rules:
    - { name: adt-silent, kind: no_messages, channel: adt-in, for: 200ms }
    - { name: adt-errors, kind: errors, channel: adt-in, over: 0, window: 1h }
    - { name: app-dead, kind: dead_letters, channel: adt-in, destination: webhook }
    - { name: app-failing, kind: destination_failing, for: 1ms }
    - { name: specs-rejected, kind: reload_rejected }
`,
    );
    const env = { TEST_WEBHOOK_URL: app.url, ALERT_URL: alertHook.url, ALERT_TOKEN: 'ops-token', SMTP_PASSWORD: 'smtp-secret' };
    const { logger } = memoryLogger();
    const serving = await startServing({ specs: [dir], storePath: join(dir, 'store.db'), cwd: dir, env, logger, watch: false });
    cleanups.push(() => serving.close());
    const notices = () => alertHook.received.map((r) => r.body as { rule: string; state: string; summary: string; channel?: string; destination?: string });
    const told = (rule: string, state: string) => notices().filter((n) => n.rule === rule && n.state === state).length;

    // Nothing received since the start: the feed is silent.
    await waitFor(() => told('adt-silent', 'firing') === 1, 10_000, 'the silent feed told');
    expect(alertHook.received[0]!.headers.authorization).toBe('Bearer ops-token');

    const client = new MllpClient({ host: '127.0.0.1', port: serving.ports()['adt-in']!, logger });
    cleanups.push(() => client.close());
    // No EPI MR: the required identifier is missing, stored as an error (AE).
    expect((await client.send(message('ERR-1', 'SSA'))).code).toBe('AE');
    await waitFor(() => told('adt-errors', 'firing') === 1 && told('adt-silent', 'resolved') === 1, 10_000, 'errors told, the feed no longer silent');
    // Accepted, and the app answers 500 with one attempt allowed: dead-lettered.
    expect((await client.send(message('OK-1'))).code).toBe('AA');
    await waitFor(() => told('app-dead', 'firing') === 1 && told('app-failing', 'firing') === 1, 10_000, 'the dead letter and the failing destination told');

    // A spec change that does not validate: told once; the fix resolves it.
    writeFileSync(join(dir, 'adt.yaml'), spec.replace('source:', 'sauce:'));
    expect((await serving.reload()).applied).toBe(false);
    await waitFor(() => told('specs-rejected', 'firing') === 1, 10_000, 'the rejected reload told');
    writeFileSync(join(dir, 'adt.yaml'), spec);
    expect((await serving.reload()).applied).toBe(true);
    await waitFor(() => told('specs-rejected', 'resolved') === 1, 10_000, 'the reload resolved');

    // More errors while the rule is firing: no second notice (edge-triggered).
    expect((await client.send(message('ERR-2', 'SSA'))).code).toBe('AE');
    await waitFor(async () => (await serving.store.listMessages({ status: 'error' })).length === 2, 5000, 'the second error stored');
    const before = alertHook.received.length;
    // Let a check run past the second error: it sees 2 errors, still firing, and tells nobody.
    await waitFor(() => /2 message\(s\) stored as error/.test(serving.alerts!.view().rules.find((r) => r.name === 'adt-errors')!.firing[0]?.summary ?? ''), 5000, 'a check after the second error');
    expect(told('adt-errors', 'firing')).toBe(1);

    const view = serving.alerts!.view();
    expect(view.rules.map((r) => [r.name, r.state])).toEqual([
      ['adt-silent', 'ok'],
      ['adt-errors', 'firing'],
      ['app-dead', 'firing'],
      ['app-failing', 'firing'],
      ['specs-rejected', 'ok'],
    ]);
    expect(view.rules.find((r) => r.name === 'app-dead')!.firing).toEqual([expect.objectContaining({ channel: 'adt-in', destination: 'webhook', summary: 'queue adt-in → webhook: 1 dead-lettered entry (alert above 0)' })]);
    expect(view.recent[0]!.at >= view.recent[view.recent.length - 1]!.at).toBe(true);

    // Every notice also went by mail, in the same order, logged in with the password from the environment.
    await waitFor(() => smtp.mails.length === alertHook.received.length, 10_000, 'the mails');
    expect(alertHook.received.length).toBe(before);
    expect(smtp.logins[0]).toBe('hl7c:smtp-secret');
    expect(smtp.mails[0]!.to).toEqual(['integration@hospital.example']);
    const subjects = smtp.mails.map((m) => /^Subject: (.*)$/m.exec(m.raw.replace(/\r?\n(?=[ \t])/g, ''))![1]!.trim());
    expect(subjects[0]).toMatch(/^\[hl7c\] FIRING adt-silent: channel adt-in: no message received for \S+ \(alert at 200ms\)$/);
    expect(smtp.mails[0]!.raw).toContain('this notice carries no patient data');
    expect(notices().map((n) => `${n.state} ${n.rule}`)).toEqual(expect.arrayContaining(['firing adt-silent', 'resolved adt-silent', 'firing adt-errors', 'firing app-dead', 'firing app-failing', 'firing specs-rejected', 'resolved specs-rejected']));

    // No patient data anywhere: not in the webhook bodies, not in the mails.
    const everything = JSON.stringify(alertHook.received.map((r) => r.body)) + smtp.mails.map((m) => m.raw).join('\n');
    for (const phi of [FAMILY, GIVEN, MRN, '19700101']) expect(everything).not.toContain(phi);
    // …while the store does hold them (the messages were really sent).
    expect((await serving.store.listMessages())[0]!.raw!.toString()).toContain(MRN);
  });

  test('on PostgreSQL too: errors and a dead letter fire from the database\'s counters, and resolve', async () => {
    const schema = testSchema('hdash');
    cleanups.push(() => schema.drop());
    const alertHook = await startWebhook();
    cleanups.push(() => alertHook.close());
    const app = await startWebhook();
    cleanups.push(() => app.close());
    app.status = 500;
    const dir = mkdtempSync(join(tmpdir(), 'hdash-alerts-pg-'));
    writeFileSync(join(dir, 'adt.yaml'), adtSpec({ attempts: 1 }));
    writeFileSync(
      join(dir, 'hl7c.config.yaml'),
      `alerts:\n  check_every: 50ms\n  webhook: { url: "${alertHook.url}" }\n  rules:\n    - { name: errors, kind: errors, over: 0, window: 1h }\n    - { name: dead, kind: dead_letters }\n    - { name: behind, kind: queue_age, older_than: 1h }\n`,
    );
    const { logger } = memoryLogger();
    const serving = await startServing({ specs: [dir], storePath: schema.url, cwd: dir, env: { TEST_WEBHOOK_URL: app.url }, logger, watch: false });
    cleanups.push(() => serving.close());
    const client = new MllpClient({ host: '127.0.0.1', port: serving.ports()['adt-in']!, logger });
    cleanups.push(() => client.close());
    expect((await client.send(message('PG-ERR', 'SSA'))).code).toBe('AE');
    expect((await client.send(message('PG-DEAD'))).code).toBe('AA');
    const told = () => alertHook.received.map((r) => `${String(r.body.state)} ${String(r.body.rule)} ${String(r.body.value)}`);
    await waitFor(() => told().includes('firing errors 1') && told().includes('firing dead 1'), 10_000, 'both told');
    // The dead letter replayed (as the CLI does it, through the store): the rule resolves.
    const dead = (await serving.store.listMessages({ status: 'dead' }))[0]!;
    app.status = 200;
    await serving.store.recordReplay(dead.id, { spec_version: dead.spec_version, status: 'accepted', reason: null, identifiers: null, ack_code: 'AA', ack: null, deliveries: [{ destination: 'webhook', payload: Buffer.from('{}') }] }, Date.now());
    await waitFor(() => told().includes('resolved dead 0'), 10_000, 'the dead letter resolved');
    expect(told().filter((t) => t.includes('behind'))).toEqual([]);
  });

  test('a queue held by a stopped entry: queue_stopped at once, queue_age once its entry is older than T; a replay that delivers resolves both', async () => {
    const alertHook = await startWebhook();
    cleanups.push(() => alertHook.close());
    const app = await startWebhook();
    cleanups.push(() => app.close());
    app.status = 500;
    const dir = mkdtempSync(join(tmpdir(), 'hdash-alerts-stuck-'));
    writeFileSync(join(dir, 'adt.yaml'), adtSpec({ attempts: 1, onFailure: 'stop_queue' }));
    writeFileSync(
      join(dir, 'hl7c.config.yaml'),
      `alerts:\n  check_every: 50ms\n  webhook: { url: "${alertHook.url}" }\n  rules:\n    - { name: held, kind: queue_stopped }\n    - { name: stuck, kind: queue_age, channel: adt-in, destination: webhook, older_than: 500ms }\n`,
    );
    const { logger } = memoryLogger();
    const serving = await startServing({ specs: [dir], storePath: join(dir, 'store.db'), cwd: dir, env: { TEST_WEBHOOK_URL: app.url }, logger, watch: false, adminPort: 0 });
    cleanups.push(() => serving.close());
    const client = new MllpClient({ host: '127.0.0.1', port: serving.ports()['adt-in']!, logger });
    cleanups.push(() => client.close());
    const notices = () => alertHook.received.map((r) => r.body as { rule: string; state: string; summary: string; destination?: string; value: number; threshold: number });
    const told = () => notices().map((n) => `${n.state} ${n.rule}`);

    expect((await client.send(message('STUCK-1'))).code).toBe('AA');
    await waitFor(() => told().includes('firing held'), 10_000, 'the stopped queue told');
    await waitFor(() => told().includes('firing stuck'), 10_000, 'the old entry told');
    expect(notices().find((n) => n.rule === 'held')).toMatchObject({ destination: 'webhook', summary: 'queue adt-in → webhook: stopped, 1 entry holds it until replayed or discarded' });
    const stuck = notices().find((n) => n.rule === 'stuck')!;
    expect(stuck.summary).toMatch(/^queue adt-in → webhook: oldest entry waiting \S+ \(alert above 500ms\)$/);
    expect(stuck.threshold).toBe(0.5);

    app.status = 200;
    const id = (await serving.store.listMessages({ controlId: 'STUCK-1' }))[0]!.id;
    const replay = await fetch(`http://127.0.0.1:${serving.adminPort}/api/messages/${id}/replay`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ destination: 'webhook' }) });
    expect(replay.status).toBe(200);
    await waitFor(() => told().includes('resolved held') && told().includes('resolved stuck'), 10_000, 'both resolved');
    expect(app.received.map((r) => r.body.message_id)).toEqual(['STUCK-1']);
    expect(told().sort()).toEqual(['firing held', 'firing stuck', 'resolved held', 'resolved stuck']);
    const everything = JSON.stringify(notices());
    for (const phi of [FAMILY, GIVEN, MRN]) expect(everything).not.toContain(phi);
  });

  test('a config with errors stops serve from starting, like a spec with errors', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hdash-alerts-'));
    writeFileSync(join(dir, 'adt.yaml'), adtSpec());
    writeFileSync(join(dir, 'hl7c.config.yaml'), 'alerts:\n  rules:\n    - { name: r, kind: errors, channel: lab-in, over: 1, window: 1m }\n');
    const { logger, lines } = memoryLogger();
    await expect(startServing({ specs: [dir], storePath: join(dir, 'store.db'), cwd: dir, env: { TEST_WEBHOOK_URL: 'http://127.0.0.1:9/' }, logger, watch: false })).rejects.toThrow(/serve config .*hl7c\.config\.yaml has errors/);
    expect(lines.map((l) => l.msg)).toContain('hl7c.config.yaml:3:41: error config/unknown-channel: no spec defines channel "lab-in"\n  hint: channels: adt-in');
  });
});
