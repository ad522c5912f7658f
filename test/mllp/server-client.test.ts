import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { acknowledge, acknowledgements, buildAck, MllpClient, MllpError, MllpServer, parseMessage, readAck } from '../../runtime/index.js';
import { ackingHandler, frame, RawPeer, sampleMessage } from './helpers.js';
import { waitFor } from '../serve/helpers.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function startServer(options: Partial<ConstructorParameters<typeof MllpServer>[0]> = {}) {
  const server = new MllpServer({ host: '127.0.0.1', port: 0, handler: ackingHandler, ...options });
  const port = await server.listen();
  cleanups.push(() => server.close());
  return { server, port };
}

async function peer(port: number) {
  const p = await RawPeer.connect(port);
  cleanups.push(() => p.end());
  return p;
}

const ackOf = (b: Buffer) => readAck(parseMessage(b));

async function waitUntil(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('MLLP server over real sockets', () => {
  test('a frame split across TCP segments is answered once', async () => {
    const { port } = await startServer();
    const p = await peer(port);
    const data = frame(sampleMessage('SPLIT-1'));
    await p.write(data.subarray(0, 1), data.subarray(1, 20), data.subarray(20, data.length - 1), data.subarray(data.length - 1));
    const [ack] = await p.waitForFrames(1);
    expect(ackOf(ack!)).toMatchObject({ code: 'AA', acknowledgedControlId: 'SPLIT-1' });
  });

  test('several frames in one TCP write are answered in order', async () => {
    const { port } = await startServer();
    const p = await peer(port);
    const ids = Array.from({ length: 20 }, (_, i) => `MANY-${i}`);
    await p.write(Buffer.concat(ids.map((id) => frame(sampleMessage(id)))));
    const acks = await p.waitForFrames(20);
    expect(acks.map((a) => ackOf(a).acknowledgedControlId)).toEqual(ids);
  });

  test('bytes outside frames are ignored; the connection goes on', async () => {
    const { port } = await startServer();
    const p = await peer(port);
    await p.write(Buffer.from('GET / HTTP/1.0\r\n\r\n'), frame(sampleMessage('AFTER-NOISE')));
    const [ack] = await p.waitForFrames(1);
    expect(ackOf(ack!).acknowledgedControlId).toBe('AFTER-NOISE');
  });

  test('a message over the maximum size is answered AR with the reason, and later messages still work', async () => {
    const { port } = await startServer({ maxMessageBytes: 4096 });
    const p = await peer(port);
    await p.write(frame(sampleMessage('HUGE-1', 'X'.repeat(100_000))), frame(sampleMessage('SMALL-2')));
    const [first, second] = await p.waitForFrames(2);
    const reject = parseMessage(first!);
    expect(reject.get('MSA-1')).toBe('AR');
    expect(reject.get('MSA-2')).toBe('HUGE-1');
    expect(reject.get('ERR-8')).toMatch(/exceeds the receiver's limit of 4096 bytes/);
    expect(ackOf(second!)).toMatchObject({ code: 'AA', acknowledgedControlId: 'SMALL-2' });
  });

  test('an unparseable message gets AR with the location', async () => {
    const { port } = await startServer();
    const p = await peer(port);
    await p.write(frame('MSH|^~\\&|A|B|C|D|1||ADT^A01|BROKEN-1|P|2.5.1\rPID|1\rSCT^123\r'));
    const reject = parseMessage((await p.waitForFrames(1))[0]!);
    expect(reject.get('MSA-1')).toBe('AR');
    expect(reject.get('MSA-2')).toBe('BROKEN-1');
    expect(reject.get('ERR-8')).toMatch(/does not start with a segment name/);
  });

  test('an idle connection is closed after the idle timeout', async () => {
    const { server, port } = await startServer({ idleTimeoutMs: 150 });
    const p = await peer(port);
    await p.write(frame(sampleMessage('IDLE-1')));
    await p.waitForFrames(1);
    await p.waitForClose(3000);
    // The peer sees the close before the server's own 'close' event has run (under load, well before).
    await waitFor(() => server.connectionCount === 0, 3000, 'the server to forget the connection');
  });

  test('a handler that throws still answers (AE), never leaves the sender waiting', async () => {
    const { port } = await startServer({
      handler: () => {
        throw new Error('boom');
      },
    });
    const p = await peer(port);
    await p.write(frame(sampleMessage('THROW-1')));
    expect(ackOf((await p.waitForFrames(1))[0]!)).toMatchObject({ code: 'AE', acknowledgedControlId: 'THROW-1' });
  });

  test('close() lets a message being handled finish and answers it', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let handling!: () => void;
    const handled = new Promise<void>((r) => (handling = r));
    const { server, port } = await startServer({
      handler: async (payload) => {
        handling();
        await gate;
        return ackingHandler(payload, { id: 0, remoteAddress: '', remotePort: 0 });
      },
    });
    const p = await peer(port);
    await p.write(frame(sampleMessage('DRAIN-1')));
    await handled;
    const closing = server.close();
    release();
    await closing;
    expect(ackOf(p.frames[0]!).acknowledgedControlId).toBe('DRAIN-1');
  });
});

describe('MLLP client', () => {
  test('sends and matches the ACK; one message in flight per connection', async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    const { port } = await startServer({
      handler: async (payload) => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        await new Promise((r) => setTimeout(r, 5));
        inFlight--;
        return ackingHandler(payload, { id: 0, remoteAddress: '', remotePort: 0 });
      },
    });
    const client = new MllpClient({ host: '127.0.0.1', port });
    cleanups.push(() => client.close());
    const acks = await Promise.all(Array.from({ length: 10 }, (_, i) => client.send(sampleMessage(`C-${i}`))));
    expect(acks.map((a) => a.acknowledgedControlId)).toEqual(Array.from({ length: 10 }, (_, i) => `C-${i}`));
    expect(acks.every((a) => a.code === 'AA')).toBe(true);
    expect(maxInFlight).toBe(1);
  });

  test('whatever shape the ACK takes, the client reads it as a full parse would', async () => {
    const replies: Record<string, string> = {
      PLAIN: 'MSH|^~\\&|R|F|S|F|20260101||ACK^A01^ACK|9|P|2.5.1\rMSA|AA|PLAIN\r',
      ENHANCED: 'MSH|^~\\&|R|F|S|F|20260101||ACK^A01^ACK|9|P|2.5.1\rMSA|CA|ENHANCED|taken\r',
      ESCAPED: 'MSH|^~\\&|R|F|S|F|20260101||ACK^A01^ACK|9|P|2.5.1\rMSA|AA|ESCAPED|ok \\F\\ then \\S\\\r',
      WARNED: 'MSH|^~\\&|R|F|S|F|20260101||ACK^A01^ACK|9|P|2.5.1\rMSA|AA|WARNED\rERR||PID^1^5|0^Message accepted^HL70357|W||||name looks odd\r',
      OTHERSEP: 'MSH!^~\\&!R!F!S!F!20260101!!ACK^A01^ACK!9!P!2.5.1\rMSA!AA!OTHERSEP!fine\r',
      LATE_MSA: 'MSH|^~\\&|R|F|S|F|20260101||ACK^A01^ACK|9|P|2.5.1\rZZZ|MSA|AA\rMSA|AE|LATE_MSA|no\r',
    };
    const { port } = await startServer({ handler: (payload) => replies[parseMessage(payload).controlId] });
    const client = new MllpClient({ host: '127.0.0.1', port });
    cleanups.push(() => client.close());
    for (const [controlId, reply] of Object.entries(replies)) {
      const result = await client.send(sampleMessage(controlId));
      const full = readAck(parseMessage(reply));
      expect({ code: result.code, acknowledgedControlId: result.acknowledgedControlId, text: result.text, errors: result.errors }, controlId).toEqual(full);
      expect(result.message?.toString(), controlId).toBe(reply);
    }
  });

  test('MSH-15/16 decide which ACKs come back and which the client waits for', async () => {
    let answerApplication = true;
    const { port } = await startServer({
      handler: (payload) => {
        const acks = acknowledgements(parseMessage(payload), 'accept');
        // A receiver that commits but never reports on processing: the accept ACK alone.
        return answerApplication ? acks : acks.slice(0, 1);
      },
    });
    const client = new MllpClient({ host: '127.0.0.1', port, ackTimeoutMs: 300, errorOnlyAckWaitMs: 100 });
    cleanups.push(() => client.close());
    const asking = (controlId: string, msh15: string, msh16: string) => sampleMessage(controlId).replace('|P|2.5.1', `|P|2.5.1|||${msh15}|${msh16}`);

    // Original mode, spelled out: no accept ACK, one application ACK.
    const neAl = await client.send(asking('NE-AL', 'NE', 'AL'));
    expect(neAl).toMatchObject({ acknowledged: true, code: 'AA', acknowledgedControlId: 'NE-AL' });
    expect(neAl.accept).toBeUndefined();
    // Both: the send ends with the application ACK and carries the accept ACK before it.
    const alAl = await client.send(asking('AL-AL', 'AL', 'AL'));
    expect(alAl).toMatchObject({ code: 'AA', acknowledgedControlId: 'AL-AL', accept: { code: 'CA', acknowledgedControlId: 'AL-AL' } });
    // Application ACK only on error: a short wait, then the accept ACK stands.
    const alEr = await client.send(asking('AL-ER', 'AL', 'ER'));
    expect(alEr).toMatchObject({ code: 'CA', acknowledgedControlId: 'AL-ER' });
    // Accept ACK only on error: none comes, and the application ACK does.
    expect(await client.send(asking('ER-AL', 'ER', 'AL'))).toMatchObject({ code: 'AA', acknowledgedControlId: 'ER-AL' });
    // Nothing asked for: nothing awaited.
    expect(await client.send(asking('NE-NE', 'NE', 'NE'))).toMatchObject({ acknowledged: false, acknowledgedControlId: 'NE-NE' });

    answerApplication = false;
    await expect(client.send(asking('NO-APP', 'AL', 'AL'))).rejects.toThrow(/no application ACK for message NO-APP/);
    answerApplication = true;
    // Every ACK so far was matched to its own message: the next send starts clean.
    expect((await client.send(asking('AFTER', 'AL', 'AL'))).accept?.code).toBe('CA');
  });

  test('an ACK for another message (MSA-2 differs) is never taken as this one', async () => {
    const { port } = await startServer({
      handler: (payload) => {
        const m = parseMessage(payload);
        const stale = buildAck(m, { code: 'AA' });
        stale.set('MSA-2', 'SOMEONE-ELSE');
        const right = buildAck(m, { code: 'AE', text: 'the real answer' });
        return Buffer.concat([frame(stale.toBytes()), frame(right.toBytes())]).subarray(1, -2);
      },
    });
    const client = new MllpClient({ host: '127.0.0.1', port });
    cleanups.push(() => client.close());
    const ack = await client.send(sampleMessage('MATCH-1'));
    expect(ack).toMatchObject({ code: 'AE', acknowledgedControlId: 'MATCH-1', text: 'the real answer' });
  });

  test('an escape in MSH-10: the ACK that carries it in MSA-2 (escaped, under any delimiters) answers the message', async () => {
    // Each receiver's answer as bytes on the wire, the way the tester's receivers wrote them.
    const replies: Record<string, string> = {
      // MSA-2 = MSH-10 as received, the standard answer.
      same: 'MSH|^~\\&|R|F|S|F|20260101||ACK^A01^ACK|9|P|2.5.1\rMSA|AA|Q\\S\\7\r',
      // A receiver with other delimiters writes the same control id with its own escapes.
      own: 'MSH|$~!&|R|F|S|F|20260101||ACK$A01$ACK|9|P|2.5.1\rMSA|AA|Q^7\r',
      // ... or echoes the text as it came, which its delimiters do not read as an escape.
      echo: 'MSH|$~!&|R|F|S|F|20260101||ACK$A01$ACK|9|P|2.5.1\rMSA|AA|Q\\S\\7\r',
    };
    // MSA-2 as each ACK reads under its own delimiters.
    const said: Record<string, string> = { same: 'Q^7', own: 'Q^7', echo: 'Q\\S\\7' };
    let reply = '';
    const received: Buffer[] = [];
    const { port } = await startServer({
      handler: (payload) => {
        received.push(payload);
        return Buffer.from(reply, 'latin1');
      },
    });
    const client = new MllpClient({ host: '127.0.0.1', port, ackTimeoutMs: 2000 });
    cleanups.push(() => client.close());
    const message = 'MSH|^~\\&|E|G|H|A|2026||ADT^A01|Q\\S\\7|P|2.5.1\rPID|1||E2^^^EPI^MR||ESC\r';
    for (const [name, answer] of Object.entries(replies)) {
      reply = answer;
      const ack = await client.send(message);
      expect({ code: ack.code, acknowledgedControlId: ack.acknowledgedControlId }, name).toEqual({ code: 'AA', acknowledgedControlId: said[name] });
    }
    // Sent once each, never again for want of a matching ACK.
    expect(received.map((b) => b.toString('latin1'))).toEqual([message, message, message]);
    // Another message's ACK with an escape of its own is still not this one's.
    reply = 'MSH|^~\\&|R|F|S|F|20260101||ACK^A01^ACK|9|P|2.5.1\rMSA|AA|Q\\S\\8\r';
    await expect(client.send(message.replace('ESC', 'ESC2'))).rejects.toMatchObject({ code: 'ACK_TIMEOUT' });
  });

  test('hl7c\'s own ACK for a control id with escapes answers it: MSA-2 carries MSH-10 exactly as received', async () => {
    const seen: Buffer[] = [];
    const { port } = await startServer({
      handler: (payload, conn) => {
        const answer = ackingHandler(payload, conn) as Buffer;
        seen.push(answer);
        return answer;
      },
    });
    const client = new MllpClient({ host: '127.0.0.1', port, ackTimeoutMs: 2000 });
    cleanups.push(() => client.close());
    const ack = await client.send(sampleMessage('a\\E\\..\\E\\b'));
    expect(ack).toMatchObject({ code: 'AA', acknowledgedControlId: 'a\\..\\b' });
    expect(seen[0]!.toString('latin1').split('\r')[1]).toBe('MSA|AA|a\\E\\..\\E\\b');
  });

  test('no ACK in time rejects with ACK_TIMEOUT; the next send reconnects', async () => {
    let calls = 0;
    const { port } = await startServer({
      handler: (payload) => (++calls === 1 ? undefined : ackingHandler(payload, { id: 0, remoteAddress: '', remotePort: 0 })),
    });
    const client = new MllpClient({ host: '127.0.0.1', port, ackTimeoutMs: 200 });
    cleanups.push(() => client.close());
    await expect(client.send(sampleMessage('SLOW-1'))).rejects.toMatchObject({ code: 'ACK_TIMEOUT' });
    expect((await client.send(sampleMessage('FAST-2'))).code).toBe('AA');
  });

  test('reconnects after the receiver restarts on the same port', async () => {
    const first = new MllpServer({ host: '127.0.0.1', port: 0, handler: ackingHandler });
    const port = await first.listen();
    const client = new MllpClient({ host: '127.0.0.1', port, reconnect: { attempts: 20, initialDelayMs: 50, maxDelayMs: 200 } });
    cleanups.push(() => client.close());
    expect((await client.send(sampleMessage('R-1'))).code).toBe('AA');
    await first.close();
    const restarted = new MllpServer({ host: '127.0.0.1', port, handler: ackingHandler });
    setTimeout(() => void restarted.listen(), 300);
    cleanups.push(() => restarted.close());
    expect((await client.send(sampleMessage('R-2'))).acknowledgedControlId).toBe('R-2');
  });

  test('sends queued behind one in flight keep their order, even thousands that settle at once', async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let holding!: () => void;
    const holdArrived = new Promise<void>((r) => (holding = r));
    const seen: string[] = [];
    const { port } = await startServer({
      handler: async (payload) => {
        const m = parseMessage(payload);
        seen.push(m.controlId);
        if (m.controlId === 'HOLD') {
          holding();
          await held;
        }
        return acknowledge(m, 'accept');
      },
    });
    const client = new MllpClient({ host: '127.0.0.1', port });
    cleanups.push(() => client.close());
    const first = client.send(sampleMessage('HOLD'));
    const noControlId = Array.from({ length: 20_000 }, () => client.send(sampleMessage('')));
    const notAcked = Array.from({ length: 20_000 }, (_, i) => client.send(sampleMessage(`NE-${i}`).replace('|P|2.5.1', '|P|2.5.1|||NE')));
    const last = client.send(sampleMessage('LAST'));
    await holdArrived;
    expect(seen).toEqual(['HOLD']);
    release();
    expect((await first).code).toBe('AA');
    const failures = await Promise.allSettled(noControlId);
    expect(failures.every((f) => f.status === 'rejected' && (f.reason as MllpError).code === 'NO_CONTROL_ID')).toBe(true);
    expect((await Promise.all(notAcked)).every((r) => !r.acknowledged)).toBe(true);
    expect((await last).acknowledgedControlId).toBe('LAST');
    await waitUntil(() => seen.length === 20_002);
    expect(seen.at(1)).toBe('NE-0');
    expect(seen.at(-1)).toBe('LAST');
  });

  test('the ACK wait is measured per message: a short ER wait after a long one, and a timeout after a quick ACK', async () => {
    let answer = true;
    const { port } = await startServer({ handler: (payload) => (answer ? ackingHandler(payload, { id: 0, remoteAddress: '', remotePort: 0 }) : undefined) });
    const client = new MllpClient({ host: '127.0.0.1', port, ackTimeoutMs: 300, errorOnlyAckWaitMs: 100 });
    cleanups.push(() => client.close());
    expect((await client.send(sampleMessage('QUICK-1'))).code).toBe('AA');
    answer = false;
    const errorOnly = client.send(sampleMessage('ER-1').replace('|P|2.5.1', '|P|2.5.1|||ER'));
    await expect(errorOnly).resolves.toMatchObject({ acknowledged: false, acknowledgedControlId: 'ER-1' });
    answer = true;
    expect((await client.send(sampleMessage('QUICK-2'))).code).toBe('AA');
    // The timer armed for QUICK-2 fires 300 ms after it was sent; SILENT-1 starts halfway.
    await new Promise((r) => setTimeout(r, 150));
    answer = false;
    const started = performance.now();
    await expect(client.send(sampleMessage('SILENT-1'))).rejects.toMatchObject({ code: 'ACK_TIMEOUT' });
    // Timed out on its own wait, not on the one armed for an earlier message.
    expect(performance.now() - started).toBeGreaterThanOrEqual(290);
  });

  test('a connection closed before the ACK rejects with CONNECTION_CLOSED', async () => {
    let release!: () => void;
    const stuck = new Promise<undefined>((r) => (release = () => r(undefined)));
    let arrive!: () => void;
    const arrived = new Promise<void>((r) => (arrive = r));
    const { server, port } = await startServer({
      handler: () => {
        arrive();
        return stuck;
      },
    });
    cleanups.push(() => release());
    const client = new MllpClient({ host: '127.0.0.1', port });
    cleanups.push(() => client.close());
    const sending = client.send(sampleMessage('LOST-1'));
    await arrived;
    // Drop every open connection from the server side.
    (server as unknown as { sockets: Set<import('node:net').Socket> }).sockets.forEach((s) => s.destroy());
    await expect(sending).rejects.toBeInstanceOf(MllpError);
    await expect(sending).rejects.toMatchObject({ code: 'CONNECTION_CLOSED' });
  });
});

describe('MLLP over TLS', () => {
  const dir = join(import.meta.dirname, '../fixtures/tls');
  const pem = (name: string) => readFileSync(join(dir, name));

  test('server and client with a private CA', async () => {
    const { port } = await startServer({ tls: { key: pem('server.key'), cert: pem('server.crt') } });
    const client = new MllpClient({ host: '127.0.0.1', port, tls: { ca: pem('ca.crt'), servername: 'localhost' } });
    cleanups.push(() => client.close());
    expect((await client.send(sampleMessage('TLS-1'))).code).toBe('AA');
  });

  test('a client that does not trust the server certificate refuses to connect', async () => {
    const { port } = await startServer({ tls: { key: pem('server.key'), cert: pem('server.crt') } });
    const client = new MllpClient({ host: '127.0.0.1', port, tls: {}, reconnect: { attempts: 1 } });
    cleanups.push(() => client.close());
    await expect(client.send(sampleMessage('TLS-2'))).rejects.toMatchObject({ code: 'CONNECT_FAILED' });
  });

  test('mutual TLS: a client certificate from the CA is accepted and its CN seen; others are refused', async () => {
    const seen: string[] = [];
    const { port } = await startServer({
      tls: { key: pem('server.key'), cert: pem('server.crt'), ca: pem('ca.crt'), requireClientCertificate: true },
      handler: (payload, connection) => {
        seen.push(connection.clientCertificateCn ?? '');
        return ackingHandler(payload, connection);
      },
    });
    const good = new MllpClient({ host: '127.0.0.1', port, tls: { ca: pem('ca.crt'), cert: pem('client.crt'), key: pem('client.key'), servername: 'localhost' } });
    cleanups.push(() => good.close());
    expect((await good.send(sampleMessage('MTLS-1'))).code).toBe('AA');
    expect(seen).toEqual(['hospital-engine']);

    for (const tls of [
      { ca: pem('ca.crt'), servername: 'localhost' },
      { ca: pem('ca.crt'), cert: pem('rogue.crt'), key: pem('rogue.key'), servername: 'localhost' },
    ]) {
      const bad = new MllpClient({ host: '127.0.0.1', port, tls, reconnect: { attempts: 1 }, ackTimeoutMs: 2000 });
      cleanups.push(() => bad.close());
      await expect(bad.send(sampleMessage('MTLS-X'))).rejects.toBeInstanceOf(MllpError);
    }
    expect(seen).toEqual(['hospital-engine']);
  });
});
