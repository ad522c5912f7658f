import { isPostgresUrl } from '../../../runtime/store/open.js';
import type { StatusReport } from '../../../runtime/serve/index.js';
import type { CliIo } from '../io.js';
import { withOperations } from '../operations.js';

/** Seconds or minutes, for ages in the status table. */
function age(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  if (ms < 120_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 7_200_000) return `${Math.round(ms / 60_000)} min`;
  return `${(ms / 3_600_000).toFixed(1)} h`;
}

const short = (version: string) => version.slice(0, 12);

/** The status of every node on one database, as `hl7c status` prints it. */
export function formatStatus(status: StatusReport): string {
  const embedded = status.embedded;
  const lines: string[] = [];
  const alive = status.nodes.filter((n) => n.alive).length;
  const lost = status.nodes.filter((n) => !n.alive && n.stopped_at === null).length;
  lines.push(embedded ? 'nodes: an embedded (SQLite) store has one hl7c serve at a time' : `nodes: ${alive} alive, ${lost} lost, ${status.nodes.length - alive - lost} stopped`);
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
    const where = embedded ? '' : `  ${running.length ? `on ${on.join(', ')}` : 'on no live node'}${versions.size > 1 ? '  WARNING: nodes run different versions' : ''}`;
    lines.push(`  ${c.name}  spec ${short(c.spec_version)}${where}`);
  }
  lines.push('queues:');
  if (status.queues.length === 0) lines.push('  (nothing waiting)');
  const undefinedHere = new Set((status.undefined_destinations ?? []).map((u) => `${u.channel}\u0000${u.destination}`));
  for (const q of status.queues) {
    const orphaned = undefinedHere.has(`${q.channel}\u0000${q.destination}`)
      ? `  NOT IN THE SPEC: nothing delivers these (hl7c replay --destination <another>, or hl7c discard --channel ${q.channel} --destination ${q.destination} --yes)`
      : '';
    lines.push(`  ${q.channel} -> ${q.destination}  queued ${q.queued}  sending ${q.sending}  stopped ${q.stopped}  oldest ${age(q.oldest_age_ms)}${q.owner ? `  ordered, worked by ${q.owner}` : ''}${orphaned}`);
  }
  lines.push('paused:');
  if (status.paused.length === 0) lines.push('  (none)');
  for (const p of status.paused) lines.push(`  ${p.channel} -> ${p.destination}  paused by ${p.paused_by} at ${p.paused_at}`);
  return lines.join('\n') + '\n';
}

/**
 * `hl7c status`: what every node on the store is doing, through the query/action module the
 * admin API's GET /api/status uses. On PostgreSQL: nodes, the versions they run, the queues. A
 * SQLite store has one node (the serve that holds it), so only its channels and queues are
 * shown. Both list the paused destinations. Never creates or migrates a schema.
 */
export async function statusCommand(args: { store: string; json: boolean }, io: CliIo): Promise<number> {
  return withOperations(
    args.store,
    async (ops) => {
      const status = await ops.status();
      io.stdout(args.json ? JSON.stringify(status, null, 2) + '\n' : formatStatus(status));
      return 0;
    },
    { readOnly: true },
  );
}

/** `hl7c migrate`: creates or brings up to date hl7c's PostgreSQL schema, as a deploy step. */
export async function migrateCommand(args: { store: string }, io: CliIo): Promise<number> {
  if (!isPostgresUrl(args.store)) {
    io.stderr('hl7c migrate is for PostgreSQL stores (--store postgres://…); a SQLite store is brought up to date when it is opened\n');
    return 2;
  }
  const { migratePostgres } = await import('../../../runtime/store/postgres-store.js');
  const result = await migratePostgres(args.store);
  io.stdout(result.from === result.to ? `schema "${result.schema}" is up to date (version ${result.to})\n` : `schema "${result.schema}" migrated from version ${result.from} to ${result.to}\n`);
  return 0;
}
