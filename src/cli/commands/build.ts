import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { buildSpecs } from '../../compiler/build.js';
import { writeCachedChannel } from '../../compiler/channel-cache.js';
import { specHash } from '../../compiler/emit.js';
import { transpileChannel } from '../../compiler/load-channel.js';
import type { CliIo } from '../io.js';
import { specArguments } from '../spec-args.js';
import { printDiagnostics } from './validate.js';

export interface BuildArgs {
  specs: string[];
  out: string;
}

/**
 * `hl7c build`: one TypeScript module per channel in `out`; writes nothing if a spec has errors.
 * Beside each module goes the compiled channel (`<channel>.channel.json`) that `hl7c serve` and
 * `hl7c test` run without loading the compiler while the spec and its inputs are unchanged.
 */
export async function buildCommand(args: BuildArgs, io: CliIo): Promise<number> {
  const result = await buildSpecs(specArguments(args.specs, io.cwd), { cwd: io.cwd });
  printDiagnostics(result.diagnostics, 'text', io);
  if (!result.ok) {
    io.stderr('build stopped: fix the errors above; nothing was written\n');
    return 1;
  }
  const out = resolve(io.cwd, args.out);
  await mkdir(out, { recursive: true });
  for (const [i, file] of result.files.entries()) {
    await writeFile(join(out, file.fileName), file.code);
    writeCachedChannel(out, result.specs[i]!, { fileName: file.fileName, specVersion: specHash(result.specs[i]!.text), js: transpileChannel(file.code, file.fileName) });
    io.stdout(`${join(args.out, file.fileName)}\n`);
  }
  return 0;
}
