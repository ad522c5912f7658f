import { closeSync, fdatasyncSync, fstatSync, fsyncSync, ftruncateSync, openSync, readFileSync, writeSync } from 'node:fs';
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
];

/** length of what follows the crc (4) · crc32 of it (4) · head length (4) · head · raw · ack · payloads */
const PREFIX_BYTES = 12;

/**
 * The append-only log of received messages, written before the ACK. One write() puts a message
 * in the operating system's hands, so it survives a crash of this process; with `sync`, an
 * fdatasync shared by every message appended meanwhile makes it survive a power cut too. The
 * SQLite store takes the messages over in batches shortly after; at start-up, whatever the log
 * holds that the store does not is taken over again. A record is checked by its CRC, so a torn
 * last record (power cut in the middle of a write) is recognised and left out: it was never
 * acknowledged.
 */
export class ReceivedLog {
  private readonly fd: number;
  /** Bytes of whole records in the file: a failed write is cut back to this. */
  private size: number;
  /** fdatasync calls made so far. */
  syncs = 0;
  private queued: Buffer[] = [];
  private waiting: Array<{ resolve(): void; reject(err: Error): void }> = [];
  private flushScheduled = false;

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
    // O_APPEND: after a truncation, writes go to the new end without any seek.
    this.fd = openSync(path, 'a');
    this.size = fstatSync(this.fd).size;
    // A file just made exists on disk only once its directory is synced too.
    if (syncToDisk) syncDirectory(dirname(path));
    if (this.size > wholeBytes) {
      ftruncateSync(this.fd, wholeBytes);
      this.size = wholeBytes;
    }
  }

  get bytes(): number {
    return this.size;
  }

  /**
   * Resolves once the message is written (and, with sync, on disk). The messages read from the
   * sockets in one turn of the event loop share one write and one fdatasync: measured, a sync
   * call here beats a trip through libuv's thread pool, whose hand-back costs more than what the
   * loop would have done meanwhile.
   */
  append(message: LoggedMessage): Promise<void> {
    const record = encodeRecord(message);
    return new Promise((resolve, reject) => {
      this.queued.push(record);
      this.waiting.push({ resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.flushScheduled = false;
    const records = this.queued;
    const waiting = this.waiting;
    this.queued = [];
    this.waiting = [];
    const bytes = records.length === 1 ? records[0]! : Buffer.concat(records);
    try {
      for (let at = 0; at < bytes.length; ) at += writeSync(this.fd, bytes, at, bytes.length - at);
      if (this.syncToDisk) {
        this.syncs++;
        fdatasyncSync(this.fd);
      }
    } catch (err) {
      // Cut a partly written record off, or the records after it could not be read back.
      try {
        ftruncateSync(this.fd, this.size);
      } catch {
        // The reader stops at the torn record; nothing after it was acknowledged either.
      }
      for (const w of waiting) w.reject(err as Error);
      return;
    }
    this.size += bytes.length;
    faultPoint('after-log-append');
    for (const w of waiting) w.resolve();
  }

  /** Empties the log; only once every record in it is safely in the store. */
  truncate(): void {
    ftruncateSync(this.fd, 0);
    this.size = 0;
  }

  close(): void {
    if (this.flushScheduled) this.flush();
    closeSync(this.fd);
  }
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
  const [id, channel, spec_version, source, received_at, control_id, message_type, status, reason, identifiers, ack_code, rawBytes, ackBytes, destinations, payloadBytes] = JSON.parse(
    body.toString('utf8', 4, 4 + headBytes),
  ) as RecordHead;
  let at = 4 + headBytes;
  // Copies, not views: the file's buffer is let go once the log is read.
  const take = (n: number) => Buffer.from(body.subarray(at, (at += n)));
  const raw = take(rawBytes);
  const ack = ackBytes < 0 ? null : take(ackBytes);
  const deliveries = destinations.map((destination, i) => ({ destination, payload: take(payloadBytes[i]!) }));
  return { id, channel, spec_version, source, received_at, control_id, message_type, status, reason, identifiers, ack_code, raw, ack, deliveries };
}

function syncDirectory(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
