import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { frame, MllpClient, MllpServer } from '../../runtime/index.js';
import { startServing } from '../../src/serve/serve.js';
import { validateSpecs } from '../../src/spec/validate.js';
import { memoryLogger, startWebhook } from '../serve/helpers.js';
import { RawPeer } from '../mllp/helpers.js';

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function serve(spec: string) {
  const dir = mkdtempSync(join(tmpdir(), 'hv2-answer-'));
  const file = join(dir, 'spec.yaml');
  writeFileSync(file, spec.replaceAll('$DIR', dir));
  const { logger } = memoryLogger();
  const serving = await startServing({ specs: [file], storePath: join(dir, 'store.db'), cwd: dir, env: {}, logger, watch: false });
  cleanups.push(() => serving.close());
  return { dir, serving, port: Object.values(serving.ports())[0]! };
}

const mdm = (controlId: string, doc: string) =>
  `MSH|^~\\&|DICT|LRH|HL7C|LRH|20261125083000||MDM^T02^MDM_T02|${controlId}|P|2.5.1\rPID|1||E1^^^LRH^MR\rTXA|1|CN|TX|||||||||${doc}||||||AU\rOBX|1|TX|||Line one\r`;

describe('answer_after: the ACK waits for the deliveries (Mirth: Auto-generate, destinations completed)', () => {
  test('AA once the file is on disk; AE naming the destination when the write fails for good', async () => {
    const { dir, serving, port } = await serve(`channel: transcription
source:
  mllp: { host: 127.0.0.1, port: 0, answer_after: [report] }
destinations:
  report:
    file: { dir: $DIR/out, file_name: "{{TXA-12.1}}.txt", on_exists: fail }
    body: "{{OBX-5}}\\n"
    retry: { attempts: 2, backoff_ms: 10 }
`);
    const client = new MllpClient({ host: '127.0.0.1', port });
    cleanups.push(() => client.close());
    const first = await client.send(mdm('T-1', 'DOC1'));
    expect(first.code).toBe('AA');
    // No waiting here: the ACK came after the file was written.
    expect(readFileSync(join(dir, 'out', 'DOC1.txt'), 'utf8')).toBe('Line one\n');
    // The same document again: the file exists, on_exists: fail, both attempts fail, dead letter: AE.
    const again = await client.send(mdm('T-2', 'DOC1'));
    expect(again.code).toBe('AE');
    expect(again.text).toMatch(/^destination report could not deliver the message: /);
    const stored = await serving.store.getMessage(2);
    expect(stored!.deliveries[0]!.state).toBe('dead');
    expect(stored!.message.ack_code).toBe('AE');
    expect(stored!.message.ack!.toString('latin1')).toContain('MSA|AE|T-2|');
  });

  test('an HTTP source answers 200 once delivered, 502 with the reason when the receiver refuses for good', async () => {
    const hook = await startWebhook();
    cleanups.push(() => hook.close());
    const { port } = await serve(`channel: vitals
source:
  http: { host: 127.0.0.1, port: 0, path: /vitals, answer_after: [ehr] }
map:
  mrn: { json: mrn }
destinations:
  ehr:
    http: { url: "${hook.url}" }
    retry: { attempts: 1 }
`);
    const post = (mrn: string) => fetch(`http://127.0.0.1:${port}/vitals`, { method: 'POST', body: JSON.stringify({ mrn }), headers: { 'content-type': 'application/json' } });
    const ok = await post('E1');
    expect(ok.status).toBe(200);
    expect(hook.received.map((r) => r.body)).toEqual([{ mrn: 'E1' }]);
    hook.status = 400;
    const refused = await post('E2');
    expect(refused.status).toBe(502);
    expect(await refused.json()).toEqual({ status: 'error', reason: 'destination ehr could not deliver the message: HTTP 400' });
  });

  test('past answer_wait_ms the answer is the one given at storing, and the message is still delivered', async () => {
    const hook = await startWebhook();
    cleanups.push(() => hook.close());
    hook.status = 503;
    const { serving, port } = await serve(`channel: slow
source:
  mllp: { host: 127.0.0.1, port: 0, answer_after: [app], answer_wait_ms: 200 }
map: { id: { path: MSH-10 } }
destinations:
  app:
    http: { url: "${hook.url}" }
    retry: { attempts: unlimited, backoff_ms: 20, max_backoff_ms: 50 }
`);
    const client = new MllpClient({ host: '127.0.0.1', port });
    cleanups.push(() => client.close());
    expect((await client.send(mdm('W-1', 'D'))).code).toBe('AA');
    expect((await serving.store.getMessage(1))!.deliveries[0]!.state).not.toBe('sent');
    hook.status = 200;
    await new Promise<void>((resolve, reject) => {
      const deadline = Date.now() + 10_000;
      const check = () => (hook.received.length === 1 ? resolve() : Date.now() > deadline ? reject(new Error('not delivered')) : setTimeout(check, 20));
      check();
    });
    expect(hook.received[0]!.body).toEqual({ id: 'W-1' });
  });
});

describe("answer_from: the sender gets the receiver's own ACK (Mirth: respond from d1)", () => {
  test("the receiver's ACK, byte for byte, AA or AE; AE from hl7c when the receiver cannot be reached", async () => {
    const answers: string[] = [];
    const omnicell = new MllpServer({
      host: '127.0.0.1',
      port: 0,
      handler: (payload) => {
        const text = payload.toString('latin1');
        const control = /^MSH(?:\|[^|\r]*){8}\|([^|\r]*)/.exec(text)![1]!;
        const full = text.includes('^FULL^');
        const ack = `MSH|^~\\&|OMNICELL|LRH|EPIC|LRH|20261125090000||ACK^O11|OC-${control}|P|2.5.1\rMSA|${full ? 'AE' : 'AA'}|${control}|${full ? 'cabinet 4 full' : 'stocked in cabinet 4'}\r`;
        answers.push(ack);
        return Buffer.from(ack, 'latin1');
      },
    });
    const omnicellPort = await omnicell.listen();
    cleanups.push(() => omnicell.close());
    const { serving, port } = await serve(`channel: pharmacy
source:
  mllp: { host: 127.0.0.1, port: 0, answer_from: omnicell }
destinations:
  omnicell:
    mllp: { host: 127.0.0.1, port: ${omnicellPort}, on_ae: fail }
    transform:
      - set: { path: MSH-5, value: OMNICELL }
    retry: { attempts: 2, backoff_ms: 10 }
`);
    const rde = (control: string, drug: string) => `MSH|^~\\&|EPIC|LRH|HL7C|LRH|20261125085900||RDE^O11^RDE_O11|${control}|P|2.5.1\rPID|1||82215^^^LRH^MR\rORC|NW|O1\rRXE||00409-1234-01^${drug}^NDC\r`;
    const epic = await RawPeer.connect(port);
    cleanups.push(() => epic.end());
    await epic.write(frame(rde('RX-1', 'HEPARIN')));
    const [stocked] = await epic.waitForFrames(1);
    expect(stocked!.toString('latin1')).toBe(answers[0]);
    await epic.write(frame(rde('RX-2', 'FULL')));
    const [, full] = await epic.waitForFrames(2);
    expect(full!.toString('latin1')).toBe(answers[1]);
    expect(answers[1]).toContain('MSA|AE|RX-2|cabinet 4 full');
    const history = await serving.store.getMessage(2);
    expect(history!.message.ack_code).toBe('AE');
    expect(history!.deliveries[0]!.state).toBe('dead');

    // Omnicell down: no ACK of its own to pass on; hl7c answers AE naming the destination.
    await omnicell.close();
    await epic.write(frame(rde('RX-3', 'HEPARIN')));
    const [, , unreachable] = await epic.waitForFrames(3, 10_000);
    expect(unreachable!.toString('latin1')).toMatch(/\rMSA\|AE\|RX-3\|destination omnicell could not deliver the message: /);
    expect(answers).toHaveLength(2);
  });
});

test('validate: answer_after names destinations of the channel; answer_from an mllp one', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hv2-answer-v-'));
  writeFileSync(join(dir, 'a.yaml'), `channel: a
source:
  mllp: { port: 2575, answer_after: [archive, epic], answer_from: archive }
destinations:
  archive: { file: { dir: out } }
`);
  const result = await validateSpecs([join(dir, 'a.yaml')], { cwd: dir, env: {} });
  expect(result.diagnostics.map((d) => `${d.line}:${d.column} ${d.code} ${d.message}`)).toEqual([
    '3:47 spec/answer-destination the answer waits for destination epic, which this channel does not have',
    '3:67 spec/answer-destination answer_from passes an HL7 ACK through, and destination archive is not an mllp destination',
  ]);
});

