import { OperationError } from '../../../runtime/serve/index.js';
import type { Operations } from '../../../runtime/serve/index.js';
import type { CliIo } from '../io.js';
import { cliCaller, withOperations } from '../operations.js';

/**
 * What an operator does from a shell, through the query/action module the admin API uses, on
 * the store itself: it works from any machine that reaches the database, and a running serve
 * honours it at its next look at the queue. Output: one line per thing done, fields separated by
 * two spaces, on stdout; counts and advice on stderr. Exit 0 done, 1 nothing (or not all) done,
 * 2 a usage error.
 */

/** A refused action (no such entry, wrong state): said on stderr, audited as failed, exit 1. */
async function refused(ops: Operations, io: CliIo, action: string, target: string, err: unknown): Promise<number> {
  if (!(err instanceof OperationError)) throw err;
  await ops.audit({ ...cliCaller(), action, target, detail: `failed: ${err.message}` });
  io.stderr(`hl7c: ${err.message}\n`);
  return 1;
}

/** `hl7c pause` / `hl7c resume <channel> <destination>`. */
export async function pauseCommand(args: { store: string; channel: string; destination: string; pause: boolean }, io: CliIo): Promise<number> {
  return withOperations(args.store, async (ops) => {
    const action = `destination.${args.pause ? 'pause' : 'resume'}`;
    const target = `${args.channel}/${args.destination}`;
    let result: Awaited<ReturnType<Operations['setPaused']>>;
    try {
      result = await ops.setPaused(args.channel, args.destination, args.pause, cliCaller().who);
    } catch (err) {
      return refused(ops, io, action, target, err);
    }
    const d = result.destination;
    await ops.audit({ ...cliCaller(), action, target, detail: result.changed ? (args.pause ? 'paused' : 'resumed') : `already ${args.pause ? 'paused' : 'running'}` });
    io.stdout(`${target}  ${d.paused ? `paused  by ${d.paused_by}  at ${d.paused_at}` : 'running'}\n`);
    if (!result.changed) io.stderr(`${target} was already ${args.pause ? 'paused' : 'running'}\n`);
    else io.stderr(args.pause ? `no node sends to ${target} until hl7c resume (entries keep being queued)\n` : `the serve working ${target} sends its queue again\n`);
    return 0;
  });
}

export interface DiscardArgs {
  store: string;
  ids: number[];
  destination?: string;
  channel?: string;
  status?: string;
  yes: boolean;
}

/**
 * `hl7c discard`: gives up on dead or stopped entries (a stopped one no longer holds its queue).
 * By message id (every dead or stopped entry of it, or the one for --destination), or a
 * filtered set (--channel, --status dead|stopped, --destination) that is listed and discarded
 * only with --yes.
 */
export async function discardCommand(args: DiscardArgs, io: CliIo): Promise<number> {
  if (args.status !== undefined && args.status !== 'dead' && args.status !== 'stopped') {
    io.stderr('hl7c: --status is dead or stopped (without it, both)\n');
    return 2;
  }
  if (args.ids.length === 0 && !args.channel && !args.status && !args.destination) {
    io.stderr('hl7c: name message ids, or a set: --channel, --status dead|stopped, --destination (discarding every entry is not what you want)\n');
    return 2;
  }
  const who = cliCaller().who;
  return withOperations(args.store, async (ops) => {
    if (args.ids.length > 0) {
      let failed = 0;
      for (const id of args.ids) {
        const found = await ops.message(id);
        const destinations = args.destination ? [args.destination] : (found?.deliveries ?? []).filter((d) => d.state === 'dead' || d.state === 'stopped').map((d) => d.destination);
        if (!found || destinations.length === 0) {
          failed += await refused(ops, io, 'delivery.discard', `message ${id}`, new OperationError(found ? 409 : 404, found ? `message ${id} has no dead or stopped entry` : `no message ${id}`));
          continue;
        }
        for (const destination of [...new Set(destinations)]) {
          const target = `message ${id} → ${destination}`;
          try {
            await ops.discard(id, destination, who);
          } catch (err) {
            failed += await refused(ops, io, 'delivery.discard', target, err);
            continue;
          }
          await ops.audit({ ...cliCaller(), action: 'delivery.discard', target, detail: 'discarded' });
          io.stdout(`${id}  ${found.message.channel}  ${destination}  discarded\n`);
        }
      }
      return failed > 0 ? 1 : 0;
    }
    const query = { channel: args.channel, status: args.status };
    if (!args.yes) {
      const entries = await ops.discardable(query, args.destination);
      for (const e of entries) io.stdout(`${e.id}  ${e.channel}  ${e.destination}  ${e.state}\n`);
      io.stderr(entries.length ? `${entries.length} entr${entries.length === 1 ? 'y' : 'ies'} would be discarded; run again with --yes to discard them\n` : 'no dead or stopped entry matches\n');
      return 1;
    }
    const entries = await ops.discardMatching(query, args.destination, who);
    for (const e of entries) {
      await ops.audit({ ...cliCaller(), action: 'delivery.discard', target: `message ${e.id} → ${e.destination}`, detail: `discarded (${e.state}), in a set: ${JSON.stringify({ ...query, destination: args.destination })}` });
      io.stdout(`${e.id}  ${e.channel}  ${e.destination}  discarded\n`);
    }
    io.stderr(`${entries.length} entr${entries.length === 1 ? 'y' : 'ies'} discarded\n`);
    return entries.length > 0 ? 0 : 1;
  });
}
