import type { PayloadKind } from '../../runtime/index.js';
import type { Spec } from './types.js';

/** What a channel's source takes: the app's JSON (http), HL7 (mllp, file), or what a channel source declares. */
export function inputKindOf(spec: Spec): PayloadKind {
  if (spec.source.channel) return spec.source.channel.input;
  return spec.source.http ? 'json' : 'hl7';
}

/** What a channel hands its destinations: JSON when it maps, HL7 otherwise. */
export function outputKindOf(spec: Spec): PayloadKind {
  return spec.map ? 'json' : 'hl7';
}
