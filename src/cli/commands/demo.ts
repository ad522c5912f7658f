import { readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type { Logger } from '../../../runtime/index.js';
import type { CliIo } from '../io.js';
import { startReceiver } from './listen.js';
import { sendCommand } from './send.js';

export interface DemoArgs {
  /** Files to send; default examples/messages/*.hl7. */
  files: string[];
  out: string;
  logger: Logger;
}

/**
 * `hl7c demo`: a receiver and a sender in one process, over a real MLLP socket on a free port:
 * sends the example messages, prints each ACK, and leaves the received copies in `out`.
 */
export async function demoCommand(args: DemoArgs, io: CliIo): Promise<number> {
  let files = args.files;
  if (files.length === 0) {
    const dir = join(io.cwd, 'examples/messages');
    files = (await readdir(dir)).filter((f) => f.endsWith('.hl7')).sort().map((f) => join(dir, f));
  }
  const server = await startReceiver({ host: '127.0.0.1', port: 0, out: args.out, logger: args.logger });
  io.stdout(`MLLP receiver on 127.0.0.1:${server.port}; sending ${files.length} file(s)\n`);
  try {
    const code = await sendCommand({ host: '127.0.0.1', port: server.port, files, timeoutMs: 10_000, logger: args.logger }, io);
    io.stdout(`received messages are in ${relative(io.cwd, args.out) || '.'}/\n`);
    return code;
  } finally {
    await server.close();
  }
}
