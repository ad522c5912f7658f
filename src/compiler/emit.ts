import { createHash } from 'node:crypto';
import { IndentationText, Project, QuoteKind } from 'ts-morph';
import type { Condition } from '../../runtime/index.js';
import { describeCondition } from '../../runtime/index.js';
import type { LoadedSpec } from '../spec/load.js';
import type { Destination, IdentifierRule, Mapping, Spec } from '../spec/types.js';

export const HL7C_VERSION = '0.1.0';
export const RUNTIME_IMPORT = 'hl7c/runtime';

export interface EmittedChannel {
  /** File name for the module, e.g. adt-to-webhook.ts */
  fileName: string;
  code: string;
}

const q = (v: unknown) => JSON.stringify(v);

/**
 * Generates one TypeScript module for a validated spec: one exported function per stage
 * (accept, identify, map), each line pointing back at the spec, and a default export that
 * describes the channel. Deterministic: same spec text, same bytes.
 */
export function emitChannel(loaded: LoadedSpec): EmittedChannel {
  const spec = loaded.data as Spec;
  const raw = loaded.raw as Spec;
  const line = (...path: Array<string | number>) => loaded.sourceMap.valueAt(path).line;
  const ref = (...path: Array<string | number>) => `${loaded.file}:${line(...path)}`;
  const hash = createHash('sha256').update(loaded.text).digest('hex').slice(0, 16);
  const uses = new Set<string>(['defineChannel']);
  const use = (name: string) => {
    uses.add(name);
    return name;
  };

  // ---- accept
  const acceptBody: string[] = [];
  (spec.accept ?? []).forEach((rule, i) => {
    const reason = rule.reason ?? `${rule.otherwise === 'reject' ? 'rejected' : 'filtered'}: needs ${describeCondition(rule.if)}`;
    acceptBody.push(`// ${rule.rule} (${ref('accept', i)}): ${describeCondition(rule.if)}, otherwise ${rule.otherwise}`);
    acceptBody.push(`if (!${conditionExpr(rule.if, use)}) {`, `return { outcome: ${q(rule.otherwise)}, rule: ${q(rule.rule)}, reason: ${q(reason)} };`, '}');
  });
  acceptBody.push(`return { outcome: ${q('accept')} };`);

  // ---- identify
  const identifyBody: string[] = ['const problems: IdentifierProblem[] = [];'];
  const idNames = Object.keys(spec.identifiers ?? {});
  for (const name of idNames) {
    const rule = spec.identifiers![name]!;
    identifyBody.push(`// ${name} (${ref('identifiers', name)}): ${describeIdentifier(rule)}`);
    identifyBody.push(`const ${name} = ${use('settle')}(${identifierCall(name, rule, use)}, ${!!rule.required}, problems);`);
  }
  identifyBody.push(`return { identifiers: { ${idNames.join(', ')} }, problems };`);

  // ---- map
  const timezone = spec.timezone;
  const mapBody: string[] = [`const scope = ${use('Scope')}.of(message);`, 'const out: Record<string, unknown> = {};'];
  const emitFields = (fields: Record<string, Mapping>, target: string, scopeVar: string, path: Array<string | number>, depth: number): string[] => {
    const lines: string[] = [];
    for (const [key, m] of Object.entries(fields)) {
      const here = [...path, key];
      const set = `${use('setJsonPath')}(${target}, ${q(key)}, ${mappingExpr(m, scopeVar, here, depth)});`;
      lines.push(`// ${key} (${ref(...here)})`);
      lines.push(m.when ? `if (${conditionExpr(m.when, use)}) ${set}` : set);
    }
    return lines;
  };
  const mappingExpr = (m: Mapping, scopeVar: string, path: Array<string | number>, depth: number): string => {
    let expr: string;
    if (m.path !== undefined) expr = `${scopeVar}.get(${q(m.path)})`;
    else if (m.identifier !== undefined) {
      const [name, part = 'id'] = m.identifier.split('.');
      expr = `ids.${name}?.${part} ?? null`;
    } else if (m.concat !== undefined) {
      expr = `[${m.concat.map((p) => (typeof p === 'string' ? q(p) : `${scopeVar}.get(${q(p.path)}) ?? ""`)).join(', ')}].join("")`;
    } else if (m.each !== undefined) {
      const item = `${m.each.toLowerCase()}${depth}`;
      const inner = emitFields(m.fields ?? {}, 'item', item, [...path, 'fields'], depth + 1);
      return `${scopeVar}.each(${q(m.each)}, (${item}) => {\nconst item: Record<string, unknown> = {};\n${inner.join('\n')}\nreturn item;\n})`;
    } else expr = q(m.value ?? null);
    for (const t of m.transform ?? []) {
      expr = `${use('applyTransform')}(${expr}, ${q(t)}${t === 'datetime' && timezone ? `, { defaultOffset: ${q(timezone)} }` : ''})`;
    }
    if (m.lookup) expr = `${use('lookupValue')}(${expr}, ${q(m.lookup)})`;
    if (m.default !== undefined) expr = `${use('withDefault')}(${expr}, ${q(m.default)})`;
    return expr;
  };
  mapBody.push(...emitFields(spec.map ?? {}, 'out', 'scope', ['map'], 1));
  mapBody.push('return out;');

  // ---- channel description (config values keep their ${ENV} references)
  const mllp = spec.source.mllp!;
  const rawMllp = raw.source.mllp!;
  const source = `{ kind: "mllp", host: ${configString(rawMllp.host ?? '0.0.0.0', use)}, port: ${configNumber(rawMllp.port, use)}, ack_mode: ${q(mllp.ack_mode ?? 'as_requested')}${mllp.max_message_bytes ? `, max_message_bytes: ${mllp.max_message_bytes}` : ''} }`;
  const destinations = Object.keys(spec.destinations ?? {})
    .map((name) => `${q(name)}: ${destinationExpr(raw.destinations![name]!, use)}`)
    .join(',\n');

  const project = new Project({ useInMemoryFileSystem: true, manipulationSettings: { indentationText: IndentationText.TwoSpaces, quoteKind: QuoteKind.Double } });
  const file = project.createSourceFile(`${spec.channel}.ts`, '', { overwrite: true });
  file.addImportDeclaration({ moduleSpecifier: RUNTIME_IMPORT, namedImports: [...uses].sort() });
  file.addImportDeclaration({ moduleSpecifier: RUNTIME_IMPORT, isTypeOnly: true, namedImports: ['AcceptDecision', 'Identification', 'IdentifierProblem', 'Message'] });
  file.addFunction({
    isExported: true,
    name: 'accept',
    docs: [`Which messages this channel takes (${spec.accept?.length ? ref('accept') : 'no rules: every message'}).`],
    parameters: [{ name: spec.accept?.length ? 'message' : '_message', type: 'Message' }],
    returnType: 'AcceptDecision',
    statements: acceptBody,
  });
  file.addFunction({
    isExported: true,
    name: 'identify',
    docs: ['The identifiers the message must carry; a required one that is missing or ambiguous is an error, never a guess.'],
    parameters: [{ name: idNames.length ? 'message' : '_message', type: 'Message' }],
    returnType: 'Identification',
    statements: identifyBody,
  });
  file.addFunction({
    isExported: true,
    name: 'map',
    docs: [`The JSON every destination receives (${spec.map ? ref('map') : 'no mapping'}).`],
    parameters: [
      { name: 'message', type: 'Message' },
      { name: usesIdentifiers(spec.map ?? {}) ? 'ids' : '_ids', type: 'Identification["identifiers"]' },
    ],
    returnType: 'Record<string, unknown>',
    statements: mapBody,
  });
  file.addExportAssignment({
    isExportEquals: false,
    expression: `defineChannel({\nname: ${q(spec.channel)},\nspec: ${q(loaded.file)},\nsource: ${source},\ndestinations: {\n${destinations}\n},\naccept,\nidentify,\nmap,\n})`,
  });
  file.formatText({ indentSize: 2, convertTabsToSpaces: true, ensureNewLineAtEndOfFile: true });
  const header = [
    `// Generated by hl7c ${HL7C_VERSION} from ${loaded.file} (sha256 ${hash}). Do not edit: change the spec and rebuild.`,
    `// Regenerate with: npx hl7c build ${loaded.file}`,
    '',
  ].join('\n');
  return { fileName: `${spec.channel}.ts`, code: header + file.getFullText() };
}

function conditionExpr(c: Condition, use: (name: string) => string): string {
  return `${use('evaluate')}(${JSON.stringify(c)}, message)`;
}

function describeIdentifier(rule: IdentifierRule): string {
  const req = rule.required ? '; required' : '';
  switch (rule.kind) {
    case 'order':
    case 'appointment': {
      return `${fieldsFor(rule).join(', then ')}${req}`;
    }
    case 'document':
      return `TXA-12${req}`;
    default: {
      const sel = [rule.assigning_authority && `CX.4 = ${rule.assigning_authority}`, rule.type_code && `CX.5 = ${rule.type_code}`].filter(Boolean).join(' and ');
      return `the ${rule.field ?? defaultCx(rule.kind)} repetition with ${sel || 'any ID'}${rule.kind === 'merge' ? ' (the retired identifier; PID-3 holds the surviving one)' : ''}${req}`;
    }
  }
}

function defaultCx(kind: IdentifierRule['kind']): string {
  return { patient: 'PID-3', visit: 'PV1-19', account: 'PID-18', merge: 'MRG-1' }[kind as 'patient'] ?? 'PID-3';
}

/** EI fields in order of precedence. */
function fieldsFor(rule: IdentifierRule): string[] {
  if (rule.field) return [rule.field];
  if (rule.kind === 'document') return ['TXA-12'];
  if (rule.kind === 'appointment') return rule.prefer === 'placer' ? ['SCH-1', 'SCH-2'] : ['SCH-2', 'SCH-1'];
  return rule.prefer === 'placer' ? ['ORC-2', 'OBR-2', 'ORC-3', 'OBR-3'] : ['ORC-3', 'OBR-3', 'ORC-2', 'OBR-2'];
}

function identifierCall(name: string, rule: IdentifierRule, use: (n: string) => string): string {
  if (rule.kind === 'order' || rule.kind === 'appointment' || rule.kind === 'document') {
    return `${use('selectEi')}(message, ${q(name)}, ${q(fieldsFor(rule))})`;
  }
  const selector: Record<string, string> = { field: rule.field ?? defaultCx(rule.kind) };
  if (rule.assigning_authority !== undefined) selector.assigning_authority = rule.assigning_authority;
  if (rule.type_code !== undefined) selector.type_code = rule.type_code;
  return `${use('selectCx')}(message, ${q(name)}, ${q(selector)})`;
}

function usesIdentifiers(fields: Record<string, Mapping>): boolean {
  return Object.values(fields).some((m) => m.identifier !== undefined || usesIdentifiers(m.fields ?? {}));
}

function configString(value: unknown, use: (n: string) => string): string {
  return typeof value === 'string' && value.includes('${') ? `${use('interpolate')}(${q(value)})` : q(value);
}

function configNumber(value: unknown, use: (n: string) => string): string {
  return typeof value === 'string' && value.includes('${') ? `Number(${use('interpolate')}(${q(value)}))` : q(value);
}

function destinationExpr(d: Destination, use: (n: string) => string): string {
  let target: string;
  if (d.http) {
    const headers = Object.entries(d.http.headers ?? {}).map(([k, v]) => `${q(k)}: ${configString(v, use)}`);
    target = `{ kind: "http", url: ${configString(d.http.url, use)}, method: ${q(d.http.method ?? 'POST')}, headers: { ${headers.join(', ')} }, timeout_ms: ${d.http.timeout_ms ?? 10_000} }`;
  } else if (d.mllp) target = `{ kind: "mllp", host: ${configString(d.mllp.host, use)}, port: ${configNumber(d.mllp.port, use)} }`;
  else if (d.file) target = `{ kind: "file", dir: ${configString(d.file.dir, use)}, file_name: ${q(d.file.file_name ?? '{control_id}.json')} }`;
  else target = `{ kind: "channel", channel: ${q(d.channel)} }`;
  const r = d.retry ?? {};
  return `{ target: ${target}, retry: { attempts: ${r.attempts ?? 5}, backoff_ms: ${r.backoff_ms ?? 1000}, max_backoff_ms: ${r.max_backoff_ms ?? 60_000} }, on_failure: ${q(d.on_failure ?? 'dead_letter')} }`;
}
