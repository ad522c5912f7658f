import type { Message } from './message.js';
import { EVENT_STRUCTURES, STRUCTURES } from './structures/v251.js';

/** One element of a group's definition: a segment (or a choice of segments) or a nested group. */
export type StructureElement = SegmentElement | GroupDefinition;

export interface SegmentElement {
  readonly kind: 'segment';
  /** Usually one id; several for a choice such as OBR|RQD|RXO. */
  readonly names: readonly string[];
  readonly optional: boolean;
  readonly repeating: boolean;
}

export interface GroupDefinition {
  readonly kind: 'group';
  /** The group's name in the standard (the structure id for the message itself). */
  readonly name: string;
  readonly optional: boolean;
  readonly repeating: boolean;
  readonly elements: readonly StructureElement[];
  readonly parent: GroupDefinition | undefined;
  /** Segments that can open an instance: those before and including the first required element. */
  readonly opens: ReadonlySet<string>;
  /** The segment an instance always starts with, when the first element is a required one (ORC for ORDER). */
  readonly leads: ReadonlySet<string>;
  /** Segments that are direct members (not inside a nested group). */
  readonly members: ReadonlySet<string>;
  /** Segments anywhere inside, nested groups included. */
  readonly contains: ReadonlySet<string>;
}

/** One occurrence of a group in a message: its own segments and nested group instances, in message order. */
export interface GroupInstance {
  readonly definition: GroupDefinition;
  readonly parent: GroupInstance | undefined;
  /** Segment positions (indexes into message.segments) and nested instances. */
  readonly children: Array<number | GroupInstance>;
}

/** A message's segments matched to its structure. */
export interface MessageStructure {
  readonly id: string;
  readonly root: GroupInstance;
  /** For each segment position, the group instance it belongs to directly. */
  readonly owner: readonly GroupInstance[];
}

const parsed = new Map<string, GroupDefinition>();

/** The definition of a structure id such as ADT_A39, or undefined when hl7c does not know it. */
export function structureDefinition(id: string): GroupDefinition | undefined {
  const cached = parsed.get(id);
  if (cached) return cached;
  const text = STRUCTURES[id];
  if (text === undefined) return undefined;
  const definition = parseDefinition(id, text);
  parsed.set(id, definition);
  return definition;
}

/** The structure id a message uses: MSH-9.3, else the event's structure (ADT^A04 → ADT_A01). */
export function structureIdOf(message: Message): string | undefined {
  const { code, trigger, structure } = message.type;
  if (structure && STRUCTURES[structure] !== undefined) return structure;
  return EVENT_STRUCTURES[`${code}^${trigger}`];
}

/** Ids of the structures hl7c knows: of one message code (ADT → ADT_A01, ADT_A02, …), or all. */
export function structureIds(code?: string): string[] {
  return Object.keys(STRUCTURES).filter((id) => code === undefined || id.startsWith(`${code}_`) || id === code);
}

/**
 * Matches a message's segments to its structure, in one pass: each segment goes to the first
 * place at or after the current one (in the current group, else an enclosing one, where a
 * repeating group opens a new instance). A segment that fits nowhere (a Z-segment, one out of
 * order or from another version) belongs to the group it follows. Undefined for an unknown
 * structure: callers fall back to reading the segments in order.
 */
export function matchStructure(message: Message): MessageStructure | undefined {
  const id = structureIdOf(message);
  const definition = id === undefined ? undefined : structureDefinition(id);
  if (!id || !definition) return undefined;
  const root: GroupInstance = { definition, parent: undefined, children: [] };
  const owner: GroupInstance[] = new Array(message.segments.length);
  // The open groups, innermost last, with the element each last matched (-1: none yet).
  const stack: Array<{ instance: GroupInstance; at: number }> = [{ instance: root, at: -1 }];
  message.segments.forEach((segment, position) => {
    const name = segment.name;
    let level = stack.length - 1;
    let found = -1;
    for (; level >= 0; level--) {
      found = nextElement(stack[level]!, name);
      if (found !== -1) break;
    }
    // A segment that only an optional opening of a nested group takes (the ORC of OML's
    // ORDER_PRIOR) starts a new instance of an enclosing group that always begins with it
    // (the next ORDER), as senders mean it.
    const inner = found === -1 ? undefined : stack[level]!.instance.definition.elements[found]!;
    if (inner?.kind === 'group' && !inner.leads.has(name)) {
      for (let outer = level - 1; outer >= 0; outer--) {
        const candidate = nextElement(stack[outer]!, name);
        const e = candidate === -1 ? undefined : stack[outer]!.instance.definition.elements[candidate]!;
        if (e && (e.kind === 'segment' || e.leads.has(name))) {
          level = outer;
          found = candidate;
          break;
        }
      }
    }
    if (found === -1) {
      const innermost = stack[stack.length - 1]!.instance;
      innermost.children.push(position);
      owner[position] = innermost;
      return;
    }
    stack.length = level + 1;
    let frame = stack[level]!;
    let element = frame.instance.definition.elements[found]!;
    frame.at = found;
    while (element.kind === 'group') {
      const instance: GroupInstance = { definition: element, parent: frame.instance, children: [] };
      frame.instance.children.push(instance);
      frame = { instance, at: -1 };
      stack.push(frame);
      found = nextElement(frame, name);
      frame.at = found;
      element = element.elements[found]!;
    }
    frame.instance.children.push(position);
    owner[position] = frame.instance;
  });
  return { id, root, owner };
}

/** The element at or after the frame's current one that takes this segment, or -1. */
function nextElement(frame: { instance: GroupInstance; at: number }, name: string): number {
  const elements = frame.instance.definition.elements;
  const current = elements[frame.at];
  // The current element takes another one only if it repeats (for a group: a new instance).
  const from = current && current.repeating ? frame.at : frame.at + 1;
  for (let i = from; i < elements.length; i++) {
    const e = elements[i]!;
    if (e.kind === 'segment' ? e.names.includes(name) : e.opens.has(name)) return i;
  }
  return -1;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

function parseDefinition(id: string, text: string): GroupDefinition {
  const tokens = text.match(/[A-Z0-9_|]+\(|\)[?*+]?|[A-Z0-9|]+[?*+]?/g) ?? [];
  let i = 0;
  const group = (name: string, optional: boolean, repeating: boolean, parent: GroupDefinition | undefined): GroupDefinition => {
    const elements: StructureElement[] = [];
    const definition: Mutable<GroupDefinition> = { kind: 'group', name, optional, repeating, elements, parent, opens: new Set(), leads: new Set(), members: new Set(), contains: new Set() };
    while (i < tokens.length && !tokens[i]!.startsWith(')')) {
      const token = tokens[i++]!;
      if (token.endsWith('(')) {
        const start = i - 1;
        const child = group(token.slice(0, -1), false, false, definition);
        const close = tokens[i++];
        if (close === undefined) throw new Error(`structure ${id}: group at token ${start} is not closed`);
        const mutable = child as Mutable<GroupDefinition>;
        mutable.optional = close.endsWith('?') || close.endsWith('*');
        mutable.repeating = close.endsWith('+') || close.endsWith('*');
        elements.push(child);
      } else {
        const suffix = /[?*+]$/.test(token) ? token.slice(-1) : '';
        elements.push({ kind: 'segment', names: token.slice(0, token.length - suffix.length).split('|'), optional: suffix === '?' || suffix === '*', repeating: suffix === '+' || suffix === '*' });
      }
    }
    const opens = new Set<string>();
    for (const e of elements) {
      for (const n of e.kind === 'segment' ? e.names : e.opens) opens.add(n);
      if (!e.optional) break;
    }
    definition.opens = opens;
    const lead = elements[0];
    definition.leads = !lead || lead.optional ? new Set() : lead.kind === 'segment' ? new Set(lead.names) : lead.leads;
    definition.members = new Set(elements.flatMap((e) => (e.kind === 'segment' ? e.names : [])));
    definition.contains = new Set(elements.flatMap((e) => (e.kind === 'segment' ? e.names : [...e.contains])));
    return definition;
  };
  const root = group(id, false, false, undefined);
  if (i !== tokens.length) throw new Error(`structure ${id}: unexpected ")" at token ${i}`);
  return root;
}

/** Every group definition inside a definition (itself included), depth first. */
export function groupDefinitions(definition: GroupDefinition): GroupDefinition[] {
  return [definition, ...definition.elements.flatMap((e) => (e.kind === 'group' ? groupDefinitions(e) : []))];
}

/**
 * Where `each: X` finds X below a group: the group definition, nearest first (breadth first,
 * in the standard's order), that has X as its own segment.
 */
export function homeOf(definition: GroupDefinition, name: string): GroupDefinition | undefined {
  const queue: GroupDefinition[] = [definition];
  for (let i = 0; i < queue.length; i++) {
    const d = queue[i]!;
    if (d.members.has(name)) return d;
    for (const e of d.elements) if (e.kind === 'group' && e.contains.has(name)) queue.push(e);
  }
  return undefined;
}

/**
 * Whether a path read from inside a group instance and answered by the enclosing group
 * `around` finds one segment: its own, or in nested groups that do not repeat.
 */
export function reachableAround(around: GroupDefinition, name: string): boolean {
  if (around.members.has(name)) return true;
  return around.elements.some((e) => e.kind === 'group' && !e.repeating && e.contains.has(name) && reachableAround(e, name));
}
