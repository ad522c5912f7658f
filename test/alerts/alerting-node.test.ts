import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { MllpClient } from '../../runtime/index.js';
import { startBin, stop } from '../cli/helpers.js';
import { adtSpec, startWebhook, waitFor } from '../serve/helpers.js';
import { sql, testSchema } from '../store/pg-helpers.js';

/**
 * Several serve nodes on one PostgreSQL: one of them (the holder of the alerting lease in the
 * store) sends the notices, from the store's counters, so an incident is told once whichever
 * node saw the messages; when that node dies another takes the lease and alerts.
 */

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Several checks (100 ms each) and more than the alerting lease (1 s): a duplicate would have come by then. */
const settle = () => new Promise((r) => setTimeout(r, 2500));

const erroring = (controlId: string) => `MSH|^~\\&|EPIC|GH|HL7C|APP|20261125||ADT^A08^ADT_A01|${controlId}|P|2.5.1\rPID|1||E1^^^SSA^MR||Doe^Jane\r`;
const oru = (controlId: string) => `MSH|^~\\&|LAB|GH|HL7C|APP|20261125||ORU^R01^ORU_R01|${controlId}|P|2.5.1\rPID|1||E1^^^EPI^MR||Doe^Jane\r`;

describe('alerts from several nodes on one PostgreSQL', () => {
  test('one notice per incident, from the node holding the alerting lease; after it is killed the other node alerts', async () => {
    const schema = testSchema('alerting');
    cleanups.push(() => schema.drop());
    const alertHook = await startWebhook();
    cleanups.push(() => alertHook.close());
    const app = await startWebhook();
    cleanups.push(() => app.close());
    const dir = mkdtempSync(join(tmpdir(), 'hl7c-alerting-node-'));
    writeFileSync(join(dir, 'adt.yaml'), adtSpec());
    writeFileSync(
      join(dir, 'hl7c.config.yaml'),
      'alerts:\n  check_every: 100ms\n  webhook: { url: "${ALERT_URL}" }\n  rules:\n    - { name: adt-errors, kind: errors, over: 0, window: 1h }\n    - { name: adt-rejects, kind: rejects, over: 0, window: 1h }\n',
    );
    const env = { ...process.env, TEST_WEBHOOK_URL: app.url, ALERT_URL: alertHook.url, HL7C_LOG_LEVEL: 'warn' };
    // The first creates the schema; the second joins it.
    const nodes: Array<{ child: Awaited<ReturnType<typeof startBin>>['child']; port: number }> = [];
    for (let i = 0; i < 2; i++) {
      const started = await startBin(['serve', dir, '--store', schema.url, '--no-watch'], /channel adt-in on port (\d+)/, env, 60_000);
      cleanups.push(() => stop(started.child, 'SIGKILL'));
      nodes.push({ child: started.child, port: Number(started.match[1]) });
    }
    const send = async (port: number, message: string) => {
      const client = new MllpClient({ host: '127.0.0.1', port });
      try {
        return (await client.send(message)).code;
      } finally {
        await client.close();
      }
    };
    const notices = () => alertHook.received.map((r) => r.body as { rule: string; state: string; node: string; value: number });
    const firing = (rule: string) => notices().filter((n) => n.rule === rule && n.state === 'firing');
    const pidOf = (node: string) => Number(/:(\d+):[^:]+$/.exec(node)![1]);

    // An error on each node: one incident, counted in the store, told once.
    expect(await send(nodes[0]!.port, erroring('E-1'))).toBe('AE');
    expect(await send(nodes[1]!.port, erroring('E-2'))).toBe('AE');
    await waitFor(() => firing('adt-errors').length > 0, 20_000, 'the errors told');
    await settle();
    expect(firing('adt-errors')).toHaveLength(1);
    const holder = nodes.find((n) => n.child.pid === pidOf(firing('adt-errors')[0]!.node))!;
    expect(holder).toBeDefined();
    const [lease] = await sql<{ owner: string }>(schema.name, "SELECT owner FROM leases WHERE name = 'alerting'");
    expect(pidOf(lease!.owner)).toBe(holder.child.pid);

    // The alerting node dies. The other one takes the lease once it runs out, and alerts.
    const survivor = nodes.find((n) => n !== holder)!;
    holder.child.kill('SIGKILL');
    expect(await send(survivor.port, oru('R-1'))).toBe('AR');
    await waitFor(() => firing('adt-rejects').length > 0, 20_000, 'the reject told by the survivor');
    await settle();
    expect(firing('adt-rejects')).toHaveLength(1);
    expect(pidOf(firing('adt-rejects')[0]!.node)).toBe(survivor.child.pid);
    // The incident the dead node told is not told again by the one that took over.
    expect(firing('adt-errors')).toHaveLength(1);
    expect(pidOf((await sql<{ owner: string }>(schema.name, "SELECT owner FROM leases WHERE name = 'alerting'"))[0]!.owner)).toBe(survivor.child.pid);
    expect(await stop(survivor.child, 'SIGTERM')).toBe(0);
    // Stopped cleanly, it gave the lease up.
    expect(await sql(schema.name, "SELECT owner FROM leases WHERE name = 'alerting'")).toEqual([]);
  }, 180_000);
});
