import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { acknowledge, MllpClient, MllpError, MllpServer, parseMessage, receive } from '../../runtime/index.js';
import { SqliteStore } from '../../runtime/serve/index.js';
import { startServing } from '../../src/serve/serve.js';
import type { Serving } from '../../src/serve/serve.js';
import { cli, REPO } from '../cli/helpers.js';
import { adtMessage, adtSpec, memoryLogger, startWebhook, waitFor } from './helpers.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function serve(spec: string, env: NodeJS.ProcessEnv, extra: { watch?: boolean } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'hl7c-serve-'));
  writeFileSync(join(dir, 'adt.yaml'), spec);
  const { logger, lines } = memoryLogger();
  const serving = await startServing({ specs: [join(dir, 'adt.yaml')], storePath: join(dir, 'store.db'), cwd: dir, env, logger, watch: extra.watch ?? false, settleMs: 50 });
  cleanups.push(() => serving.close());
  const client = new MllpClient({ host: '127.0.0.1', port: serving.ports()['adt-in']!, logger });
  cleanups.push(() => client.close());
  return { dir, serving, client, lines, store: join(dir, 'store.db') };
}

const deliveriesOf = (serving: Serving, state: string) =>
  ((serving.store as SqliteStore).db.prepare('SELECT COUNT(*) AS n FROM deliveries WHERE state = ?').get(state) as { n: number }).n;

describe('hl7c serve', () => {
  test('MLLP in → mapped JSON to the HTTP destination, with an idempotency key; ACK AA after the store', async () => {
    const hook = await startWebhook();
    cleanups.push(() => hook.close());
    const { client, serving, store } = await serve(adtSpec(), { TEST_WEBHOOK_URL: hook.url });
    const ack = await client.send(adtMessage('MSG-1'));
    expect(ack.code).toBe('AA');
    // The ACK came after the store: a separate reader (as another process would) finds the
    // message and its queue entry.
    const reader = new SqliteStore(store);
    cleanups.push(() => reader.close());
    expect(reader.nextDeliveries('adt-in', 'webhook', 10).map((d) => d.control_id)).toEqual(['MSG-1']);
    const stored = (await serving.store.listMessages());
    expect(stored).toHaveLength(1);
    expect(stored[0]!.raw!.toString()).toBe(adtMessage('MSG-1'));
    await waitFor(() => hook.received.length === 1, 5000, 'delivery');
    expect(hook.received[0]!.body).toEqual({ message_id: 'MSG-1', mrn: 'E100', family: 'Doe' });
    expect(hook.received[0]!.headers['idempotency-key']).toMatch(new RegExp(`^adt-in:${stored[0]!.id}:webhook:[0-9a-f]{16}$`));
    await waitFor(() => deliveriesOf(serving, 'sent') === 1, 5000, 'sent state');
  });

  test('a store failure while working a queue is logged and the queue is worked again; nothing is lost', async () => {
    const hook = await startWebhook();
    cleanups.push(() => hook.close());
    const { client, serving, lines } = await serve(adtSpec(), { TEST_WEBHOOK_URL: hook.url });
    // Queue bookkeeping fails, as on a full disk: the worker's next look at its queue throws.
    const other = new SqliteStore(serving.store.location);
    cleanups.push(() => other.close());
    other.db.exec("CREATE TRIGGER refuse BEFORE UPDATE ON deliveries BEGIN SELECT RAISE(ABORT, 'database or disk is full (simulated)'); END");
    expect((await client.send(adtMessage('BOOK-1'))).code).toBe('AA');
    await waitFor(() => lines.some((l) => l.msg === 'destination queue failed; working it again shortly' && String(l.err).includes('simulated')), 5000, 'the failure logged');
    // Reports still work meanwhile, a few milliseconds stale.
    expect((await serving.store.listMessages()).map((m) => m.control_id)).toEqual(['BOOK-1']);
    other.db.exec('DROP TRIGGER refuse');
    await waitFor(() => deliveriesOf(serving, 'sent') === 1, 5000, 'the outcome recorded once the store works again');
    // The attempt's outcome was kept through the failure, so the message was not sent again.
    expect(hook.received.map((r) => r.body.message_id)).toEqual(['BOOK-1']);
  });

  test('a destination down for a while: retried with backoff, delivered once it is up', async () => {
    const hook = await startWebhook();
    cleanups.push(() => hook.close());
    hook.status = 503;
    const { client, serving } = await serve(adtSpec({ attempts: 50, backoffMs: 30 }), { TEST_WEBHOOK_URL: hook.url });
    expect((await client.send(adtMessage('RETRY-1'))).code).toBe('AA');
    // Three attempts finished and failed, so the one that succeeds is at least the fourth.
    await waitFor(() => ((serving.store as SqliteStore).db.prepare("SELECT COUNT(*) AS n FROM events WHERE kind LIKE 'attempt %: queued'").get() as { n: number }).n >= 3, 5000, 'three failed attempts');
    hook.status = 200;
    await waitFor(() => hook.received.length === 1, 10_000, 'delivery after recovery');
    await waitFor(() => deliveriesOf(serving, 'sent') === 1, 5000, 'sent recorded');
    const { deliveries, events } = (await serving.store.getMessage(1))!;
    expect(deliveries[0]!.state).toBe('sent');
    expect(events.filter((e) => e.kind.startsWith('attempt')).length).toBeGreaterThanOrEqual(4);
    expect(events.some((e) => e.detail?.includes('HTTP 503; next try in'))).toBe(true);
  });

  test('down for good: dead-lettered, listed by hl7c messages, then delivered by hl7c replay', async () => {
    const hook = await startWebhook();
    cleanups.push(() => hook.close());
    hook.status = 0;
    const { client, serving, store } = await serve(adtSpec({ attempts: 3, backoffMs: 10 }), { TEST_WEBHOOK_URL: hook.url });
    expect((await client.send(adtMessage('DEAD-1'))).code).toBe('AA');
    await waitFor(() => deliveriesOf(serving, 'dead') === 1, 10_000, 'dead letter');
    const listed = await cli('messages', '--store', store, '--status', 'dead');
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(/^1 .*adt-in {2}DEAD-1 .*webhook:dead/m);
    expect(listed.stdout).not.toContain('E100');
    hook.status = 200;
    process.env.TEST_WEBHOOK_URL = hook.url;
    cleanups.push(() => {
      delete process.env.TEST_WEBHOOK_URL;
    });
    const replayed = await cli('replay', '1', '--store', store);
    expect(replayed.code).toBe(0);
    expect(replayed.stdout).toContain('queued for webhook');
    await waitFor(() => hook.received.length === 1, 10_000, 'delivery after replay');
    await waitFor(() => deliveriesOf(serving, 'sent') === 1, 5000, 'sent recorded');
    const shown = await cli('messages', 'show', '1', '--store', store);
    expect(shown.stdout).toMatch(/webhook {2}replayed/);
    expect(shown.stdout).toMatch(/webhook {2}sent/);
    expect(shown.stdout).toContain('replayed: accepted');
  });

  test('stop_queue: after the last attempt the queue holds, nothing behind it is sent, until replay', async () => {
    const hook = await startWebhook();
    cleanups.push(() => hook.close());
    hook.status = 400;
    const { client, serving } = await serve(adtSpec({ attempts: 2, backoffMs: 10, onFailure: 'stop_queue' }), { TEST_WEBHOOK_URL: hook.url });
    expect((await client.send(adtMessage('STOP-1'))).code).toBe('AA');
    await waitFor(() => deliveriesOf(serving, 'stopped') === 1, 5000, 'stopped queue');
    hook.status = 200;
    // Each claim the queue's worker makes once STOP-2 is stored has decided what to send: after
    // two claims answered "held by a stopped entry" it has held (or wrongly sent) STOP-2.
    let acked = false;
    let readsWithBoth = 0;
    const store = serving.store;
    const claimDeliveries = store.claimDeliveries.bind(store);
    store.claimDeliveries = (request) => {
      const after = acked;
      const claim = claimDeliveries(request);
      void claim.then((c) => {
        if (after && c.stopped && c.deliveries.length === 0) readsWithBoth++;
      });
      return claim;
    };
    expect((await client.send(adtMessage('STOP-2'))).code).toBe('AA');
    acked = true;
    await waitFor(() => readsWithBoth >= 2, 10_000, 'the worker to read its queue with STOP-2 in it');
    expect(hook.received).toHaveLength(0);
    expect(deliveriesOf(serving, 'queued')).toBe(1);
    process.env.TEST_WEBHOOK_URL = hook.url;
    cleanups.push(() => {
      delete process.env.TEST_WEBHOOK_URL;
    });
    expect((await cli('replay', '1', '--store', serving.store.location)).code).toBe(0);
    await waitFor(() => hook.received.length === 2, 5000, 'both delivered after replay');
    expect(hook.received.map((r) => r.body.message_id)).toEqual(['STOP-1', 'STOP-2']);
  });

  test('rejected and erroring messages are stored, NACKed with the reason, and listed', async () => {
    const hook = await startWebhook();
    cleanups.push(() => hook.close());
    const { client, store } = await serve(adtSpec(), { TEST_WEBHOOK_URL: hook.url });
    const orm = 'MSH|^~\\&|EPIC|GH|HL7C|APP|20261125||ORM^O01|ORM-1|P|2.5.1\rPID|1||E100^^^EPI^MR\r';
    const rejected = await client.send(orm);
    expect(rejected.code).toBe('AR');
    expect(rejected.text).toContain('ADT only');
    const noMrn = await client.send('MSH|^~\\&|EPIC|GH|HL7C|APP|20261125||ADT^A04|NOMRN-1|P|2.5.1\rPID|1||123^^^SSA^SS\r');
    expect(noMrn.code).toBe('AE');
    expect(parseMessage(noMrn.raw!).getRaw('ERR-2')).toBe('PID^1^3^1');
    const unreadable = await client.send('MSH|^~\\&|EPIC|GH|HL7C|APP|20261125||ADT^A04|BAD-1|P|2.5.1\rPID|1\rSC T\r');
    expect(unreadable.code).toBe('AR');
    const list = await cli('messages', '--store', store, '--json', '--oldest-first');
    const rows = JSON.parse(list.stdout) as Array<{ control_id: string; status: string; reason: string }>;
    expect(rows.map((r) => [r.control_id, r.status])).toEqual([
      ['ORM-1', 'rejected'],
      ['NOMRN-1', 'error'],
      ['BAD-1', 'rejected'],
    ]);
    // Values in a reason are masked without --show-phi (they may be the patient's); positions stay.
    expect(rows[1]!.reason).toBe('identifier patient: no repetition of PID-3 has assigning authority (CX.4) ••• and type code (CX.5) •••');
    const full = JSON.parse((await cli('messages', '--store', store, '--json', '--oldest-first', '--show-phi')).stdout) as typeof rows;
    expect(full[1]!.reason).toContain('no repetition of PID-3 has assigning authority (CX.4) EPI');
    expect((await cli('messages', '--store', store, '--status', 'error')).stdout).toContain('NOMRN-1');
  });

  test('hl7c messages finds a message by control id, by type, and by an identifier found in it', async () => {
    const hook = await startWebhook();
    cleanups.push(() => hook.close());
    const { client, store } = await serve(adtSpec(), { TEST_WEBHOOK_URL: hook.url });
    for (const [id, mrn, trigger] of [
      ['Q-1', 'E100', 'A01'],
      ['Q-2', 'E200', 'A08'],
      ['Q-3', 'E100', 'A08'],
    ] as const) {
      expect((await client.send(adtMessage(id, mrn, trigger))).code).toBe('AA');
    }
    const ids = async (...filter: string[]) => (JSON.parse((await cli('messages', '--store', store, '--json', ...filter)).stdout) as Array<{ control_id: string }>).map((r) => r.control_id);
    expect(await ids('--control-id', 'Q-2')).toEqual(['Q-2']);
    // Newest first unless --oldest-first: the last messages are the ones an operator looks for.
    expect(await ids('--type', 'ADT^A08')).toEqual(['Q-3', 'Q-2']);
    expect(await ids('--type', 'ADT')).toEqual(['Q-3', 'Q-2', 'Q-1']);
    expect(await ids('--type', 'ADT', '--oldest-first')).toEqual(['Q-1', 'Q-2', 'Q-3']);
    expect(await ids('--type', 'ADT^A0')).toEqual([]);
    expect(await ids('--identifier', 'E100')).toEqual(['Q-3', 'Q-1']);
    expect(await ids('--identifier', 'E100', '--type', 'ADT^A08')).toEqual(['Q-3']);
    expect(await ids('--limit', '2')).toEqual(['Q-3', 'Q-2']);
    expect(await ids('--limit', '2', '--oldest-first')).toEqual(['Q-1', 'Q-2']);
    // The identifier searches were recorded as looking for a patient.
    const audit = JSON.parse((await cli('audit', '--store', store, '--json')).stdout) as Array<{ who: string; action: string; detail: string; remote: string }>;
    expect(audit.map((e) => [e.action, e.detail, e.remote])).toEqual([
      ['message.search', 'identifier=E100', 'cli'],
      ['message.search', 'identifier=E100', 'cli'],
    ]);
    expect(audit[0]!.who).toMatch(/^cli:/);
    // Found by its MRN, still shown masked.
    const listed = await cli('messages', '--store', store, '--identifier', 'E200');
    expect(listed.stdout).toContain('Q-2');
    expect(listed.stdout).not.toContain('E200');
    // Not even its first characters: which identifiers were found shows, and --show-phi shows them.
    expect(listed.stdout).toMatch(/ patient=•••(\s|$)/);
    expect(listed.stdout).not.toMatch(/=E2/);
    expect((await cli('messages', '--store', store, '--identifier', 'E200', '--show-phi')).stdout).toContain('patient=E200');
  });

  test('logs name control ids and types, never patient data; /health and /metrics report the store', async () => {
    const hook = await startWebhook();
    cleanups.push(() => hook.close());
    const dir = mkdtempSync(join(tmpdir(), 'hl7c-logs-'));
    writeFileSync(join(dir, 'adt.yaml'), adtSpec({ attempts: 2, backoffMs: 10 }));
    const { logger, lines } = memoryLogger();
    const serving = await startServing({ specs: [join(dir, 'adt.yaml')], storePath: join(dir, 'store.db'), cwd: dir, env: { TEST_WEBHOOK_URL: hook.url }, logger, watch: false, adminPort: 0 });
    cleanups.push(() => serving.close());
    const client = new MllpClient({ host: '127.0.0.1', port: serving.ports()['adt-in']!, logger });
    cleanups.push(() => client.close());
    const phi = 'MSH|^~\\&|EPIC|GH|HL7C|APP|20261125||ADT^A08^ADT_A01|PHI-1|P|2.5.1\rPID|1||MRN77123^^^EPI^MR~123-45-6789^^^SSA^SS||Zyxwvutson^Quentina||19600101\r';
    await client.send(phi);
    await client.send(phi.replace('^^^EPI^MR', '^^^XXX^MR').replace('PHI-1', 'PHI-2'));
    await waitFor(() => hook.received.length === 1, 5000, 'delivery');
    await waitFor(() => deliveriesOf(serving, 'sent') === 1, 5000, 'sent recorded');
    const text = lines.map((l) => JSON.stringify(l)).join('\n');
    expect(text).toContain('PHI-1');
    expect(text).toContain('ADT^A08^ADT_A01');
    for (const secret of ['Zyxwvutson', 'Quentina', 'MRN77123', '123-45-6789', '19600101']) expect(text).not.toContain(secret);

    const health = (await (await fetch(`http://127.0.0.1:${serving.adminPort}/health`)).json()) as { status: string; reasons: string[]; messages: unknown[] };
    // The AE'd message shows: degraded, with the reason, and no patient data in it.
    expect(health.status).toBe('degraded');
    expect(health.reasons).toEqual(['channel adt-in: 1 message(s) answered with an error or a rejection in the last 15 minutes']);
    expect(health.messages).toEqual([
      { channel: 'adt-in', status: 'accepted', count: 1 },
      { channel: 'adt-in', status: 'error', count: 1 },
    ]);
    const metrics = await (await fetch(`http://127.0.0.1:${serving.adminPort}/metrics`)).text();
    expect(metrics).toMatch(/hl7c_messages\{channel="adt-in",status="error"\} 1/);
    expect(metrics).toMatch(/hl7c_deliveries\{channel="adt-in",destination="webhook",state="sent"\} 1/);
  });

  test('TLS on the MLLP source (mutual) and on an MLLP destination, from the spec', async () => {
    const tls = (f: string) => join(REPO, 'test/fixtures/tls', f);
    const pem = (f: string) => readFileSync(tls(f));
    const received: string[] = [];
    const ehr = new MllpServer({
      host: '127.0.0.1',
      port: 0,
      tls: { key: pem('server.key'), cert: pem('server.crt') },
      handler: (payload) => {
        const r = receive(payload);
        if (!r.ok) return r.reject;
        received.push(r.message.controlId);
        return acknowledge(r.message, 'accept');
      },
    });
    const ehrPort = await ehr.listen();
    cleanups.push(() => ehr.close());
    const spec = `channel: relay
source:
  mllp:
    host: 127.0.0.1
    port: 0
    tls: { key: ${tls('server.key')}, cert: ${tls('server.crt')}, ca: ${tls('ca.crt')}, require_client_certificate: true }
destinations:
  ehr:
    mllp:
      host: localhost
      port: ${ehrPort}
      tls: { ca: ${tls('ca.crt')} }
`;
    const dir = mkdtempSync(join(tmpdir(), 'hl7c-tls-'));
    writeFileSync(join(dir, 'relay.yaml'), spec);
    const { logger } = memoryLogger();
    const serving = await startServing({ specs: [join(dir, 'relay.yaml')], storePath: join(dir, 'store.db'), cwd: dir, env: {}, logger, watch: false });
    cleanups.push(() => serving.close());
    const port = serving.ports().relay!;
    const client = new MllpClient({ host: '127.0.0.1', port, tls: { ca: pem('ca.crt'), cert: pem('client.crt'), key: pem('client.key'), servername: 'localhost' } });
    cleanups.push(() => client.close());
    expect((await client.send(adtMessage('TLS-1'))).code).toBe('AA');
    await waitFor(() => received.includes('TLS-1'), 5000, 'delivery over TLS');
    const noCert = new MllpClient({ host: '127.0.0.1', port, tls: { ca: pem('ca.crt'), servername: 'localhost' }, reconnect: { attempts: 1 }, ackTimeoutMs: 2000 });
    cleanups.push(() => noCert.close());
    await expect(noCert.send(adtMessage('TLS-2'))).rejects.toBeInstanceOf(MllpError);
  });

  test('prune removes content and keeps counts', async () => {
    const hook = await startWebhook();
    cleanups.push(() => hook.close());
    const { client, serving, store } = await serve(adtSpec(), { TEST_WEBHOOK_URL: hook.url });
    await client.send(adtMessage('OLD-1'));
    await waitFor(() => deliveriesOf(serving, 'sent') === 1, 5000, 'sent');
    await new Promise((r) => setTimeout(r, 20));
    const pruned = await cli('prune', '--older-than', '0m', '--store', store);
    expect(pruned.stdout).toContain('1 message(s) pruned');
    const { message } = (await serving.store.getMessage(1))!;
    expect(message.raw).toBeNull();
    expect(message.pruned).toBe(true);
    expect((await serving.store.counts())).toEqual([{ channel: 'adt-in', status: 'accepted', count: 1 }]);
  });
});
