import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { parseMessage } from '../../runtime/index.js';
import { CORPUS_DIR, corpusFile } from '../corpus.js';
import { cli, REPO, runBin, startBin, stop } from './helpers.js';

const corpus = (p: string) => join(CORPUS_DIR, p);
const children: Array<Parameters<typeof stop>[0]> = [];
afterEach(async () => {
  for (const c of children.splice(0)) await stop(c, 'SIGKILL');
});

describe('hl7c parse', () => {
  test('--to json: segments with fields, repetitions, components, nulls', async () => {
    const { code, stdout } = await cli('parse', corpus('adt/hapi-adt-a03-v25-multi-pid3.hl7'));
    expect(code).toBe(0);
    const json = JSON.parse(stdout);
    const pid = json.segments.find((s: { name: string }) => s.name === 'PID');
    expect(pid.fields[2].repetitions).toHaveLength(4);
    expect(pid.fields[2].repetitions[1]).toEqual(['ZZZZZZ83M64Z148R', '', '', 'CF', 'CF']);
    expect(json.segments[0].fields[0]).toBe('|');
    expect(json.segments[0].fields[8]).toEqual(['ADT', 'A03']);
    const nulls = JSON.parse((await cli('parse', corpus('edge/hapi-bar-p01-null-values.hl7'))).stdout);
    expect(nulls.segments.find((s: { name: string }) => s.name === 'PID').fields[6]).toBeNull();
  });

  test('--to hl7 re-encodes the message', async () => {
    const { stdout } = await cli('parse', corpus('oru/nist-lri-cbc.hl7'), '--to', 'hl7');
    expect(stdout.replace(/\n/g, '\r')).toBe(corpusFile('oru/nist-lri-cbc.hl7').toString('utf8'));
  });

  test('a batch prints its messages and envelope', async () => {
    const json = JSON.parse((await cli('parse', corpus('batch/pyhl7-fhs-two-batches.hl7'))).stdout);
    expect(json.messages).toHaveLength(3);
    expect(json.envelope.map((s: string) => s.slice(0, 3))).toEqual(['FHS', 'BHS', 'BTS', 'BHS', 'BTS', 'FTS']);
  });

  test('a malformed file says what and where, exit 1', async () => {
    const { code, stderr } = await cli('parse', corpus('malformed/hl7apy-msh-duplicate-encoding-chars.hl7'));
    expect(code).toBe(1);
    expect(stderr).toMatch(/BAD_ENCODING_CHARACTERS.*segment 1 \(MSH\), field 2/);
  });
});

describe('hl7c get', () => {
  test('one decoded value per path', async () => {
    const { code, stdout } = await cli('get', corpus('adt/hapi-adt-a03-v25-multi-pid3.hl7'), 'PID-3[2].1', 'PID-3[3].4', 'MSH-9.2', 'PID-5.1');
    expect(code).toBe(0);
    expect(stdout).toBe('ZZZZZZ83M64Z148R\nSSN\nA03\nZZZ\n');
  });

  test('escapes are decoded, line breaks shown as \\n, null as ""', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hl7c-get-'));
    const file = join(dir, 'm.hl7');
    writeFileSync(file, 'MSH|^~\\&|A|B|C|D|1||ORU^R01|1|P|2.5\rOBX|1|TX|||a\\T\\b\\.br\\c|""\r');
    expect((await cli('get', file, 'OBX-5', 'OBX-6')).stdout).toBe('a&b\\nc\n""\n');
    expect(JSON.parse((await cli('get', file, 'OBX-5', 'OBX-6', '--json')).stdout)).toEqual({ 'OBX-5': 'a&b\nc', 'OBX-6': null });
  });

  test('a bad path is refused with the position', async () => {
    const { code, stderr } = await cli('get', corpus('oru/nist-lri-cbc.hl7'), 'PID-3[x]');
    expect(code).toBe(1);
    expect(stderr).toMatch(/invalid HL7 path "PID-3\[x\]" at character 7/);
  });
});

describe('hl7c listen and send, as processes over real sockets', () => {
  test('send prints MSA-1 MSA-2 per ACK; listen stores each message as <MSH-10>.hl7', async () => {
    const out = mkdtempSync(join(tmpdir(), 'hl7c-listen-'));
    const { child, match } = await startBin(['listen', '--port', '0', '--host', '127.0.0.1', '--out', out], /listening on port (\d+)/);
    children.push(child);
    const port = match[1]!;
    const files = [corpus('adt/hl7apy-adt-a01-v26.hl7'), corpus('batch/pyhl7-fhs-two-batches.hl7')];
    const sent = await runBin(['send', '--host', '127.0.0.1', '--port', port, ...files]);
    expect(sent.code).toBe(0);
    const expectedIds = [parseMessage(corpusFile('adt/hl7apy-adt-a01-v26.hl7')).controlId];
    const lines = sent.stdout.trim().split('\n');
    expect(lines).toHaveLength(5);
    // That message's MSH-16 is AL (enhanced mode): an accept ACK (CA), then an application ACK (AA).
    expect(lines.slice(0, 2)).toEqual([`CA ${expectedIds[0]}`, `AA ${expectedIds[0]}`]);
    // The batch's messages say MSH-15 and MSH-16 NE: no ACK is asked for, none is sent, none is awaited.
    expect(lines.slice(2).every((l) => l.startsWith('- '))).toBe(true);
    // Unacknowledged messages may still be being written when send exits.
    for (let i = 0; i < 100 && readdirSync(out).length < 4; i++) await new Promise((r) => setTimeout(r, 50));
    expect(readdirSync(out)).toHaveLength(4);
    expect(readFileSync(join(out, `${expectedIds[0]}.hl7`)).equals(corpusFile('adt/hl7apy-adt-a01-v26.hl7'))).toBe(true);
    expect(await stop(child)).toBe(0);
  });

  test('HL7C_LOG_LEVEL sets the level of a command that has a default of its own; --log-level wins over it', async () => {
    const file = corpus('adt/hl7apy-adt-a01-v26.hl7');
    const controlId = parseMessage(corpusFile('adt/hl7apy-adt-a01-v26.hl7')).controlId!;
    const logged = async (args: string[], level: string | undefined) => {
      const env = { ...process.env };
      delete env.HL7C_LOG_LEVEL;
      if (level) env.HL7C_LOG_LEVEL = level;
      const { child, match, output } = await startBin([...args, 'listen', '--port', '0', '--host', '127.0.0.1'], /listening on port (\d+)/, env);
      children.push(child);
      expect((await runBin(['send', '--host', '127.0.0.1', '--port', match[1]!, file])).code).toBe(0);
      expect(await stop(child)).toBe(0);
      return output().includes(controlId);
    };
    // listen logs each message at info by default.
    expect(await logged([], undefined)).toBe(true);
    expect(await logged([], 'warn')).toBe(false);
    expect(await logged(['--log-level', 'info'], 'warn')).toBe(true);
  });

  test('an unknown HL7C_LOG_LEVEL is refused naming the variable and the levels; a blank one means the default', async () => {
    const env = (level: string) => ({ ...process.env, HL7C_LOG_LEVEL: level });
    const bogus = await runBin(['validate', 'examples'], { env: env('bogus') });
    expect(bogus.code).not.toBe(0);
    expect(bogus.stderr).toContain("'bogus' from env 'HL7C_LOG_LEVEL' is invalid. a log level is one of silent, fatal, error, warn, info, debug, trace");
    const blank = await runBin(['validate', 'examples'], { env: env('') });
    expect(blank.code).toBe(0);
    expect(blank.stdout + blank.stderr).toMatch(/5 spec\(s\): 0 error\(s\)/);
  });

  test('send exits 1 when an ACK is not AA/CA and says why', async () => {
    const { child, match } = await startBin(['listen', '--port', '0', '--host', '127.0.0.1', '--max-message-bytes', '500'], /listening on port (\d+)/);
    children.push(child);
    const sent = await runBin(['send', '--host', '127.0.0.1', '--port', match[1]!, corpus('oru/prime-oru-newborn-screening-150obx.hl7')]);
    expect(sent.code).toBe(1);
    expect(sent.stdout).toMatch(/^AR /);
    expect(sent.stderr).toMatch(/exceeds the receiver's limit of 500 bytes/);
  });

  test('send and listen over mutual TLS', async () => {
    const tls = (f: string) => join(REPO, 'test/fixtures/tls', f);
    const { child, match } = await startBin(
      ['listen', '--port', '0', '--host', '127.0.0.1', '--tls-key', tls('server.key'), '--tls-cert', tls('server.crt'), '--tls-ca', tls('ca.crt'), '--require-client-cert'],
      /listening on port (\d+)/,
    );
    children.push(child);
    const port = match[1]!;
    const ok = await runBin(['send', '--host', 'localhost', '--port', port, '--ca', tls('ca.crt'), '--cert', tls('client.crt'), '--key', tls('client.key'), corpus('siu/fhirconv-siu-s12-01.hl7')]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^AA /);
    const refused = await runBin(['send', '--host', 'localhost', '--port', port, '--ca', tls('ca.crt'), '--timeout', '2000', corpus('siu/fhirconv-siu-s12-01.hl7')]);
    expect(refused.code).toBe(1);
  });

  test('send to a port nobody listens on fails clearly', async () => {
    const sent = await runBin(['send', '--host', '127.0.0.1', '--port', '1', corpus('siu/fhirconv-siu-s12-01.hl7')], { timeoutMs: 30_000 });
    expect(sent.code).toBe(1);
    expect(sent.stderr).toMatch(/could not connect to 127.0.0.1:1/);
  });
});
