import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { compileForPreview, formatPreview, previewChannel } from '../../preview/preview.js';
import type { CliIo } from '../io.js';
import { printDiagnostics } from './validate.js';

export interface PreviewArgs {
  spec: string;
  /** A file with an HL7 message (or batch) or JSON; or the message or JSON itself. */
  input: string;
  json: boolean;
}

/**
 * `hl7c preview`: what the channel does with one input (outcome, ACKs, identifiers, route, each
 * destination's payload) without a store or a network. Exit 0 when the message is accepted or
 * filtered, 1 when it is rejected or an error, or the spec has errors.
 */
export async function previewCommand(args: PreviewArgs, io: CliIo): Promise<number> {
  const { channel, diagnostics } = await compileForPreview(args.spec, { cwd: io.cwd });
  printDiagnostics(diagnostics, 'text', io);
  if (!channel) {
    io.stderr('preview stopped: fix the errors above\n');
    return 1;
  }
  const previews = previewChannel(channel, await readInput(args.input, io.cwd));
  if (args.json) io.stdout(JSON.stringify(previews.length === 1 ? previews[0] : previews, null, 2) + '\n');
  else io.stdout(previews.map(formatPreview).join('\n'));
  return previews.every((p) => p.status === 'accepted' || p.status === 'filtered') ? 0 : 1;
}

async function readInput(input: string, cwd: string): Promise<Buffer> {
  const path = resolve(cwd, input);
  if (existsSync(path)) return readFile(path);
  const inline = input.trim();
  if (inline.startsWith('MSH') || inline.startsWith('{') || inline.startsWith('[')) return Buffer.from(inline, 'utf8');
  // Neither: let the error name the file that is missing.
  return readFile(path);
}
