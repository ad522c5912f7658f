import { ts } from 'ts-morph';
import type { ChannelDefinition } from '../../runtime/index.js';
import { evaluateChannel } from './channel-module.js';

/** The generated TypeScript as the CommonJS that `evaluateChannel` runs (and the build cache keeps). */
export function transpileChannel(code: string, fileName: string): string {
  return ts.transpileModule(code, {
    fileName,
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: false },
  }).outputText;
}

/**
 * Turns generated channel code into a running module in this process: the TypeScript is
 * transpiled and evaluated with `hl7c/runtime` bound to this runtime, so `hl7c test` runs the
 * very code `hl7c build` writes.
 */
export function loadChannel(code: string, fileName: string, env: NodeJS.ProcessEnv = process.env): ChannelDefinition {
  return evaluateChannel(transpileChannel(code, fileName), fileName, env);
}
