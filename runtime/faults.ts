import { writeSync } from 'node:fs';

/**
 * The moments a crash test kills the process at (`HL7C_FAULT=<point>[:<hit>]`), each one a place
 * where a crash must lose nothing that was acknowledged.
 */
export const FAULT_POINTS = [
  /** A frame was read; nothing of it is stored yet. */
  'after-receive',
  /** Received messages are in the received-message log (synced, with --durability disk); not acknowledged yet. */
  'after-log-append',
  /** An fdatasync of the received-message log is in flight (--durability disk); its messages are not acknowledged yet. */
  'during-log-sync',
  /** The received-message log was renamed to .old (it is full); the new, empty one is not made yet. */
  'during-log-rotation',
  /** Received messages are being taken into SQLite, inside the transaction, before it commits. */
  'during-ingest',
  /** A destination got the message and answered; its outcome is not recorded yet. */
  'during-send',
  /** A changed spec is compiled and valid; the running version has not been swapped for it yet. */
  'during-reload',
  /** SQLite was checkpointed; the received-message log is about to be emptied. */
  'during-checkpoint',
  /** SIGTERM: the listeners are closed and their messages answered; deliveries in flight are finishing. */
  'during-drain',
] as const;

export type FaultPoint = (typeof FAULT_POINTS)[number];

interface Armed {
  point: FaultPoint;
  /** Killed on this hit of the point (1 = the first time it is reached). */
  hit: number;
}

/** Read once: with the variable unset, a fault point costs one comparison. */
const armed: Armed | null = parseFault(process.env.HL7C_FAULT);
let hits = 0;

/**
 * Does nothing unless `HL7C_FAULT` names this point: then, on the hit it names, the process
 * SIGKILLs itself (no cleanup, no flush: as a power cut would, short of the page cache).
 */
export function faultPoint(point: FaultPoint): void {
  if (armed === null || armed.point !== point || ++hits < armed.hit) return;
  // Synchronous: a crash test reads this line to know the process died here and not elsewhere.
  writeSync(2, `hl7c: fault point ${point} reached (hit ${hits}); killing the process\n`);
  process.kill(process.pid, 'SIGKILL');
}

/** `after-log-append` or `after-log-append:3`; anything else is refused, so a typo never runs a test without its crash. */
export function parseFault(value: string | undefined): Armed | null {
  if (!value) return null;
  const match = /^([a-z-]+)(?::(\d+))?$/.exec(value.trim());
  const point = FAULT_POINTS.find((p) => p === match?.[1]);
  const hit = Number(match?.[2] ?? 1);
  if (!point || !(hit >= 1)) throw new Error(`HL7C_FAULT=${value}: expected <point>[:<hit>] with a point among ${FAULT_POINTS.join(', ')}`);
  return { point, hit };
}
