import { readFile } from 'node:fs/promises';
import { parseBatch } from '../runtime/index.js';
import type { Batch, Message } from '../runtime/index.js';

/** Reads a file of one message, several, or a batch (FHS/BHS … BTS/FTS). */
export async function readBatchFile(path: string): Promise<Batch> {
  return parseBatch(await readFile(path));
}

export async function readMessagesFile(path: string): Promise<Message[]> {
  return (await readBatchFile(path)).messages;
}
