import type { StoreStatus } from '../../../runtime/store/postgres-store.js';
import type { CliIo } from '../io.js';

/** Seconds or minutes, for ages in the status table. */
function age(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  if (ms < 120_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 7_200_000) return `${Math.round(ms / 60_000)} min`;
  return `${(ms / 3_600_000).toFixed(1)} h`;
}

const short = (version: string) => version.slice(0, 12);

/** The status of every node on one database, as `hl7c status` prints it. */
export function formatStatus(status: StoreStatus): string {
  const lines: string[] = [];
  const alive = status.nodes.filter((n) => n.alive).length;
  const lost = status.nodes.filter((n) => !n.alive && n.stopped_at === null).length;
  lines.push(`nodes: ${alive} alive, ${lost} lost, ${status.nodes.length - alive - lost} stopped`);
  for (const n of status.nodes) {
    const state = n.alive ? 'alive' : n.stopped_at !== null ? `stopped ${new Date(n.stopped_at).toISOString()}` : `LOST (no heartbeat for ${age(status.now - n.heartbeat_at)})`;
    lines.push(`  ${n.id}  host ${n.host}  pid ${n.pid}  started ${new Date(n.started_at).toISOString()}  heartbeat ${age(status.now - n.heartbeat_at)} ago  ${state}`);
  }
  lines.push('channels:');
  for (const c of status.channels) {
    const running = c.nodes.filter((n) => n.alive);
    // The version the channels table holds is the one the last node to start (or reload) ran.
    const versions = new Set(running.map((n) => n.spec_version));
    const on = running.map((n) => `${n.node}${versions.size > 1 || n.spec_version !== c.spec_version ? ` (spec ${short(n.spec_version)}${n.spec_version !== c.spec_version ? ', ANOTHER VERSION' : ''})` : ''}`);
    lines.push(`  ${c.name}  spec ${short(c.spec_version)}  ${running.length ? `on ${on.join(', ')}` : 'on no live node'}${versions.size > 1 ? '  WARNING: nodes run different versions' : ''}`);
  }
  lines.push('queues:');
  if (status.queues.length === 0) lines.push('  (nothing waiting)');
  for (const q of status.queues) {
    lines.push(`  ${q.channel} -> ${q.destination}  queued ${q.queued}  sending ${q.sending}  stopped ${q.stopped}  oldest ${age(q.oldest_age_ms)}${q.owner ? `  ordered, worked by ${q.owner}` : ''}`);
  }
  return lines.join('\n') + '\n';
}
