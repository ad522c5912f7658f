import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { buildSpecs } from '../../compiler/build.js';
import type { CliIo } from '../io.js';
import { specArguments } from '../spec-args.js';
import { printDiagnostics } from './validate.js';

export interface BuildArgs {
  specs: string[];
  out: string;
}

/** `hl7c build`: one TypeScript module per channel in `out`; writes nothing if a spec has errors. */
export async function buildCommand(args: BuildArgs, io: CliIo): Promise<number> {
  const result = await buildSpecs(specArguments(args.specs, io.cwd), { cwd: io.cwd });
  printDiagnostics(result.diagnostics, 'text', io);
  if (!result.ok) {
    io.stderr('build stopped: fix the errors above; nothing was written\n');
    return 1;
  }
  const out = resolve(io.cwd, args.out);
  await mkdir(out, { recursive: true });
  for (const file of result.files) {
    await writeFile(join(out, file.fileName), file.code);
    io.stdout(`${join(args.out, file.fileName)}\n`);
  }
  return 0;
}
