import { ts } from 'ts-morph';
import * as runtime from '../../runtime/index.js';
import type { ChannelDefinition } from '../../runtime/index.js';
import { RUNTIME_IMPORT } from './emit.js';

/**
 * Turns generated channel code into a running module in this process: the TypeScript is
 * transpiled and evaluated with `hl7c/runtime` bound to this runtime, so `hl7c test` runs the
 * very code `hl7c build` writes.
 */
export function loadChannel(code: string, fileName: string, env: NodeJS.ProcessEnv = process.env): ChannelDefinition {
  const js = ts.transpileModule(code, {
    fileName,
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: false },
  }).outputText;
  const module = { exports: {} as { default?: ChannelDefinition } };
  // ${ENV} references in the channel's config resolve against the environment it runs in.
  const bound = { ...runtime, interpolate: (template: string) => runtime.interpolate(template, env) };
  const require = (id: string) => {
    if (id === RUNTIME_IMPORT) return bound;
    throw new Error(`generated channel ${fileName} imports ${id}; channels may import only ${RUNTIME_IMPORT}`);
  };
  new Function('require', 'module', 'exports', js)(require, module, module.exports);
  const channel = module.exports.default;
  if (!channel) throw new Error(`generated channel ${fileName} has no default export`);
  return channel;
}
