import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCli } from '../../src/index.js';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN = join(REPO, 'bin/hl7c.js');

/** Runs the CLI in-process through its library entry point. */
export async function cli(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, {
    stdout: (t) => (stdout += t),
    stderr: (t) => (stderr += t),
    cwd: REPO,
    stopSignal: new Promise(() => undefined),
  });
  return { code, stdout, stderr };
}

/** Runs the real `hl7c` executable to completion. */
export function runBin(args: string[], options: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: REPO, env: options.env ?? process.env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 15_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolvePromise({ code, stdout, stderr });
    });
  });
}

/** Starts a long-running `hl7c` command and waits for a line on stdout matching `ready`. */
export async function startBin(args: string[], ready: RegExp, env: NodeJS.ProcessEnv = process.env, timeoutMs = 30_000): Promise<{ child: ChildProcessWithoutNullStreams; match: RegExpMatchArray; output: () => string }> {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: REPO, env });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (c) => (stderr += c));
  const match = await new Promise<RegExpMatchArray>((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`not ready: ${stdout} ${stderr}`)), timeoutMs);
    child.stdout.on('data', (c) => {
      stdout += c;
      const m = stdout.match(ready);
      if (m) {
        clearTimeout(timer);
        res(m);
      }
    });
    child.on('exit', (code) => rej(new Error(`exited ${code}: ${stderr}`)));
  });
  return { child, match, output: () => stdout + stderr };
}

export function stop(child: ChildProcessWithoutNullStreams, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  return new Promise((res) => {
    if (child.exitCode !== null || child.signalCode !== null) return res(child.exitCode);
    child.once('exit', (code) => res(code));
    child.kill(signal);
  });
}
