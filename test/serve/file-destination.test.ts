import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { MllpClient } from '../../runtime/index.js';
import { writeNewFile } from '../../runtime/serve/senders.js';
import { startServing } from '../../src/serve/serve.js';
import { corpusFile } from '../corpus.js';
import { BIN, cli } from '../cli/helpers.js';
import { memoryLogger, waitFor } from './helpers.js';

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

// Three real ADTs from the corpus that all carry MSH-10 = MSG00001.
const SAME_CONTROL_ID = ['adt/fhirconv-adt-a01-v28.hl7', 'adt/fhirconv-adt-a03-v28.hl7', 'adt/fhirconv-adt-a08-v28.hl7'].map((f) => corpusFile(f));

const spec = `channel: archive
source: { mllp: { host: 127.0.0.1, port: 0 } }
transform:
  - set: { path: MSH-5, value: ARCHIVE }
destinations:
  raw:
    file: { dir: $DIR/raw, file_name: "{control_id}.hl7", content: raw }
  out:
    file: { dir: $DIR/out, file_name: "{control_id}.hl7" }
  unnamed:
    file: { dir: $DIR/unnamed }
  strict:
    file: { dir: $DIR/strict, file_name: "{control_id}.hl7", on_exists: fail }
    retry: { attempts: 2, backoff_ms: 10, max_backoff_ms: 10 }
`;

async function serveArchive() {
  const dir = mkdtempSync(join(tmpdir(), 'hl7c-file-dest-'));
  writeFileSync(join(dir, 'archive.yaml'), spec.replaceAll('$DIR', dir));
  const { logger } = memoryLogger();
  const serving = await startServing({ specs: [join(dir, 'archive.yaml')], storePath: join(dir, 'store.db'), cwd: dir, env: {}, logger, watch: false });
  cleanups.push(() => serving.close());
  const client = new MllpClient({ host: '127.0.0.1', port: serving.ports().archive! });
  cleanups.push(() => client.close());
  return { dir, serving, client };
}

describe('file destination', () => {
  test('three messages with the same control id make three files; raw keeps the received bytes, output the rewritten message; on_exists: fail dead-letters', async () => {
    const { dir, serving, client } = await serveArchive();
    for (const bytes of SAME_CONTROL_ID) expect((await client.send(bytes)).code).toBe('AA');
    // A destination's folder is made with its first file: none yet is no file yet.
    const files = (sub: string) => (existsSync(join(dir, sub)) ? readdirSync(join(dir, sub)).filter((f) => !f.startsWith('.')).sort() : []);
    await waitFor(() => files('raw').length === 3 && files('out').length === 3 && files('unnamed').length === 3, 10_000, 'three files in raw/, out/ and unnamed/');
    // No file_name: an HL7 output is named .hl7, not .json.
    expect(files('unnamed')).toEqual(files('out'));

    // Sent one at a time, oldest first: the suffixes follow the order received.
    expect(files('raw')).toEqual(['MSG00001-2.hl7', 'MSG00001-3.hl7', 'MSG00001.hl7']);
    const raw = ['MSG00001.hl7', 'MSG00001-2.hl7', 'MSG00001-3.hl7'].map((f) => readFileSync(join(dir, 'raw', f)));
    raw.forEach((bytes, i) => expect(bytes.equals(SAME_CONTROL_ID[i]!)).toBe(true));
    const out = ['MSG00001.hl7', 'MSG00001-2.hl7', 'MSG00001-3.hl7'].map((f) => readFileSync(join(dir, 'out', f), 'latin1'));
    out.forEach((text, i) => {
      // What the channel produced: MSH-5 rewritten, everything else as received.
      expect(text).toBe(SAME_CONTROL_ID[i]!.toString('latin1').replace(/^(MSH(?:\|[^|]*){3})\|[^|]*/, '$1|ARCHIVE'));
      expect(text).toContain('|ARCHIVE|');
    });

    // on_exists: fail: the first is written, the other two fail and are dead-lettered, visibly.
    await waitFor(
      async () => {
        for (const m of await serving.store.listMessages()) if (!(await serving.store.getMessage(m.id))!.deliveries.every((d) => d.state === 'sent' || d.state === 'dead')) return false;
        return true;
      },
      10_000,
      'all deliveries settled',
    );
    expect(files('strict')).toEqual(['MSG00001.hl7']);
    expect(readFileSync(join(dir, 'strict', 'MSG00001.hl7'), 'latin1')).toBe(out[0]);
    const histories = await Promise.all((await serving.store.listMessages()).map(async (m) => (await serving.store.getMessage(m.id))!));
    const strict = histories.map((h) => h.deliveries.find((d) => d.destination === 'strict')!);
    expect(strict.map((d) => d.state)).toEqual(['sent', 'dead', 'dead']);
    expect(strict[1]!.last_error).toMatch(/MSG00001\.hl7 already exists .*on_exists: fail/);
    expect(strict[1]!.attempts).toBe(2);
    // Each attempt's detail names the file it wrote.
    const rawDetails = histories.map((h) => h.events.filter((e) => e.delivery_id === h.deliveries.find((d) => d.destination === 'raw')!.id && e.detail?.startsWith('wrote')).map((e) => e.detail));
    expect(rawDetails).toEqual([['wrote MSG00001.hl7'], ['wrote MSG00001-2.hl7'], ['wrote MSG00001-3.hl7']]);
  });

  test('writers racing for one name never overwrite each other: every write lands in its own file, whole', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hl7c-file-race-'));
    const payloads = Array.from({ length: 24 }, (_, i) => Buffer.from(`MSH|^~\\&|A|B|C|D|1||ADT^A08|SAME|P|2.5.1\rNTE|${i}|${'x'.repeat(5000 + i)}\r`));
    const names = await Promise.all(payloads.map((p) => writeNewFile(dir, 'SAME.hl7', p, 'suffix')));
    expect(new Set(names).size).toBe(24);
    const onDisk = readdirSync(dir).sort();
    expect(onDisk).toEqual([...names].sort());
    // Each file holds exactly one writer's bytes; no temporary files are left behind.
    const contents = onDisk.map((f) => readFileSync(join(dir, f)).toString('latin1')).sort();
    expect(contents).toEqual(payloads.map((p) => p.toString('latin1')).sort());
    const failed = await Promise.allSettled(payloads.slice(0, 4).map((p) => writeNewFile(dir, 'SAME.hl7', p, 'fail')));
    expect(failed.every((r) => r.status === 'rejected')).toBe(true);
    expect(readdirSync(dir)).toHaveLength(24);
  });

  test('relative directories in a spec are the spec\'s: hl7c serve started elsewhere reads ./in and writes ./out beside the spec, and preview says so', async () => {
    const root = mkdtempSync(join(tmpdir(), 'hl7c-relative-'));
    const specs = join(root, 'specs');
    const elsewhere = join(root, 'elsewhere');
    mkdirSync(specs);
    mkdirSync(elsewhere);
    writeFileSync(join(specs, 'drop.yaml'), 'channel: drop\nsource: { file: { dir: ./in } }\ndestinations:\n  archive: { file: { dir: ./out, file_name: "{control_id}.hl7" } }\n  copies: { file: { dir: "${COPY_DIR:-copies}", file_name: "{control_id}.hl7" } }\n');
    mkdirSync(join(specs, 'in'));
    const message = 'MSH|^~\\&|LAB|GH|HL7C|APP|20261202||ADT^A01|REL1|P|2.5.1\rPID|1||E1^^^EPI^MR\r';
    writeFileSync(join(specs, 'in', 'one.hl7'), message);
    const child = spawn(process.execPath, [BIN, 'serve', '../specs/drop.yaml', '--store', 'store.db', '--no-watch'], { cwd: elsewhere, env: { ...process.env, HL7C_LOG_LEVEL: 'warn' } });
    cleanups.push(() => new Promise((r) => (child.exitCode !== null ? r(undefined) : (child.once('exit', r), child.kill('SIGTERM')))));
    await waitFor(() => existsSync(join(specs, 'out', 'REL1.hl7')) && existsSync(join(specs, 'copies', 'REL1.hl7')), 20_000, 'the file beside the spec');
    expect(readFileSync(join(specs, 'out', 'REL1.hl7'), 'latin1')).toBe(message);
    await waitFor(() => existsSync(join(specs, 'in', 'done', 'one.hl7')), 10_000, 'the input moved to in/done beside the spec');
    // The store is given relative to the working directory, as a command-line path: only it is there.
    expect(readdirSync(elsewhere).filter((f) => !f.startsWith('store.db'))).toEqual([]);
    const preview = await cli('preview', join(specs, 'drop.yaml'), message);
    expect(preview.stdout).toContain(`    → archive (file ${join(specs, 'out')}/{control_id}.hl7)\n    → copies (file ${join(specs, 'copies')}/{control_id}.hl7)\n`);
  }, 40_000);
});

