import { messageToJson } from '../../../runtime/index.js';
import { readBatchFile } from '../../messages-file.js';
import type { CliIo } from '../io.js';

export interface ParseArgs {
  file: string;
  to: 'json' | 'hl7';
}

/**
 * `hl7c parse`: the message as JSON (shape in runtime/hl7/json.ts) or re-encoded HL7. HL7 to a
 * program (a pipe or a file) is the message's own bytes: CR segment ends, MSH-18's character
 * set; to a terminal it is one segment per line.
 */
export async function parseCommand(args: ParseArgs, io: CliIo): Promise<number> {
  const batch = await readBatchFile(args.file);
  if (args.to === 'hl7') {
    io.stdout(io.stdoutIsTerminal ? batch.toString().replace(/\r/g, '\n') : batch.toBytes());
    return 0;
  }
  const messages = batch.messages.map(messageToJson);
  const single = messages.length === 1 && batch.envelope.every((s) => s.isBlank);
  const json = single ? messages[0] : { envelope: batch.envelope.filter((s) => !s.isBlank).map((s) => s.toString()), messages };
  io.stdout(JSON.stringify(json, null, 2) + '\n');
  return 0;
}
