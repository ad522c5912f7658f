/**
 * The JSON a `map:` builds, as generated code: one object literal in the shape of the output,
 * with the fields that have `when:` set after it. Setting every key by path in spec order (what
 * the runtime's `setJsonAt` does) is the meaning; the literal is used only where it gives
 * exactly that object, keys in the same order, and otherwise the fields are set one by one.
 */

/** One `map:` entry, its value already an expression. */
export interface JsonField {
  /** The key as written in the spec: `patient.family_name`. */
  key: string;
  /** Comment lines naming the entry and where it is in the spec. */
  comment: string;
  value: string;
  /** The `when:` condition as an expression; the field is set only when it holds. */
  when?: string;
  /** Its value can throw (a lookup with on_missing: error): which one fails first must not change. */
  throws: boolean;
}

interface ObjectNode {
  kind: 'object';
  children: Map<string, ObjectNode | LeafNode>;
  /** Spec index of the first unconditional field under it: where setting by path makes it. */
  first: number;
}

interface LeafNode {
  kind: 'leaf';
  field: JsonField;
  index: number;
}

/**
 * Statements declaring `const <name>: Record<string, unknown>` with the fields set, and, when
 * nothing follows the declaration, the object literal alone (for `(x) => ({ … })`).
 * `target(key)` is the constant holding a parsed key; `setAt()` names the runtime's setJsonAt.
 */
export function jsonObjectCode(name: string, fields: JsonField[], target: (key: string) => string, setAt: () => string): { statements: string[]; literal?: string } {
  const declare = (init: string) => `const ${name}: Record<string, unknown> = ${init};`;
  const setLine = (f: JsonField) => `${f.comment}\n${f.when ? `if (${f.when}) ` : ''}${setAt()}(${name}, ${target(f.key)}, ${f.value});`;
  const tree = literalTree(fields);
  if (!tree) return { statements: [declare('{}'), ...fields.map(setLine)] };
  const literal = objectText(tree);
  const later = fields.filter((f) => f.when).map(setLine);
  return later.length ? { statements: [declare(literal), ...later] } : { statements: [declare(literal)], literal };
}

/** The tree of the unconditional fields, or undefined when a literal would not give the same object. */
function literalTree(fields: JsonField[]): ObjectNode | undefined {
  // An index builds arrays; a key that is also another's parent is replaced at run time by
  // whichever comes later; `__proto__` is not an own key in a literal.
  const keys = fields.map((f) => f.key.split('.'));
  if (fields.some((f) => f.key.includes('[')) || keys.some((k) => k.includes('__proto__'))) return undefined;
  for (let i = 0; i < keys.length; i++) {
    for (let j = 0; j < keys.length; j++) if (i !== j && isPrefix(keys[i]!, keys[j]!)) return undefined;
  }
  const root: ObjectNode = { kind: 'object', children: new Map(), first: -1 };
  fields.forEach((f, index) => {
    if (f.when) return;
    let node = root;
    const path = keys[index]!;
    path.forEach((key, level) => {
      if (level === path.length - 1) {
        node.children.set(key, { kind: 'leaf', field: f, index });
        return;
      }
      let next = node.children.get(key) as ObjectNode | undefined;
      if (!next) node.children.set(key, (next = { kind: 'object', children: new Map(), first: index }));
      node = next;
    });
  });
  // A conditional field set after the literal must land where setting in spec order puts it:
  // every key it passes or adds beside was made before it in the spec.
  for (let index = 0; index < fields.length; index++) {
    if (!fields[index]!.when) continue;
    let node: ObjectNode | undefined = root;
    for (const key of keys[index]!) {
      const child: ObjectNode | LeafNode | undefined = node.children.get(key);
      if (!child) {
        if ([...node.children.values()].some((c) => firstOf(c) > index)) return undefined;
        break;
      }
      if (child.kind === 'leaf' || child.first > index) return undefined;
      node = child;
    }
  }
  // Values are computed in the literal's order: those that can throw keep their spec order.
  const order = [...leavesOf(root), ...fields.filter((f) => f.when)].filter((f) => f.throws);
  const specOrder = fields.filter((f) => f.throws);
  if (order.some((f, i) => f !== specOrder[i])) return undefined;
  return root;
}

function isPrefix(shorter: string[], longer: string[]): boolean {
  return shorter.length < longer.length && shorter.every((k, i) => k === longer[i]);
}

function firstOf(node: ObjectNode | LeafNode): number {
  return node.kind === 'leaf' ? node.index : node.first;
}

function leavesOf(node: ObjectNode): JsonField[] {
  return [...node.children.values()].flatMap((c) => (c.kind === 'leaf' ? [c.field] : leavesOf(c)));
}

function objectText(node: ObjectNode): string {
  if (node.children.size === 0) return '{}';
  const lines: string[] = [];
  for (const [key, child] of node.children) {
    if (child.kind === 'leaf') lines.push(child.field.comment, `${JSON.stringify(key)}: ${child.field.value},`);
    else lines.push(`${JSON.stringify(key)}: ${objectText(child)},`);
  }
  return `{\n${lines.join('\n')}\n}`;
}
