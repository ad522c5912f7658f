import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { ChannelDefinition } from '../../runtime/index.js';
import { encodeText, runChannel } from '../../runtime/index.js';
import type { SqliteStore } from '../../runtime/serve/index.js';
import { buildSpecs } from '../compiler/build.js';
import { loadChannel } from '../compiler/load-channel.js';

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
export async function replayMessages(store: SqliteStore, ids: number[], env: NodeJS.ProcessEnv = process.env): Promise<ReplayResult[]> {
  const specs = new Map(store.channelSpecs().map((c) => [c.name, c]));
  const compiled = new Map<string, { definition: ChannelDefinition; version: string }>();
  const channelFor = async (name: string) => {
    const cached = compiled.get(name);
    if (cached) return cached;
    const spec = specs.get(name);
    if (!spec) throw new Error(`no spec is recorded for channel ${name}; run hl7c serve with it first`);
    const result = await buildSpecs([spec.spec_path], { cwd: dirname(spec.spec_path), env });
    if (!result.ok) throw new Error(`the spec of channel ${name} (${spec.spec_path}) has errors; fix them before replaying`);
    const version = createHash('sha256').update(readFileSync(spec.spec_path, 'utf8')).digest('hex').slice(0, 16);
    const entry = { definition: loadChannel(result.files[0]!.code, result.files[0]!.fileName, env), version };
    compiled.set(name, entry);
    return entry;
  };
  const results: ReplayResult[] = [];
  for (const id of ids) {
    const found = store.getMessage(id);
    if (!found) throw new Error(`no message ${id}`);
    const { message } = found;
    if (!message.raw) throw new Error(`message ${id} was pruned; its content is gone`);
    const { definition, version } = await channelFor(message.channel);
    const result = runChannel(definition, message.raw);
    const deliveries = Object.entries(result.outputs).map(([destination, output]) => ({
      destination,
      payload: typeof output === 'string' ? encodeText(output, result.message?.charset.encoding ?? 'utf-8') : Buffer.from(JSON.stringify(output), 'utf8'),
    }));
    store.recordReplay(
      id,
      {
        spec_version: version,
        status: result.status,
        reason: result.reason ?? null,
        identifiers: Object.keys(result.identifiers).length ? result.identifiers : null,
        ack_code: result.ackCode ?? null,
        ack: null,
        deliveries,
      },
      Date.now(),
    );
    results.push({ id, channel: message.channel, status: result.status, ...(result.reason ? { reason: result.reason } : {}), queued: deliveries.map((d) => d.destination) });
  }
  return results;
}
