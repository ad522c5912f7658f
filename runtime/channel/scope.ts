import type { Hl7Value, Message } from '../hl7/message.js';
import { readLeaf } from '../hl7/read.js';
import type { Hl7Path } from '../hl7/path.js';
import { parsePath } from '../hl7/path.js';
import type { Segment } from '../hl7/segment.js';
import { segmentNameCode } from '../hl7/segment.js';
import type { GroupDefinition, GroupInstance, MessageStructure } from '../hl7/structure.js';
import { homeOf, matchStructure } from '../hl7/structure.js';
import { spendBudget } from './budget.js';
import { DateValueError } from './transforms.js';

/**
 * Reads paths relative to what a mapping is iterating over. When hl7c knows the message's
 * structure (see hl7/structure.ts), `each: X` walks the X segments of the current group and a
 * path reads the segment of the current group instance, else of an enclosing one: inside
 * `each: PID` of an A40 `MRG-1` is that patient's MRG; inside `each: OBR` of an ORU `each: NTE`
 * gives the order's notes, inside `each: OBX` that result's notes, and `OBR-4` is its order.
 * A path never reads another group instance's segment. Without a known structure, `each: X`
 * walks the X segments of the current range and `each: NTE` inside it the NTEs that follow.
 *
 * Every walk is linear: a scope holds the segment (and the field repetition) it is on, never
 * an index to look up again, and what a group holds is indexed once per message.
 */
export class Scope {
  private constructor(
    private readonly context: Context,
    /** The group instance this scope is inside; undefined at the top or without a structure. */
    private readonly group: GroupInstance | undefined,
    /** Segment name to the segment an enclosing `each:` is on. */
    private readonly bound: ReadonlyMap<string, Segment>,
    /** Without a structure: the segment positions this scope covers, [start, end). */
    private readonly range: readonly [number, number],
    /** Inside `each: PID-3`: the repetition being read. */
    private readonly boundField?: BoundRepetition,
  ) {}

  static of(message: Message): Scope {
    return new Scope(new Context(message), undefined, NOTHING_BOUND, [0, message.segments.length]);
  }

  get message(): Message {
    return this.context.message;
  }

  /** The value at a path; generated code passes paths parsed once, when its module loads. */
  get(path: string | Hl7Path): Hl7Value {
    const p = typeof path === 'string' ? parsePath(path) : path;
    const f = this.boundField;
    if (f && p.field === f.field && p.repetition === undefined && p.segmentRepetition === undefined && segmentNameCode(p.segment) === f.segment.nameCode) {
      return readLeaf(f.text, f.from, f.to, p, this.message.delimiters, p.component === undefined, 1);
    }
    return this.message.getIn(this.locate(p), p);
  }

  getText(path: string | Hl7Path): string {
    return this.get(path) ?? '';
  }

  /** Runs fn for each occurrence of a segment within this scope, in a scope bound to it. */
  each<T>(segment: string, fn: (scope: Scope, index: number) => T): T[] {
    const { message, structure } = this.context;
    if (!structure) return this.eachInRange(segment, fn);
    const positions = this.group ? this.context.walk(this.group, segment) : this.context.everywhere(segment);
    return positions.map((position, k) => {
      spendBudget();
      const found = message.segments[position]!;
      const bound = new Map(this.bound).set(segment, found);
      const inner = new Scope(this.context, structure.owner[position], bound, this.range);
      try {
        return fn(inner, k);
      } catch (err) {
        throw inner.located(err);
      }
    });
  }

  /** Runs fn for each repetition of a field (e.g. every PID-3 identifier), in a scope bound to it. */
  eachRepetition<T>(fieldPath: string | Hl7Path, fn: (scope: Scope, index: number) => T): T[] {
    const p = typeof fieldPath === 'string' ? parsePath(fieldPath) : fieldPath;
    const segment = this.locate(p);
    if (!segment || p.field === undefined) return [];
    const text = segment.field(p.field);
    if (text === '') return [];
    const out: T[] = [];
    const sep = this.message.delimiters.repetition;
    let from = 0;
    for (let k = 0; from <= text.length; k++) {
      spendBudget();
      let to = text.indexOf(sep, from);
      if (to === -1) to = text.length;
      const bound: BoundRepetition = { segment, field: p.field, text, from, to };
      out.push(fn(new Scope(this.context, this.group, this.bound, this.range, bound), k));
      from = to + 1;
    }
    return out;
  }

  /** The segment a path reads in this scope. */
  private locate(p: Hl7Path): Segment | undefined {
    if (p.segmentRepetition !== undefined) return this.message.segment(p);
    if (this.bound.size > 0) {
      const bound = this.bound.get(p.segment);
      if (bound) return bound;
    }
    if (this.group) return this.context.inGroup(this.group, p.segment);
    return this.context.first(p.segment);
  }

  private eachInRange<T>(segment: string, fn: (scope: Scope, index: number) => T): T[] {
    const segments = this.message.segments;
    const positions: number[] = [];
    for (let i = this.range[0]; i < this.range[1]; i++) if (segments[i]!.name === segment) positions.push(i);
    return positions.map((start, k) => {
      spendBudget();
      const end = k + 1 < positions.length ? positions[k + 1]! : this.range[1];
      const bound = new Map(this.bound).set(segment, segments[start]!);
      const inner = new Scope(this.context, undefined, bound, [start, end]);
      try {
        return fn(inner, k);
      } catch (err) {
        throw inner.located(err);
      }
    });
  }

  /**
   * A date that is no date, read inside `each: OBX`, names the OBX it was read from as the
   * sender counts (OBX[3]-14: the message's third OBX), so the AE's reason and ERR-2's segment
   * sequence point at it rather than at the first OBX. Named once, by the innermost `each:`.
   */
  private located(err: unknown): unknown {
    if (!(err instanceof DateValueError) || err.field === undefined) return err;
    let p: Hl7Path;
    try {
      p = parsePath(err.field);
    } catch {
      return err;
    }
    if (p.segmentRepetition !== undefined) return err;
    const segment = this.locate(p);
    if (!segment) return err;
    let occurrence = 0;
    for (const s of this.message.segments) {
      if (s.name === segment.name) occurrence++;
      if (s === segment) break;
    }
    const field = `${p.segment}[${occurrence}]${err.field.slice(p.segment.length)}`;
    return new DateValueError(err.problem, { field, ...(err.target !== undefined ? { target: err.target } : {}), ...(err.step !== undefined ? { step: err.step } : {}) });
  }
}

const NOTHING_BOUND: ReadonlyMap<string, Segment> = new Map();

/** The repetition an `each:` over a field is on: [from, to) of the field's encoded text. */
interface BoundRepetition {
  readonly segment: Segment;
  readonly field: number;
  readonly text: string;
  readonly from: number;
  readonly to: number;
}

/** What every scope of one message shares: the message, its structure, and indexes built once. */
class Context {
  // The first segment of each name read, as two parallel lists keyed by segmentNameCode: a spec
  // reads a handful of names, and comparing numbers beats a Map made for every message.
  private readonly firstCodes: number[] = [];
  private readonly firstSegments: Array<Segment | undefined> = [];
  // Made when first needed: most messages are mapped without an `each:` over segments.
  private found?: Map<GroupInstance, Map<string, number>>;
  private walks?: Map<GroupInstance, Map<string, number[]>>;
  private everywhereCache?: Map<string, number[]>;

  /** undefined: not matched yet (paths read outside any `each:` never need the structure); null: none known. */
  private matched: MessageStructure | null | undefined;

  constructor(readonly message: Message) {}

  get structure(): MessageStructure | undefined {
    if (this.matched === undefined) this.matched = matchStructure(this.message) ?? null;
    return this.matched ?? undefined;
  }

  /** The first segment with this name in the message. */
  first(name: string): Segment | undefined {
    const code = segmentNameCode(name);
    const codes = this.firstCodes;
    for (let i = 0; i < codes.length; i++) if (codes[i] === code) return this.firstSegments[i];
    let found: Segment | undefined;
    for (const s of this.message.segments) {
      if (code === -1 ? s.name === name : s.nameCode === code) {
        found = s;
        break;
      }
    }
    codes.push(code);
    this.firstSegments.push(found);
    return found;
  }

  /** Positions of every segment with this name in the message. */
  everywhere(name: string): number[] {
    let positions = (this.everywhereCache ??= new Map()).get(name);
    if (!positions) {
      positions = [];
      this.message.segments.forEach((s, i) => s.name === name && positions!.push(i));
      this.everywhereCache!.set(name, positions);
    }
    return positions;
  }

  /**
   * The segment a path names, read from inside a group instance. The nearest group (this one,
   * else an enclosing one) whose place in the structure holds that segment answers: this
   * instance with its own (or one below it), an enclosing instance with its own or one in a
   * group of it that does not repeat (the ORU's patient from inside an order), else nothing:
   * never another instance's segment. A segment the structure does not have (a Z-segment,
   * or v2.7's PRT in a structure of v2.5.1) belongs to the group it follows and is looked for
   * the same way: inside `each: OBX` the second result must not read the first result's ZOB.
   */
  inGroup(group: GroupInstance, name: string): Segment | undefined {
    const known = this.structure!.root.definition.contains.has(name);
    for (let g: GroupInstance | undefined = group; g; g = g.parent) {
      if (known && !g.definition.contains.has(name)) continue;
      const position = this.firstIn(g, name, g === group);
      if (position >= 0) return this.message.segments[position];
      if (known) return undefined;
    }
    return undefined;
  }

  /**
   * The X segments `each: X` walks inside a group instance: those whose place in the structure
   * is the nearest group (this one, else the first nested one in the standard's order) that has
   * X as its own segment, within this instance or, when the structure has X only around it,
   * within the nearest enclosing instance that has it. Unknown segments: all within the instance.
   */
  walk(group: GroupInstance, name: string): number[] {
    let level: GroupInstance | undefined = group;
    while (level && !level.definition.contains.has(name)) level = level.parent;
    const within = level ?? group;
    const walks = (this.walks ??= new Map());
    let perGroup = walks.get(within);
    if (!perGroup) walks.set(within, (perGroup = new Map()));
    let positions = perGroup.get(name);
    if (positions) return positions;
    positions = [];
    collect(within, name, level ? homeOf(level.definition, name) : undefined, this.message, positions);
    perGroup.set(name, positions);
    return positions;
  }

  /**
   * First position of a segment in an instance: its own; for a segment that is not the
   * group's own, the first in a nested instance (below: any; around: only groups that do not
   * repeat, so the answer is never one of several).
   */
  private firstIn(group: GroupInstance, name: string, below: boolean): number {
    const found = (this.found ??= new Map());
    let perGroup = found.get(group);
    if (!perGroup) found.set(group, (perGroup = new Map()));
    const key = below ? name : `^${name}`;
    const cached = perGroup.get(key);
    if (cached !== undefined) return cached;
    let position = -1;
    for (const child of group.children) {
      if (typeof child === 'number' && this.message.segments[child]!.name === name) {
        position = child;
        break;
      }
    }
    if (position < 0 && !group.definition.members.has(name)) {
      for (const child of group.children) {
        if (typeof child === 'number' || (!below && child.definition.repeating)) continue;
        position = this.firstIn(child, name, below);
        if (position >= 0) break;
      }
    }
    perGroup.set(key, position);
    return position;
  }
}

/** Positions of the segments named so in an instance's subtree, in message order; with a home, only those placed there. */
function collect(group: GroupInstance, name: string, home: GroupDefinition | undefined, message: Message, out: number[]): void {
  for (const child of group.children) {
    if (typeof child === 'number') {
      if ((home === undefined || group.definition === home) && message.segments[child]!.name === name) out.push(child);
    } else {
      collect(child, name, home, message, out);
    }
  }
}
