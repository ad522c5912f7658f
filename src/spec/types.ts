import type { Condition, Hl7Version } from '../../runtime/index.js';

/** Limits and access control of a network source (source.mllp, source.http). */
export interface SourceLimitKeys {
  max_connections?: number;
  idle_timeout_ms?: number;
  allow?: string[];
}

/**
 * An answer that waits for deliveries (Mirth's "Auto-generate (Destinations completed)"): AA
 * (HTTP 200) once these destinations delivered the message, AE (HTTP 502) when one failed for
 * good; past answer_wait_ms (default 30000) hl7c's own answer, the message being stored.
 */
export interface AnswerAfterKeys {
  answer_after?: string[];
  answer_wait_ms?: number;
}

/** TLS files (PEM paths) of an MLLP source or destination. */
export interface TlsSpec {
  key?: string;
  cert?: string;
  ca?: string;
  require_client_certificate?: boolean;
}

/** A spec after schema validation (see schema/hl7c-spec.schema.json). */
export interface Spec {
  channel: string;
  description?: string;
  timezone?: string;
  /** The HL7 version its messages carry (MSH-12): paths are checked against that version's tables. See effectiveHl7Version. */
  hl7_version?: Hl7Version;
  source: {
    mllp?: { host?: string; port: number; ack_mode?: 'original' | 'enhanced' | 'as_requested'; max_message_bytes?: number; tls?: TlsSpec; dedupe?: DedupeSpec } & AnswerAfterKeys & SourceLimitKeys & {
      /** The answer is this MLLP destination's own ACK, passed through once it answered (Mirth's "respond from d1"). */
      answer_from?: string;
    };
    http?: {
      host?: string;
      port: number;
      path: string;
      /** json (default): the app posts JSON; hl7: the body is an HL7 message. */
      content?: 'hl7' | 'json';
      auth_token?: string;
      basic_auth?: { user: string; password: string };
      max_body_bytes?: number;
    } & AnswerAfterKeys & SourceLimitKeys;
    /** pattern: a glob on file names (* and ?), default *.hl7. */
    file?: { dir: string; pattern?: string; done_dir?: string; error_dir?: string; settle_ms?: number; dedupe?: DedupeSpec };
    /** Fed only by other channels' `channel` destinations; no port. */
    channel?: { input: 'hl7' | 'json' };
  };
  accept?: AcceptRule[];
  identifiers?: Record<string, IdentifierRule>;
  map?: Record<string, Mapping>;
  build?: BuildSpec;
  transform?: TransformStep[];
  destinations?: Record<string, Destination>;
  /** A processed message no destination takes: error (default, AE) or filter (AA, recorded as filtered). */
  on_unrouted?: 'error' | 'filter';
  tests?: TestCase[];
}

/** `dedupe:` on a source: a repeat of the key within the window is answered as the first was, stored as duplicate, sent nowhere. */
export interface DedupeSpec {
  key?: string[];
  /** 30s, 15m, 24h, 7d. */
  window: string;
}

export interface BuildSpec {
  message_type: string;
  version: string;
  sending_application?: string;
  sending_facility?: string;
  receiving_application?: string;
  receiving_facility?: string;
  processing_id?: string;
  accept_ack_type?: string;
  application_ack_type?: string;
  segments: BuildSegment[];
}

export interface BuildSegment {
  segment?: string;
  fields?: Record<string, BuildValue>;
  each?: string;
  each_line?: string;
  segments?: BuildSegment[];
}

export type BuildValue =
  | string
  | number
  | boolean
  | {
      json?: string;
      /** delete: a JSON null writes the HL7 null "" (else null is the same as missing). */
      on_null?: 'delete';
      value?: string | number | boolean | null;
      index?: true;
      now?: true;
      transform?: Array<'trim' | 'upper' | 'lower' | 'hl7_date' | 'hl7_datetime'>;
      lookup?: Record<string, string>;
      default?: string | number | boolean | null;
    };

/** One HL7 -> HL7 edit; every step may carry `when`, the condition under which it applies. */
export type TransformStep = (
  | { set: { path: string; value: string | null } | { path: string; identifier: string } }
  | { copy: { from: string; to: string } }
  | { clear: string }
  | { delete_segments: string | string[] }
  | { keep_identifier: string }
  | { add_segment: AddSegmentStep }
  | { replace: { path: string; pattern: string; with: string } }
  | { reformat_date: { path: string; format: string } }
) & { when?: Condition };

/** A new segment (after the first `after`, else at the end) with fields: literal text, or a value read from the message. */
export interface AddSegmentStep {
  segment: string;
  after?: string;
  fields?: Record<string, string | { path: string }>;
}

export interface AcceptRule {
  rule: string;
  if: Condition;
  otherwise: 'filter' | 'reject';
  reason?: string;
  /** With otherwise: filter, what the sender is answered: AA (default) or AR with the reason. */
  ack?: 'AA' | 'AR';
}

export interface IdentifierRule {
  kind: 'patient' | 'visit' | 'account' | 'order' | 'document' | 'appointment' | 'merge';
  field?: string;
  /** One CX.4 namespace, or several in order of preference. */
  assigning_authority?: string | string[];
  type_code?: string;
  prefer?: 'filler' | 'placer';
  required?: boolean;
}

export interface Mapping {
  path?: string;
  /** A dot path into JSON (database params: the destination's or channel's JSON, else the JSON received). */
  json?: string;
  identifier?: string;
  value?: string | number | boolean | null;
  concat?: Array<string | { path: string }>;
  /** A segment (OBX), a repeating field (PID-3), or `{json: items}`: every item of a JSON array. */
  each?: string | { json: string };
  fields?: Record<string, Mapping>;
  transform?: Array<'trim' | 'upper' | 'lower' | 'date' | 'datetime' | 'number'>;
  /** An HL7 date/time as text: YYYY MM DD HH mm ss, e.g. MM/DD/YYYY; a missing part gives null. */
  format?: string;
  /** Regular-expression replacements on the value read, in order, every match (JavaScript syntax, $1 … in with). */
  replace?: Array<{ pattern: string; with: string }>;
  /** A CWE/CE field: its code (.1), text (.2) or coding system (.3). */
  coded?: 'code' | 'text' | 'system';
  lookup?: Record<string, string> | { file: string };
  /** A value the lookup table does not have; YAML `null` and "null" mean the same. */
  on_missing?: LookupMissing | null;
  default?: string | number | boolean | null;
  when?: Condition;
}

export type LookupMissing = 'null' | 'keep' | 'default' | 'error';

export interface Destination {
  http?: {
    url: string;
    method?: string;
    /** Values may read the message: {{PID-3.1}}. */
    headers?: Record<string, string>;
    /** Query parameters added to the url; values are templates. */
    query?: Record<string, string>;
    timeout_ms?: number;
    /** The response body is handed to this channel. */
    response?: { channel: string };
    /** HTTP statuses besides 2xx that mean the receiver has the message (409: it already had it). */
    delivered_status?: number[];
  };
  mllp?: { host: string; port: number; on_ae?: 'retry' | 'fail'; on_ar?: 'retry' | 'fail'; tls?: TlsSpec };
  file?: { dir: string; file_name?: string; on_exists?: 'suffix' | 'fail'; content?: 'output' | 'raw'; append?: boolean };
  channel?: string;
  database?: DatabaseDestinationSpec;
  smtp?: SmtpDestinationSpec;
  /** attempts: a number, or 'unlimited' (the entry waits for the receiver however long it takes). */
  retry?: { attempts?: number | 'unlimited'; backoff_ms?: number; max_backoff_ms?: number };
  on_failure?: 'dead_letter' | 'stop_queue';
  max_in_flight?: number;
  when?: Condition;
  /** HL7 -> HL7 edits to this destination's own copy, after the channel's transform. */
  transform?: TransformStep[];
  /** This destination's own JSON (HL7 -> JSON), instead of the channel's output. */
  map?: Record<string, Mapping>;
  /** This destination's own HL7 message built from the JSON received (JSON channels). */
  build?: BuildSpec;
  /** This destination's own text: `{{PID-5.1}}`, `{{$.a.b}}`, `{{channel}}`, `{{control_id}}` placeholders. */
  body?: string;
}

/** Rows written per message, in one transaction (PostgreSQL through pg, MySQL and MariaDB through mysql2). */
export interface DatabaseDestinationSpec {
  /** postgres://…, mysql://… or mariadb://… (use ${ENV} for credentials). */
  url: string;
  /** One statement with $1, $2 … placeholders (for every database: hl7c sends them to MySQL as ?); or `statements`. */
  statement?: string;
  params?: Mapping[];
  statements?: Array<{ statement: string; params?: Mapping[] }>;
}

/** One mail per message through nodemailer. */
export interface SmtpDestinationSpec {
  host: string;
  port?: number;
  secure?: boolean;
  user?: string;
  password?: string;
  from: string;
  to: string | string[];
  cc?: string | string[];
  reply_to?: string;
  headers?: Record<string, string>;
  /** Template: {{PID-3.1}}, {{$.a.b}}, {{channel}}, {{control_id}}. */
  subject: string;
  /** Template; absent: the destination's payload as text. */
  body?: string;
  timeout_ms?: number;
}

export interface TestCase {
  name: string;
  input: string | Record<string, unknown>;
  expect: {
    ack?: 'AA' | 'AE' | 'AR' | 'CA' | 'CE' | 'CR' | 'CA AA' | 'CA AE' | 'CA AR' | 'none';
    status?: 'accepted' | 'filtered' | 'rejected' | 'error';
    reason?: string;
    identifiers?: Record<string, string | null>;
    output?: Record<string, unknown>;
    hl7?: Record<string, string | null>;
    /** The whole output message, a segment per line, except MSH-7 and MSH-10. */
    message?: string;
    /** Per destination: a JSON subset, an HL7 message as text, or null for "not sent there". */
    destinations?: Record<string, Record<string, unknown> | string | null>;
    /** The destinations taken, in spec order. */
    route?: string[];
    response_status?: number;
  };
}
