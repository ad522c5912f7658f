import type { Delimiters } from '../hl7/delimiters.js';
import { DEFAULT_DELIMITERS, encodingCharacters, firstRepetition, readDelimiters } from '../hl7/delimiters.js';
import { escapeValue } from '../hl7/escape.js';
import type { Charset } from '../hl7/charset.js';
import { encodeText, encodingForDeclared } from '../hl7/charset.js';
import { Message } from '../hl7/message.js';
import { Segment } from '../hl7/segment.js';
import { hl7Timestamp, newControlId } from '../hl7/timestamp.js';

/** MSA-1, HL7 table 0008. */
export type AckCode = 'AA' | 'AE' | 'AR' | 'CA' | 'CE' | 'CR';

/**
 * The outcome the receiver reached, independent of the acknowledgement mode: the message was
 * processed ('accept'), stored but failed in processing ('error', e.g. an identifier problem or
 * a mapping failure), stored and refused ('reject', e.g. a message type this interface does not
 * take), or could not be stored at all ('not_stored', the only outcome that is not committed).
 */
export type AckOutcome = 'accept' | 'error' | 'reject' | 'not_stored';

/** HL7 table 0357 codes used in ERR-3. */
export const HL7_ERROR = {
  accepted: 0,
  segmentSequenceError: 100,
  requiredFieldMissing: 101,
  dataTypeError: 102,
  tableValueNotFound: 103,
  valueTooLong: 104,
  otherHl7Error: 199,
  unsupportedMessageType: 200,
  unsupportedEventCode: 201,
  unsupportedProcessingId: 202,
  unsupportedVersionId: 203,
  unknownKeyIdentifier: 204,
  duplicateKeyIdentifier: 205,
  applicationRecordLocked: 206,
  applicationInternalError: 207,
} as const;

const HL7_ERROR_TEXT: Record<number, string> = {
  0: 'Message accepted',
  100: 'Segment sequence error',
  101: 'Required field missing',
  102: 'Data type error',
  103: 'Table value not found',
  104: 'Value too long',
  198: 'Non-conformant cardinality',
  199: 'Other HL7 error',
  200: 'Unsupported message type',
  201: 'Unsupported event code',
  202: 'Unsupported processing id',
  203: 'Unsupported version id',
  204: 'Unknown key identifier',
  205: 'Duplicate key identifier',
  206: 'Application record locked',
  207: 'Application internal error',
};

export interface AckError {
  /** Table 0357 code for ERR-3. */
  code: number;
  /** ERR-4, table 0516. */
  severity?: 'E' | 'W' | 'I' | 'F';
  /** Where: segment id, its occurrence, and field/repetition/component/subcomponent (ERR-2). */
  location?: { segment: string; occurrence?: number; field?: number; repetition?: number; component?: number; subcomponent?: number };
  /** ERR-7, technical detail. */
  diagnostic?: string;
  /** ERR-8 and MSA-3: what a person at the sending system should read. */
  userMessage: string;
}

export type AckMode = 'original' | 'enhanced';

/** Table 0155 values of MSH-15 / MSH-16. */
export type AckCondition = 'AL' | 'NE' | 'ER' | 'SU' | '';

export interface AckRequest {
  mode: AckMode;
  /** MSH-15 accept acknowledgement type (enhanced mode). */
  accept: AckCondition;
  /** MSH-16 application acknowledgement type (enhanced mode). */
  application: AckCondition;
}

/** Both MSH-15 and MSH-16 empty means original mode; either valued means enhanced mode. */
export function ackRequestOf(message: Message): AckRequest {
  // Table 0155 codes hold no delimiters or escapes: the fields are read as written.
  const accept = message.header.field(15).trim().toUpperCase() as AckCondition;
  const application = message.header.field(16).trim().toUpperCase() as AckCondition;
  return { mode: accept || application ? 'enhanced' : 'original', accept, application };
}

/**
 * The MSA-1 code for an outcome in a mode. Original mode's one ACK says how processing went:
 * AA/AE/AR (AE when the message could not be stored, so the sender sends it again). An enhanced
 * mode accept ACK says only whether the message was committed: CA once it is stored, whatever
 * processing found (that goes in the application ACK), CE when it could not be stored.
 */
export function ackCodeFor(outcome: AckOutcome, mode: AckMode): AckCode {
  if (mode === 'enhanced') return outcome === 'not_stored' ? 'CE' : 'CA';
  return outcome === 'accept' ? 'AA' : outcome === 'reject' ? 'AR' : 'AE';
}

/** The application ACK code (AA/AE/AR) for an outcome of processing. */
export function applicationAckCodeFor(outcome: AckOutcome): AckCode {
  return ackCodeFor(outcome, 'original');
}

/**
 * Whether an accept ACK should be sent at all under MSH-15 (always true in original mode). In
 * enhanced mode MSH-15 is asked about the commit, not about processing: ER sends a CE when the
 * message could not be stored, not when a stored message failed in processing. A message that
 * could not be stored is always answered, even under NE: no application ACK will follow, and
 * a sender left without an answer could not tell that it must send again.
 */
export function shouldSendAcceptAck(request: AckRequest, outcome: AckOutcome): boolean {
  if (request.mode === 'original' || outcome === 'not_stored') return true;
  // AL, or empty with MSH-16 valued: the accept ACK is expected.
  return conditionAsks(request.accept, 'accept', true);
}

/**
 * Whether an application ACK (AA/AE/AR) should follow under MSH-16, in enhanced mode. Original
 * mode's one ACK already is the application ACK. An empty MSH-16 beside a valued MSH-15 asks
 * for the accept ACK alone. A message that was not stored was not processed: nothing follows.
 */
export function shouldSendApplicationAck(request: AckRequest, outcome: AckOutcome): boolean {
  return request.mode !== 'original' && outcome !== 'not_stored' && conditionAsks(request.application, outcome, false);
}

/** Whether a table 0155 condition asks for an ACK after this outcome; `otherwise` answers for an empty or unknown value. */
function conditionAsks(condition: AckCondition, outcome: AckOutcome, otherwise: boolean): boolean {
  switch (condition) {
    case 'AL':
      return true;
    case 'NE':
      return false;
    case 'ER':
      return outcome !== 'accept';
    case 'SU':
      return outcome === 'accept';
    default:
      return otherwise;
  }
}

/**
 * The MSA-1 codes a receiver sends for a message with this outcome, in order: the accept ACK
 * MSH-15 asks for (in original mode the one ACK), then the application ACK MSH-16 asks for.
 * CE only ever means "not stored, send again"; a stored message that failed in processing is
 * CA, then AE/AR in the application ACK, so a sender never resends what was already committed.
 */
export function ackCodesToSend(request: AckRequest, outcome: AckOutcome): AckCode[] {
  const codes: AckCode[] = [];
  if (shouldSendAcceptAck(request, outcome)) codes.push(ackCodeFor(outcome, request.mode));
  if (shouldSendApplicationAck(request, outcome)) codes.push(applicationAckCodeFor(outcome));
  return codes;
}

export interface AckOptions {
  code: AckCode;
  errors?: AckError[];
  /** MSA-3 text when there is no error (errors supply it otherwise). */
  text?: string;
  controlId?: string;
  now?: Date;
}

/**
 * Builds the ACK for a received message: routing swapped (MSH-3/4 <-> MSH-5/6), MSH-9
 * `ACK^<trigger>^ACK`, a new MSH-10, MSH-11/12/18 copied, MSA-2 = the original MSH-10, and one
 * ERR per error (ERR-2/3/4/7/8 from v2.5, ERR-1 before).
 */
export function buildAck(original: Message, options: AckOptions): Message {
  return buildAckFromHeader(headerOf(original), options);
}

/** The ACK buildAck describes, as bytes ready to send, without building a Message first. */
export function ackBytes(original: Message, options: AckOptions): Buffer {
  return ackBytesFromHeader(headerOf(original), options);
}

/** The parts of a received header an ACK needs. Values are kept encoded, as they came. */
export interface ReceivedHeader {
  delimiters: Delimiters;
  sendingApplication: string;
  sendingFacility: string;
  receivingApplication: string;
  receivingFacility: string;
  /** MSH-9 encoded. */
  messageType: string;
  controlId: string;
  processingId: string;
  version: string;
  charset: string;
  /** MSH-15 */
  acceptAckType: string;
  /** MSH-16 (read leniently only; parsed messages are asked with ackRequestOf). */
  applicationAckType?: string;
}

function headerOf(m: Message): ReceivedHeader {
  // Field by field from the MSH segment: this runs for every message acknowledged.
  const msh = m.header;
  return {
    delimiters: m.delimiters,
    sendingApplication: msh.field(3),
    sendingFacility: msh.field(4),
    receivingApplication: msh.field(5),
    receivingFacility: msh.field(6),
    messageType: msh.field(9),
    controlId: msh.field(10),
    processingId: msh.field(11),
    version: msh.field(12),
    charset: msh.field(18),
    acceptAckType: msh.field(15),
  };
}

/**
 * Reads what it can of an MSH that failed to parse, so even a rejected message gets an ACK
 * that names it (MSA-2). Falls back to standard delimiters when MSH-1/2 are unusable.
 */
const CONTROL_BYTES = /[\x00-\x1f\x7f]/g;

export function readHeaderLeniently(text: string): ReceivedHeader {
  const line = text.split(/\r\n|\r|\n/, 1)[0] ?? '';
  let d: Delimiters;
  try {
    d = readDelimiters(line);
  } catch {
    d = { ...DEFAULT_DELIMITERS };
  }
  const fields = line.startsWith('MSH') && line[3] === d.field ? line.split(d.field) : [];
  // What is echoed back must be framable and readable: a 0x1C copied from a broken header would
  // end the ACK's MLLP frame early, a NUL or 0x0B make it unreadable.
  const f = (n: number) => (n >= 2 ? (fields[n - 1] ?? '').replace(CONTROL_BYTES, '') : '');
  return {
    delimiters: d,
    sendingApplication: f(3),
    sendingFacility: f(4),
    receivingApplication: f(5),
    receivingFacility: f(6),
    messageType: f(9),
    controlId: f(10),
    processingId: f(11),
    version: f(12),
    charset: f(18),
    acceptAckType: f(15),
    applicationAckType: f(16),
  };
}

/**
 * The ACK for a payload that was not (or could not be) parsed: its header is read leniently so
 * the answer still names the message (MSA-2) whenever its MSH-10 can be found.
 */
export function ackForPayload(payload: Buffer, code: AckCode, error: AckError): Buffer {
  const header = readHeaderLeniently(payload.subarray(0, 64 * 1024).toString('latin1'));
  return ackBytesFromHeader(header, { code, errors: [error] });
}

/**
 * The ACKs for a payload whose header is read leniently (see ackForPayload), in the order and
 * with the codes ackCodesToSend gives for its MSH-15/16; `mode` overrides the mode the header
 * asks for (a channel's ack_mode). Used when the channel could not run or the store failed.
 */
export function acksForPayload(payload: Buffer, outcome: AckOutcome, error: AckError, mode?: AckMode): Array<{ code: AckCode; ack: Buffer }> {
  const header = readHeaderLeniently(payload.subarray(0, 64 * 1024).toString('latin1'));
  const accept = header.acceptAckType.trim().toUpperCase() as AckCondition;
  const application = (header.applicationAckType ?? '').trim().toUpperCase() as AckCondition;
  const request: AckRequest = { mode: mode ?? (accept || application ? 'enhanced' : 'original'), accept, application };
  return ackCodesToSend(request, outcome).map((code) => ({ code, ack: ackBytesFromHeader(header, { code, errors: code === 'CA' ? [] : [error] }) }));
}

function ackBytesFromHeader(h: ReceivedHeader, options: AckOptions): Buffer {
  const { lines, charset } = ackLines(h, options);
  let text = '';
  for (const line of lines) text += line + '\r';
  return encodeText(text, charset.encoding);
}

export function buildAckFromHeader(h: ReceivedHeader, options: AckOptions): Message {
  const { lines, charset } = ackLines(h, options);
  const d = ackDelimiters(h.delimiters);
  return new Message(
    d,
    lines.map((line) => new Segment(line.slice(0, 3), line, d)),
    charset,
  );
}

/**
 * The delimiters an ACK is written with: the message's own, unless they cannot carry an error
 * text (no escape or subcomponent character); then the standard ones, which every receiver reads.
 */
function ackDelimiters(d: Delimiters): Delimiters {
  return d.escape !== undefined && d.subcomponent !== undefined ? d : DEFAULT_DELIMITERS;
}

/** The ACK's segments, encoded, and the character set to write them in. */
function ackLines(h: ReceivedHeader, options: AckOptions): { lines: string[]; charset: Charset } {
  const d = ackDelimiters(h.delimiters);
  const sep = d.field;
  const routing = ackRoutingFor(h);
  const msh = routing.beforeTimestamp + hl7Timestamp(options.now) + routing.beforeControlId + (options.controlId ?? newControlId()) + routing.afterControlId;
  const errors = options.errors ?? [];
  const msaText = escapeValue(errors.length ? errors.map((e) => e.userMessage).join('; ') : options.text ?? '', d);
  const msa = msaText ? `MSA${sep}${options.code}${sep}${h.controlId}${sep}${msaText}` : h.controlId ? `MSA${sep}${options.code}${sep}${h.controlId}` : `MSA${sep}${options.code}`;
  const lines = [msh, msa];
  for (const e of errors) lines.push(errSegment(e, d, routing.v25));
  return { lines, charset: routing.charset };
}

/**
 * The parts of an ACK's MSH that depend only on the received header: routing swapped
 * (MSH-3/4 <-> MSH-5/6), MSH-9 `ACK^<trigger>^ACK`, MSH-11/12/18 copied. Everything else is
 * MSH-7 (now) and MSH-10 (new) between them.
 */
interface AckRouting {
  header: ReceivedHeader;
  beforeTimestamp: string;
  beforeControlId: string;
  afterControlId: string;
  v25: boolean;
  charset: Charset;
}

let lastRouting: AckRouting | null = null;

/** Messages on one interface share their routing: the last one built is reused when it matches. */
function ackRoutingFor(h: ReceivedHeader): AckRouting {
  const last = lastRouting?.header;
  if (
    last &&
    last.delimiters === h.delimiters &&
    last.receivingApplication === h.receivingApplication &&
    last.receivingFacility === h.receivingFacility &&
    last.sendingApplication === h.sendingApplication &&
    last.sendingFacility === h.sendingFacility &&
    last.messageType === h.messageType &&
    last.processingId === h.processingId &&
    last.version === h.version &&
    last.charset === h.charset
  ) {
    return lastRouting!;
  }
  const d = ackDelimiters(h.delimiters);
  const sep = d.field;
  const v25 = isVersion25OrLater(h.version);
  const typeParts = h.messageType.split(d.component);
  const trigger = typeParts[1] ?? '';
  const ackType = !trigger ? 'ACK' : v25 || typeParts.length > 2 ? `ACK${d.component}${trigger}${d.component}ACK` : `ACK${d.component}${trigger}`;
  // MSH-12 (required: a header too broken to name one gets the version whose ERR layout is
  // used), and MSH-18 when the message had one; trailing empty fields are left off.
  const version = h.version || '2.5.1';
  const tail = h.charset ? `${sep}${version}${sep.repeat(6)}${h.charset}` : `${sep}${version}`;
  const encoding = h.charset ? (encodingForDeclared(firstRepetition(h.charset, d.repetition)) ?? 'utf-8') : 'utf-8';
  lastRouting = {
    header: h,
    beforeTimestamp: `MSH${sep}${encodingCharacters(d)}${sep}${h.receivingApplication}${sep}${h.receivingFacility}${sep}${h.sendingApplication}${sep}${h.sendingFacility}${sep}`,
    beforeControlId: `${sep}${sep}${ackType}${sep}`,
    afterControlId: `${sep}${h.processingId || 'P'}${tail}`,
    v25,
    // Shared by every ACK built from this routing, so it must not change.
    charset: Object.freeze({ declared: h.charset, encoding }),
  };
  return lastRouting;
}

function errSegment(e: AckError, d: Delimiters, v25: boolean): string {
  const esc = (v: string) => escapeValue(v, d);
  const c = d.component;
  const sub = d.subcomponent ?? d.component;
  const codeText = HL7_ERROR_TEXT[e.code] ?? 'Error';
  const loc = e.location;
  if (!v25) {
    // ELD: segment ^ sequence ^ field position ^ code (CE, as subcomponents)
    const eld = [loc?.segment ?? '', loc?.occurrence ?? '', loc?.field ?? '', [e.code, esc(codeText), 'HL70357'].join(sub)];
    return ['ERR', trimTrailing(eld.map(String), '').join(c)].join(d.field);
  }
  const erl = loc
    ? trimTrailing(
        [loc.segment, loc.occurrence ?? 1, loc.field ?? '', loc.field !== undefined ? (loc.repetition ?? 1) : '', loc.component ?? '', loc.subcomponent ?? ''].map(String),
        '',
      ).join(c)
    : '';
  const fields = ['ERR', '', erl, [e.code, esc(codeText), 'HL70357'].join(c), e.severity ?? 'E', '', '', esc(e.diagnostic ?? ''), esc(e.userMessage)];
  return trimTrailing(fields, '').join(d.field);
}

function trimTrailing<T>(values: T[], empty: T): T[] {
  let end = values.length;
  while (end > 1 && values[end - 1] === empty) end--;
  return values.slice(0, end);
}

/** Whether MSH-12 is v2.5 or later, which decides the ERR layout; unknown versions get the current one. */
function isVersion25OrLater(version: string): boolean {
  const m = /^(\d+)\.(\d+)/.exec(version);
  return !m || Number(m[1]) > 2 || (Number(m[1]) === 2 && Number(m[2]) >= 5);
}

/** What an ACK says, read back (for senders). */
export interface AckSummary {
  code: string;
  /** MSA-2: the control id of the message acknowledged. */
  acknowledgedControlId: string;
  text: string;
  /** ERR-8 (or ERR-1 text) of each ERR. */
  errors: string[];
}

export function readAck(ack: Message): AckSummary {
  const errors = ack.segmentsNamed('ERR').map((_, i) => {
    const path = `ERR[${i + 1}]`;
    return ack.getText(`${path}-8`) || ack.getText(`${path}-3.2`) || ack.getText(`${path}-1.4.2`) || ack.getRaw(`${path}-1`);
  });
  return {
    code: ack.getText('MSA-1'),
    acknowledgedControlId: ack.getText('MSA-2'),
    text: ack.getText('MSA-3'),
    errors,
  };
}

export function isPositiveAck(code: string): boolean {
  return code === 'AA' || code === 'CA';
}
