import type { Delimiters } from './delimiters.js';
import { unescapeValue } from './escape.js';
import type { Hl7Value, Message } from './message.js';
import { HL7_NULL } from './message.js';

/**
 * JSON view of a message, for `hl7c parse --to json` and for tools:
 *
 *   { "delimiters": {...}, "charset": {...},
 *     "segments": [ { "name": "PID", "fields": [ <PID-1>, <PID-2>, ... ] } ] }
 *
 * `fields[i]` is field i+1 (for MSH, fields[0] is MSH-1, the field separator, and fields[1]
 * MSH-2, the encoding characters, both as written). A field is:
 *   - a value, when it has one repetition, or
 *   - { "repetitions": [value, ...] } when it has several;
 * and a value is a decoded string, null for the HL7 null `""`, or, when it has components, an
 * array of components, each a string, null, or an array of subcomponents.
 * Blank lines are left out.
 */
export interface MessageJson {
  delimiters: Delimiters;
  charset: { declared: string; encoding: string; mismatch?: string };
  segments: SegmentJson[];
}

export interface SegmentJson {
  name: string;
  fields: FieldJson[];
}

export type LeafJson = Hl7Value;
export type ComponentJson = LeafJson | LeafJson[];
export type RepetitionJson = LeafJson | ComponentJson[];
export type FieldJson = RepetitionJson | { repetitions: RepetitionJson[] };

export function messageToJson(message: Message): MessageJson {
  const d = message.delimiters;
  return {
    delimiters: { ...d },
    charset: { ...message.charset },
    segments: message.segments
      .filter((s) => !s.isBlank)
      .map((s) => {
        const fields = s.fields.slice(1);
        return {
          name: s.name,
          fields: fields.map((f, i) => (s.isHeader && i < 2 ? f : fieldToJson(f, d))),
        };
      }),
  };
}

function fieldToJson(text: string, d: Delimiters): FieldJson {
  const reps = text.split(d.repetition);
  if (reps.length === 1) return repetitionToJson(text, d);
  return { repetitions: reps.map((r) => repetitionToJson(r, d)) };
}

function repetitionToJson(text: string, d: Delimiters): RepetitionJson {
  const comps = text.split(d.component);
  if (comps.length === 1) return componentToJson(text, d);
  return comps.map((c) => componentToJson(c, d));
}

function componentToJson(text: string, d: Delimiters): ComponentJson {
  if (d.subcomponent === undefined || !text.includes(d.subcomponent)) return leaf(text, d);
  return text.split(d.subcomponent).map((s) => leaf(s, d));
}

function leaf(text: string, d: Delimiters): LeafJson {
  return text === HL7_NULL ? null : unescapeValue(text, d);
}
