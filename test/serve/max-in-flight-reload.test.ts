import { mkdtempSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, test } from 'vitest';
import { MllpClient } from '../../runtime/index.js';
import { startServing } from '../../src/serve/serve.js';
import { adtMessage, adtSpec, memoryLogger, waitFor } from './helpers.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A webhook that holds requests (until released) or answers each after a short while, and counts how many are open at once. */
async function slowWebhook() {
  const state = { hold: true, held: [] as http.ServerResponse[], arrived: [] as string[], active: 0, maxActive: 0 };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      state.arrived.push((JSON.parse(Buffer.concat(chunks).toString()) as { message_id: string }).message_id);
      state.active++;
      state.maxActive = Math.max(state.maxActive, state.active);
      const answer = () => {
        state.active--;
        res.writeHead(200);
        res.end();
      };
      if (state.hold) state.held.push(Object.assign(res, { answer }));
      else setTimeout(answer, 30);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  cleanups.push(() => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))));
  const release = () => {
    for (const res of state.held.splice(0)) (res as unknown as { answer(): void }).answer();
  };
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}/hook`, state, release };
}

const specWith = (maxInFlight: number) => adtSpec().replace('    on_failure: dead_letter', `    on_failure: dead_letter\n    max_in_flight: ${maxInFlight}`);

async function serveWith(maxInFlight: number, url: string) {
  const dir = mkdtempSync(join(tmpdir(), 'hl7c-inflight-'));
  const spec = join(dir, 'adt.yaml');
  writeFileSync(spec, specWith(maxInFlight));
  const { logger } = memoryLogger();
  const serving = await startServing({ specs: [spec], storePath: join(dir, 'store.db'), cwd: dir, env: { TEST_WEBHOOK_URL: url }, logger, watch: false });
  cleanups.push(() => serving.close());
  const client = new MllpClient({ host: '127.0.0.1', port: serving.ports()['adt-in']!, logger });
  cleanups.push(() => client.close());
  const reload = async (n: number) => {
    writeFileSync(spec, specWith(n));
    expect((await serving.reload()).applied).toBe(true);
  };
  return { client, reload };
}

test('max_in_flight 1 → 8 by a reload: the running queue sends in parallel from then on (issue 10, case 14)', async () => {
  const hook = await slowWebhook();
  const { client, reload } = await serveWith(1, hook.url);
  for (let i = 0; i < 8; i++) expect((await client.send(adtMessage(`UP-${i}`))).code).toBe('AA');
  await waitFor(() => hook.state.held.length === 1, 10_000, 'the first send');
  await reload(8);
  // The send in flight under the old setting finishes; the seven behind it go out together.
  hook.release();
  await waitFor(() => hook.state.held.length === 7, 10_000, 'seven sends at once');
  expect(hook.state.maxActive).toBe(7);
  hook.release();
});

test('max_in_flight 8 → 1 by a reload: the sends in flight finish first, then one at a time, in order (issue 10, case 14)', async () => {
  const hook = await slowWebhook();
  const { client, reload } = await serveWith(8, hook.url);
  for (let i = 0; i < 5; i++) expect((await client.send(adtMessage(`PAR-${i}`))).code).toBe('AA');
  await waitFor(() => hook.state.held.length === 5, 10_000, 'five sends at once');
  await reload(1);
  for (let i = 0; i < 5; i++) expect((await client.send(adtMessage(`ORD-${i}`))).code).toBe('AA');
  // Nothing new goes out while the five sent under the old setting are open …
  hook.state.hold = false;
  hook.state.maxActive = 0;
  const before = hook.state.arrived.length;
  expect(before).toBe(5);
  hook.release();
  await waitFor(() => hook.state.arrived.length === 10, 10_000, 'the ordered sends');
  // … and from then on one at a time, in FIFO order.
  expect(hook.state.maxActive).toBe(1);
  expect(hook.state.arrived.slice(5)).toEqual(['ORD-0', 'ORD-1', 'ORD-2', 'ORD-3', 'ORD-4']);
});
