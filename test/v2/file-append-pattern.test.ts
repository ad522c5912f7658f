import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { globToRegExp } from '../../runtime/serve/host.js';
import { Operations } from '../../runtime/serve/index.js';
import { startServing } from '../../src/serve/serve.js';
import { memoryLogger, waitFor } from '../serve/helpers.js';

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const msg = (id: string, mrn: string) => `MSH|^~\\&|LAB|LRH|HL7C|APP|20261125||ORU^R01|${id}|P|2.5.1\rPID|1||${mrn}^^^LRH^MR||Doe^Jane\r`;

describe('file source pattern, file destination append with a content template', () => {
  test('only files matching the glob are read; each message adds one templated line to one file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hv2-file-'));
    mkdirSync(join(dir, 'in'));
    writeFileSync(join(dir, 'spec.yaml'), `channel: lab-pickup
source:
  file: { dir: ${dir}/in, pattern: "LAB_*.txt" }
destinations:
  log:
    file: { dir: ${dir}/out, file_name: "results-{channel}.psv", append: true }
    body: "{{MSH-10}}|{{PID-3.1}}|{{PID-5.1}}\\n"
`);
    // Written before serve starts: all present at the first scan.
    writeFileSync(join(dir, 'in', 'LAB_1.txt'), msg('F-1', 'E1'));
    writeFileSync(join(dir, 'in', 'LAB_2.txt'), msg('F-2', 'E2'));
    writeFileSync(join(dir, 'in', 'other.hl7'), msg('F-3', 'E3'));
    writeFileSync(join(dir, 'in', 'LAB_3.txt.part'), msg('F-4', 'E4'));
    const { logger } = memoryLogger();
    const serving = await startServing({ specs: [join(dir, 'spec.yaml')], storePath: join(dir, 'store.db'), cwd: dir, env: {}, logger, watch: false });
    cleanups.push(() => serving.close());
    const out = join(dir, 'out', 'results-lab-pickup.psv');
    await waitFor(() => existsSync(out) && readFileSync(out, 'utf8').split('\n').length === 3, 10_000, 'two lines appended');
    expect(readFileSync(out, 'utf8')).toBe('F-1|E1|Doe\nF-2|E2|Doe\n');
    await waitFor(() => existsSync(join(dir, 'in', 'done', 'LAB_2.txt')), 10_000, 'the files moved to done');
    // A moved file's .stored marker goes right after it; every delivery recorded means no temporary file is left.
    await waitFor(async () => (await serving.store.openQueues()).length === 0 && !readdirSync(join(dir, 'in')).some((f) => f.startsWith('.')), 10_000, 'deliveries recorded, markers gone');
    expect(readdirSync(join(dir, 'in')).sort()).toEqual(['LAB_3.txt.part', 'done', 'other.hl7']);
    expect(readdirSync(join(dir, 'out'))).toEqual(['results-lab-pickup.psv']);
  });

  test('a file_name with {{…}} placeholders is rendered from the message; a value never leaves the directory', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hv2-fname-'));
    writeFileSync(join(dir, 'spec.yaml'), `channel: names
source: { file: { dir: ${dir}/in } }
destinations:
  out:
    file: { dir: ${dir}/out, file_name: "{{MSH-9.2}}_{{PID-3.1}}_{control_id}.hl7" }
`);
    mkdirSync(join(dir, 'in'));
    writeFileSync(join(dir, 'in', 'a.hl7'), msg('N-1', 'E1').replace('ORU^R01', 'ADT^A08'));
    writeFileSync(join(dir, 'in', 'b.hl7'), msg('N-2', '../../etc/x').replace('ORU^R01', 'ADT^A01'));
    const { logger } = memoryLogger();
    const serving = await startServing({ specs: [join(dir, 'spec.yaml')], storePath: join(dir, 'store.db'), cwd: dir, env: {}, logger, watch: false });
    cleanups.push(() => serving.close());
    await waitFor(async () => existsSync(join(dir, 'out')) && readdirSync(join(dir, 'out')).filter((f) => !f.startsWith('.')).length === 2 && (await serving.store.openQueues()).length === 0, 10_000, 'two files, deliveries recorded');
    expect(readdirSync(join(dir, 'out')).sort()).toEqual(['A01_.._.._etc_x_N-2.hl7', 'A08_E1_N-1.hl7']);
    expect(readFileSync(join(dir, 'out', 'A08_E1_N-1.hl7'), 'latin1')).toBe(msg('N-1', 'E1').replace('ORU^R01', 'ADT^A08'));
  });

  test('message detail shows each delivery as written, its envelope (the file name as rendered from the message) apart, with or without the running channel', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hv2-detail-'));
    writeFileSync(join(dir, 'spec.yaml'), `channel: named
source: { file: { dir: ${dir}/in } }
destinations:
  out:
    file: { dir: ${dir}/out, file_name: "{{PID-3.1}}_{control_id}.hl7" }
`);
    mkdirSync(join(dir, 'in'));
    const sent = msg('E-1', 'E77');
    writeFileSync(join(dir, 'in', 'a.hl7'), sent);
    const { logger } = memoryLogger();
    const serving = await startServing({ specs: [join(dir, 'spec.yaml')], storePath: join(dir, 'store.db'), cwd: dir, env: {}, logger, watch: false });
    cleanups.push(() => serving.close());
    await waitFor(async () => existsSync(join(dir, 'out', 'E77_E-1.hl7')) && (await serving.store.openQueues()).length === 0, 10_000, 'file written, delivery recorded');
    const [row] = await serving.store.listMessages({});
    const onDisk = readFileSync(join(dir, 'out', 'E77_E-1.hl7'), 'latin1');
    for (const operations of [serving.operations, new Operations({ store: serving.store })]) {
      const detail = (await operations.message(row!.id))!;
      expect(detail.output).toBe(onDisk);
      expect(detail.deliveries).toMatchObject([{ destination: 'out', state: 'sent', payload: onDisk, envelope: { file_name: 'E77_{control_id}.hl7' } }]);
    }
  });

  test.each([
    ['*.hl7', 'a.hl7', true],
    ['*.hl7', '.a.hl7', false],
    ['*.hl7', 'a.hl7.stored', false],
    ['ADT_??.txt', 'ADT_01.txt', true],
    ['ADT_??.txt', 'ADT_1.txt', false],
    ['a+b(1).dat', 'a+b(1).dat', true],
  ])('glob %s on %s: %s', (glob, name, matches) => {
    expect(globToRegExp(glob).test(name)).toBe(matches);
  });
});
