import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, test } from 'vitest';
import { SqliteStore } from '../../runtime/serve/index.js';
import { encodeRecord, readReceivedLog, ReceivedLog } from '../../runtime/store/received-log.js';
import { receivedEntry } from './helpers.js';

const opened: SqliteStore[] = [];
afterEach(async () => {
  for (const s of opened.splice(0)) await s.close();
});

function open(path: string): SqliteStore {
  const store = new SqliteStore(path, { synchronous: 'FULL' });
  opened.push(store);
  return store;
}

/** A store with its tables and nothing else, as a first start leaves it. */
function emptyStore(dir: string): string {
  const path = join(dir, 'store.db');
  const writer = new SqliteStore(path, { synchronous: 'NORMAL' });
  void writer.openForWriting();
  void writer.close();
  return path;
}

const records = (first: number, ...controlIds: string[]) => Buffer.concat(controlIds.map((c, i) => encodeRecord({ ...receivedEntry(c), id: first + i })));

describe('received-message log rotation (log and log.old, both read at start-up)', () => {
  test('start-up takes in the records of both files, the old one first, each once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hl7c-rotate-'));
    const path = emptyStore(dir);
    writeFileSync(`${path}.received.old`, records(1, 'A', 'B'));
    writeFileSync(`${path}.received`, records(3, 'C'));
    const store = open(path);
    expect((await store.listMessages()).map((m) => [m.id, m.control_id])).toEqual([
      [1, 'A'],
      [2, 'B'],
      [3, 'C'],
    ]);
    expect(store.nextDeliveries('adt-in', 'webhook', 10).map((d) => d.control_id)).toEqual(['A', 'B', 'C']);
    // Opened again (the next start): nothing twice.
    expect(open(path).db.prepare('SELECT COUNT(*) AS n FROM deliveries').get()).toEqual({ n: 3 });
  });

  test('killed between the rename and the new log: the old file alone is read, and a writer numbers on from it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hl7c-rotate-'));
    const path = emptyStore(dir);
    writeFileSync(`${path}.received.old`, records(1, 'A', 'B'));
    rmSync(`${path}.received`);
    const writer = open(path);
    await writer.openForWriting('node-1');
    expect(await writer.record(receivedEntry('C'))).toBe(3);
    expect((await writer.listMessages()).map((m) => m.control_id)).toEqual(['A', 'B', 'C']);
  });

  test('an old file whose records SQLite already holds, beside a current one that it does not: each message once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hl7c-rotate-'));
    const path = emptyStore(dir);
    writeFileSync(`${path}.received`, records(1, 'A', 'B'));
    await open(path).listMessages();
    writeFileSync(`${path}.received.old`, records(1, 'A', 'B'));
    writeFileSync(`${path}.received`, records(3, 'C'));
    expect((await open(path).listMessages()).map((m) => [m.id, m.control_id])).toEqual([
      [1, 'A'],
      [2, 'B'],
      [3, 'C'],
    ]);
  });

  test('a torn last record of the current file is left out; the old file is read whole', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hl7c-rotate-'));
    const path = emptyStore(dir);
    writeFileSync(`${path}.received.old`, records(1, 'A'));
    const torn = records(2, 'B', 'TORN');
    writeFileSync(`${path}.received`, torn.subarray(0, torn.length - 7));
    expect((await open(path).listMessages()).map((m) => m.control_id)).toEqual(['A', 'B']);
  });

  test('a sync in flight when the log rotates completes on the renamed file: its message is acknowledged and start-up finds it there', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hl7c-rotate-'));
    const path = join(dir, 'log');
    const log = new ReceivedLog(path, true, 0);
    try {
      const first = log.append({ ...receivedEntry('IN-FLIGHT'), id: 1 });
      // The flush runs in this turn's check phase, before this; its fdatasync is in the thread pool now.
      await new Promise((r) => setImmediate(r));
      expect(log.idle).toBe(false);
      log.rotate();
      // Until that sync is done, the file before it may not be dropped by another rotation.
      expect(log.canRotate).toBe(false);
      const second = log.append({ ...receivedEntry('AFTER'), id: 2 });
      await Promise.all([first, second]);
      expect(log.canRotate).toBe(true);
      expect(readReceivedLog(`${path}.old`).messages.map((m) => m.control_id)).toEqual(['IN-FLIGHT']);
      expect(readReceivedLog(path).messages.map((m) => m.control_id)).toEqual(['AFTER']);
    } finally {
      log.close();
    }
  });

  test('a store under load rotates its log, each time only once the old file is in SQLite on disk', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hl7c-rotate-'));
    const store = new SqliteStore(join(dir, 'store.db'), { synchronous: 'FULL', receivedLogLimitBytes: 4096 });
    opened.push(store);
    await store.openForWriting('node-1');
    for (let round = 0; round < 10; round++) {
      await Promise.all(Array.from({ length: 8 }, (_, i) => store.record(receivedEntry(`R${round}-${i}`))));
      store.ingestWaiting();
    }
    expect(store.receivedLogRotations).toBeGreaterThan(2);
    // What a start-up now would find in the files: the messages of the last rotations, none lost.
    const inLogs = [...readReceivedLog(`${store.receivedLogPath}.old`).messages, ...readReceivedLog(store.receivedLogPath).messages];
    expect(inLogs.length).toBeGreaterThan(0);
    const db = new Database(store.path, { readonly: true });
    try {
      const stored = (db.prepare('SELECT control_id FROM messages ORDER BY id').all() as Array<{ control_id: string }>).map((r) => r.control_id);
      expect(stored).toHaveLength(80);
    } finally {
      db.close();
    }
  });
});

/**
 * A writer in a child process: 8 callers record messages as fast as the store lets them (with
 * --durability disk, a log rotated every few dozen messages) and print `acked <control id>` once
 * record() resolved, as an ACK would go out.
 */
const WRITER = `
const { SqliteStore } = await import(process.argv[1]);
const store = new SqliteStore(process.argv[2], { synchronous: 'FULL', receivedLogLimitBytes: 8192 });
await store.openForWriting('writer');
const prefix = process.argv[3];
let n = 0;
const entry = (id) => ({
  channel: 'adt-in', spec_version: 'v1', source: 'test', received_at: Date.now(), control_id: id, message_type: 'ADT^A08',
  raw: Buffer.from('MSH|^~\\\\&|EPIC|GH|HL7C|APP|20261125||ADT^A08|' + id + '|P|2.5.1\\rPID|1||E100^^^EPI^MR\\r'),
  status: 'accepted', reason: null, identifiers: null, ack_code: 'AA', ack: null,
  deliveries: [{ destination: 'webhook', payload: Buffer.from(id) }],
});
await Promise.all(Array.from({ length: 8 }, async (_, c) => {
  for (;;) {
    const id = prefix + '-' + c + '-' + n++;
    await store.record(entry(id));
    process.stdout.write('acked ' + id + '\\n');
  }
}));
`;

interface Run {
  acked: string[];
  signal: string | null;
  stderr: string;
}

/** Runs the writer until it has acknowledged `killAfter` messages (then SIGKILL), or until a fault point kills it. */
function runWriter(storePath: string, prefix: string, killAfter: number, fault?: string): Promise<Run> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', WRITER, join(process.cwd(), 'dist/runtime/store/sqlite-store.js'), storePath, prefix], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, HL7C_FAULT: fault ?? '' },
  });
  const acked: string[] = [];
  let out = '';
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  child.stdout.on('data', (c: Buffer) => {
    out += c.toString();
    const lines = out.split('\n');
    out = lines.pop()!;
    for (const l of lines) if (l.startsWith('acked ')) acked.push(l.slice(6));
    if (acked.length >= killAfter) child.kill('SIGKILL');
  });
  return new Promise((resolve) => child.once('exit', (_code, signal) => resolve({ acked, signal, stderr })));
}

describe('a writer process SIGKILLed while its log syncs and rotates', () => {
  test('every message acknowledged before any of the kills is stored once, whole, after the restarts', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hl7c-rotate-kill-'));
    const storePath = join(dir, 'store.db');
    const acked: string[] = [];
    // Killed at the fault points (an fdatasync in flight; renamed to .old with the new log not made),
    // and from outside at moments the writer does not choose.
    const runs: Array<[killAfter: number, fault?: string]> = [
      [Infinity, 'during-log-sync:15'],
      [Infinity, 'during-log-rotation:2'],
      [137],
      [Infinity, 'during-log-sync:40'],
      [61],
      [Infinity, 'during-log-rotation:1'],
      [250],
    ];
    for (const [i, [killAfter, fault]] of runs.entries()) {
      const run = await runWriter(storePath, `K${i}`, killAfter, fault);
      expect(run.signal, run.stderr).toBe('SIGKILL');
      if (fault) expect(run.stderr).toContain(`fault point ${fault.split(':')[0]} reached`);
      acked.push(...run.acked);
    }
    expect(acked.length).toBeGreaterThan(400);
    const store = open(storePath);
    const stored = await store.listMessages({ limit: 100_000 });
    const count = new Map<string, number>();
    for (const m of stored) count.set(m.control_id!, (count.get(m.control_id!) ?? 0) + 1);
    expect(acked.filter((id) => count.get(id) !== 1)).toEqual([]);
    expect([...count].filter(([, n]) => n > 1)).toEqual([]);
    for (const m of stored) expect(m.raw!.toString()).toContain(`|ADT^A08|${m.control_id}|P|`);
  }, 120_000);
});
