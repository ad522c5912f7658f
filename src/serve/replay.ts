import { dirname } from 'node:path';
import type { LoadedChannel, ReplayReport, Store } from '../../runtime/serve/index.js';
import { Operations } from '../../runtime/serve/index.js';
import { compileChannels } from './serve.js';

/**
 * For replays outside a running serve (the CLI): a channel's current version, compiled from the
 * spec file its last serve recorded in the store (once per channel).
 */
export function specLoader(store: Store, env: NodeJS.ProcessEnv = process.env): (name: string) => Promise<LoadedChannel> {
  const compiled = new Map<string, Promise<LoadedChannel>>();
  return (name) => {
    let loading = compiled.get(name);
    if (!loading) {
      loading = (async () => {
        const spec = (await store.channelSpecs()).find((c) => c.name === name);
        if (!spec) throw new Error(`no spec is recorded for channel ${name}; run hl7c serve with it first`);
        const { channels } = await compileChannels([spec.spec_path], dirname(spec.spec_path), env);
        if (!channels) throw new Error(`the spec of channel ${name} (${spec.spec_path}) has errors; fix them before replaying`);
        return channels[0]!;
      })();
      compiled.set(name, loading);
    }
    return loading;
  };
}

/** The query/action module as the CLI uses it: no host, channels compiled from their specs. */
export function cliOperations(store: Store, env: NodeJS.ProcessEnv = process.env): Operations {
  return new Operations({ store, loadChannel: specLoader(store, env) });
}

/**
 * Sends stored messages again through the current version of their channel's spec (see
 * Operations.replay): the new outcome is recorded on the message, and new queue entries for a
 * running `hl7c serve` to send.
 */
export async function replayMessages(store: Store, ids: number[], env: NodeJS.ProcessEnv = process.env, options: { destination?: string } = {}): Promise<ReplayReport[]> {
  const ops = cliOperations(store, env);
  const reports: ReplayReport[] = [];
  for (const id of ids) reports.push(await ops.replay(id, options));
  return reports;
}
