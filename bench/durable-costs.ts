import { mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { acknowledgements, receive } from '../runtime/index.js';
import { deliveryPayloads, runChannel } from '../runtime/channel/channel.js';
import type { ChannelDefinition } from '../runtime/channel/channel.js';
import { writeNewFile } from '../runtime/serve/senders.js';
import { encodeRecord } from '../runtime/store/received-log.js';
import type { LoggedMessage } from '../runtime/store/received-log.js';
import { SqliteStore } from '../runtime/store/sqlite-store.js';
import type { Store } from '../runtime/store/store.js';
import type { NewMessage } from '../runtime/store/types.js';
import { compileChannels } from '../src/serve/serve.js';
import { benchPostgres, DURABLE_SPEC } from './durable.js';
import { cpuUs } from './listen.js';

/** One step of the durable path and what it costs per message, in CPU time (user + system). */
export interface CostRow {
  step: string;
  /** µs of CPU per message in this process (the event loop and, for file and fs calls, libuv's threads). */
  cpuUs: number;
  /** µs of CPU per message in the PostgreSQL backends serving it, where that applies. */
  backendUs?: number;
}

const cpuNow = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

/** CPU µs per call of `work`, run `n` times (after a warm-up of n / 5). */
function perCall(n: number, work: (i: number) => void): number {
  for (let i = 0; i < n / 5; i++) work(i);
  const c0 = cpuNow();
  for (let i = 0; i < n; i++) work(i);
  return (cpuNow() - c0) / n;
}

async function perCallAsync(n: number, work: (i: number) => Promise<void>): Promise<number> {
  for (let i = 0; i < n / 5; i++) await work(i);
  const c0 = cpuNow();
  for (let i = 0; i < n; i++) await work(i);
  return (cpuNow() - c0) / n;
}

/**
 * The per-message cost of each step `hl7c serve` takes for a message on the durable path, with
 * the benchmark's spec and message, measured one step at a time in this process. What the plain
 * MLLP server does (read the frame, parse, build the ACK) is the first row; the sockets cost the
 * same on both and are left out.
 */
export async function measureDurableCosts(payload: (id: number) => string, n = 4000): Promise<CostRow[]> {
  const dir = mkdtempSync(join(tmpdir(), 'hl7c-costs-'));
  const rows: CostRow[] = [];
  try {
    writeFileSync(join(dir, 'bench.yaml'), DURABLE_SPEC);
    const { channels } = await compileChannels([join(dir, 'bench.yaml')], dir, { BENCH_OUT: join(dir, 'out') });
    const definition: ChannelDefinition = channels![0]!.definition;
    const messages = Array.from({ length: n * 2 }, (_, i) => Buffer.from(payload(i)));

    rows.push({
      step: 'plain server: parse, build the ACK',
      cpuUs: perCall(n, (i) => {
        const r = receive(messages[i]!);
        if (r.ok) acknowledgements(r.message, 'accept');
      }),
    });

    const entries: NewMessage[] = [];
    rows.push({
      step: 'run the channel: parse, identifiers, map to JSON, ACK, queue payload',
      cpuUs: perCall(n, (i) => {
        const result = runChannel(definition, messages[i]!);
        const deliveries = deliveryPayloads(result, { channel: definition, raw: messages[i]! });
        if (entries.length < n * 1.2) {
          entries.push({ channel: definition.name, spec_version: 'v', source: 'mllp:127.0.0.1:1', received_at: Date.now(), control_id: result.message?.controlId ?? null, message_type: 'ADT^A01', raw: messages[i]!, status: result.status, reason: null, identifiers: result.identifiers, ack_code: 'AA', ack: Buffer.concat(result.ack ? [result.ack] : []), deliveries });
        }
      }),
    });

    const logged: LoggedMessage[] = entries.map((e, i) => ({ ...e, id: i + 1 }));
    const records: Buffer[] = [];
    rows.push({ step: 'encode the log record (JSON head, CRC-32)', cpuUs: perCall(n, (i) => void records.push(encodeRecord(logged[i % logged.length]!))) });
    const fd = openSync(join(dir, 'log'), 'w');
    rows.push({ step: 'write the log record (one write of 8 records)', cpuUs: perCall(n / 8, (i) => void writeSync(fd, Buffer.concat(records.slice(i * 8, i * 8 + 8)))) / 8 });

    // SQLite: the writer's own connections, as serve uses them (checkpoints in their own thread).
    const store = new SqliteStore(join(dir, 'store.db'), { synchronous: 'NORMAL' });
    await store.openForWriting('costs');
    let next = 0;
    const ingest = async (batch: number) => {
      await Promise.all(Array.from({ length: batch }, () => store.record(entries[next++ % entries.length]!)));
    };
    // The log append (above) is timed apart: here only the take-over into SQLite counts.
    let ingestUs = 0;
    for (let round = 0; round < n / 64; round++) {
      await ingest(64);
      const c0 = cpuNow();
      store.ingestWaiting();
      ingestUs += cpuNow() - c0;
    }
    rows.push({ step: 'SQLite: insert the message and its queue entry (batches of 64, WAL, counts by trigger)', cpuUs: ingestUs / (n - (n % 64)) });
    rows.push({
      step: 'SQLite: claim the entry, record the attempt and its event (batches of 8)',
      cpuUs:
        (await perCallAsync(n / 8, async () => {
          const claim = await store.claimDeliveries({ channel: definition.name, destination: 'files', limit: 8, owner: 'costs', leaseMs: 30_000, ordered: true });
          for (const d of claim.deliveries) await store.finishAttempt({ ...d, attempts: 1 }, { state: 'sent', detail: 'wrote it' }, Date.now());
          store.flushBookkeeping();
        })) / 8,
    });
    await store.close();

    rows.push({ step: 'file destination: write a new file (temporary file, link, unlink; thread pool)', cpuUs: await perCallAsync(n / 2, (i) => writeNewFile(dir, `m${i}.json`, entries[0]!.deliveries[0]!.payload, 'suffix').then(() => undefined)) });

    const pg = await benchPostgres();
    if (pg) {
      const { PostgresStore } = await import('../runtime/store/postgres/postgres-store.js');
      const pgStore: Store & { pool: import('pg').Pool } = await PostgresStore.open(pg.url);
      try {
        await pgStore.openForWriting('costs');
        const backends = async () => (await pgStore.pool.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE application_name = 'hl7c' AND datname = current_database()")).rows.map((r) => r.pid);
        const batches = n / 8;
        await Promise.all(Array.from({ length: 8 }, (_, i) => pgStore.record(entries[i]!)));
        const pids = await backends();
        const b0 = pids.reduce((s, p) => s + cpuUs(p), 0);
        const c0 = cpuNow();
        for (let b = 0; b < batches; b++) await Promise.all(Array.from({ length: 8 }, (_, i) => pgStore.record(entries[(b * 8 + i) % entries.length]!)));
        const cpu = (cpuNow() - c0) / n;
        const backend = ((await backends()).reduce((s, p) => s + cpuUs(p), 0) - b0) / n;
        rows.push({ step: 'PostgreSQL: record (one statement per batch of 8, commit waits for the WAL flush)', cpuUs: cpu, backendUs: backend });
      } finally {
        await pgStore.close();
        await pg.drop().catch(() => undefined);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}
