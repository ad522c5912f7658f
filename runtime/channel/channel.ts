import type { AckError, AckOutcome } from '../ack/ack.js';
import { ackCodeFor, ackRequestOf, buildAck, HL7_ERROR, shouldSendAcceptAck } from '../ack/ack.js';
import { isAckMessage, receive } from '../ack/receive.js';
import type { Message } from '../hl7/message.js';
import type { FoundIdentifier, IdentifierProblem } from './identifiers.js';

export type AckModeSetting = 'original' | 'enhanced' | 'as_requested';

export interface MllpSourceConfig {
  kind: 'mllp';
  host: string;
  port: number;
  ack_mode: AckModeSetting;
  max_message_bytes?: number;
}

export interface HttpDestinationConfig {
  kind: 'http';
  url: string;
  method: string;
  headers: Record<string, string>;
  timeout_ms: number;
}
export interface MllpDestinationConfig {
  kind: 'mllp';
  host: string;
  port: number;
}
export interface FileDestinationConfig {
  kind: 'file';
  dir: string;
  file_name: string;
}
export interface ChannelDestinationConfig {
  kind: 'channel';
  channel: string;
}

export interface DestinationConfig {
  target: HttpDestinationConfig | MllpDestinationConfig | FileDestinationConfig | ChannelDestinationConfig;
  retry: { attempts: number; backoff_ms: number; max_backoff_ms: number };
  on_failure: 'dead_letter' | 'stop_queue';
}

export type AcceptDecision =
  | { outcome: 'accept' }
  | { outcome: 'filter'; rule: string; reason: string }
  | { outcome: 'reject'; rule: string; reason: string };

export interface Identification {
  identifiers: Record<string, FoundIdentifier | null>;
  problems: IdentifierProblem[];
}

/** What a compiled channel module exports as default. */
export interface ChannelDefinition {
  name: string;
  /** The spec it was compiled from, relative to where the build ran. */
  spec: string;
  source: MllpSourceConfig;
  destinations: Record<string, DestinationConfig>;
  accept(message: Message): AcceptDecision;
  identify(message: Message): Identification;
  map(message: Message, identifiers: Identification['identifiers']): unknown;
}

export function defineChannel(definition: ChannelDefinition): ChannelDefinition {
  return definition;
}

export type MessageStatus = 'accepted' | 'filtered' | 'rejected' | 'error';

export interface ChannelResult {
  status: MessageStatus;
  reason?: string;
  message?: Message;
  identifiers: Identification['identifiers'];
  /** The mapped output each destination receives. */
  outputs: Record<string, unknown>;
  /** The ACK to send back, if any (MSH-15 may ask for none). */
  ack?: Buffer;
  ackCode?: string;
}

/**
 * Runs one received payload through a channel's stages: parse, accept, identify, map. Filtered
 * messages are acknowledged AA and recorded as filtered; rejected ones AR with the rule's reason;
 * a missing or ambiguous required identifier is AE naming the field. Nothing is thrown for a
 * bad message: every outcome is a result.
 */
export function runChannel(channel: ChannelDefinition, payload: Buffer): ChannelResult {
  const received = receive(payload);
  if (!received.ok) {
    return { status: 'rejected', reason: received.error.message, identifiers: {}, outputs: {}, ack: received.reject, ackCode: 'AR' };
  }
  const message = received.message;
  const answer = (outcome: AckOutcome, errors: AckError[] = []) => ackFor(channel, message, outcome, errors);

  const decision = channel.accept(message);
  if (decision.outcome === 'reject') {
    const reason = `${decision.reason} (rule ${decision.rule})`;
    return { status: 'rejected', reason, message, identifiers: {}, outputs: {}, ...answer('reject', [{ code: HL7_ERROR.unsupportedMessageType, userMessage: reason, location: { segment: 'MSH', field: 9 } }]) };
  }
  if (decision.outcome === 'filter') {
    return { status: 'filtered', reason: `${decision.reason} (rule ${decision.rule})`, message, identifiers: {}, outputs: {}, ...answer('accept') };
  }
  const { identifiers, problems } = channel.identify(message);
  if (problems.length > 0) {
    const errors: AckError[] = problems.map((p) => ({
      code: HL7_ERROR.requiredFieldMissing,
      location: { segment: p.location.segment, field: p.location.field },
      userMessage: `identifier ${p.identifier}: ${p.reason}`,
    }));
    return { status: 'error', reason: errors.map((e) => e.userMessage).join('; '), message, identifiers, outputs: {}, ...answer('error', errors) };
  }
  let output: unknown;
  try {
    output = channel.map(message, identifiers);
  } catch (err) {
    const reason = `mapping failed: ${(err as Error).message}`;
    return { status: 'error', reason, message, identifiers, outputs: {}, ...answer('error', [{ code: HL7_ERROR.applicationInternalError, userMessage: reason }]) };
  }
  const outputs = Object.fromEntries(Object.keys(channel.destinations).map((name) => [name, output]));
  return { status: 'accepted', message, identifiers, outputs, ...answer('accept') };
}

function ackFor(channel: ChannelDefinition, message: Message, outcome: AckOutcome, errors: AckError[]): { ack?: Buffer; ackCode?: string } {
  if (isAckMessage(message)) return {};
  const request = ackRequestOf(message);
  const setting = channel.source.ack_mode;
  const mode = setting === 'as_requested' ? request.mode : setting;
  if (mode === 'enhanced' && !shouldSendAcceptAck({ ...request, mode }, outcome)) return {};
  const code = ackCodeFor(outcome, mode);
  return { ack: buildAck(message, { code, errors }).toBytes(), ackCode: code };
}
