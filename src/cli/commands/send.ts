import { isPositiveAck, MllpClient } from '../../../runtime/index.js';
import type { ClientTlsOptions, Logger } from '../../../runtime/index.js';
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

/**
 * `hl7c send`: every message of every file over MLLP; prints `<MSA-1> <MSA-2>` per ACK (an
 * accept ACK and an application ACK when MSH-15/16 ask for both), or `- <MSH-10>` for a message
 * that asked for no ACK and got none.
 */
export async function sendCommand(args: SendArgs, io: CliIo): Promise<number> {
  const client = new MllpClient({ host: args.host, port: args.port, tls: args.tls, ackTimeoutMs: args.timeoutMs, logger: args.logger });
  let failed = 0;
  try {
    for (const file of args.files) {
      for (const message of await readMessagesFile(file)) {
        try {
          const ack = await client.send(message);
          if (!ack.acknowledged) {
            // The message itself asked for no ACK (MSH-15 NE, or ER and nothing went wrong).
            io.stdout(`- ${ack.acknowledgedControlId}\n`);
            continue;
          }
          // Enhanced mode with MSH-16: the accept ACK came first, then this application ACK.
          if (ack.accept) io.stdout(`${ack.accept.code} ${ack.accept.acknowledgedControlId}\n`);
          io.stdout(`${ack.code} ${ack.acknowledgedControlId}\n`);
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
    }
  } finally {
    await client.close();
  }
  return failed > 0 ? 1 : 0;
}
