import { closeSync, constants, fdatasync, fdatasyncSync, fstatSync, fsyncSync, ftruncateSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { crc32 } from 'node:zlib';
import type { NewMessage } from './types.js';
import { faultPoint } from '../faults.js';

/** A received message as the log holds it: the store's id is fixed when it is appended. */
export type LoggedMessage = NewMessage & { id: number };

/**
 * A record's head, as a JSON array in this order (no keys: it is written for every message);
 * the byte fields follow it, their lengths given here.
 */
type RecordHead = [
  id: number,
  channel: string,
  specVersion: string,
  source: string,
  receivedAt: number,
  controlId: string | null,
  messageType: string | null,
  status: LoggedMessage['status'],
  reason: string | null,
  identifiers: LoggedMessage['identifiers'],
  ackCode: string | null,
  rawBytes: number,
  ackBytes: number,
  destinations: string[],
  payloadBytes: number[],
  /** Added later: records written before it have 15 elements. */
  dedupeKey?: string | null,
];

/** length of what follows the crc (4) · crc32 of it (4) · head length (4) · head · raw · ack · payloads */
const PREFIX_BYTES = 12;

/** Zeros written ahead of the records, so that appending does not change the file's size. */
const PREALLOCATE_BYTES = 256 * 1024;

/**
 * The append-only log of received messages, written before the ACK. One write() puts a message
 * in the operating system's hands, so it survives a crash of this process; with `sync`, an
 * fdatasync shared by every message appended meanwhile makes it survive a power cut too. The
 * SQLite store takes the messages over in batches shortly after; at start-up, whatever the log
 * holds that the store does not is taken over again. A record is checked by its CRC, so a torn
 * last record (power cut in the middle of a write) is recognised and left out: it was never
 * acknowledged.
 *
 * The fdatasync runs in libuv's thread pool, one at a time: while it is in flight the event loop
 * goes on reading, mapping and taking messages into SQLite, and the messages that arrive
 * meanwhile are written and synced together as soon as it is done (a group commit that forms by
 * itself under load). Nothing is written while a sync is in flight, so a failed sync or write
 * can always be cut back to the last synced record.
 *
 * With sync, the file is filled with zeros ahead of the records (256 KiB at a time): a record then
 * overwrites bytes the file already has, its fdatasync need not commit a change of the file's
 * size, and so does not wait for the file system's journal, which other files' creations and
 * renames (a file destination) keep busy. A zero length ends the records.
 *
 * The log is emptied by rotation, never by truncation: `rotate()` renames it to `<path>.old`
 * (replacing the previous one, whose records the store must hold on disk by then) and starts a
 * new file, even with a sync in flight (that sync completes on the renamed file, which start-up
 * reads too). Truncating would lose the records of a sync in flight.
 */
export class ReceivedLog {
  private fd: number;
  /** Bytes of whole records in the current file: a failed write is cut back to this. */
  private size: number;
  /** Bytes of the current file (records and the zeros ahead of them). */
  private allocated: number;
  /** The file before the last rotation, while a sync on it is still in flight. */
  private previousFd: number | null = null;
  /** fdatasync calls made so far. */
  syncs = 0;
  /** Rotations made so far. */
  rotations = 0;
  private queued: Buffer[] = [];
  private waiting: Waiter[] = [];
  private flushScheduled = false;
  private syncing = false;
  private idleWaiters: Array<() => void> = [];

  /**
   * sync: each append is on disk (fdatasync), not only written, before it resolves.
   * wholeBytes: where the whole records end (readReceivedLog); a torn tail after it is cut off,
   * or the records appended behind it could never be read back.
   */
  constructor(
    readonly path: string,
    private readonly syncToDisk: boolean,
    wholeBytes: number,
  ) {
    this.fd = openSync(path, constants.O_RDWR | constants.O_CREAT);
    this.size = wholeBytes;
    this.allocated = fstatSync(this.fd).size;
    // A file just made exists on disk only once its directory is synced too.
    if (syncToDisk) syncDirectory(dirname(path));
    if (this.allocated > wholeBytes) {
      // The torn tail and the zeros after it go: zeros are written again, after the torn bytes.
      ftruncateSync(this.fd, wholeBytes);
      this.allocated = wholeBytes;
    }
  }

  /** The old file's path: the records before the last rotation. */
  get oldPath(): string {
    return `${this.path}.old`;
  }

  get bytes(): number {
    return this.size;
  }

  /** True when no sync is in flight and nothing waits to be written. */
  get idle(): boolean {
    return !this.syncing && this.queued.length === 0;
  }

  /**
   * True when the last rotation is complete: no sync is in flight on the file before it, so
   * whatever of its records was acknowledged has been handed on (see SqliteStore.rotate).
   */
  get canRotate(): boolean {
    return this.previousFd === null;
  }

  /**
   * Resolves once the message is written (and, with sync, on disk). The messages read from the
   * sockets in one turn of the event loop, and those read while a sync is in flight, share one
   * write and one fdatasync.
   */
  append(message: LoggedMessage): Promise<void> {
    const record = encodeRecord(message);
    return new Promise((resolve, reject) => {
      this.queued.push(record);
      this.waiting.push({ resolve, reject });
      if (!this.flushScheduled && !this.syncing) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.syncing || this.queued.length === 0) return;
    const records = this.queued;
    const waiting = this.waiting;
    this.queued = [];
    this.waiting = [];
    const bytes = records.length === 1 ? records[0]! : Buffer.concat(records);
    try {
      this.write(bytes);
    } catch (err) {
      this.failed(waiting, err as Error);
      return;
    }
    if (!this.syncToDisk) {
      this.appended(bytes.length, waiting);
      this.next();
      return;
    }
    this.syncing = true;
    this.syncs++;
    const fd = this.fd;
    fdatasync(fd, (err) => {
      this.syncing = false;
      if (this.previousFd === fd) this.closePrevious();
      if (err) {
        // Not known to be on disk: not acknowledged, and cut off so no later record follows it.
        if (fd === this.fd) this.failed(waiting, err);
        else for (const w of waiting) w.reject(err);
      } else if (fd === this.fd) this.appended(bytes.length, waiting);
      else {
        // Rotated while in flight: the records are in the old file, which start-up reads too.
        faultPoint('after-log-append');
        for (const w of waiting) w.resolve();
      }
      this.next();
    });
    faultPoint('during-log-sync');
  }

  /** What was queued while a sync was in flight goes at once: it has waited already. */
  private next(): void {
    if (this.queued.length > 0) this.flush();
    else for (const w of this.idleWaiters.splice(0)) w();
  }

  /** Writes after the last whole record, into zeros written ahead when syncing. */
  private write(bytes: Buffer): void {
    const end = this.size + bytes.length;
    if (this.syncToDisk && end > this.allocated) {
      const grown = Math.max(end, this.allocated + PREALLOCATE_BYTES);
      const zeros = Buffer.alloc(grown - this.allocated);
      try {
        for (let at = 0; at < zeros.length; ) at += writeSync(this.fd, zeros, at, zeros.length - at, this.allocated + at);
        this.allocated = grown;
      } catch {
        // No room for the zeros (a nearly full disk): the records alone may still fit.
        ftruncateSync(this.fd, this.allocated);
      }
    }
    for (let at = 0; at < bytes.length; ) at += writeSync(this.fd, bytes, at, bytes.length - at, this.size + at);
  }

  private appended(length: number, waiting: Waiter[]): void {
    this.size += length;
    faultPoint('after-log-append');
    for (const w of waiting) w.resolve();
  }

  private failed(waiting: Waiter[], err: Error): void {
    // Cut a partly written record off, or the records after it could not be read back.
    try {
      ftruncateSync(this.fd, this.size);
      this.allocated = this.size;
    } catch {
      // The reader stops at the torn record; nothing after it was acknowledged either.
    }
    for (const w of waiting) w.reject(err);
  }

  /**
   * Starts a new, empty log: the current file becomes `<path>.old`, replacing the previous old
   * file. Only once every record of that previous old file is safely in the store. A sync in
   * flight completes on the renamed file.
   */
  rotate(): void {
    if (!this.canRotate) throw new Error('the received-message log is still syncing its previous file');
    renameSync(this.path, this.oldPath);
    faultPoint('during-log-rotation');
    const fd = openSync(this.path, constants.O_RDWR | constants.O_CREAT | constants.O_TRUNC);
    // Both names must be on disk before a record in the new file is acknowledged.
    if (this.syncToDisk) syncDirectory(dirname(this.path));
    if (this.syncing) this.previousFd = this.fd;
    else closeSync(this.fd);
    this.fd = fd;
    this.size = 0;
    this.allocated = 0;
    this.rotations++;
  }

  /**
   * Empties both files (at start-up and shutdown, once the store holds every record on disk);
   * nothing may be in flight.
   */
  discardAll(): void {
    if (!this.idle || this.previousFd !== null) throw new Error('the received-message log has records in flight');
    rmSync(this.oldPath, { force: true });
    ftruncateSync(this.fd, 0);
    this.size = 0;
    this.allocated = 0;
  }

  /** Resolves once everything appended so far is written (and synced) or has failed. */
  drain(): Promise<void> {
    if (this.idle && !this.flushScheduled) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Closes the files; appends still queued are written (and synced) first, synchronously. */
  close(): void {
    if (this.queued.length > 0 && !this.syncing) {
      const records = this.queued;
      const waiting = this.waiting;
      this.queued = [];
      this.waiting = [];
      const bytes = Buffer.concat(records);
      try {
        this.write(bytes);
        if (this.syncToDisk) fdatasyncSync(this.fd);
        this.appended(bytes.length, waiting);
      } catch (err) {
        this.failed(waiting, err as Error);
      }
    }
    // A sync still in flight finishes on its own; its file is closed when it does.
    if (this.syncing && this.previousFd === null) this.previousFd = this.fd;
    else closeSync(this.fd);
    for (const w of this.waiting.splice(0)) w.reject(new Error('the received-message log is closed'));
    this.queued = [];
  }

  private closePrevious(): void {
    try {
      closeSync(this.previousFd!);
    } catch {
      // Already closed.
    }
    this.previousFd = null;
  }
}

interface Waiter {
  resolve(): void;
  reject(err: Error): void;
}

/**
 * The records of a store's log (`<path>.old`, then `<path>`) with an id above afterId, oldest
 * first, and where the whole records of the current file end.
 */
export function readReceivedLogs(path: string, afterId = 0): { messages: LoggedMessage[]; wholeBytes: number } {
  const old = readReceivedLog(`${path}.old`, afterId);
  const current = readReceivedLog(path, afterId);
  return { messages: [...old.messages, ...current.messages], wholeBytes: current.wholeBytes };
}

/**
 * Every whole, intact record of a log file with an id above afterId, oldest first, and how many
 * bytes the whole records take: a torn tail (a write cut off by a power cut, never acknowledged)
 * is left out.
 */
export function readReceivedLog(path: string, afterId = 0): { messages: LoggedMessage[]; wholeBytes: number } {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { messages: [], wholeBytes: 0 };
    throw err;
  }
  const messages: LoggedMessage[] = [];
  let at = 0;
  while (at + PREFIX_BYTES <= bytes.length) {
    const length = bytes.readUInt32LE(at);
    // The zeros written ahead of the records (a record's length is never 0).
    if (length === 0) break;
    const end = at + 8 + length;
    if (end > bytes.length || crc32(bytes.subarray(at + 8, end)) !== bytes.readUInt32LE(at + 4)) break;
    // Most of a log is already in SQLite: its id, first in the head, is enough to pass it by.
    if (idOfRecord(bytes, at + PREFIX_BYTES) > afterId) messages.push(decodeRecord(bytes.subarray(at + 8, end)));
    at = end;
  }
  return { messages, wholeBytes: at };
}

/** The id at the start of a record's head, `[<id>,…`, read without parsing the rest. */
function idOfRecord(bytes: Buffer, headAt: number): number {
  let id = 0;
  for (let i = headAt + 1; i < bytes.length; i++) {
    const c = bytes[i]!;
    if (c < 0x30 || c > 0x39) break;
    id = id * 10 + (c - 0x30);
  }
  return id;
}

export function encodeRecord(m: LoggedMessage): Buffer {
  const { raw, ack, deliveries } = m;
  const head: RecordHead = [
    m.id,
    m.channel,
    m.spec_version,
    m.source,
    m.received_at,
    m.control_id,
    m.message_type,
    m.status,
    m.reason,
    m.identifiers,
    m.ack_code,
    raw.length,
    ack ? ack.length : -1,
    deliveries.map((d) => d.destination),
    deliveries.map((d) => d.payload.length),
    m.dedupe_key ?? null,
  ];
  const headText = JSON.stringify(head);
  const headBytes = Buffer.byteLength(headText);
  let total = PREFIX_BYTES + headBytes + raw.length + (ack ? ack.length : 0);
  for (const d of deliveries) total += d.payload.length;
  const record = Buffer.allocUnsafe(total);
  record.writeUInt32LE(total - 8, 0);
  record.writeUInt32LE(headBytes, 8);
  let at = PREFIX_BYTES + record.write(headText, PREFIX_BYTES, 'utf8');
  at += raw.copy(record, at);
  if (ack) at += ack.copy(record, at);
  for (const d of deliveries) at += d.payload.copy(record, at);
  record.writeUInt32LE(crc32(record.subarray(8)), 4);
  return record;
}

/** body: what follows the length and the crc. */
function decodeRecord(body: Buffer): LoggedMessage {
  const headBytes = body.readUInt32LE(0);
  const [id, channel, spec_version, source, received_at, control_id, message_type, status, reason, identifiers, ack_code, rawBytes, ackBytes, destinations, payloadBytes, dedupe_key] = JSON.parse(
    body.toString('utf8', 4, 4 + headBytes),
  ) as RecordHead;
  let at = 4 + headBytes;
  // Copies, not views: the file's buffer is let go once the log is read.
  const take = (n: number) => Buffer.from(body.subarray(at, (at += n)));
  const raw = take(rawBytes);
  const ack = ackBytes < 0 ? null : take(ackBytes);
  const deliveries = destinations.map((destination, i) => ({ destination, payload: take(payloadBytes[i]!) }));
  return { id, channel, spec_version, source, received_at, control_id, message_type, status, reason, identifiers, ack_code, raw, ack, deliveries, dedupe_key: dedupe_key ?? null };
}

function syncDirectory(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
