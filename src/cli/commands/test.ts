import { buildSpecs } from '../../compiler/build.js';
import { loadChannel } from '../../compiler/load-channel.js';
import type { Spec } from '../../spec/types.js';
import { runCase } from '../../testing/run-tests.js';
import type { CliIo } from '../io.js';
import { specArguments } from '../spec-args.js';
import { printDiagnostics } from './validate.js';

/** `hl7c test`: runs every spec's test cases against its compiled channel, in process. */
export async function testCommand(args: { specs: string[] }, io: CliIo): Promise<number> {
  const result = await buildSpecs(specArguments(args.specs, io.cwd), { cwd: io.cwd });
  printDiagnostics(result.diagnostics, 'text', io);
  if (!result.ok) return 1;
  let passed = 0;
  let failed = 0;
  for (const [i, spec] of result.specs.entries()) {
    const file = result.files[i]!;
    const channel = loadChannel(file.code, file.fileName);
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
