import { readLookupCsv } from '../spec/csv-table.js';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { IndentationText, Project, QuoteKind } from 'ts-morph';
import type { Condition } from '../../runtime/index.js';
import { describeCondition, isJsonTemplate } from '../../runtime/index.js';
import type { LoadedSpec } from '../spec/load.js';
import { channelHl7Version } from '../spec/hl7-version.js';
import { destinationOutputKindOf, inputKindOf, outputKindOf } from '../spec/kinds.js';
import type { AnswerAfterKeys, BuildSegment, BuildSpec, BuildValue, DatabaseDestinationSpec, DedupeSpec, Destination, IdentifierRule, Mapping, SourceLimitKeys, Spec, TlsSpec, TransformStep } from '../spec/types.js';

import { HL7C_VERSION } from '../version.js';
import { RUNTIME_IMPORT } from './channel-module.js';
import { ModuleConstants } from './constants.js';
import type { JsonField } from './json-object.js';
import { jsonObjectCode } from './json-object.js';

export { HL7C_VERSION, RUNTIME_IMPORT };

/** The version of a spec: a short hash of its text (in generated headers and in the store). */
export function specHash(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

export interface EmittedChannel {
  /** File name for the module, e.g. adt-to-webhook.ts */
  fileName: string;
  code: string;
}

const q = (v: unknown) => JSON.stringify(v);

/** `coded:` on a CWE/CE field: the component it reads. */
const CODED_COMPONENT = { code: 1, text: 2, system: 3 } as const;

/**
 * The local variable for an identifier: spec names are the user's (`new`, `message`,
 * `problems`…), so they are prefixed to never meet a JavaScript keyword or a name the
 * generated code uses itself; object keys are always quoted.
 */
const idVar = (name: string) => `id_${name}`;

const CONSTANTS_HEADING = '// Made once, when the module loads: the paths, tables and value lists the stages below read with.';

/** What expression builders share: runtime names the module imports, and its constants. */
interface Code {
  use: (name: string) => string;
  constants: ModuleConstants;
}

/** An HL7 path, parsed once when the module loads. */
const hl7Path = (code: Code, path: string) => code.constants.add(path, `${code.use('parsePath')}(${q(path)})`);
/** A JSON path the code reads (`patient.mrn`, `$.items[0].code`), parsed once. */
const jsonRead = (code: Code, path: string) => code.constants.add(path === '.' ? 'json item' : `json ${path}`, `${code.use('jsonPath')}(${q(path)})`);

/**
 * Generates one TypeScript module for a validated spec: one exported function per stage
 * (accept, identify, map), each line pointing back at the spec, and a default export that
 * describes the channel. Deterministic: same spec text, same bytes.
 */
export function emitChannel(loaded: LoadedSpec & { dir?: string }): EmittedChannel {
  const spec = loaded.data as Spec;
  const raw = loaded.raw as Spec;
  const line = (...path: Array<string | number>) => loaded.sourceMap.valueAt(path).line;
  const ref = (...path: Array<string | number>) => `${loaded.file}:${line(...path)}`;
  const hash = specHash(loaded.text);
  const uses = new Set<string>(['defineChannel']);
  const use = (name: string) => {
    uses.add(name);
    return name;
  };
  const code: Code = { use, constants: new ModuleConstants() };

  // ---- accept
  const acceptBody: string[] = [];
  (spec.accept ?? []).forEach((rule, i) => {
    const reason = rule.reason ?? `${rule.otherwise === 'reject' ? 'rejected' : 'filtered'}: needs ${describeCondition(rule.if)}`;
    acceptBody.push(`// ${rule.rule} (${ref('accept', i)}): ${describeCondition(rule.if)}, otherwise ${rule.otherwise}`);
    acceptBody.push(`if (${unwrap(conditionExpr(rule.if, code, rule.rule, 'message', true))}) {`, `return { outcome: ${q(rule.otherwise)}, rule: ${q(rule.rule)}, reason: ${q(reason)}${rule.ack === 'AR' ? ', ack: "AR"' : ''}${rejectsAt(rule) ? `, at: ${q(rejectsAt(rule))}` : ''} };`, '}');
  });
  acceptBody.push(`return { outcome: ${q('accept')} };`);

  // ---- identify
  const identifyBody: string[] = ['const problems: IdentifierProblem[] = [];'];
  const idNames = Object.keys(spec.identifiers ?? {});
  for (const name of idNames) {
    const rule = spec.identifiers![name]!;
    identifyBody.push(`// ${name} (${ref('identifiers', name)}): ${describeIdentifier(rule)}`);
    identifyBody.push(`const ${idVar(name)} = ${use('settle')}(${identifierCall(name, rule, code)}, ${!!rule.required}, problems);`);
  }
  identifyBody.push(`return { identifiers: { ${idNames.map((n) => `${q(n)}: ${idVar(n)}`).join(', ')} }, problems };`);

  // ---- map
  const timezone = spec.timezone;
  // A channel that takes JSON and maps it without building HL7 (JSON -> JSON) reads only JSON.
  const jsonOnly = inputKindOf(spec) === 'json' && !spec.build;
  const mapBody: string[] = jsonOnly ? ['const json = input;'] : [`const scope = ${use('Scope')}.of(message);`];
  /**
   * `const <name> = { … }`: the JSON of a `map:` (or of each item of an `each:`), shaped like
   * the output (see json-object.ts); `literal` when the object needs nothing set after it.
   */
  const emitObject = (name: string, fields: Record<string, Mapping>, scopeVar: string, path: Array<string | number>, depth: number, jsonItem = 'json'): { statements: string[]; literal?: string } => {
    const entries: JsonField[] = Object.entries(fields).map(([key, m]) => {
      const here = [...path, key];
      const when = m.when ? unwrap(conditionExpr(m.when, code, key, scopeVar)) : undefined;
      return { key, comment: `// ${key} (${ref(...here)})${m.when ? `: when ${describeCondition(m.when)}` : ''}`, value: mappingExpr(m, scopeVar, here, depth, jsonItem), when, throws: mayThrow(m) };
    });
    return jsonObjectCode(name, entries, (key) => code.constants.add(`out ${key}`, `${use('jsonTarget')}(${q(key)})`), () => use('setJsonAt'));
  };
  /** The body of an `each:` callback: the item's object. */
  const itemCallback = (param: string, fields: Record<string, Mapping>, scopeVar: string, path: Array<string | number>, depth: number, jsonItem = 'json'): string => {
    const { statements, literal } = emitObject('item', fields, scopeVar, path, depth, jsonItem);
    return literal !== undefined ? `(${param}) => (${literal})` : `(${param}) => {\n${statements.join('\n')}\nreturn item;\n}`;
  };
  const mappingExpr = (m: Mapping, scopeVar: string, path: Array<string | number>, depth: number, jsonItem = 'json'): string => {
    let expr: string;
    if (m.path !== undefined) expr = `${scopeVar}.get(${hl7Path(code, m.coded ? `${m.path}.${CODED_COMPONENT[m.coded]}` : m.path)})`;
    else if (m.json !== undefined) {
      expr = `${use('readJson')}(json, ${jsonItem}, ${jsonRead(code, m.json)})`;
      // JSON keeps its types (numbers, booleans, objects) unless a transform or lookup reads it as text.
      if (m.transform?.length || m.lookup) expr = `${use('jsonScalar')}(${expr})`;
    } else if (m.each !== undefined && typeof m.each === 'object') {
      const item = `json_item${depth}`;
      return `${use('jsonItems')}(json, ${jsonItem}, ${jsonRead(code, m.each.json)}).map(${itemCallback(item, m.fields ?? {}, scopeVar, [...path, 'fields'], depth + 1, item)})`;
    }
    else if (m.identifier !== undefined) {
      const [name, part = 'id'] = m.identifier.split('.');
      expr = `ids[${q(name)}]?.${part} ?? null`;
    } else if (m.concat !== undefined) {
      const parts = m.concat.map((p) => (typeof p === 'string' ? q(p) : `(${scopeVar}.get(${hl7Path(code, p.path)}) ?? "")`));
      expr = parts.length === 0 ? '""' : parts.length === 1 && parts[0]!.startsWith('"') ? parts[0]! : parts.join(' + ');
    } else if (typeof m.each === 'string') {
      const overField = m.each.includes('-');
      const item = `${m.each.replace('-', '_').toLowerCase()}${overField ? '_rep' : ''}${depth}`;
      const over = overField ? hl7Path(code, m.each) : q(m.each);
      return `${scopeVar}.${overField ? 'eachRepetition' : 'each'}(${over}, ${itemCallback(item, m.fields ?? {}, item, [...path, 'fields'], depth + 1)})`;
    } else expr = q(m.value ?? null);
    // A date that is no real date fails the message, naming the field and where it was going.
    const target = path.filter((k) => k !== 'map' && k !== 'fields').join('.');
    const dateSource = { ...(m.path !== undefined ? { field: m.path } : {}), target };
    if (m.replace) {
      const pairs = code.constants.add(`${target} replace`, q(m.replace.map((r) => [r.pattern, r.with])));
      // Mirth's mapper order, which hl7c import mirth translates to: the default, then the replacements.
      expr = m.default !== undefined && typeof m.default !== 'boolean' ? `${use('defaultThenReplace')}(${expr}, ${q(m.default)}, ${pairs})` : `${use('replacePatterns')}(${expr}, ${pairs})`;
    }
    // JSON dates are ISO 8601: read as HL7 DTM before a pattern or date transform that expects it.
    if (m.json !== undefined && (m.format !== undefined || m.transform?.some((t) => t === 'date' || t === 'datetime'))) expr = `${use('jsonDateTime')}(${expr}, ${code.constants.add(`${target} json date`, q({ json: m.json, target }))})`;
    if (m.format !== undefined) expr = `${use('formatHl7DateTime')}(${expr}, ${q(m.format)}, ${code.constants.add(`${target} format`, q(dateSource))})`;
    for (const t of m.transform ?? []) {
      const options = t === 'number' ? dateSource : t === 'date' || t === 'datetime' ? { ...(t === 'datetime' && timezone ? { defaultOffset: timezone } : {}), ...dateSource } : undefined;
      expr = `${use('applyTransform')}(${expr}, ${q(t)}${options ? `, ${code.constants.add(`${target} as ${t}`, q(options))}` : ''})`;
    }
    if (m.lookup) {
      const rows = 'file' in m.lookup && typeof m.lookup.file === 'string' ? readCsvTable(resolve(loaded.dir ?? '.', m.lookup.file)) : m.lookup;
      const onMissing = m.on_missing === null ? 'null' : m.on_missing;
      const options = onMissing && onMissing !== 'null' && onMissing !== 'default' ? `, ${q({ on_missing: onMissing, target })}` : '';
      expr = `${use('lookupValue')}(${expr}, ${code.constants.add(`${target} table`, `${use('lookupTable')}(${q(rows)}${options})`)})`;
    }
    if (m.default !== undefined) expr = `${use('withDefault')}(${expr}, ${q(m.default)})`;
    return expr;
  };
  mapBody.push(...emitObject('out', spec.map ?? {}, 'scope', ['map'], 1).statements);
  mapBody.push('return out;');

  // ---- build (JSON -> HL7)
  let counter = 0;
  const buildLines = (b: BuildSpec, at: Array<string | number>): string[] => {
    const body: string[] = [];
    const header: Record<string, string> = { type: b.message_type, version: b.version };
    for (const key of ['sending_application', 'sending_facility', 'receiving_application', 'receiving_facility', 'processing_id', 'accept_ack_type', 'application_ack_type'] as const) {
      if (b[key] !== undefined) header[key] = b[key]!;
    }
    body.push(`const builder = new ${use('MessageBuilder')}(${q(header)});`);
    const emitBuild = (segments: BuildSegment[], itemVar: string, indexVar: string | undefined, path: Array<string | number>): string[] => {
      const lines: string[] = [];
      segments.forEach((seg, i) => {
        const here = [...path, i];
        if (seg.segment === 'MSH') {
          // MSH fields from the JSON when given (MSH-10: the app's id); missing, null or empty keeps what build wrote.
          const v = `msh${++counter}`;
          lines.push(`// MSH fields (${ref(...here)})`, `const ${v} = builder.header;`);
          for (const [field, value] of Object.entries(seg.fields ?? {})) lines.push(`${v}.set(${hl7Path(code, field)}, ${use('whenGiven')}(${buildValueExpr(field, value, itemVar, indexVar, code)}));`);
        } else if (seg.segment) {
          const v = `${seg.segment.toLowerCase()}${++counter}`;
          lines.push(`// ${seg.segment} (${ref(...here)})`, `const ${v} = builder.addSegment(${q(seg.segment)});`);
          for (const [field, value] of Object.entries(seg.fields ?? {})) lines.push(`${v}.set(${hl7Path(code, field)}, ${buildValueExpr(field, value, itemVar, indexVar, code)});`);
        } else {
          const item = `item${++counter}`;
          const index = `i${counter}`;
          const source = seg.each ? `${use('jsonItems')}(input, ${itemVar}, ${jsonRead(code, seg.each)})` : `${use('textLines')}(input, ${itemVar}, ${jsonRead(code, seg.each_line!)})`;
          lines.push(`// each ${seg.each ? 'item of' : 'line of'} ${seg.each ?? seg.each_line} (${ref(...here)})`);
          lines.push(`${source}.forEach((${item}, ${index}) => {`, ...emitBuild(seg.segments ?? [], item, index, [...here, 'segments']), '});');
        }
      });
      return lines;
    };
    body.push(...emitBuild(b.segments, 'input', undefined, [...at, 'segments']));
    return body;
  };
  const buildBody: string[] = spec.build ? [...buildLines(spec.build, ['build']), 'return builder.message;'] : [];

  // ---- transform (HL7 -> HL7): values move as structure; only literal values are escaped
  const transformLines = (steps: TransformStep[], at: Array<string | number>): string[] => {
    const body: string[] = [];
    steps.forEach((step, i) => {
      const lines: string[] = [];
      if ('set' in step) {
        if ('identifier' in step.set) {
          const rule = spec.identifiers![step.set.identifier]!;
          if (!rule.required) lines.push(`// ${step.set.identifier} is optional: when it is missing or ambiguous, ${step.set.path} is left as it is`);
          lines.push(`${use('setIdentifier')}(message, ${q(step.set.path)}, ${selectionExpr(step.set.identifier, rule)});`);
        } else lines.push(`message.set(${q(step.set.path)}, ${q(step.set.value)});`);
      } else if ('copy' in step) lines.push(`${use('copyElement')}(message, ${q(step.copy.from)}, message, ${q(step.copy.to)});`);
      else if ('clear' in step) lines.push(`${use('clearElement')}(message, ${q(step.clear)});`);
      else if ('add_segment' in step) {
        const a = step.add_segment;
        // Values read before the segment is added, so a path never reads the new one.
        const fields = Object.entries(a.fields ?? {}).map(([field, v]) => `[${q(field)}, ${typeof v === 'string' ? q(v) : `message.get(${q(v.path)})`}]`);
        lines.push(`${use('addSegmentWith')}(message, ${q(a.segment)}, ${a.after !== undefined ? q(a.after) : 'undefined'}, [${fields.join(', ')}]);`);
      }
      else if ('replace' in step) lines.push(`${use('replaceInElement')}(message, ${q(step.replace.path)}, ${q(step.replace.pattern)}, ${q(step.replace.with)});`);
      else if ('reformat_date' in step) lines.push(`${use('reformatDate')}(message, ${q(step.reformat_date.path)}, ${q(step.reformat_date.format)});`);
      else if ('keep_identifier' in step) {
        const rule = spec.identifiers![step.keep_identifier]!;
        const field = rule.field ?? defaultCx(rule.kind);
        lines.push(
          rule.required
            ? `// ${field} keeps only the repetition ${step.keep_identifier} selects (required: checked by identify)`
            : `// ${field} keeps only the repetition ${step.keep_identifier} selects; it is optional, so when missing or ambiguous ${field} is left as it is`,
        );
        lines.push(`${use('keepIdentifier')}(message, ${selectionExpr(step.keep_identifier, rule)});`);
      } else {
        const names = typeof step.delete_segments === 'string' ? [step.delete_segments] : step.delete_segments;
        lines.push(`${use('deleteSegments')}(message, ${q(names)});`);
      }
      body.push(`// ${ref(...at, i)}${step.when ? `: when ${describeCondition(step.when)}` : ''}`);
      if (step.when) body.push(`if (${unwrap(conditionExpr(step.when, code, `step ${i + 1}`))}) {`, ...lines, '}');
      else body.push(...lines);
    });
    return body;
  };
  const transformBody = transformLines(spec.transform ?? [], ['transform']);

  // ---- per-destination payloads: a destination's own transform, map, build or body
  const payloadFunctions: Array<{ name: string; fn: string; doc: string; params: string[]; body: string[] }> = [];
  const payloadNames = new Set<string>();
  for (const [name, d] of Object.entries(spec.destinations ?? {})) {
    if (!d.transform?.length && !d.map && !d.build && d.body === undefined && !d.database && !d.smtp) continue;
    const at = ['destinations', name];
    let fn = `payload_${name.replace(/[^A-Za-z0-9_]/g, '_')}`;
    while (payloadNames.has(fn)) fn += '_';
    payloadNames.add(fn);
    const body: string[] = [];
    const used = new Set<string>();
    // Templates are read as written: a ${SECRET} in one stays a reference, resolved when the channel runs.
    const rawD = raw.destinations![name]!;
    const fromEnv = (text: string) => configString(text, use);
    if (d.transform?.length) {
      body.push(`// ${name}'s own copy: the channel's message and the other destinations' copies stay as they are`, `const message = ${use('copyMessage')}(original);`);
      body.push(...transformLines(d.transform, [...at, 'transform']));
      used.add('original');
    } else used.add('message');
    let what: string;
    if (d.smtp) {
      // Subject and text are rendered now, when the message is received, and queued as the mail.
      const subject = templateExpr(rawD.smtp!.subject, spec.channel, code, fromEnv);
      const text = rawD.smtp!.body !== undefined ? templateExpr(rawD.smtp!.body, spec.channel, code, fromEnv, undefined, 'keep') : undefined;
      if (subject.json || text?.json) {
        body.push(`const json = ${use('templateJson')}(output, input);`);
        used.add('input');
      }
      used.add('output');
      const fallback = d.transform?.length ? 'message.toString()' : `${use('templateText')}(output)`;
      body.push(`return { subject: ${subject.expr}, text: ${text ? text.expr : fallback} };`);
      what = 'a mail: its subject and text';
    } else if (d.database) {
      // The values of $1, $2 … are taken when the message is received and queued with it.
      const statements = databaseStatements(d.database);
      if (d.map) {
        body.push(`const scope = ${use('Scope')}.of(message);`, ...emitObject('out', d.map, 'scope', [...at, 'map'], 1).statements, 'const json: unknown = out;');
        if (usesIdentifiers(d.map)) used.add('ids');
      } else {
        body.push(`const scope = ${use('Scope')}.of(message);`, `const json = ${use('templateJson')}(output, input);`);
        used.add('input').add('output');
      }
      const rows = statements.map((st, i) => {
        const here = d.database!.statements ? [...at, 'database', 'statements', i, 'params'] : [...at, 'database', 'params'];
        if (st.params.some((m) => usesIdentifiers({ m }))) used.add('ids');
        return `[${st.params.map((m, j) => `${use('sqlValue')}(${mappingExpr(m, 'scope', [...here, j], 1)})`).join(', ')}]`;
      });
      body.push(`return { params: [${rows.join(', ')}] };`);
      what = 'the values of its SQL parameters';
    } else if (d.map) {
      body.push(`const scope = ${use('Scope')}.of(message);`, ...emitObject('out', d.map, 'scope', [...at, 'map'], 1).statements, 'return out;');
      if (usesIdentifiers(d.map)) used.add('ids');
      what = 'its own map (JSON)';
    } else if (d.build) {
      body.push(...buildLines(d.build, [...at, 'build']), 'return builder.message.toString();');
      used.add('input');
      what = 'its own build (HL7 from the JSON received)';
    } else if (d.body !== undefined) {
      const { expr, json } = templateExpr(rawD.body!, spec.channel, code, fromEnv);
      if (json) {
        body.push(`const json = ${use('templateJson')}(output, input);`);
        used.add('input').add('output');
      }
      body.push(`return ${expr};`);
      what = 'its own body (text)';
    } else {
      body.push('return message.toString();');
      what = 'its own transform (HL7)';
    }
    const params = [
      `${used.has('original') ? 'original' : used.has('message') ? 'message' : '_message'}: Message`,
      `${used.has('ids') ? 'ids' : '_ids'}: Identification["identifiers"]`,
      `${used.has('input') ? 'input' : '_input'}: unknown`,
      `${used.has('output') ? 'output' : '_output'}: unknown`,
    ];
    payloadFunctions.push({ name, fn, doc: `What ${name} receives (${ref(...at)}): ${what}, instead of the channel's output.`, params, body });
  }


  // ---- what senders need from the message besides the payload, rendered when it is received:
  // a file name with {{MSH-9.2}}, an HTTP query, HTTP headers with {{…}}
  const nameFunctions = new Map<string, string>();
  for (const [name, d] of Object.entries(spec.destinations ?? {})) {
    const rawD = raw.destinations![name]!;
    const parts: Array<[string, string]> = [];
    let json = false;
    const render = (template: string) => {
      const t = templateExpr(template, spec.channel, code, (text) => configString(text, use));
      json ||= t.json;
      return t.expr;
    };
    if (d.file?.file_name?.includes('{{')) parts.push(['file_name', render(rawD.file!.file_name!)]);
    // A value placed in the url path is percent-encoded: it cannot add a path segment or a query.
    if (d.http?.url.includes('{{')) {
      const t = templateExpr(rawD.http!.url, spec.channel, code, (text) => configString(text, use), (e) => `encodeURIComponent(${e})`);
      json ||= t.json;
      parts.push(['url', t.expr]);
    }
    if (d.http?.query) parts.push(['query', `{ ${Object.entries(rawD.http!.query!).map(([k, v]) => `${q(k)}: ${render(v)}`).join(', ')} }`]);
    const templated = Object.entries(rawD.http?.headers ?? {}).filter(([, v]) => v.includes('{{'));
    if (templated.length) parts.push(['headers', `{ ${templated.map(([k, v]) => `${q(k)}: ${render(v)}`).join(', ')} }`]);
    if (parts.length === 0) continue;
    let fn = `envelope_${name.replace(/[^A-Za-z0-9_]/g, '_')}`;
    while (payloadNames.has(fn)) fn += '_';
    payloadNames.add(fn);
    const returned = `return { ${parts.map(([k, e]) => `${k}: ${e}`).join(', ')} };`;
    const body = json ? [`const json = ${use('templateJson')}(output, input);`, returned] : [returned];
    const params = [`${returned.includes('message.') ? 'message' : '_message'}: Message`, '_ids: Identification["identifiers"]', `${json ? 'input' : '_input'}: unknown`, `${json ? 'output' : '_output'}: unknown`];
    payloadFunctions.push({ name: `${name}#envelope`, fn, doc: `What ${name}'s sender needs from the message (${parts.map(([k]) => k).join(', ')}; ${ref('destinations', name)}), rendered when it is received.`, params, body });
    nameFunctions.set(name, fn);
  }

  // ---- route
  const destinationNames = Object.keys(spec.destinations ?? {});
  const routeBody = [
    'const to: string[] = [];',
    ...destinationNames.map((name) => {
      const d = spec.destinations![name]!;
      return d.when ? `if (${unwrap(conditionExpr(d.when, code, name))}) to.push(${q(name)}); // ${ref('destinations', name, 'when')}: ${describeCondition(d.when)}` : `to.push(${q(name)});`;
    }),
    'return to;',
  ];

  // ---- channel description (config values keep their ${ENV} references)
  const source = sourceExpr(spec, raw, use);
  const payloadOf = new Map(payloadFunctions.map((p) => [p.name, p.fn]));
  const destinations = destinationNames.map((name) => `${q(name)}: ${destinationExpr(raw.destinations![name]!, use, payloadOf.get(name), destinationOutputKindOf(spec, spec.destinations![name]!), nameFunctions.get(name))}`).join(',\n');
  const output = outputKindOf(spec);

  const project = new Project({ useInMemoryFileSystem: true, manipulationSettings: { indentationText: IndentationText.TwoSpaces, quoteKind: QuoteKind.Double } });
  const file = project.createSourceFile(`${spec.channel}.ts`, '', { overwrite: true });
  file.addImportDeclaration({ moduleSpecifier: RUNTIME_IMPORT, namedImports: [...uses].sort() });
  file.addImportDeclaration({ moduleSpecifier: RUNTIME_IMPORT, isTypeOnly: true, namedImports: ['AcceptDecision', 'Identification', 'IdentifierProblem', 'Message'] });
  const constants = code.constants.statements;
  if (constants.length) {
    file.addStatements([CONSTANTS_HEADING, ...constants]);
  }
  const stages: string[] = [];
  if (spec.build) {
    stages.push('build');
    file.addFunction({
      isExported: true,
      name: 'build',
      docs: [`The HL7 message built from the JSON the app posts (${ref('build')}). MSH-10 and MSH-7 are new for every message.`],
      parameters: [{ name: 'input', type: 'unknown' }],
      returnType: 'Message',
      statements: buildBody,
    });
  }
  stages.push('accept');
  file.addFunction({
    isExported: true,
    name: 'accept',
    docs: [`Which messages this channel takes (${spec.accept?.length ? ref('accept') : 'no rules: every message'}).`],
    parameters: [{ name: spec.accept?.length ? 'message' : '_message', type: 'Message' }],
    returnType: 'AcceptDecision',
    statements: acceptBody,
  });
  stages.push('identify');
  file.addFunction({
    isExported: true,
    name: 'identify',
    docs: ['The identifiers the message must carry; a required one that is missing or ambiguous is an error, never a guess.'],
    parameters: [{ name: idNames.length ? 'message' : '_message', type: 'Message' }],
    returnType: 'Identification',
    statements: identifyBody,
  });
  if (spec.transform?.length) {
    stages.push('transform');
    file.addFunction({
      isExported: true,
      name: 'transform',
      docs: [`HL7 to HL7 edits (${ref('transform')}).`],
      parameters: [{ name: 'message', type: 'Message' }],
      returnType: 'void',
      statements: transformBody,
    });
  }
  if (spec.map) {
    stages.push('map');
    file.addFunction({
      isExported: true,
      name: 'map',
      docs: [`The JSON every destination receives (${ref('map')}).`],
      parameters: jsonOnly
        ? [
            { name: '_message', type: 'Message' },
            { name: '_ids', type: 'Identification["identifiers"]' },
            { name: 'input', type: 'unknown' },
          ]
        : [
            { name: 'message', type: 'Message' },
            { name: usesIdentifiers(spec.map) ? 'ids' : '_ids', type: 'Identification["identifiers"]' },
          ],
      returnType: 'Record<string, unknown>',
      statements: mapBody,
    });
  }
  stages.push('route');
  file.addFunction({
    isExported: true,
    name: 'route',
    docs: [`The destinations a message goes to (${destinationNames.length ? ref('destinations') : 'none defined'}).`],
    parameters: [{ name: destinationNames.some((n) => spec.destinations![n]!.when) ? 'message' : '_message', type: 'Message' }],
    returnType: 'string[]',
    statements: routeBody,
  });
  for (const p of payloadFunctions) {
    file.addFunction({
      isExported: true,
      name: p.fn,
      docs: [p.doc],
      parameters: p.params.map((text) => ({ name: text.slice(0, text.indexOf(':')), type: text.slice(text.indexOf(':') + 2) })),
      returnType: 'unknown',
      statements: p.body,
    });
  }
  // The version its paths were checked against, when the spec states or shows one: messages of another are counted.
  const stated = channelHl7Version(spec, loaded.dir ?? '.');
  const hl7Version = stated.from === 'default' ? undefined : stated.version;
  file.addExportAssignment({
    isExportEquals: false,
    expression: `defineChannel({\nname: ${q(spec.channel)},\nspec: ${q(loaded.file)},\n${hl7Version ? `hl7_version: ${q(hl7Version)},\n` : ''}source: ${source},\ninput: ${q(inputKindOf(spec))},\noutput: ${q(output)},\ndestinations: {\n${destinations}\n},\non_unrouted: ${q(spec.on_unrouted ?? 'error')},\n${stages.join(',\n')},\n})`,
  });
  file.formatText({ indentSize: 2, convertTabsToSpaces: true, ensureNewLineAtEndOfFile: true });
  const header = [
    `// Generated by hl7c ${HL7C_VERSION} from ${loaded.file} (sha256 ${hash}). Do not edit: change the spec and rebuild.`,
    `// Regenerate with: npx hl7c build ${loaded.file}`,
    '',
  ].join('\n');
  // A blank line between the imports and the constants (the formatter keeps none there).
  return { fileName: `${spec.channel}.ts`, code: header + file.getFullText().replace(`\n${CONSTANTS_HEADING}`, `\n\n${CONSTANTS_HEADING}`) };
}

function sourceExpr(spec: Spec, raw: Spec, use: (n: string) => string): string {
  if (spec.source.channel) return `{ kind: "channel", input: ${q(spec.source.channel.input)} }`;
  if (spec.source.http) {
    const h = raw.source.http!;
    const http = spec.source.http;
    const variant = `${http.content === 'hl7' ? ', content: "hl7"' : ''}${h.basic_auth ? `, basic_auth: { user: ${configString(h.basic_auth.user, use)}, password: ${configString(h.basic_auth.password, use)} }` : ''}`;
    return `{ kind: "http", host: ${configString(h.host ?? '0.0.0.0', use)}, port: ${configNumber(h.port, use)}, path: ${q(http.path)}, auth_token: ${configString(h.auth_token ?? '', use)}${variant}${http.max_body_bytes ? `, max_body_bytes: ${http.max_body_bytes}` : ''}${limitsExpr(http)}${answerExpr(http)} }`;
  }
  if (spec.source.file) {
    const f = raw.source.file!;
    return `{ kind: "file", dir: ${configString(f.dir, use)}${f.pattern !== undefined ? `, pattern: ${configString(f.pattern, use)}` : ''}, done_dir: ${configString(f.done_dir ?? `${f.dir}/done`, use)}, error_dir: ${configString(f.error_dir ?? `${f.dir}/error`, use)}${f.settle_ms !== undefined ? `, settle_ms: ${f.settle_ms}` : ''}${dedupeExpr(spec.source.file.dedupe)} }`;
  }
  const mllp = spec.source.mllp!;
  const m = raw.source.mllp!;
  return `{ kind: "mllp", host: ${configString(m.host ?? '0.0.0.0', use)}, port: ${configNumber(m.port, use)}, ack_mode: ${q(mllp.ack_mode ?? 'as_requested')}${mllp.max_message_bytes ? `, max_message_bytes: ${mllp.max_message_bytes}` : ''}${limitsExpr(mllp)}${tlsExpr(m.tls, use)}${dedupeExpr(mllp.dedupe)}${answerExpr(mllp)} }`;
}

/** answer_after / answer_from: the answer waits for those deliveries (answer_from is one of them). */
function answerExpr(source: AnswerAfterKeys & { answer_from?: string }): string {
  const after = [...(source.answer_after ?? []), ...(source.answer_from && !source.answer_after?.includes(source.answer_from) ? [source.answer_from] : [])];
  if (after.length === 0) return '';
  return `, answer: { after: ${JSON.stringify(after)}${source.answer_from ? `, from: ${q(source.answer_from)}` : ''}, wait_ms: ${source.answer_wait_ms ?? 30_000} }`;
}

/** Default key: the sender (MSH-3, MSH-4) and its control id (MSH-10), which a resend repeats. */
const DEFAULT_DEDUPE_KEY = ['MSH-3', 'MSH-4', 'MSH-10'];

function dedupeExpr(dedupe: DedupeSpec | undefined): string {
  if (!dedupe) return '';
  return `, dedupe: { key: ${JSON.stringify(dedupe.key ?? DEFAULT_DEDUPE_KEY)}, window_ms: ${windowMs(dedupe.window)} }`;
}

/** "24h" and the like (the schema allows only these forms) in milliseconds. */
function windowMs(text: string): number {
  const m = /^(\d+)(s|m|h|d)$/.exec(text)!;
  return Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 's' | 'm' | 'h' | 'd'];
}

/** max_connections, idle_timeout_ms and allow of a network source, when the spec sets them. */
function limitsExpr(source: SourceLimitKeys): string {
  let out = '';
  if (source.max_connections !== undefined) out += `, max_connections: ${source.max_connections}`;
  if (source.idle_timeout_ms !== undefined) out += `, idle_timeout_ms: ${source.idle_timeout_ms}`;
  if (source.allow !== undefined) out += `, allow: [${source.allow.map((a) => q(a)).join(', ')}]`;
  return out;
}

/** TLS file paths, kept as ${ENV} references like other config. */
function tlsExpr(tls: TlsSpec | undefined, use: (n: string) => string): string {
  if (!tls) return '';
  const parts = Object.entries(tls).map(([k, v]) => `${k}: ${typeof v === 'string' ? configString(v, use) : q(v)}`);
  return `, tls: { ${parts.join(', ')} }`;
}

function buildValueExpr(field: string, value: BuildValue, itemVar: string, indexVar: string | undefined, code: Code): string {
  if (typeof value !== 'object') return q(String(value));
  const use = code.use;
  let expr: string;
  if (value.json !== undefined) expr = `${use('buildJson')}(input, ${itemVar}, ${jsonRead(code, value.json)}, ${q(field)})`;
  else if (value.index) expr = indexVar ? `${indexVar} + 1` : '1';
  else if (value.now) expr = `${use('hl7Timestamp')}()`;
  else expr = q(value.value ?? null);
  for (const t of value.transform ?? []) {
    expr =
      t === 'hl7_datetime' || t === 'hl7_date'
        ? `${use('isoToHl7DateTime')}(${expr}, ${code.constants.add(`${field} date source`, q(value.json !== undefined ? { field, json: value.json } : { field }))}${t === 'hl7_date' ? ', true' : ''})`
          : `${use('applyTransform')}(${use('asHl7Value')}(${expr}), ${q(t)})`;
  }
  if (value.lookup) expr = `${use('lookupValue')}(${use('asHl7Value')}(${expr}), ${code.constants.add(`${value.json ?? 'value'} table`, `${use('lookupTable')}(${q(value.lookup)})`)})`;
  if (value.default !== undefined) expr = `${use('withDefault')}(${use('asHl7Value')}(${expr}), ${q(value.default)})`;
  if (value.on_null === 'delete' && value.json !== undefined) expr = `${use('isJsonNull')}(input, ${itemVar}, ${jsonRead(code, value.json)}) ? null : ${expr}`;
  return expr;
}

/** The one HL7 path an accept rule that answers AR reads (MSH-9 for message_type), for its ERR; none when it reads several. */
function rejectsAt(rule: { if: Condition; otherwise: string; ack?: string }): string | undefined {
  if (rule.otherwise !== 'reject' && rule.ack !== 'AR') return undefined;
  const paths = new Set<string>();
  const walk = (c: Condition): void => {
    if ('all' in c) c.all.forEach(walk);
    else if ('any' in c) c.any.forEach(walk);
    else if ('not' in c) walk(c.not);
    else if ('message_type' in c) paths.add('MSH-9');
    else paths.add(c.path);
  };
  walk(rule.if);
  return paths.size === 1 ? [...paths][0] : undefined;
}

/** A two-column CSV (header row, then code,value) as a lookup table, inlined at build time; validate reports what is wrong with it. */
function readCsvTable(path: string): Record<string, string> {
  return readLookupCsv(readFileSync(path, 'utf8')).table;
}

/**
 * A condition as a boolean expression on `source` (a message, or the scope of a map or an
 * `each:` item), with what it compares against in constants named after `hint`; it means what
 * the runtime's `evaluate` does with the condition.
 */
function conditionExpr(c: Condition, code: Code, hint: string, source = 'message', negated = false): string {
  const inner = (d: Condition, not = false) => conditionExpr(d, code, hint, source, not);
  const not = (expr: string) => (negated ? `!${expr}` : expr);
  if ('not' in c) return inner(c.not, !negated);
  if ('all' in c) return not(c.all.length === 0 ? 'true' : `(${c.all.map((d) => inner(d)).join(' && ')})`);
  if ('any' in c) return not(c.any.length === 0 ? 'false' : `(${c.any.map((d) => inner(d)).join(' || ')})`);
  if ('message_type' in c) return not(`${code.use('messageTypeMatches')}(${source === 'message' ? 'message' : `${source}.message`}, ${code.constants.add(`${hint} types`, q(c.message_type))})`);
  const value = `${source}.get(${hl7Path(code, c.path)})`;
  const is = (yes: boolean) => (yes !== negated ? '===' : '!==');
  // A missing value reads as ''; the HL7 null "" counts as valued.
  if ('equals' in c) return `((${value} ?? "") ${is(true)} ${q(c.equals)})`;
  if ('in' in c) return not(`${code.constants.add(`${hint} values`, q(c.in))}.includes(${value} ?? "")`);
  if ('matches' in c) return not(`${code.constants.add(`${hint} pattern`, `new RegExp(${q(c.matches)})`)}.test(${value} ?? "")`);
  if ('exists' in c) return `(${value} ${is(!c.exists)} "")`;
  return `((${value} ?? "") ${is(c.empty)} "")`;
}

/** An expression without the parentheses around all of it, for `if (…)`. */
function unwrap(expr: string): string {
  if (!expr.startsWith('(')) return expr;
  let depth = 0;
  for (let i = 0; i < expr.length; i++) {
    const ch = expr[i];
    // Quoted text may hold parentheses: JSON-quoted strings are skipped whole.
    if (ch === '"') {
      for (i++; i < expr.length && expr[i] !== '"'; i++) if (expr[i] === '\\') i++;
      continue;
    }
    if (ch === '(') depth++;
    else if (ch === ')' && --depth === 0) return i === expr.length - 1 ? expr.slice(1, -1) : expr;
  }
  return expr;
}

/** Whether a mapping's value can throw: a lookup with on_missing: error, here or in an each's fields. */
function mayThrow(m: Mapping): boolean {
  return (!!m.lookup && m.on_missing === 'error') || Object.values(m.fields ?? {}).some(mayThrow);
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
      const sel = [rule.assigning_authority && `CX.4 = ${typeof rule.assigning_authority === 'string' ? rule.assigning_authority : `${rule.assigning_authority.join(' or ')} (in that order)`}`, rule.type_code && `CX.5 = ${rule.type_code}`].filter(Boolean).join(' and ');
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

/** The identifier rule as transform steps read it (keep_identifier, set: {identifier}). */
function selectionExpr(name: string, rule: IdentifierRule): string {
  if (rule.kind === 'order' || rule.kind === 'appointment' || rule.kind === 'document') return `{ name: ${q(name)}, required: ${!!rule.required}, ei: ${q(fieldsFor(rule))} }`;
  return `{ name: ${q(name)}, required: ${!!rule.required}, cx: ${q(cxSelector(rule))} }`;
}

function cxSelector(rule: IdentifierRule): Record<string, string | string[]> {
  const selector: Record<string, string | string[]> = { field: rule.field ?? defaultCx(rule.kind) };
  if (rule.assigning_authority !== undefined) selector.assigning_authority = rule.assigning_authority;
  if (rule.type_code !== undefined) selector.type_code = rule.type_code;
  return selector;
}

/** The selection of one identifier; what it selects by is a module constant (`PATIENT_CX`). */
function identifierCall(name: string, rule: IdentifierRule, code: Code): string {
  if (rule.kind === 'order' || rule.kind === 'appointment' || rule.kind === 'document') {
    return `${code.use('selectEi')}(message, ${q(name)}, ${code.constants.add(`${name} fields`, q(fieldsFor(rule)))})`;
  }
  return `${code.use('selectCx')}(message, ${q(name)}, ${code.constants.add(`${name} cx`, q(cxSelector(rule)))})`;
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

/** A database destination's statements in order: `statement` with `params`, or `statements`. */
function databaseStatements(db: DatabaseDestinationSpec): Array<{ statement: string; params: Mapping[] }> {
  if (db.statements) return db.statements.map((st) => ({ statement: st.statement, params: st.params ?? [] }));
  return db.statement !== undefined ? [{ statement: db.statement, params: db.params ?? [] }] : [];
}

/** Where a template placeholder reads: an HL7 path, `$.a.b` in the JSON, or a name. */
const TEMPLATE_PLACEHOLDER = /\{\{\s*(.*?)\s*\}\}/g;

/**
 * A `body:` template as one expression: literal text and placeholders joined at run time, the
 * placeholders' paths written into the code (nothing is parsed per message). Validate has
 * checked every placeholder. A value is written on one line (`lines: 'flatten'`: file and HTTP
 * bodies, headers, names, subjects) unless the text is free prose (`'keep'`: a mail's body).
 */
function templateExpr(
  template: string,
  channel: string,
  code: Code,
  literal: (text: string) => string = q,
  value: (expr: string) => string = (e) => e,
  lines: 'flatten' | 'keep' = 'flatten',
): { expr: string; json: boolean } {
  const use = code.use;
  const parts: string[] = [];
  let json = false;
  let last = 0;
  // A JSON body: a value inside quotes is escaped as inside a JSON string, or a quote in a field
  // would end it; one outside quotes is a JSON value of its own, or the body would not be JSON.
  const jsonBody = isJsonTemplate(template);
  let inString = false;
  for (const m of template.matchAll(TEMPLATE_PLACEHOLDER)) {
    if (m.index > last) parts.push(literal(template.slice(last, m.index)));
    if (jsonBody) inString = stillInJsonString(template.slice(last, m.index), inString);
    const text = use(jsonBody ? (inString ? 'templateJsonText' : 'templateJsonValue') : lines === 'keep' ? 'templateText' : 'templateLineText');
    const inner = m[1]!;
    if (inner === 'channel') parts.push(value(jsonBody ? `${text}(${q(channel)})` : q(channel)));
    else if (inner === 'control_id') parts.push(value(`${text}(message.controlId)`));
    else if (inner.startsWith('$.')) {
      json = true;
      parts.push(value(`${text}(${use('readJson')}(json, json, ${jsonRead(code, inner)}))`));
    } else parts.push(value(`${text}(message.get(${hl7Path(code, inner)}))`));
    last = m.index + m[0].length;
  }
  if (last < template.length) parts.push(literal(template.slice(last)));
  return { expr: parts.length === 0 ? '""' : parts.length === 1 && parts[0]!.startsWith('"') ? parts[0]! : `[${parts.join(', ')}].join("")`, json };
}

/** Whether JSON text that starts inside a string (or not) ends inside one. */
function stillInJsonString(text: string, inString: boolean): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString && c === '\\') i++;
    else if (c === '"') inString = !inString;
  }
  return inString;
}

/** A file destination's name when the spec gives none: the extension says what the file holds. */
const DEFAULT_FILE_NAME = { json: '{control_id}.json', hl7: '{control_id}.hl7', text: '{control_id}.txt' } as const;

function destinationExpr(d: Destination, use: (n: string) => string, payload: string | undefined, kind: keyof typeof DEFAULT_FILE_NAME, fileNameOf?: string): string {
  let target: string;
  if (d.http) {
    // Headers with {{…}} come from the message, in the envelope; the rest are config.
    const headers = Object.entries(d.http.headers ?? {}).filter(([, v]) => !v.includes('{{')).map(([k, v]) => `${q(k)}: ${configString(v, use)}`);
    // A body: template is text, whatever its first character.
    target = `{ kind: "http", url: ${configString(d.http.url, use)}, method: ${q(d.http.method ?? 'POST')}, headers: { ${headers.join(', ')} }, timeout_ms: ${d.http.timeout_ms ?? 10_000}${d.body !== undefined ? `, content_type: "${isJsonTemplate(d.body) ? 'application/json' : 'text/plain; charset=utf-8'}"` : ''}${fileNameOf ? ', envelope: true' : ''}${d.http.response ? `, response_channel: ${q(d.http.response.channel)}` : ''}${d.http.delivered_status ? `, delivered_status: ${q(d.http.delivered_status)}` : ''} }`;
  } else if (d.mllp) target = `{ kind: "mllp", host: ${configString(d.mllp.host, use)}, port: ${configNumber(d.mllp.port, use)}, on_ae: ${q(d.mllp.on_ae ?? 'retry')}, on_ar: ${q(d.mllp.on_ar ?? 'fail')}${tlsExpr(d.mllp.tls, use)} }`;
  else if (d.file) target = `{ kind: "file", dir: ${configString(d.file.dir, use)}, file_name: ${configString(d.file.file_name ?? DEFAULT_FILE_NAME[d.file.content === 'raw' ? 'hl7' : kind], use)}${d.file.on_exists ? `, on_exists: ${q(d.file.on_exists)}` : ''}${d.file.content ? `, content: ${q(d.file.content)}` : ''}${d.file.append ? ', append: true' : ''}${fileNameOf ? ', envelope: true' : ''} }`;
  else if (d.smtp) {
    const m = d.smtp;
    const list = (v: string | string[]) => (Array.isArray(v) ? `[${v.map((a) => configString(a, use)).join(', ')}]` : `${use('addressList')}(${configString(v, use)})`);
    const parts = [
      `kind: "smtp"`,
      `host: ${configString(m.host, use)}`,
      `port: ${m.port !== undefined ? configNumber(m.port, use) : m.secure ? '465' : '587'}`,
      `secure: ${m.secure === true}`,
      ...(m.user !== undefined ? [`user: ${configString(m.user, use)}`] : []),
      ...(m.password !== undefined ? [`password: ${configString(m.password, use)}`] : []),
      `from: ${configString(m.from, use)}`,
      `to: ${list(m.to)}`,
      ...(m.cc !== undefined ? [`cc: ${list(m.cc)}`] : []),
      ...(m.reply_to !== undefined ? [`reply_to: ${configString(m.reply_to, use)}`] : []),
      ...(m.headers ? [`headers: { ${Object.entries(m.headers).map(([k, v]) => `${q(k)}: ${configString(v, use)}`).join(', ')} }`] : []),
      `timeout_ms: ${m.timeout_ms ?? 10_000}`,
    ];
    target = `{ ${parts.join(', ')} }`;
  } else if (d.database) target = `{ kind: "database", url: ${configString(d.database.url, use)}, statements: ${q(databaseStatements(d.database).map((st) => st.statement))} }`;
  else target = `{ kind: "channel", channel: ${q(d.channel)} }`;
  const r = d.retry ?? {};
  return `{ ${d.when ? `when: ${JSON.stringify(d.when)}, ` : ''}target: ${target}, retry: { attempts: ${r.attempts === 'unlimited' ? 'Infinity' : (r.attempts ?? 5)}, backoff_ms: ${r.backoff_ms ?? 1000}, max_backoff_ms: ${r.max_backoff_ms ?? 60_000} }, on_failure: ${q(d.on_failure ?? 'dead_letter')}${d.max_in_flight && d.max_in_flight > 1 ? `, max_in_flight: ${d.max_in_flight}` : ''}${payload ? `, payload: ${payload}` : ''}${fileNameOf ? `, envelope_of: ${fileNameOf}` : ''} }`;
}
