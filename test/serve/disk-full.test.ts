import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { MllpClient } from '../../runtime/index.js';
import { corpusTemplates, startServe, withControlId } from '../../bench/traffic.js';
import type { ServeProcess } from '../../bench/traffic.js';
import { startWebhook, waitFor } from './helpers.js';

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/**
 * A file system of its own, small enough to fill: a tmpfs mounted in a user and mount namespace
 * of the server's own (`unshare -rm`), so no root is needed. Where the kernel forbids
 * unprivileged namespaces, the test says so and is skipped.
 */
const TMPFS = `mount -t tmpfs -o size=${4 * 1024 * 1024} tmpfs "$0" && exec "$@"`;
const namespaces = (() => {
  const probe = mkdtempSync(join(tmpdir(), 'hl7c-ns-'));
  const run = spawnSync('unshare', ['-rm', 'sh', '-c', TMPFS, probe, 'true'], { encoding: 'utf8' });
  rmSync(probe, { recursive: true, force: true });
  return run.status === 0 ? null : `no private tmpfs here (unshare -rm: ${run.error?.message ?? run.stderr.trim()})`;
})();

const SPEC = `channel: lab-in
source:
  mllp:
    host: 127.0.0.1
    port: 0
map:
  message_id: { path: MSH-10 }
destinations:
  webhook:
    http: { url: "\${TEST_WEBHOOK_URL}" }
    retry: { attempts: 100, backoff_ms: 20, max_backoff_ms: 200 }
    on_failure: dead_letter
`;

/** Fills the file system the store is on, as another program would, until it refuses a byte more. */
function fill(path: string): void {
  const fd = openSync(path, 'w');
  const block = Buffer.alloc(64 * 1024);
  try {
    for (let size = block.length; size >= 1; size = Math.floor(size / 2)) {
      try {
        for (;;) writeSync(fd, block, 0, size);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
      }
    }
  } finally {
    closeSync(fd);
  }
}

describe.skipIf(namespaces !== null)(`disk full${namespaces ? ` (skipped: ${namespaces})` : ''}`, () => {
  test('hl7c serve on a full disk answers AE (never AA) for what it cannot keep, and keeps nothing of it; once space is back, the same process stores, ACKs and delivers', async () => {
    const hook = await startWebhook();
    cleanups.push(() => hook.close());
    const specDir = mkdtempSync(join(tmpdir(), 'hl7c-full-spec-'));
    writeFileSync(join(specDir, 'lab.yaml'), SPEC);
    // Seen from here, the server's private tmpfs is under /proc/<pid>/root.
    const storeDir = mkdtempSync(join(tmpdir(), 'hl7c-full-store-'));
    const serve: ServeProcess = await startServe(
      [join(specDir, 'lab.yaml'), '--store', join(storeDir, 'store.db'), '--durability', 'disk', '--no-watch'],
      { ...process.env, TEST_WEBHOOK_URL: hook.url, HL7C_LOG_LEVEL: 'warn' },
      { wrap: ['unshare', '-rm', 'sh', '-c', TMPFS, storeDir] },
    );
    cleanups.push(() => serve.child.kill('SIGKILL'));
    const filler = join(`/proc/${serve.child.pid}/root`, storeDir, 'filler');
    // 25 KB, larger than any slack left in the pages the received-message log already has.
    const template = corpusTemplates().find((t) => t.name === 'oru/prime-oru-newborn-screening-150obx.hl7')!;
    const client = new MllpClient({ host: '127.0.0.1', port: serve.ports['lab-in']!, ackTimeoutMs: 10_000 });
    cleanups.push(() => client.close());
    const delivered = () => hook.received.map((r) => String(r.body.message_id));

    expect((await client.send(withControlId(template, 'BEFORE-1'))).code).toBe('AA');
    await waitFor(() => delivered().includes('BEFORE-1'), 10_000, 'the first message delivered');

    fill(filler);
    // The received-message log has room of its own, written ahead as zeros (up to 256 KiB): what
    // fits in it is stored on disk and acknowledged; once it is used up, every message is AE.
    const keptWhileFull: string[] = [];
    const whileFull: string[] = [];
    for (let i = 1; whileFull.length < 5 && i <= 200; i++) {
      const id = `FULL-${i}`;
      const ack = await client.send(withControlId(template, id));
      if (ack.code === 'AA') keptWhileFull.push(id);
      else {
        expect(`${id} ${ack.code}`).toBe(`${id} AE`);
        expect(ack.errors.join(' ')).toMatch(/could not be stored; send it again/);
        whileFull.push(id);
      }
    }
    expect(whileFull).toHaveLength(5);
    // The CLI's logs are written asynchronously (batched): wait for the line, do not expect it at once.
    await waitFor(() => /could not store a message; answering with an error/.test(serve.stderr()), 10_000, 'the store failure logged');
    expect(serve.stderr()).toMatch(/ENOSPC/);

    rmSync(filler);
    // The sender does what the AE asked: sends them again, to the same process.
    for (const id of whileFull) expect(`${id} ${(await client.send(withControlId(template, id))).code}`).toBe(`${id} AA`);
    expect((await client.send(withControlId(template, 'AFTER-1'))).code).toBe('AA');
    await waitFor(() => ['AFTER-1', ...keptWhileFull, ...whileFull].every((id) => delivered().includes(id)), 20_000, 'every message delivered after space came back');
    // Each delivered once: the attempts answered AE were never stored, so nothing is queued twice.
    expect(delivered().sort()).toEqual(['AFTER-1', 'BEFORE-1', ...keptWhileFull, ...whileFull].sort());
    expect(serve.child.exitCode).toBeNull();
    serve.child.kill('SIGTERM');
    expect(await serve.exited, serve.stderr()).toBe(0);
  }, 60_000);
});
