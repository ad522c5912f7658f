import { resolve } from 'node:path';
import { compileChannels } from '../../compiler/compile-channels.js';
import type { Spec } from '../../spec/types.js';
import { runCase } from '../../testing/run-tests.js';
import type { CliIo } from '../io.js';
import { specArguments } from '../spec-args.js';
import { printDiagnostics } from './validate.js';

/**
 * `hl7c test`: runs every spec's test cases against its compiled channel, in process: the one
 * `hl7c build` left in `buildDir` when it is fresh, else one compiled now.
 */
export async function testCommand(args: { specs: string[]; buildDir?: string }, io: CliIo): Promise<number> {
  const result = await compileChannels(specArguments(args.specs, io.cwd), { cwd: io.cwd, env: process.env, buildDir: args.buildDir === undefined ? undefined : resolve(io.cwd, args.buildDir) });
  printDiagnostics(result.diagnostics, 'text', io);
  if (!result.channels) return 1;
  let passed = 0;
  let failed = 0;
  for (const { spec, definition: channel } of result.channels) {
    const cases = (spec.data as Spec).tests ?? [];
    io.stdout(`${spec.file} (${channel.name})\n`);
    for (const testCase of cases) {
      const r = await runCase(channel, testCase, spec.dir);
      if (r.passed) {
        passed++;
        io.stdout(`  ✓ ${r.name}\n`);
      } else {
        failed++;
        io.stdout(`  ✗ ${r.name}\n${r.mismatches.map((m) => `      ${m}`).join('\n')}\n`);
      }
    }
  }
  io.stdout(`${passed} passed, ${failed} failed\n`);
  return failed > 0 ? 1 : 0;
}
