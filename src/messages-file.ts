import { readFile } from 'node:fs/promises';
import { parseBatch } from '../runtime/index.js';
import type { Batch, Message } from '../runtime/index.js';

/** Reads a file of one message, several, or a batch (FHS/BHS … BTS/FTS). */
export async function readBatchFile(path: string): Promise<Batch> {
  return parseBatch(await readMessageBytes(path));
}

async function readMessageBytes(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EISDIR') {
      throw new Error(`${path} is a directory; give the files of HL7 messages in it (e.g. ${path.replace(/\/+$/, '')}/*.hl7)`);
    }
    throw err;
  }
}

export async function readMessagesFile(path: string): Promise<Message[]> {
  return (await readBatchFile(path)).messages;
}
