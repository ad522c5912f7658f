import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { CORPUS_DIR, REPO_ROOT } from './corpus.js';

/**
 * Traffic for the crash matrix and the soak: real corpus messages, each sent under a control id
 * of its own so what the sender got acknowledged can be looked up in the store and at the
 * receiver; and a receiver that counts what it got by Idempotency-Key.
 */

/** Categories of the corpus that hold single, well-formed messages (batch, edge and malformed are left to the fuzz suite). */
const TRAFFIC_CATEGORIES = ['adt', 'oru', 'orm', 'siu', 'mdm', 'dft'];

/** A corpus message with its MSH-10 cut out: the text before it and after it (latin1, byte for byte). */
export interface MessageTemplate {
  name: string;
  before: string;
  after: string;
}

export function corpusTemplates(): MessageTemplate[] {
  const templates: MessageTemplate[] = [];
  for (const category of TRAFFIC_CATEGORIES) {
    for (const file of readdirSync(join(CORPUS_DIR, category)).sort()) {
      const text = readFileSync(join(CORPUS_DIR, category, file)).toString('latin1');
      const template = splitAtControlId(text);
      if (template) templates.push({ name: `${category}/${file}`, ...template });
    }
  }
  return templates;
}

/** The message's bytes with MSH-10 replaced. */
export function withControlId(template: MessageTemplate, controlId: string): Buffer {
  return Buffer.from(template.before + controlId + template.after, 'latin1');
}

function splitAtControlId(text: string): { before: string; after: string } | undefined {
  if (!text.startsWith('MSH')) return undefined;
  const separator = text[3]!;
  const headerEnd = text.search(/[\r\n]/);
  // MSH-1 is the separator itself, so MSH-10 starts after the 9th separator.
  let at = 3;
  for (let field = 1; field < 10; field++) {
    at = text.indexOf(separator, at + (field === 1 ? 0 : 1));
    if (at < 0 || (headerEnd >= 0 && at > headerEnd)) return undefined;
  }
  const end = text.slice(at + 1).search(new RegExp(`[\\r\\n${separator.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&')}]`));
  const stop = end < 0 ? text.length : at + 1 + end;
  return { before: text.slice(0, at + 1), after: text.slice(stop) };
}

/** What an HTTP destination got, by Idempotency-Key: how many times, and the bodies (to check repeats carry the same payload). */
export interface CountingReceiver {
  url: string;
  /** Successful (2xx) receipts by Idempotency-Key, per path. */
  received: Map<string, { count: number; body: string }>;
  /** Requests answered with a failure on purpose. */
  failed: number;
  /** Receipts that repeated a key already received (at-least-once). */
  duplicates: number;
  /** Called on every successful receipt. */
  onReceive?: (key: string, path: string) => void;
  close(): Promise<void>;
}

/**
 * An HTTP receiver that counts by Idempotency-Key per path (`<path> <key>`), and answers 503 to
 * the given share of requests (a flaky far side).
 */
export async function startCountingReceiver(options: { failRate?: number; random?: () => number } = {}): Promise<CountingReceiver> {
  const failRate = options.failRate ?? 0;
  const random = options.random ?? Math.random;
  const receiver: CountingReceiver = { url: '', received: new Map(), failed: 0, duplicates: 0, close: async () => undefined };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (random() < failRate) {
        receiver.failed++;
        res.writeHead(503);
        res.end();
        return;
      }
      const path = (req.url ?? '/').split('?')[0]!;
      const key = `${path} ${String(req.headers['idempotency-key'] ?? '')}`;
      const body = Buffer.concat(chunks).toString('utf8');
      const seen = receiver.received.get(key);
      if (seen) {
        receiver.duplicates++;
        seen.count++;
        // A repeat must be the same delivery, not a second message under the same key.
        if (seen.body !== body) seen.body = `MISMATCH: ${seen.body} <> ${body}`;
      } else receiver.received.set(key, { count: 1, body });
      receiver.onReceive?.(key, path);
      res.writeHead(200);
      res.end();
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  receiver.url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  receiver.close = () =>
    new Promise<void>((r) => {
      server.close(() => r());
      server.closeAllConnections();
    });
  return receiver;
}

/** `hl7c serve` as shipped, in a child process; resolves once its channels listen. */
export interface ServeProcess {
  child: ChildProcess;
  /** Channel name to port. */
  ports: Record<string, number>;
  adminPort?: number;
  stderr(): string;
  /** Resolves with the exit code, or the signal that ended it. */
  exited: Promise<number | NodeJS.Signals>;
}

export function startServe(
  args: string[],
  env: NodeJS.ProcessEnv,
  options: {
    stderrTo?: number;
    readyTimeoutMs?: number;
    /** A command that runs the server (its arguments appended), e.g. in a mount namespace of its own; it must exec it, keeping the pid. */
    wrap?: string[];
  } = {},
): Promise<ServeProcess> {
  const command = [...(options.wrap ?? []), process.execPath, join(REPO_ROOT, 'bin/hl7c.js'), 'serve', ...args];
  const child = spawn(command[0]!, command.slice(1), {
    cwd: REPO_ROOT,
    env,
    stdio: ['ignore', 'pipe', options.stderrTo ?? 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => {
    // Kept short: a test needs the last lines (the fault point, an error), not megabytes of logs.
    stderr = (stderr + c.toString('utf8')).slice(-64 * 1024);
  });
  const exited = new Promise<number | NodeJS.Signals>((r) => child.once('exit', (code, signal) => r(code ?? signal ?? -1)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`hl7c serve not ready: ${stdout} ${stderr}`)), options.readyTimeoutMs ?? 30_000);
    child.stdout!.on('data', (c: Buffer) => {
      stdout += c.toString('utf8');
      if (!/^serving; store /m.test(stdout)) return;
      clearTimeout(timer);
      const ports: Record<string, number> = {};
      for (const m of stdout.matchAll(/^channel (\S+) on port (\d+)$/gm)) ports[m[1]!] = Number(m[2]);
      const admin = /^admin on port (\d+)/m.exec(stdout);
      resolve({ child, ports, adminPort: admin ? Number(admin[1]) : undefined, stderr: () => stderr, exited });
    });
    void exited.then((how) => {
      clearTimeout(timer);
      reject(new Error(`hl7c serve exited (${how}) before it was ready: ${stderr}`));
    });
  });
}
