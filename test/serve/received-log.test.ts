import { spawn } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { SqliteStore, startAdminServer } from '../../runtime/serve/index.js';
import { MllpClient, parseMessage, readAck } from '../../runtime/index.js';
import { ChannelHost } from '../../runtime/serve/index.js';
import { encodeRecord, readReceivedLog, ReceivedLog } from '../../runtime/store/received-log.js';
import { compileChannels } from '../../src/serve/serve.js';
import { adtMessage, adtSpec, memoryLogger, receivedEntry, waitFor } from './helpers.js';
import { frame, RawPeer } from '../mllp/helpers.js';

const opened: SqliteStore[] = [];
afterEach(() => {
  for (const s of opened.splice(0)) s.close();
});

function open(path: string, synchronous: 'FULL' | 'NORMAL' = 'NORMAL'): SqliteStore {
  const store = new SqliteStore(path, { synchronous });
  opened.push(store);
  return store;
}

/** A store left as SIGKILL would leave it: messages appended to the log, not yet in SQLite. */
function crashedStore(dir: string, controlIds: string[]): string {
  const path = join(dir, 'store.db');
  const writer = new SqliteStore(path, { synchronous: 'NORMAL' });
  writer.openForWriting();
  writer.close();
  let id = 1;
  for (const c of controlIds) appendFileSync(`${path}.received`, encodeRecord({ ...receivedEntry(c), id: id++ }));
  return path;
}

describe('received-message log (stored before the ACK, taken into SQLite after)', () => {
  test('a message is in the log, with its bytes, as soon as record() resolves, before SQLite has it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hl7c-log-'));
    const store = open(join(dir, 'store.db'));
    const id = await store.record(receivedEntry('MSG-1'));
    expect(readFileSync(`${store.path}.received`).includes(Buffer.from('MSG-1'))).toBe(true);
    // Another process's view: the SQLite file alone does not have it yet …
    const Database = (await import('better-sqlite3')).default;
    const raw = new Database(store.path, { readonly: true });
    expect(raw.prepare('SELECT COUNT(*) AS n FROM messages').get()).toEqual({ n: 0 });
    raw.close();
    // … and any read through a store takes it in first.
    expect((await store.getMessage(id))?.message.control_id).toBe('MSG-1');
  });

  test('after a crash, opening the store takes in every logged message once, queue entries included', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hl7c-log-'));
    const path = crashedStore(dir, ['A', 'B', 'C']);
    // Records up to an id already stored are passed by without being decoded.
    const tail = readReceivedLog(`${path}.received`, 2);
    expect(tail.messages.map((m) => [m.id, m.control_id])).toEqual([[3, 'C']]);
    expect(tail.wholeBytes).toBe(statSync(`${path}.received`).size);
    const reader = open(path);
    expect((await reader.listMessages()).map((m) => m.control_id)).toEqual(['A', 'B', 'C']);
    expect(reader.nextDeliveries('adt-in', 'webhook', 10).map((d) => d.control_id)).toEqual(['A', 'B', 'C']);
    // Read again (a second process, or the next start): nothing twice.
    const again = open(path);
    expect((await again.listMessages())).toHaveLength(3);
    expect(again.db.prepare('SELECT COUNT(*) AS n FROM deliveries').get()).toEqual({ n: 3 });
  });

  test('a torn last record (cut off by a power loss) is left out; the whole ones before it are kept', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hl7c-log-'));
    const path = crashedStore(dir, ['A', 'B']);
    const torn = encodeRecord({ ...receivedEntry('TORN'), id: 3 });
    appendFileSync(`${path}.received`, torn.subarray(0, torn.length - 10));
    expect((await open(path).listMessages()).map((m) => m.control_id)).toEqual(['A', 'B']);
  });

  test('a writer cuts a torn tail off before appending, even when the log cannot be emptied yet', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hl7c-log-'));
    const path = crashedStore(dir, ['A']);
    const torn = encodeRecord({ ...receivedEntry('TORN'), id: 2 });
    appendFileSync(`${path}.received`, torn.subarray(0, torn.length - 10));
    // A reader holding an old snapshot keeps the checkpoint, and so the emptying, from happening.
    const Database = (await import('better-sqlite3')).default;
    const reader = new Database(path, { readonly: true });
    try {
      reader.exec('BEGIN');
      reader.prepare('SELECT COUNT(*) FROM messages').get();
      const writer = open(path);
      writer.openForWriting();
      await writer.record(receivedEntry('AFTER'));
      // What a restart after a crash right now would read back:
      expect(readReceivedLog(`${path}.received`).messages.map((m) => m.control_id)).toEqual(['A', 'AFTER']);
      reader.exec('COMMIT');
    } finally {
      reader.close();
    }
  });

  test('a record whose bytes changed fails its CRC and is not taken in', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hl7c-log-'));
    const path = crashedStore(dir, ['A']);
    const bad = encodeRecord({ ...receivedEntry('BAD'), id: 2 });
    bad.writeUInt8(bad.readUInt8(bad.length - 3) ^ 0xff, bad.length - 3);
    appendFileSync(`${path}.received`, bad);
    expect((await open(path).listMessages()).map((m) => m.control_id)).toEqual(['A']);
  });

  test('a new writer numbers on from the logged messages, and empties the log once it holds them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hl7c-log-'));
    const path = crashedStore(dir, ['A', 'B']);
    const writer = open(path);
    writer.openForWriting();
    expect(statSync(`${path}.received`).size).toBe(0);
    expect(await writer.record(receivedEntry('C'))).toBe(3);
    expect((await writer.listMessages()).map((m) => [m.id, m.control_id])).toEqual([
      [1, 'A'],
      [2, 'B'],
      [3, 'C'],
    ]);
  });

  test('the log is emptied once past its limit and all in SQLite, but not while a reader keeps a checkpoint from finishing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hl7c-log-'));
    const store = new SqliteStore(join(dir, 'store.db'), { synchronous: 'NORMAL', receivedLogLimitBytes: 1024 });
    opened.push(store);
    const logSize = () => statSync(store.receivedLogPath).size;
    // A reader in the middle of a read transaction: the checkpoint cannot copy past it.
    const Database = (await import('better-sqlite3')).default;
    const reader = new Database(store.path, { readonly: true });
    try {
      await store.record(receivedEntry('FIRST'));
      store.ingestWaiting();
      reader.exec('BEGIN');
      reader.prepare('SELECT COUNT(*) FROM messages').get();
      for (let i = 0; i < 10; i++) await store.record(receivedEntry(`HELD-${i}`));
      store.ingestWaiting();
      expect(logSize()).toBeGreaterThan(1024);
      reader.exec('COMMIT');
    } finally {
      reader.close();
    }
    await store.record(receivedEntry('LAST'));
    store.ingestWaiting();
    expect(logSize()).toBe(0);
    // Emptied only because SQLite has it all: a fresh reader finds every message.
    expect((await open(store.path).listMessages()).map((m) => m.control_id)).toEqual(['FIRST', ...Array.from({ length: 10 }, (_, i) => `HELD-${i}`), 'LAST']);
  });

  test('with durability FULL, record() resolves only after the log is synced, and many records share a sync', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hl7c-log-'));
    const store = open(join(dir, 'store.db'), 'FULL');
    const ids = await Promise.all(Array.from({ length: 50 }, (_, i) => store.record(receivedEntry(`M${i}`))));
    expect(ids).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect((await store.listMessages())).toHaveLength(50);
    expect(store.receivedLogSyncs).toBeGreaterThan(0);
    expect(store.receivedLogSyncs).toBeLessThan(50);
  });

  test('a second serve on a store in use by a live process is refused; a dead owner is taken over', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hl7c-log-'));
    const path = join(dir, 'store.db');
    const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'], { stdio: 'ignore' });
    try {
      const first = open(path);
      first.db.prepare('INSERT INTO store_owner (id, pid, since) VALUES (1, ?, 0)').run(other.pid);
      await expect(first.openForWriting()).rejects.toThrow(new RegExp(`in use by another hl7c serve \\(pid ${other.pid}\\)`));
    } finally {
      other.kill('SIGKILL');
      await new Promise((r) => other.once('exit', r));
    }
    const second = open(path);
    await second.openForWriting();
    expect(second.db.prepare('SELECT pid FROM store_owner').get()).toEqual({ pid: process.pid });
  });

  test('when SQLite cannot take received messages, it is reported, they stay in the log, and go in once it can', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hl7c-log-'));
    const errors: string[] = [];
    const store = new SqliteStore(join(dir, 'store.db'), { synchronous: 'NORMAL', onIngestError: (err) => errors.push(err.message) });
    opened.push(store);
    store.openForWriting();
    const Database = (await import('better-sqlite3')).default;
    const other = new Database(store.path);
    try {
      // Every insert of a message fails, as on a full or failing disk; reads still work.
      other.exec("CREATE TRIGGER refuse BEFORE INSERT ON messages BEGIN SELECT RAISE(ABORT, 'database or disk is full (simulated)'); END");
      await store.record(receivedEntry('HELD'));
      await waitFor(() => errors.length > 0, 5000, 'the failure reported');
      expect(errors[0]).toMatch(/disk is full \(simulated\)/);
      // Still acknowledged-safe: a reader opening the store now would find it in the log.
      expect(readFileSync(`${store.path}.received`).includes(Buffer.from('HELD'))).toBe(true);
      // … and it shows where an operator looks.
      const admin = await startAdminServer(store, 0);
      try {
        const health = (await (await fetch(`http://127.0.0.1:${admin.port}/health`)).json()) as { status: string; store?: { waiting: number; error: string } };
        expect(health.status).toBe('degraded');
        expect(health.store).toMatchObject({ waiting: 1, error: expect.stringMatching(/disk is full/) as unknown });
        const metrics = await (await fetch(`http://127.0.0.1:${admin.port}/metrics`)).text();
        expect(metrics).toMatch(/hl7c_store_waiting_messages 1/);
        expect(metrics).toMatch(/hl7c_store_ingest_failures [1-9]/);
      } finally {
        await admin.close();
      }
      other.exec('DROP TRIGGER refuse');
      await waitFor(() => (other.prepare('SELECT COUNT(*) AS n FROM messages').get() as { n: number }).n === 1, 5000, 'taken in on a retry');
      expect(store.nextDeliveries('adt-in', 'webhook', 10).map((d) => d.control_id)).toEqual(['HELD']);
    } finally {
      other.close();
    }
  });

  test('appends that fail (here: a full device) reject, so their messages are not acknowledged', async () => {
    const log = new ReceivedLog('/dev/full', false, 0);
    try {
      const appends = [log.append({ ...receivedEntry('A'), id: 1 }), log.append({ ...receivedEntry('B'), id: 2 })];
      for (const a of appends) await expect(a).rejects.toThrow(/ENOSPC/);
    } finally {
      log.close();
    }
  });

  test('a message the store cannot take (disk full) is answered AE with the reason, not AA', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hl7c-log-'));
    writeFileSync(join(dir, 'adt.yaml'), adtSpec());
    class FullDisk extends SqliteStore {
      override record(): Promise<number> {
        return Promise.reject(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }));
      }
    }
    const store = new FullDisk(join(dir, 'store.db'));
    opened.push(store);
    const { logger, lines } = memoryLogger();
    const host = new ChannelHost(store, logger);
    await host.start();
    const { channels } = await compileChannels([join(dir, 'adt.yaml')], dir, { TEST_WEBHOOK_URL: 'http://127.0.0.1:9/' });
    await host.apply(channels!);
    const client = new MllpClient({ host: '127.0.0.1', port: host.ports()['adt-in']! });
    try {
      const ack = await client.send(adtMessage('NOT-STORED'));
      expect(ack.code).toBe('AE');
      expect(ack.errors.join(' ')).toMatch(/could not be stored; send it again/);
      // Asked for an accept ACK and an application ACK: not committed is a CE (send again) alone, no AA follows it.
      // Replies keep the order of messages, so the next message's ACK shows nothing came between.
      const peer = await RawPeer.connect(host.ports()['adt-in']!);
      try {
        await peer.write(frame(adtMessage('NOT-STORED-2').replace('|P|2.5.1', '|P|2.5.1|||AL|AL')), frame(adtMessage('NOT-STORED-3')));
        const replies = (await peer.waitForFrames(2)).map((f) => readAck(parseMessage(f)));
        expect(replies.map((a) => `${a.code} ${a.acknowledgedControlId}`)).toEqual(['CE NOT-STORED-2', 'AE NOT-STORED-3']);
      } finally {
        await peer.end();
      }
      expect(lines.some((l) => l.msg === 'could not store a message; answering with an error' && String(l.err).includes('ENOSPC'))).toBe(true);
    } finally {
      await client.close();
      await host.close();
    }
  });
});
