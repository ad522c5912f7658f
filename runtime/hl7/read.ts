import type { Delimiters } from './delimiters.js';
import { unescapeValue } from './escape.js';
import type { Hl7Path } from './path.js';

/** The HL7 null: a field sent as `""` means "delete the stored value". */
export const HL7_NULL = '""';

/** A decoded leaf value: text, or null for the HL7 null `""` ("delete the stored value"). */
export type Hl7Value = string | null;

/**
 * What Message.get reads from a field's encoded text at [from, to) (or one repetition's): the piece p names, found in
 * one pass over the characters, which also tells whether it holds a deeper separator (then it
 * is returned encoded, see get) or an escape character (then it is decoded). The only string
 * made is the piece itself: reading a value is the whole per-message cost of a mapping, and
 * a chain of indexOf, slice and includes calls cost several times this loop.
 *
 * `whole`: the piece is all of text (a field read whole, MSH-1/2, a repetition read whole);
 * otherwise it is component p.component (and subcomponent) of repetition `repetition`.
 */
export function readLeaf(text: string, from: number, to: number, p: Hl7Path, d: Delimiters, whole: boolean, repetition: number): Hl7Value {
  const REP = d.repetition.charCodeAt(0);
  const COMP = d.component.charCodeAt(0);
  const SUB = d.subcomponent === undefined ? -1 : d.subcomponent.charCodeAt(0);
  const ESC = d.escape === undefined ? -1 : d.escape.charCodeAt(0);
  // How deep the piece is: 0 all of text, 1 a repetition, 2 a component, 3 a subcomponent.
  let depth = 0;
  if (!whole) {
    if (p.component === undefined) depth = 1;
    else if (p.subcomponent === undefined) depth = 2;
    else if (d.subcomponent !== undefined) depth = 3;
    // No subcomponent separator declared: the component is its only subcomponent.
    else if (p.subcomponent === 1) depth = 2;
    else return '';
  }
  let i = from;
  // To the start of the piece: past repetition - 1 repetition separators, then component - 1
  // component separators within that repetition, then subcomponent - 1 within that component.
  if (depth >= 1) {
    for (let k = repetition - 1; k > 0; i++) {
      if (i >= to) return '';
      if (text.charCodeAt(i) === REP) k--;
    }
  }
  if (depth >= 2) {
    for (let k = p.component! - 1; k > 0; i++) {
      const c = i < to ? text.charCodeAt(i) : REP;
      if (c === REP) return '';
      if (c === COMP) k--;
    }
  }
  if (depth === 3) {
    for (let k = p.subcomponent! - 1; k > 0; i++) {
      const c = i < to ? text.charCodeAt(i) : REP;
      if (c === REP || c === COMP) return '';
      if (c === SUB) k--;
    }
  }
  const start = i;
  let below = false;
  let escaped = false;
  for (; i < to; i++) {
    const c = text.charCodeAt(i);
    if (c === ESC) escaped = true;
    else if (c === REP) {
      if (depth >= 1) break;
      below = true;
    } else if (c === COMP) {
      if (depth >= 2) break;
      below = true;
    } else if (c === SUB) {
      if (depth === 3) break;
      below = true;
    }
  }
  const raw = text.slice(start, i);
  if (raw === HL7_NULL) return null;
  if (below) return raw;
  return escaped ? unescapeValue(raw, d) : raw;
}

