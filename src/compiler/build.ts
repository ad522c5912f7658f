import { validateSpecs } from '../spec/validate.js';
import type { ValidateOptions, ValidationResult } from '../spec/validate.js';
import type { EmittedChannel } from './emit.js';
import { emitChannel } from './emit.js';

export interface BuildResult extends ValidationResult {
  /** Generated modules, file name to code; empty when validation has errors. */
  files: EmittedChannel[];
}

/** Validates, then generates a module per spec; generates nothing when any spec has an error. */
export async function buildSpecs(paths: string[], options: ValidateOptions = {}): Promise<BuildResult> {
  const validation = await validateSpecs(paths, options);
  if (!validation.ok) return { ...validation, files: [] };
  return { ...validation, files: validation.specs.map((s) => emitChannel(s)) };
}
