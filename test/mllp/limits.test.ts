import { readFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { acknowledge, allowList, isAllowed, MllpDecoder, MllpServer, parseMessage, readAck } from '../../runtime/index.js';
import type { MllpServerOptions } from '../../runtime/index.js';
import { memoryLogger } from '../serve/helpers.js';
import { ackingHandler, frame, RawPeer, sampleMessage } from './helpers.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function startServer(options: Partial<MllpServerOptions> = {}) {
  const server = new MllpServer({ host: '127.0.0.1', port: 0, handler: ackingHandler, ...options });
  const port = await server.listen();
  cleanups.push(() => server.close(1000));
  return { server, port };
}

async function peer(port: number, host = '127.0.0.1') {
  const p = await RawPeer.connect(port, host);
  cleanups.push(() => p.end());
  return p;
}

/** Resolves when the condition holds, checking on every turn of the event loop. */
async function until(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * A sender that keeps its side open after the receiver ends the connection (as a sender that
 * has not yet seen the FIN does), so it can write once more on a connection being closed.
 */
function halfOpenPeer(port: number): Promise<{ socket: net.Socket; acks: Buffer[]; ended: Promise<void>; closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true }, () => resolve({ socket, acks, ended, closed }));
    const acks: Buffer[] = [];
    const decoder = new MllpDecoder({ frame: (p) => acks.push(p), discarded: () => undefined, truncated: () => undefined, oversize: () => undefined });
    socket.on('data', (c: Buffer) => decoder.push(c));
    const ended = new Promise<void>((r) => socket.once('end', () => r()));
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    socket.once('error', reject);
    socket.on('error', () => undefined);
    cleanups.push(() => void socket.destroy());
  });
}

describe('close() drains: every message handled is answered before its connection ends', () => {
  test('a frame being handled when close() begins gets its ACK; frames that arrive after are neither handled nor answered', async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const handled: string[] = [];
    const server = new MllpServer({
      host: '127.0.0.1',
      port: 0,
      handler: async (payload) => {
        const m = parseMessage(payload);
        handled.push(m.controlId);
        if (m.controlId === 'FIRST') await held;
        return acknowledge(m, 'accept');
      },
    });
    const port = await server.listen();
    const peer = await halfOpenPeer(port);
    peer.socket.write(frame(sampleMessage('FIRST')));
    await until(() => handled.length === 1, 'the first message to reach the handler');

    const closing = server.close(5000);
    // Sent while the listener drains.
    peer.socket.write(frame(sampleMessage('DURING')));
    release();
    await peer.ended;
    // Sent after the receiver ended the connection, before this side has closed.
    peer.socket.write(frame(sampleMessage('AFTER')));
    peer.socket.end();
    await closing;
    await peer.closed;

    // Whatever was handled (a real handler stores it) was answered; nothing else was handled.
    expect(peer.acks.map((a) => readAck(parseMessage(a)).acknowledgedControlId)).toEqual(handled);
    expect(handled).toEqual(['FIRST']);
  });
});

describe('bytes outside frames: counted, and logged at a bounded rate', () => {
  test('1,000 noise bytes from 50 connections give a few log lines and an exact count', async () => {
    const { logger, lines } = memoryLogger();
    const { server, port } = await startServer({ logger });
    const peers = await Promise.all(Array.from({ length: 50 }, () => peer(port)));
    for (let round = 0; round < 20; round++) {
      for (const p of peers) p.socket.write('x');
      await new Promise((r) => setTimeout(r, 2));
    }
    await until(() => server.counters.bytesOutsideFrames === 1000, 'every noise byte to be counted');
    const noise = lines.filter((l) => String(l.msg).startsWith('bytes outside an MLLP frame'));
    expect(noise.length).toBeGreaterThan(0);
    expect(noise.length).toBeLessThanOrEqual(5);
    // The connections still work.
    await peers[0]!.write(frame(sampleMessage('AFTER-NOISE')));
    expect(readAck(parseMessage((await peers[0]!.waitForFrames(1))[0]!)).code).toBe('AA');
  });
});

describe('source limits', () => {
  test('max_connections: a connection past the limit is closed on arrival and counted; a slot freed is usable again', async () => {
    const { server, port } = await startServer({ maxConnections: 2 });
    const a = await peer(port);
    const b = await peer(port);
    await a.write(frame(sampleMessage('A')));
    await a.waitForFrames(1);
    const c = await peer(port);
    await c.waitForClose();
    expect(c.frames).toEqual([]);
    expect(server.counters.refusedTooMany).toBe(1);
    await b.write(frame(sampleMessage('B')));
    expect(readAck(parseMessage((await b.waitForFrames(1))[0]!)).code).toBe('AA');
    a.end();
    await until(() => server.connectionCount === 1, 'the freed slot');
    const d = await peer(port);
    await d.write(frame(sampleMessage('D')));
    expect(readAck(parseMessage((await d.waitForFrames(1))[0]!)).acknowledgedControlId).toBe('D');
  });

  test('the idle timeout is on by default', async () => {
    const { DEFAULT_IDLE_TIMEOUT_MS } = await import('../../runtime/index.js');
    expect(DEFAULT_IDLE_TIMEOUT_MS).toBeGreaterThan(0);
    const { server, port } = await startServer({ idleTimeoutMs: 100 });
    const p = await peer(port);
    await p.waitForClose();
    expect(server.counters.closedIdle).toBe(1);
  });

  test('connections dripping partial frames past the shared budget are closed and counted; others go on', async () => {
    const { logger, lines } = memoryLogger();
    const { server, port } = await startServer({ maxBufferedBytes: 64 * 1024, logger });
    const drippers = await Promise.all(Array.from({ length: 8 }, () => peer(port)));
    for (const d of drippers) d.socket.write(Buffer.concat([Buffer.of(0x0b), Buffer.from(sampleMessage('DRIP'))]));
    for (let i = 0; i < 40; i++) {
      for (const d of drippers) if (!d.closed) d.socket.write(Buffer.alloc(1024, 0x41));
      await new Promise((r) => setTimeout(r, 2));
    }
    await until(() => server.counters.closedOverBudget > 0, 'a connection closed over budget');
    expect(server.bufferedBytes).toBeLessThanOrEqual(64 * 1024);
    expect(lines.some((l) => String(l.msg).includes('maximum buffered bytes'))).toBe(true);
    const normal = await peer(port);
    await normal.write(frame(sampleMessage('NORMAL')));
    expect(readAck(parseMessage((await normal.waitForFrames(1))[0]!)).acknowledgedControlId).toBe('NORMAL');
  });
});

describe('source security', () => {
  test('allow list: an address outside it is closed unanswered and counted, the handler never called', async () => {
    let calls = 0;
    const { server, port } = await startServer({
      allow: ['10.0.0.0/8', 'fd00::/8'],
      handler: (p, c) => {
        calls++;
        return ackingHandler(p, c);
      },
    });
    const p = await peer(port);
    await p.write(frame(sampleMessage('OUTSIDER')));
    await p.waitForClose();
    expect(p.frames).toEqual([]);
    expect(calls).toBe(0);
    expect(server.counters.refusedNotAllowed).toBe(1);
  });

  test('allow list: IPv4 and IPv6 blocks, single addresses, and IPv4-mapped IPv6 addresses', async () => {
    const list = allowList(['127.0.0.0/8', '::1', '2001:db8::/32', '192.168.10.5']);
    expect(isAllowed(list, '127.0.0.1')).toBe(true);
    expect(isAllowed(list, '::ffff:127.0.0.1')).toBe(true);
    expect(isAllowed(list, '::1')).toBe(true);
    expect(isAllowed(list, '2001:db8:1::7')).toBe(true);
    expect(isAllowed(list, '192.168.10.5')).toBe(true);
    expect(isAllowed(list, '192.168.10.6')).toBe(false);
    expect(isAllowed(list, '2001:db9::1')).toBe(false);
    expect(isAllowed(list, '')).toBe(false);
    expect(() => allowList(['10.0.0.0/33'])).toThrow(/not an IPv4 or IPv6 address or CIDR block/);
    expect(() => allowList(['hospital.example'])).toThrow(/not an IPv4 or IPv6/);
    // Over a real IPv6 socket.
    const { port } = await startServer({ host: '::1', allow: ['::1/128'] });
    const p = await peer(port, '::1');
    await p.write(frame(sampleMessage('V6')));
    expect(readAck(parseMessage((await p.waitForFrames(1))[0]!)).acknowledgedControlId).toBe('V6');
  });

  test('plaintext on a TLS port is refused: no message handled, the connection closed, counted', async () => {
    const dir = join(import.meta.dirname, '../fixtures/tls');
    const pem = (name: string) => readFileSync(join(dir, name));
    let calls = 0;
    const { server, port } = await startServer({
      tls: { key: pem('server.key'), cert: pem('server.crt') },
      handler: (p, c) => {
        calls++;
        return ackingHandler(p, c);
      },
    });
    const p = await peer(port);
    await p.write(frame(sampleMessage('PLAIN')));
    await p.waitForClose();
    expect(p.frames).toEqual([]);
    expect(calls).toBe(0);
    await until(() => server.counters.refusedTls === 1, 'the refusal to be counted');
  });
});
