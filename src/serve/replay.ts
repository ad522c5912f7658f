import { dirname } from 'node:path';
import { ackCodesOf, deliveryPayloads, runChannel } from '../../runtime/index.js';
import type { LoadedChannel, Store } from '../../runtime/serve/index.js';
import { compileChannels } from './serve.js';

export interface ReplayResult {
  id: number;
  channel: string;
  status: string;
  reason?: string;
  queued: string[];
}

/**
 * Sends stored messages again through the current version of their channel's spec: the new
 * outcome is recorded on the message (its history keeps the old one), unfinished or dead queue
 * entries are closed as replayed, and new ones are queued for a running `hl7c serve` to send.
 */
export async function replayMessages(store: Store, ids: number[], env: NodeJS.ProcessEnv = process.env): Promise<ReplayResult[]> {
  const specs = new Map((await store.channelSpecs()).map((c) => [c.name, c]));
  const compiled = new Map<string, LoadedChannel>();
  const channelFor = async (name: string) => {
    const cached = compiled.get(name);
    if (cached) return cached;
    const spec = specs.get(name);
    if (!spec) throw new Error(`no spec is recorded for channel ${name}; run hl7c serve with it first`);
    const { channels } = await compileChannels([spec.spec_path], dirname(spec.spec_path), env);
    if (!channels) throw new Error(`the spec of channel ${name} (${spec.spec_path}) has errors; fix them before replaying`);
    compiled.set(name, channels[0]!);
    return channels[0]!;
  };
  const results: ReplayResult[] = [];
  for (const id of ids) {
    const found = await store.getMessage(id);
    if (!found) throw new Error(`no message ${id}`);
    const { message } = found;
    if (!message.raw) throw new Error(`message ${id} was pruned; its content is gone`);
    const { definition, specVersion: version } = await channelFor(message.channel);
    const result = runChannel(definition, message.raw);
    const deliveries = deliveryPayloads(result, { channel: definition, raw: message.raw });
    await store.recordReplay(
      id,
      {
        spec_version: version,
        status: result.status,
        reason: result.reason ?? null,
        identifiers: Object.keys(result.identifiers).length ? result.identifiers : null,
        ack_code: ackCodesOf(result) ?? null,
        ack: null,
        deliveries,
      },
      Date.now(),
    );
    results.push({ id, channel: message.channel, status: result.status, ...(result.reason ? { reason: result.reason } : {}), queued: deliveries.map((d) => d.destination) });
  }
  return results;
}
