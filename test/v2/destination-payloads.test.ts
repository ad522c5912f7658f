import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { MllpClient, MllpServer } from '../../runtime/index.js';
import { startServing } from '../../src/serve/serve.js';
import { validateSpecs } from '../../src/spec/validate.js';
import { cli } from '../cli/helpers.js';
import { ackingHandler } from '../mllp/helpers.js';
import { memoryLogger, startTextReceiver, waitFor } from '../serve/helpers.js';

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const ADT = 'MSH|^~\\&|STAR|LRH|ROUTER|LRH|20261125083000||ADT^A01^ADT_A01|DP-1|P|2.5.1\rPID|1||E77^^^LRH^MR||Doe^Jane||19840512|F\rZPD|secret\r';

/** An MLLP receiver (the EHR) that keeps every message it acknowledges, bytes as received. */
async function mllpReceiver() {
  const received: Buffer[] = [];
  const server = new MllpServer({ host: '127.0.0.1', port: 0, handler: (payload, c) => { received.push(payload); return ackingHandler(payload, c); } });
  const port = await server.listen();
  cleanups.push(() => server.close());
  return { port, received };
}

function specFile(text: string, name = 'router.yaml') {
  const dir = mkdtempSync(join(tmpdir(), 'hv2-payloads-'));
  writeFileSync(join(dir, name), text.replaceAll('$DIR', dir));
  return { dir, file: join(dir, name) };
}

const ROUTER = (epicPort: number, notifyUrl: string) => `channel: router
source: { mllp: { host: 127.0.0.1, port: 0 } }
transform:
  - delete_segments: "Z*"
destinations:
  epic:
    mllp: { host: 127.0.0.1, port: ${epicPort} }
    transform:
      - set: { path: MSH-5, value: EPIC }
      - set: { path: MSH-6, value: EPICHOSP }
  archive:
    file: { dir: $DIR/archive, file_name: "{control_id}.hl7" }
  index:
    file: { dir: $DIR/index, file_name: "{control_id}.json" }
    map:
      mrn: { path: PID-3.1 }
      receiving: { path: MSH-5 }
  notify:
    http: { url: "${notifyUrl}" }
    body: "{{channel}}: {{PID-5.2}} {{PID-5.1}} admitted ({{MSH-9.2}}, {{control_id}})"
tests:
  - name: each destination gets its own payload
    input: "${ADT.replaceAll('\\', '\\\\').replaceAll('\r', '\\r')}"
    expect:
      ack: AA
      destinations:
        epic: |
          MSH|^~\\&|STAR|LRH|EPIC|EPICHOSP|20261125083000||ADT^A01^ADT_A01|DP-1|P|2.5.1
          PID|1||E77^^^LRH^MR||Doe^Jane||19840512|F
        index: { mrn: E77, receiving: ROUTER }
`;

describe('per-destination payloads', () => {
  test('transform, map and body on destinations: each receiver gets its own, the archive the channel\'s message', async () => {
    const epic = await mllpReceiver();
    const notify = await startTextReceiver();
    cleanups.push(() => notify.close());
    const { dir, file } = specFile(ROUTER(epic.port, notify.url));
    const { logger } = memoryLogger();
    const serving = await startServing({ specs: [file], storePath: join(dir, 'store.db'), cwd: dir, env: {}, logger, watch: false });
    cleanups.push(() => serving.close());
    const client = new MllpClient({ host: '127.0.0.1', port: serving.ports().router! });
    cleanups.push(() => client.close());
    expect((await client.send(ADT)).code).toBe('AA');
    await waitFor(() => epic.received.length === 1 && notify.received.length === 1 && existsSync(join(dir, 'archive', 'DP-1.hl7')) && existsSync(join(dir, 'index', 'DP-1.json')), 10_000, 'all four deliveries');
    // Epic: MSH-5/6 rewritten on its copy only, Z-segments gone (the channel's transform ran first).
    expect(epic.received[0]!.toString('latin1')).toBe('MSH|^~\\&|STAR|LRH|EPIC|EPICHOSP|20261125083000||ADT^A01^ADT_A01|DP-1|P|2.5.1\rPID|1||E77^^^LRH^MR||Doe^Jane||19840512|F\r');
    // The archive: the channel's message, MSH-5/6 as received.
    expect(readFileSync(join(dir, 'archive', 'DP-1.hl7'), 'latin1')).toBe('MSH|^~\\&|STAR|LRH|ROUTER|LRH|20261125083000||ADT^A01^ADT_A01|DP-1|P|2.5.1\rPID|1||E77^^^LRH^MR||Doe^Jane||19840512|F\r');
    expect(JSON.parse(readFileSync(join(dir, 'index', 'DP-1.json'), 'utf8'))).toEqual({ mrn: 'E77', receiving: 'ROUTER' });
    expect(notify.received[0]).toEqual({ body: 'router: Jane Doe admitted (A01, DP-1)', type: 'text/plain; charset=utf-8' });
    // Once every delivery is recorded, the archive holds the one file and no temporary file is left.
    await waitFor(async () => (await serving.store.openQueues()).length === 0, 10_000, 'deliveries recorded');
    expect(readdirSync(join(dir, 'archive'))).toEqual(['DP-1.hl7']);
  });

  test('hl7c test compares each destination with its own payload', async () => {
    const { file } = specFile(ROUTER(2575, 'http://127.0.0.1:9/x'));
    const r = await cli('test', file);
    expect(r.stdout).toMatch(/1 passed, 0 failed/);
  });

  test('on a JSON channel a destination builds its own HL7 and a body reads the JSON received', async () => {
    const { file } = specFile(`channel: writer
source: { http: { host: 127.0.0.1, port: 0, path: /in } }
build:
  message_type: ORU^R01
  version: "2.5.1"
  segments: [ { segment: PID, fields: { PID-3.1: { json: mrn } } } ]
destinations:
  ehr:
    http: { url: "http://127.0.0.1:9/ehr" }
  adt:
    mllp: { host: 127.0.0.1, port: 9 }
    build:
      message_type: ADT^A08
      version: "2.5.1"
      segments: [ { segment: PID, fields: { PID-3.1: { json: mrn }, PID-5.1: { json: family } } } ]
  note:
    file: { dir: out }
    body: "{{$.family}} ({{$.mrn}}) via {{PID-3.1}}"
tests:
  - name: own build and body
    input: { mrn: E5, family: Roe }
    expect:
      response_status: 200
      destinations:
        ehr: |
          MSH|^~\\&|||||||ORU^R01||P|2.5.1||||||UNICODE UTF-8
          PID|||E5
        adt: |
          MSH|^~\\&|||||||ADT^A08||P|2.5.1||||||UNICODE UTF-8
          PID|||E5||Roe
        note: "Roe (E5) via E5"
`);
    const r = await cli('test', file);
    expect(r.stdout).toMatch(/1 passed, 0 failed/);
  });

  test('validate: one payload per destination, MLLP needs HL7, templates and hand-offs checked', async () => {
    const { dir, file } = specFile(`channel: router
source: { mllp: { port: 2801 } }
destinations:
  both:
    file: { dir: out }
    map: { mrn: { path: PID-3.1 } }
    body: "x"
  epic:
    mllp: { host: h, port: 1 }
    map: { mrn: { path: PID-3.1 } }
  tpl:
    file: { dir: out }
    body: "{{PID-99}} {{nothing}} {{PID-5.1}}"
  builds:
    file: { dir: out }
    build: { message_type: ADT^A08, version: "2.5.1", segments: [ { segment: PID } ] }
  index:
    channel: idx
    map: { mrn: { path: PID-3.1 } }
`);
    writeFileSync(join(dir, 'idx.yaml'), 'channel: idx\nsource:\n  channel: { input: hl7 }\ndestinations:\n  out: { file: { dir: out } }\n');
    const result = await validateSpecs([file, join(dir, 'idx.yaml')], { cwd: dir, env: {} });
    expect(result.diagnostics.map((d) => `${d.file}:${d.line}:${d.column} ${d.code}`)).toEqual([
      'router.yaml:7:11 spec/destination-payload',
      'router.yaml:9:11 spec/mllp-needs-hl7',
      'router.yaml:13:14 hl7/unknown-field',
      'router.yaml:13:25 spec/template-placeholder',
      'router.yaml:16:12 spec/build-needs-http-source',
      'router.yaml:18:14 spec/hand-off-kind',
    ]);
    expect(result.diagnostics.at(-1)!.message).toBe('destination index hands JSON (this destination maps) to channel idx, which takes HL7 (idx.yaml)');
  });
});
