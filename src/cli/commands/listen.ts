import { mkdir, open } from 'node:fs/promises';
import { join } from 'node:path';
import { acknowledgements, MllpServer, receive } from '../../../runtime/index.js';
import type { Logger, Message, ServerTlsOptions } from '../../../runtime/index.js';
import type { CliIo } from '../io.js';

export interface ListenArgs {
  host: string;
  port: number;
  out?: string;
  tls?: ServerTlsOptions;
  maxMessageBytes?: number;
  idleTimeoutMs?: number;
  logger: Logger;
}

/**
 * `hl7c listen`: an MLLP receiver that writes each message to `<out>/<MSH-10>.hl7` before it
 * answers AA, and answers AR (with the reason) to what it cannot read. Handy as "the EHR" in
 * tests and demos. Runs until SIGINT/SIGTERM.
 */
export async function listenCommand(args: ListenArgs, io: CliIo): Promise<number> {
  const server = await startReceiver(args);
  const port = server.port;
  io.stdout(`listening on port ${port}\n`);
  const signal = await io.stopSignal;
  args.logger.info({ signal }, 'stopping');
  await server.close();
  // The lines of the last messages are written on the next turn.
  await new Promise((resolve) => setImmediate(resolve));
  return 0;
}

/** An MLLP receiver that stores each readable message (before answering) and ACKs per MSH-15/16: an accept ACK, an application ACK, or both. */
export async function startReceiver(args: ListenArgs): Promise<MllpServer> {
  if (args.out) await mkdir(args.out, { recursive: true });
  const log = args.logger;
  // One info line per message, written after its ACK has gone out (the sender does not wait
  // for the log), for all the messages of one event-loop turn together.
  const received: Message[] = [];
  const logReceived = (message: Message) => {
    if (received.push(message) === 1) setImmediate(writeReceived);
  };
  const writeReceived = () => {
    for (const m of received.splice(0)) log.info({ controlId: m.controlId, type: m.getRaw('MSH-9') }, 'message received');
  };
  const logging = log.isLevelEnabled('info');
  const server = new MllpServer({
    host: args.host,
    port: args.port,
    tls: args.tls,
    maxMessageBytes: args.maxMessageBytes,
    idleTimeoutMs: args.idleTimeoutMs,
    logger: log,
    handler: (payload) => {
      const result = receive(payload);
      if (!result.ok) {
        log.warn({ code: result.error.code, location: result.error.location }, 'message rejected: cannot be parsed');
        return result.reject;
      }
      const { message } = result;
      const answer = () => {
        if (logging) logReceived(message);
        return acknowledgements(message, 'accept');
      };
      // Stored before it is answered.
      return args.out ? writeUnique(args.out, message.controlId, payload).then(answer) : answer();
    },
  });
  await server.listen();
  return server;
}

/** Writes `<id>.hl7`, or `<id>-2.hl7`… when a message with that id was already stored. */
async function writeUnique(dir: string, controlId: string, bytes: Buffer): Promise<void> {
  const base = (controlId || 'no-control-id').replace(/[^A-Za-z0-9._-]/g, '_');
  for (let n = 1; ; n++) {
    const path = join(dir, n === 1 ? `${base}.hl7` : `${base}-${n}.hl7`);
    try {
      const file = await open(path, 'wx');
      try {
        await file.writeFile(bytes);
        await file.sync();
      } finally {
        await file.close();
      }
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
}
