import { isPositiveAck, MllpClient } from '../../../runtime/index.js';
import type { ClientTlsOptions, Logger, Message } from '../../../runtime/index.js';
import { readMessagesFile } from '../../messages-file.js';
import type { CliIo } from '../io.js';

export interface SendArgs {
  host: string;
  port: number;
  files: string[];
  tls?: ClientTlsOptions;
  timeoutMs: number;
  logger: Logger;
}

const STOPPED = Symbol('stopped');
const SIGNAL_NUMBERS: Record<string, number> = { SIGINT: 2, SIGTERM: 15 };

/**
 * `hl7c send`: every message of every file over MLLP; prints `<MSA-1> <MSA-2>` per ACK (an
 * accept ACK and an application ACK when MSH-15/16 ask for both), or `- <MSH-10>` for a message
 * that asked for no ACK and got none.
 *
 * A file that cannot be read or parsed is named on stderr and skipped; the others are still
 * sent and the exit code is 1. SIGINT/SIGTERM stop the run at once, even while the client is
 * retrying a receiver that does not answer: stderr says what was acknowledged and what was
 * not sent, and the exit code is 128 + the signal number.
 */
export async function sendCommand(args: SendArgs, io: CliIo): Promise<number> {
  const client = new MllpClient({ host: args.host, port: args.port, tls: args.tls, ackTimeoutMs: args.timeoutMs, logger: args.logger });
  let failed = 0;
  let acknowledged = 0;
  let stoppedBy: string | undefined;
  const stopped: Promise<typeof STOPPED> = io.stopSignal.then((signal) => {
    stoppedBy = signal;
    return STOPPED;
  });
  // Per file: how many of its messages were not sent (or not acknowledged) when the run stopped.
  const notSent: string[] = [];
  try {
    for (const [f, file] of args.files.entries()) {
      if (stoppedBy) {
        notSent.push(`${file}: not read`, ...args.files.slice(f + 1).map((rest) => `${rest}: not read`));
        break;
      }
      let messages: Message[];
      try {
        messages = await readMessagesFile(file);
      } catch (err) {
        failed++;
        io.stderr(`hl7c: ${file}: ${(err as Error).message}; skipped, the other files are sent\n`);
        continue;
      }
      for (const [i, message] of messages.entries()) {
        try {
          const ack = await Promise.race([client.send(message), stopped]);
          if (ack === STOPPED) {
            notSent.push(`${file}: ${messages.length - i} of ${messages.length} message(s) from MSH-10 ${message.controlId} (that one may have arrived unacknowledged)`);
            notSent.push(...args.files.slice(f + 1).map((rest) => `${rest}: not read`));
            break;
          }
          if (!ack.acknowledged) {
            // The message itself asked for no ACK (MSH-15 NE, or ER and nothing went wrong).
            io.stdout(`- ${ack.acknowledgedControlId}\n`);
            acknowledged++;
            continue;
          }
          // Enhanced mode with MSH-16: the accept ACK came first, then this application ACK.
          if (ack.accept) io.stdout(`${ack.accept.code} ${ack.accept.acknowledgedControlId}\n`);
          io.stdout(`${ack.code} ${ack.acknowledgedControlId}\n`);
          acknowledged++;
          if (!isPositiveAck(ack.code)) {
            failed++;
            const why = [ack.text, ...ack.errors].filter(Boolean);
            if (why.length) io.stderr(`${message.controlId}: ${ack.code}: ${[...new Set(why)].join('; ')}\n`);
          }
        } catch (err) {
          failed++;
          io.stderr(`${message.controlId}: not acknowledged: ${(err as Error).message}\n`);
        }
      }
      if (stoppedBy) break;
    }
  } finally {
    // After a signal the client may be inside its reconnect backoff: closing would wait it out.
    if (stoppedBy) void client.close().catch(() => undefined);
    else await client.close();
  }
  if (stoppedBy) {
    io.stderr(`stopped by ${stoppedBy}: ${acknowledged} message(s) answered, ${failed} failed; not sent:\n${notSent.map((n) => `  ${n}\n`).join('')}`);
    return 128 + (SIGNAL_NUMBERS[stoppedBy] ?? 0);
  }
  return failed > 0 ? 1 : 0;
}
