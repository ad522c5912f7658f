import { mkdtempSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { MllpClient } from '../../runtime/index.js';
import { startBin, stop } from '../cli/helpers.js';
import { adtMessage, adtSpec, startWebhook, waitFor } from '../serve/helpers.js';
import { sql, testSchema } from '../store/pg-helpers.js';

/**
 * Two serve nodes on one PostgreSQL, each with its own specs folder (two hosts): the node holding
 * the alerting lease tells what only the other node saw, a destination every attempt of which
 * fails there and a spec change rejected there, because both are judged from the store.
 */

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const CONFIG = `alerts:
  check_every: 1s
  webhook: { url: "\${ALERT_URL}" }
  rules:
    - { name: app-down, kind: destination_failing, for: 1s }
    - { name: bad-spec, kind: reload_rejected }
`;

interface Notice {
  rule: string;
  state: string;
  node: string;
  channel?: string;
  destination?: string;
  reload_node?: string;
  summary: string;
}

describe('alerts judged from the store, for every node', () => {
  test('a failing destination and a rejected reload seen only by the node that does not alert are told by the one that does, and their end too', async () => {
    const schema = testSchema('judged');
    cleanups.push(() => schema.drop());
    const alertHook = await startWebhook();
    cleanups.push(() => alertHook.close());
    // Node B's receiver: down until the test brings it back.
    const appB = await startWebhook();
    cleanups.push(() => appB.close());
    appB.status = 500;
    const appA = await startWebhook();
    cleanups.push(() => appA.close());

    // Node A serves another channel: it never sends to adt-in's queue, so it sees none of its attempts.
    const dirA = mkdtempSync(join(tmpdir(), 'hl7c-judged-a-'));
    writeFileSync(join(dirA, 'lab.yaml'), adtSpec().replace('channel: adt-in', 'channel: lab-in'));
    writeFileSync(join(dirA, 'hl7c.config.yaml'), CONFIG);
    const dirB = mkdtempSync(join(tmpdir(), 'hl7c-judged-b-'));
    writeFileSync(join(dirB, 'adt.yaml'), adtSpec({ attempts: 1000, backoffMs: 50 }));
    writeFileSync(join(dirB, 'hl7c.config.yaml'), CONFIG);
    const env = { ...process.env, ALERT_URL: alertHook.url, HL7C_LOG_LEVEL: 'warn' };

    const a = await startBin(['serve', dirA, '--store', schema.url, '--no-watch', '--admin-port', '0'], /channel lab-in on port (\d+)\nadmin on port (\d+)/, { ...env, TEST_WEBHOOK_URL: appA.url }, 60_000);
    cleanups.push(() => stop(a.child, 'SIGKILL'));
    const pidOf = (node: string) => Number(/:(\d+):[^:]+$/.exec(node)![1]);
    // A holds the alerting lease before B starts.
    await waitFor(async () => (await sql<{ owner: string }>(schema.name, "SELECT owner FROM leases WHERE name = 'alerting'")).some((l) => pidOf(l.owner) === a.child.pid), 20_000, 'node A alerting');
    const b = await startBin(['serve', dirB, '--store', schema.url], /channel adt-in on port (\d+)/, { ...env, TEST_WEBHOOK_URL: appB.url }, 60_000);
    cleanups.push(() => stop(b.child, 'SIGKILL'));

    const notices = () => alertHook.received.map((r) => r.body as unknown as Notice);
    const told = (rule: string, state: string) => notices().filter((n) => n.rule === rule && n.state === state);

    const client = new MllpClient({ host: '127.0.0.1', port: Number(b.match[1]) });
    cleanups.push(() => client.close());
    expect((await client.send(adtMessage('JDG-1', 'E777'))).code).toBe('AA');

    await waitFor(() => told('app-down', 'firing').length > 0, 30_000, 'the failing destination told');
    const firing = told('app-down', 'firing')[0]!;
    expect(pidOf(firing.node)).toBe(a.child.pid);
    expect(firing).toMatchObject({ channel: 'adt-in', destination: 'webhook' });
    expect(firing.summary).toMatch(/^destination adt-in → webhook: every attempt failing for \S+( \S+)? \(\d+ failed attempt\(s\); alert at 1s\)$/);
    // Every attempt was B's: A's receiver got nothing.
    expect(appA.received).toEqual([]);
    // A's admin API shows the queue failing too, though A never sent to it.
    const destinations = (await (await fetch(`http://127.0.0.1:${a.match[2]}/api/destinations`)).json()) as { destinations: Array<{ channel: string; destination: string; state: string }> };
    expect(destinations.destinations.find((d) => d.channel === 'adt-in')).toMatchObject({ destination: 'webhook', state: 'failing' });

    appB.status = 200;
    await waitFor(() => told('app-down', 'resolved').length > 0, 30_000, 'the recovery told');
    expect(appB.received.map((r) => r.body.message_id)).toEqual(['JDG-1']);
    expect(pidOf(told('app-down', 'resolved')[0]!.node)).toBe(a.child.pid);

    // A spec change on B that does not validate: B keeps its version, A tells it, naming B.
    writeFileSync(join(dirB, 'broken.yaml'), 'channel: broken\nsource: { mllp: { port: 0 } }\nnot_a_key: 1\n');
    await waitFor(() => told('bad-spec', 'firing').length > 0, 30_000, 'the rejected reload told');
    const rejected = told('bad-spec', 'firing')[0]!;
    expect(pidOf(rejected.node)).toBe(a.child.pid);
    expect(pidOf(rejected.reload_node!)).toBe(b.child.pid);
    expect(rejected.summary).toMatch(new RegExp(`^node ${rejected.reload_node!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: a spec change was rejected; the running version stays: \\d+ error\\(s\\), the first \\S*broken\\.yaml:\\d+:\\d+ \\S+$`));

    unlinkSync(join(dirB, 'broken.yaml'));
    await waitFor(() => told('bad-spec', 'resolved').length > 0, 30_000, 'the applied reload told');
    expect(pidOf(told('bad-spec', 'resolved')[0]!.reload_node!)).toBe(b.child.pid);

    // Each told once, and nothing from a message (no MRN, no name) in any notice.
    // Longer than the alerting lease (3 s at check_every 1s): a second notice would have come.
    await new Promise((r) => setTimeout(r, 3500));
    expect(notices().map((n) => `${n.rule} ${n.state}`)).toEqual(['app-down firing', 'app-down resolved', 'bad-spec firing', 'bad-spec resolved']);
    const wire = JSON.stringify(alertHook.received.map((r) => r.body));
    expect(wire).not.toContain('E777');
    expect(wire).not.toContain('Doe');
    expect(await stop(b.child, 'SIGTERM')).toBe(0);
    expect(await stop(a.child, 'SIGTERM')).toBe(0);
  }, 180_000);
});
