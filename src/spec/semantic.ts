import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { readLookupCsv } from './csv-table.js';
import { isTimeZone } from '../../runtime/channel/transforms.js';
import { allowList, componentCount, componentType, Hl7PathError, parsePath, patternProblem, tableVersionOf } from '../../runtime/index.js';
import type { Condition } from '../../runtime/index.js';
import type { Diagnostic } from '../diagnostics/diagnostic.js';
import { groupPathDiagnostics } from './group-paths.js';
import { checkHl7Path, isZSegment, MESSAGE_SEGMENTS } from './hl7-tables.js';
import { segmentFields } from '../../runtime/hl7/versions/tables.js';
import type { ChannelHl7Version } from './hl7-version.js';
import { channelHl7Version } from './hl7-version.js';
import type { LoadedSpec } from './load.js';
import type { PathKey } from './source-map.js';
import { destinationOutputKindOf, inputKindOf } from './kinds.js';
import { scanStatement, sqlDialect } from '../../runtime/serve/sql-placeholders.js';
import type { BuildSegment, Mapping, Spec, TransformStep } from './types.js';

const TRANSFORM_STEP_KINDS = ['set', 'copy', 'clear', 'delete_segments', 'keep_identifier', 'add_segment', 'replace', 'reformat_date'];

const CX_DEFAULT_FIELD: Record<string, string> = { patient: 'PID-3', visit: 'PV1-19', account: 'PID-18', merge: 'MRG-1' };

const DATE_TYPES = new Set(['DT', 'DTM', 'TS']);

/** What a letter run in a date pattern probably meant (Java / moment habits). */
const DATE_PATTERN_HINTS: ReadonlyArray<readonly [RegExp, string]> = [
  [/^y+$/, 'the year is YYYY (upper case)'],
  [/^d+$/, 'the day of the month is DD (upper case)'],
  [/^h+$/, 'the hour is HH, 00-23 (there is no 12-hour clock)'],
  [/^a$|^A$/, 'there is no AM/PM: write HH, 00-23'],
  [/^M$|^D$|^H$|^m$|^s$|^Y{1,3}$/, 'parts are two digits (MM DD HH mm ss) and the year four (YYYY)'],
  [/^S+$/, 'fractions of a second are not written: end at ss'],
  [/^Q+$/, 'there is no quarter: write MM'],
];

/** Checks the meaning of one schema-valid spec: paths, segments, fields, references. */
export function semanticDiagnostics(loaded: LoadedSpec, specDir: string): Diagnostic[] {
  const spec = loaded.data as Spec;
  const out: Diagnostic[] = [];
  const lines = loaded.text.split('\n');
  const at = (path: PathKey[], severity: Diagnostic['severity'], code: string, message: string, hint?: string, columnOffset = 0) => {
    const pos = loaded.sourceMap.valueAt(path);
    // An offset into a value counts from its first character, after any opening quote.
    const opening = lines[pos.line - 1]?.[pos.column - 1];
    if (columnOffset > 0 && (opening === '"' || opening === "'")) columnOffset++;
    out.push({ file: loaded.file, line: pos.line, column: pos.column + columnOffset, severity, code, message, ...(hint ? { hint } : {}) });
  };

  if (typeof spec.timezone === 'string' && !isTimeZone(spec.timezone)) {
    at(['timezone'], 'error', 'spec/unknown-timezone', `${spec.timezone} is no time zone this Node.js knows`, 'an IANA name such as America/New_York or Europe/Berlin (the offset follows daylight saving time), or a fixed offset such as -05:00');
  }

  /** A lookup CSV's problems, at their line and column in the CSV, each naming the spec line that uses it. */
  const checked = new Set<string>();
  const checkLookupCsv = (file: string, where: PathKey[]) => {
    const full = resolve(specDir, file);
    if (checked.has(full)) return;
    checked.add(full);
    let text: string;
    try {
      text = readFileSync(full, 'utf8');
    } catch {
      return;
    }
    const use = loaded.sourceMap.valueAt(where);
    const csvFile = join(dirname(loaded.file), file);
    for (const p of readLookupCsv(text).problems) {
      const hint = `${p.hint ? `${p.hint}; ` : ''}the table is used at ${loaded.file}:${use.line}:${use.column}`;
      out.push({ file: csvFile, line: p.line, column: p.column, severity: p.severity, code: p.code, message: p.message, hint });
    }
  };

  /** A regular expression the runtime compiles: its syntax error here, not on the first message. */
  const checkPattern = (pattern: string, where: PathKey[]) => {
    const problem = patternProblem(pattern);
    if (problem) at(where, 'error', problem.code, problem.message, problem.hint);
  };

  /** A date pattern the runtime writes: a letter outside its tokens would be written as is (yyyy03dd), so it is an error here. */
  const checkDatePattern = (pattern: string, where: PathKey[]) => {
    for (let i = 0; i < pattern.length; ) {
      const token = /^(YYYY|MM|DD|HH|mm|ss)/.exec(pattern.slice(i));
      if (token) {
        i += token[1]!.length;
        continue;
      }
      const run = /^([A-Za-z])\1*/.exec(pattern.slice(i));
      if (!run) {
        i++;
        continue;
      }
      const letters = run[0];
      const hint = DATE_PATTERN_HINTS.find(([re]) => re.test(letters))?.[1];
      at(where, 'error', 'spec/date-pattern', `"${letters}" in date pattern "${pattern}" is not a date part: it would be written as is; the parts are YYYY MM DD HH mm ss`, hint ?? 'write only YYYY MM DD HH mm ss and separators (- / . : space)', i);
      return;
    }
  };

  const hl7 = channelHl7Version(spec, specDir);
  if (spec.hl7_version && spec.build && tableVersionOf(spec.build.version) !== spec.hl7_version) {
    at(['build', 'version'], 'error', 'spec/hl7-version-conflict', `build: makes v${spec.build.version} messages, and hl7_version says this channel's messages are v${spec.hl7_version}`, 'give both the same version, or drop hl7_version: (build.version then says it)');
  }
  /** The tables a build: writes with (a destination's own build may differ from the channel's). */
  const buildVersion = (version: string): ChannelHl7Version => {
    const v = tableVersionOf(version);
    return v && v !== hl7.version ? { version: v, from: 'build', why: `build.version: ${version}` } : hl7;
  };

  /** Validates one HL7 path against the tables of the version its messages carry; returns the segment it reads, if valid. */
  const checkPath = (text: string, where: PathKey[], version: ChannelHl7Version = hl7): string | undefined => {
    let path;
    try {
      path = parsePath(text);
    } catch (err) {
      if (!(err instanceof Hl7PathError)) throw err;
      at(where, 'error', 'hl7/path-syntax', `"${text}" is not an HL7 path: ${err.reason}`, 'write paths like PID-3, PID-3[2].4.1, OBX[3]-5', err.offset);
      return undefined;
    }
    const problem = checkHl7Path(path, version.version, version.why);
    if (problem) at(where, problem.severity, problem.code, problem.message, problem.hint);
    return problem?.severity === 'error' && (problem.code === 'hl7/unknown-segment' || problem.code === 'hl7/segment-not-in-version') ? undefined : path.segment;
  };

  /**
   * A whole repeating field copied into a whole field that does not repeat (PID-3 to PID-2) would
   * put repetitions where the receiver takes one; the runtime refuses it, so validate says it first.
   */
  const checkCopyRepetitions = (from: string, to: string, where: PathKey[]) => {
    let f, t;
    try {
      f = parsePath(from);
      t = parsePath(to);
    } catch {
      return;
    }
    if (f.field === undefined || t.field === undefined || f.repetition !== undefined || f.component !== undefined || t.repetition !== undefined || t.component !== undefined) return;
    const source = segmentFields(hl7.version, f.segment)?.[f.field - 1];
    const target = segmentFields(hl7.version, t.segment)?.[t.field - 1];
    if (!source || !target || source.maxRepetitions <= 1 || target.maxRepetitions > 1) return;
    at(where, 'error', 'spec/copy-repetitions', `${f.segment}-${f.field} repeats and ${t.segment}-${t.field} does not (HL7 v${hl7.version}): a copy would put several repetitions in it`, `copy one repetition, from: "${f.segment}-${f.field}[1]"${f.segment === 'PID' && f.field === 3 ? ', or write the one a rule picks with set: {path: ' + to + ', identifier: patient}' : ''}`);
  };

  /**
   * reformat_date rewrites one text: a whole field of a type with components (PID-5, an XPN) fails
   * every message, and a component that is no date (PID-13.1, an XTN's number) is never one. The
   * field, component or subcomponent named must be DT, DTM or TS in the channel's version.
   */
  const checkDateField = (text: string, where: PathKey[]) => {
    const path = parsePath(text);
    if (path.field === undefined || isZSegment(path.segment)) return;
    const field = segmentFields(hl7.version, path.segment)?.[path.field - 1];
    if (!field || field.withdrawn) return;
    const fieldAt = `${path.segment}-${path.field}`;
    // The data type at each level down.
    const typeAt = (type: string | undefined, n: number | undefined): string | undefined => {
      if (type === undefined || n === undefined) return type;
      const count = componentCount(hl7.version, type);
      if (count === undefined) return undefined;
      if (count === 1) return n === 1 ? type : undefined;
      return dateAwareComponentType(type, n);
    };
    const component = typeAt(field.type, path.component);
    const type = typeAt(component, path.subcomponent);
    if (type === undefined || type === 'varies' || DATE_TYPES.has(type)) return;
    const dates = (componentCount(hl7.version, field.type) ?? 1) > 1 ? dateComponents(field.type).map((n) => `${fieldAt}.${n}`) : [];
    const hint = dates.length ? `${field.type}'s date components: ${dates.join(', ')}` : `${fieldAt} (${field.type}) has no date component: name a DT, DTM or TS field`;
    if (path.component === undefined) {
      at(where, 'error', 'spec/date-field', `${fieldAt} (${field.name}) is ${field.type} in HL7 v${hl7.version}, not a date: reformat_date needs a DT, DTM or TS field, or the date component of a composite field`, hint);
      return;
    }
    const named = path.text.replace(/\[\d+\]/g, '');
    const whose = path.subcomponent === undefined ? `component ${path.component} of ${field.type}` : `subcomponent ${path.subcomponent} of ${component}, in component ${path.component} of ${field.type}`;
    at(where, 'error', 'spec/date-field', `${named} (${whose}, in ${fieldAt} ${field.name}) is ${type} in HL7 v${hl7.version}, not a date: reformat_date needs a DT, DTM or TS field or component`, hint);
  };
  /** Component n's type in the channel's version; a TS's first component is its time whatever the tables call it (ST in v2.3). */
  const dateAwareComponentType = (type: string, n: number): string | undefined => (type === 'TS' && n === 1 ? 'DTM' : componentType(hl7.version, type, n));
  /** The components of a composite type that are dates (TS, DTM, DT) in the channel's version. */
  const dateComponents = (type: string): number[] => {
    const out: number[] = [];
    for (let n = 1; n <= (componentCount(hl7.version, type) ?? 0); n++) {
      const t = dateAwareComponentType(type, n);
      if (t && DATE_TYPES.has(t)) out.push(n);
    }
    return out;
  };

  // An allow list the runtime could not read would stop the channel at start: say where now.
  for (const kind of ['mllp', 'http'] as const) {
    (spec.source[kind]?.allow ?? []).forEach((entry, i) => {
      try {
        allowList([entry]);
      } catch (err) {
        at(['source', kind, 'allow', i], 'error', 'spec/bad-allow', (err as Error).message.replace(/^allow: /, ''), 'write an address (10.20.0.5, fd00::5) or a CIDR block (10.20.0.0/16, fd00::/8)');
      }
    });
  }

  // A dedupe key the runtime could not read would answer every message AE: say where now. A key
  // without MSH-10 takes different messages from one sender for repeats of each other.
  for (const kind of ['mllp', 'file'] as const) {
    const key = spec.source[kind]?.dedupe?.key;
    if (!key) continue;
    key.forEach((path, i) => checkPath(path, ['source', kind, 'dedupe', 'key', i]));
    if (!key.some((path) => /^MSH-10(\.1)?$/.test(path))) {
      at(['source', kind, 'dedupe', 'key'], 'warning', 'spec/dedupe-key-without-control-id', 'this key does not include MSH-10: different messages with the same key values are taken for repeats, answered as the first and delivered nowhere', 'keep MSH-10 in the key (the default is [MSH-3, MSH-4, MSH-10])');
    }
  }

  // Which message codes can get past the accept rules (a reject/filter rule on message_type).
  const accepted = acceptedMessageCodes(spec);
  const readSegments: Array<{ segment: string; where: PathKey[] }> = [];
  const read = (text: string, where: PathKey[]) => {
    const segment = checkPath(text, where);
    if (segment) readSegments.push({ segment, where });
  };

  /**
   * A whole field of a type with components compared with text holding a component separator:
   * MSH-9 equals ADT^A01 is false for every ADT^A01^ADT_A01, the whole field as sent.
   */
  const checkCompositeCompare = (c: Condition, where: PathKey[]) => {
    if (!('path' in c) || typeof c.path !== 'string') return;
    const values = 'equals' in c ? [c.equals] : 'in' in c && Array.isArray(c.in) ? c.in : [];
    if (!values.some((v) => typeof v === 'string' && v.includes('^'))) return;
    let path;
    try {
      path = parsePath(c.path);
    } catch {
      return;
    }
    if (path.field === undefined || path.component !== undefined || isZSegment(path.segment)) return;
    const field = segmentFields(hl7.version, path.segment)?.[path.field - 1];
    if (!field || (componentCount(hl7.version, field.type) ?? 1) <= 1) return;
    const at_ = `${path.segment}-${path.field}`;
    const hint = at_ === 'MSH-9' ? 'compare MSH-9.1 (ADT) and MSH-9.2 (A01) with all:, or write { message_type: [ADT^A01] }' : `compare one component at a time, e.g. ${at_}.1 and ${at_}.2 with all:`;
    at([...where, 'equals' in c ? 'equals' : 'in'], 'warning', 'spec/composite-compare', `${at_} is a ${field.type} with components, compared as a whole with text holding ^: a message whose ${at_} has more components than that never matches`, hint);
  };

  const walkCondition = (c: Condition, where: PathKey[]) => {
    checkCompositeCompare(c, where);
    if ('path' in c) checkPath(c.path, [...where, 'path']);
    if ('matches' in c) checkPattern(c.matches, [...where, 'matches']);
    if ('all' in c) c.all.forEach((x, i) => walkCondition(x, [...where, 'all', i]));
    if ('any' in c) c.any.forEach((x, i) => walkCondition(x, [...where, 'any', i]));
    if ('not' in c) walkCondition(c.not, [...where, 'not']);
  };
  // An answer that waits for deliveries names destinations of this channel; answer_from one that answers in HL7.
  const answerSource = spec.source.mllp ? 'mllp' : spec.source.http ? 'http' : undefined;
  if (answerSource) {
    const src = spec.source[answerSource]! as { answer_after?: string[]; answer_from?: string };
    const destinations = spec.destinations ?? {};
    const known = Object.keys(destinations).join(', ') || 'none';
    src.answer_after?.forEach((name, i) => {
      if (!(name in destinations)) at(['source', answerSource, 'answer_after', i], 'error', 'spec/answer-destination', `the answer waits for destination ${name}, which this channel does not have`, `destinations: ${known}`);
    });
    const from = src.answer_from;
    if (from !== undefined) {
      const d = destinations[from];
      if (!d) at(['source', 'mllp', 'answer_from'], 'error', 'spec/answer-destination', `the answer is passed through from destination ${from}, which this channel does not have`, `destinations: ${known}`);
      else if (!d.mllp) at(['source', 'mllp', 'answer_from'], 'error', 'spec/answer-destination', `answer_from passes an HL7 ACK through, and destination ${from} is not an mllp destination`, 'name an mllp destination, or use answer_after: to answer AA/AE from the delivery');
    }
  }

  spec.accept?.forEach((rule, i) => {
    walkCondition(rule.if, ['accept', i, 'if']);
    if (rule.ack !== undefined && rule.otherwise !== 'filter') at(['accept', i, 'ack'], 'error', 'spec/ack-needs-filter', 'ack: says how a filtered message is answered; a rejected one is always AR', 'use otherwise: filter, or remove ack:');
  });

  const identifiers = spec.identifiers ?? {};
  for (const [name, rule] of Object.entries(identifiers)) {
    const where: PathKey[] = ['identifiers', name];
    if (rule.field) read(rule.field, [...where, 'field']);
    const cx = CX_DEFAULT_FIELD[rule.kind];
    if (cx && !rule.assigning_authority && !rule.type_code) {
      at(where, 'warning', 'spec/ambiguous-identifier', `identifier ${name} can match any repetition of ${rule.field ?? cx}`, 'add assigning_authority (CX.4) and/or type_code (CX.5), e.g. type_code: MR');
    }
    if (!cx && (rule.assigning_authority || rule.type_code)) {
      at(where, 'error', 'spec/not-a-cx-identifier', `a ${rule.kind} identifier is an EI, which has no CX.4/CX.5 to select by`, 'remove assigning_authority/type_code; use prefer: filler|placer');
    }
    if (cx && rule.prefer) at([...where, 'prefer'], 'error', 'spec/prefer-not-applicable', `prefer applies to order and appointment identifiers, not ${rule.kind}`);
  }

  // A channel that takes JSON and maps it without build: reads JSON only (json:, each: {json}).
  const jsonOnlyMap = inputKindOf(spec) === 'json' && !spec.build;
  let jsonAllowed = false;
  const walkMapping = (m: Mapping, where: PathKey[]) => {
    if (m.path) read(m.path, [...where, 'path']);
    if (m.format !== undefined) checkDatePattern(m.format, [...where, 'format']);
    if (m.coded !== undefined) {
      if (m.path === undefined) at([...where, 'coded'], 'error', 'spec/coded-needs-path', 'coded: reads a component of a CWE/CE field; it needs path:', 'e.g. { path: OBX-3, coded: text }');
      else if (/\.\d+$/.test(m.path) && !/-\d+$/.test(m.path)) at([...where, 'coded'], 'error', 'spec/coded-needs-path', `coded: picks the component itself; ${m.path} already names one`, `write path: ${m.path.replace(/\.\d+(\.\d+)?$/, '')}`);
    }
    m.concat?.forEach((part, i) => typeof part === 'object' && read(part.path, [...where, 'concat', i, 'path']));
    m.replace?.forEach((r, i) => checkPattern(r.pattern, [...where, 'replace', i, 'pattern']));
    if (m.when) walkCondition(m.when, [...where, 'when']);
    if (m.identifier) {
      const name = m.identifier.split('.')[0]!;
      if (!(name in identifiers)) {
        at([...where, 'identifier'], 'error', 'spec/unknown-identifier', `no identifier named ${name}`, Object.keys(identifiers).length ? `defined: ${Object.keys(identifiers).join(', ')}` : 'define it under identifiers:');
      }
    }
    const sources = ['path', 'json', 'identifier', 'value', 'concat', 'each'].filter((k) => (m as Record<string, unknown>)[k] !== undefined);
    if (sources.length !== 1) {
      at(where, 'error', 'spec/mapping-source', sources.length ? `a mapping takes one of path, json, identifier, value, concat, each; this one has ${sources.join(' and ')}` : 'a mapping needs a source: path, json, identifier, value, concat or each', 'e.g. { path: PID-5.1 }');
    }
    if (m.json !== undefined && !jsonAllowed) {
      at([...where, 'json'], 'error', 'spec/json-not-here', 'json: reads JSON, and this map reads the HL7 message', 'use path: here; json: reads JSON in database params and in the map of a channel that takes JSON without build:');
    }
    if (m.path !== undefined && jsonOnlyMap) {
      at([...where, 'path'], 'error', 'spec/path-needs-hl7', `path: reads the HL7 message, and this channel maps the JSON it receives without building HL7`, 'read the JSON with json: a.b');
    }
    if (typeof m.each === 'object') {
      if (!m.fields) at(where, 'error', 'spec/each-without-fields', `each: {json: ${m.each.json}} needs fields: to map every item`);
      if (!jsonAllowed) at([...where, 'each'], 'error', 'spec/json-not-here', 'each: {json: …} walks a JSON array, and this map reads the HL7 message', 'use each: OBX (a segment) or each: PID-3 (a repeating field)');
    } else if (m.each) {
      if (!m.fields) at(where, 'error', 'spec/each-without-fields', `each: ${m.each} needs fields: to map every ${m.each}`);
      if (jsonOnlyMap) at([...where, 'each'], 'error', 'spec/path-needs-hl7', `each: ${m.each} walks the HL7 message, and this channel maps the JSON it receives without building HL7`, 'walk a JSON array with each: {json: items}');
      read(m.each, [...where, 'each']);
    }
    if (m.lookup && 'file' in m.lookup && typeof m.lookup.file === 'string' && !existsSync(resolve(specDir, m.lookup.file))) {
      at([...where, 'lookup', 'file'], 'error', 'spec/lookup-file-missing', `lookup table ${m.lookup.file} does not exist`, 'a CSV with a header row and two columns: code,value; paths are relative to the spec');
    } else if (m.lookup && 'file' in m.lookup && typeof m.lookup.file === 'string') {
      checkLookupCsv(m.lookup.file, [...where, 'lookup', 'file']);
    }
    if (m.fields && !m.each) at([...where, 'fields'], 'error', 'spec/fields-without-each', 'fields: belongs with each:');
    if (m.on_missing !== undefined && !m.lookup) at([...where, 'on_missing'], 'error', 'spec/on-missing-without-lookup', 'on_missing: says what a lookup does with a value its table lacks; this mapping has no lookup:');
    if (m.on_missing === 'default' && m.default === undefined) at([...where, 'on_missing'], 'error', 'spec/on-missing-default', 'on_missing: default needs a default: value', 'add default: …, or choose on_missing: null | keep | error');
    if (m.lookup && m.on_missing === undefined && m.default === undefined) {
      at([...where, 'lookup'], 'warning', 'spec/lookup-unhandled-missing', 'a value this lookup table lacks silently becomes null', 'say what should happen: on_missing: null | keep | default | error, or give a default:');
    }
    for (const [key, child] of Object.entries(m.fields ?? {})) walkMapping(child, [...where, 'fields', key]);
  };
  jsonAllowed = jsonOnlyMap;
  for (const [key, m] of Object.entries(spec.map ?? {})) walkMapping(m, ['map', key]);
  jsonAllowed = false;
  if (jsonOnlyMap) {
    // No HL7 message exists on this channel: nothing may read one.
    const hl7Parts: Array<[PathKey[], string]> = [];
    if (spec.accept?.length) hl7Parts.push([['accept'], 'accept rules']);
    if (spec.identifiers && Object.keys(spec.identifiers).length) hl7Parts.push([['identifiers'], 'identifiers']);
    if (spec.transform?.length) hl7Parts.push([['transform'], 'transform steps']);
    for (const [name, d] of Object.entries(spec.destinations ?? {})) {
      if (d.when) hl7Parts.push([['destinations', name, 'when'], `destination ${name}'s when`]);
      if (d.transform?.length) hl7Parts.push([['destinations', name, 'transform'], `destination ${name}'s transform`]);
    }
    for (const [where, what] of hl7Parts) at(where, 'error', 'spec/path-needs-hl7', `${what} read the HL7 message, and this channel maps the JSON it receives without building HL7`, 'add build: to make an HL7 message first, or drop them');
  }
  out.push(...groupPathDiagnostics(loaded, accepted));

  const takesJson = inputKindOf(spec) === 'json';
  if (spec.source.http && takesJson && !spec.build && !spec.map) {
    at(['source', 'http'], 'error', 'spec/build-required', 'an http source receives JSON from the app; it needs build: to turn it into an HL7 message, or map: to map it to JSON', 'add build: with message_type, version and segments, or map: with json: sources');
  }
  if (spec.source.channel?.input === 'json' && !spec.build && !spec.map) {
    at(['source', 'channel', 'input'], 'error', 'spec/build-required', 'this channel takes JSON from other channels; it needs build: to turn it into an HL7 message, or map: to map it to JSON', 'add build: with message_type, version and segments, or map: with json: sources, or take input: hl7');
  }
  if (spec.build && !takesJson) {
    at(['build'], 'error', 'spec/build-needs-http-source', 'build: makes HL7 from JSON, so it needs a source that takes JSON', 'use source: { http: { port, path } } or source: { channel: { input: json } }');
  }
  if (spec.build && spec.map) {
    at(['map'], 'error', 'spec/map-with-build', 'a channel that builds HL7 from JSON sends that HL7 on; map: (HL7 to JSON) does not apply', 'remove map:, or split into two channels');
  }
  spec.build?.segments.forEach((seg, i) => walkBuild(seg, ['build', 'segments', i], hl7));
  const checkIdentifierName = (name: string, where: PathKey[], cxOnly: boolean) => {
    const rule = identifiers[name];
    if (!rule) {
      at(where, 'error', 'spec/unknown-identifier', `no identifier named ${name}`, Object.keys(identifiers).length ? `defined: ${Object.keys(identifiers).join(', ')}` : 'define it under identifiers:');
    } else if (cxOnly && !CX_DEFAULT_FIELD[rule.kind]) {
      at(where, 'error', 'spec/keep-identifier-not-cx', `keep_identifier reduces a repeating CX field to one repetition; ${name} is a ${rule.kind} identifier (an EI), which does not repeat`, 'use keep_identifier with a patient, visit, account or merge identifier');
    }
  };
  const walkTransform = (steps: TransformStep[], base: PathKey[]) => steps.forEach((step, i) => {
    const where: PathKey[] = [...base, i];
    const kinds = TRANSFORM_STEP_KINDS.filter((k) => k in step);
    if (kinds.length !== 1) {
      at(where, 'error', 'spec/transform-step', kinds.length ? `a transform step does one thing; this one has ${kinds.join(' and ')}` : `a transform step needs one of ${TRANSFORM_STEP_KINDS.join(', ')}`, 'split it into several steps; when: may go beside any of them');
    }
    if ('replace' in step) {
      checkPath(step.replace.path, [...where, 'replace', 'path']);
      checkPattern(step.replace.pattern, [...where, 'replace', 'pattern']);
    }
    if ('reformat_date' in step) {
      const r = step.reformat_date;
      if (checkPath(r.path, [...where, 'reformat_date', 'path'])) checkDateField(r.path, [...where, 'reformat_date', 'path']);
      checkDatePattern(r.format, [...where, 'reformat_date', 'format']);
    }
    if ('add_segment' in step) {
      const a = step.add_segment;
      checkPath(a.segment, [...where, 'add_segment', 'segment']);
      if (a.segment === 'MSH') at([...where, 'add_segment', 'segment'], 'error', 'spec/transform-step', 'a message has one MSH; set its fields with set:');
      if (a.after !== undefined) checkPath(a.after, [...where, 'add_segment', 'after']);
      for (const [key, v] of Object.entries(a.fields ?? {})) {
        const segment = checkPath(key, [...where, 'add_segment', 'fields', key]);
        if (segment && segment !== a.segment) {
          const pos = loaded.sourceMap.keyAt([...where, 'add_segment', 'fields', key]);
          out.push({ file: loaded.file, line: pos.line, column: pos.column, severity: 'error', code: 'spec/field-of-other-segment', message: `${key} is not a field of ${a.segment}`, hint: `write ${a.segment}-n` });
        }
        if (typeof v === 'object') checkPath(v.path, [...where, 'add_segment', 'fields', key, 'path']);
      }
    }
    if (step.when) walkCondition(step.when, [...where, 'when']);
    if ('set' in step) {
      read(step.set.path, [...where, 'set', 'path']);
      if ('identifier' in step.set) checkIdentifierName(step.set.identifier, [...where, 'set', 'identifier'], false);
    }
    if ('copy' in step) {
      read(step.copy.from, [...where, 'copy', 'from']);
      read(step.copy.to, [...where, 'copy', 'to']);
      checkCopyRepetitions(step.copy.from, step.copy.to, [...where, 'copy', 'to']);
    }
    if ('clear' in step) read(step.clear, [...where, 'clear']);
    if ('keep_identifier' in step) checkIdentifierName(step.keep_identifier, [...where, 'keep_identifier'], true);
  });
  walkTransform(spec.transform ?? [], ['transform']);
  if (!spec.destinations || Object.keys(spec.destinations).length === 0) {
    at(['channel'], 'warning', 'spec/no-destination', `channel ${spec.channel} has no destinations: accepted messages go nowhere`, 'add destinations:');
  }
  for (const [name, d] of Object.entries(spec.destinations ?? {})) {
    if (d.when) walkCondition(d.when, ['destinations', name, 'when']);
    const kinds = ['http', 'mllp', 'file', 'channel', 'database', 'smtp'].filter((k) => (d as Record<string, unknown>)[k] !== undefined);
    if (kinds.length !== 1) at(['destinations', name], 'error', 'spec/destination-kind', `destination ${name} must be exactly one of http, mllp, file, channel, database, smtp${kinds.length ? ` (has ${kinds.join(', ')})` : ''}`);
    if (d.database) checkDatabase(name, d.database);
    if (d.smtp) {
      checkTemplate(d.smtp.subject, ['destinations', name, 'smtp', 'subject']);
      if (d.smtp.body !== undefined) checkTemplate(d.smtp.body, ['destinations', name, 'smtp', 'body']);
      const other = (['map', 'build', 'body'] as const).find((k) => d[k] !== undefined);
      if (other) at(['destinations', name, other], 'error', 'spec/destination-payload', `an smtp destination sends a mail; its text is smtp.body (a template), not ${other}:`, 'move the text into smtp: { body: … }');
      const rawPassword = (loaded.raw as Spec).destinations?.[name]?.smtp?.password;
      if (typeof rawPassword === 'string' && rawPassword !== '' && !rawPassword.includes('${')) {
        at(['destinations', name, 'smtp', 'password'], 'warning', 'spec/credential-in-spec', `destination ${name}'s SMTP password is written in the spec, and would be kept in the generated code`, 'write it as an environment reference: password: ${SMTP_PASSWORD}');
      }
    }
    const sends = destinationOutputKindOf(spec, d);
    if (d.mllp && sends !== 'hl7') {
      const what = d.map ? 'this destination maps to JSON' : d.body !== undefined ? 'this destination sends its body: text' : 'this channel maps to JSON';
      at(['destinations', name, 'mllp'], 'error', 'spec/mllp-needs-hl7', `destination ${name} sends over MLLP, which carries HL7, but ${what}`, 'send the JSON with an http or file destination, or drop map: to forward the HL7 message');
    }
    // Its own payload: transform (with map or body), or one of map, build, body.
    const own = (['map', 'build', 'body'] as const).filter((k) => d[k] !== undefined);
    if (own.length > 1) at(['destinations', name, own[1]!], 'error', 'spec/destination-payload', `destination ${name} has ${own.join(' and ')}; a destination takes one of map, build, body (beside an optional transform)`, 'keep one; a second destination can carry the other');
    if (d.build && d.transform?.length) at(['destinations', name, 'transform'], 'error', 'spec/destination-payload', `destination ${name} builds its message from JSON; a transform of the channel's message does not apply`, 'edit the built message in build:, or drop transform:');
    // content: raw writes the bytes as received: a payload of its own would be silently left out.
    if (d.file?.content === 'raw') {
      const ignored = (['transform', 'map', 'build', 'body'] as const).find((k) => d[k] !== undefined);
      if (ignored) at(['destinations', name, ignored], 'error', 'spec/raw-with-payload', `destination ${name} writes the message as received (content: raw), so its ${ignored}: would never be applied`, `drop ${ignored}: to keep a raw copy, or write content: output to write what ${ignored}: makes (a second file destination can keep the raw copy)`);
    }
    if (d.transform) walkTransform(d.transform, ['destinations', name, 'transform']);
    for (const [key, m] of Object.entries(d.map ?? {})) walkMapping(m, ['destinations', name, 'map', key]);
    if (d.build) {
      if (!takesJson) at(['destinations', name, 'build'], 'error', 'spec/build-needs-http-source', `destination ${name} builds HL7 from JSON, but this channel receives HL7`, 'use transform: to edit the HL7 message for this destination');
      const version = buildVersion(d.build.version);
      d.build.segments.forEach((seg, i) => walkBuild(seg, ['destinations', name, 'build', 'segments', i], version));
    }
    if (d.body !== undefined) checkTemplate(d.body, ['destinations', name, 'body']);
    if (d.file?.file_name?.includes('{{')) checkTemplate(d.file.file_name, ['destinations', name, 'file', 'file_name']);
    if (d.http?.url.includes('{{')) checkTemplate(d.http.url, ['destinations', name, 'http', 'url']);
    for (const [k, v] of Object.entries(d.http?.query ?? {})) checkTemplate(v, ['destinations', name, 'http', 'query', k]);
    for (const [k, v] of Object.entries(d.http?.headers ?? {})) if (v.includes('{{')) checkTemplate(v, ['destinations', name, 'http', 'headers', k]);
  }
  // After every read is collected: the channel's map and transform and each destination's own.
  if (accepted) {
    const possible = new Set([...accepted].flatMap((code) => MESSAGE_SEGMENTS[code] ?? []));
    const unknownCodes = [...accepted].some((c) => !MESSAGE_SEGMENTS[c]);
    for (const { segment, where } of readSegments) {
      if (!unknownCodes && !possible.has(segment) && !isZSegment(segment)) {
        at(where, 'warning', 'spec/segment-not-in-message', `${segment} is not part of ${[...accepted].join('/')} messages, which are all this channel accepts`, 'check the segment, or the accept rules');
      }
    }
  }

  function checkDatabase(name: string, db: NonNullable<Spec['destinations']>[string]['database'] & object): void {
    const where: PathKey[] = ['destinations', name, 'database'];
    if ((db.statement === undefined) === (db.statements === undefined)) {
      at(where, 'error', 'spec/database-statement', db.statement === undefined ? `destination ${name} has no statement` : `destination ${name} has both statement and statements`, 'write statement: with params:, or statements: [ {statement, params}, … ] run in order in one transaction');
    }
    if (db.statements && db.params) at([...where, 'params'], 'error', 'spec/database-statement', 'params: belongs with statement:; with statements:, each statement has its own params', 'move the params into each entry of statements:');
    const list = db.statements ? db.statements.map((st, i) => ({ st, at: [...where, 'statements', i] as PathKey[] })) : db.statement !== undefined ? [{ st: { statement: db.statement, params: db.params }, at: where }] : [];
    // The url names the dialect; behind an unset ${ENV} it is not known, and PostgreSQL's rules apply.
    const dialect = sqlDialect(db.url) ?? 'postgres';
    for (const { st, at: here } of list) {
      const { placeholders, questionMarks } = scanStatement(st.statement, dialect);
      const numbers = new Set(placeholders.map((p) => p.number));
      const highest = numbers.size ? Math.max(...numbers) : 0;
      const given = st.params?.length ?? 0;
      if (highest !== given) {
        at([...here, 'statement'], 'error', 'spec/database-params', `the statement uses ${highest ? `$1 … $${highest}` : 'no placeholders'} but ${given} param${given === 1 ? ' is' : 's are'} given`, 'give one param per placeholder, in order: params: [ {path: PID-3.1}, … ]');
      }
      const missing = Array.from({ length: highest }, (_, k) => k + 1).filter((n) => !numbers.has(n));
      if (missing.length) at([...here, 'statement'], 'error', 'spec/database-params', `the statement uses $${highest} but not ${missing.map((n) => `$${n}`).join(', ')}`, 'number the placeholders $1, $2 … without gaps, one per param');
      const marksBefore = (n: number) => st.statement.slice(0, n).split('?').length - 1;
      for (const q of questionMarks) {
        const pos = loaded.sourceMap.findInValue([...here, 'statement'], loaded.text, '?', marksBefore(q)) ?? loaded.sourceMap.valueAt([...here, 'statement']);
        out.push({ file: loaded.file, ...pos, severity: 'error', code: 'spec/database-placeholder', message: `destination ${name}: a bare ? is not a placeholder in hl7c`, hint: 'write $1, $2 … for MySQL and MariaDB too (one per param, in order); hl7c sends them as ?, with the values in the order they appear' });
      }
      jsonAllowed = true;
      st.params?.forEach((m, i) => walkMapping(m, [...here, 'params', i]));
      jsonAllowed = false;
    }
    const rawUrl = (loaded.raw as Spec).destinations?.[name]?.database?.url;
    if (typeof rawUrl === 'string' && !rawUrl.includes('${') && /^[a-z]+:\/\/[^/@:]+:[^/@]+@/i.test(rawUrl)) {
      at([...where, 'url'], 'warning', 'spec/credential-in-spec', `destination ${name}'s url holds a password, which would be kept in the spec and the generated code`, 'write it as an environment reference: url: ${PIX_DB_URL}');
    }
    if (!sqlDialect(db.url) && !(typeof rawUrl === 'string' && rawUrl.includes('${') && db.url === '')) {
      at([...where, 'url'], 'error', 'spec/database-url', `destination ${name}: ${db.url || 'the url'} is not a postgres://, mysql:// or mariadb:// URL`, 'postgres://user@host:5432/database (PostgreSQL), or mysql://user@host:3306/database (MySQL, MariaDB)');
    }
  }
  function checkTemplate(template: string, where: PathKey[]): void {
    for (const m of template.matchAll(/\{\{\s*(.*?)\s*\}\}/g)) {
      const inner = m[1]!;
      if (jsonOnlyMap && inner !== 'channel' && !inner.startsWith('$.')) {
        at(where, 'error', 'spec/path-needs-hl7', `{{${inner}}} reads the HL7 message, and this channel maps the JSON it receives without building HL7`, 'read the JSON with {{$.a.b}}', m.index + 2);
        continue;
      }
      if (inner === 'channel' || inner === 'control_id') continue;
      if (inner.startsWith('$.')) {
        if (!/^\$(\.[A-Za-z0-9_-]+(\[\d+\])?)+$/.test(inner)) at(where, 'error', 'spec/template-placeholder', `{{${inner}}} is not a JSON path`, 'write {{$.patient.mrn}} or {{$.items[0].code}}', m.index + 2);
        continue;
      }
      if (!/^[A-Z][A-Z0-9]{2}/.test(inner)) {
        at(where, 'error', 'spec/template-placeholder', `{{${inner}}} names nothing a template can read`, 'write an HL7 path ({{PID-5.1}}), a JSON path ({{$.patient.mrn}}), {{channel}} or {{control_id}}', m.index + 2);
        continue;
      }
      const before = out.length;
      checkPath(inner, where);
      // Point inside the template, at the placeholder.
      for (const d of out.slice(before)) {
        const pos = loaded.sourceMap.valueAt(where);
        if (d.line === pos.line && d.column >= pos.column) d.column = pos.column + (lines[pos.line - 1]?.[pos.column - 1] === '"' || lines[pos.line - 1]?.[pos.column - 1] === "'" ? 1 : 0) + m.index + 2;
      }
    }
  }
  spec.tests?.forEach((t, i) => {
    const input = typeof t.input === 'string' ? t.input.trim() : 'MSH';
    if (typeof t.input === 'object' && !takesJson) {
      at(['tests', i, 'input'], 'error', 'spec/test-input-kind', 'a JSON input only fits a channel that takes JSON (an http source, or a channel source with input: json); this channel receives HL7', 'give an HL7 message inline or a .hl7 file');
    }
    if (!input.startsWith('MSH') && !existsSync(resolve(specDir, input))) {
      at(['tests', i, 'input'], 'error', 'spec/test-input-missing', `test input ${input} is neither an inline message nor a file`, `paths are relative to ${dirname(loaded.file) || '.'}`);
    }
    for (const name of Object.keys(t.expect.identifiers ?? {})) {
      if (!(name in identifiers)) at(['tests', i, 'expect', 'identifiers', name], 'error', 'spec/unknown-identifier', `no identifier named ${name}`);
    }
    // A test naming no destination of the spec checks nothing about it, and passed unseen.
    const defined = Object.keys(spec.destinations ?? {});
    const hint = defined.length ? `this spec's destinations: ${defined.join(', ')}` : 'this spec has no destinations';
    const expectDestinations = (t.expect as { destinations?: unknown }).destinations;
    if (expectDestinations && typeof expectDestinations === 'object' && !Array.isArray(expectDestinations)) {
      for (const name of Object.keys(expectDestinations)) {
        if (defined.includes(name)) continue;
        const pos = loaded.sourceMap.keyAt(['tests', i, 'expect', 'destinations', name]);
        out.push({ file: loaded.file, line: pos.line, column: pos.column, severity: 'error', code: 'spec/unknown-destination', message: `expect.destinations names ${name}, which is no destination of this spec`, hint });
      }
    }
    const route = (t.expect as { route?: unknown }).route;
    if (Array.isArray(route)) {
      route.forEach((name, j) => {
        if (typeof name === 'string' && !defined.includes(name)) at(['tests', i, 'expect', 'route', j], 'error', 'spec/unknown-destination', `expect.route names ${name}, which is no destination of this spec`, hint);
      });
    }
  });
  return out;

  function walkBuild(seg: BuildSegment, where: PathKey[], version: ChannelHl7Version): void {
    const groups = [seg.segment && 'segment', seg.each && 'each', seg.each_line && 'each_line'].filter(Boolean);
    if (groups.length !== 1) {
      at(where, 'error', 'spec/build-segment', 'each entry of build.segments is a segment: (with fields:) or an each:/each_line: (with segments:)', 'e.g. { segment: PID, fields: { PID-3.1: { json: patient.mrn } } }');
      return;
    }
    if (seg.segment) {
      checkPath(seg.segment, [...where, 'segment'], version);
      if (seg.segment === 'MSH') {
        // MSH is written from build's own keys; an MSH entry overrides fields of it (MSH-10 from the JSON), at the top level only.
        if (where.includes('segments') && where.filter((k) => k === 'segments').length > 1) at([...where, 'segment'], 'error', 'spec/build-msh', 'a message has one MSH: its fields are set at the top level of build.segments, not inside each:');
        for (const key of Object.keys(seg.fields ?? {})) {
          if (/^MSH-[12](\D|$)/.test(key)) {
            const pos = loaded.sourceMap.keyAt([...where, 'fields', key]);
            out.push({ file: loaded.file, line: pos.line, column: pos.column, severity: 'error', code: 'spec/build-msh', message: `${key} holds the delimiters, which hl7c writes itself`, hint: 'set other MSH fields here, e.g. MSH-10 from the JSON' });
          }
        }
      }
      for (const key of Object.keys(seg.fields ?? {})) {
        const segment = checkPath(key, [...where, 'fields', key], version);
        if (segment && segment !== seg.segment) {
          const pos = loaded.sourceMap.keyAt([...where, 'fields', key]);
          out.push({ file: loaded.file, line: pos.line, column: pos.column, severity: 'error', code: 'spec/field-of-other-segment', message: `${key} is not a field of ${seg.segment}`, hint: `write ${seg.segment}-n` });
        }
        const value = seg.fields![key];
        if (typeof value === 'object' && value.on_null !== undefined && value.json === undefined) {
          at([...where, 'fields', key, 'on_null'], 'error', 'spec/build-on-null', `${key}: on_null: says what a JSON null read with json: writes, and this value reads no JSON`, 'read the value with json: a.b, or write the HL7 null always with value: null');
        }
      }
      if (seg.segments) at([...where, 'segments'], 'error', 'spec/build-segment', 'segments: belongs with each: or each_line:');
    } else if (!seg.segments?.length) {
      at(where, 'error', 'spec/build-segment', `${seg.each ? 'each' : 'each_line'}: needs segments: to add for every item`);
    } else {
      seg.segments.forEach((child, i) => walkBuild(child, [...where, 'segments', i], version));
    }
  }
}

/** The message codes that accept rules let through, or undefined when any may pass. */
function acceptedMessageCodes(spec: Spec): Set<string> | undefined {
  let codes: Set<string> | undefined;
  for (const rule of spec.accept ?? []) {
    const types = topLevelMessageTypes(rule.if);
    if (!types) continue;
    const these = new Set(types.map((t) => t.split('^')[0]!));
    codes = codes ? new Set([...codes].filter((c) => these.has(c))) : these;
  }
  return codes;
}

function topLevelMessageTypes(c: Condition): readonly string[] | undefined {
  if ('message_type' in c) return c.message_type;
  if ('all' in c) for (const x of c.all) { const t = topLevelMessageTypes(x); if (t) return t; }
  return undefined;
}

/** Checks across specs: channel names and listening ports are unique; channel destinations exist. */
export function crossSpecDiagnostics(specs: LoadedSpec[]): Diagnostic[] {
  const out: Diagnostic[] = [];
  const names = new Map<string, LoadedSpec>();
  const ports = new Map<number, LoadedSpec>();
  for (const loaded of specs) {
    const spec = loaded.data as Spec;
    const first = names.get(spec.channel);
    if (first) {
      const pos = loaded.sourceMap.valueAt(['channel']);
      out.push({ file: loaded.file, line: pos.line, column: pos.column, severity: 'error', code: 'spec/duplicate-channel', message: `channel ${spec.channel} is also defined in ${first.file}`, hint: 'channel names must be unique' });
    } else names.set(spec.channel, loaded);
    const port = spec.source.mllp?.port ?? spec.source.http?.port;
    if (port !== undefined && port !== 0) {
      const other = ports.get(port);
      if (other) {
        const pos = loaded.sourceMap.valueAt(['source', spec.source.mllp ? 'mllp' : 'http', 'port']);
        out.push({ file: loaded.file, line: pos.line, column: pos.column, severity: 'error', code: 'spec/duplicate-port', message: `port ${port} is also used by ${(other.data as Spec).channel} (${other.file})`, hint: 'give each listening channel its own port' });
      } else ports.set(port, loaded);
    }
  }
  for (const loaded of specs) {
    const spec = loaded.data as Spec;
    for (const [name, d] of Object.entries(spec.destinations ?? {})) {
      const answerTo = d.http?.response?.channel;
      if (answerTo !== undefined && !names.has(answerTo)) {
        const at = loaded.sourceMap.valueAt(['destinations', name, 'http', 'response', 'channel']);
        out.push({ file: loaded.file, line: at.line, column: at.column, severity: 'error', code: 'spec/unknown-channel', message: `destination ${name} hands the HTTP response to channel ${answerTo}, which no spec defines`, hint: `defined channels: ${[...names.keys()].join(', ')}` });
      }
      if (d.channel === undefined) continue;
      const pos = loaded.sourceMap.valueAt(['destinations', name, 'channel']);
      const target = names.get(d.channel);
      if (!target) {
        out.push({ file: loaded.file, line: pos.line, column: pos.column, severity: 'error', code: 'spec/unknown-channel', message: `destination ${name} hands messages to channel ${d.channel}, which no spec defines`, hint: `defined channels: ${[...names.keys()].join(', ')}` });
        continue;
      }
      const gives = destinationOutputKindOf(spec, d);
      const takes = inputKindOf(target.data as Spec);
      if (gives !== takes) {
        const why = d.map ? 'this destination maps' : d.build ? 'this destination builds HL7' : d.body !== undefined ? 'this destination sends its body: text' : d.transform?.length ? 'this destination transforms HL7' : gives === 'json' ? 'this channel maps' : 'this channel forwards HL7';
        out.push({
          file: loaded.file,
          line: pos.line,
          column: pos.column,
          severity: 'error',
          code: 'spec/hand-off-kind',
          message: `destination ${name} hands ${gives.toUpperCase()} (${why}) to channel ${d.channel}, which takes ${takes.toUpperCase()} (${target.file})`,
          hint: takes === 'json' ? `a channel with an http source (or input: json) takes JSON; add map: here, or hand to a channel that takes HL7` : `a channel with an mllp, file or input: hl7 source takes HL7; remove map: here to forward the HL7 message, or hand to a channel that takes JSON`,
        });
      }
    }
  }
  out.push(...channelCycles(specs));
  return out;
}

/** One hop of a hand-off: a channel destination, and where the spec says it. */
interface Hop {
  from: string;
  destination: string;
  to: string;
  file: string;
  line: number;
  column: number;
}

/**
 * Channels that hand messages round in a loop (a → b → a, or a → a): each such message would be
 * copied forever. Every cycle found is reported once, at its first hop, naming every hop.
 */
function channelCycles(specs: LoadedSpec[]): Diagnostic[] {
  const hops = new Map<string, Hop[]>();
  for (const loaded of specs) {
    const spec = loaded.data as Spec;
    for (const [destination, d] of Object.entries(spec.destinations ?? {})) {
      if (d.channel === undefined) continue;
      const pos = loaded.sourceMap.valueAt(['destinations', destination, 'channel']);
      const list = hops.get(spec.channel) ?? [];
      list.push({ from: spec.channel, destination, to: d.channel, file: loaded.file, line: pos.line, column: pos.column });
      hops.set(spec.channel, list);
    }
  }
  const out: Diagnostic[] = [];
  const reported = new Set<string>();
  const state = new Map<string, 'open' | 'done'>();
  const path: Hop[] = [];
  const visit = (channel: string) => {
    state.set(channel, 'open');
    for (const hop of hops.get(channel) ?? []) {
      if (state.get(hop.to) === 'open') {
        const cycle = hop.to === channel ? [hop] : [...path.slice(path.findIndex((h) => h.from === hop.to)), hop];
        // The same loop found from another channel is the same loop: keyed by its hops, rotated.
        const keys = cycle.map((h) => `${h.from}.${h.destination}`);
        const start = keys.indexOf([...keys].sort()[0]!);
        const key = [...keys.slice(start), ...keys.slice(0, start)].join(' ');
        if (reported.has(key)) continue;
        reported.add(key);
        const ordered = [...cycle.slice(start), ...cycle.slice(0, start)];
        const first = ordered[0]!;
        out.push({
          file: first.file,
          line: first.line,
          column: first.column,
          severity: 'error',
          code: 'spec/channel-cycle',
          message: `channels hand messages round in a loop: ${ordered.map((h) => `${h.from} → ${h.to} (destination ${h.destination}, ${h.file}:${h.line}:${h.column})`).join(', ')}`,
          hint: 'every message would be copied again and again; break the loop (a when: on a destination does not: validate cannot see which messages pass it)',
        });
      } else if (!state.has(hop.to)) {
        path.push(hop);
        visit(hop.to);
        path.pop();
      }
    }
    state.set(channel, 'done');
  };
  for (const channel of [...hops.keys()].sort()) if (!state.has(channel)) visit(channel);
  return out;
}
