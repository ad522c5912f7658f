import { afterEach, describe, expect, test } from 'vitest';
import type { NewMessage, Store } from '../../runtime/serve/index.js';

/**
 * What every Store must do, run against each implementation (sqlite.test.ts, postgres.test.ts).
 * `open` gives a fresh, empty store and a way to remove it; `reopen`, when given, opens the same
 * data again as another process would.
 */
export interface StoreUnderTest {
  store: Store;
  reopen?: () => Promise<Store>;
  cleanup(): Promise<void>;
}

export function entry(controlId: string, extra: Partial<NewMessage> = {}): NewMessage {
  return {
    channel: 'adt-in',
    spec_version: 'v1',
    source: 'mllp:127.0.0.1:5000',
    received_at: Date.now(),
    control_id: controlId,
    message_type: 'ADT^A08^ADT_A01',
    raw: Buffer.from(`MSH|^~\\&|EPIC|GH|HL7C|APP|20261125||ADT^A08^ADT_A01|${controlId}|P|2.5.1\rPID|1||E100^^^EPI^MR\r`),
    status: 'accepted',
    reason: null,
    identifiers: { patient: { id: `MRN-${controlId}` } },
    ack_code: 'AA',
    ack: Buffer.from(`MSH|^~\\&|HL7C|APP|EPIC|GH|20261125||ACK^A08|A1|P|2.5.1\rMSA|AA|${controlId}\r`),
    deliveries: [{ destination: 'webhook', payload: Buffer.from(JSON.stringify({ controlId })) }],
    ...extra,
  };
}

const LEASE = 60_000;

export function storeContract(name: string, open: () => Promise<StoreUnderTest>): void {
  describe(`Store contract: ${name}`, () => {
    const opened: StoreUnderTest[] = [];
    afterEach(async () => {
      for (const o of opened.splice(0)) await o.cleanup();
    });
    const fresh = async (owner = 'node-a') => {
      const o = await open();
      opened.push(o);
      await o.store.openForWriting(owner);
      return o.store;
    };
    const claim = (store: Store, owner: string, extra: { limit?: number; ordered?: boolean; now?: number; destination?: string } = {}) =>
      store.claimDeliveries({ channel: 'adt-in', destination: extra.destination ?? 'webhook', limit: extra.limit ?? 10, owner, leaseMs: LEASE, ordered: extra.ordered ?? true, now: extra.now });

    test('record: ids issued by the store, distinct and increasing, for messages recorded together; the message reads back byte for byte', async () => {
      const store = await fresh();
      const ids = await Promise.all(Array.from({ length: 20 }, (_, i) => store.record(entry(`M${i}`))));
      expect(new Set(ids).size).toBe(20);
      expect([...ids].sort((a, b) => a - b)).toEqual(ids);
      const found = (await store.getMessage(ids[3]!))!;
      expect(found.message.control_id).toBe('M3');
      expect(found.message.raw!.toString('latin1')).toBe(entry('M3').raw.toString('latin1'));
      expect(found.message.ack!.toString('latin1')).toContain('MSA|AA|M3');
      expect(found.message.identifiers).toEqual({ patient: { id: 'MRN-M3' } });
      expect(found.deliveries.map((d) => [d.destination, d.state, d.attempts])).toEqual([['webhook', 'queued', 0]]);
      expect(found.events.map((e) => e.kind)).toEqual(['accepted', 'queued']);
      expect(await store.getMessage(999_999)).toBeUndefined();
    });

    test('recordAnswer: the answer sent after the deliveries replaces the one made at storing, with an event saying why', async () => {
      const store = await fresh();
      const id = await store.record(entry('ANS-1'));
      const ae = Buffer.from('MSH|^~\\&|HL7C|APP|EPIC|GH|20261125||ACK^A08|A2|P|2.5.1\rMSA|AE|ANS-1|destination webhook could not deliver the message\r');
      await store.recordAnswer!(id, { ack_code: 'AE', ack: ae, detail: 'after webhook failed' }, Date.now());
      const found = (await store.getMessage(id))!;
      expect(found.message.ack_code).toBe('AE');
      expect(found.message.ack!.equals(ae)).toBe(true);
      expect(found.events.map((e) => [e.kind, e.detail])).toContainEqual(['answered AE', 'after webhook failed']);
      expect((await store.listMessages({ channel: 'adt-in' }))[0]!.ack_code).toBe('AE');
    });

    test('search: by channel, status, control id, message type prefix, identifier, time and limit', async () => {
      const store = await fresh();
      const t = Date.now();
      await store.record(entry('A', { received_at: t - 60_000 }));
      await store.record(entry('B', { message_type: 'ADT^A081', status: 'rejected', reason: 'no PID', ack_code: 'AR', deliveries: [] }));
      await store.record(entry('C', { channel: 'lab-in', message_type: 'ORU^R01' }));
      const ids = async (filter: Parameters<Store['listMessages']>[0]) => (await store.listMessages(filter)).map((m) => m.control_id);
      expect(await ids({})).toEqual(['A', 'B', 'C']);
      expect(await ids({ channel: 'lab-in' })).toEqual(['C']);
      expect(await ids({ status: 'rejected' })).toEqual(['B']);
      expect(await ids({ status: 'queued' })).toEqual(['A', 'C']);
      expect(await ids({ controlId: 'B' })).toEqual(['B']);
      expect(await ids({ messageType: 'ADT^A08' })).toEqual(['A']);
      expect(await ids({ messageType: 'ADT' })).toEqual(['A', 'B']);
      expect(await ids({ identifier: 'MRN-C' })).toEqual(['C']);
      expect(await ids({ since: t - 1000 })).toEqual(['B', 'C']);
      expect(await ids({ limit: 1 })).toEqual(['A']);
      expect((await store.listMessages({ controlId: 'A' }))[0]!.deliveries).toBe('webhook:queued');
    });

    test('search, newest first and by page: until, afterId, and error_queue (rejected, error, dead, stopped)', async () => {
      const store = await fresh();
      const t = Date.now();
      const a = await store.record(entry('A', { received_at: t - 3000 }));
      await store.record(entry('B', { received_at: t - 2000, status: 'rejected', reason: 'no', ack_code: 'AR', deliveries: [] }));
      await store.record(entry('C', { received_at: t - 1000 }));
      await store.record(entry('D', { received_at: t }));
      const ids = async (filter: Parameters<Store['listMessages']>[0]) => (await store.listMessages(filter)).map((m) => m.control_id);
      expect(await ids({ newestFirst: true })).toEqual(['D', 'C', 'B', 'A']);
      expect(await ids({ newestFirst: true, limit: 2 })).toEqual(['D', 'C']);
      const c = (await store.listMessages({ controlId: 'C' }))[0]!.id;
      expect(await ids({ newestFirst: true, afterId: c })).toEqual(['B', 'A']);
      expect(await ids({ afterId: a })).toEqual(['B', 'C', 'D']);
      expect(await ids({ until: t - 1000 })).toEqual(['A', 'B']);
      const [head] = (await claim(store, 'node-a', { limit: 1 })).deliveries;
      await store.finishAttempt({ ...head!, attempts: 1 }, { state: 'dead', error: 'HTTP 500', detail: 'dead-lettered' }, Date.now());
      expect(await ids({ status: 'error_queue' })).toEqual(['A', 'B']);
    });

    test('since and until are exact when receive times are out of id order (a clock stepped back)', async () => {
      const store = await fresh();
      const t = Date.now();
      for (const [id, at] of [['A', t - 5000], ['B', t], ['C', t - 4000], ['D', t - 1000], ['E', t - 6000]] as const) await store.record(entry(id, { received_at: at }));
      const ids = async (filter: Parameters<Store['listMessages']>[0]) => (await store.listMessages(filter)).map((m) => m.control_id);
      expect(await ids({ since: t - 4500 })).toEqual(['B', 'C', 'D']);
      expect(await ids({ since: t - 4500, newestFirst: true })).toEqual(['D', 'C', 'B']);
      expect(await ids({ until: t - 3000 })).toEqual(['A', 'C', 'E']);
      expect(await ids({ since: t - 5500, until: t - 3000, newestFirst: true })).toEqual(['C', 'A']);
      expect(await ids({ since: t + 1000 })).toEqual([]);
      expect(await ids({ until: t - 10_000 })).toEqual([]);
    });

    test('replay to one destination: only its entry is closed and queued again; the other destinations are left as they are', async () => {
      const store = await fresh();
      const id = await store.record(entry('T1', { deliveries: [{ destination: 'webhook', payload: Buffer.from('w') }, { destination: 'archive', payload: Buffer.from('a') }] }));
      const [archived] = (await claim(store, 'node-a', { destination: 'archive' })).deliveries;
      await store.finishAttempt({ ...archived!, attempts: 1 }, { state: 'sent', detail: 'written' }, Date.now());
      const [hooked] = (await claim(store, 'node-a')).deliveries;
      await store.finishAttempt({ ...hooked!, attempts: 1 }, { state: 'stopped', error: 'refused', detail: 'refused; queue stopped' }, Date.now());
      await store.recordReplay(id, { spec_version: 'v1', status: 'accepted', reason: null, identifiers: null, ack_code: 'AA', ack: null, deliveries: [{ destination: 'webhook', payload: Buffer.from('w2') }], only: 'webhook' }, Date.now());
      const after = (await store.getMessage(id))!;
      expect(after.deliveries.map((d) => [d.destination, d.state])).toEqual([
        ['webhook', 'queued'],
        ['archive', 'sent'],
      ]);
      expect(after.events.map((e) => e.kind)).toContain('replayed: accepted (to webhook)');
    });

    test('discard: a dead or stopped entry becomes discarded (a stopped queue moves on); other states are refused', async () => {
      const store = await fresh();
      const stoppedId = await store.record(entry('X1'));
      const queuedId = await store.record(entry('X2'));
      const [head] = (await claim(store, 'node-a', { limit: 1 })).deliveries;
      await store.finishAttempt({ ...head!, attempts: 1 }, { state: 'stopped', error: 'refused', detail: 'refused; queue stopped' }, Date.now());
      expect(await claim(store, 'node-a')).toMatchObject({ deliveries: [], stopped: true });
      expect(await store.discardDelivery(queuedId, 'webhook', Date.now(), 'alice')).toBe('not-dead-or-stopped');
      expect(await store.discardDelivery(stoppedId, 'nowhere', Date.now(), 'alice')).toBe('no-such-entry');
      expect(await store.discardDelivery(stoppedId, 'webhook', Date.now(), 'alice')).toBe('discarded');
      const discarded = (await store.getMessage(stoppedId))!;
      expect(discarded.deliveries.map((d) => d.state)).toEqual(['discarded']);
      expect(discarded.events.find((e) => e.kind === 'discarded')?.detail).toBe('stopped entry discarded by alice');
      expect((await claim(store, 'node-a')).deliveries.map((d) => d.control_id)).toEqual(['X2']);
      expect((await store.listMessages({ status: 'discarded' })).map((m) => m.id)).toEqual([stoppedId]);
    });

    test('audit: entries read back newest first, by page', async () => {
      const store = await fresh();
      const t = Date.now();
      for (const [i, action] of ['message.view', 'message.replay', 'destination.pause'].entries()) {
        await store.recordAudit({ at: t + i, who: 'alice', role: 'operator', action, target: `message ${i}`, remote: '127.0.0.1', detail: i === 1 ? 'to webhook' : null });
      }
      const all = await store.listAudit();
      expect(all.map((e) => e.action)).toEqual(['destination.pause', 'message.replay', 'message.view']);
      expect(all[1]).toMatchObject({ at: t + 1, who: 'alice', role: 'operator', target: 'message 1', remote: '127.0.0.1', detail: 'to webhook' });
      expect((await store.listAudit({ limit: 1, before: all[0]!.id })).map((e) => e.action)).toEqual(['message.replay']);
    });

    test('claim, ordered: FIFO from the head under a lease; another node gets nothing until the lease expires, then the same head', async () => {
      const store = await fresh();
      for (const c of ['Q1', 'Q2', 'Q3']) await store.record(entry(c));
      const now = Date.now();
      const a = await claim(store, 'node-a', { limit: 2, now });
      expect(a.deliveries.map((d) => d.control_id)).toEqual(['Q1', 'Q2']);
      expect(a.deliveries.every((d) => d.state === 'sending' && d.lease_owner === 'node-a')).toBe(true);
      expect((await claim(store, 'node-b', { now: now + 1000 })).deliveries).toEqual([]);
      // node-a died: after its lease, node-b takes the queue from its head, in order.
      const b = await claim(store, 'node-b', { now: now + LEASE + 1 });
      expect(b.deliveries.map((d) => d.control_id)).toEqual(['Q1', 'Q2', 'Q3']);
      expect(b.deliveries.every((d) => d.lease_owner === 'node-b')).toBe(true);
    });

    test('pause: no claim takes from a paused destination, ordered or not, on any node, nor through the store opened again; entries taken and not sent go back; resume frees the queue', async () => {
      const store = await fresh();
      for (const c of ['U1', 'U2', 'U3']) await store.record(entry(c));
      await store.record(entry('OTHER', { deliveries: [{ destination: 'archive', payload: Buffer.from('a') }] }));
      // node-a took two in an ordered batch and sent the first before the pause.
      const a = await claim(store, 'node-a', { limit: 2 });
      await store.finishAttempt({ ...a.deliveries[0]!, attempts: 1 }, { state: 'sent', detail: 'HTTP 200' }, Date.now());
      expect(await store.setPaused('adt-in', 'webhook', { by: 'alice', at: 1000 })).toBe(true);
      // A second pause keeps the first one's who and when.
      expect(await store.setPaused('adt-in', 'webhook', { by: 'bob', at: 2000 })).toBe(false);
      expect(await store.pausedDestinations()).toEqual([{ channel: 'adt-in', destination: 'webhook', paused_by: 'alice', paused_at: 1000 }]);
      expect(await claim(store, 'node-a')).toMatchObject({ deliveries: [], paused: true, stopped: false });
      expect(await claim(store, 'node-b', { ordered: false })).toMatchObject({ deliveries: [], paused: true });
      // U2, taken by node-a and not sent, is back in the queue.
      expect((await store.getMessage(a.deliveries[1]!.message_id))!.deliveries[0]!.state).toBe('queued');
      // Another destination is not paused.
      expect((await claim(store, 'node-b', { destination: 'archive' })).deliveries.map((d) => d.control_id)).toEqual(['OTHER']);
      const again = await opened[opened.length - 1]!.reopen?.();
      if (again) {
        expect(await again.pausedDestinations()).toEqual([{ channel: 'adt-in', destination: 'webhook', paused_by: 'alice', paused_at: 1000 }]);
        expect(await again.claimDeliveries({ channel: 'adt-in', destination: 'webhook', limit: 10, owner: 'node-c', leaseMs: LEASE, ordered: true })).toMatchObject({ deliveries: [], paused: true });
      }
      expect(await store.setPaused('adt-in', 'webhook', null)).toBe(true);
      expect(await store.setPaused('adt-in', 'webhook', null)).toBe(false);
      expect(await store.pausedDestinations()).toEqual([]);
      // Another node takes the queue at once, from its head: nothing of node-a's holds it.
      expect(await claim(store, 'node-b')).toMatchObject({ deliveries: [expect.objectContaining({ control_id: 'U2' }), expect.objectContaining({ control_id: 'U3' })], paused: false });
    });

    test('leases: one holder at a time; renewed by it, taken by another once run out or given up', async () => {
      const store = await fresh();
      const t = 1_000_000;
      expect(await store.takeLease('alerting', 'node-a', 1000, t)).toEqual({ owner: 'node-a', until: t + 1000 });
      expect(await store.takeLease('alerting', 'node-b', 1000, t + 500)).toEqual({ owner: 'node-a', until: t + 1000 });
      expect(await store.takeLease('alerting', 'node-a', 1000, t + 900)).toEqual({ owner: 'node-a', until: t + 1900 });
      expect(await store.takeLease('other-job', 'node-b', 1000, t + 900)).toEqual({ owner: 'node-b', until: t + 1900 });
      // node-a stopped renewing: after its lease node-b holds it.
      expect(await store.takeLease('alerting', 'node-b', 1000, t + 1900)).toEqual({ owner: 'node-b', until: t + 2900 });
      await store.releaseLease('alerting', 'node-a');
      expect((await store.takeLease('alerting', 'node-a', 1000, t + 2000)).owner).toBe('node-b');
      await store.releaseLease('alerting', 'node-b');
      expect((await store.takeLease('alerting', 'node-a', 1000, t + 2000)).owner).toBe('node-a');
    });

    test('claim, unordered: two nodes take different entries; finished entries are not taken again', async () => {
      const store = await fresh();
      for (const c of ['P1', 'P2', 'P3', 'P4', 'P5']) await store.record(entry(c));
      const a = await claim(store, 'node-a', { limit: 2, ordered: false });
      const b = await claim(store, 'node-b', { limit: 10, ordered: false });
      expect(a.deliveries.map((d) => d.control_id)).toEqual(['P1', 'P2']);
      expect(b.deliveries.map((d) => d.control_id)).toEqual(['P3', 'P4', 'P5']);
      for (const d of [...a.deliveries, ...b.deliveries]) await store.finishAttempt({ ...d, attempts: d.attempts + 1 }, { state: 'sent', detail: 'HTTP 200' }, Date.now());
      expect((await claim(store, 'node-c', { ordered: false, now: Date.now() + LEASE * 2 })).deliveries).toEqual([]);
      expect(await store.hasOpenDeliveries('adt-in', 'webhook')).toBe(false);
      expect(await store.openQueues()).toEqual([]);
    });

    test('a failed attempt waits for its next try: not claimed before it, nextDueAt says when; attempts and history recorded', async () => {
      const store = await fresh();
      const id = await store.record(entry('R1'));
      const now = Date.now();
      const [d] = (await claim(store, 'node-a', { now })).deliveries;
      await store.finishAttempt({ ...d!, attempts: 1 }, { state: 'queued', error: 'HTTP 503', nextAttemptAt: now + 5000, detail: 'HTTP 503; next try in 5000 ms' }, now);
      const early = await claim(store, 'node-a', { now: now + 10 });
      expect(early.deliveries).toEqual([]);
      expect(early.nextDueAt).toBe(now + 5000);
      const early2 = await claim(store, 'node-a', { now: now + 10, ordered: false });
      expect(early2.deliveries).toEqual([]);
      expect(early2.nextDueAt).toBe(now + 5000);
      const due = await claim(store, 'node-a', { now: now + 5000 });
      expect(due.deliveries.map((x) => [x.control_id, x.attempts, x.last_error])).toEqual([['R1', 1, 'HTTP 503']]);
      const { events, deliveries } = (await store.getMessage(id))!;
      expect(deliveries[0]!.attempts).toBe(1);
      expect(events.map((e) => e.kind)).toContain('attempt 1: queued');
      expect(events.find((e) => e.kind === 'attempt 1: queued')!.detail).toBe('HTTP 503; next try in 5000 ms');
    });

    test('a stopped entry holds an ordered queue (stopped: true); replay queues it again in its place and the queue moves', async () => {
      const store = await fresh();
      const first = await store.record(entry('S1'));
      await store.record(entry('S2'));
      const [d] = (await claim(store, 'node-a', { limit: 1 })).deliveries;
      await store.finishAttempt({ ...d!, attempts: 1 }, { state: 'stopped', error: 'refused', detail: 'refused; queue stopped' }, Date.now());
      const held = await claim(store, 'node-a');
      expect(held).toMatchObject({ deliveries: [], stopped: true });
      expect((await claim(store, 'node-a', { ordered: false })).deliveries.map((x) => x.control_id)).toEqual(['S2']);
      await store.recordReplay(first, { spec_version: 'v2', status: 'accepted', reason: null, identifiers: null, ack_code: 'AA', ack: null, deliveries: [{ destination: 'webhook', payload: Buffer.from('again') }] }, Date.now());
      const after = (await store.getMessage(first))!;
      expect(after.deliveries.map((x) => [x.id, x.state, x.attempts])).toEqual([[d!.id, 'queued', 0]]);
      expect(after.message.spec_version).toBe('v2');
      expect(after.events.map((e) => e.kind)).toEqual(expect.arrayContaining(['replayed: accepted', 'queued again in place']));
      const moved = await claim(store, 'node-b', { now: Date.now() + LEASE + 1 });
      expect(moved.deliveries.map((x) => [x.control_id, x.payload?.toString()])).toEqual([
        ['S1', 'again'],
        ['S2', JSON.stringify({ controlId: 'S2' })],
      ]);
    });

    test('replay of a dead-lettered message closes its entry as replayed and queues a new one', async () => {
      const store = await fresh();
      const id = await store.record(entry('D1'));
      const [d] = (await claim(store, 'node-a')).deliveries;
      await store.finishAttempt({ ...d!, attempts: 5 }, { state: 'dead', error: 'HTTP 500', detail: 'dead-lettered' }, Date.now());
      expect((await store.listMessages({ status: 'dead' })).map((m) => m.id)).toEqual([id]);
      await store.recordReplay(id, { spec_version: 'v1', status: 'accepted', reason: null, identifiers: null, ack_code: 'AA', ack: null, deliveries: [{ destination: 'webhook', payload: Buffer.from('x') }] }, Date.now());
      expect((await store.getMessage(id))!.deliveries.map((x) => x.state)).toEqual(['replayed', 'queued']);
      expect((await claim(store, 'node-a')).deliveries.map((x) => x.message_id)).toEqual([id]);
    });

    test('renewLease keeps entries from other nodes past the first expiry; releaseExpiredLeases leaves live leases alone', async () => {
      const store = await fresh();
      await store.record(entry('L1'));
      const now = Date.now();
      const [d] = (await claim(store, 'node-a', { now })).deliveries;
      await store.renewLease([d!.id], 'node-a', LEASE, now + LEASE / 2);
      expect((await claim(store, 'node-b', { now: now + LEASE + 1 })).deliveries).toEqual([]);
      expect(await store.releaseExpiredLeases(now + LEASE + 1)).toBe(0);
      expect(await store.releaseExpiredLeases(now + LEASE * 2)).toBe(1);
      expect((await store.getMessage(d!.message_id))!.deliveries[0]!.state).toBe('queued');
    });

    test('prune: content of finished old messages goes; unfinished ones, rows and counts stay', async () => {
      const store = await fresh();
      const old = Date.now() - 60_000;
      for (const c of ['O1', 'O2', 'O3']) await store.record(entry(c, { received_at: old }));
      await store.record(entry('NEW', {}));
      const queue = (await claim(store, 'node-a', { ordered: false })).deliveries;
      for (const d of queue.filter((x) => x.control_id !== 'O3')) await store.finishAttempt({ ...d, attempts: 1 }, { state: 'sent', detail: 'HTTP 200' }, Date.now());
      expect(await store.prune(Date.now() - 1000, 1)).toBe(2);
      const rows = await store.listMessages();
      expect(rows.filter((m) => m.pruned).map((m) => m.control_id)).toEqual(['O1', 'O2']);
      expect(rows.find((m) => m.control_id === 'O1')!.raw).toBeNull();
      expect(rows.find((m) => m.control_id === 'O3')!.raw).not.toBeNull();
      expect(await store.counts()).toEqual([{ channel: 'adt-in', status: 'accepted', count: 4 }]);
      expect(await store.prune(Date.now() - 1000)).toBe(0);
    });

    test('counts and metrics: messages by status, queue entries by state, oldest unfinished entry per queue', async () => {
      const store = await fresh();
      const t = Date.now();
      await store.record(entry('K1', { received_at: t - 120_000 }));
      await store.record(entry('K2', { received_at: t - 5_000 }));
      await store.record(entry('K3', { status: 'rejected', ack_code: 'AR', deliveries: [] }));
      expect(await store.counts()).toEqual([
        { channel: 'adt-in', status: 'accepted', count: 2 },
        { channel: 'adt-in', status: 'rejected', count: 1 },
      ]);
      const [first] = (await claim(store, 'node-a', { limit: 1 })).deliveries;
      await store.finishAttempt({ ...first!, attempts: 1 }, { state: 'sent', detail: 'HTTP 200' }, t);
      const m = await store.metrics();
      expect(m.messages).toEqual(await store.counts());
      const states = Object.fromEntries(m.deliveries.filter((d) => d.count > 0).map((d) => [d.state, d.count]));
      expect(states).toEqual({ sent: 1, queued: 1 });
      expect(m.oldestOpen).toEqual([{ channel: 'adt-in', destination: 'webhook', oldest: t - 5_000 }]);
      expect(m.waiting).toBe(0);
    });

    test('failing queues: every attempt failed since the first failure after the last success, in the order attempts ended, whatever order they are written in', async () => {
      const store = await fresh();
      for (const c of ['F1', 'F2', 'F3', 'F4']) await store.record(entry(c));
      const [f1, f2, f3, f4] = (await claim(store, 'node-a', { ordered: false })).deliveries;
      const t = 2_000_000;
      const fail = (d: typeof f1, at: number) => store.finishAttempt({ ...d!, attempts: 1 }, { state: 'queued', error: 'HTTP 503', nextAttemptAt: at + 1000, detail: 'HTTP 503' }, at);
      await fail(f1, t + 100);
      await fail(f2, t + 200);
      expect((await store.metrics()).failing).toEqual([{ channel: 'adt-in', destination: 'webhook', since: t + 100, failures: 2 }]);
      await store.finishAttempt({ ...f3!, attempts: 1 }, { state: 'sent', detail: 'HTTP 200' }, t + 300);
      expect((await store.metrics()).failing).toEqual([]);
      // Ended before the success, written after it (another node's commit lagged): not failing.
      await fail(f4, t + 250);
      expect((await store.metrics()).failing).toEqual([]);
      await store.finishAttempt({ ...f4!, attempts: 2 }, { state: 'dead', error: 'HTTP 503', detail: 'HTTP 503; dead-lettered' }, t + 400);
      expect((await store.metrics()).failing).toEqual([{ channel: 'adt-in', destination: 'webhook', since: t + 400, failures: 1 }]);
    });

    test('reloads: this node\'s latest spec reload, replaced by the next', async () => {
      const store = await fresh('node-r');
      expect((await store.metrics()).reloads).toEqual([]);
      await store.recordReload({ at: 1000, outcome: 'rejected', summary: '1 error(s), the first adt.yaml:3:5 schema/unknown-property' });
      expect((await store.metrics()).reloads).toEqual([{ node: 'node-r', at: 1000, outcome: 'rejected', summary: '1 error(s), the first adt.yaml:3:5 schema/unknown-property' }]);
      await store.recordReload({ at: 2000, outcome: 'applied', summary: null });
      expect((await store.metrics()).reloads).toEqual([{ node: 'node-r', at: 2000, outcome: 'applied', summary: null }]);
    });

    test('channel versions: the last spec path and version per channel', async () => {
      const store = await fresh();
      await store.setChannel('adt-in', '/specs/adt.yaml', 'v1', 1);
      await store.setChannel('adt-in', '/specs/adt.yaml', 'v2', 2);
      await store.setChannel('lab-in', '/specs/lab.yaml', 'v9', 2);
      expect((await store.channelSpecs()).sort((a, b) => a.name.localeCompare(b.name))).toEqual([
        { name: 'adt-in', spec_path: '/specs/adt.yaml', spec_version: 'v2' },
        { name: 'lab-in', spec_path: '/specs/lab.yaml', spec_version: 'v9' },
      ]);
    });

    test('closing gives back what this node claimed and did not finish; reopened, everything recorded is there', async () => {
      const o = await open();
      opened.push(o);
      await o.store.openForWriting('node-a');
      for (const c of ['C1', 'C2']) await o.store.record(entry(c));
      await claim(o.store, 'node-a');
      await o.store.close();
      if (!o.reopen) return;
      const again = await o.reopen();
      opened.push({ store: again, cleanup: () => again.close() });
      await again.openForWriting('node-b');
      expect((await again.listMessages()).map((m) => m.control_id)).toEqual(['C1', 'C2']);
      expect((await claim(again, 'node-b')).deliveries.map((d) => d.control_id)).toEqual(['C1', 'C2']);
    });
  });
}
