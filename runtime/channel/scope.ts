import type { Hl7Value, Message } from '../hl7/message.js';
import type { Hl7Path } from '../hl7/path.js';
import { parsePath } from '../hl7/path.js';

/**
 * Reads paths relative to the segments a mapping is iterating over: inside `each: OBX`, `OBX-5`
 * means field 5 of the current OBX, and `each: NTE` means the NTEs that follow it.
 */
export class Scope {
  private constructor(
    readonly message: Message,
    /** Segment name to the 1-based occurrence bound in this scope. */
    private readonly bound: ReadonlyMap<string, number>,
    /** Segment list positions this scope covers: [start, end). */
    private readonly range: readonly [number, number],
    /** Inside `each: PID-3`: the repetition being read. */
    private readonly boundField?: { segment: string; field: number; repetition: number },
  ) {}

  static of(message: Message): Scope {
    return new Scope(message, new Map(), [0, message.segments.length]);
  }

  get(path: string): Hl7Value {
    return this.message.get(this.resolve(path));
  }

  getText(path: string): string {
    return this.get(path) ?? '';
  }

  /** Runs fn for each occurrence of a segment within this scope, in a scope bound to it. */
  each<T>(segment: string, fn: (scope: Scope, index: number) => T): T[] {
    const segments = this.message.segments;
    const positions: number[] = [];
    for (let i = this.range[0]; i < this.range[1]; i++) if (segments[i]!.name === segment) positions.push(i);
    return positions.map((start, k) => {
      const end = k + 1 < positions.length ? positions[k + 1]! : this.range[1];
      const occurrence = occurrenceAt(this.message, start);
      const bound = new Map(this.bound);
      bound.set(segment, occurrence);
      return fn(new Scope(this.message, bound, [start, end]), k);
    });
  }

  /** Runs fn for each repetition of a field (e.g. every PID-3 identifier), in a scope bound to it. */
  eachRepetition<T>(fieldPath: string, fn: (scope: Scope, index: number) => T): T[] {
    const p = this.resolve(fieldPath);
    const count = this.message.repetitions(p).length;
    return Array.from({ length: count }, (_, k) =>
      fn(new Scope(this.message, this.bound, this.range, { segment: p.segment, field: p.field!, repetition: k + 1 }), k),
    );
  }

  private resolve(text: string): Hl7Path {
    let p = parsePath(text);
    const occurrence = this.bound.get(p.segment);
    if (occurrence !== undefined && p.segmentRepetition === undefined) p = { ...p, segmentRepetition: occurrence };
    const f = this.boundField;
    if (f && p.segment === f.segment && p.field === f.field && p.repetition === undefined) p = { ...p, repetition: f.repetition };
    return p;
  }
}

function occurrenceAt(message: Message, position: number): number {
  const name = message.segments[position]!.name;
  let n = 0;
  for (let i = 0; i <= position; i++) if (message.segments[i]!.name === name) n++;
  return n;
}
