import type { Diagnostic } from '../../diagnostics/diagnostic.js';
import { formatDiagnostic } from '../../diagnostics/diagnostic.js';
import { validateSpecs } from '../../spec/validate.js';
import type { CliIo } from '../io.js';
import { specArguments } from '../spec-args.js';

export interface ValidateArgs {
  specs: string[];
  format: 'text' | 'json';
}

/** `hl7c validate`: every finding as `file:line:col: severity code: message`; exit 1 on any error. */
export async function validateCommand(args: ValidateArgs, io: CliIo): Promise<number> {
  const specs = specArguments(args.specs, io.cwd);
  const result = await validateSpecs(specs, { cwd: io.cwd });
  printDiagnostics(result.diagnostics, args.format, io);
  if (args.format === 'text') {
    const errors = result.diagnostics.filter((d) => d.severity === 'error').length;
    const warnings = result.diagnostics.length - errors;
    io.stderr(`${specs.length} spec(s): ${errors} error(s), ${warnings} warning(s)\n`);
  }
  return result.ok ? 0 : 1;
}

export function printDiagnostics(diagnostics: Diagnostic[], format: 'text' | 'json', io: CliIo): void {
  if (format === 'json') io.stdout(JSON.stringify(diagnostics, null, 2) + '\n');
  else for (const d of diagnostics) io.stderr(formatDiagnostic(d) + '\n');
}
