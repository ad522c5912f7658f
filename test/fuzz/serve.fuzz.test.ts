import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import fc from 'fast-check';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { MllpDecoder, parseMessage, readAck } from '../../runtime/index.js';
import { openStore } from '../../runtime/serve/index.js';
import type { StoredMessage } from '../../runtime/serve/index.js';
import { startServing } from '../../src/serve/serve.js';
import type { Serving } from '../../src/serve/serve.js';
import { CORPUS_MESSAGES, FUZZ_TIMEOUT_MS, MAX_CPU_MICROS_PER_MESSAGE, cut, cutPoints, fuzzOptions, hl7Input, randomBytes } from './generators.js';
import { reference } from './reference.js';

/** Connections per CI run (times FUZZ_RUNS), each a stream of 1–6 pieces and a last good message: about 2,500 inputs. */
const RUNS = 550;
/** The source's max_message_bytes: small, so frames beyond it cost little to send. */
const MAX_MESSAGE_BYTES = 256 * 1024;
/** A case whose last answer has not come by then is a hang (not a timing assertion: answers take milliseconds). */
const HANG_MS = 15_000;

const SPEC = `channel: fuzz-in
source:
  mllp:
    host: 127.0.0.1
    port: 0
    ack_mode: as_requested
    max_message_bytes: ${MAX_MESSAGE_BYTES}
accept:
  - rule: known-types
    if: { message_type: [ADT, ORU, ORM, SIU, MDM, DFT, VXU] }
    otherwise: reject
    reason: not a message type this channel takes
identifiers:
  patient: { kind: patient, assigning_authority: EPI, type_code: MR }
map:
  event: { path: MSH-9.2 }
  patient.mrn: { identifier: patient }
  patient.family_name: { path: PID-5.1, transform: [trim, upper] }
  patient.birth_date: { path: PID-7, transform: [date] }
  patient.identifiers:
    each: PID-3
    fields:
      id: { path: PID-3.1 }
      authority: { path: PID-3.4 }
  results:
    each: OBX
    fields:
      value: { path: OBX-5 }
      observed: { path: OBX-14, transform: [datetime] }
      notes: { each: NTE, fields: { text: { path: NTE-3 } } }
destinations:
  out: { file: { dir: $DIR/out } }
`;

let dir: string;
let serving: Serving;
let port: number;
/** Error lines the server logged: a handler or a channel that threw is a bug, whatever the input. */
const errors: string[] = [];
/** Every message answered AA or CA, with the bytes sent, to find in the store after it is closed. */
const acknowledged: Array<{ id: number; raw: Buffer }> = [];
const totals = { connections: 0, inputs: 0, frames: 0, answers: 0, positive: 0, oversize: 0 };

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'hl7c-fuzz-serve-'));
  writeFileSync(join(dir, 'fuzz.yaml'), SPEC.replaceAll('$DIR', dir));
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n')) if (/"level":(50|60)/.test(line)) errors.push(line);
      done();
    },
  });
  serving = await startServing({ specs: [join(dir, 'fuzz.yaml')], storePath: join(dir, 'store.db'), cwd: dir, durability: 'process', logger: pino({ level: 'warn' }, sink), watch: false });
  port = serving.ports()['fuzz-in']!;
});

afterAll(async () => {
  await serving?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** What a fuzzed connection sends: frames of mutated corpus messages, frames over the limit, noise, cut-off frames. */
const piece = fc.oneof(
  { weight: 8, arbitrary: hl7Input(CORPUS_MESSAGES).map((p) => Buffer.concat([Buffer.from([0x0b]), p, Buffer.from([0x1c, 0x0d])])) },
  { weight: 1, arbitrary: hl7Input(CORPUS_MESSAGES).map((p) => Buffer.concat([Buffer.from([0x0b]), p, Buffer.from([0x1c])])) },
  { weight: 1, arbitrary: randomBytes(60) },
  { weight: 1, arbitrary: fc.constantFrom(Buffer.from([0x1c]), Buffer.from([0x0b]), Buffer.from([0x00]), Buffer.from('\r\n')) },
  {
    weight: 1,
    arbitrary: fc.tuple(fc.constantFrom(...CORPUS_MESSAGES), fc.integer({ min: 1, max: 512 * 1024 })).map(([m, extra]) =>
      Buffer.concat([Buffer.from([0x0b]), m, Buffer.from(`NTE|1||${'x'.repeat(MAX_MESSAGE_BYTES - m.length + extra)}\r`), Buffer.from([0x1c, 0x0d])]),
    ),
  },
);

/** A message this channel accepts, sent last on every connection: its AA says every earlier answer has come. */
const lastMessage = (n: number) => Buffer.from(`\x0bMSH|^~\\&|FUZZ|T|HL7C|APP|20261125||ADT^A08^ADT_A01|LAST-${n}|P|2.5.1\rPID|1||E1^^^EPI^MR||Doe^Jane\r\x1c\r`, 'latin1');

/** Sends the chunks on a fresh connection and collects answers until the last message's ACK arrives. */
async function exchange(chunks: Buffer[], lastControlId: string): Promise<{ answers: Buffer[]; source: string }> {
  const socket = net.connect({ host: '127.0.0.1', port });
  socket.setNoDelay(true);
  const answers: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`hang: no answer to ${lastControlId} after ${HANG_MS} ms (${answers.length} answers so far)`)), HANG_MS);
    const decoder = new MllpDecoder({
      frame: (p) => {
        answers.push(Buffer.from(p));
        if (p.toString('latin1').includes(`MSA|AA|${lastControlId}`)) {
          clearTimeout(timer);
          resolve();
        }
      },
      discarded: () => reject(new Error('bytes outside a frame in the answers')),
      truncated: () => reject(new Error('an answer was cut off by a start block')),
      oversize: () => reject(new Error('an oversize answer')),
    });
    socket.on('data', (c: Buffer) => decoder.push(c));
    socket.on('error', (err) => reject(err));
    socket.on('close', () => reject(new Error(`connection closed before the answer to ${lastControlId} (${answers.length} answers)`)));
  });
  done.catch(() => undefined);
  await new Promise<void>((r, j) => socket.once('connect', () => r()).once('error', j));
  const source = `mllp:127.0.0.1:${socket.localPort}`;
  for (const chunk of chunks) {
    socket.write(chunk);
    // Let the chunk leave as its own TCP segment now and then, so reads really are cut there.
    await new Promise((r) => setImmediate(r));
  }
  try {
    await done;
  } finally {
    socket.removeAllListeners('close');
    socket.destroy();
  }
  return { answers, source };
}

describe('fuzz: the whole serve path over a real socket (spec, SQLite store, file destination)', () => {
  test(`every frame ends stored with its answer sent, nothing hangs or crashes (${fuzzOptions(RUNS).numRuns} connections)`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(piece, { minLength: 1, maxLength: 6 }), cutPoints, async (pieces, fractions) => {
        const n = totals.connections++;
        const stream = Buffer.concat([...pieces, lastMessage(n)]);
        const expected = reference(stream, MAX_MESSAGE_BYTES).events.filter((e) => !('truncated' in e));
        const since = Date.now();
        const cpuBefore = process.cpuUsage();
        const { answers, source } = await exchange(cut(stream, fractions), `LAST-${n}`);
        const cpu = process.cpuUsage(cpuBefore);
        // All frames of the connection together took under the bound, so each did.
        expect(cpu.user + cpu.system, 'CPU time of the connection (µs)').toBeLessThan(MAX_CPU_MICROS_PER_MESSAGE);

        // The store's rows for this connection: one per complete frame, in order, with the bytes received.
        const rows = (await serving.store.listMessages({ since, limit: 1_000_000 })).filter((m) => m.source === source).sort((a, b) => a.id - b.id);
        expect(rows.map((r) => r.status === 'rejected' && /exceeds the receiver's limit/.test(r.reason ?? ''))).toEqual(expected.map((e) => 'oversize' in e));
        expected.forEach((e, i) => {
          const raw = rows[i]!.raw!.toString('latin1');
          if ('frame' in e) expect(raw).toBe(e.frame);
          else expect(e.whole!.startsWith(raw) && raw.length > 0).toBe(true);
        });
        // What went out on the wire is exactly what the store says was answered, in order.
        expect(Buffer.concat(answers).toString('latin1')).toBe(Buffer.concat(rows.flatMap((r) => (r.ack ? [r.ack] : []))).toString('latin1'));
        for (const row of rows) checkRow(row);
        for (const answer of answers) {
          const ack = readAck(parseMessage(answer));
          expect(ack.code).toMatch(/^(AA|AE|AR|CA|CE|CR)$/);
        }
        for (const row of rows) {
          if (row.ack_code && /^(AA|CA)/.test(row.ack_code)) acknowledged.push({ id: row.id, raw: row.raw! });
        }
        totals.inputs += pieces.length + 1;
        totals.frames += expected.length;
        totals.answers += answers.length;
        totals.oversize += expected.filter((e) => 'oversize' in e).length;
        expect(errors).toEqual([]);
      }),
      fuzzOptions(RUNS, { shrink: false }),
    );
    totals.positive = acknowledged.length;
    console.log(`fuzz serve: ${totals.connections} connections, ${totals.inputs} pieces sent, ${totals.frames} complete frames (${totals.oversize} over the limit), ${totals.answers} answers, ${totals.positive} AA/CA`);
  }, FUZZ_TIMEOUT_MS);

  test('after the fuzzing, every message answered AA or CA is in the store, with the bytes that were sent', async () => {
    expect(acknowledged.length).toBeGreaterThan(0);
    await serving.close();
    const store = await openStore(join(dir, 'store.db'), { cwd: dir });
    try {
      for (const { id, raw } of acknowledged) {
        const stored = await store.getMessage(id);
        expect(stored?.message.raw?.equals(raw), `message ${id}`).toBe(true);
        checkRow(stored!.message);
      }
    } finally {
      await store.close();
      serving = undefined as unknown as Serving;
    }
  });
});

/**
 * The store's row says what the answer said; and a stored frame either was answered, or it was a message that asked for no answer (an ACK, or
 * MSH-15/16 saying when to answer); and no input made the engine fail on its own (an
 * "internal error" means code threw).
 */
function checkRow(row: StoredMessage): void {
  expect(row.reason ?? '').not.toMatch(/internal error/);
  // The last code is the answer about the outcome (after a CA, the application ACK's): it says what the row says.
  const last = row.ack_code?.split(' ').pop();
  if (last === 'AA') expect(['accepted', 'filtered'], `message ${row.id}`).toContain(row.status);
  if (last === 'AR') expect(row.status, `message ${row.id}`).toBe('rejected');
  if (last === 'AE') expect(row.status, `message ${row.id}`).toBe('error');
  if (row.ack) return;
  const message = parseMessage(row.raw!);
  const asked = message.getRaw('MSH-15') !== '' || message.getRaw('MSH-16') !== '';
  const isAck = message.getRaw('MSH-9.1') === 'ACK';
  expect(asked || isAck, `message ${row.id} (${row.status}) was left unanswered`).toBe(true);
}
