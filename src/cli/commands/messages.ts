import { MASK, maskReason, parseTime } from '../../../runtime/serve/index.js';
import type { StoredMessage } from '../../../runtime/serve/index.js';
import { parseMessage } from '../../../runtime/index.js';
import { cliCaller, withOperations } from '../operations.js';
import type { CliIo } from '../io.js';

export interface MessagesArgs {
  store: string;
  channel?: string;
  status?: string;
  since?: string;
  until?: string;
  controlId?: string;
  type?: string;
  identifier?: string;
  limit?: number;
  oldestFirst?: boolean;
  showPhi: boolean;
  json: boolean;
}

/**
 * Identifiers are patient data: without --show-phi only which ones were found shows. Even a few
 * leading characters with the length narrow an MRN down, and terminals and tickets keep them.
 */
function mask(value: unknown, showPhi: boolean): string {
  const text = String(value ?? '');
  return showPhi || text.length === 0 ? text : MASK;
}

function identifiersText(m: Pick<StoredMessage, 'identifiers'>, showPhi: boolean): string {
  if (!m.identifiers) return '';
  return Object.entries(m.identifiers)
    .filter(([, v]) => v && typeof v === 'object')
    .map(([k, v]) => `${k}=${mask((v as { id: string }).id, showPhi)}`)
    .join(' ');
}

/** Reasons and errors can quote the message (a receiver's AE text, a database's error): masked unless asked. */
function reasonText(text: string | null, showPhi: boolean): string | null {
  return showPhi ? text : maskReason(text);
}

/** "30d", "12h", "15m", or an ISO date. */
export const parseSince = parseTime;

export async function messagesCommand(args: MessagesArgs, io: CliIo): Promise<number> {
  return withOperations(args.store, async (ops) => {
    const { rows } = await ops.listStored({
      channel: args.channel,
      status: args.status,
      since: args.since ? parseSince(args.since) : undefined,
      until: args.until ? parseSince(args.until) : undefined,
      controlId: args.controlId,
      type: args.type,
      identifier: args.identifier,
      limit: args.limit ?? 1000,
      oldestFirst: args.oldestFirst,
    });
    if (args.identifier) await ops.audit({ ...cliCaller(), action: 'message.search', target: 'messages', detail: `identifier=${args.identifier}` });
    if (args.json) {
      io.stdout(JSON.stringify(rows.map((r) => ({ id: r.id, received_at: new Date(r.received_at).toISOString(), channel: r.channel, control_id: r.control_id, type: r.message_type, status: r.status, reason: reasonText(r.reason, args.showPhi), ack: r.ack_code, identifiers: identifiersText(r, args.showPhi), deliveries: r.deliveries })), null, 2) + '\n');
      return 0;
    }
    for (const r of rows) {
      io.stdout(
        [r.id, new Date(r.received_at).toISOString(), r.channel, r.control_id ?? '-', r.message_type ?? '-', r.status, r.ack_code ?? '-', r.deliveries || '-', identifiersText(r, args.showPhi), r.reason ? `"${reasonText(r.reason, args.showPhi)}"` : '']
          .join('  ')
          .trimEnd() + '\n',
      );
    }
    io.stderr(`${rows.length} message(s), ${args.oldestFirst ? 'oldest' : 'newest'} first\n`);
    return 0;
  });
}

export async function showCommand(args: { store: string; id: number; showPhi: boolean }, io: CliIo): Promise<number> {
  return withOperations(args.store, async (ops) => {
    if (args.showPhi) await ops.audit({ ...cliCaller(), action: 'message.view', target: `message ${args.id}` });
    const found = await ops.message(args.id);
    if (!found) {
      io.stderr(`no message ${args.id}\n`);
      return 1;
    }
    const m = found.message;
    io.stdout(`message ${m.id}  channel ${m.channel}  spec ${m.spec_version}\n`);
    io.stdout(`received ${m.received_at} from ${m.source}\n`);
    io.stdout(`control id ${m.control_id ?? '-'}  type ${m.type ?? '-'}\n`);
    io.stdout(`status ${m.status}${m.reason ? `: ${reasonText(m.reason, args.showPhi)}` : ''}\n`);
    io.stdout(`answered ${m.ack_code ?? '-'}\n`);
    if (m.identifiers) io.stdout(`identifiers ${identifiersText(m, args.showPhi)}\n`);
    if (m.pruned) io.stdout('content pruned\n');
    else if (found.raw !== null) {
      io.stdout('content:\n');
      if (args.showPhi) io.stdout(found.raw.replace(/\r/g, '\n'));
      else {
        // Without --show-phi only the header and the segment names: no patient data.
        try {
          const parsed = parseMessage(found.raw);
          io.stdout(`  ${parsed.header.toString()}\n  segments: ${parsed.segments.filter((s) => !s.isBlank).map((s) => s.name).join(' ')}\n  (--show-phi prints the whole message)\n`);
        } catch {
          io.stdout(`  ${Buffer.byteLength(found.raw)} bytes, not parseable (--show-phi prints them)\n`);
        }
      }
    }
    io.stdout('deliveries:\n');
    for (const d of found.deliveries) io.stdout(`  ${d.id}  ${d.destination}  ${d.state}  attempts ${d.attempts.length}${d.last_error ? `  last error: ${reasonText(d.last_error, args.showPhi)}` : ''}\n`);
    io.stdout('history:\n');
    for (const e of found.history) io.stdout(`  ${e.at}  ${e.kind}${e.detail ? `  ${reasonText(e.detail, args.showPhi)}` : ''}\n`);
    return 0;
  });
}

export async function replayCommand(args: { store: string; ids: number[]; channel?: string; status?: string; destination?: string }, io: CliIo): Promise<number> {
  return withOperations(args.store, async (ops) => {
    if (args.ids.length === 0 && (!args.channel || !args.status)) {
      io.stderr('name message ids, or --channel and --status (dead, stopped, error, rejected)\n');
      return 2;
    }
    const reports = [];
    if (args.ids.length) for (const id of args.ids) reports.push(await ops.replay(id, { destination: args.destination }));
    else reports.push(...(await ops.replayMatching({ channel: args.channel, status: args.status, limit: 100_000 }, { destination: args.destination })));
    for (const r of reports) {
      await ops.audit({ ...cliCaller(), action: 'message.replay', target: `message ${r.id}`, detail: `${args.destination ? `to ${args.destination}: ` : ''}${r.status}` });
      const queued = r.replayed.map((d) => d.destination);
      const skipped = r.skipped.map((d) => d.destination);
      io.stdout(`${r.id}  ${r.channel}  ${r.status}${queued.length ? `  queued for ${queued.join(', ')}` : ''}${skipped.length ? `  not for ${skipped.join(', ')} (already delivered)` : ''}${r.reason ? `  "${r.reason}"` : ''}\n`);
    }
    io.stderr(`${reports.length} message(s) replayed; a running hl7c serve sends them\n`);
    return 0;
  });
}

export async function pruneCommand(args: { store: string; olderThan: string }, io: CliIo): Promise<number> {
  return withOperations(args.store, async (ops) => {
    const pruned = await ops.store.prune(parseSince(args.olderThan));
    io.stdout(`${pruned} message(s) pruned (content removed; counts and history kept)\n`);
    return 0;
  });
}

/** `hl7c audit`: who looked at or did what, through the admin API and the CLI, newest first. */
export async function auditCommand(args: { store: string; limit: number; json: boolean }, io: CliIo): Promise<number> {
  return withOperations(args.store, async (ops) => {
    const entries = await ops.auditTrail({ limit: args.limit });
    if (args.json) {
      io.stdout(JSON.stringify(entries.map((e) => ({ ...e, at: new Date(e.at).toISOString() })), null, 2) + '\n');
      return 0;
    }
    for (const e of entries) io.stdout(`${new Date(e.at).toISOString()}  ${e.who} (${e.role})  ${e.action}  ${e.target}  from ${e.remote}${e.detail ? `  ${e.detail}` : ''}\n`);
    io.stderr(`${entries.length} audit entr${entries.length === 1 ? 'y' : 'ies'}, newest first\n`);
    return 0;
  });
}
