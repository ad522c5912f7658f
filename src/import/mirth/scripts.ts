import { balanced, codeOnly, e4xPath, operand, splitConcat, splitTopLevel, stringLiteral, walkCode } from './e4x.js';
import type { Operand } from './e4x.js';

/**
 * Reading the JavaScript Mirth users write in filters and transformer steps, for the few shapes
 * that have a declarative equivalent. Each reader returns undefined when the script is anything
 * more than that shape: the caller then keeps the script as a TODO(import).
 */

/** A condition in hl7c form, with the Mirth variables it reads still named (resolved by the caller). */
export type ScriptCondition =
  | { operand: Operand; test: 'in'; values: string[]; negate: boolean; upper?: boolean }
  | { operand: Operand; test: 'starts'; value: string; negate: boolean; upper?: boolean };

/**
 * A JavaScript filter rule that is a plain comparison:
 * `var s = msg[…].toString(); return s == 'F' || s == 'C';`,
 * `return msg[…].toString().toUpperCase().indexOf('ZZTEST') != 0;`.
 */
export function readFilterScript(script: string): ScriptCondition | undefined {
  const code = codeOnly(script);
  const lines = code.split('\n');
  const vars = new Map<string, { operand: Operand; upper: boolean }>();
  let result: ScriptCondition | undefined;
  for (const line of lines) {
    const v = /^var\s+([A-Za-z_$][\w$]*)\s*=\s*(.+?);?$/.exec(line);
    if (v) {
      const read = readStringExpression(v[2]!);
      if (!read) return undefined;
      vars.set(v[1]!, read);
      continue;
    }
    const r = /^return\s+(.+?);?$/.exec(line);
    if (r && !result) {
      result = readComparison(r[1]!, vars);
      if (!result) return undefined;
      continue;
    }
    return undefined;
  }
  return result;
}

function readStringExpression(expression: string): { operand: Operand; upper: boolean } | undefined {
  let t = expression.trim();
  let upper = false;
  const u = /^(.*)\.(toUpperCase|toLowerCase)\(\)$/.exec(t);
  if (u) {
    if (u[2] === 'toLowerCase') return undefined;
    upper = true;
    t = u[1]!;
  }
  const o = operand(t);
  return o && o.kind !== 'literal' ? { operand: o, upper } : undefined;
}

function readComparison(expression: string, vars: Map<string, { operand: Operand; upper: boolean }>): ScriptCondition | undefined {
  const subject = (name: string) => vars.get(name.trim()) ?? readStringExpression(name);
  // s == 'F' || s == 'C'
  const terms = expression.split('||').map((t) => t.trim());
  if (terms.every((t) => /^[^=!]+==\s*(['"]).*\1$/.test(t))) {
    let common: { operand: Operand; upper: boolean } | undefined;
    const values: string[] = [];
    for (const t of terms) {
      const m = /^(.+?)\s*===?\s*(.+)$/.exec(t)!;
      const s = subject(m[1]!);
      const value = stringLiteral(m[2]!);
      if (!s || value === undefined) return undefined;
      if (common && JSON.stringify(common) !== JSON.stringify(s)) return undefined;
      common = s;
      values.push(value);
    }
    return common && { operand: common.operand, test: 'in', values, negate: false, upper: common.upper };
  }
  // s != 'X'
  const ne = /^(.+?)\s*!==?\s*(['"].*['"])$/.exec(expression);
  if (ne) {
    const s = subject(ne[1]!);
    const value = stringLiteral(ne[2]!);
    return s && value !== undefined ? { operand: s.operand, test: 'in', values: [value], negate: true, upper: s.upper } : undefined;
  }
  // s.indexOf('ZZTEST') != 0 / == 0
  const idx = /^(.+?)\.indexOf\((['"][^'"]*['"])\)\s*(==|===|!=|!==)\s*0$/.exec(expression);
  if (idx) {
    const s = subject(idx[1]!);
    const value = stringLiteral(idx[2]!);
    if (!s || value === undefined) return undefined;
    return { operand: s.operand, test: 'starts', value, negate: idx[3]!.startsWith('!'), upper: s.upper };
  }
  return undefined;
}

/** `channelMap.put('name', <simple operand>)` lines of a step: variables it defines simply. */
export function simplePuts(script: string): Map<string, Operand> {
  const out = new Map<string, Operand>();
  for (const m of codeOnly(script).matchAll(/channelMap\.put\(\s*(['"])([^'"]+)\1\s*,\s*(.+?)\);/g)) {
    const o = operand(m[3]!);
    if (o) out.set(m[2]!, o);
  }
  return out;
}

/**
 * `channelMap.put('dobIso', reformat(msg['PID']['PID.7']['PID.7.1'].toString(), 'yyyy-MM-dd'))`
 * where `reformat` is a function of the same script that ends in `DateUtil.convertDate`: a
 * date read from a field and written in a Java date pattern.
 */
export function datePuts(script: string): Map<string, { path: string; pattern: string }> {
  const code = codeOnly(script);
  const out = new Map<string, { path: string; pattern: string }>();
  for (const m of code.matchAll(/channelMap\.put\(\s*'([^']+)'\s*,\s*(\w+)\((.+?),\s*'([^']+)'\)\);/g)) {
    const fn = new RegExp(String.raw`function\s+${m[2]}\s*\(`).exec(code);
    if (!fn) continue;
    const body = balanced(code, code.indexOf('{', fn.index)) ?? '';
    if (!/DateUtil\.convertDate\(/.test(body)) continue;
    const path = e4xPath(m[3]!.trim());
    if (path) out.set(m[1]!, { path: path.path, pattern: m[4]! });
  }
  return out;
}

/** The names of the script's own functions that end in `DateUtil.convertDate` (a date reformatter), with their text. */
function dateFunctions(code: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const fn of code.matchAll(/function\s+(\w+)\s*\(/g)) {
    const body = balanced(code, code.indexOf('{', fn.index)) ?? '';
    if (/DateUtil\.convertDate\(/.test(body)) out.set(fn[1]!, code.slice(fn.index, code.indexOf('{', fn.index)) + body);
  }
  return out;
}

/**
 * `msg['PV1']['PV1.44']['PV1.44.1'] = reformat(admit, 'yyyyMMddHHmm')`, where `reformat` is a
 * date reformatter of the same script and `admit` the same field (read directly or through a
 * `var` set from it): the field rewritten in place. `rest` is the code that is neither these
 * edits, their helper functions and variables, the blank-check around them, nor the date puts
 * (what would still need translating by hand).
 */
export function dateEdits(script: string): { edits: Array<{ path: string; pattern: string }>; rest: string } {
  let code = codeOnly(script);
  const functions = dateFunctions(code);
  for (const text of functions.values()) code = code.replace(text, '');
  const reads = new Map<string, string>();
  for (const m of code.matchAll(/^var\s+(\w+)\s*=\s*(msg(?:\[[^\]]+\])+)(?:\.toString\(\))?;$/gm)) {
    const path = e4xPath(m[2]!);
    if (path) reads.set(m[1]!, path.path);
  }
  const edits: Array<{ path: string; pattern: string }> = [];
  const done: string[] = [];
  for (const m of code.matchAll(/^(msg(?:\[[^\]]+\])+)\s*=\s*(\w+)\((.+?),\s*'([^']+)'\);$/gm)) {
    const target = e4xPath(m[1]!);
    const argument = m[3]!.trim();
    const source = reads.get(argument) ?? e4xPath(argument)?.path;
    if (!target || !functions.has(m[2]!) || source !== target.path) continue;
    edits.push({ path: target.path, pattern: m[4]! });
    done.push(m[0]);
  }
  const puts = [...datePuts(script).keys()];
  const rest = code
    .split('\n')
    .filter((line) => !done.includes(line))
    .filter((line) => !/^var\s+(\w+)\s*=\s*msg(\[[^\]]+\])+(\.toString\(\))?;$/.test(line) || !reads.has(/^var\s+(\w+)/.exec(line)![1]!))
    .filter((line) => !new RegExp(`^if\\s*\\(\\s*(${[...reads.keys()].join('|') || '$^'})\\s*!=\\s*''\\s*\\)\\s*\\{$`).test(line) && line !== '}')
    .filter((line) => !puts.some((name) => line.startsWith(`channelMap.put('${name}',`)))
    .join('\n');
  return { edits, rest };
}

/**
 * What a destination's response transformer does, when it is one of the two plain kinds:
 * `if ($('responseStatusCode') == 409) { responseStatus = SENT; … }` (those HTTP statuses count
 * as delivered), or a script that only reads the answer and writes to Mirth's log.
 */
export function responseScript(script: string): { delivered: number[] } | { logsOnly: true } | undefined {
  const code = codeOnly(script);
  const lines = code.split('\n');
  const status = /^if\s*\((.+)\)\s*\{$/.exec(lines[0] ?? '');
  if (status && lines[lines.length - 1] === '}') {
    const tests = status[1]!.split('||').map((t) => /^\s*\$\(\s*'responseStatusCode'\s*\)\s*==\s*(\d{3})\s*$/.exec(t));
    const body = lines.slice(1, -1);
    if (tests.every((t) => t) && body.some((l) => /^responseStatus\s*=\s*SENT;$/.test(l)) && body.every((l) => /^responseStatus(Message)?\s*=/.test(l))) {
      return { delivered: tests.map((t) => Number(t![1])) };
    }
  }
  const plain = (l: string) => /^var\s+\w+\s*=\s*msg(\[[^\]]+\])+(\.toString\(\))?;$/.test(l) || /^if\s*\(.*\)\s*\{$/.test(l) || l === '}' || l === '} else {' || /^logger\.(debug|info|warn|error)\(.*\);$/.test(l);
  if (lines.some((l) => l.startsWith('logger.')) && lines.every(plain)) return { logsOnly: true };
  return undefined;
}

/** A Java date pattern in hl7c's format tokens (YYYY MM DD HH mm ss), or undefined. */
export function javaDatePattern(pattern: string): string | undefined {
  const out = pattern.replace(/yyyy|MM|dd|HH|mm|ss/g, (t) => ({ yyyy: 'YYYY', MM: 'MM', dd: 'DD', HH: 'HH', mm: 'mm', ss: 'ss' })[t]!);
  return /[A-Za-z]/.test(out.replace(/YYYY|MM|DD|HH|mm|ss/g, '')) ? undefined : out;
}

/** `var d = $('x'); channelMap.put('y', (d == null || String(d) == '') ? null : String(d));`: y is x (empty reads as null anyway). */
export function emptyAsNullPuts(script: string): Map<string, string> {
  const code = codeOnly(script);
  const out = new Map<string, string>();
  for (const m of code.matchAll(/channelMap\.put\(\s*'([^']+)'\s*,\s*\(\s*(\w+)\s*==\s*null\s*\|\|\s*String\(\2\)\s*==\s*''\s*\)\s*\?\s*null\s*:\s*String\(\2\)\s*\);/g)) {
    const source = new RegExp(String.raw`var\s+${m[2]}\s*=\s*\$\(\s*'([^']+)'\s*\);`).exec(code);
    if (source) out.set(m[1]!, source[1]!);
  }
  return out;
}

/** Every variable a script puts in the channel map (simple or not). */
export function allPuts(script: string): string[] {
  return [...codeOnly(script).matchAll(/channelMap\.put\(\s*(['"])([^'"]+)\1/g)].map((m) => m[2]!);
}

/**
 * The idiom that removes every Z segment: a walk over `msg.children()` collecting names that
 * start with Z, then `delete msg[name]`.
 */
export function isDeleteZSegments(script: string): boolean {
  const code = codeOnly(script);
  return /delete\s+msg\[/.test(code) && /(charAt\(0\)\s*===?\s*['"]Z['"]|\/\^Z\/|startsWith\(['"]Z['"]\))/.test(code) && !/msg\[[^\]]*\]\s*=[^=]/.test(code);
}

/**
 * The idiom that picks one identifier repetition: `for each (var cx in msg['PID']['PID.3'])`
 * comparing CX.5 (and CX.4) with values, putting CX.1 in the channel map and throwing when
 * none matches.
 */
export function readIdentifierPick(script: string): { variable: string; field: string; typeCode?: string; authority?: { config?: string; literal?: string }; required: boolean } | undefined {
  const code = codeOnly(script);
  const loop = /for\s+each\s*\(\s*(?:var\s+)?(\w+)\s+in\s+(msg\[[^)]*\])\s*\)/.exec(code);
  if (!loop) return undefined;
  const field = e4xPath(loop[2]!);
  if (!field || !/^[A-Z][A-Z0-9]{2}-\d+$/.test(field.path)) return undefined;
  const f = field.path.replace('-', '.');
  const typeCode = new RegExp(String.raw`\['${escape(f)}\.5'\]\.toString\(\)\s*===?\s*'([^']+)'`).exec(code)?.[1];
  const put = /channelMap\.put\(\s*'([^']+)'\s*,\s*(\w+)\s*\)/.exec(code);
  if (!typeCode || !put) return undefined;
  if (!new RegExp(String.raw`${put[2]}\s*=\s*${loop[1]}\['${escape(f)}\.1'\]`).test(code)) return undefined;
  let authority: { config?: string; literal?: string } | undefined;
  const authVar = /authority\s*===?\s*(\w+)/.exec(code)?.[1];
  if (authVar) {
    const config = new RegExp(String.raw`${authVar}\s*=\s*configurationMap\.get\('([^']+)'\)`).exec(code)?.[1];
    const fallback = new RegExp(String.raw`${authVar}\s*=\s*'([^']*)'`).exec(code)?.[1];
    authority = { config, literal: fallback };
  }
  return { variable: put[1]!, field: field.path, typeCode, authority, required: /\bthrow\b/.test(code) };
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** A JSON object literal `{ a: expr, b: { … } }` split into its keys and value texts. */
export function objectLiteral(text: string): Array<[string, string]> | undefined {
  const t = text.trim();
  if (!t.startsWith('{') || !t.endsWith('}')) return undefined;
  const body = t.slice(1, -1);
  const parts = splitTopLevel(body, ',');
  const out: Array<[string, string]> = [];
  for (const p of parts) {
    if (p.trim() === '') continue;
    const m = /^\s*(['"]?)([A-Za-z_$][\w$]*)\1\s*:\s*([\s\S]+)$/.exec(p);
    if (!m) return undefined;
    out.push([m[2]!, m[3]!.trim()]);
  }
  return out;
}

/** `parseInt(x, 10)`, `Number(x)`, `String(x || '')`, `x.toUpperCase()`: the operand and its transforms. */
export function unwrap(expression: string): { inner: string; transform: string[] } {
  let t = expression.trim();
  const transform: string[] = [];
  for (;;) {
    const method = /^([\s\S]+)\.(toUpperCase|toLowerCase|trim)\(\)$/.exec(t);
    if (method) {
      transform.unshift(method[2] === 'toUpperCase' ? 'upper' : method[2] === 'toLowerCase' ? 'lower' : 'trim');
      t = method[1]!.trim();
      continue;
    }
    const call = /^(parseInt|parseFloat|Number|String)\(/.exec(t);
    // Only when the call's closing parenthesis ends the expression: `String(a) + b` is no call.
    if (call && closingParen(t, call[0].length - 1) === t.length - 1) {
      let inner = t.slice(call[0].length, -1).trim();
      if (call[1] === 'parseInt') inner = inner.replace(/,\s*10$/, '');
      if (call[1] === 'String') inner = inner.replace(/\s*\|\|\s*(''|"")$/, '');
      if (call[1] !== 'String') transform.unshift('number');
      t = inner;
      continue;
    }
    return { inner: t.replace(/\s*\|\|\s*(''|"")$/, ''), transform };
  }
}

function closingParen(text: string, open: number): number {
  let at = -1;
  walkCode(text, open, (c, i, depth) => {
    if (c === ')' && depth === 1) {
      at = i;
      return true;
    }
  });
  return at;
}

export { balanced, splitConcat, splitTopLevel };
