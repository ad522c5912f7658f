import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { MllpClient } from '../../runtime/index.js';
import { startServing } from '../../src/serve/serve.js';
import { adtMessage, memoryLogger, startWebhook, waitFor } from '../serve/helpers.js';

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('retry: {attempts: unlimited}', () => {
  test('the entry waits for the receiver past any count: 25 refusals, then delivered', async () => {
    const hook = await startWebhook();
    cleanups.push(() => hook.close());
    hook.status = 503;
    const dir = mkdtempSync(join(tmpdir(), 'hv2-unlimited-'));
    const file = join(dir, 'q.yaml');
    writeFileSync(file, `channel: q
source: { mllp: { host: 127.0.0.1, port: 0 } }
map: { id: { path: MSH-10 } }
destinations:
  app:
    http: { url: "${hook.url}" }
    retry: { attempts: unlimited, backoff_ms: 1, max_backoff_ms: 5 }
`);
    const { logger } = memoryLogger();
    const serving = await startServing({ specs: [file], storePath: join(dir, 'store.db'), cwd: dir, env: {}, logger, watch: false });
    cleanups.push(() => serving.close());
    const client = new MllpClient({ host: '127.0.0.1', port: serving.ports().q! });
    cleanups.push(() => client.close());
    expect((await client.send(adtMessage('U-1'))).code).toBe('AA');
    // Past the default of 5 and far past any small number: still queued, never dead.
    await waitFor(async () => (await serving.store.getMessage(1))!.deliveries[0]!.attempts >= 25, 20_000, '25 failed attempts');
    expect((await serving.store.getMessage(1))!.deliveries[0]!.state).not.toBe('dead');
    hook.status = 200;
    await waitFor(() => hook.received.length === 1, 10_000, 'the delivery once the receiver is back');
    expect(hook.received[0]!.body).toEqual({ id: 'U-1' });
    await waitFor(async () => (await serving.store.getMessage(1))!.deliveries[0]!.state === 'sent', 5000, 'recorded as sent');
  });
});
