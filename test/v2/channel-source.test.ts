import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { MllpClient } from '../../runtime/index.js';
import { startServing } from '../../src/serve/serve.js';
import { validateSpecs } from '../../src/spec/validate.js';
import { cli } from '../cli/helpers.js';
import { adtMessage, memoryLogger, waitFor } from '../serve/helpers.js';

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function writeSpecs(specs: Record<string, string>) {
  const dir = mkdtempSync(join(tmpdir(), 'hv2-channel-source-'));
  const files = Object.entries(specs).map(([name, text]) => {
    writeFileSync(join(dir, name), text.replaceAll('$DIR', dir));
    return join(dir, name);
  });
  return { dir, files };
}

async function serve(specs: Record<string, string>) {
  const { dir, files } = writeSpecs(specs);
  const { logger } = memoryLogger();
  const serving = await startServing({ specs: files, storePath: join(dir, 'store.db'), cwd: dir, env: {}, logger, watch: false });
  cleanups.push(() => serving.close());
  const send = async (channel: string, message: string) => {
    const client = new MllpClient({ host: '127.0.0.1', port: serving.ports()[channel]! });
    cleanups.push(() => client.close());
    return client.send(message);
  };
  return { dir, serving, send };
}

const FRONT = (rest: string) => `channel: front
source: { mllp: { host: 127.0.0.1, port: 0 } }
${rest}`;

describe('source: {channel: {input}}', () => {
  test('an HL7 channel source has no port and receives what another channel hands it', async () => {
    const { dir, serving, send } = await serve({
      'front.yaml': FRONT('destinations:\n  index:\n    channel: patient-index\n'),
      'index.yaml': `channel: patient-index
source:
  channel: { input: hl7 }
identifiers:
  patient: { kind: patient, assigning_authority: EPI, type_code: MR, required: true }
map:
  mrn: { identifier: patient }
  family: { path: PID-5.1 }
destinations:
  out: { file: { dir: $DIR/out } }
`,
    });
    expect(Object.keys(serving.ports())).toEqual(['front']);
    expect((await send('front', adtMessage('CS-1', 'E42'))).code).toBe('AA');
    await waitFor(() => existsSync(join(dir, 'out', 'CS-1.json')), 10_000, 'the file from the channel source');
    expect(JSON.parse(readFileSync(join(dir, 'out', 'CS-1.json'), 'utf8'))).toEqual({ mrn: 'E42', family: 'Doe' });
    const messages = await serving.store.listMessages();
    expect(messages.map((m) => [m.channel, m.status, m.source])).toEqual([
      ['front', 'accepted', expect.stringMatching(/^mllp:/)],
      ['patient-index', 'accepted', 'channel:front'],
    ]);
    // No ACK is sent anywhere for a hand-off: none is stored.
    expect((await serving.store.getMessage(2))!.message.ack_code).toBeNull();
  });

  test('a JSON channel source builds HL7 from the JSON a mapping channel hands it', async () => {
    const { dir, send } = await serve({
      'front.yaml': FRONT('map:\n  mrn: { path: PID-3.1 }\n  family: { path: PID-5.1 }\ndestinations:\n  writer:\n    channel: writer\n'),
      'writer.yaml': `channel: writer
source:
  channel: { input: json }
build:
  message_type: ADT^A31
  version: "2.5.1"
  segments:
    - segment: PID
      fields: { PID-3.1: { json: mrn }, PID-5.1: { json: family } }
destinations:
  out: { file: { dir: $DIR/built, file_name: "{channel}.hl7" } }
`,
    });
    expect((await send('front', adtMessage('CS-2', 'E7'))).code).toBe('AA');
    await waitFor(() => existsSync(join(dir, 'built', 'writer.hl7')), 10_000, 'the built message on disk');
    const built = readFileSync(join(dir, 'built', 'writer.hl7'), 'latin1').split('\r');
    expect(built[0]).toMatch(/^MSH\|\^~\\&\|.*\|ADT\^A31\|/);
    expect(built[1]).toBe('PID|||E7||Doe');
  });

  test('validate: a channel source declares its input, checked against every channel that hands to it', async () => {
    const { files, dir } = writeSpecs({
      'mapper.yaml': 'channel: mapper\nsource: { mllp: { port: 2701 } }\nmap:\n  mrn: { path: PID-3.1 }\ndestinations:\n  next:\n    channel: index\n',
      'forwarder.yaml': 'channel: forwarder\nsource: { mllp: { port: 2702 } }\ndestinations:\n  next:\n    channel: index\n',
      'index.yaml': 'channel: index\nsource:\n  channel: { input: hl7 }\ndestinations:\n  out: { file: { dir: out } }\n',
      'nobuild.yaml': 'channel: nobuild\nsource:\n  channel: { input: json }\ndestinations:\n  out: { file: { dir: out } }\n',
      'noinput.yaml': 'channel: noinput\nsource:\n  channel: {}\n',
    });
    const result = await validateSpecs(files, { cwd: dir, env: {} });
    expect(result.diagnostics.map((d) => `${d.file}:${d.line}:${d.column} ${d.code}`)).toEqual([
      'mapper.yaml:7:14 spec/hand-off-kind',
      'nobuild.yaml:3:21 spec/build-required',
      'noinput.yaml:3:3 schema/missing-property',
    ]);
    expect(result.diagnostics[0]!.message).toBe('destination next hands JSON (this channel maps) to channel index, which takes HL7 (index.yaml)');
  });

  test('hl7c test runs the tests of a channel-source spec (no ACK: ack none)', async () => {
    const { files } = writeSpecs({
      'index.yaml': `channel: index
source:
  channel: { input: hl7 }
map:
  mrn: { path: PID-3.1 }
destinations:
  out: { file: { dir: out } }
tests:
  - name: maps the MRN
    input: "MSH|^~\\\\&|A|B|C|D|20261125||ADT^A08|T1|P|2.5.1\\rPID|1||E9^^^EPI^MR\\r"
    expect: { ack: none, status: accepted, output: { mrn: E9 } }
`,
    });
    const r = await cli('test', files[0]!);
    expect(r.stdout + r.stderr).toMatch(/1 passed/);
    expect(r.code).toBe(0);
  });
});
