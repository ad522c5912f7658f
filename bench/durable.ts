import { spawn } from 'node:child_process';
import { closeSync, fdatasyncSync, mkdtempSync, openSync, readdirSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from './corpus.js';

export const DURABLE_SPEC = `channel: bench-in
source:
  mllp:
    host: 127.0.0.1
    port: 0
identifiers:
  patient: { kind: patient, type_code: MR }
map:
  message_id: { path: MSH-10 }
  event: { path: MSH-9.2 }
  family: { path: PID-5.1 }
destinations:
  files:
    file:
      dir: \${BENCH_OUT}
      file_name: "{message_id}.json"
`;

/**
 * Starts `hl7c serve` (store-before-ACK, one file destination) in a child process for the
 * durable round-trip benchmark: on a SQLite file of its own, or on `store` (a PostgreSQL
 * address; nodes given the same one share its queues, and `outDir` is then theirs to share).
 */
export async function startDurableServer(durability: 'disk' | 'process', store?: string, outDir?: string): Promise<{ port: number; stop: () => void; delivered: () => number }> {
  const dir = mkdtempSync(join(tmpdir(), 'hl7c-bench-'));
  writeFileSync(join(dir, 'bench.yaml'), DURABLE_SPEC);
  const out = outDir ?? join(dir, 'out');
  const child = spawn(process.execPath, [join(REPO_ROOT, 'bin/hl7c.js'), '--log-level', 'error', 'serve', join(dir, 'bench.yaml'), '--store', store ?? join(dir, 'store.db'), '--durability', durability, '--no-watch'], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, BENCH_OUT: out, HL7C_LOG_LEVEL: 'error' },
  });
  const port = await new Promise<number>((res, rej) => {
    let out = '';
    child.stdout!.on('data', (c) => {
      out += c;
      const m = /channel bench-in on port (\d+)/.exec(out);
      if (m) res(Number(m[1]));
    });
    child.once('exit', (code) => rej(new Error(`hl7c serve exited ${code}`)));
  });
  const delivered = () => {
    try {
      return readdirSync(out).filter((n) => n.endsWith('.json')).length;
    } catch {
      return 0;
    }
  };
  return { port, stop: () => child.kill('SIGKILL'), delivered };
}

/**
 * The disk's own limit for an ACK that survives a power cut on one connection: appends of a
 * 2 KB record, each followed by fdatasync, in the directory the durable server uses. Returns
 * the rate and the median time of one append + fdatasync.
 */
export function measureFdatasync(ms: number): { perSecond: number; p50Ms: number } {
  const dir = mkdtempSync(join(tmpdir(), 'hl7c-fsync-'));
  const fd = openSync(join(dir, 'log'), 'a');
  const record = Buffer.alloc(2048, 0x41);
  const times: number[] = [];
  const start = process.hrtime.bigint();
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const t0 = process.hrtime.bigint();
    writeSync(fd, record);
    fdatasyncSync(fd);
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  closeSync(fd);
  rmSync(dir, { recursive: true });
  times.sort((a, b) => a - b);
  return { perSecond: times.length / seconds, p50Ms: times[Math.floor(times.length / 2)] ?? 0 };
}

/**
 * A schema of its own for a PostgreSQL benchmark run on HL7C_BENCH_PG (default: the local test
 * database), dropped by `drop`; null when PostgreSQL cannot be reached (those rows are skipped).
 */
export async function benchPostgres(): Promise<{ url: string; drop: () => Promise<void> } | null> {
  const base = process.env.HL7C_BENCH_PG ?? 'postgres://postgres@127.0.0.1:5432/test';
  const name = `hl7c_bench_${process.pid}_${Date.now().toString(36)}`;
  const { default: pg } = await import('pg');
  const admin = async (sql: string) => {
    const client = new pg.Client({ connectionString: base, connectionTimeoutMillis: 3000 });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };
  try {
    await admin('SELECT 1');
  } catch {
    return null;
  }
  return { url: `${base}?schema=${name}`, drop: () => admin(`DROP SCHEMA IF EXISTS ${name} CASCADE`) };
}
