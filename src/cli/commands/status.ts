import { isPostgresUrl, openStore } from '../../../runtime/store/open.js';
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
export function formatStatus(status: StoreStatus, embedded = false): string {
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
  for (const q of status.queues) {
    lines.push(`  ${q.channel} -> ${q.destination}  queued ${q.queued}  sending ${q.sending}  stopped ${q.stopped}  oldest ${age(q.oldest_age_ms)}${q.owner ? `  ordered, worked by ${q.owner}` : ''}`);
  }
  return lines.join('\n') + '\n';
}

/**
 * `hl7c status`: what every node on the store is doing. On PostgreSQL: nodes, the versions they
 * run, the queues. A SQLite store has one node (the serve that holds it), so only its channels
 * and queues are shown.
 */
export async function statusCommand(args: { store: string; json: boolean }, io: CliIo): Promise<number> {
  const embedded = !isPostgresUrl(args.store);
  const status = embedded ? await singleNodeStatus(args.store, io.cwd) : await postgresStatus(args.store);
  io.stdout(args.json ? JSON.stringify(status, null, 2) + '\n' : formatStatus(status, embedded));
  return 0;
}

async function postgresStatus(url: string): Promise<StoreStatus> {
  // Loaded only for PostgreSQL addresses; a status never creates or migrates a schema.
  const { PostgresStore } = await import('../../../runtime/store/postgres-store.js');
  const store = await PostgresStore.open(url, { migrate: false });
  try {
    return await store.status();
  } finally {
    await store.close();
  }
}

async function singleNodeStatus(location: string, cwd: string): Promise<StoreStatus> {
  const store = await openStore(location, { cwd });
  try {
    const [specs, metrics] = await Promise.all([store.channelSpecs(), store.metrics()]);
    const now = Date.now();
    const open = new Map<string, StoreStatus['queues'][number]>();
    for (const d of metrics.deliveries) {
      if (d.state !== 'queued' && d.state !== 'sending' && d.state !== 'stopped') continue;
      const key = `${d.channel}\u0000${d.destination}`;
      const q = open.get(key) ?? { channel: d.channel, destination: d.destination, queued: 0, sending: 0, stopped: 0, oldest_age_ms: 0, owner: null };
      q[d.state] += d.count;
      open.set(key, q);
    }
    for (const o of metrics.oldestOpen) {
      const q = open.get(`${o.channel}\u0000${o.destination}`);
      if (q) q.oldest_age_ms = Math.max(0, now - o.oldest);
    }
    return { now, nodes: [], channels: specs.map((c) => ({ name: c.name, spec_version: c.spec_version, nodes: [] })), queues: [...open.values()] };
  } finally {
    await store.close();
  }
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
