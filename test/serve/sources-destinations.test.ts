import http from 'node:http';
import net from 'node:net';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { MllpClient, MllpServer } from '../../runtime/index.js';
import { startServing } from '../../src/serve/serve.js';
import { adtMessage, memoryLogger, waitFor } from './helpers.js';

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function serveSpecs(specs: Record<string, string>) {
  const dir = mkdtempSync(join(tmpdir(), 'hl7c-src-'));
  for (const [name, text] of Object.entries(specs)) writeFileSync(join(dir, name), text.replaceAll('$DIR', dir));
  const { logger } = memoryLogger();
  const serving = await startServing({ specs: Object.keys(specs).map((n) => join(dir, n)), storePath: join(dir, 'store.db'), cwd: dir, env: { TOKEN: 'secret' }, logger, watch: false });
  cleanups.push(() => serving.close());
  return { dir, serving };
}

describe('sources', () => {
  test('ack_mode original answers AA even when MSH-15 asks for enhanced mode; enhanced answers CA', async () => {
    const spec = (name: string, mode: string) => `channel: ${name}
source: { mllp: { host: 127.0.0.1, port: 0, ack_mode: ${mode} } }
destinations: { out: { file: { dir: $DIR/${name} } } }
`;
    const { serving } = await serveSpecs({ 'a.yaml': spec('orig', 'original'), 'b.yaml': spec('enh', 'enhanced') });
    const enhancedAsked = adtMessage('M1').replace('|P|2.5.1', '|P|2.5.1|||AL|NE');
    for (const [channel, code] of [['orig', 'AA'], ['enh', 'CA']] as const) {
      const client = new MllpClient({ host: '127.0.0.1', port: serving.ports()[channel]! });
      cleanups.push(() => client.close());
      expect((await client.send(enhancedAsked)).code).toBe(code);
      expect((await client.send(adtMessage('M2'))).code).toBe(code);
    }
  });

  test('MSH-16 gets its application ACK: alone under MSH-15 NE, after CA under AL; stored as sent', async () => {
    const { serving } = await serveSpecs({
      'adt.yaml': `channel: adt
source: { mllp: { host: 127.0.0.1, port: 0 } }
identifiers:
  patient: { kind: patient, assigning_authority: EPI, type_code: MR, required: true }
destinations: { out: { file: { dir: $DIR/out } } }
`,
    });
    const client = new MllpClient({ host: '127.0.0.1', port: serving.ports().adt! });
    cleanups.push(() => client.close());
    const asking = (controlId: string, acks: string, mrn?: string) => adtMessage(controlId, mrn).replace('|P|2.5.1', `|P|2.5.1|||${acks}`);
    // Without the application ACK, a sender using MSH-15 NE / MSH-16 AL would wait forever.
    expect(await client.send(asking('NE-AL', 'NE|AL'))).toMatchObject({ acknowledged: true, code: 'AA' });
    expect(await client.send(asking('AL-AL', 'AL|AL'))).toMatchObject({ code: 'AA', accept: { code: 'CA' } });
    // Committed with an application error: CA (stored, do not resend), then the AE naming the field.
    // A CE here would tell the sender "not committed, send it again".
    const failed = await client.send(asking('NO-MRN', 'AL|AL', 'E9^^^OTHER'));
    expect(failed).toMatchObject({ code: 'AE', accept: { code: 'CA' } });
    expect(failed.errors.join(' ')).toMatch(/identifier patient: no repetition of PID-3/);
    const stored = Object.fromEntries((await serving.store.listMessages()).map((m) => [m.control_id, m]));
    expect([stored['NE-AL']!.ack_code, stored['AL-AL']!.ack_code, stored['NO-MRN']!.ack_code]).toEqual(['AA', 'CA AA', 'CA AE']);
    const failedBack = (await serving.store.getMessage(stored['NO-MRN']!.id))!.message.ack!.toString('latin1');
    expect(failedBack.match(/^MSA\|[^\r]*/gm)).toEqual(['MSA|CA|NO-MRN', expect.stringMatching(/^MSA\|AE\|NO-MRN\|identifier patient/)]);
    // Under ER the accept ACK is not sent for a committed message: the AE alone answers.
    expect(await client.send(asking('ER-AL', 'ER|AL', 'E9^^^OTHER'))).toMatchObject({ code: 'AE' });
    const sentBack = (await serving.store.getMessage(stored['AL-AL']!.id))!.message.ack!.toString('latin1');
    expect(sentBack.match(/^MSA\|(\w\w)\|AL-AL/gm)).toEqual(['MSA|CA|AL-AL', 'MSA|AA|AL-AL']);
  });

  test('http source: bearer token required; the built HL7 is stored, queued and answered with its control id', async () => {
    const { serving, dir } = await serveSpecs({
      'results.yaml': `channel: results
source: { http: { host: 127.0.0.1, port: 0, path: /results, auth_token: "\${TOKEN}" } }
build:
  message_type: ORU^R01^ORU_R01
  version: 2.5.1
  segments:
    - segment: PID
      fields: { PID-3.1: { json: mrn }, PID-3.5: MR }
    - each: values
      segments:
        - segment: OBX
          fields: { OBX-1: { index: true }, OBX-5: { json: . } }
destinations: { out: { file: { dir: $DIR/out, file_name: "{control_id}.hl7" } } }
`,
    });
    const url = `http://127.0.0.1:${serving.ports().results}/results`;
    const body = JSON.stringify({ mrn: 'E1', values: ['5.4', '6.1'] });
    expect((await fetch(url, { method: 'POST', body })).status).toBe(401);
    expect((await fetch(url, { method: 'POST', body, headers: { authorization: 'Bearer wrong!' } })).status).toBe(401);
    expect((await fetch(`${url}x`, { method: 'POST', body, headers: { authorization: 'Bearer secret' } })).status).toBe(404);
    expect((await fetch(url, { method: 'POST', body: '{not json', headers: { authorization: 'Bearer secret' } })).status).toBe(400);
    const ok = await fetch(url, { method: 'POST', body, headers: { authorization: 'Bearer secret' } });
    expect(ok.status).toBe(200);
    const answer = (await ok.json()) as { status: string; control_id: string };
    expect(answer.status).toBe('accepted');
    await waitFor(() => existsSync(join(dir, 'out', `${answer.control_id}.hl7`)), 5000, 'file written');
    const written = readFileSync(join(dir, 'out', `${answer.control_id}.hl7`), 'utf8');
    expect(written).toContain('PID|||E1^^^^MR');
    expect(written).toContain('OBX|2||||6.1');
    expect((await serving.store.listMessages()).map((m) => m.status)).toEqual(['rejected', 'accepted']);
  });

  test('build writes MSH-10 from JSON escaped (N-1^2 as N-1\\S\\2); the MLLP receiver\'s ACK echoing it ends the delivery, sent once', async () => {
    // A receiver answering as the standard says: MSA-2 is MSH-10 exactly as received, escapes included.
    const frames: Buffer[] = [];
    const receiver = new MllpServer({
      host: '127.0.0.1',
      port: 0,
      handler: (payload) => {
        frames.push(payload);
        const msh10 = payload.toString('latin1').split('\r')[0]!.split('|')[9];
        return Buffer.from(`MSH|^~\\&|R|F|S|F|20260101||ACK^R01^ACK|9|P|2.5.1\rMSA|AA|${msh10}\r`, 'latin1');
      },
    });
    const receiverPort = await receiver.listen();
    cleanups.push(() => receiver.close());
    const { serving } = await serveSpecs({
      'results.yaml': `channel: results
source: { http: { host: 127.0.0.1, port: 0, path: /results } }
build:
  message_type: ORU^R01^ORU_R01
  version: 2.5.1
  segments:
    - segment: MSH
      fields: { MSH-10: { json: message_id } }
    - segment: PID
      fields: { PID-3.1: { json: mrn }, PID-3.5: MR }
destinations:
  lab:
    mllp: { host: 127.0.0.1, port: ${receiverPort} }
    retry: { attempts: unlimited, backoff_ms: 50, max_backoff_ms: 100 }
`,
    });
    const answer = await fetch(`http://127.0.0.1:${serving.ports().results}/results`, { method: 'POST', body: JSON.stringify({ message_id: 'N-1^2', mrn: 'E1' }) });
    expect(answer.status).toBe(200);
    await waitFor(async () => (await serving.store.listMessages({ status: 'sent' })).length === 1, 8000, 'delivery sent');
    expect(frames).toHaveLength(1);
    expect(frames[0]!.toString('latin1').split('\r')[0]!.split('|')[9]).toBe('N-1\\S\\2');
  });

  test('control characters from JSON and from a decoded \\X1C\\ go out as \\Xhh\\: the receiver gets exactly one MLLP frame per message', async () => {
    // A receiver that keeps every byte, answering AA (MSA-2 as received) at each end block.
    const bytes: Buffer[] = [];
    const receiver = net.createServer((socket) => {
      let pending = Buffer.alloc(0);
      socket.on('data', (chunk: Buffer) => {
        bytes.push(chunk);
        pending = Buffer.concat([pending, chunk]);
        for (let end = pending.indexOf(0x1c); end !== -1; end = pending.indexOf(0x1c)) {
          const msh10 = pending.subarray(1, end).toString('latin1').split('|')[9];
          socket.write(`\x0bMSH|^~\\&|R|F|S|F|20260101||ACK|9|P|2.5.1\rMSA|AA|${msh10}\r\x1c\r`);
          pending = pending.subarray(end + 2);
        }
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
    cleanups.push(() => new Promise<void>((r) => receiver.close(() => r())));
    const receiverPort = (receiver.address() as net.AddressInfo).port;
    const destination = `destinations:
  ehr:
    mllp: { host: 127.0.0.1, port: ${receiverPort} }
    retry: { attempts: 3, backoff_ms: 50 }
`;
    const { serving } = await serveSpecs({
      'notes.yaml': `channel: notes
source: { http: { host: 127.0.0.1, port: 0, path: /notes } }
build:
  message_type: MDM^T02^MDM_T02
  version: 2.5.1
  segments:
    - segment: MSH
      fields: { MSH-10: N1 }
    - segment: PID
      fields: { PID-3.1: { json: mrn } }
    - each_line: text
      segments:
        - segment: OBX
          fields: { OBX-1: { index: true }, OBX-2: TX, OBX-5: { json: . } }
${destination}`,
      'adt.yaml': `channel: adt
source: { mllp: { host: 127.0.0.1, port: 0 } }
transform:
  - replace: { path: PID-5.1, pattern: "A", with: "Z" }
${destination}`,
    });
    const posted = await fetch(`http://127.0.0.1:${serving.ports().notes}/notes`, { method: 'POST', body: JSON.stringify({ mrn: 'E1', text: 'nul\u0000 vt\u000b fs\u001c\tend' }) });
    expect(posted.status).toBe(200);
    const client = new MllpClient({ host: '127.0.0.1', port: serving.ports().adt! });
    cleanups.push(() => client.close());
    expect((await client.send('MSH|^~\\&|E|G|H|A|2026||ADT^A08|A1|P|2.5.1\rPID|1||E1^^^EPI^MR||A\\X1C\\B\r')).code).toBe('AA');
    await waitFor(async () => (await serving.store.listMessages({ status: 'sent' })).length === 2, 8000, 'both delivered');
    const wire = Buffer.concat(bytes).toString('latin1');
    // Two frames, each one message: a start block, segments, an end block; no other control byte.
    const frames = wire.split('\x1c\r').filter((f) => f !== '');
    expect(frames).toHaveLength(2);
    for (const f of frames) {
      expect(f.startsWith('\x0bMSH|')).toBe(true);
      expect(f.slice(1)).not.toMatch(/[\x00-\x08\x0a-\x0c\x0e-\x1f]/);
    }
    const segments = frames.flatMap((f) => f.slice(1).split('\r'));
    expect(segments).toContain('OBX|1|TX|||nul\\X00\\ vt\\X0B\\ fs\\X1C\\\tend');
    expect(segments).toContain('PID|1||E1^^^EPI^MR||Z\\X1C\\B');
  });

  test('templates: a decoded line break in a value stays on its line (text body, append file, HTTP header); an unquoted placeholder in a JSON body is a JSON value', async () => {
    const requests: Array<{ headers: http.IncomingHttpHeaders; rawHeaders: string[]; body: string }> = [];
    const receiver = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        requests.push({ headers: req.headers, rawHeaders: req.rawHeaders, body: Buffer.concat(chunks).toString('utf8') });
        res.end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
    cleanups.push(() => new Promise<void>((r) => { receiver.close(() => r()); receiver.closeAllConnections(); }));
    const url = `http://127.0.0.1:${(receiver.address() as net.AddressInfo).port}/x`;
    const { serving, dir } = await serveSpecs({
      'adt.yaml': `channel: adt
source: { mllp: { host: 127.0.0.1, port: 0 } }
destinations:
  log:
    file: { dir: $DIR/out, file_name: events.txt, append: true }
    body: "{{MSH-10}} {{PID-5.1}} {{PID-3.1}}\\n"
  app:
    http:
      url: ${url}
      headers: { X-Patient: "{{PID-5.1}}" }
    body: '{"mrn": {{PID-3.1}}, "name": "{{PID-5.1}}", "control_id": {{control_id}}}'
`,
    });
    const client = new MllpClient({ host: '127.0.0.1', port: serving.ports().adt! });
    cleanups.push(() => client.close());
    expect((await client.send('MSH|^~\\&|E|G|H|A|2026||ADT^A08|T1|P|2.5.1\rPID|1||E1^^^EPI^MR||Evil\\X0D0A\\X-Injected: yes\r')).code).toBe('AA');
    expect((await client.send('MSH|^~\\&|E|G|H|A|2026||ADT^A08|T2|P|2.5.1\rPID|1||E2^^^EPI^MR||Plain\r')).code).toBe('AA');
    await waitFor(() => requests.length === 2 && readFileSync(join(dir, 'out', 'events.txt'), 'utf8').split('\n').length === 3, 8000, 'delivered');
    // One line per message in the file, whatever the values hold.
    expect(readFileSync(join(dir, 'out', 'events.txt'), 'utf8')).toBe('T1 Evil X-Injected: yes E1\nT2 Plain E2\n');
    // No header was added by the value; the one templated header holds it on one line.
    expect(requests[0]!.headers['x-injected']).toBeUndefined();
    expect(requests[0]!.headers['x-patient']).toBe('Evil X-Injected: yes');
    expect(requests[0]!.headers['content-type']).toBe('application/json');
    expect(requests.map((r) => JSON.parse(r.body) as unknown)).toEqual([
      { mrn: 'E1', name: 'Evil\r\nX-Injected: yes', control_id: 'T1' },
      { mrn: 'E2', name: 'Plain', control_id: 'T2' },
    ]);
  });

  test('a character the message\'s MSH-18 cannot hold is an AE naming the field and the set, never a ? or raw UTF-8 in an ASCII message', async () => {
    const spec = (name: string, value: string) => `channel: ${name}
source: { mllp: { host: 127.0.0.1, port: 0 } }
transform:
  - set: { path: PID-5.2, value: "${value}" }
destinations:
  f: { file: { dir: $DIR/${name}, file_name: "{control_id}.hl7" } }
`;
    const { serving, dir } = await serveSpecs({ 'wide.yaml': spec('wide', 'Zoë Ω 日本'), 'latin.yaml': spec('latin', 'Zoë') });
    const msg = (id: string, charset: string) => `MSH|^~\\&|E|G|H|A|2026||ADT^A01|${id}|P|2.5.1|||||USA|${charset}\rPID|1||E1^^^EPI^MR||Muller^X\r`;
    const send = async (channel: string, message: string) => {
      const client = new MllpClient({ host: '127.0.0.1', port: serving.ports()[channel]! });
      cleanups.push(() => client.close());
      return client.send(message);
    };
    const wide = await send('wide', msg('W1', '8859/1'));
    expect(wide.code).toBe('AE');
    expect(wide.text).toMatch(/PID-5\.2: the character U\+03A9 cannot be written in the message's character set \(MSH-18 8859\/1\)/);
    const ascii = await send('latin', msg('A1', 'ASCII'));
    expect(ascii.code).toBe('AE');
    expect(ascii.text).toMatch(/PID-5\.2: the character U\+00EB cannot be written in the message's character set \(MSH-18 ASCII\)/);
    // What 8859/1 holds is written in it, one byte; UTF-8 holds everything.
    expect((await send('latin', msg('L1', '8859/1'))).code).toBe('AA');
    expect((await send('wide', msg('U1', 'UNICODE UTF-8'))).code).toBe('AA');
    await waitFor(() => existsSync(join(dir, 'latin', 'L1.hl7')) && existsSync(join(dir, 'wide', 'U1.hl7')), 8000, 'files written');
    expect(readFileSync(join(dir, 'latin', 'L1.hl7')).toString('latin1')).toContain('||Muller^Zo\xeb\r');
    expect(readFileSync(join(dir, 'wide', 'U1.hl7')).toString('utf8')).toContain('||Muller^Zoë Ω 日本\r');
    expect(existsSync(join(dir, 'wide', 'W1.hl7')) || existsSync(join(dir, 'latin', 'A1.hl7'))).toBe(false);
  });

  test('file source: each .hl7 file is stored, then moved to done (or error when a message is not accepted)', async () => {
    const { serving, dir } = await serveSpecs({
      'inbox.yaml': `channel: inbox
source: { file: { dir: $DIR/in } }
accept:
  - rule: adt
    if: { message_type: [ADT] }
    otherwise: reject
destinations: { out: { file: { dir: $DIR/out } } }
`,
    });
    // Both files appear at once (a folder renamed over the empty inbox): a scan between two writes
    // would let the first file settle a scan earlier, and the order stored depend on timing.
    const staging = join(dir, 'staging');
    mkdirSync(staging, { recursive: true });
    writeFileSync(join(staging, 'good.hl7'), adtMessage('F1') + adtMessage('F2'));
    writeFileSync(join(staging, 'bad.hl7'), 'MSH|^~\\&|A|B|C|D|1||ORM^O01|F3|P|2.5.1\r');
    renameSync(staging, join(dir, 'in'));
    await waitFor(() => existsSync(join(dir, 'in', 'done', 'good.hl7')) && existsSync(join(dir, 'in', 'error', 'bad.hl7')), 10_000, 'files moved');
    expect(readdirSync(join(dir, 'in')).filter((f) => f.endsWith('.hl7'))).toEqual([]);
    const rows = (await serving.store.listMessages());
    expect(rows.map((r) => [r.control_id, r.status, r.source])).toEqual([
      ['F3', 'rejected', 'file:bad.hl7'],
      ['F1', 'accepted', 'file:good.hl7'],
      ['F2', 'accepted', 'file:good.hl7'],
    ]);
  });
});

describe('destinations', () => {
  test('a channel destination hands the message to another channel, which stores and delivers it', async () => {
    const { serving, dir } = await serveSpecs({
      'front.yaml': `channel: front
source: { mllp: { host: 127.0.0.1, port: 0 } }
transform:
  - set: { path: MSH-5, value: BACKEND }
destinations: { next: { channel: back } }
`,
      'back.yaml': `channel: back
source: { mllp: { host: 127.0.0.1, port: 0 } }
map:
  receiver: { path: MSH-5 }
  id: { path: MSH-10 }
destinations: { files: { file: { dir: $DIR/out, file_name: "{control_id}.json" } } }
`,
    });
    const client = new MllpClient({ host: '127.0.0.1', port: serving.ports().front! });
    cleanups.push(() => client.close());
    expect((await client.send(adtMessage('CH-1'))).code).toBe('AA');
    await waitFor(() => existsSync(join(dir, 'out', 'CH-1.json')), 5000, 'delivered through the second channel');
    expect(JSON.parse(readFileSync(join(dir, 'out', 'CH-1.json'), 'utf8'))).toEqual({ receiver: 'BACKEND', id: 'CH-1' });
    const rows = (await serving.store.listMessages());
    expect(rows.map((r) => [r.channel, r.source.split(':')[0]])).toEqual([
      ['front', 'mllp'],
      ['back', 'channel'],
    ]);
  });
});
