import { dirname, isAbsolute, resolve } from 'node:path';
import type { ChannelDefinition, DestinationConfig, SourceConfig, TlsFiles } from '../channel/channel.js';

/**
 * A channel whose relative paths (a file source's dir, done_dir and error_dir, a file
 * destination's dir, TLS key, cert and ca) are resolved against the directory of its spec, as
 * lookup tables and test inputs are: where files land does not depend on where serve was started.
 * A value from the environment (`dir: ${OUT_DIR}`) is a path in the spec like any other.
 */
export function withSpecRelativePaths(definition: ChannelDefinition, specPath: string): ChannelDefinition {
  if (!specPath) return definition;
  const base = dirname(resolve(specPath));
  const at = (p: string) => (p === '' || isAbsolute(p) ? p : resolve(base, p));
  const tls = (t: TlsFiles | undefined): TlsFiles | undefined =>
    t && { ...t, ...(t.key !== undefined ? { key: at(t.key) } : {}), ...(t.cert !== undefined ? { cert: at(t.cert) } : {}), ...(t.ca !== undefined ? { ca: at(t.ca) } : {}) };
  const source = (s: SourceConfig): SourceConfig => {
    if (s.kind === 'file') return { ...s, dir: at(s.dir), done_dir: at(s.done_dir), error_dir: at(s.error_dir) };
    if (s.kind === 'mllp' && s.tls) return { ...s, tls: tls(s.tls) };
    return s;
  };
  const destination = (d: DestinationConfig): DestinationConfig => {
    const t = d.target;
    if (t.kind === 'file') return { ...d, target: { ...t, dir: at(t.dir) } };
    if (t.kind === 'mllp' && t.tls) return { ...d, target: { ...t, tls: tls(t.tls) } };
    return d;
  };
  return {
    ...definition,
    source: source(definition.source),
    destinations: Object.fromEntries(Object.entries(definition.destinations).map(([name, d]) => [name, destination(d)])),
  };
}
