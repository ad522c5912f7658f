import type { Document, LineCounter, Node, Pair } from 'yaml';
import { isMap, isNode, isPair, isScalar, isSeq } from 'yaml';

export type PathKey = string | number;

/** Finds where a value (or its key) is in the YAML source, by its path in the data. */
export class SourceMap {
  constructor(
    private readonly doc: Document,
    private readonly lines: LineCounter,
  ) {}

  /** Line/column of the value at path; falls back to the nearest ancestor that exists. */
  valueAt(path: readonly PathKey[]): { line: number; column: number } {
    for (let n = path.length; n >= 0; n--) {
      const node = this.node(path.slice(0, n));
      if (node?.range) return this.pos(node.range[0]);
    }
    return { line: 1, column: 1 };
  }

  /**
   * Line/column of the nth (0-based) `needle` inside the value at path, found in its source text
   * so that it is exact in block and folded scalars too; undefined if the source does not show it.
   */
  findInValue(path: readonly PathKey[], source: string, needle: string, nth: number): { line: number; column: number } | undefined {
    const range = this.node(path)?.range;
    if (!range) return undefined;
    let at = range[0] - 1;
    for (let k = 0; k <= nth; k++) {
      at = source.indexOf(needle, at + 1);
      if (at < 0 || at >= range[1]) return undefined;
    }
    return this.pos(at);
  }

  /** Line/column of the key of the property at path (for unknown or misplaced properties). */
  keyAt(path: readonly PathKey[]): { line: number; column: number } {
    const parent = this.node(path.slice(0, -1));
    const last = path[path.length - 1];
    if (isMap(parent)) {
      const pair = parent.items.find((p: Pair) => isScalar(p.key) && String(p.key.value) === String(last));
      if (pair && isNode(pair.key) && pair.key.range) return this.pos(pair.key.range[0]);
    }
    return this.valueAt(path);
  }

  private node(path: readonly PathKey[]): Node | undefined {
    let node: unknown = this.doc.contents;
    for (const key of path) {
      if (isMap(node)) {
        const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(key));
        node = pair?.value;
      } else if (isSeq(node)) {
        node = node.items[Number(key)];
      } else if (isPair(node)) {
        node = node.value;
      } else return undefined;
      if (node === undefined || node === null) return undefined;
    }
    return isNode(node) ? node : undefined;
  }

  private pos(offset: number): { line: number; column: number } {
    const { line, col } = this.lines.linePos(offset);
    return { line, column: col };
  }
}
