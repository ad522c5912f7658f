import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { MllpClient } from '../../runtime/index.js';
import type { DestinationConfig } from '../../runtime/index.js';
import { HAND_OFF_HOP_LIMIT } from '../../runtime/serve/host.js';
import { compileChannels, startServing } from '../../src/serve/serve.js';
import { cli } from '../cli/helpers.js';
import { corpusFile } from '../corpus.js';
import { adtMessage, memoryLogger } from './helpers.js';

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function serveSpecs(specs: Record<string, string>) {
  const dir = mkdtempSync(join(tmpdir(), 'hl7c-hand-off-'));
  const files = Object.entries(specs).map(([name, text]) => {
    writeFileSync(join(dir, name), text.replaceAll('$DIR', dir));
    return join(dir, name);
  });
  const { logger } = memoryLogger();
  const serving = await startServing({ specs: files, storePath: join(dir, 'store.db'), cwd: dir, env: {}, logger, watch: false });
  cleanups.push(() => serving.close());
  const send = async (channel: string, message: string | Buffer) => {
    const client = new MllpClient({ host: '127.0.0.1', port: serving.ports()[channel]! });
    cleanups.push(() => client.close());
    return client.send(message);
  };
  /** What validate would refuse, forced onto the running host (as a spec it cannot see could). */
  const force = async (edit: (channels: NonNullable<Awaited<ReturnType<typeof compileChannels>>['channels']>) => void) => {
    const { channels } = await compileChannels(files, dir, {});
    edit(channels!);
    await serving.host.apply(channels!);
  };
  return { dir, serving, send, force };
}

async function until<T>(read: () => Promise<T> | T, done: (value: T) => boolean, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const handTo = (channel: string): DestinationConfig => ({ target: { kind: 'channel', channel }, retry: { attempts: 3, backoff_ms: 10, max_backoff_ms: 10 }, on_failure: 'dead_letter' });

describe('hand-offs between running channels', () => {
  test('a hand-off the target rejects is a failed attempt, dead-lettered with its reason, never sent', async () => {
    const { serving, send } = await serveSpecs({
      'front.yaml': `channel: front
source: { mllp: { host: 127.0.0.1, port: 0 } }
destinations:
  next:
    channel: results
`,
      'results.yaml': `channel: results
source: { mllp: { host: 127.0.0.1, port: 0 } }
accept:
  - rule: results-only
    if: { message_type: [ORU] }
    otherwise: reject
    reason: only results
destinations: { out: { file: { dir: $DIR/out } } }
`,
    });
    expect((await send('front', corpusFile('adt/fhirconv-adt-a01-v28.hl7'))).code).toBe('AA');
    const front = await until(async () => (await serving.store.getMessage(1))!.deliveries[0]!, (d) => d.state === 'dead' || d.state === 'sent', 'the hand-off to settle');
    expect(front.state).toBe('dead');
    // Final at once: the target would reject it again.
    expect(front.attempts).toBe(1);
    expect(front.last_error).toBe('results rejected it (message 2 in results, rejected): only results (rule results-only)');
    expect((await serving.store.listMessages()).map((m) => [m.channel, m.status])).toEqual([
      ['front', 'accepted'],
      ['results', 'rejected'],
    ]);
  });

  test('JSON handed to a channel that takes HL7 ends dead with the reason, listed by hl7c messages', async () => {
    const { serving, send, force } = await serveSpecs({
      'mapper.yaml': `channel: mapper
source: { mllp: { host: 127.0.0.1, port: 0 } }
map:
  mrn: { path: PID-3.1 }
destinations: { out: { file: { dir: $DIR/out } } }
`,
      'sink.yaml': `channel: sink
source: { mllp: { host: 127.0.0.1, port: 0 } }
destinations: { out: { file: { dir: $DIR/sink } } }
`,
    });
    await force((channels) => {
      const mapper = channels.find((c) => c.definition.name === 'mapper')!.definition;
      mapper.destinations = { next: handTo('sink') };
      mapper.route = () => ['next'];
    });
    expect((await send('mapper', adtMessage('JSON-1'))).code).toBe('AA');
    const delivery = await until(async () => (await serving.store.getMessage(1))!.deliveries[0]!, (d) => d.state === 'dead' || d.state === 'sent', 'the hand-off to settle');
    expect(delivery).toMatchObject({ state: 'dead', attempts: 1, last_error: 'channel sink takes HL7; mapper hands it JSON' });
    // Nothing reached the target.
    expect((await serving.store.listMessages()).map((m) => m.channel)).toEqual(['mapper']);
    const listed = await cli('messages', '--store', serving.store.location, '--status', 'dead', '--json');
    expect(JSON.parse(listed.stdout)).toMatchObject([{ channel: 'mapper', control_id: 'JSON-1', deliveries: 'next:dead' }]);
    const shown = await cli('messages', 'show', '1', '--store', serving.store.location);
    expect(shown.stdout).toContain('channel sink takes HL7; mapper hands it JSON; dead-lettered');
  });

  test('channels forced into a loop stop at the hop limit: one message, a bounded number of copies', async () => {
    const spec = (name: string) => `channel: ${name}
source: { mllp: { host: 127.0.0.1, port: 0 } }
destinations: { out: { file: { dir: $DIR/${name} } } }
`;
    const { serving, send, force } = await serveSpecs({ 'ping.yaml': spec('ping'), 'pong.yaml': spec('pong') });
    await force((channels) => {
      for (const { definition } of channels) {
        definition.destinations = { next: handTo(definition.name === 'ping' ? 'pong' : 'ping') };
        definition.route = () => ['next'];
      }
    });
    expect((await send('ping', adtMessage('LOOP-1'))).code).toBe('AA');
    const copies = HAND_OFF_HOP_LIMIT + 1;
    const messages = await until(
      async () => {
        const rows = await serving.store.listMessages();
        return { rows, last: rows.length === copies ? (await serving.store.getMessage(rows[copies - 1]!.id))!.deliveries[0]! : undefined };
      },
      ({ last }) => last?.state === 'dead',
      'the last hand-off to be dead-lettered',
    );
    // The one received from outside, then one copy per hop, alternating, each saying which hop it was.
    expect(messages.rows.map((m) => [m.channel, m.source])).toEqual([
      ['ping', expect.stringMatching(/^mllp:/)],
      ['pong', 'channel:ping'],
      ...Array.from({ length: HAND_OFF_HOP_LIMIT - 1 }, (_, i) => [i % 2 === 0 ? 'ping' : 'pong', `channel:${i % 2 === 0 ? 'pong' : 'ping'}/hop${i + 2}`]),
    ]);
    expect(messages.last!.last_error).toBe(`hop limit: handing it to pong would be hand-off 9 in a row (at most ${HAND_OFF_HOP_LIMIT}); do the channels hand messages round in a loop?`);
    // Nothing is left queued that could make another copy: every hand-off is sent or dead.
    expect((await serving.store.listMessages()).map((m) => m.deliveries)).toEqual([...Array.from({ length: copies - 1 }, () => 'next:sent'), 'next:dead']);
  });
});
