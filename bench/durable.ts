import { spawn } from 'node:child_process';
import { closeSync, fdatasyncSync, mkdtempSync, openSync, readdirSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from './corpus.js';

const SPEC = `channel: bench-in
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
 * Starts `hl7c serve` (SQLite store, store-before-ACK, one file destination) in a child process
 * for the durable round-trip benchmark.
 */
export async function startDurableServer(durability: 'disk' | 'process'): Promise<{ port: number; stop: () => void; delivered: () => number }> {
  const dir = mkdtempSync(join(tmpdir(), 'hl7c-bench-'));
  writeFileSync(join(dir, 'bench.yaml'), SPEC);
  const child = spawn(process.execPath, [join(REPO_ROOT, 'bin/hl7c.js'), '--log-level', 'error', 'serve', join(dir, 'bench.yaml'), '--store', join(dir, 'store.db'), '--durability', durability, '--no-watch'], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, BENCH_OUT: join(dir, 'out'), HL7C_LOG_LEVEL: 'error' },
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
      return readdirSync(join(dir, 'out')).filter((n) => n.endsWith('.json')).length;
    } catch {
      return 0;
    }
  };
  return { port, stop: () => child.kill('SIGKILL'), delivered };
}

/**
 * The disk's own limit for an ACK that survives a power cut on one connection: appends of a
 * 2 KB record, each followed by fdatasync, in the directory the durable server uses.
 */
export function measureFdatasync(ms: number): number {
  const dir = mkdtempSync(join(tmpdir(), 'hl7c-fsync-'));
  const fd = openSync(join(dir, 'log'), 'a');
  const record = Buffer.alloc(2048, 0x41);
  let count = 0;
  const start = process.hrtime.bigint();
  const until = Date.now() + ms;
  while (Date.now() < until) {
    writeSync(fd, record);
    fdatasyncSync(fd);
    count++;
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  closeSync(fd);
  rmSync(dir, { recursive: true });
  return count / seconds;
}
