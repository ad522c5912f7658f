import type { Diagnostic } from '../../diagnostics/diagnostic.js';
import { formatDiagnostic, sortDiagnostics } from '../../diagnostics/diagnostic.js';
import { validateSpecs } from '../../spec/validate.js';
import { knownChannels, loadServeConfig } from '../../config/serve-config.js';
import { configFileFor } from '../../spec/files.js';
import type { CliIo } from '../io.js';
import { specArguments } from '../spec-args.js';

export interface ValidateArgs {
  specs: string[];
  format: 'text' | 'json';
  /** The serve config to check (default: hl7c.config.yaml beside the specs, when there is one). */
  config?: string;
}

/** `hl7c validate`: every finding as `file:line:col: severity code: message`; exit 1 on any error. */
export async function validateCommand(args: ValidateArgs, io: CliIo): Promise<number> {
  const specs = specArguments(args.specs, io.cwd);
  const result = await validateSpecs(specs, { cwd: io.cwd });
  const configFile = configFileFor(args.specs, io.cwd, args.config);
  // Channel names are checked only against specs given, and when every one could be read: a
  // spec with a schema error would otherwise make its channel look unknown.
  const config = configFile ? await loadServeConfig(configFile, process.env, io.cwd, specs.length > 0 && result.specs.length === specs.length ? knownChannels(result.specs) : undefined) : undefined;
  const diagnostics = [...result.diagnostics, ...sortDiagnostics(config?.diagnostics ?? [])];
  printDiagnostics(diagnostics, args.format, io);
  const errors = diagnostics.filter((d) => d.severity === 'error').length;
  if (args.format === 'text') {
    const warnings = diagnostics.length - errors;
    io.stderr(`${specs.length} spec(s)${configFile ? ' and the serve config' : ''}: ${errors} error(s), ${warnings} warning(s)\n`);
  }
  return errors === 0 ? 0 : 1;
}

export function printDiagnostics(diagnostics: Diagnostic[], format: 'text' | 'json', io: CliIo): void {
  if (format === 'json') io.stdout(JSON.stringify(diagnostics, null, 2) + '\n');
  else for (const d of diagnostics) io.stderr(formatDiagnostic(d) + '\n');
}
