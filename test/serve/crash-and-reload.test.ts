import { mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { MllpClient } from '../../runtime/index.js';
import { startServing } from '../../src/serve/serve.js';
import { runBin, startBin, stop } from '../cli/helpers.js';
import { adtMessage, adtSpec, memoryLogger, startWebhook, waitFor } from './helpers.js';

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('durability', () => {
  test.each(['disk', 'process'])('SIGKILL in the middle of sustained load (--durability %s): every message that got an AA is delivered after a restart', async (durability) => {
    const hook = await startWebhook();
    cleanups.push(() => hook.close());
    const dir = mkdtempSync(join(tmpdir(), 'hl7c-crash-'));
    const spec = join(dir, 'adt.yaml');
    writeFileSync(spec, adtSpec({ attempts: 1000, backoffMs: 20 }));
    const env = { ...process.env, TEST_WEBHOOK_URL: hook.url, HL7C_LOG_LEVEL: 'warn' };
    const args = ['serve', spec, '--store', join(dir, 'store.db'), '--durability', durability, '--no-watch'];
    const first = await startBin(args, /channel adt-in on port (\d+)/, env);
    cleanups.push(() => stop(first.child, 'SIGKILL'));

    const acked = new Set<string>();
    let sent = 0;
    let stopSending = false;
    const senders = Array.from({ length: 4 }, async (_, s) => {
      const client = new MllpClient({ host: '127.0.0.1', port: Number(first.match[1]), reconnect: { attempts: 1 }, ackTimeoutMs: 2000 });
      try {
        for (let i = 0; !stopSending; i++) {
          const id = `LOAD-${s}-${i}`;
          sent++;
          const ack = await client.send(adtMessage(id, `E${i}`));
          if (ack.code === 'AA') acked.add(id);
        }
      } catch {
        // The server was killed: this message got no AA, so it does not count.
      } finally {
        await client.close().catch(() => undefined);
      }
    });
    await waitFor(() => acked.size >= 300, 20_000, '300 acknowledged messages');
    first.child.kill('SIGKILL');
    stopSending = true;
    await Promise.all(senders);
    expect(sent).toBeGreaterThan(acked.size - 1);

    const second = await startBin(args, /channel adt-in on port (\d+)/, env);
    cleanups.push(() => stop(second.child, 'SIGKILL'));
    const delivered = () => new Set(hook.received.map((r) => String(r.body.message_id)));
    await waitFor(() => [...acked].every((id) => delivered().has(id)), 30_000, 'every acknowledged message delivered');
    // At-least-once: some may arrive twice (sent, then killed before being marked sent); none is lost.
    expect([...acked].filter((id) => !delivered().has(id))).toEqual([]);
    expect(await stop(second.child, 'SIGTERM')).toBe(0);
  }, 90_000);
});

describe('one serve per store', () => {
  test('a second hl7c serve on a store in use exits 2 and names the running one; the first keeps working', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hl7c-owner-'));
    const spec = join(dir, 'adt.yaml');
    writeFileSync(spec, adtSpec());
    const env = { ...process.env, TEST_WEBHOOK_URL: 'http://127.0.0.1:9/', HL7C_LOG_LEVEL: 'warn' };
    const args = ['serve', spec, '--store', join(dir, 'store.db'), '--no-watch'];
    const first = await startBin(args, /channel adt-in on port (\d+)/, env);
    cleanups.push(() => stop(first.child, 'SIGKILL'));
    const second = await runBin(args, { timeoutMs: 20_000, env });
    expect(second.code).toBe(2);
    expect(second.stderr).toContain(`in use by another hl7c serve (pid ${first.child.pid})`);
    const client = new MllpClient({ host: '127.0.0.1', port: Number(first.match[1]) });
    cleanups.push(() => client.close());
    expect((await client.send(adtMessage('STILL-1'))).code).toBe('AA');
  }, 30_000);
});

describe('hot reload', () => {
  test('20 spec changes while a sender keeps sending: all ACKed and delivered, no reconnect, invalid changes reported and ignored', async () => {
    const hook = await startWebhook();
    cleanups.push(() => hook.close());
    const dir = mkdtempSync(join(tmpdir(), 'hl7c-reload-'));
    const specPath = join(dir, 'adt.yaml');
    writeFileSync(specPath, adtSpec());
    const { logger, lines } = memoryLogger();
    const serving = await startServing({ specs: [specPath], storePath: join(dir, 'store.db'), cwd: dir, env: { TEST_WEBHOOK_URL: hook.url }, logger, watch: true, settleMs: 30 });
    cleanups.push(() => serving.close());
    const port = serving.ports()['adt-in']!;
    const client = new MllpClient({ host: '127.0.0.1', port, logger, reconnect: { attempts: 1 } });
    cleanups.push(() => client.close());

    const acked: string[] = [];
    const failures: string[] = [];
    let sending = true;
    const sender = (async () => {
      for (let i = 0; sending; i++) {
        try {
          const ack = await client.send(adtMessage(`HOT-${i}`));
          if (ack.code === 'AA') acked.push(`HOT-${i}`);
          else failures.push(`HOT-${i}: ${ack.code} ${ack.text}`);
        } catch (err) {
          failures.push(`HOT-${i}: ${(err as Error).message}`);
        }
        await new Promise((r) => setTimeout(r, 2));
      }
    })();

    const count = (msg: string) => lines.filter((l) => String(l.msg).startsWith(msg)).length;
    let invalid = 0;
    for (let change = 1; change <= 20; change++) {
      const updatesBefore = count('channel updated');
      const rejectedBefore = count('spec change rejected');
      const isInvalid = change % 3 === 0;
      if (isInvalid) {
        invalid++;
        writeFileSync(specPath, adtSpec({ family: 'upper' }).replace('PID-5.1', 'PID-99'));
        await waitFor(() => count('spec change rejected') > rejectedBefore, 10_000, `rejection of change ${change}`);
      } else {
        writeFileSync(specPath, `${adtSpec({ family: change % 2 ? 'upper' : 'lower' })}# change ${change}\n`);
        await waitFor(() => count('channel updated') > updatesBefore, 10_000, `update ${change}`).catch((err: Error) => {
          throw new Error(`${err.message}; log: ${lines.filter((l) => /spec|channel|reload/.test(String(l.msg))).slice(-6).map((l) => `${String(l.msg).slice(0, 60)} ${String(l.event ?? '')}`).join(' / ')}`);
        });
      }
      await waitFor(() => acked.length >= change * 5, 10_000, 'messages flowing');
    }
    sending = false;
    await sender;

    expect(failures).toEqual([]);
    expect(acked.length).toBeGreaterThanOrEqual(100);
    expect(count('MLLP connection opened')).toBe(1);
    expect(serving.ports()['adt-in']).toBe(port);
    const rejections = lines.filter((l) => String(l.msg).startsWith('spec change rejected'));
    expect(rejections.length).toBeGreaterThanOrEqual(invalid);
    expect(String(rejections[0]!.msg)).toMatch(/adt\.yaml:\d+:\d+: error hl7\/unknown-field: PID has 39 fields/);
    const delivered = () => new Set(hook.received.map((r) => String(r.body.message_id)));
    await waitFor(() => acked.every((id) => delivered().has(id)), 20_000, 'all delivered');
    // Versions took over between messages: both spellings of the family name were sent.
    const families = new Set(hook.received.map((r) => r.body.family));
    expect(families).toEqual(new Set(['Doe', 'DOE', 'doe']));
  }, 120_000);

  test('a rejected spec change is logged once with all its errors and counted once, though the file event and the stat safety net both see it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hl7c-reject-once-'));
    const specPath = join(dir, 'adt.yaml');
    writeFileSync(specPath, adtSpec());
    const { logger, lines } = memoryLogger();
    // A settle time past the safety net's 500 ms stat: both paths see the save before it compiles.
    const serving = await startServing({ specs: [specPath], storePath: join(dir, 'store.db'), cwd: dir, env: { TEST_WEBHOOK_URL: 'http://127.0.0.1:9/' }, logger, watch: true, settleMs: 1200, adminPort: 0 });
    cleanups.push(() => serving.close());
    const events: string[] = [];
    serving.host.activity.onEvent((e) => events.push(e.kind));
    writeFileSync(specPath, adtSpec().replace('PID-5.1', 'PID-99').replace('MSH-10', 'MSH-77'));
    const rejected = () => lines.filter((l) => String(l.msg).startsWith('spec change rejected'));
    await waitFor(() => rejected().length > 0, 10_000, 'the rejection logged');
    // Past the settle time and two more safety-net rounds: nothing more comes.
    await new Promise((r) => setTimeout(r, 2500));
    expect(rejected().length).toBe(1);
    expect(String(rejected()[0]!.msg)).toMatch(/^spec change rejected, the running version stays: adt\.yaml:14:23: error hl7\/unknown-field: MSH has 21 fields[^\n]*; there is no MSH-77\nadt\.yaml:16:19: error hl7\/unknown-field: PID has 39 fields/);
    expect(rejected()[0]).toMatchObject({ errors: 2, codes: ['hl7/unknown-field', 'hl7/unknown-field'] });
    const metrics = await (await fetch(`http://127.0.0.1:${serving.adminPort}/metrics`)).text();
    expect(metrics).toMatch(/\nhl7c_reloads_total\{outcome="rejected"\} 1\n/);
    expect(events.filter((k) => k === 'reload-rejected')).toHaveLength(1);
  }, 30_000);

  test('a changed port moves the listener; a removed channel stops listening', async () => {
    const hook = await startWebhook();
    cleanups.push(() => hook.close());
    const dir = mkdtempSync(join(tmpdir(), 'hl7c-move-'));
    const specPath = join(dir, 'adt.yaml');
    writeFileSync(specPath, adtSpec());
    const { logger, lines } = memoryLogger();
    const serving = await startServing({ specs: [specPath], storePath: join(dir, 'store.db'), cwd: dir, env: { TEST_WEBHOOK_URL: hook.url, TEST_ADT_PORT: '0' }, logger, watch: false });
    cleanups.push(() => serving.close());
    const before = serving.ports()['adt-in']!;
    // A port the system just handed out and took back: "before + 1" is often some other test's client connection.
    const moved = await new Promise<number>((r) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const port = (s.address() as net.AddressInfo).port;
        s.close(() => r(port));
      });
    });
    writeFileSync(specPath, adtSpec().replace('${TEST_ADT_PORT:-0}', String(moved)));
    expect((await serving.reload()).applied).toBe(true);
    expect(serving.ports()['adt-in']).toBe(moved);
    expect(lines.some((l) => l.msg === 'channel listener moved')).toBe(true);
    const client = new MllpClient({ host: '127.0.0.1', port: moved });
    cleanups.push(() => client.close());
    expect((await client.send(adtMessage('MOVED-1'))).code).toBe('AA');
    const old = new MllpClient({ host: '127.0.0.1', port: before, reconnect: { attempts: 1 } });
    cleanups.push(() => old.close());
    await expect(old.send(adtMessage('OLD-PORT'))).rejects.toMatchObject({ code: 'CONNECT_FAILED' });
  });
});
