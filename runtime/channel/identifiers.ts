import type { Message } from '../hl7/message.js';
import type { Hl7Path } from '../hl7/path.js';
import { formatPath, parsePath } from '../hl7/path.js';
import { unescapeValue } from '../hl7/escape.js';
import { segmentNameCode } from '../hl7/segment.js';
import { spendBudget } from './budget.js';

/** An identifier as found: the ID and where it came from. */
export interface FoundIdentifier {
  id: string;
  /** CX.4.1 / EI.2 namespace */
  assigning_authority: string;
  /** CX.5 */
  type_code: string;
  /** The path it was read from, e.g. PID-3[2]. */
  source: string;
}

/** A required identifier that is missing or ambiguous, with where to look. */
export interface IdentifierProblem {
  identifier: string;
  reason: string;
  location: { segment: string; field: number };
}

export type IdentifierResult = { ok: true; value: FoundIdentifier | null } | { ok: false; problem: IdentifierProblem };

export interface CxSelector {
  /** The CX field, e.g. PID-3, MRG-1, PV1-19. */
  field: string;
  /** CX.4 namespace id (CX.4.1) or universal id (CX.4.2, an OID), compared exactly; several: in order of preference (the first with a match wins). */
  assigning_authority?: string | readonly string[];
  /** CX.5 identifier type code, e.g. MR. */
  type_code?: string;
}

/**
 * Picks the one repetition of a CX field whose assigning authority and type code match.
 * Never guesses: more than one match is ambiguous, none is missing.
 */
export function selectCx(message: Message, name: string, selector: CxSelector): IdentifierResult {
  const path = parsePath(selector.field);
  const location = { segment: path.segment, field: path.field ?? 0 };
  const several = severalSegments(message, name, path);
  if (several) return several;
  const d = message.delimiters;
  const reps = message.repetitions(path);
  const matches: FoundIdentifier[] = [];
  reps.forEach((rep, i) => {
    spendBudget();
    const comps = rep.split(d.component);
    const id = unescapeValue(comps[0] ?? '', d);
    const hd = (comps[3] ?? '').split(d.subcomponent ?? '&');
    // HD.1 namespace id, or HD.2 universal id (an OID): senders that name the authority by OID only leave HD.1 empty.
    const namespace = unescapeValue(hd[0] ?? '', d);
    const universal = unescapeValue(hd[1] ?? '', d);
    const type = unescapeValue(comps[4] ?? '', d);
    if (id === '' || id === '""') return;
    let authority = namespace || universal;
    if (selector.assigning_authority !== undefined) {
      const wanted = typeof selector.assigning_authority === 'string' ? [selector.assigning_authority] : selector.assigning_authority;
      const matched = wanted.find((a) => a !== '' && (a === namespace || a === universal));
      if (matched === undefined) return;
      authority = matched;
    }
    if (selector.type_code !== undefined && type !== selector.type_code) return;
    matches.push({ id, assigning_authority: authority, type_code: type, source: formatPath({ segment: path.segment, segmentRepetition: path.segmentRepetition, field: path.field, repetition: i + 1 }) });
  });
  if (Array.isArray(selector.assigning_authority) && matches.length > 1) {
    // Several authorities, in order of preference: the first one that matches decides; two matches of it are still ambiguous.
    for (const authority of selector.assigning_authority as readonly string[]) {
      const these = matches.filter((m) => m.assigning_authority === authority);
      if (these.length === 1) return { ok: true, value: these[0]! };
      if (these.length > 1) return { ok: false, problem: { identifier: name, reason: `${these.length} repetitions of ${selector.field} match assigning authority (CX.4) ${authority}: ${these.map((m) => m.source).join(', ')}`, location } };
    }
  }
  if (matches.length > 1) {
    return { ok: false, problem: { identifier: name, reason: `${matches.length} repetitions of ${selector.field} match ${describeSelector(selector)}: ${matches.map((m) => m.source).join(', ')}`, location } };
  }
  if (matches.length === 0) {
    return { ok: false, problem: { identifier: name, reason: `no repetition of ${selector.field} has ${describeSelector(selector)}`, location } };
  }
  return { ok: true, value: matches[0]! };
}

function describeSelector(s: CxSelector): string {
  const parts = [];
  if (s.assigning_authority !== undefined) parts.push(`assigning authority (CX.4) ${typeof s.assigning_authority === 'string' ? s.assigning_authority : `${s.assigning_authority.join(' or ')} (in that order)`}`);
  if (s.type_code !== undefined) parts.push(`type code (CX.5) ${s.type_code}`);
  return parts.length ? parts.join(' and ') : 'an ID';
}

/**
 * An EI identifier (order, document, appointment) from the first of the fields that is valued,
 * in the order of precedence given, e.g. ORC-3, OBR-3 (filler) before ORC-2, OBR-2 (placer).
 */
export function selectEi(message: Message, name: string, fields: readonly string[]): IdentifierResult {
  for (const field of fields) {
    const several = severalSegments(message, name, parsePath(field));
    if (several) return several;
  }
  const conflict = conflictingEi(message, name, fields);
  if (conflict) return conflict;
  for (const field of fields) {
    const id = message.getText(`${field}.1`);
    if (id !== '' && message.get(`${field}.1`) !== null) {
      return { ok: true, value: { id, assigning_authority: message.getText(`${field}.2`), type_code: '', source: field } };
    }
  }
  const first = parsePath(fields[0]!);
  return {
    ok: false,
    problem: { identifier: name, reason: `none of ${fields.join(', ')} is valued`, location: { segment: first.segment, field: first.field ?? 0 } },
  };
}

/**
 * The same number in two segments (ORC-3 and OBR-3 both carry the filler number, ORC-2 and OBR-2
 * the placer number): when both are valued and name different entities (EI.1, or EI.2 where both
 * have one), taking either would be a guess, so it is a problem naming both fields.
 */
function conflictingEi(message: Message, name: string, fields: readonly string[]): IdentifierResult | undefined {
  const paths = fields.map((f) => parsePath(f));
  for (let i = 0; i < paths.length; i++) {
    for (let j = i + 1; j < paths.length; j++) {
      const a = paths[i]!;
      const b = paths[j]!;
      if (a.field !== b.field || a.segment === b.segment) continue;
      const idA = message.getText(`${fields[i]}.1`);
      const idB = message.getText(`${fields[j]}.1`);
      if (idA === '' || idB === '' || message.get(`${fields[i]}.1`) === null || message.get(`${fields[j]}.1`) === null) continue;
      const nsA = message.getText(`${fields[i]}.2`);
      const nsB = message.getText(`${fields[j]}.2`);
      if (idA === idB && (nsA === '' || nsB === '' || nsA === nsB)) continue;
      return {
        ok: false,
        problem: { identifier: name, reason: `${fields[i]} and ${fields[j]} are both valued and name different entities; which one is meant is not known`, location: { segment: a.segment, field: a.field ?? 0 } },
      };
    }
  }
  return undefined;
}

/**
 * A field of a segment that occurs more than once names several identifiers: an A40 with
 * several PID/MRG pairs merges several patients, an ORU may carry several orders. Taking the
 * first would silently skip the others, so it is a problem unless the path names one.
 */
function severalSegments(message: Message, name: string, path: Hl7Path): IdentifierResult | undefined {
  if (path.segmentRepetition !== undefined) return undefined;
  let occurrences = 0;
  const code = segmentNameCode(path.segment);
  for (const s of message.segments) if (s.nameCode === code) occurrences++;
  if (occurrences <= 1) return undefined;
  return {
    ok: false,
    problem: {
      identifier: name,
      reason: `the message has ${occurrences} ${path.segment} segments, so ${path.text} names more than one identifier; map each with each: ${path.segment}, or name one as ${path.segment}[2]-${path.field}`,
      location: { segment: path.segment, field: path.field ?? 0 },
    },
  };
}

/** Required identifiers turn a problem into an error; optional ones into null. */
export function settle(result: IdentifierResult, required: boolean, problems: IdentifierProblem[]): FoundIdentifier | null {
  if (result.ok) return result.value;
  if (required) problems.push(result.problem);
  return null;
}
