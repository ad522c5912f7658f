/**
 * The small part of Mirth's JavaScript an importer can read with confidence: E4X field access
 * (`msg['PID']['PID.5']['PID.5.1'].toString()`), string literals, `$('name')` and
 * `configurationMap.get('NAME')` look-ups, `+` concatenation, and plain comparisons. Anything
 * else is left to a TODO(import) comment quoting the original.
 */

/** A piece of a Mirth expression, as read. */
export type Operand =
  | { kind: 'path'; path: string; root: string }
  | { kind: 'literal'; value: string }
  | { kind: 'lookup'; name: string }
  | { kind: 'config'; name: string };

const ACCESSOR = String.raw`(?:\[\s*(?:'[^']*'|"[^"]*"|\d+)\s*\]|\.[A-Za-z_][A-Za-z0-9_]*)`;
const E4X = new RegExp(String.raw`^([A-Za-z_$][A-Za-z0-9_$]*)((?:${ACCESSOR})+)(?:\.toString\(\))?$`);

/**
 * `msg['PID']['PID.3'][0]['PID.3.1']` → `PID-3.1` (HL7 numbering, 1-based); `seg['OBX.5']['OBX.5.1']`
 * (inside `for each (seg in msg['OBX'])`) → `OBX-5.1`. Undefined when it is not a field access.
 */
export function e4xPath(expression: string): { path: string; root: string } | undefined {
  const m = E4X.exec(expression.trim());
  if (!m) return undefined;
  const root = m[1]!;
  const parts = [...m[2]!.matchAll(new RegExp(ACCESSOR, 'g'))].map((a) => {
    const s = a[0];
    if (s.startsWith('.')) return s.slice(1);
    const inner = s.slice(1, -1).trim();
    return /^\d+$/.test(inner) ? Number(inner) : inner.slice(1, -1);
  });
  let segment: string | undefined;
  let segmentIndex: number | undefined;
  let field: number | undefined;
  let repetition: number | undefined;
  const components: number[] = [];
  for (const p of parts) {
    if (typeof p === 'number') {
      if (field === undefined) segmentIndex = p;
      else if (components.length === 0) repetition = p;
      else return undefined;
      continue;
    }
    const named = /^([A-Z][A-Z0-9]{2})(?:\.(\d+))?(?:\.(\d+))?(?:\.(\d+))?$/.exec(p);
    if (!named) return undefined;
    if (named[2] === undefined) {
      if (segment !== undefined) return undefined;
      segment = named[1];
      continue;
    }
    if (segment !== undefined && segment !== named[1]) return undefined;
    segment = named[1];
    const numbers = [named[2], named[3], named[4]].filter((x) => x !== undefined).map(Number);
    if (field === undefined) field = numbers[0];
    else if (numbers[0] !== field) return undefined;
    const depth = numbers.length - 1;
    if (depth > 0) {
      if (depth !== components.length + 1 || (depth > 1 && components[depth - 2] !== numbers[depth - 1])) {
        if (depth !== components.length + 1) return undefined;
      }
      components[depth - 1] = numbers[depth]!;
    }
  }
  if (segment === undefined) return undefined;
  let path = segmentIndex && segmentIndex > 0 ? `${segment}[${segmentIndex + 1}]` : segment;
  if (field === undefined) return { path, root };
  path += `-${field}`;
  if (repetition && repetition > 0) path += `[${repetition + 1}]`;
  if (components.length) path += '.' + components.join('.');
  return { path, root };
}

/** A JavaScript string literal's value ('…' or "…"), or undefined. */
export function stringLiteral(expression: string): string | undefined {
  const t = expression.trim();
  const m = /^(['"])((?:\\.|(?!\1).)*)\1$/s.exec(t);
  if (!m) return undefined;
  return m[2]!.replace(/\\(u[0-9a-fA-F]{4}|x[0-9a-fA-F]{2}|.)/g, (_s, c: string) => {
    if (c.startsWith('u') || c.startsWith('x')) return String.fromCharCode(parseInt(c.slice(1), 16));
    return ({ n: '\n', r: '\r', t: '\t' } as Record<string, string>)[c] ?? c;
  });
}

/** One operand: a field access, a literal, `$('x')`, `configurationMap.get('X')`, `String(…)`. */
export function operand(expression: string): Operand | undefined {
  let t = expression.trim();
  const wrapped = /^String\((.*)\)$/s.exec(t);
  if (wrapped) t = wrapped[1]!.trim();
  const literal = stringLiteral(t);
  if (literal !== undefined) return { kind: 'literal', value: literal };
  if (/^-?\d+(\.\d+)?$/.test(t)) return { kind: 'literal', value: t };
  const lookup = /^\$\(\s*(['"])([^'"]+)\1\s*\)(?:\.toString\(\))?$/.exec(t);
  if (lookup) return { kind: 'lookup', name: lookup[2]! };
  const config = /^configurationMap\.get\(\s*(['"])([^'"]+)\1\s*\)$/.exec(t);
  if (config) return { kind: 'config', name: config[2]! };
  const path = e4xPath(t);
  if (path) return { kind: 'path', ...path };
  return undefined;
}

/** Splits `a + ', ' + b` at the top-level `+` signs (not inside quotes or brackets). */
export function splitConcat(expression: string): string[] {
  return splitTopLevel(expression, '+').map((p) => p.trim());
}

/**
 * Visits the characters of JavaScript source outside string literals, with the bracket depth
 * before each; a visitor that returns true stops the walk.
 */
export function walkCode(text: string, from: number, visit: (c: string, i: number, depth: number) => boolean | void): void {
  let depth = 0;
  let quote: string | undefined;
  for (let i = from; i < text.length; i++) {
    const c = text[i]!;
    if (quote) {
      if (c === '\\') i++;
      else if (c === quote) quote = undefined;
      continue;
    }
    if (c === "'" || c === '"') quote = c;
    else if (visit(c, i, depth)) return;
    if ('([{'.includes(c)) depth++;
    else if (')]}'.includes(c)) depth--;
  }
}

/** Splits at a separator outside quotes, brackets and parentheses. */
export function splitTopLevel(text: string, separator: string): string[] {
  const parts: string[] = [];
  let start = 0;
  walkCode(text, 0, (c, i, depth) => {
    if (c === separator && depth === 0) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  });
  parts.push(text.slice(start));
  return parts;
}

/** The text from a `{` at `open` to its matching `}`. */
export function balanced(text: string, open: number): string | undefined {
  let out: string | undefined;
  walkCode(text, open, (c, i, depth) => {
    if (c === '}' && depth === 1) {
      out = text.slice(open, i + 1);
      return true;
    }
  });
  return out;
}

/** A script without its comments and blank lines (for pattern matching, never for output). */
export function codeOnly(script: string): string {
  return script
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .split('\n')
    .map((l) => l.replace(/(^|[^:'"\\])\/\/.*$/, '$1').trim())
    .filter((l) => l !== '')
    .join('\n');
}

/** Mirth's stock scripts (a comment and `return message;` / `return;`) say nothing to import. */
export function isDefaultScript(script: string): boolean {
  const code = codeOnly(script);
  return code === '' || code === 'return message;' || code === 'return;';
}
