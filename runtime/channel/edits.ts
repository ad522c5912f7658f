import { DEFAULT_HL7_VERSION, segmentFields, tableVersionOf } from '../hl7/versions/tables.js';
import type { Delimiters } from '../hl7/delimiters.js';
import { Hl7EditError } from '../hl7/errors.js';
import type { Hl7Value, Message } from '../hl7/message.js';
import { hasStructureBelow } from '../hl7/message.js';
import type { Hl7Path } from '../hl7/path.js';
import { formatPath, parsePath } from '../hl7/path.js';
import type { CxSelector, IdentifierProblem } from './identifiers.js';
import { selectCx, selectEi } from './identifiers.js';
import { formatHl7DateTime, replacePatterns } from './transforms.js';

/**
 * HL7 to HL7 edits the `transform:` steps of a spec compile to. Values move as structure:
 * a copied repetition keeps its components and subcomponents, re-encoded with the target
 * message's delimiters. Only literal text (a `set: {value}`) is escaped.
 */

/** A transform step that cannot be carried out for this message; `location` names the field for ERR-2. */
export class TransformError extends Error {
  constructor(
    message: string,
    readonly location?: { segment: string; field: number },
    readonly identifier?: string,
  ) {
    super(message);
    this.name = 'TransformError';
  }
}

/** 0 for a field, 1 a repetition, 2 a component, 3 a subcomponent. */
function levelOf(p: Hl7Path): number {
  if (p.subcomponent !== undefined) return 3;
  if (p.component !== undefined) return 2;
  return p.repetition !== undefined ? 1 : 0;
}

function sameDelimiters(a: Delimiters, b: Delimiters): boolean {
  return a === b || (a.component === b.component && a.repetition === b.repetition && a.escape === b.escape && a.subcomponent === b.subcomponent && a.truncation === b.truncation && a.field === b.field);
}

const DELIMITER_ESCAPES: Record<string, keyof Delimiters> = { F: 'field', S: 'component', T: 'subcomponent', R: 'repetition', E: 'escape', P: 'truncation' };

/**
 * An element's encoded text, from one message's delimiters to another's: separators become the
 * target's, an escaped delimiter (`\S\`) becomes the character it stands for and is escaped
 * again only if the target needs it, other escape sequences (`\H\`, `\X0D\`, `\.br\`, …) keep
 * their text with the target's escape character. With the same delimiters the text is unchanged.
 */
export function reencode(encoded: string, from: Delimiters, to: Delimiters): string {
  if (sameDelimiters(from, to) || encoded === '') return encoded;
  const separators = new Map<string, string>([
    [from.repetition, to.repetition],
    [from.component, to.component],
  ]);
  if (from.subcomponent !== undefined) {
    if (to.subcomponent === undefined && encoded.includes(from.subcomponent)) {
      throw new Hl7EditError('the target message declares no subcomponent separator in MSH-2, so subcomponents cannot be copied into it');
    }
    separators.set(from.subcomponent, to.subcomponent!);
  }
  // A truncation character (v2.7+) written as is marks a truncated value: it stays one.
  if (from.truncation !== undefined) separators.set(from.truncation, to.truncation ?? literal(from.truncation, to));
  let out = '';
  for (let i = 0; i < encoded.length; i++) {
    const c = encoded[i]!;
    const separator = separators.get(c);
    if (separator !== undefined) {
      out += separator;
      continue;
    }
    if (c === from.escape) {
      const end = encoded.indexOf(c, i + 1);
      if (end !== -1) {
        const body = encoded.slice(i + 1, end);
        const stands = DELIMITER_ESCAPES[body];
        if (stands !== undefined) {
          out += literal(body === 'E' ? from.escape! : (from[stands] ?? (body === 'T' ? '&' : '#')), to);
        } else {
          if (to.escape === undefined) throw new Hl7EditError(`cannot copy the escape sequence ${c}${body}${c}: the target message declares no escape character`);
          out += to.escape + body + to.escape;
        }
        i = end;
        continue;
      }
    }
    out += literal(c, to);
  }
  return out;
}

/** One literal character written into a message with these delimiters. */
function literal(c: string, d: Delimiters): string {
  const code = c === d.field ? 'F' : c === d.component ? 'S' : c === d.repetition ? 'R' : c === d.escape ? 'E' : c === d.subcomponent ? 'T' : c === d.truncation ? 'P' : undefined;
  if (code === undefined) return c;
  if (d.escape === undefined) throw new Hl7EditError(`cannot write "${c}": the target message declares no escape character in MSH-2`);
  return d.escape + code + d.escape;
}

/**
 * Copies an element (field, repetition, component or subcomponent) from one message to a
 * position in another (or the same) message, as structure. An element that holds more levels
 * than the target position can (a field with several repetitions into one repetition, a
 * repetition with components into a component) is refused rather than flattened.
 */
export function copyElement(source: Message, from: string | Hl7Path, target: Message, to: string | Hl7Path): void {
  const f = typeof from === 'string' ? parsePath(from) : from;
  const t = typeof to === 'string' ? parsePath(to) : to;
  if (f.field === undefined || t.field === undefined) throw new Hl7EditError('copy names fields, repetitions or components, not whole segments');
  const encoded = source.getRaw(f);
  const d = source.delimiters;
  const targetLevel = levelOf(t);
  const deepest = [d.repetition, d.component, d.subcomponent].findIndex((sep, k) => sep !== undefined && k + 1 > levelOf(f) && k + 1 <= targetLevel && encoded.includes(sep));
  if (deepest !== -1) {
    const what = ['repetitions', 'components', 'subcomponents'][deepest];
    throw new TransformError(`cannot copy ${formatPath(f)} to ${formatPath(t)}: it has ${what}, which ${formatPath(t)} cannot hold`, { segment: f.segment, field: f.field });
  }
  if (t.repetition === undefined && t.component === undefined && encoded.includes(d.repetition) && !fieldRepeats(target, t)) {
    throw new TransformError(`cannot copy ${formatPath(f)} to ${formatPath(t)}: it has repetitions, and ${formatPath(t)} does not repeat in HL7 v${target.getText('MSH-12')}; copy one repetition (${f.segment}-${f.field}[1])`, { segment: f.segment, field: f.field });
  }
  target.setRaw(t, reencode(encoded, d, target.delimiters));
}

/** Whether the version tables (the message's MSH-12, else 2.5.1) let a field repeat; a field they do not know (a Z-segment's) may. */
function fieldRepeats(message: Message, t: Hl7Path): boolean {
  const version = tableVersionOf(message.getText('MSH-12')) ?? DEFAULT_HL7_VERSION;
  const def = segmentFields(version, t.segment)?.[t.field! - 1];
  return def === undefined || def.maxRepetitions > 1;
}

/**
 * Clears an element. A repetition is removed, so the ones after it move up (`a~b~c` without
 * its second is `a~c`, never `a~~c`); a field, component or subcomponent keeps its place, as
 * the ones after it are numbered by position, but empty places at the end are dropped.
 */
export function clearElement(message: Message, path: string | Hl7Path): void {
  const p = typeof path === 'string' ? parsePath(path) : path;
  const segment = message.segment(p);
  if (!segment || p.field === undefined) {
    if (p.field === undefined) throw new Hl7EditError(`${p.text} names a whole segment; use delete_segments to remove segments`);
    return;
  }
  const d = message.delimiters;
  if (p.repetition !== undefined && p.component === undefined) {
    const reps = segment.field(p.field) === '' ? [] : segment.field(p.field).split(d.repetition);
    if (p.repetition > reps.length) return;
    reps.splice(p.repetition - 1, 1);
    const field: Hl7Path = { text: `${p.segment}-${p.field}`, segment: p.segment, segmentRepetition: p.segmentRepetition, field: p.field };
    message.setRaw(field, reps.join(d.repetition));
    if (reps.length === 0) trimTrailing(message, field);
    return;
  }
  if (message.getRaw(p) === '' && !hasPlaceAfter(message, p)) return;
  message.setRaw(p, '');
  trimTrailing(message, p);
}

function hasPlaceAfter(message: Message, p: Hl7Path): boolean {
  return p.component !== undefined || p.field! < message.segment(p)!.fieldCount;
}

/** Drops empty components/subcomponents at the end of the edited repetition, and empty fields at the end of the segment. */
function trimTrailing(message: Message, p: Hl7Path): void {
  const d = message.delimiters;
  const segment = message.segment(p)!;
  if (p.component !== undefined) {
    const reps = segment.field(p.field!).split(d.repetition);
    const r = (p.repetition ?? 1) - 1;
    const comps = reps[r]!.split(d.component);
    if (p.subcomponent !== undefined && d.subcomponent !== undefined) {
      const c = p.component - 1;
      const subs = comps[c]!.split(d.subcomponent);
      while (subs.length > 1 && subs[subs.length - 1] === '') subs.pop();
      comps[c] = subs.join(d.subcomponent);
    }
    while (comps.length > 1 && comps[comps.length - 1] === '') comps.pop();
    reps[r] = comps.join(d.component);
    message.setRaw({ text: `${p.segment}-${p.field}`, segment: p.segment, segmentRepetition: p.segmentRepetition, field: p.field }, reps.join(d.repetition));
  }
  const fields = segment.fields;
  let last = fields.length - 1;
  const floor = segment.isHeader ? 2 : 0;
  while (last > floor && fields[last] === '') last--;
  if (last < fields.length - 1) segment.truncate(last);
}

/** Removes every segment whose name matches one of the patterns (`ZPI`, or `Z*` for all Z-segments); returns how many. */
export function deleteSegments(message: Message, patterns: readonly string[]): number {
  const matches = (name: string) => patterns.some((p) => (p.endsWith('*') ? name.startsWith(p.slice(0, -1)) : name === p));
  // One pass that keeps the others in place: splicing each match out would move the rest of
  // the message once per match.
  const segments = message.segments;
  let kept = 1;
  for (let i = 1; i < segments.length; i++) {
    if (!matches(segments[i]!.name)) segments[kept++] = segments[i]!;
  }
  const removed = segments.length - kept;
  segments.length = kept;
  return removed;
}

/** How an identifier rule reads its identifier, as the generated code passes it. */
export type IdentifierSelection = { name: string; required: boolean } & ({ cx: CxSelector } | { ei: readonly string[] });

function select(message: Message, rule: IdentifierSelection) {
  return 'cx' in rule ? selectCx(message, rule.name, rule.cx) : selectEi(message, rule.name, rule.ei);
}

function problemError(problem: IdentifierProblem): TransformError {
  return new TransformError(`identifier ${problem.identifier}: ${problem.reason}`, problem.location, problem.identifier);
}

/**
 * `keep_identifier`: reduces the rule's CX field (PID-3, MRG-1, PV1-19, …) to the one repetition
 * the rule selects, read again from the message as it is at this step. Missing or ambiguous: a
 * required identifier is an error naming the field; an optional one leaves the field as it is.
 * Returns whether the field was reduced.
 */
export function keepIdentifier(message: Message, rule: IdentifierSelection & { cx: CxSelector }): boolean {
  const found = select(message, rule);
  if (!found.ok) {
    if (rule.required) throw problemError(found.problem);
    return false;
  }
  if (!found.value) return false;
  const source = parsePath(found.value.source);
  copyElement(message, source, message, parsePath(rule.cx.field));
  return true;
}

/**
 * `set: {path, identifier}`: writes the whole identifier the rule selects (the CX repetition, or
 * the EI field) at a path. Missing or ambiguous: as keepIdentifier. Returns whether it wrote.
 */
export function setIdentifier(message: Message, path: string, rule: IdentifierSelection): boolean {
  const found = select(message, rule);
  if (!found.ok) {
    if (rule.required) throw problemError(found.problem);
    return false;
  }
  if (!found.value) return false;
  copyElement(message, found.value.source, message, path);
  return true;
}

/**
 * `add_segment`: a new segment after the first one `after` names (at the end when absent), its
 * fields written as values (escaped): literal text, or a value read from the message first.
 */
export function addSegmentWith(message: Message, name: string, after: string | undefined, fields: ReadonlyArray<readonly [string, Hl7Value]>): void {
  const segment = after ? message.insertSegmentAfter(after, name) : message.addSegment(name);
  for (const [path, value] of fields) message.setIn(segment, parsePath(path), value);
}

/**
 * The decoded text of the leaf a text edit works on; undefined when the element is absent, empty
 * or the HL7 null. An element with components below has no one text to edit: the step names one.
 */
function leafText(message: Message, p: Hl7Path, step: string): string | undefined {
  const raw = message.getRaw(p);
  if (raw === '' || raw === '""') return undefined;
  if (hasStructureBelow(raw, p, message.delimiters)) {
    throw new TransformError(`${step} ${formatPath(p)}: it has components or repetitions; name one (e.g. ${formatPath(p)}.1)`, p.field !== undefined ? { segment: p.segment, field: p.field } : undefined);
  }
  return message.getText(p);
}

/** `replace: {path, pattern, with}`: every match in the element's text replaced ($1 … are the groups), written back escaped. */
export function replaceInElement(message: Message, path: string, pattern: string, by: string): void {
  const p = parsePath(path);
  const text = leafText(message, p, 'replace in');
  if (text === undefined) return;
  const replaced = replacePatterns(text, [[pattern, by]]) as string;
  if (replaced !== text) message.set(p, replaced);
}

/**
 * `reformat_date: {path, format}`: an HL7 date/time rewritten in the pattern (YYYY MM DD HH mm ss).
 * A value without a part the pattern needs stays as it is (a time is never invented); a value
 * that is no real date/time fails the message (AE naming the field).
 */
export function reformatDate(message: Message, path: string, format: string): void {
  const p = parsePath(path);
  const text = leafText(message, p, 'reformat_date');
  if (text === undefined) return;
  const formatted = formatHl7DateTime(text, format, { field: path, step: 'reformat_date' });
  if (formatted !== null) message.set(p, formatted);
}
