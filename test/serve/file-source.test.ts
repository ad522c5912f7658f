import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { startServing } from '../../src/serve/serve.js';
import { adtMessage, memoryLogger, waitFor } from './helpers.js';

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const spec = (dir: string) => `channel: inbox
source: { file: { dir: ${dir}/in, done_dir: ${dir}/blocked/done } }
destinations: { out: { file: { dir: ${dir}/out, file_name: "{message_id}.hl7" } } }
`;

async function serve(dir: string) {
  writeFileSync(join(dir, 'inbox.yaml'), spec(dir));
  const memory = memoryLogger();
  const serving = await startServing({ specs: [join(dir, 'inbox.yaml')], storePath: join(dir, 'store.db'), cwd: dir, logger: memory.logger, watch: false });
  return { serving, lines: memory.lines };
}

/** What the destination received: one file per stored message, named by message id. */
const delivered = (dir: string) => (existsSync(join(dir, 'out')) ? readdirSync(join(dir, 'out')).length : 0);

describe('file source when the move to done_dir fails (issue 10, case 13)', () => {
  test('a stored file is never ingested again; the failure is logged once; the move is retried until it works', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hl7c-filesrc-'));
    mkdirSync(join(dir, 'in'));
    // done_dir lies under a plain file: it cannot be created, so every move fails.
    writeFileSync(join(dir, 'blocked'), 'not a directory');
    const { serving, lines } = await serve(dir);
    cleanups.push(() => serving.close());

    writeFileSync(join(dir, 'in', 'a.hl7'), adtMessage('FA1'));
    await waitFor(() => delivered(dir) === 1, 10_000, 'a.hl7 delivered');
    // Later files are read in later polls, each of which passes a.hl7 (first by name) again.
    for (const name of ['b', 'c', 'd']) {
      writeFileSync(join(dir, 'in', `${name}.hl7`), adtMessage(`F${name.toUpperCase()}1`));
      await waitFor(() => existsSync(join(dir, 'in', `.${name}.hl7.stored`)), 10_000, `${name}.hl7 stored`);
    }
    // The marker is written when the messages are stored; delivery and the failed move follow it.
    await waitFor(() => delivered(dir) === 4, 10_000, 'd.hl7 delivered');
    const failures = () => lines.filter((l) => String(l.msg).includes('could not be moved'));
    await waitFor(() => failures().length === 4, 10_000, 'the move of d.hl7 tried');
    expect(failures().map((l) => l.file)).toEqual(['a.hl7', 'b.hl7', 'c.hl7', 'd.hl7']);
    expect(delivered(dir)).toBe(4);

    // The way is cleared: every file moves, and none of them is read again on the way.
    rmSync(join(dir, 'blocked'));
    await waitFor(() => ['a', 'b', 'c', 'd'].every((n) => existsSync(join(dir, 'blocked', 'done', `${n}.hl7`))), 10_000, 'files moved');
    // Each marker goes right after its file has moved: wait for the last one, then nothing is left.
    await waitFor(() => readdirSync(join(dir, 'in')).length === 0, 10_000, 'markers removed');
    expect(readdirSync(join(dir, 'in'))).toEqual([]);
    expect(delivered(dir)).toBe(4);
  });

  test('after a restart, a file whose messages were stored is not read again', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hl7c-filesrc-'));
    mkdirSync(join(dir, 'in'));
    writeFileSync(join(dir, 'blocked'), 'not a directory');
    const first = await serve(dir);
    writeFileSync(join(dir, 'in', 'a.hl7'), adtMessage('RA1'));
    await waitFor(() => existsSync(join(dir, 'in', '.a.hl7.stored')), 10_000, 'a.hl7 stored');
    await waitFor(() => delivered(dir) === 1, 10_000, 'a.hl7 delivered');
    await first.serving.close();

    const second = await serve(dir);
    cleanups.push(() => second.serving.close());
    // A new file is read in a poll that passes a.hl7 first.
    writeFileSync(join(dir, 'in', 'b.hl7'), adtMessage('RB1'));
    await waitFor(() => existsSync(join(dir, 'in', '.b.hl7.stored')), 10_000, 'b.hl7 stored');
    await waitFor(() => delivered(dir) === 2, 10_000, 'b.hl7 delivered');
    expect((await second.serving.store.listMessages()).map((m) => m.control_id)).toEqual(['RA1', 'RB1']);
  });
});

describe('file source and files still being written (tester finding: truncated messages accepted)', () => {
  const settleSpec = (dir: string) => `channel: inbox
source: { file: { dir: ${dir}/in, done_dir: ${dir}/done, pattern: "*", settle_ms: 1500 } }
destinations: { out: { file: { dir: ${dir}/out, file_name: "{message_id}.hl7" } } }
`;

  test('a writer that pauses mid-file: the message is read whole, once; temporary names are never read', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hl7c-filesettle-'));
    mkdirSync(join(dir, 'in'));
    writeFileSync(join(dir, 'inbox.yaml'), settleSpec(dir));
    const memory = memoryLogger();
    const serving = await startServing({ specs: [join(dir, 'inbox.yaml')], storePath: join(dir, 'store.db'), cwd: dir, logger: memory.logger, watch: false });
    cleanups.push(() => serving.close());

    const whole = `${adtMessage('PART1', 'E100', 'A01')}PV1|1|I|W^1^1\rOBX|1|NM|8867-4^Heart rate^LN||72|/min\r`;
    const cut = whole.indexOf('\rPV1|');
    expect(cut).toBeGreaterThan(0);
    // A separate process writes MSH+PID, pauses (less than settle_ms, several polls), then the rest.
    const writer = spawn(process.execPath, ['-e', `
      const fs = require('node:fs');
      const [path, a, b] = process.argv.slice(1);
      const fd = fs.openSync(path, 'w');
      fs.writeSync(fd, a);
      setTimeout(() => { fs.writeSync(fd, b); fs.closeSync(fd); }, 900);
    `, join(dir, 'in', 'slow.hl7'), whole.slice(0, cut), whole.slice(cut)]);
    // Write-then-rename: the temporary file sits there, complete-looking but unfinished, for a while.
    writeFileSync(join(dir, 'in', 'next.hl7.part'), adtMessage('PART2'));
    writeFileSync(join(dir, 'in', 'next.tmp'), adtMessage('PART3'));
    await new Promise<void>((resolve) => writer.on('exit', () => resolve()));

    await waitFor(() => delivered(dir) === 1, 15_000, 'slow.hl7 delivered');
    const out = readdirSync(join(dir, 'out'));
    expect(readFileSync(join(dir, 'out', out[0]!), 'latin1')).toContain('\rPV1|1|I|W^1^1\rOBX|1|NM|8867-4^Heart rate^LN||72|/min');
    const rows = await serving.store.listMessages();
    expect(rows.map((m) => m.control_id)).toEqual(['PART1']);
    expect(readdirSync(join(dir, 'in')).sort()).toEqual(['next.hl7.part', 'next.tmp']);

    renameSync(join(dir, 'in', 'next.hl7.part'), join(dir, 'in', 'next.hl7'));
    await waitFor(() => delivered(dir) === 2, 15_000, 'next.hl7 delivered after the rename');
    expect((await serving.store.listMessages()).map((m) => m.control_id).sort()).toEqual(['PART1', 'PART2']);
  });
});
