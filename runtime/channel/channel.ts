import type { AckError, AckOutcome } from '../ack/ack.js';
import { ackBytes, ackCodesToSend, ackRequestOf, HL7_ERROR } from '../ack/ack.js';
import { isAckMessage, receive } from '../ack/receive.js';
import { encodeText } from '../hl7/charset.js';
import { Message } from '../hl7/message.js';
import { Segment } from '../hl7/segment.js';
import { DEFAULT_PROCESSING_BUDGET_MS, ProcessingBudgetExceeded, withProcessingBudget } from './budget.js';
import { describeCondition } from './conditions.js';
import { TransformError } from './edits.js';
import type { FoundIdentifier, IdentifierProblem } from './identifiers.js';
import { jsonDepthOver, MAX_JSON_DEPTH } from './json-limits.js';
import { parsePath } from '../hl7/path.js';
import { DateValueError, LookupError } from './transforms.js';

export type AckModeSetting = 'original' | 'enhanced' | 'as_requested';

/** TLS files (PEM paths) as a spec names them. */
export interface TlsFiles {
  key?: string;
  cert?: string;
  ca?: string;
  require_client_certificate?: boolean;
}

/** Limits and access control shared by network sources (MLLP and HTTP). */
export interface SourceLimits {
  /** Connections open at once; more are closed on arrival. Absent or 0: no limit. */
  max_connections?: number;
  /** Close a connection idle this long; 0 turns it off. Absent: the default (10 minutes). */
  idle_timeout_ms?: number;
  /** Addresses allowed to connect (CIDR blocks, IPv4 or IPv6); absent: any. */
  allow?: string[];
}

/**
 * An answer that waits for deliveries: AA (HTTP 200) once each of `after` delivered the message,
 * AE (HTTP 502) when one failed for good; `from` (MLLP) passes that destination's own ACK through.
 * Past `wait_ms`, the answer given at storing.
 */
export interface AnswerAfter {
  after: string[];
  from?: string;
  wait_ms: number;
}

export interface MllpSourceConfig extends SourceLimits {
  kind: 'mllp';
  answer?: AnswerAfter;
  host: string;
  port: number;
  ack_mode: AckModeSetting;
  max_message_bytes?: number;
  tls?: TlsFiles;
  dedupe?: DedupeConfig;
}

/** A source's duplicate detection: a message whose key fields match one received within the window. */
export interface DedupeConfig {
  /** Paths whose values together identify a message (default MSH-3, MSH-4, MSH-10). */
  key: string[];
  window_ms: number;
}

export interface HttpSourceConfig extends SourceLimits {
  kind: 'http';
  answer?: AnswerAfter;
  host: string;
  port: number;
  path: string;
  /** Bearer token the app must send; empty means none required. */
  auth_token: string;
  /** HTTP Basic credentials the sender must give (either this or the bearer token). */
  basic_auth?: { user: string; password: string };
  /** json (default): the app posts JSON; hl7: the body is an HL7 message. */
  content?: PayloadKind;
  /** Largest request body accepted (413 past it). Absent: 10 MiB. */
  max_body_bytes?: number;
}

export interface FileSourceConfig {
  kind: 'file';
  dir: string;
  /** Glob on file names (* and ?); absent: *.hl7. */
  pattern?: string;
  done_dir: string;
  error_dir: string;
  /** How long (ms) a file's size and mtime must stay the same before it is read; absent: 1000. */
  settle_ms?: number;
  dedupe?: DedupeConfig;
}

/** Fed only by other channels' `channel` destinations: no port, no directory, no ACK. */
export interface ChannelSourceConfig {
  kind: 'channel';
  /** What the channels handing to this one send. */
  input: PayloadKind;
}

export type SourceConfig = MllpSourceConfig | HttpSourceConfig | FileSourceConfig | ChannelSourceConfig;

export interface HttpDestinationConfig {
  kind: 'http';
  url: string;
  method: string;
  headers: Record<string, string>;
  timeout_ms: number;
  /** The content type to send; absent: JSON or HL7, as the payload looks. */
  content_type?: string;
  /** The queued payload starts with a JSON line: {query, headers} rendered from the message. */
  envelope?: boolean;
  /** The response body is handed to this channel, as if it had been received there. */
  response_channel?: string;
  /** Statuses besides 2xx that count as delivered (a 409 "already have it"); their body is not handed on. */
  delivered_status?: number[];
}
export interface MllpDestinationConfig {
  kind: 'mllp';
  host: string;
  port: number;
  /** What an AE from the far side means: try again later, or give up (dead letter / stop). */
  on_ae: 'retry' | 'fail';
  /** What an AR means; AR is "do not resend as is", so fail is the usual choice. */
  on_ar: 'retry' | 'fail';
  tls?: TlsFiles;
}
export interface FileDestinationConfig {
  kind: 'file';
  dir: string;
  file_name: string;
  /** A name already taken: write under the next free `name-2.ext`, `name-3.ext` … (default), or fail the attempt. */
  on_exists?: 'suffix' | 'fail';
  /** `output` (default): what the channel produced; `raw`: the bytes exactly as received (an archive copy). */
  content?: 'output' | 'raw';
  /** Add to the end of the file (created if missing) instead of writing a new one. */
  append?: boolean;
  /** The queued payload starts with a JSON line naming the file (a file_name with `{{…}}` placeholders). */
  envelope?: boolean;
}
export type PayloadKind = 'json' | 'hl7';

/** What a channel's source takes: http sources take the app's JSON, mllp and file sources HL7. */
export function inputKind(channel: Pick<ChannelDefinition, 'input' | 'source'>): PayloadKind {
  if (channel.source.kind === 'channel') return channel.source.input;
  return channel.input ?? (channel.source.kind === 'http' ? (channel.source.content ?? 'json') : 'hl7');
}

/** Rows per message in one transaction; the parameter values come with each queue entry. */
export interface DatabaseDestinationConfig {
  kind: 'database';
  /** postgres://…, mysql://… or mariadb://… */
  url: string;
  /** As the spec writes them, with $1, $2 …; the MySQL sender turns those into ?. */
  statements: string[];
}

/** One mail per message; subject and text are rendered when the message is received. */
export interface SmtpDestinationConfig {
  kind: 'smtp';
  host: string;
  port: number;
  /** TLS from the first byte (465); otherwise STARTTLS when the server offers it. */
  secure: boolean;
  user?: string;
  password?: string;
  from: string;
  to: string[];
  cc?: string[];
  reply_to?: string;
  headers?: Record<string, string>;
  timeout_ms: number;
}

export interface ChannelDestinationConfig {
  kind: 'channel';
  channel: string;
}

export interface DestinationConfig {
  /** Only messages that meet this condition go to the destination. */
  when?: import('./conditions.js').Condition;
  target: HttpDestinationConfig | MllpDestinationConfig | FileDestinationConfig | ChannelDestinationConfig | DatabaseDestinationConfig | SmtpDestinationConfig;
  /** attempts: Infinity for `attempts: unlimited` (the entry waits for the receiver however long it takes). */
  retry: { attempts: number; backoff_ms: number; max_backoff_ms: number };
  on_failure: 'dead_letter' | 'stop_queue';
  /** Deliveries at once; 1 keeps FIFO order. */
  max_in_flight?: number;
  /**
   * The destination's own payload (its transform, map, build or body) instead of the channel's
   * output: given the channel's message (to copy before editing), the identifiers, the JSON
   * received (JSON channels) and the channel's output. HL7 and text come back as a string.
   */
  payload?: DestinationPayload;
  /**
   * What a destination's sender needs from the message besides the payload, rendered when the
   * message is received (a file name with `{{MSH-9.2}}`, an HTTP query or headers from the
   * message): it travels in front of the payload as one JSON line (see deliveryPayloads).
   */
  envelope_of?: (message: Message, identifiers: Identification['identifiers'], input: unknown, output: unknown) => Record<string, unknown>;
}

export type DestinationPayload = (message: Message, identifiers: Identification['identifiers'], input: unknown, output: unknown) => unknown;

export type AcceptDecision =
  | { outcome: 'accept' }
  /** ack AR: a filtered message is answered AR with the reason (Mirth's auto-ACK does this); default AA. */
  | { outcome: 'filter'; rule: string; reason: string; ack?: 'AA' | 'AR'; at?: string }
  /** at: the HL7 path the rule reads (MSH-9 for message_type), for the ERR segment's location and code. */
  | { outcome: 'reject'; rule: string; reason: string; at?: string };

export interface Identification {
  identifiers: Record<string, FoundIdentifier | null>;
  problems: IdentifierProblem[];
}

/** What a compiled channel module exports as default. */
export interface ChannelDefinition {
  name: string;
  /** The spec it was compiled from, relative to where the build ran. */
  spec: string;
  /**
   * The HL7 version (MSH-12) the spec says or shows its messages carry, whose tables its paths
   * were checked against. A message of another version is still processed, and counted.
   */
  hl7_version?: string;
  source: SourceConfig;
  /** What the source takes: JSON (http sources) or HL7 (mllp, file); a hand-off from another channel must be this kind. */
  input?: PayloadKind;
  /** What destinations receive: mapped JSON, or the HL7 message. */
  output: PayloadKind;
  destinations: Record<string, DestinationConfig>;
  /**
   * A message that passed every stage but that no destination takes: 'error' (status error,
   * AE with the reason) or 'filter' (status filtered, AA, the reason recorded). Default error:
   * nothing accepted goes nowhere unnoticed.
   */
  on_unrouted?: 'error' | 'filter';
  /** JSON -> HL7 (http sources): the outgoing message built from the posted JSON. */
  build?(input: unknown): Message;
  accept(message: Message): AcceptDecision;
  identify(message: Message): Identification;
  /** HL7 -> HL7 edits, applied before routing. */
  transform?(message: Message): void;
  /** HL7 -> JSON; on a channel that takes JSON without build, JSON -> JSON from `input` (no message exists). */
  map?(message: Message, identifiers: Identification['identifiers'], input?: unknown): unknown;
  /** The destinations this message goes to. */
  route(message: Message): string[];
}

export function defineChannel(definition: ChannelDefinition): ChannelDefinition {
  return definition;
}

/** `duplicate`: a source with `dedupe` saw it within its window; answered as the first was, delivered nowhere. */
export type MessageStatus = 'accepted' | 'filtered' | 'rejected' | 'error' | 'duplicate';

export interface ChannelResult {
  status: MessageStatus;
  reason?: string;
  message?: Message;
  identifiers: Identification['identifiers'];
  /** The mapped output each destination receives. */
  outputs: Record<string, unknown>;
  /** The channel's own output (its map, or the HL7 it forwards), before any destination's own payload. */
  output?: unknown;
  /** Per destination with envelope_of: what its sender needs from the message (file name, query, headers). */
  envelopes?: Record<string, Record<string, unknown>>;
  /**
   * The ACK to send back first, if any: the one ACK of original mode, the accept ACK MSH-15
   * asks for, or with MSH-15 NE the application ACK.
   */
  ack?: Buffer;
  ackCode?: string;
  /** The application ACK MSH-16 asks for, sent right after an accept ACK. */
  applicationAck?: Buffer;
  applicationAckCode?: string;
  /** For http sources: the answer to the app. */
  response?: { status: number; body: Record<string, unknown> };
}

/**
 * Runs one received payload through a channel's stages: (build,) parse, accept, identify,
 * (transform,) map, route. Filtered messages are acknowledged AA and recorded as filtered;
 * rejected ones AR with the rule's reason; a missing or ambiguous required identifier is AE
 * naming the field. Nothing is thrown for a bad message: every outcome is a result.
 */
export function runChannel(channel: ChannelDefinition, payload: Buffer, options: RunOptions = {}): ChannelResult {
  return withProcessingBudget(options.processingBudgetMs ?? DEFAULT_PROCESSING_BUDGET_MS, () => {
    if (inputKind(channel) === 'json') {
      const result = runJson(channel, payload);
      return channel.source.kind === 'http' ? withResponse(result) : result;
    }
    const received = receive(payload);
    if (!received.ok) {
      return { status: 'rejected', reason: received.error.message, identifiers: {}, outputs: {}, ...(channel.source.kind === 'mllp' ? { ack: received.reject, ackCode: 'AR' } : {}) };
    }
    const result = runMessage(channel, received.message);
    return channel.source.kind === 'http' ? withResponse(result) : result;
  });
}

export interface RunOptions {
  /** Milliseconds one message may hold the event loop (default 1000); over it, the message is an error answered AE. */
  processingBudgetMs?: number;
}

function runJson(channel: ChannelDefinition, payload: Buffer): ChannelResult {
  let input: unknown;
  try {
    const text = payload.toString('utf8');
    const depth = jsonDepthOver(text, MAX_JSON_DEPTH);
    if (depth !== undefined) return { status: 'rejected', reason: `the body nests objects and arrays deeper than ${MAX_JSON_DEPTH} levels (at byte ${depth})`, identifiers: {}, outputs: {} };
    input = JSON.parse(text);
  } catch (err) {
    return { status: 'rejected', reason: `the body is not JSON: ${(err as Error).message}`, identifiers: {}, outputs: {} };
  }
  if (!channel.build) return runJsonMap(channel, input);
  let message: Message;
  try {
    message = channel.build(input);
  } catch (err) {
    const reason = err instanceof ProcessingBudgetExceeded ? err.message : `could not build the message: ${(err as Error).message}`;
    return { status: 'error', reason, identifiers: {}, outputs: {} };
  }
  return runMessage(channel, message, input);
}

/**
 * JSON -> JSON (a channel that takes JSON and maps it without building HL7): there is no HL7
 * message, so no accept rules, identifiers or transform (validate refuses them); the mapped JSON
 * goes to every destination, or each destination's own payload.
 */
function runJsonMap(channel: ChannelDefinition, input: unknown): ChannelResult {
  // No message on this path: generated map/route/payload functions of such a channel never read one.
  const none = undefined as unknown as Message;
  try {
    const output = channel.map ? channel.map(none, {}, input) : input;
    const routed = channel.route(none);
    if (routed.length === 0) {
      const reason = unroutedReason(channel);
      return { status: channel.on_unrouted === 'filter' ? 'filtered' : 'error', reason, identifiers: {}, outputs: {} };
    }
    const outputs: Record<string, unknown> = {};
    for (const name of routed) {
      const payload = channel.destinations[name]?.payload;
      outputs[name] = payload ? payload(none, {}, input, output) : output;
    }
    const envelopes = envelopesOf(channel, routed, none, {}, input, output);
    return { status: 'accepted', identifiers: {}, outputs, output, ...(envelopes ? { envelopes } : {}) };
  } catch (err) {
    if (err instanceof ProcessingBudgetExceeded) return { status: 'error', reason: err.message, identifiers: {}, outputs: {} };
    return { status: 'error', reason: stageError(err).userMessage, identifiers: {}, outputs: {} };
  }
}

function withResponse(result: ChannelResult): ChannelResult {
  const status = result.status === 'accepted' || result.status === 'filtered' ? 200 : result.status === 'rejected' ? 400 : 422;
  const body: Record<string, unknown> = { status: result.status };
  if (result.message) body.control_id = result.message.controlId;
  if (result.reason) body.reason = result.reason;
  return { ...result, response: { status, body } };
}

function runMessage(channel: ChannelDefinition, message: Message, input?: unknown): ChannelResult {
  try {
    return runStages(channel, message, input);
  } catch (err) {
    if (!(err instanceof ProcessingBudgetExceeded)) throw err;
    const errors = [{ code: HL7_ERROR.applicationInternalError, userMessage: err.message }];
    return { status: 'error', reason: err.message, message, identifiers: {}, outputs: {}, ...(channel.source.kind === 'mllp' ? ackFor(channel, message, 'error', errors) : {}) };
  }
}

/**
 * The header as received, for answering: transforms may rewrite MSH (routing to the next system),
 * but the ACK goes back to the sender, addressed from what the sender wrote.
 */
function receivedHeader(message: Message): Message {
  const msh = message.header;
  return new Message(message.delimiters, [new Segment(msh.name, msh.toString(), message.delimiters)], message.charset);
}

function runStages(channel: ChannelDefinition, message: Message, input: unknown): ChannelResult {
  const answered = channel.transform && channel.source.kind === 'mllp' ? receivedHeader(message) : message;
  const answer = (outcome: AckOutcome, errors: AckError[] = []) => (channel.source.kind === 'mllp' ? ackFor(channel, answered, outcome, errors) : {});
  const decision = channel.accept(message);
  if (decision.outcome === 'reject') {
    const reason = `${decision.reason} (rule ${decision.rule})`;
    return { status: 'rejected', reason, message, identifiers: {}, outputs: {}, ...answer('reject', [rejectionError(decision.at, reason)]) };
  }
  if (decision.outcome === 'filter') {
    const reason = `${decision.reason} (rule ${decision.rule})`;
    // Still filtered (stored, sent nowhere); only the answer differs.
    const ack = decision.ack === 'AR' ? answer('reject', [rejectionError(decision.at, reason)]) : answer('accept');
    return { status: 'filtered', reason, message, identifiers: {}, outputs: {}, ...ack };
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
  let routed: string[];
  let outputs: Record<string, unknown>;
  let envelopes: Record<string, Record<string, unknown>> | undefined;
  try {
    channel.transform?.(message);
    output = channel.output === 'json' ? channel.map!(message, identifiers) : message.toString();
    routed = channel.route(message);
    // A destination with its own transform, map, build or body gets that instead of the channel's output.
    outputs = {};
    for (const name of routed) {
      const payload = channel.destinations[name]?.payload;
      outputs[name] = payload ? payload(message, identifiers, input, output) : output;
    }
    envelopes = envelopesOf(channel, routed, message, identifiers, input, output);
  } catch (err) {
    if (err instanceof ProcessingBudgetExceeded) throw err;
    const error = stageError(err);
    return { status: 'error', reason: error.userMessage, message, identifiers, outputs: {}, ...answer('error', [error]) };
  }
  if (routed.length === 0) {
    const reason = unroutedReason(channel);
    if (channel.on_unrouted === 'filter') return { status: 'filtered', reason, message, identifiers, outputs: {}, ...answer('accept') };
    return { status: 'error', reason, message, identifiers, outputs: {}, ...answer('error', [{ code: HL7_ERROR.applicationInternalError, userMessage: reason }]) };
  }
  return { status: 'accepted', message, identifiers, outputs, output, ...(envelopes ? { envelopes } : {}), ...answer('accept') };
}

/** What the routed destinations' senders need from the message, rendered now; undefined when none does. */
function envelopesOf(channel: ChannelDefinition, routed: string[], message: Message, identifiers: Identification['identifiers'], input: unknown, output: unknown): Record<string, Record<string, unknown>> | undefined {
  let envelopes: Record<string, Record<string, unknown>> | undefined;
  for (const name of routed) {
    const of = channel.destinations[name]?.envelope_of;
    if (!of) continue;
    const envelope = of(message, identifiers, input, output);
    // A value from the message never leaves the directory: separators and leading dots are replaced.
    if (typeof envelope.file_name === 'string') envelope.file_name = envelope.file_name.replace(/[/\\\x00-\x1f]/g, '_').replace(/^\.+/, '_') || '_';
    (envelopes ??= {})[name] = envelope;
  }
  return envelopes;
}

/**
 * The ERR for a message an accept rule turned away: located at the field the rule reads, with the
 * table 0357 code for it: 200 message type (MSH-9, MSH-9.1), 201 event (MSH-9.2), 202 processing id
 * (MSH-11), 203 version (MSH-12), else 199 (other): a rule about PID-5.1 is not an unsupported
 * message type. A rule reading several fields gives no location.
 */
function rejectionError(at: string | undefined, userMessage: string): AckError {
  const p = at ? parsePath(at) : undefined;
  if (!p?.field) return { code: HL7_ERROR.otherHl7Error, userMessage };
  const mshField = p.segment === 'MSH' ? p.field : 0;
  const code =
    mshField === 9 ? (p.component === 2 ? HL7_ERROR.unsupportedEventCode : HL7_ERROR.unsupportedMessageType) : mshField === 11 ? HL7_ERROR.unsupportedProcessingId : mshField === 12 ? HL7_ERROR.unsupportedVersionId : HL7_ERROR.otherHl7Error;
  const location = { segment: p.segment, ...(p.segmentRepetition ? { occurrence: p.segmentRepetition } : {}), field: p.field, ...(p.component ? { component: p.component } : {}) };
  return { code, userMessage, location };
}

/** What went wrong in transform, map or route, as the ERR the sender reads. */
function stageError(err: unknown): AckError {
  if (err instanceof TransformError) {
    const userMessage = err.identifier ? err.message : `transform failed: ${err.message}`;
    return { code: err.identifier ? HL7_ERROR.requiredFieldMissing : HL7_ERROR.applicationInternalError, userMessage, ...(err.location ? { location: err.location } : {}) };
  }
  if (err instanceof LookupError) return { code: HL7_ERROR.tableValueNotFound, userMessage: `mapping failed: ${err.message}` };
  if (err instanceof DateValueError) {
    const at = err.field ? parsePath(err.field) : undefined;
    const location = at ? { segment: at.segment, ...(at.segmentRepetition ? { occurrence: at.segmentRepetition } : {}), ...(at.field ? { field: at.field } : {}), ...(at.component ? { component: at.component } : {}) } : undefined;
    return { code: HL7_ERROR.dataTypeError, userMessage: `${err.step ? 'transform' : 'mapping'} failed: ${err.message}`, ...(location ? { location } : {}) };
  }
  return { code: HL7_ERROR.applicationInternalError, userMessage: `mapping failed: ${(err as Error).message}` };
}

function unroutedReason(channel: ChannelDefinition): string {
  const names = Object.keys(channel.destinations);
  if (names.length === 0) return 'not routed: the channel has no destinations';
  const needs = names.map((name) => {
    const when = channel.destinations[name]!.when;
    return when ? `${name} needs ${describeCondition(when)}` : name;
  });
  return `not routed: no destination takes this message (${needs.join('; ')})`;
}

/**
 * What each destination's queue entry holds: HL7 in the message's character set, or JSON; a
 * file destination with `content: raw` gets the bytes as received instead (given `received`).
 */
export function deliveryPayloads(result: ChannelResult, received?: { channel: ChannelDefinition; raw: Buffer }): Array<{ destination: string; payload: Buffer }> {
  return Object.entries(result.outputs).map(([destination, output]) => {
    const target = received?.channel.destinations[destination]?.target;
    const bytes =
      received && target?.kind === 'file' && target.content === 'raw'
        ? received.raw
        : typeof output === 'string'
          ? encodeText(output, result.message?.charset.encoding ?? 'utf-8')
          : Buffer.from(JSON.stringify(output), 'utf8');
    const envelope = result.envelopes?.[destination];
    // What the sender needs from the message rides in front of the bytes, one JSON line.
    if (envelope !== undefined) return { destination, payload: Buffer.concat([Buffer.from(`${JSON.stringify(envelope)}\n`, 'utf8'), bytes]) };
    return { destination, payload: bytes };
  });
}

/** Every ACK a result sends back, in order. */
export function acksOf(result: Pick<ChannelResult, 'ack' | 'applicationAck'>): Buffer[] {
  return [result.ack, result.applicationAck].filter((ack): ack is Buffer => ack !== undefined);
}

/** The MSA-1 codes a result sends back, as stored and listed: "AA", or "CA AA" for an accept ACK and an application ACK. */
export function ackCodesOf(result: Pick<ChannelResult, 'ackCode' | 'applicationAckCode'>): string | undefined {
  return result.applicationAckCode ? `${result.ackCode ?? ''} ${result.applicationAckCode}`.trim() : result.ackCode;
}

export type Acks = Pick<ChannelResult, 'ack' | 'ackCode' | 'applicationAck' | 'applicationAckCode'>;

/** The ACKs a channel's source sends for an outcome, in the mode the message's own MSH-15/16 ask for (none but for MLLP sources). */
export function answerFor(channel: ChannelDefinition, message: Message, outcome: AckOutcome, errors: AckError[] = []): Acks {
  return channel.source.kind === 'mllp' ? ackFor(channel, message, outcome, errors) : {};
}

function ackFor(channel: ChannelDefinition, message: Message, outcome: AckOutcome, errors: AckError[]): Acks {
  if (isAckMessage(message)) return {};
  const setting = (channel.source as MllpSourceConfig).ack_mode;
  const requested = ackRequestOf(message);
  const request = { ...requested, mode: setting === 'as_requested' ? requested.mode : setting };
  const [first, second] = ackCodesToSend(request, outcome);
  return {
    // A CA says "stored"; what went wrong in processing goes in the application ACK.
    ...(first ? { ack: ackBytes(message, { code: first, errors: first === 'CA' ? [] : errors }), ackCode: first } : {}),
    ...(second ? { applicationAck: ackBytes(message, { code: second, errors }), applicationAckCode: second } : {}),
  };
}
