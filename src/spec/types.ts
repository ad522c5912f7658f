import type { Condition } from '../../runtime/index.js';

/** A spec after schema validation (see schema/hl7c-spec.schema.json). */
export interface Spec {
  channel: string;
  description?: string;
  timezone?: string;
  source: {
    mllp?: { host?: string; port: number; ack_mode?: 'original' | 'enhanced' | 'as_requested'; max_message_bytes?: number; tls?: Record<string, unknown> };
    http?: { port: number; path: string; auth_token?: string };
    file?: { dir: string; done_dir?: string; error_dir?: string };
  };
  accept?: AcceptRule[];
  identifiers?: Record<string, IdentifierRule>;
  map?: Record<string, Mapping>;
  destinations?: Record<string, Destination>;
  tests?: TestCase[];
}

export interface AcceptRule {
  rule: string;
  if: Condition;
  otherwise: 'filter' | 'reject';
  reason?: string;
}

export interface IdentifierRule {
  kind: 'patient' | 'visit' | 'account' | 'order' | 'document' | 'appointment' | 'merge';
  field?: string;
  assigning_authority?: string;
  type_code?: string;
  prefer?: 'filler' | 'placer';
  required?: boolean;
}

export interface Mapping {
  path?: string;
  identifier?: string;
  value?: string | number | boolean | null;
  concat?: Array<string | { path: string }>;
  each?: string;
  fields?: Record<string, Mapping>;
  transform?: Array<'trim' | 'upper' | 'lower' | 'date' | 'datetime' | 'number'>;
  lookup?: Record<string, string>;
  default?: string | number | boolean | null;
  when?: Condition;
}

export interface Destination {
  http?: { url: string; method?: string; headers?: Record<string, string>; timeout_ms?: number };
  mllp?: { host: string; port: number };
  file?: { dir: string; file_name?: string };
  channel?: string;
  retry?: { attempts?: number; backoff_ms?: number; max_backoff_ms?: number };
  on_failure?: 'dead_letter' | 'stop_queue';
}

export interface TestCase {
  name: string;
  input: string;
  expect: {
    ack?: 'AA' | 'AE' | 'AR' | 'CA' | 'CE' | 'CR' | 'none';
    status?: 'accepted' | 'filtered' | 'rejected' | 'error';
    reason?: string;
    identifiers?: Record<string, string | null>;
    output?: Record<string, unknown>;
  };
}
