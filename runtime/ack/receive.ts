import type { Hl7ParseErrorCode } from '../hl7/errors.js';
import { Hl7ParseError } from '../hl7/errors.js';
import type { Message } from '../hl7/message.js';
import { parseMessage } from '../hl7/parse.js';
import type { AckError, AckOutcome } from './ack.js';
import { ackBytes, ackCodeFor, ackCodesToSend, ackForPayload, ackRequestOf, HL7_ERROR, shouldSendAcceptAck } from './ack.js';

/** Table 0357 code for each way a message can fail to parse. */
const PARSE_ERROR_CODES: Record<Hl7ParseErrorCode, number> = {
  EMPTY: HL7_ERROR.segmentSequenceError,
  NO_MSH: HL7_ERROR.segmentSequenceError,
  BAD_ENCODING_CHARACTERS: HL7_ERROR.otherHl7Error,
  TRUNCATED: HL7_ERROR.requiredFieldMissing,
  BINARY_CONTENT: HL7_ERROR.dataTypeError,
  BAD_SEGMENT_NAME: HL7_ERROR.segmentSequenceError,
  BAD_BATCH: HL7_ERROR.segmentSequenceError,
};

export type Received =
  | { ok: true; message: Message }
  | { ok: false; error: Hl7ParseError; reject: Buffer };

/** Parses a received payload; when it cannot be read, also builds the AR that says why and where. */
export function receive(payload: Buffer): Received {
  try {
    return { ok: true, message: parseMessage(payload) };
  } catch (err) {
    if (!(err instanceof Hl7ParseError)) throw err;
    const error = forSender(err);
    return { ok: false, error, reject: ackForPayload(payload, 'AR', parseErrorToAckError(error)) };
  }
}

/** A parse error in words for the sending system's staff: the parser's own text names library calls. */
function forSender(err: Hl7ParseError): Hl7ParseError {
  if (err.code !== 'BAD_BATCH') return err;
  const what = err.location.segmentName === 'MSH' ? 'several messages' : `a batch (${err.location.segmentName ?? 'FHS/BHS'} header)`;
  return new Hl7ParseError(err.code, `${what} arrived where one message was expected: send each message on its own (one message per MLLP frame or request)`, err.location);
}

export function parseErrorToAckError(err: Hl7ParseError): AckError {
  const { segmentName, segmentIndex, field } = err.location;
  const error: AckError = { code: PARSE_ERROR_CODES[err.code], userMessage: err.reason, diagnostic: `${err.code} at segment ${segmentIndex ?? '?'}` };
  if (segmentName) error.location = { segment: segmentName, ...(field !== undefined ? { field } : {}) };
  return error;
}

/** True for ACK messages, which are never acknowledged (that would loop). */
export function isAckMessage(message: Message): boolean {
  const type = message.header.field(9);
  return type.startsWith('ACK') && (type.length === 3 || type[3] === message.delimiters.component);
}

/**
 * The acknowledgement to send for a message with this outcome, following MSH-15/16: original
 * mode AA/AE/AR, enhanced mode CA (stored) or CE (not stored), or nothing when MSH-15 says not
 * to (or it is an ACK). A CA carries no errors: they belong in the application ACK.
 * This is the first ACK only; `acknowledgements` adds the application ACK MSH-16 may ask for.
 */
export function acknowledge(message: Message, outcome: AckOutcome, errors: AckError[] = []): Buffer | undefined {
  if (isAckMessage(message)) return undefined;
  const request = ackRequestOf(message);
  if (!shouldSendAcceptAck(request, outcome)) return undefined;
  const code = ackCodeFor(outcome, request.mode);
  return ackBytes(message, { code, errors: code === 'CA' ? [] : errors });
}

/**
 * Every acknowledgement a receiver that has stored and processed a message sends, in order
 * (see ackCodesToSend): in original mode the one AA/AE/AR; in enhanced mode the accept ACK
 * (CA, or CE when not stored) MSH-15 asks for, then the application ACK (AA/AE/AR) MSH-16 asks for. MSH-15 NE
 * with MSH-16 AL thus gets one AA, as in original mode; without it the sender would wait for
 * an answer that never comes.
 */
export function acknowledgements(message: Message, outcome: AckOutcome, errors: AckError[] = []): Buffer[] {
  if (isAckMessage(message)) return [];
  return ackCodesToSend(ackRequestOf(message), outcome).map((code) => ackBytes(message, { code, errors: code === 'CA' ? [] : errors }));
}
