import { parsePath } from '../../../runtime/index.js';
import { readMessagesFile } from '../../messages-file.js';
import type { CliIo } from '../io.js';

export interface GetArgs {
  file: string;
  paths: string[];
  json: boolean;
}

/**
 * `hl7c get`: the decoded value of each path, one line each (per message, when the file has
 * several). The HL7 null prints as `""`; line breaks inside a value print as `\n`.
 */
export async function getCommand(args: GetArgs, io: CliIo): Promise<number> {
  const paths = args.paths.map((p) => parsePath(p));
  const messages = await readMessagesFile(args.file);
  if (args.json) {
    const rows = messages.map((m) => Object.fromEntries(paths.map((p) => [p.text, m.get(p)])));
    io.stdout(JSON.stringify(rows.length === 1 ? rows[0] : rows, null, 2) + '\n');
    return 0;
  }
  for (const m of messages) {
    for (const p of paths) {
      const value = m.get(p);
      io.stdout((value === null ? '""' : value.replace(/\r\n|\r|\n/g, '\\n')) + '\n');
    }
  }
  return 0;
}
