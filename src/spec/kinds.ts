import type { PayloadKind } from '../../runtime/index.js';
import type { Destination, Spec } from './types.js';

/** What a channel's source takes: the app's JSON (http), HL7 (mllp, file), or what a channel source declares. */
export function inputKindOf(spec: Spec): PayloadKind {
  if (spec.source.channel) return spec.source.channel.input;
  return spec.source.http ? (spec.source.http.content ?? 'json') : 'hl7';
}

/** What a channel hands its destinations: JSON when it maps, HL7 otherwise. */
export function outputKindOf(spec: Spec): PayloadKind {
  return spec.map ? 'json' : 'hl7';
}

/** What one destination receives: its own map (JSON), build (HL7), body (text) or transform (HL7), else the channel's output. */
export function destinationOutputKindOf(spec: Spec, d: Destination): PayloadKind | 'text' {
  if (d.map) return 'json';
  if (d.build) return 'hl7';
  if (d.body !== undefined) return 'text';
  if (d.transform?.length) return 'hl7';
  return outputKindOf(spec);
}
