import { readFile } from 'node:fs/promises';
import { relative } from 'node:path';
import { isPair, isScalar, isSeq, LineCounter, parseDocument, visit } from 'yaml';
import { replaceEnvReferences } from '../../runtime/index.js';
import type { Diagnostic } from '../diagnostics/diagnostic.js';
import type { PathKey } from './source-map.js';
import { SourceMap } from './source-map.js';

/** A spec as loaded: the data after `${ENV}` interpolation, and where each value came from. */
export interface LoadedSpec {
  /** Path as given (for diagnostics and generated headers). */
  file: string;
  text: string;
  data: unknown;
  /** The data before interpolation: generated code keeps `${ENV}` references in config values. */
  raw: unknown;
  /**
   * Values that came from `${…}` references, as text: the schema check gives each the type its
   * field takes (a port from the environment is a number, an authority `1` stays text), and a
   * reference that was not set is reported once, not again as a wrong value.
   */
  interpolated?: Array<{ path: PathKey[]; unset: boolean }>;
  sourceMap: SourceMap;
}

/**
 * Reads a spec file. YAML syntax errors and unset environment variables (with no default)
 * become diagnostics; `data` is undefined when the YAML cannot be read at all.
 */
export async function loadSpec(path: string, env: NodeJS.ProcessEnv, cwd: string): Promise<{ spec?: LoadedSpec; diagnostics: Diagnostic[] }> {
  const file = relative(cwd, path) || path;
  const text = await readFile(path, 'utf8');
  return loadSpecText(file, text, env);
}

export function loadSpecText(file: string, text: string, env: NodeJS.ProcessEnv): { spec?: LoadedSpec; diagnostics: Diagnostic[] } {
  // An HL7 file passed where a spec belongs reads as one YAML string: say what it is instead.
  if (/^\uFEFF?\s*(MSH|FHS|BHS)[^A-Za-z0-9\s]/.test(text)) {
    return {
      diagnostics: [
        {
          file,
          line: 1,
          column: 1,
          severity: 'error',
          code: 'spec/hl7-message',
          message: 'this is an HL7 message, not a spec',
          hint: 'give the interface spec (.yaml) here; `hl7c parse <file>` reads a message, `hl7c send` sends it',
        },
      ],
    };
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const diagnostics: Diagnostic[] = [];
  const lines = text.split('\n');
  let syntaxReported = false;
  for (const error of doc.errors) {
    const duplicate = error.code === 'DUPLICATE_KEY';
    // After the first syntax error the parser is lost and the rest are its echoes.
    if (!duplicate && syntaxReported) continue;
    syntaxReported ||= !duplicate;
    const pos = lineCounter.linePos(error.pos[0]);
    const source = lines[pos.line - 1] ?? '';
    diagnostics.push({
      file,
      line: pos.line,
      column: pos.col,
      severity: 'error',
      code: duplicate ? 'yaml/duplicate-key' : 'yaml/syntax',
      message: error.message.split('\n')[0]!,
      hint: duplicate
        ? 'each key may appear once in a mapping; remove or rename one'
        : /\{[^}]*\$\{/.test(source)
          ? 'inside { … } a ${…} reference must be quoted: "${NAME}"'
          : /\{[^}]*[A-Z0-9]\[/.test(source)
            ? 'inside { … } a path with [ ] must be quoted: "PID-3[1]"'
            : 'check indentation and quoting around this line',
    });
  }
  if (diagnostics.length > 0) return { diagnostics };

  diagnostics.push(...keysThatAreNotNames(doc, text, file, lineCounter));
  if (diagnostics.length > 0) return { diagnostics };

  const raw: unknown = doc.toJS();
  // ${NAME} and ${NAME:-default} in any string value, so one spec serves dev, test and prod.
  const interpolated: NonNullable<LoadedSpec['interpolated']> = [];
  visit(doc, {
    Scalar(_key, node, ancestors) {
      if (typeof node.value !== 'string' || !node.value.includes('${')) return;
      const original = node.value;
      let unset = false;
      const value = replaceEnvReferences(original, env, (name) => {
        unset = true;
        const { line, col } = lineCounter.linePos(node.range?.[0] ?? 0);
        diagnostics.push({
          file,
          line,
          column: col,
          severity: 'error',
          code: 'spec/env-unset',
          message: `environment variable ${name} is not set and has no default`,
          hint: `set ${name}, or give a default: \${${name}:-value}`,
        });
        return '';
      });
      node.value = value;
      const path = dataPath(ancestors, node);
      if (path) interpolated.push({ path, unset });
    },
  });
  if (!isScalar(doc.contents) && doc.contents === null) {
    diagnostics.push({ file, line: 1, column: 1, severity: 'error', code: 'yaml/empty', message: 'the spec is empty', hint: 'start from `hl7c init`' });
    return { diagnostics };
  }
  return { spec: { file, text, data: doc.toJS(), raw, interpolated, sourceMap: new SourceMap(doc, lineCounter) }, diagnostics };
}

/**
 * Values YAML reads as a number that prints otherwise (`default: 007` became 7), and mapping
 * keys that YAML reads as something other than the text written: `null:`, `true:`,
 * `no:` would become "", "true"… and `01:` or `1.0:` (a lookup code) the number 1, so a name or
 * a code would silently change. Plain numbers written as they print (`1:`) are kept.
 */
function keysThatAreNotNames(doc: ReturnType<typeof parseDocument>, text: string, file: string, lineCounter: LineCounter): Diagnostic[] {
  const found: Diagnostic[] = [];
  visit(doc, {
    Scalar(_key, node, ancestors) {
      // A value YAML reads as a number that does not print as written: 007, 0x10, 0.10, 1e3.
      const parent = ancestors[ancestors.length - 1];
      if (isPair(parent) && parent.key === node) return;
      if (typeof node.value !== 'number' || node.type !== 'PLAIN' || !node.range) return;
      const written = text.slice(node.range[0], node.range[1]);
      if (String(node.value) === written) return;
      const { line, col } = lineCounter.linePos(node.range[0]);
      found.push({
        file,
        line,
        column: col,
        severity: 'error',
        code: 'yaml/value-not-text',
        message: `\`${written}\` is read by YAML as the number ${String(node.value)}, not as the text "${written}"`,
        hint: `quote it: "${written}" (or write ${String(node.value)} if the number is meant)`,
      });
    },
    Pair(_key, pair) {
      const key = pair.key;
      if (!isScalar(key) || typeof key.value === 'string' || !key.range) return;
      const written = text.slice(key.range[0], key.range[1]);
      if (typeof key.value === 'number' && String(key.value) === written) return;
      const { line, col } = lineCounter.linePos(key.range[0]);
      const reads = key.value === null ? 'null (no value)' : typeof key.value === 'boolean' ? `the boolean ${String(key.value)}` : `the number ${String(key.value)}`;
      found.push({
        file,
        line,
        column: col,
        severity: 'error',
        code: 'yaml/key-not-text',
        message: `the key \`${written}\` is read by YAML as ${reads}, not as the text "${written}"`,
        hint: `quote it: "${written}":`,
      });
    },
  });
  return found;
}

/** Where a scalar sits in the data (keys and list indexes), or undefined for a mapping key. */
function dataPath(ancestors: readonly unknown[], node: unknown): PathKey[] | undefined {
  const chain = [...ancestors, node];
  const path: PathKey[] = [];
  for (let i = 0; i < chain.length; i++) {
    const a = chain[i];
    if (isPair(a)) {
      if (a.key === chain[i + 1]) return undefined;
      path.push(String(isScalar(a.key) ? a.key.value : a.key));
    } else if (isSeq(a)) path.push(a.items.indexOf(chain[i + 1] as never));
  }
  return path;
}

export type { PathKey };
