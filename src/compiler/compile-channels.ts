import type { ChannelDefinition } from '../../runtime/index.js';
import type { Diagnostic } from '../diagnostics/diagnostic.js';
import type { LoadedSpec } from '../spec/load.js';
import { validateSpecs } from '../spec/validate.js';
import { readCachedChannel } from './channel-cache.js';
import { evaluateChannel } from './channel-module.js';

export interface CompiledChannel {
  spec: LoadedSpec & { dir: string };
  definition: ChannelDefinition;
  /** The spec text's hash, stored with every message. */
  specVersion: string;
  /** Taken from the build cache, without the compiler. */
  cached: boolean;
}

/**
 * Validates specs and turns each into a running channel: from the build cache when `hl7c
 * build` left a fresh entry in `buildDir`, otherwise generated and transpiled here (the
 * compiler is loaded only then). None when any spec has an error.
 */
export async function compileChannels(paths: string[], options: { cwd: string; env: NodeJS.ProcessEnv; buildDir?: string }): Promise<{ channels?: CompiledChannel[]; diagnostics: Diagnostic[] }> {
  const validation = await validateSpecs(paths, { cwd: options.cwd, env: options.env });
  if (!validation.ok) return { diagnostics: validation.diagnostics };
  const channels: CompiledChannel[] = [];
  for (const spec of validation.specs) {
    const cached = options.buildDir !== undefined ? readCachedChannel(options.buildDir, spec) : undefined;
    if (cached) {
      channels.push({ spec, definition: evaluateChannel(cached.js, cached.fileName, options.env), specVersion: cached.specVersion, cached: true });
      continue;
    }
    const [{ emitChannel, specHash }, { transpileChannel }] = await Promise.all([import('./emit.js'), import('./load-channel.js')]);
    const emitted = emitChannel(spec);
    const js = transpileChannel(emitted.code, emitted.fileName);
    channels.push({ spec, definition: evaluateChannel(js, emitted.fileName, options.env), specVersion: specHash(spec.text), cached: false });
  }
  return { channels, diagnostics: validation.diagnostics };
}
