import { describe, expect, test } from 'vitest';
import type { StoreMetrics } from '../../runtime/serve/index.js';
import type { AlertNotice } from '../../src/alerts/engine.js';
import { AlertEngine } from '../../src/alerts/engine.js';
import type { AlertRule } from '../../src/config/serve-config.js';

/** An engine over counters the test sets, checked at times the test gives (no clock involved). */
function harness(rules: Array<Partial<AlertRule> & Pick<AlertRule, 'name' | 'kind'>>, channels = ['adt-in']) {
  const metrics: StoreMetrics = { messages: [], deliveries: [], oldestOpen: [], waiting: 0, ingestFailures: 0, lastError: null, failing: [], reloads: [] };
  const notices: AlertNotice[] = [];
  const engine = new AlertEngine(
    { checkEveryMs: 1000, rules: rules.map((r) => ({ coolDownMs: 600_000, ...r })) },
    { metrics: async () => metrics, channels: () => channels },
    async (n) => void notices.push(n),
  );
  const set = (channel: string, status: string, count: number) => {
    const row = metrics.messages.find((m) => m.channel === channel && m.status === status);
    if (row) row.count = count;
    else metrics.messages.push({ channel, status, count });
  };
  return { engine, metrics, notices, set, at: (t: number) => engine.check(t) };
}

describe('alert engine', () => {
  test('errors over N in a window: one notice when it starts, one when it ends (edge-triggered)', async () => {
    const h = harness([{ name: 'adt-errors', kind: 'errors', over: 2, windowMs: 60_000 }]);
    h.set('adt-in', 'accepted', 10);
    await h.at(0);
    h.set('adt-in', 'error', 3);
    await h.at(10_000);
    expect(h.notices.map((n) => [n.rule, n.state, n.channel, n.value])).toEqual([['adt-errors', 'firing', 'adt-in', 3]]);
    // Still over: no second notice.
    h.set('adt-in', 'error', 5);
    await h.at(20_000);
    await h.at(30_000);
    expect(h.notices).toHaveLength(1);
    expect(h.engine.view().rules[0]).toMatchObject({ name: 'adt-errors', state: 'firing', since: new Date(10_000).toISOString() });
    // The errors age out of the window: resolved, once.
    await h.at(85_000);
    await h.at(95_000);
    expect(h.notices.map((n) => n.state)).toEqual(['firing', 'resolved']);
    expect(h.notices[1]!.summary).toMatch(/^resolved: channel adt-in: 0 message\(s\) stored as error in the last 1m/);
    expect(h.engine.view().rules[0]!.state).toBe('ok');
  });

  test('a condition that flaps within the cool-down is told once the cool-down is over, if it still holds', async () => {
    const h = harness([{ name: 'dead', kind: 'dead_letters', over: 0, coolDownMs: 60_000 }]);
    const dead = (count: number) => (h.metrics.deliveries = count ? [{ channel: 'adt-in', destination: 'app', state: 'dead', count }] : []);
    dead(1);
    await h.at(0);
    dead(0);
    await h.at(1000);
    dead(1);
    await h.at(2000);
    dead(0);
    await h.at(3000);
    dead(2);
    await h.at(4000);
    // Fired, resolved, then held back: two notices in the cool-down, not five.
    expect(h.notices.map((n) => n.state)).toEqual(['firing', 'resolved']);
    expect(h.engine.view().recent.filter((r) => !r.notified)).toHaveLength(3);
    await h.at(59_000);
    expect(h.notices).toHaveLength(2);
    await h.at(61_000);
    expect(h.notices.map((n) => [n.state, n.value])).toEqual([['firing', 1], ['resolved', 0], ['firing', 2]]);
  });

  test('no message for T, per channel; a message resolves it', async () => {
    const h = harness([{ name: 'silent', kind: 'no_messages', forMs: 30 * 60_000 }], ['adt-in', 'lab-in']);
    await h.at(0);
    h.set('adt-in', 'accepted', 1);
    await h.at(20 * 60_000);
    await h.at(31 * 60_000);
    // lab-in has been quiet since the start; adt-in got a message at 20 minutes.
    expect(h.notices.map((n) => [n.state, n.channel])).toEqual([['firing', 'lab-in']]);
    h.set('lab-in', 'rejected', 1);
    await h.at(32 * 60_000);
    expect(h.notices.map((n) => [n.state, n.channel])).toEqual([['firing', 'lab-in'], ['resolved', 'lab-in']]);
  });

  test('a destination failing for T, from the store\'s record of attempts; a success resolves it', async () => {
    const h = harness([{ name: 'failing', kind: 'destination_failing', forMs: 120_000 }]);
    h.metrics.failing = [{ channel: 'adt-in', destination: 'app', since: 0, failures: 2 }];
    await h.at(60_000);
    expect(h.notices).toHaveLength(0);
    await h.at(125_000);
    expect(h.notices[0]).toMatchObject({ state: 'firing', channel: 'adt-in', destination: 'app', value: 125 });
    expect(h.notices[0]!.summary).toContain('2 failed attempt(s)');
    h.metrics.failing = [];
    await h.at(130_000);
    expect(h.notices.map((n) => n.state)).toEqual(['firing', 'resolved']);
  });

  test('queue oldest age over T, queue stopped, rules limited to a channel and destination', async () => {
    const h = harness([
      { name: 'stuck', kind: 'queue_age', olderThanMs: 300_000, channel: 'adt-in', destination: 'app' },
      { name: 'stopped', kind: 'queue_stopped' },
    ]);
    h.metrics.oldestOpen = [
      { channel: 'adt-in', destination: 'app', oldest: 0 },
      { channel: 'adt-in', destination: 'archive', oldest: 0 },
    ];
    h.metrics.deliveries = [{ channel: 'adt-in', destination: 'archive', state: 'stopped', count: 1 }];
    await h.at(301_000);
    expect(h.notices.map((n) => [n.rule, n.destination])).toEqual([['stuck', 'app'], ['stopped', 'archive']]);
    // The queue drained: it is no longer reported, so the alert resolves.
    h.metrics.oldestOpen = [];
    await h.at(302_000);
    expect(h.notices.map((n) => [n.rule, n.state])).toEqual([['stuck', 'firing'], ['stopped', 'firing'], ['stuck', 'resolved']]);
  });

  test('a rejected reload fires, per node; the node\'s next applied reload resolves it, and so does the node going away', async () => {
    const h = harness([{ name: 'reload', kind: 'reload_rejected' }]);
    await h.at(0);
    h.metrics.reloads = [
      { node: 'a:1:x', at: 500, outcome: 'rejected', summary: '1 error(s), the first adt.yaml:3:5 schema/unknown-property' },
      { node: 'b:2:y', at: 600, outcome: 'rejected', summary: '2 error(s), the first lab.yaml:1:1 schema/invalid-yaml' },
    ];
    await h.at(1000);
    h.metrics.reloads = [{ node: 'a:1:x', at: 1500, outcome: 'applied', summary: null }, h.metrics.reloads[1]!];
    await h.at(2000);
    h.metrics.reloads = [h.metrics.reloads[0]!];
    await h.at(3000);
    expect(h.notices.map((n) => [n.state, n.reload_node, n.summary])).toEqual([
      ['firing', 'a:1:x', 'node a:1:x: a spec change was rejected; the running version stays: 1 error(s), the first adt.yaml:3:5 schema/unknown-property'],
      ['firing', 'b:2:y', 'node b:2:y: a spec change was rejected; the running version stays: 2 error(s), the first lab.yaml:1:1 schema/invalid-yaml'],
      ['resolved', 'a:1:x', 'resolved: node a:1:x: the specs reloaded'],
      ['resolved', 'b:2:y', 'resolved: node b:2:y: no longer reported'],
    ]);
  });
});
