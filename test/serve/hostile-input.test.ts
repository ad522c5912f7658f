import { mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterEach, describe, expect, test } from 'vitest';
import { MllpDecoder, parseMessage, readAck } from '../../runtime/index.js';
import { startServing } from '../../src/serve/serve.js';
import { frame, RawPeer } from '../mllp/helpers.js';
import { adtMessage, adtSpec, waitFor } from './helpers.js';

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A logger that keeps each JSON line as written (duplicate keys would vanish in a parse). */
function rawLogger() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n')) if (line.trim()) lines.push(line);
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines };
}

async function serve(specs: Record<string, string>, env: NodeJS.ProcessEnv = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'hl7c-hostile-'));
  for (const [name, text] of Object.entries(specs)) writeFileSync(join(dir, name), text.replaceAll('$DIR', dir));
  const { logger, lines } = rawLogger();
  const serving = await startServing({ specs: Object.keys(specs).map((n) => join(dir, n)), storePath: join(dir, 'store.db'), cwd: dir, env: { TEST_WEBHOOK_URL: 'http://127.0.0.1:9/unreachable', ...env }, logger, watch: false, adminPort: 0 });
  cleanups.push(() => serving.close());
  return { dir, serving, lines };
}

async function peerOf(port: number) {
  const p = await RawPeer.connect(port);
  cleanups.push(() => p.end());
  return p;
}

const mllpSpec = (extra = '') => `channel: inbox
source:
  mllp:
    host: 127.0.0.1
    port: 0
${extra}destinations: { out: { file: { dir: $DIR/out } } }
`;

describe('malformed headers (issue 10, case 6)', () => {
  test('MSH-2 with a letter or a digit is AR (never AE), and the ACK is written with the standard delimiters', async () => {
    const { serving } = await serve({ 'inbox.yaml': mllpSpec() });
    const peer = await peerOf(serving.ports().inbox!);
    const sent = ['MSH|^H|EPIC|GH|HL7C|APP|20261125||ADT^A08|BAD-H|P|2.5.1\rPID|1||E1^^^EPI^MR\r', 'MSH|7C|START\r', 'MSH|^~|EPIC|GH|HL7C|APP|20261125||ADT^A08|NO-ESC|P|2.5.1\rPID|1||E1^^^EPI^MR\rZZZ\x01|x\r'];
    for (const m of sent) await peer.write(frame(m));
    const acks = (await peer.waitForFrames(sent.length)).map((b) => b.toString('latin1'));
    for (const ack of acks) {
      // MSH-1/MSH-2 standard, so any receiver reads the ERR with ^ as its component separator.
      expect(ack.startsWith('MSH|^~\\&|')).toBe(true);
      const parsed = parseMessage(ack);
      expect(readAck(parsed).code).toBe('AR');
      expect(parsed.getRaw('ERR-3.1')).toMatch(/^\d{3}$/);
      expect(ack).not.toMatch(/internal error/);
    }
    expect(readAck(parseMessage(acks[0]!)).acknowledgedControlId).toBe('BAD-H');
    expect(readAck(parseMessage(acks[2]!)).acknowledgedControlId).toBe('NO-ESC');
    const stored = await serving.store.listMessages();
    expect(stored.map((m) => [m.status, m.ack_code])).toEqual(sent.map(() => ['rejected', 'AR']));
  });
});

describe('oversize frames, batches and log lines (issue 10, case 15)', () => {
  test('a frame over max_message_bytes is answered AR, stored as rejected with its first bytes, and counted', async () => {
    const { serving } = await serve({ 'inbox.yaml': mllpSpec('    max_message_bytes: 2048\n') });
    const peer = await peerOf(serving.ports().inbox!);
    const big = adtMessage('BIG-1') + `NTE|1||${'x'.repeat(10_000)}\r`;
    await peer.write(frame(big), frame(adtMessage('SMALL-1')));
    const acks = await peer.waitForFrames(2);
    expect(readAck(parseMessage(acks[0]!))).toMatchObject({ code: 'AR', acknowledgedControlId: 'BIG-1' });
    expect(readAck(parseMessage(acks[1]!))).toMatchObject({ code: 'AA', acknowledgedControlId: 'SMALL-1' });
    const stored = await serving.store.listMessages();
    const rejected = stored.find((m) => m.control_id === 'BIG-1')!;
    expect(rejected.status).toBe('rejected');
    expect(rejected.ack_code).toBe('AR');
    expect(rejected.reason).toMatch(/exceeds the receiver's limit of 2048 bytes; only its first \d+ bytes are kept/);
    expect(rejected.raw!.toString('latin1')).toBe(Buffer.from(big).subarray(0, rejected.raw!.length).toString('latin1'));
    expect(rejected.raw!.toString('latin1')).toContain('MSH|^~\\&|EPIC|GH');
    expect(serving.host.sourceCounters().inbox!.oversizeFrames).toBe(1);
    const metrics = await (await fetch(`http://127.0.0.1:${serving.adminPort}/metrics`)).text();
    expect(metrics).toMatch(/hl7c_source_events\{channel="inbox",event="oversizeFrames"\} 1/);
    expect(metrics).toMatch(/hl7c_messages\{channel="inbox",status="rejected"\} 1/);
  });

  test('a batch in one frame gets a reason a sender can act on, not an API name', async () => {
    const { serving } = await serve({ 'inbox.yaml': mllpSpec() });
    const peer = await peerOf(serving.ports().inbox!);
    await peer.write(frame(`FHS|^~\\&|EPIC\rBHS|^~\\&|EPIC\r${adtMessage('IN-BATCH')}BTS|1\rFTS|1\r`), frame(adtMessage('TWO-1') + adtMessage('TWO-2')));
    const acks = (await peer.waitForFrames(2)).map((b) => readAck(parseMessage(b)));
    for (const ack of acks) {
      expect(ack.code).toBe('AR');
      expect(ack.text).toMatch(/send each message on its own/);
      expect(ack.text).not.toMatch(/parseBatch|parseMessage/);
    }
    const stored = await serving.store.listMessages();
    expect(stored.every((m) => !/parseBatch/.test(m.reason ?? ''))).toBe(true);
  });

  test('no log line repeats a key (channel, destination) that its child logger already carries', async () => {
    const { serving, lines } = await serve({ 'adt.yaml': adtSpec({ attempts: 2, backoffMs: 1 }) });
    const peer = await peerOf(serving.ports()['adt-in']!);
    await peer.write(frame(adtMessage('LOG-1')));
    await peer.waitForFrames(1);
    // The webhook is unreachable: the worker logs a retry and a dead letter.
    await waitFor(() => lines.some((l) => l.includes('dead-lettered')), 10_000, 'the dead letter');
    const withChannel = lines.filter((l) => l.includes('"channel"'));
    expect(withChannel.length).toBeGreaterThan(3);
    for (const line of lines) {
      for (const key of ['channel', 'destination', 'connection']) expect(line.split(`"${key}":`).length - 1, line).toBeLessThanOrEqual(1);
    }
  });
});

describe('drain on close (issue 10, case 3): a message is either stored and answered, or neither', () => {
  test('a listener moved by a reload answers what it read; a message sent on the old connection after it closes is stored once, through the new port', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hl7c-move-'));
    const specPath = join(dir, 'adt.yaml');
    writeFileSync(specPath, adtSpec());
    const { logger } = rawLogger();
    const serving = await startServing({ specs: [specPath], storePath: join(dir, 'store.db'), cwd: dir, env: { TEST_WEBHOOK_URL: 'http://127.0.0.1:9/x' }, logger, watch: false });
    cleanups.push(() => serving.close());
    const oldPort = serving.ports()['adt-in']!;

    // A sender that has not seen the receiver's FIN yet keeps writing on its connection.
    const acks: Buffer[] = [];
    const socket = net.connect({ host: '127.0.0.1', port: oldPort, allowHalfOpen: true });
    cleanups.push(() => socket.destroy());
    socket.on('error', () => undefined);
    const decoder = new MllpDecoder({ frame: (p) => acks.push(p), discarded: () => undefined, truncated: () => undefined, oversize: () => undefined });
    socket.on('data', (c: Buffer) => decoder.push(c));
    const ended = new Promise<void>((r) => socket.once('end', () => r()));
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    await new Promise<void>((r) => socket.once('connect', () => r()));
    socket.write(frame(adtMessage('BEFORE')));
    await waitFor(() => acks.length === 1, 5000, 'the first ACK');

    // Move the listener: a free port, written into the spec.
    const free = await new Promise<number>((r) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const port = (s.address() as net.AddressInfo).port;
        s.close(() => r(port));
      });
    });
    writeFileSync(specPath, adtSpec().replace('${TEST_ADT_PORT:-0}', String(free)));
    const reloaded = serving.reload();
    await ended;
    socket.write(frame(adtMessage('RACE')));
    socket.end();
    await closed;
    expect((await reloaded).applied).toBe(true);
    const answeredOnOld = acks.map((a) => readAck(parseMessage(a)).acknowledgedControlId);

    // The sender resends what got no ACK, to the new port.
    if (!answeredOnOld.includes('RACE')) {
      const peer = await peerOf(free);
      await peer.write(frame(adtMessage('RACE')));
      expect(readAck(parseMessage((await peer.waitForFrames(1))[0]!)).code).toBe('AA');
    }
    const stored = (await serving.store.listMessages()).map((m) => m.control_id);
    expect(stored.filter((id) => id === 'RACE')).toHaveLength(1);
    expect(stored.filter((id) => id === 'BEFORE')).toHaveLength(1);
  });
});

describe('HTTP source security (issue 10, case 7 and limits)', () => {
  const httpSpec = (host: string, token: string, extra = '') => `channel: results
source: { http: { host: ${host}, port: 0, path: /results, auth_token: "${token}"${extra} } }
build:
  message_type: ORU^R01^ORU_R01
  version: 2.5.1
  segments:
    - segment: PID
      fields: { PID-3.1: { json: mrn }, PID-3.5: MR }
destinations: { out: { file: { dir: $DIR/out } } }
`;

  test.each([
    ['no token', ''],
    ['a well-known token', 'dev-token'],
    ['another placeholder', 'changeme'],
    ['a short token', 'abc123xyz'],
  ])('a network-facing HTTP source with %s refuses to start, naming the channel', async (_, token) => {
    await expect(serve({ 'results.yaml': httpSpec('0.0.0.0', token) })).rejects.toThrow(/channel results: the HTTP source on 0\.0\.0\.0 .*auth_token/);
  });

  test('on loopback a placeholder token is allowed; off loopback a long random one is', async () => {
    await serve({ 'results.yaml': httpSpec('127.0.0.1', 'dev-token') });
    await serve({ 'results.yaml': httpSpec('0.0.0.0', '${RESULTS_TOKEN}') }, { RESULTS_TOKEN: 'f3a9c2e17b4d8e6a0c5f2b9d' });
  });

  test('JSON nested deeper than 64 levels is refused with 400 and stored as rejected; bodies past max_body_bytes get 413', async () => {
    const token = 'f3a9c2e17b4d8e6a0c5f2b9d';
    const { serving } = await serve({ 'results.yaml': httpSpec('127.0.0.1', token, ', max_body_bytes: 4096') });
    const url = `http://127.0.0.1:${serving.ports().results}/results`;
    const headers = { authorization: `Bearer ${token}` };
    // The object is one level, its arrays the others: 65 levels in all.
    const balanced = `{"mrn":"E1","x":${'['.repeat(64)}${']'.repeat(64)}}`;
    const refused = await fetch(url, { method: 'POST', headers, body: balanced });
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as { reason: string }).reason).toMatch(/deeper than 64 levels/);
    const fine = await fetch(url, { method: 'POST', headers, body: `{"mrn":"E1","x":${'['.repeat(63)}${']'.repeat(63)}}` });
    expect(fine.status).toBe(200);
    const large = await fetch(url, { method: 'POST', headers, body: JSON.stringify({ mrn: 'E1', pad: 'x'.repeat(10_000) }) });
    expect(large.status).toBe(413);
    const stored = await serving.store.listMessages();
    expect(stored.some((m) => m.status === 'rejected' && /deeper than 64/.test(m.reason ?? ''))).toBe(true);
  });

  test('HTTP allow list: an address outside it is closed before any request is read, and counted', async () => {
    const token = 'f3a9c2e17b4d8e6a0c5f2b9d';
    const { serving } = await serve({ 'results.yaml': httpSpec('127.0.0.1', token, ', allow: [10.0.0.0/8]') });
    const url = `http://127.0.0.1:${serving.ports().results}/results`;
    await expect(fetch(url, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: '{"mrn":"E1"}' })).rejects.toThrow();
    expect(serving.host.sourceCounters().results!.refusedNotAllowed).toBeGreaterThanOrEqual(1);
    expect(await serving.store.listMessages()).toEqual([]);
  });
});
