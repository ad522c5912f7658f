import { Hl7Message } from '@medplum/core';
import { parseMessage } from '../runtime/index.js';

export interface ParseRow {
  message: string;
  bytes: number;
  parser: string;
  msgsPerSec: number;
  mbPerSec: number;
}

/** Each parser reads the message and then PID-3.1, so lazy parsers pay for what a channel needs. */
const PARSERS: Record<string, (text: string, bytes: Buffer) => string> = {
  'hl7c (string)': (text) => parseMessage(text).getText('PID-3.1'),
  'hl7c (bytes, MSH-18 decode)': (_text, bytes) => parseMessage(bytes).getText('PID-3.1'),
  '@medplum/core Hl7Message.parse': (text) => Hl7Message.parse(text).getSegment('PID')!.getComponent(3, 1),
  "baseline split('\\r') + split('|')": (text) => {
    const segments = text.split('\r').map((s) => s.split('|'));
    const pid = segments.find((s) => s[0] === 'PID')!;
    return pid[3]!.split('~')[0]!.split('^')[0]!;
  },
};

function measure(fn: () => string, ms: number): number {
  // Warm up so the JIT has compiled every path before we count.
  const warm = Date.now() + 300;
  while (Date.now() < warm) fn();
  let count = 0;
  const start = process.hrtime.bigint();
  const end = start + BigInt(ms) * 1_000_000n;
  let now = start;
  while (now < end) {
    for (let i = 0; i < 100; i++) fn();
    count += 100;
    now = process.hrtime.bigint();
  }
  return count / (Number(now - start) / 1e9);
}

export function runParseBench(messages: Record<string, string>, ms = 1500): ParseRow[] {
  const rows: ParseRow[] = [];
  for (const [name, text] of Object.entries(messages)) {
    const bytes = Buffer.from(text, 'utf8');
    const expected = PARSERS['baseline split(\'\\r\') + split(\'|\')']!(text, bytes);
    for (const [parser, fn] of Object.entries(PARSERS)) {
      const got = fn(text, bytes);
      if (got !== expected) throw new Error(`${parser} read PID-3.1 as ${got}, expected ${expected}`);
      const msgsPerSec = measure(() => fn(text, bytes), ms);
      rows.push({ message: name, bytes: bytes.length, parser, msgsPerSec, mbPerSec: (msgsPerSec * bytes.length) / 1e6 });
    }
  }
  return rows;
}
