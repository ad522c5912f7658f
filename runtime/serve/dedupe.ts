import { createHash } from 'node:crypto';
import type { ChannelDefinition, ChannelResult, DedupeConfig } from '../channel/channel.js';
import { ackCodesOf } from '../channel/channel.js';
import type { Message } from '../hl7/message.js';

/** The dedupe setting of a channel's source, if it has one. */
export function dedupeOf(definition: ChannelDefinition): DedupeConfig | undefined {
  const source = definition.source;
  return source.kind === 'mllp' || source.kind === 'file' ? source.dedupe : undefined;
}

/**
 * What identifies a message for duplicate detection: a hash of the channel and the key fields'
 * values as received (so no patient data sits in the index). None when a key field is empty: a
 * message without a control id cannot be told from another.
 */
export function dedupeKeyOf(channel: string, message: Message, paths: string[]): string | null {
  const values = paths.map((p) => message.getRaw(p) ?? '');
  if (values.some((v) => v === '')) return null;
  return createHash('sha256').update(JSON.stringify([channel, ...values])).digest('hex');
}

/** The first message with the same key, as the store has it. */
export interface FirstCopy {
  id: number;
  ack_code: string | null;
  ack: Buffer | null;
}

/**
 * A repeat within the window: answered as the first was (the same MSA-1 codes), stored as
 * `duplicate` naming the first, and delivered nowhere. The ACKs this run built acknowledge this
 * copy; when the first was answered otherwise (the spec changed since), its own ACKs are sent.
 */
export function asDuplicate(result: ChannelResult, first: FirstCopy): ChannelResult {
  const duplicate: ChannelResult = { ...result, status: 'duplicate', reason: `duplicate of message ${first.id}, received within the dedupe window; delivered nowhere`, outputs: {} };
  if (ackCodesOf(result) === (first.ack_code ?? undefined) || !first.ack) return duplicate;
  const [ack, applicationAck] = splitAcks(first.ack);
  const [ackCode, applicationAckCode] = (first.ack_code ?? '').split(' ');
  return { ...duplicate, ack, ackCode, applicationAck, applicationAckCode };
}

/** Stored ACK bytes (one ACK, or an accept ACK and an application ACK one after the other) as messages. */
function splitAcks(bytes: Buffer): Buffer[] {
  const text = bytes.toString('latin1');
  const second = text.indexOf('\rMSH', 1);
  return second < 0 ? [bytes] : [bytes.subarray(0, second + 1), bytes.subarray(second + 1)];
}
