let cachedSecond = -1;
let cachedStamp = '';

/** HL7 DTM with seconds and the local UTC offset, e.g. 20261125114012+0100. */
export function hl7Timestamp(date?: Date): string {
  if (date) return formatTimestamp(date);
  // Every ACK asks for "now": format it once per second.
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== cachedSecond) {
    cachedSecond = second;
    cachedStamp = formatTimestamp(new Date(now));
  }
  return cachedStamp;
}

function formatTimestamp(date: Date): string {
  const pad = (n: number, w = 2) => String(n).padStart(w, '0');
  const offset = -date.getTimezoneOffset();
  const sign = offset >= 0 ? '+' : '-';
  const abs = Math.abs(offset);
  return (
    `${date.getFullYear()}${pad(date.getMonth() + 1)}${pad(date.getDate())}` +
    `${pad(date.getHours())}${pad(date.getMinutes())}${pad(date.getSeconds())}` +
    `${sign}${pad(Math.floor(abs / 60))}${pad(abs % 60)}`
  );
}

let counter = 0;
const processTag = Math.floor(Math.random() * 36 ** 3)
  .toString(36)
  .toUpperCase()
  .padStart(3, '0');

/**
 * A new MSH-10 message control id: at most 20 characters (the ST length MSH-10 has in v2.5),
 * ordered by time, unique within the process and very unlikely to collide across processes.
 */
export function newControlId(now = Date.now()): string {
  counter = (counter + 1) % 36 ** 4;
  if (now !== prefixTime) {
    // Many ids are made in the same millisecond under load: build the time part once.
    prefixTime = now;
    prefix = now.toString(36).toUpperCase() + processTag;
  }
  return prefix + BASE36[(counter / 46656) | 0]! + BASE36[((counter / 1296) | 0) % 36]! + BASE36[((counter / 36) | 0) % 36]! + BASE36[counter % 36]!;
}

const BASE36 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ';
let prefixTime = -1;
let prefix = '';
