import * as runtime from '../../runtime/index.js';
import type { ChannelDefinition } from '../../runtime/index.js';

/** The one module a generated channel imports. */
export const RUNTIME_IMPORT = 'hl7c/runtime';

/**
 * Runs a generated channel's JavaScript (CommonJS, as transpiled from the generated
 * TypeScript) with `hl7c/runtime` bound to this runtime. Needs no compiler: `hl7c serve` runs
 * cached builds through this alone.
 */
export function evaluateChannel(js: string, fileName: string, env: NodeJS.ProcessEnv = process.env): ChannelDefinition {
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
