import { openStore } from '../../../runtime/serve/index.js';
import type { StoredMessage } from '../../../runtime/serve/index.js';
import { parseMessage } from '../../../runtime/index.js';
import { replayMessages } from '../../serve/replay.js';
import type { CliIo } from '../io.js';

export interface MessagesArgs {
  store: string;
  channel?: string;
  status?: string;
  since?: string;
  controlId?: string;
  type?: string;
  identifier?: string;
  limit?: number;
  showPhi: boolean;
  json: boolean;
}

/** Identifiers are patient data: shown as their first three characters unless asked. */
export function mask(value: unknown, showPhi: boolean): string {
  const text = String(value ?? '');
  if (showPhi || text.length === 0) return text;
  return text.slice(0, Math.min(3, Math.floor(text.length / 2))) + '*'.repeat(Math.max(3, text.length - 3));
}

function identifiersText(m: StoredMessage, showPhi: boolean): string {
  if (!m.identifiers) return '';
  return Object.entries(m.identifiers)
    .filter(([, v]) => v && typeof v === 'object')
    .map(([k, v]) => `${k}=${mask((v as { id: string }).id, showPhi)}`)
    .join(' ');
}

/** "30d", "12h", "15m", or an ISO date. */
export function parseSince(text: string, now = Date.now()): number {
  const m = /^(\d+)([dhm])$/.exec(text);
  if (m) return now - Number(m[1]) * { d: 86_400_000, h: 3_600_000, m: 60_000 }[m[2] as 'd' | 'h' | 'm'];
  const t = Date.parse(text);
  if (Number.isNaN(t)) throw new Error(`"${text}" is not a duration (30d, 12h, 15m) or a date`);
  return t;
}

export async function messagesCommand(args: MessagesArgs, io: CliIo): Promise<number> {
  const store = await openStore(args.store);
  try {
    const rows = await store.listMessages({
      channel: args.channel,
      status: args.status,
      since: args.since ? parseSince(args.since) : undefined,
      controlId: args.controlId,
      messageType: args.type,
      identifier: args.identifier,
      limit: args.limit,
    });
    if (args.json) {
      io.stdout(JSON.stringify(rows.map((r) => ({ id: r.id, received_at: new Date(r.received_at).toISOString(), channel: r.channel, control_id: r.control_id, type: r.message_type, status: r.status, reason: r.reason, ack: r.ack_code, identifiers: identifiersText(r, args.showPhi), deliveries: r.deliveries })), null, 2) + '\n');
      return 0;
    }
    for (const r of rows) {
      io.stdout(
        [r.id, new Date(r.received_at).toISOString(), r.channel, r.control_id ?? '-', r.message_type ?? '-', r.status, r.ack_code ?? '-', r.deliveries || '-', identifiersText(r, args.showPhi), r.reason ? `"${r.reason}"` : '']
          .join('  ')
          .trimEnd() + '\n',
      );
    }
    io.stderr(`${rows.length} message(s)\n`);
    return 0;
  } finally {
    await store.close();
  }
}

export async function showCommand(args: { store: string; id: number; showPhi: boolean }, io: CliIo): Promise<number> {
  const store = await openStore(args.store);
  try {
    const found = await store.getMessage(args.id);
    if (!found) {
      io.stderr(`no message ${args.id}\n`);
      return 1;
    }
    const { message: m, deliveries, events } = found;
    io.stdout(`message ${m.id}  channel ${m.channel}  spec ${m.spec_version}\n`);
    io.stdout(`received ${new Date(m.received_at).toISOString()} from ${m.source}\n`);
    io.stdout(`control id ${m.control_id ?? '-'}  type ${m.message_type ?? '-'}\n`);
    io.stdout(`status ${m.status}${m.reason ? `: ${m.reason}` : ''}\n`);
    io.stdout(`answered ${m.ack_code ?? '-'}\n`);
    if (m.identifiers) io.stdout(`identifiers ${identifiersText(m, args.showPhi)}\n`);
    if (m.pruned) io.stdout('content pruned\n');
    else if (m.raw) {
      io.stdout('content:\n');
      if (args.showPhi) io.stdout(m.raw.toString('utf8').replace(/\r/g, '\n'));
      else {
        // Without --show-phi only the header and the segment names: no patient data.
        try {
          const parsed = parseMessage(m.raw);
          io.stdout(`  ${parsed.header.toString()}\n  segments: ${parsed.segments.filter((s) => !s.isBlank).map((s) => s.name).join(' ')}\n  (--show-phi prints the whole message)\n`);
        } catch {
          io.stdout(`  ${m.raw.length} bytes, not parseable (--show-phi prints them)\n`);
        }
      }
    }
    io.stdout('deliveries:\n');
    for (const d of deliveries) io.stdout(`  ${d.id}  ${d.destination}  ${d.state}  attempts ${d.attempts}${d.last_error ? `  last error: ${d.last_error}` : ''}\n`);
    io.stdout('history:\n');
    for (const e of events) io.stdout(`  ${new Date(e.at).toISOString()}  ${e.kind}${e.detail ? `  ${e.detail}` : ''}\n`);
    return 0;
  } finally {
    await store.close();
  }
}

export async function replayCommand(args: { store: string; ids: number[]; channel?: string; status?: string }, io: CliIo): Promise<number> {
  const store = await openStore(args.store);
  try {
    let ids = args.ids;
    if (ids.length === 0) {
      if (!args.channel || !args.status) {
        io.stderr('name message ids, or --channel and --status (dead, stopped, error, rejected)\n');
        return 2;
      }
      ids = (await store.listMessages({ channel: args.channel, status: args.status, limit: 100_000 })).map((m) => m.id);
    }
    const results = await replayMessages(store, ids);
    for (const r of results) io.stdout(`${r.id}  ${r.channel}  ${r.status}${r.queued.length ? `  queued for ${r.queued.join(', ')}` : ''}${r.reason ? `  "${r.reason}"` : ''}\n`);
    io.stderr(`${results.length} message(s) replayed; a running hl7c serve sends them\n`);
    return 0;
  } finally {
    await store.close();
  }
}

export async function pruneCommand(args: { store: string; olderThan: string }, io: CliIo): Promise<number> {
  const store = await openStore(args.store);
  try {
    const pruned = await store.prune(parseSince(args.olderThan));
    io.stdout(`${pruned} message(s) pruned (content removed; counts and history kept)\n`);
    return 0;
  } finally {
    await store.close();
  }
}
