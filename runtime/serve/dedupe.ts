import { createHash } from 'node:crypto';
import type { AckError, AckOutcome } from '../ack/ack.js';
import { HL7_ERROR } from '../ack/ack.js';
import type { Acks, ChannelDefinition, ChannelResult, DedupeConfig } from '../channel/channel.js';
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
export function dedupeKeyOf(channel: string, message: Message, paths: string[], raw?: Buffer): string | null {
  const values = paths.map((p) => message.getRaw(p) ?? '');
  if (values.some((v) => v === '')) return null;
  // With the content: senders reset their counters, so a control id seen before may come with
  // another message, which must not be dropped as a repeat. A retransmission is the same bytes
  // but for MSH-7, which some senders stamp again on each try, and MSH-15/16, the ACK mode it
  // asks for this time.
  const parts = raw ? [channel, ...values, contentDigest(raw)] : [channel, ...values];
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex');
}

/** A digest of the message's bytes with MSH-7, MSH-15 and MSH-16 blanked and line ends at the end dropped. */
export function contentDigest(raw: Buffer): string {
  const text = raw.toString('latin1').replace(/[\r\n]+$/, '');
  const end = text.search(/[\r\n]/);
  const msh = end === -1 ? text : text.slice(0, end);
  const separator = msh[3] ?? '|';
  const fields = msh.split(separator);
  // fields[n - 1] is MSH-n: MSH-1 is the separator itself.
  for (const i of [6, 14, 15]) if (fields.length > i) fields[i] = '';
  while (fields.length > 2 && fields[fields.length - 1] === '') fields.pop();
  return createHash('sha256').update(fields.join(separator) + (end === -1 ? '' : text.slice(end))).digest('hex');
}

/** The first message with the same key, as the store has it. */
export interface FirstCopy {
  id: number;
  status: string;
  reason: string | null;
  ack_code: string | null;
}

/**
 * A repeat within the window: stored as `duplicate` naming the first, delivered nowhere, and
 * answered with the first copy's outcome in the ACK mode the repeat's own MSH-15/16 ask for (a
 * sender that switched to enhanced mode gets CA, one in original mode AA). The ACKs this run
 * built already say that when the repeat fared as the first did; when it did not (the spec
 * changed since), `answer` builds them for the first's outcome.
 */
export function asDuplicate(result: ChannelResult, first: FirstCopy, answer: (outcome: AckOutcome, errors: AckError[]) => Acks): ChannelResult {
  const duplicate: ChannelResult = { ...result, status: 'duplicate', reason: `duplicate of message ${first.id}, received within the dedupe window; delivered nowhere`, outputs: {} };
  const outcome = outcomeOf(first.status, first.ack_code);
  if (outcome === outcomeOf(result.status, ackCodesOf(result) ?? null)) return duplicate;
  const errors: AckError[] = outcome === 'accept' ? [] : [{ code: outcome === 'reject' ? HL7_ERROR.unsupportedMessageType : HL7_ERROR.applicationInternalError, userMessage: first.reason ?? `as message ${first.id} was` }];
  // Only the ACKs built now: none of this run's, which answered another outcome.
  const acks = answer(outcome, errors);
  return { ...duplicate, ack: acks.ack, ackCode: acks.ackCode, applicationAck: acks.applicationAck, applicationAckCode: acks.applicationAckCode };
}

/** What a message's processing came to, from its status and the codes it was answered with (a filter rule may answer AR). */
function outcomeOf(status: string, ackCodes: string | null): AckOutcome {
  if (status === 'rejected' || (status === 'filtered' && /\b(AR|CR)\b/.test(ackCodes ?? ''))) return 'reject';
  return status === 'error' ? 'error' : 'accept';
}
