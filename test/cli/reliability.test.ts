import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { parseMessage } from '../../runtime/index.js';
import { runCli } from '../../src/index.js';
import { CORPUS_DIR, corpusFile } from '../corpus.js';
import { BIN, REPO, runBin, startBin, stop } from './helpers.js';

const corpus = (p: string) => join(CORPUS_DIR, p);
const children: Array<Parameters<typeof stop>[0]> = [];
afterEach(async () => {
  for (const c of children.splice(0)) await stop(c, 'SIGKILL');
});

// Each test starts hl7c processes on a machine shared by many: generous time, never asserted.
const SLOW = { timeout: 180_000 };

const run = (args: string[]) => runBin(args, { timeoutMs: 120_000 });
const temp = (prefix: string) => mkdtempSync(join(tmpdir(), `hl7c-${prefix}-`));

/** Runs a shell pipeline `hl7c <args> | <reader>` as a script would; the exit status of hl7c and the reader's output file. */
function pipeline(args: string[], reader: string): Promise<{ status: number; out: Buffer; stderr: string }> {
  const dir = temp('pipe');
  const outFile = join(dir, 'out');
  const quoted = [process.execPath, BIN, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  return new Promise((resolve, reject) => {
    const shell = spawn('bash', ['-c', `${quoted} | ${reader} > '${outFile}'; exit \${PIPESTATUS[0]}`], { cwd: REPO });
    let stderr = '';
    shell.stderr.on('data', (c) => (stderr += c));
    shell.on('error', reject);
    shell.on('close', (status) => resolve({ status: status ?? -1, out: readFileSync(outFile), stderr }));
  });
}

/** A 4 MB ORU: the corpus CBC with its OBX segments repeated. */
function bigMessage(): Buffer {
  const text = corpusFile('oru/nist-lri-cbc.hl7').toString('latin1');
  const segments = text.split('\r').filter(Boolean);
  const obx = segments.filter((s) => s.startsWith('OBX'));
  const body: string[] = [...segments];
  while (body.join('\r').length < 4_000_000) body.push(...obx);
  return Buffer.from(body.join('\r') + '\r', 'latin1');
}

/** A port with no listener: connections to it are refused. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

describe('piped output is complete (issue 10, case 9)', () => {
  test('parse of a 4 MB message piped to cat: every byte arrives, exit 0', SLOW, async () => {
    const dir = temp('big');
    const big = bigMessage();
    writeFileSync(join(dir, 'big.hl7'), big);
    const hl7 = await pipeline(['parse', join(dir, 'big.hl7'), '--to', 'hl7'], 'cat');
    expect(hl7.status).toBe(0);
    expect(hl7.out.length).toBe(big.length);
    expect(hl7.out.equals(big)).toBe(true);
    const json = await pipeline(['parse', join(dir, 'big.hl7')], 'cat');
    expect(json.status).toBe(0);
    expect(json.out.length).toBeGreaterThan(big.length);
    expect(JSON.parse(json.out.toString('utf8')).segments.length).toBe(big.toString('latin1').split('\r').filter(Boolean).length);
  });

  test('a reader that stops early (| head) ends the command quietly', SLOW, async () => {
    const dir = temp('head');
    writeFileSync(join(dir, 'big.hl7'), bigMessage());
    const r = await pipeline(['parse', join(dir, 'big.hl7')], 'head -c 100');
    expect(r.out.length).toBe(100);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});

describe('parse --to hl7 writes the exact bytes (case 16)', () => {
  test('piped: CR segment ends and the MSH-18 character set (8859/1), byte for byte', SLOW, async () => {
    for (const file of ['edge/prime-elims-msh18-8859-1-with-fffd.hl7', 'edge/hapi-olis-erp-z99-latin1-zseg.hl7', 'oru/prime-oru-pdi-utf8.hl7']) {
      const r = await pipeline(['parse', corpus(file), '--to', 'hl7'], 'cat');
      expect(r.status).toBe(0);
      expect(r.out.equals(corpusFile(file)), file).toBe(true);
    }
  });

  test('to a terminal: one segment per line, readable text', SLOW, async () => {
    let stdout = '';
    const code = await runCli(['parse', corpus('edge/prime-elims-msh18-8859-1-with-fffd.hl7'), '--to', 'hl7'], {
      stdout: (t) => (stdout += typeof t === 'string' ? t : '<bytes>'),
      stderr: () => undefined,
      stdoutIsTerminal: true,
      cwd: REPO,
      stopSignal: new Promise(() => undefined),
    });
    expect(code).toBe(0);
    expect(stdout).not.toContain('\r');
    const decoded = parseMessage(corpusFile('edge/prime-elims-msh18-8859-1-with-fffd.hl7')).toString();
    expect(stdout).toBe(decoded.replace(/\r/g, '\n'));
  });
});

describe('send stops on a signal and names what it could not read (case 10)', () => {
  test('SIGTERM while retrying an unreachable receiver: stops, says what was not sent, exit 143', SLOW, async () => {
    const dir = temp('send');
    const one = corpusFile('adt/hl7apy-adt-a01-v26.hl7').toString('latin1');
    writeFileSync(join(dir, 'many.hl7'), Array.from({ length: 40 }, (_, i) => one.replace(/^(MSH(?:\|[^|\r]*){8}\|)[^|\r]*/, `$1SIG${i}`)).join(''));
    writeFileSync(join(dir, 'later.hl7'), one);
    const port = await closedPort();
    const child = spawn(process.execPath, [BIN, 'send', '--host', '127.0.0.1', '--port', String(port), join(dir, 'many.hl7'), join(dir, 'later.hl7')], { cwd: REPO });
    children.push(child);
    let stderr = '';
    // Each refused connection attempt is logged: the client is in its retry loop.
    await new Promise<void>((resolve) => {
      child.stderr.on('data', (c) => {
        stderr += c;
        if (stderr.includes('MLLP connect failed')) resolve();
      });
    });
    // Without a prompt stop the client would retry 40 messages × 5 attempts: the guard kills it.
    const guard = setTimeout(() => child.kill('SIGKILL'), 10_000);
    const code = await stop(child, 'SIGTERM');
    clearTimeout(guard);
    expect(code).toBe(143);
    expect(stderr).toMatch(/stopped by SIGTERM: 0 message\(s\) answered/);
    expect(stderr).toContain(`${join(dir, 'many.hl7')}: 40 of 40 message(s) from MSH-10 SIG0`);
    expect(stderr).toContain(`${join(dir, 'later.hl7')}: not read`);
  });

  test('an unreadable file is named and skipped; the others are sent; exit 1', SLOW, async () => {
    const out = temp('recv');
    const { child, match } = await startBin(['listen', '--port', '0', '--host', '127.0.0.1', '--out', out], /listening on port (\d+)/);
    children.push(child);
    const dir = temp('files');
    mkdirSync(join(dir, 'a-directory'));
    const files = [corpus('siu/fhirconv-siu-s12-01.hl7'), corpus('malformed/pyhl7-bad-batch-no-msh.hl7'), join(dir, 'a-directory'), corpus('oru/nist-lri-cbc.hl7')];
    const sent = await run(['send', '--host', '127.0.0.1', '--port', match[1]!, ...files]);
    expect(sent.code).toBe(1);
    const lines = sent.stdout.trim().split('\n');
    expect(lines.every((l) => /^(AA|CA) /.test(l))).toBe(true);
    expect([...new Set(lines.map((l) => l.slice(3)))]).toEqual([parseMessage(corpusFile('siu/fhirconv-siu-s12-01.hl7')).controlId, parseMessage(corpusFile('oru/nist-lri-cbc.hl7')).controlId]);
    expect(sent.stderr).toContain(`hl7c: ${corpus('malformed/pyhl7-bad-batch-no-msh.hl7')}: `);
    expect(sent.stderr).toContain(`hl7c: ${join(dir, 'a-directory')}: ${join(dir, 'a-directory')} is a directory`);
    expect(readdirSync(out)).toHaveLength(2);
  });
});

describe('directories and wrong files (case 11)', () => {
  test('validate, build and test accept a directory of specs, as serve does', SLOW, async () => {
    const validated = await run(['validate', 'examples']);
    expect(validated.stderr).not.toMatch(/EISDIR/);
    expect(validated.code).toBe(0);
    expect(validated.stderr).toMatch(/^4 spec\(s\): 0 error\(s\)/m);
    const out = temp('build');
    const built = await run(['build', 'examples', '--out', out]);
    expect(built.code).toBe(0);
    expect(readdirSync(out).filter((f) => f.endsWith('.ts')).sort()).toEqual(['adt-to-webhook.ts', 'notes-to-ehr.ts', 'results-to-ehr.ts', 'siu-appointments.ts']);
    const tested = await run(['test', 'examples']);
    expect(tested.code).toBe(0);
    expect(tested.stdout).toMatch(/\d+ passed, 0 failed/);
    const empty = await run(['validate', temp('empty')]);
    expect(empty.code).toBe(2);
    expect(empty.stderr).toMatch(/is a directory with no specs in it/);
  });

  test('parse, get and send given a directory say they want message files', SLOW, async () => {
    const dir = join(REPO, 'examples/messages');
    for (const args of [['parse', dir], ['get', dir, 'MSH-10'], ['send', '--host', '127.0.0.1', '--port', '1', dir]]) {
      const r = await run(args);
      expect(r.stderr, args[0]).not.toMatch(/EISDIR/);
      expect(r.stderr, args[0]).toContain(`${dir} is a directory; give the files of HL7 messages in it`);
      expect(r.code, args[0]).not.toBe(0);
    }
  });

  test('an HL7 message given as a spec is called one, to validate and to serve', SLOW, async () => {
    const file = corpus('oru/nist-lri-cbc.hl7');
    const validated = await run(['validate', file]);
    expect(validated.code).toBe(1);
    expect(validated.stderr).toMatch(/nist-lri-cbc\.hl7:1:1: error spec\/hl7-message: this is an HL7 message, not a spec/);
    expect(validated.stderr).not.toMatch(/must be object/);
    const served = await run(['serve', file, '--store', join(temp('serve'), 'store.db'), '--no-watch']);
    expect(served.code).toBe(2);
    expect(served.stderr).toMatch(/this is an HL7 message, not a spec/);
  });
});

describe('a store that does not exist is refused (case 12)', () => {
  test('messages, messages show, replay and prune: clear message, exit 2, nothing created', SLOW, async () => {
    const dir = temp('nostore');
    const typo = join(dir, 'typo.db');
    for (const args of [['messages', '--store', typo], ['messages', '--store', typo, '--json'], ['messages', '--store', typo, 'show', '1'], ['replay', '1', '--store', typo], ['prune', '--older-than', '30d', '--store', typo]]) {
      const r = await run(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toContain(`no store at ${typo}`);
      expect(existsSync(typo), args.join(' ')).toBe(false);
    }
    expect(readdirSync(dir)).toEqual([]);
  });
});
