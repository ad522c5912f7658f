import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import type { ErrorObject, ValidateFunction } from 'ajv';
import type { Diagnostic } from '../diagnostics/diagnostic.js';
import type { LoadedSpec } from './load.js';
import type { PathKey } from './source-map.js';

/** The package root, from src/spec (tests) or dist/src/spec (built). */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    try {
      readFileSync(join(dir, 'schema/hl7c-spec.schema.json'));
      return dir;
    } catch {
      dir = dirname(dir);
    }
  }
  throw new Error('hl7c: schema/hl7c-spec.schema.json not found');
}

export const SCHEMA_PATH = join(packageRoot(), 'schema/hl7c-spec.schema.json');
const schema = JSON.parse(readFileSync(SCHEMA_PATH, 'utf8')) as object;
const ajv = new Ajv({ allErrors: true, strict: false, verbose: true });
const validate = ajv.compile(schema);

/** Another of the package's schemas (schema/<name>), for YAML files checked like specs (the serve config). */
export function packageSchema(name: string): ValidateFunction {
  return ajv.compile(JSON.parse(readFileSync(join(packageRoot(), 'schema', name), 'utf8')) as object);
}

/** Checks a spec (or another YAML file, with its schema) against the JSON Schema; each error points at the YAML node that is wrong. */
export function schemaDiagnostics(spec: LoadedSpec, check: ValidateFunction = validate): Diagnostic[] {
  coerceInterpolated(spec, check);
  if (check(spec.data)) return [];
  // An unset ${…} was reported where it was read; the empty text it left is not a second finding.
  const unset = (spec.interpolated ?? []).filter((v) => v.unset).map((v) => v.path.join('\u0000'));
  const errors = pruneErrors(check.errors ?? []).filter((e) => {
    const at = pathOf(e.instancePath).join('\u0000');
    return !unset.some((u) => at === u || at.startsWith(`${u}\u0000`));
  });
  return errors.map((e) => toDiagnostic(spec, e));
}

/**
 * Gives each value read from a `${…}` reference the type its field takes: interpolation makes
 * text, and `LAB_MRN_AUTHORITY=1` must fill a text field as "1" while `PORT=2575` fills a port
 * as 2575. Only values from references are touched; a literal of the wrong type stays wrong.
 */
function coerceInterpolated(spec: LoadedSpec, validate: ValidateFunction): void {
  const from = spec.interpolated ?? [];
  if (from.length === 0) return;
  const keys = new Set(from.map((v) => v.path.join('\u0000')));
  for (let round = 0; round < 3 && !validate(spec.data); round++) {
    let changed = false;
    for (const e of validate.errors ?? []) {
      if (e.keyword !== 'type') continue;
      const path = pathOf(e.instancePath);
      if (!keys.has(path.join('\u0000')) || path.length === 0) continue;
      const parent = path.slice(0, -1).reduce<unknown>((node, k) => (node as Record<PathKey, unknown>)?.[k], spec.data) as Record<PathKey, unknown> | undefined;
      const key = path[path.length - 1]!;
      const value = parent?.[key];
      const types = String((e.params as { type: string | string[] }).type).split(',');
      const coerced = coerce(value, types);
      if (parent && coerced !== undefined && coerced !== value) {
        parent[key] = coerced;
        changed = true;
      }
    }
    if (!changed) return;
  }
}

function coerce(value: unknown, types: string[]): unknown {
  const text = String(value);
  if (types.includes('integer') && /^-?\d+$/.test(text)) return Number(text);
  if (types.includes('number') && text.trim() !== '' && Number.isFinite(Number(text))) return Number(text);
  if (types.includes('boolean') && (text === 'true' || text === 'false')) return text === 'true';
  if (types.includes('string')) return text;
  return undefined;
}

/**
 * ajv reports every branch of a oneOf/anyOf; keep the errors that say the most: drop the
 * "must match" summaries when a more specific error sits at or below the same place.
 */
function pruneErrors(errors: ErrorObject[]): ErrorObject[] {
  const specific = errors.filter((e) => !['anyOf', 'oneOf', 'if'].includes(e.keyword));
  // hl7_version: 2.8 is a number to YAML: "must be string" (with its hint to quote) says it, "must be one of" adds nothing.
  const wrongType = new Set(errors.filter((e) => e.keyword === 'type').map((e) => e.instancePath));
  const seen = new Set<string>();
  return (specific.length ? specific : errors).filter((e) => {
    if (e.keyword === 'enum' && wrongType.has(e.instancePath)) return false;
    const key = `${e.instancePath}|${e.keyword}|${JSON.stringify(e.params)}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function pathOf(pointer: string): PathKey[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((k) => k.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((k) => (/^\d+$/.test(k) ? Number(k) : k));
}

function toDiagnostic(spec: LoadedSpec, e: ErrorObject): Diagnostic {
  const path = pathOf(e.instancePath);
  const where = (pos: { line: number; column: number }) => ({ file: spec.file, line: pos.line, column: pos.column, severity: 'error' as const });
  const at = path.length ? path.join('.') : 'the spec';
  switch (e.keyword) {
    case 'additionalProperties': {
      const name = String((e.params as { additionalProperty: string }).additionalProperty);
      const allowed = allowedKeys(e);
      const close = allowed.find((k) => editDistance(k, name) <= 2);
      return {
        ...where(spec.sourceMap.keyAt([...path, name])),
        code: 'schema/unknown-property',
        message: `unknown property "${name}" in ${at}`,
        hint: close ? `did you mean "${close}"?` : allowed.length ? `allowed here: ${allowed.join(', ')}` : 'remove it',
      };
    }
    case 'required': {
      const name = (e.params as { missingProperty: string }).missingProperty;
      return {
        ...where(path.length ? spec.sourceMap.keyAt(path) : { line: 1, column: 1 }),
        code: 'schema/missing-property',
        message: `${at} needs "${name}"`,
        hint: `add ${name}: …`,
      };
    }
    case 'enum':
      return {
        ...where(spec.sourceMap.valueAt(path)),
        code: 'schema/invalid-value',
        message: `${at} must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}`,
      };
    case 'type': {
      const expected = (e.params as { type: string }).type;
      // version: 2.3, equals: 01, a header 007: YAML read a number or a boolean where text belongs.
      const given = e.data;
      const hint = expected.split(',').includes('string') && (typeof given === 'number' || typeof given === 'boolean') ? 'YAML reads this as a number or a boolean: quote it, e.g. "2.5.1"' : undefined;
      return { ...where(spec.sourceMap.valueAt(path)), code: 'schema/wrong-type', message: `${at} must be ${expected}`, ...(hint ? { hint } : {}) };
    }
    case 'pattern':
      return {
        ...where(spec.sourceMap.valueAt(path)),
        code: 'schema/invalid-format',
        message: `${at} does not have the expected form (${(e.params as { pattern: string }).pattern})`,
        hint: patternHint(path),
      };
    case 'minProperties':
    case 'maxProperties':
      return {
        ...where(spec.sourceMap.valueAt(path)),
        code: 'schema/wrong-shape',
        message: `${at} ${e.keyword === 'maxProperties' ? 'must have only one kind' : 'is empty'}`,
        hint: path[path.length - 1] === 'source' ? 'a source is exactly one of mllp, http, file, channel' : undefined,
      };
    case 'propertyNames':
      return { ...where(spec.sourceMap.valueAt(path)), code: 'schema/invalid-name', message: `a name in ${at} is not allowed: ${e.message ?? ''}`, hint: 'use lowercase letters, digits and _' };
    default: {
      const last = String(path[path.length - 1] ?? '');
      const hint =
        last === 'attempts'
          ? 'a positive whole number of tries (1, 5, 20), or unlimited'
          : e.keyword === 'minLength'
            ? `give ${last} a value: it may not be empty`
            : (e.keyword === 'minimum' || e.keyword === 'maximum') && last === 'port'
              ? "the receiver's port, 1-65535"
              : undefined;
      return { ...where(spec.sourceMap.valueAt(path)), code: `schema/${e.keyword}`, message: `${at} ${e.message ?? 'is invalid'}`, ...(hint ? { hint } : {}) };
    }
  }
}

function allowedKeys(e: ErrorObject): string[] {
  const props = (e.parentSchema as { properties?: Record<string, unknown> } | undefined)?.properties;
  return props ? Object.keys(props) : [];
}

function patternHint(path: PathKey[]): string | undefined {
  const last = String(path[path.length - 1]);
  if (last === 'channel') return 'lowercase letters, digits, - and _, starting with a letter';
  if (last === 'url') return 'an http:// or https:// URL';
  if (path.includes('message_type')) return 'CODE^TRIGGER, e.g. ADT^A01, or just the code, e.g. ADT';
  if (last === 'each') return 'a segment name, e.g. OBX';
  if (last === 'timezone') return 'an IANA time zone such as America/New_York, or a fixed offset such as -05:00';
  if (last === 'window' && path.includes('dedupe')) return 'a whole number and a unit: 30s, 15m, 24h, 7d';
  if (['window', 'for', 'older_than', 'cool_down', 'check_every'].includes(last)) return 'a number and a unit: 500ms, 30s, 15m, 2h, 1d';
  if (last === 'name') return 'lowercase letters, digits, - and _, starting with a letter';
  return undefined;
}

export function editDistance(a: string, b: string): number {
  const dp = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) dp[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      dp[i]![j] = Math.min(dp[i - 1]![j]! + 1, dp[i]![j - 1]! + 1, dp[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
  }
  return dp[a.length]![b.length]!;
}
