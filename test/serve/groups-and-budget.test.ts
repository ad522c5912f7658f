import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { MllpClient } from '../../runtime/index.js';
import { startServing } from '../../src/serve/serve.js';
import { corpusFile } from '../corpus.js';
import { memoryLogger, startWebhook, waitFor } from './helpers.js';

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A real serve host with these specs ($DIR is the test's directory), and its webhook receiver. */
async function serveSpecs(specs: Record<string, string>, options: { processingBudgetMs?: number } = {}) {
  const hook = await startWebhook();
  cleanups.push(() => hook.close());
  const dir = mkdtempSync(join(tmpdir(), 'hl7c-groups-'));
  for (const [name, text] of Object.entries(specs)) writeFileSync(join(dir, name), text.replaceAll('$DIR', dir));
  const { logger } = memoryLogger();
  const serving = await startServing({
    specs: Object.keys(specs).map((n) => join(dir, n)),
    storePath: join(dir, 'store.db'),
    cwd: dir,
    env: { HOOK: hook.url, TOKEN: 'secret' },
    logger,
    watch: false,
    ...options,
  });
  cleanups.push(() => serving.close());
  const client = (channel: string) => {
    const c = new MllpClient({ host: '127.0.0.1', port: serving.ports()[channel]!, logger });
    cleanups.push(() => c.close());
    return c;
  };
  return { dir, serving, hook, client };
}

const bodies = (hook: { received: Array<{ body: Record<string, unknown> }> }) => hook.received.map((r) => r.body);

describe('groups follow the message structure (through serve)', () => {
  test('A40 with two PID/MRG pairs: inside each: PID, MRG-1.1 is that pair\'s MRG (patient 145 retires 569)', async () => {
    const { hook, client } = await serveSpecs({
      'merges.yaml': `channel: merges
source: { mllp: { host: 127.0.0.1, port: 0, ack_mode: original } }
accept:
  - rule: merges
    if: { message_type: [ADT^A40] }
    otherwise: reject
map:
  merges:
    each: PID
    fields:
      surviving: { path: PID-3.1 }
      retired: { path: MRG-1.1 }
destinations:
  hook: { http: { url: "\${HOOK}" } }
`,
    });
    // The message asks for no ACK (MSH-15/16 NE): what counts is what the receiver gets.
    await client('merges').send(corpusFile('adt/fhirconv-adt-a40-mrg-multi.hl7'));
    await waitFor(() => hook.received.length === 1, 10_000, 'delivery');
    expect(bodies(hook)[0]).toEqual({
      merges: [
        { surviving: '12345', retired: '56789' },
        { surviving: '145', retired: '569' },
      ],
    });
  });

  test('ORU: each: NTE inside each: OBR gives the order\'s notes only; inside each: OBX the result\'s; reading up reaches the order and patient', async () => {
    const { hook, client } = await serveSpecs({
      'results.yaml': `channel: results
source: { mllp: { host: 127.0.0.1, port: 0, ack_mode: original } }
map:
  orders:
    each: OBR
    fields:
      placer: { path: OBR-1 }
      notes: { each: NTE, fields: { text: { path: NTE-3 } } }
      results:
        each: OBX
        fields:
          code: { path: OBX-3.1 }
          order: { path: OBR-1 }
          patient: { path: PID-3.1 }
          notes: { each: NTE, fields: { text: { path: NTE-3 } } }
destinations:
  hook: { http: { url: "\${HOOK}" } }
`,
    });
    // MSH SFT PID PD1 NTE NTE NK1 NK1 PV1 PV2 ORC OBR OBX OBX SPM OBX OBR NTE NTE OBX NTE NTE SPM OBX
    await client('results').send(corpusFile('oru/prime-oru-r01-full-mapping.hl7'));
    await waitFor(() => hook.received.length === 1, 10_000, 'delivery');
    expect(bodies(hook)[0]).toEqual({
      orders: [
        {
          placer: '1',
          notes: [],
          results: [
            { code: '80383-3', order: '1', patient: 'test', notes: [] },
            { code: '80382-5', order: '1', patient: 'test', notes: [] },
          ],
        },
        {
          placer: '2',
          notes: [{ text: 'Accession level coment.' }, { text: 'Test level comment.' }],
          results: [{ code: '100383-9', order: '2', patient: 'test', notes: [{ text: 'Run level Comment' }, { text: 'Result level Comment.' }] }],
        },
      ],
    });
  });
});

describe('hostile sizes: linear walks, and a message never stalls the other connections', () => {
  const REPS = 524_288;

  test(`an A08 whose PID-3 has ${REPS} repetitions (about 1 MB), mapped with each: PID-3, is ACKed; a second connection meanwhile is answered`, async () => {
    const { hook, client } = await serveSpecs(
      {
        'adt.yaml': `channel: adt
source: { mllp: { host: 127.0.0.1, port: 0, ack_mode: original } }
identifiers:
  patient: { kind: patient, assigning_authority: EPI, type_code: MR, required: true }
map:
  mrn: { identifier: patient }
  ids: { each: PID-3, fields: { id: { path: PID-3.1 } } }
destinations:
  hook: { http: { url: "\${HOOK}" } }
`,
      },
      // The budget is not what is tested here: a quadratic walk takes minutes at this size.
      { processingBudgetMs: 600_000 },
    );
    const reps = Array.from({ length: REPS }, (_, i) => (i === REPS - 1 ? 'E1^^^EPI^MR' : `${i}^^^H^PI`)).join('~');
    const big = `MSH|^~\\&|EPIC|GH|HL7C|APP|20261125||ADT^A08^ADT_A01|BIG-1|P|2.5.1\rEVN|A08|20261125\rPID|1||${reps}||Doe^Jane\rPV1|1|I\r`;
    expect(big.length).toBeGreaterThan(1_000_000);
    const sending = client('adt').send(big);
    const normal = client('adt').send('MSH|^~\\&|EPIC|GH|HL7C|APP|20261125||ADT^A08^ADT_A01|SMALL-1|P|2.5.1\rPID|1||E2^^^EPI^MR||Roe^Ann\r');
    const [bigAck, smallAck] = await Promise.all([sending, normal]);
    expect(bigAck.code).toBe('AA');
    expect(smallAck.code).toBe('AA');
    await waitFor(() => hook.received.length === 2, 60_000, 'both deliveries');
    const bigBody = bodies(hook).find((b) => b.mrn === 'E1')!;
    const ids = bigBody.ids as Array<{ id: string }>;
    expect(ids).toHaveLength(REPS);
    expect(ids[12_345]).toEqual({ id: '12345' });
    expect(ids[REPS - 1]).toEqual({ id: 'E1' });
  }, 180_000);

  // Four times the 16,000 items that stalled the engine 12.6 s (observations) and 6.7 s (note
  // lines) when building was quadratic: sixteen times longer then, four times now.
  test('a JSON post with 64,000 observations and a 64,000-line note is built and delivered; a second post meanwhile is answered', async () => {
    const { dir, serving } = await serveSpecs(
      {
        'results.yaml': `channel: results
source: { http: { host: 127.0.0.1, port: 0, path: /results, auth_token: "\${TOKEN}" } }
build:
  message_type: ORU^R01^ORU_R01
  version: 2.5.1
  segments:
    - segment: PID
      fields: { PID-3.1: { json: mrn }, PID-3.5: MR }
    - segment: OBR
      fields: { OBR-1: "1" }
    - each: values
      segments:
        - segment: OBX
          fields: { OBX-1: { index: true }, OBX-2: NM, OBX-5: { json: . } }
    - each_line: note
      segments:
        - segment: NTE
          fields: { NTE-1: { index: true }, NTE-3: { json: . } }
destinations: { out: { file: { dir: $DIR/out, file_name: "{control_id}.hl7" } } }
`,
      },
      { processingBudgetMs: 600_000 },
    );
    const url = `http://127.0.0.1:${serving.ports().results}/results`;
    const post = (body: unknown) => fetch(url, { method: 'POST', body: JSON.stringify(body), headers: { authorization: 'Bearer secret' } });
    const values = Array.from({ length: 64_000 }, (_, i) => String(i));
    const note = Array.from({ length: 64_000 }, (_, i) => `line ${i}`).join('\n');
    const [big, small] = await Promise.all([post({ mrn: 'E1', values, note }), post({ mrn: 'E2', values: ['1'], note: 'one line' })]);
    expect(big.status).toBe(200);
    expect(small.status).toBe(200);
    const answer = (await big.json()) as { control_id: string };
    const file = join(dir, 'out', `${answer.control_id}.hl7`);
    await waitFor(() => existsSync(file), 60_000, 'file written');
    const segments = readFileSync(file, 'utf8').split('\r');
    expect(segments.filter((s) => s.startsWith('OBX|'))).toHaveLength(64_000);
    expect(segments.filter((s) => s.startsWith('NTE|'))).toHaveLength(64_000);
    expect(segments).toContain('OBX|64000|NM|||63999');
    expect(segments).toContain('NTE|64000||line 63999');
  }, 120_000);

  test('a message over its processing budget gets AE naming the budget, is stored as an error, and the next message is processed', async () => {
    const { serving, hook, client } = await serveSpecs(
      {
        'adt.yaml': `channel: adt
source: { mllp: { host: 127.0.0.1, port: 0, ack_mode: original } }
map:
  ids: { each: PID-3, fields: { id: { path: PID-3.1 } } }
destinations:
  hook: { http: { url: "\${HOOK}" } }
`,
      },
      { processingBudgetMs: 1 },
    );
    const reps = Array.from({ length: 200_000 }, (_, i) => `${i}^^^H^PI`).join('~');
    const adt = client('adt');
    const over = await adt.send(`MSH|^~\\&|EPIC|GH|HL7C|APP|20261125||ADT^A08^ADT_A01|SLOW-1|P|2.5.1\rPID|1||${reps}\r`);
    expect(over.code).toBe('AE');
    const ack = over.raw!.toString('latin1');
    expect(ack).toMatch(/^ERR\|.*exceeded its processing budget of 1 ms/m);
    expect(ack).toMatch(/^MSA\|AE\|SLOW-1/m);
    const normal = await adt.send('MSH|^~\\&|EPIC|GH|HL7C|APP|20261125||ADT^A08^ADT_A01|FAST-1|P|2.5.1\rPID|1||E2^^^EPI^MR\r');
    expect(normal.code).toBe('AA');
    const stored = Object.fromEntries((await serving.store.listMessages()).map((m) => [m.control_id, m]));
    expect(stored['SLOW-1']).toMatchObject({ status: 'error', ack_code: 'AE' });
    expect(stored['SLOW-1']!.reason).toContain('exceeded its processing budget of 1 ms');
    expect(stored['FAST-1']).toMatchObject({ status: 'accepted' });
    await waitFor(() => hook.received.length === 1, 10_000, 'delivery of the normal message');
    expect(bodies(hook)[0]).toEqual({ ids: [{ id: 'E2' }] });
  });
});
