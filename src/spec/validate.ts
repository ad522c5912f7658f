import { dirname, resolve } from 'node:path';
import type { Diagnostic } from '../diagnostics/diagnostic.js';
import { hasErrors, sortDiagnostics } from '../diagnostics/diagnostic.js';
import type { LoadedSpec } from './load.js';
import { loadSpec } from './load.js';
import { schemaDiagnostics } from './schema.js';
import { crossSpecDiagnostics, semanticDiagnostics } from './semantic.js';

export interface ValidateOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export interface ValidationResult {
  /** Specs that passed the schema (semantic errors may remain: see diagnostics). */
  specs: Array<LoadedSpec & { dir: string }>;
  diagnostics: Diagnostic[];
  ok: boolean;
}

/** Loads and checks specs: YAML, environment, JSON Schema, meaning, and across specs. */
export async function validateSpecs(paths: string[], options: ValidateOptions = {}): Promise<ValidationResult> {
  const cwd = options.cwd ?? process.cwd();
  const env = options.env ?? process.env;
  const diagnostics: Diagnostic[] = [];
  const specs: ValidationResult['specs'] = [];
  for (const path of paths) {
    const absolute = resolve(cwd, path);
    const { spec, diagnostics: loadDiagnostics } = await loadSpec(absolute, env, cwd);
    diagnostics.push(...loadDiagnostics);
    if (!spec) continue;
    const schema = schemaDiagnostics(spec);
    diagnostics.push(...schema);
    if (schema.length > 0) continue;
    const dir = dirname(absolute);
    diagnostics.push(...semanticDiagnostics(spec, dir));
    specs.push({ ...spec, dir });
  }
  diagnostics.push(...crossSpecDiagnostics(specs));
  const sorted = sortDiagnostics(diagnostics);
  return { specs, diagnostics: sorted, ok: !hasErrors(sorted) };
}
