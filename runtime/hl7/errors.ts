/** Why a message could not be read; stable codes so callers can map them to ACK error codes. */
export type Hl7ParseErrorCode =
  | 'EMPTY'
  | 'NO_MSH'
  | 'BAD_ENCODING_CHARACTERS'
  | 'TRUNCATED'
  | 'BINARY_CONTENT'
  | 'BAD_SEGMENT_NAME'
  | 'BAD_BATCH';

export interface Hl7Location {
  /** 1-based index of the segment in the message (or in the batch file for batch errors). */
  segmentIndex?: number;
  segmentName?: string;
  /** 1-based field number, HL7 numbering (MSH-1 is the field separator). */
  field?: number;
}

export class Hl7ParseError extends Error {
  override readonly name = 'Hl7ParseError';
  constructor(
    readonly code: Hl7ParseErrorCode,
    readonly reason: string,
    readonly location: Hl7Location = {},
  ) {
    super(`${reason}${describeLocation(location)}`);
  }
}

export class Hl7PathError extends Error {
  override readonly name = 'Hl7PathError';
  constructor(
    readonly path: string,
    readonly reason: string,
    /** 0-based offset in the path text where the problem starts. */
    readonly offset: number,
  ) {
    super(`invalid HL7 path "${path}" at character ${offset + 1}: ${reason}`);
  }
}

/** Raised by editing operations that would produce an invalid message. */
export class Hl7EditError extends Error {
  override readonly name = 'Hl7EditError';
}

function describeLocation(location: Hl7Location): string {
  const parts: string[] = [];
  if (location.segmentIndex !== undefined) {
    parts.push(`segment ${location.segmentIndex}${location.segmentName ? ` (${location.segmentName})` : ''}`);
  }
  if (location.field !== undefined) parts.push(`field ${location.field}`);
  return parts.length ? ` [at ${parts.join(', ')}]` : '';
}
