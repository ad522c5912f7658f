import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { MllpClient } from '../../runtime/index.js';
import { startServing } from '../../src/serve/serve.js';
import { cli } from '../cli/helpers.js';
import { adtMessage, memoryLogger, startWebhook, waitFor } from './helpers.js';

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

// The receiver answers 500: entries for lab stay queued (retried without end).
const spec = (lab: string) => `channel: rnc
source: { mllp: { host: 127.0.0.1, port: 0 } }
destinations:
  ${lab}:
    http: { url: "\${LAB_URL}" }
    retry: { attempts: unlimited, backoff_ms: 60000, max_backoff_ms: 60000 }
`;

describe('a destination renamed while entries wait for it (tester finding: stranded silently)', () => {
  test('after a restart: a warning log, /health degraded with the reason, hl7c status says so, hl7c discard takes them', async () => {
    const lab = await startWebhook();
    cleanups.push(() => lab.close());
    lab.status = 500;
    const dir = mkdtempSync(join(tmpdir(), 'hl7c-undefined-dest-'));
    const store = join(dir, 'store.db');
    writeFileSync(join(dir, 'r.yaml'), spec('lab'));
    const firstLog = memoryLogger();
    const first = await startServing({ specs: [join(dir, 'r.yaml')], storePath: store, cwd: dir, env: { LAB_URL: lab.url }, logger: firstLog.logger, watch: false }).catch((e) => { console.log(JSON.stringify(firstLog.lines)); throw e; });
    const client = new MllpClient({ host: '127.0.0.1', port: first.ports().rnc! });
    for (const id of ['RN1', 'RN2', 'RN3']) expect((await client.send(adtMessage(id))).code).toBe('AA');
    await client.close();
    await first.close();

    writeFileSync(join(dir, 'r.yaml'), spec('lab_new'));
    const memory = memoryLogger();
    const second = await startServing({ specs: [join(dir, 'r.yaml')], storePath: store, cwd: dir, env: { LAB_URL: lab.url }, logger: memory.logger, adminPort: 0, watch: false });
    cleanups.push(() => second.close());

    const warned = memory.lines.filter((l) => String(l.msg).includes('destination the channel\'s spec does not define'));
    expect(warned).toHaveLength(1);
    const { msg: _msg, level: _level, time: _time, ...fields } = warned[0]!;
    expect(fields).toMatchObject({ channel: 'rnc', destination: 'lab', count: 3 });
    expect(JSON.stringify(warned[0])).not.toMatch(/E100|Doe|RN1/);

    const health = await fetch(`http://127.0.0.1:${second.adminPort}/health`);
    const body = (await health.json()) as { status: string; reasons: string[] };
    expect(body.status).toBe('degraded');
    expect(body.reasons).toContain(
      "rnc/lab: 3 entries queued for a destination the channel's spec does not define, which nothing delivers (replay them to another destination, or discard them)",
    );
    await second.close();

    // The CLI reads the channel's recorded spec, with the environment serve had.
    process.env.LAB_URL = lab.url;
    cleanups.push(() => delete process.env.LAB_URL);
    const status = await cli('status', '--store', store);
    expect(status.stdout).toMatch(/ {2}rnc -> lab {2}queued 3 {2}sending 0 {2}stopped 0 {2}oldest [^\n]* {2}NOT IN THE SPEC: nothing delivers these \(hl7c replay --destination <another>, or hl7c discard --channel rnc --destination lab --yes\)\n/);

    const discarded = await cli('discard', '--store', store, '--channel', 'rnc', '--destination', 'lab', '--yes');
    expect(discarded.stderr).toContain('3 entries discarded');
    expect((await cli('status', '--store', store)).stdout).toContain('queues:\n  (nothing waiting)\n');
  });
});
