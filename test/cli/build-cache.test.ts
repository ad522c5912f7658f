import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { MllpClient } from '../../runtime/index.js';
import { corpusFile } from '../corpus.js';
import { REPO, runBin, startBin, stop } from './helpers.js';

const children: Array<Parameters<typeof stop>[0]> = [];
afterEach(async () => {
  for (const c of children.splice(0)) await stop(c, 'SIGKILL');
});

// Processes on a machine shared by many: generous time, never asserted.
const SLOW = { timeout: 180_000 };
const run = (args: string[], env: NodeJS.ProcessEnv = process.env) => runBin(args, { timeoutMs: 120_000, env });

/** The environment of a node that cannot load the TypeScript compiler at all. */
const withoutCompiler: NodeJS.ProcessEnv = { ...process.env, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import ${join(REPO, 'test/fixtures/no-typescript.mjs')}`.trim() };

const spec = (dir: string, types: string) => `channel: cached-adt
source: { mllp: { host: 127.0.0.1, port: 0 } }
accept:
  - rule: wanted
    if: { message_type: [${types}] }
    otherwise: reject
destinations: { out: { file: { dir: ${dir}/out, file_name: "{message_id}.hl7" } } }
`;

async function sendAdt(port: number): Promise<string> {
  const client = new MllpClient({ host: '127.0.0.1', port });
  try {
    return (await client.send(corpusFile('adt/hamaluik-adt-a08-update.hl7'))).code;
  } finally {
    await client.close();
  }
}

describe('compiled-channel cache (issue 10, case 18)', () => {
  test('the CLI starts without loading the compiler: --help, parse', SLOW, async () => {
    const help = await run(['--help'], withoutCompiler);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: hl7c');
    const parsed = await run(['parse', join(REPO, 'examples/messages/adt-a08-update.hl7')], withoutCompiler);
    expect(parsed.stderr).toBe('');
    expect(parsed.code).toBe(0);
    // The guard works: build needs the compiler and says so.
    const built = await run(['build', join(REPO, 'examples'), '--out', mkdtempSync(join(tmpdir(), 'hl7c-nobuild-'))], withoutCompiler);
    expect(built.code).toBe(2);
    expect(built.stderr).toMatch(/ts-morph may not be loaded/);
  });

  test('serve runs what hl7c build compiled without the compiler; a changed spec is compiled again', SLOW, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hl7c-cache-'));
    const specPath = join(dir, 'adt.yaml');
    const build = join(dir, 'build');
    writeFileSync(specPath, spec(dir, 'ADT'));
    const built = await run(['build', specPath, '--out', build]);
    expect(built.code).toBe(0);
    expect(existsSync(join(build, 'cached-adt.channel.json'))).toBe(true);

    const serveArgs = ['serve', specPath, '--store', join(dir, 'store.db'), '--build', build, '--no-watch'];
    const fromCache = await startBin(serveArgs, /channel cached-adt on port (\d+)/, withoutCompiler);
    children.push(fromCache.child);
    expect(await sendAdt(Number(fromCache.match[1]))).toBe('AA');
    expect(await stop(fromCache.child)).toBe(0);
    expect(fromCache.output()).toMatch(/"from":"build cache"/);

    // The spec changes after the build: its cache entry is stale, so serve needs the compiler…
    writeFileSync(specPath, spec(dir, 'ORU'));
    const refused = await run(serveArgs, withoutCompiler);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/ts-morph may not be loaded/);
    // …and with it, runs the spec as it is now: the ADT is rejected.
    const recompiled = await startBin(serveArgs, /channel cached-adt on port (\d+)/);
    children.push(recompiled.child);
    expect(await sendAdt(Number(recompiled.match[1]))).toBe('AR');
    expect(await stop(recompiled.child)).toBe(0);
    expect(recompiled.output()).toMatch(/"from":"spec"/);
  });

  test('hl7c test runs the cached channels without the compiler', SLOW, async () => {
    const build = mkdtempSync(join(tmpdir(), 'hl7c-cache-test-'));
    expect((await run(['build', 'examples', '--out', build])).code).toBe(0);
    const tested = await run(['test', 'examples', '--build', build], withoutCompiler);
    expect(tested.stderr).toBe('');
    expect(tested.code).toBe(0);
    expect(tested.stdout).toMatch(/\d+ passed, 0 failed/);
  });
});
