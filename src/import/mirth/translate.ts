import type { Hl7Version } from '../../../runtime/index.js';
import { DEFAULT_HL7_VERSION, evaluate as evaluateCondition, parseMessage, parsePath, patternProblem, readHeaderLeniently, tableVersionOf } from '../../../runtime/index.js';
import { checkHl7Path } from '../../spec/hl7-tables.js';
import { codeOnly, e4xPath, isDefaultScript, operand, splitConcat, stringLiteral } from './e4x.js';
import type { Operand } from './e4x.js';
import type { Features } from './features.js';
import type { MirthChannel, MirthConnector, MirthRule, MirthStep } from './model.js';
import { asArray, child, isNode, prop, text } from './model.js';
import { allPuts, balanced, dateEdits, responseScript, datePuts, emptyAsNullPuts, isDeleteZSegments, javaDatePattern, objectLiteral, readFilterScript, readIdentifierPick, simplePuts, unwrap } from './scripts.js';
import type { ScriptCondition } from './scripts.js';

/** One thing the importer could not translate, and where it sits in the export. */
export interface ImportTodo {
  /** The Mirth channel's name. */
  channel: string;
  /** The export file. */
  file: string;
  /** Connector and step, e.g. `destination 1 "Epic ADT inbound" › transformer step 0 "Outbound = inbound"`. */
  location: string;
  /** What was not translated and what stands in its place. */
  what: string;
  /** 1-based line in the export file where that connector or step starts, when found. */
  line?: number;
}

/** A key path in the spec, for placing comments. */
export type At = Array<string | number>;

export type Mapping = Record<string, unknown>;

/** A Mirth channel-map variable and its hl7c reading, when it has one. */
interface Variable {
  mapping?: Mapping;
  /** The identifier rule a `{identifier: name}` mapping needs in the channel that reads it. */
  identifier?: Record<string, unknown>;
  /** A JSON object (`JSON.stringify(payload)`): map key → mapping. */
  object?: Record<string, Mapping>;
  /** Why it has no reading. */
  todo?: string;
  origin: string;
}

/** What every channel translation may look up about the others in the same run. */
export interface RunContext {
  features: Features;
  /** Mirth channel id → spec channel name. */
  names: Map<string, string>;
  /** Mirth channel id → variables handed to it by channel writers, with their readings. */
  passed: Map<string, Map<string, Variable>>;
  /** Mirth channel id → the variables its source transformer defines. */
  variablesOf: Map<string, Map<string, Variable>>;
}

export interface TranslatedChannel {
  spec: Record<string, unknown>;
  comments: Array<{ at: At; text: string }>;
  header: string[];
  todos: ImportTodo[];
  /** A test input that is HL7 text, written as a block literal. */
  blockScalars: At[];
}

const BUILT_INS = new Set(['message.encodedData', 'message.rawData', 'message.transformedData', 'message.messageId', 'channelName', 'channelId', 'originalFilename', 'DATE', 'UUID', 'COUNT', 'SYSTIME']);

/** Kebab-case name from a Mirth name: `LRH Flowsheet Vitals (HTTP)` → `lrh-flowsheet-vitals-http`. */
export function slug(name: string, fallback = 'channel'): string {
  const s = name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
  return /^[a-z]/.test(s) ? s : s ? `${fallback}-${s}` : fallback;
}

/** An environment variable name for a Mirth configuration-map key. */
export function envName(key: string): string {
  const s = key.replace(/[^A-Za-z0-9_]/g, '_').toUpperCase();
  return /^[A-Z_]/.test(s) ? s : `_${s}`;
}

/** The variables a channel's source transformer defines (first pass, before any spec is written). */
export function channelVariables(channel: MirthChannel, passed: Map<string, Variable> | undefined, features: Features): Map<string, Variable> {
  const t = new ChannelTranslator(channel, undefined, passed, features);
  t.readSourceSteps(false);
  return t.vars;
}

export function translateChannel(channel: MirthChannel, run: RunContext): TranslatedChannel {
  const t = new ChannelTranslator(channel, run, run.passed.get(channel.id), run.features);
  return t.translate();
}

class ChannelTranslator {
  spec: Record<string, unknown> = {};
  comments: Array<{ at: At; text: string }> = [];
  header: string[] = [];
  todos: ImportTodo[] = [];
  blockScalars: At[] = [];
  vars = new Map<string, Variable>();
  transform: Array<Record<string, unknown>> = [];
  identifiers: Record<string, unknown> = {};
  outputJson: Record<string, Mapping> | undefined;
  envUsed = new Map<string, string>();
  /** `var table = { S12: 'booked', … }` objects of the script being read: lookup tables. */
  private tables = new Map<string, Record<string, string>>();
  /** Assignments of a JSON → HL7 script that `build:` does not carry. */
  private buildSkipped: string[] = [];
  private emit = true;
  /** The version of the channel's messages: MSH-12 of its sample (inbound template), else the default tables. */
  hl7Version: Hl7Version = DEFAULT_HL7_VERSION;

  constructor(
    readonly channel: MirthChannel,
    readonly run: RunContext | undefined,
    readonly passed: Map<string, Variable> | undefined,
    readonly features: Features,
  ) {}

  translate(): TranslatedChannel {
    const c = this.channel;
    const name = this.run!.names.get(c.id)!;
    this.spec.channel = name;
    if (c.description.trim()) this.spec.description = c.description.trim();
    this.sampleVersion();
    this.header.push(`Imported by \`hl7c import mirth\` from Mirth Connect channel "${c.name}" (id ${c.id}) in ${c.file}.`, 'Review every TODO(import) below before this channel goes live.');
    if (c.initialState !== 'STARTED') this.header.push(`Mirth deployed this channel ${c.initialState} (initial state): serve it only when it should run.`);
    this.source();
    this.scripts();
    this.readSourceSteps(true);
    this.sourceFilter();
    if (Object.keys(this.identifiers).length) this.spec.identifiers = this.identifiers;
    if (this.transform.length) this.spec.transform = this.transform;
    if (this.outputJson) this.spec.map = this.outputJson;
    this.destinations();
    this.variablesNote();
    this.tests();
    if (this.envUsed.size) {
      this.header.push('Environment (Mirth configuration map and credentials); the defaults after :- are placeholders for a local run:');
      for (const [k, v] of [...this.envUsed].sort()) this.header.push(`  ${k}${v ? ` (placeholder ${v})` : ''}`);
    }
    return { spec: this.spec, comments: this.comments, header: this.header, todos: this.todos, blockScalars: this.blockScalars };
  }

  // ---------------------------------------------------------------- reporting

  private note(at: At, lines: string | string[]): void {
    this.comments.push({ at, text: Array.isArray(lines) ? lines.join('\n') : lines });
  }

  private todo(at: At, location: string, what: string, original?: string): void {
    const lines = [`TODO(import): ${what}`];
    if (original !== undefined && original.trim() !== '') {
      const body = original.replace(/\r\n?/g, '\n').replace(/\s+$/, '').split('\n');
      lines.push(...body.map((l) => `  | ${l.replace(/\t/g, '  ')}`));
    }
    if (this.emit) {
      this.note(at, lines);
      this.todos.push({ channel: this.channel.name, file: this.channel.file, location, what });
    }
  }

  private env(name: string, placeholder: string): string {
    const key = envName(name);
    if (!this.envUsed.has(key)) this.envUsed.set(key, placeholder);
    return `\${${key}:-${placeholder}}`;
  }

  /** A connector field that may hold `${NAME}` configuration-map references: each becomes `${NAME:-placeholder}`. */
  private config(value: string, placeholder: string): string {
    return value.replace(/\$\{([^}]+)\}/g, (_m, name: string) => (BUILT_INS.has(name) || this.vars.has(name) ? _m : this.env(name, placeholder)));
  }

  /** A credential: always an environment reference, never the value. */
  private credential(value: string, fallbackName: string): string {
    const ref = /^\$\{([^}]+)\}$/.exec(value.trim());
    return this.env(ref ? ref[1]! : fallbackName, '');
  }

  private where(connector: MirthConnector): string {
    return connector.metaDataId === 0 ? 'source' : `destination ${connector.metaDataId} "${connector.name}"`;
  }

  // ---------------------------------------------------------------- source

  private source(): void {
    const s = this.channel.source;
    const name = this.run!.names.get(this.channel.id)!;
    const response = prop(s, 'sourceConnectorProperties', 'responseVariable');
    const at = ['source'];
    switch (s.transportName) {
      case 'TCP Listener': {
        const mode = prop(s, 'transmissionModeProperties', 'pluginPointName') || 'MLLP';
        const port = Number(prop(s, 'listenerConnectorProperties', 'port')) || 0;
        const mllp: Record<string, unknown> = { host: prop(s, 'listenerConnectorProperties', 'host') || '0.0.0.0', port: `\${${envName(name)}_PORT:-${port}}` };
        this.envUsed.set(`${envName(name)}_PORT`, String(port));
        const max = Number(prop(s, 'maxConnections'));
        if (max > 0) mllp.max_connections = max;
        this.spec.source = { mllp };
        if (mode !== 'MLLP') this.todo(at, 'source (TCP Listener)', `the listener uses the ${mode} transmission mode; hl7c listens with MLLP framing`);
        if (prop(s, 'serverMode') === 'false') this.todo(at, 'source (TCP Listener)', 'the listener runs in client mode (connects out to the sender); hl7c listens');
        this.responseMode(response, at);
        break;
      }
      case 'File Reader': {
        const scheme = prop(s, 'scheme') || 'FILE';
        const file: Record<string, unknown> = { dir: this.config(prop(s, 'host'), './in') };
        const filter = prop(s, 'fileFilter');
        if (filter && filter !== '*.hl7' && filter !== '*') {
          if (prop(s, 'regex') === 'true') this.todo(at, 'source (File Reader)', `file filter is the regular expression \`${filter}\`; hl7c picks up *.hl7 (or a glob \`pattern\`)`);
          else if (this.features.filePattern) file.pattern = filter;
          else this.todo(at, 'source (File Reader)', `file filter \`${filter}\` (a glob): hl7c picks up every *.hl7 in the directory for now (pattern not yet in the spec language)`);
        }
        const after = prop(s, 'afterProcessingAction');
        if (after === 'MOVE') file.done_dir = this.config(prop(s, 'moveToDirectory'), './done');
        else if (after === 'NONE') this.todo(at, 'source (File Reader)', 'Mirth leaves processed files where they are (after-processing action NONE); hl7c moves or removes them');
        const moveName = prop(s, 'moveToFileName');
        if (after === 'MOVE' && moveName && moveName !== '${originalFilename}') this.todo(at, 'source (File Reader)', `processed files are renamed \`${moveName}\` in Mirth; hl7c keeps the original name`);
        const errorDir = prop(s, 'errorMoveToDirectory');
        if (errorDir && (prop(s, 'errorReadingAction') === 'MOVE' || prop(s, 'errorResponseAction') === 'MOVE')) file.error_dir = this.config(errorDir, './error');
        this.spec.source = { file };
        this.ackStyle = 'none';
        const notes = [`Mirth polled every ${prop(s, 'pollConnectorProperties', 'pollingFrequency') || '?'} ms`];
        if (prop(s, 'checkFileAge') === 'true') notes.push(`ignored files younger than ${prop(s, 'fileAge')} ms`);
        if (prop(s, 'sortBy')) notes.push(`sorted by ${prop(s, 'sortBy')}`);
        this.note(at, `File Reader: ${notes.join(', ')}; a file source has no ACK.`);
        if (scheme !== 'FILE') this.todo(at, 'source (File Reader)', `the reader uses ${scheme}; hl7c reads a local directory (mount it, or fetch the files into it)`);
        if (prop(s, 'directoryRecursion') === 'true') this.todo(at, 'source (File Reader)', 'Mirth reads subdirectories too; hl7c reads the one directory');
        break;
      }
      case 'HTTP Listener': {
        const port = Number(prop(s, 'listenerConnectorProperties', 'port')) || 0;
        const path = prop(s, 'contextPath') || '/';
        const http: Record<string, unknown> = { host: prop(s, 'listenerConnectorProperties', 'host') || '0.0.0.0', port: `\${${envName(name)}_PORT:-${port}}`, path: path.startsWith('/') ? path : `/${path}` };
        this.envUsed.set(`${envName(name)}_PORT`, String(port));
        const kind = this.channel.source.transformer.inboundDataType;
        if (kind === 'HL7V2') {
          if (this.features.httpContent) http.content = 'hl7';
          else this.todo(at, 'source (HTTP Listener)', 'the body is an HL7 message; hl7c HTTP sources take JSON for now');
        } else if (kind !== 'JSON') this.todo(at, 'source (HTTP Listener)', `the body is ${kind}; hl7c HTTP sources take JSON`);
        else if (this.features.httpContent) http.content = 'json';
        const auth = child(child(s.properties, 'pluginProperties'), 'com.mirth.connect.plugins.httpauth.basic.BasicHttpAuthProperties');
        if (auth) {
          if (this.features.basicAuth) http.basic_auth = { user: this.env(`${envName(name)}_USER`, ''), password: this.env(`${envName(name)}_PASSWORD`, '') };
          else {
            http.auth_token = this.env(`${envName(name)}_TOKEN`, '');
            this.todo(['source'], 'source (HTTP Listener) › Basic authentication', `Mirth asks for Basic auth (realm "${text(auth.realm)}"; its credentials are not copied); hl7c asks for a bearer token until basic_auth lands`);
          }
        } else if (Object.keys(child(s.properties, 'pluginProperties') ?? {}).some((k) => /HttpAuth/.test(k))) {
          this.todo(at, 'source (HTTP Listener)', 'Mirth uses an authentication plugin other than Basic; set up auth_token');
        }
        this.spec.source = { http };
        this.responseMode(response, at);
        break;
      }
      case 'Channel Reader': {
        this.ackStyle = 'none';
        const input = this.channel.source.transformer.inboundDataType === 'JSON' ? 'json' : 'hl7';
        if (this.features.channelSource) this.spec.source = { channel: { input } };
        else {
          this.spec.source = { mllp: { host: '127.0.0.1', port: 0 } };
          this.todo(at, 'source (Channel Reader)', 'fed only by other channels (Channel Reader); placeholder: an MLLP listener on a free loopback port until `source: {channel: {}}` lands');
        }
        break;
      }
      default:
        this.spec.source = { mllp: { host: '127.0.0.1', port: 0 } };
        this.todo(at, `source (${s.transportName})`, `hl7c has no ${s.transportName} source; placeholder: an MLLP listener on a free loopback port`, prop(s, 'script') || undefined);
    }
  }

  /** Where each Mirth channel-map variable went: the analyst's key to the templates and filters. */
  private variablesNote(): void {
    if (this.vars.size === 0 || this.outputJson) return;
    const lines = ['Mirth channel-map variables, and how this spec reads them where they were used:'];
    for (const [name, v] of this.vars) {
      const how = v.mapping ? JSON.stringify(v.mapping) : v.object ? 'JSON built by a script (see the destination)' : `not translated: ${v.todo}`;
      lines.push(`  ${name}: ${how}`);
    }
    this.note(['destinations'], lines);
  }

  private ackStyle: 'after' | 'before' | 'destinations' | 'destination' | 'none' = 'after';

  private responseMode(response: string, at: At): void {
    const source = this.channel.source;
    if (/After source transformer|After source filter/.test(response) || response === '') this.ackStyle = 'after';
    else if (/Before processing/.test(response)) {
      this.ackStyle = 'before';
      this.note(at, 'Mirth answered AA before processing ("Auto-generate (Before processing)"); hl7c stores the message first and answers after its rules: a filtered message is still answered AA (otherwise: filter), a message that fails is answered AE.');
    } else if (/Destinations completed/.test(response)) {
      this.ackStyle = 'destinations';
      // Mirth counts a queued destination as sent once queued: only the unqueued ones could make the answer AE.
      const picked = (queued: boolean) => this.channel.destinations.filter((d) => d.enabled && (prop(d, 'destinationConnectorProperties', 'queueEnabled') === 'true') === queued);
      const names = (queued: boolean) => picked(queued).map((d) => `"${d.name}"`);
      const failure = /HTTP/.test(source.transportName) ? 'HTTP 500' : 'AE';
      const inline = names(false);
      const queued = names(true);
      if (this.features.answerAfter) {
        const keys = this.destinationKeys();
        const wait = this.answerWait(picked(false));
        if (inline.length) Object.assign(Object.values(this.spec.source as Record<string, Record<string, unknown>>)[0]!, { answer_after: picked(false).map((d) => keys.get(d.metaDataId)!), ...wait });
        this.note(
          at,
          `Mirth answered after the destinations completed ("Auto-generate (Destinations completed)")${inline.length ? `: answer_after waits for ${inline.join(', ')} (no queue in Mirth), AA${failure === 'AE' ? '' : ' (HTTP 200)'} once delivered, ${failure === 'AE' ? 'AE' : 'HTTP 502 (Mirth: 500)'} when it failed after its retries` : ''}${queued.length ? `; ${queued.join(', ')} counted as sent once queued, as in hl7c` : ''}. Mirth answered a filtered message ${failure} in this mode (it had no destination results); hl7c answers it as the accept rule says${failure === 'AE' ? ' (AR)' : ''}.`,
        );
        return;
      }
      this.todo(
        at,
        `source (${source.transportName})`,
        `Mirth answered after the destinations completed ("Auto-generate (Destinations completed)"): ${failure} when ${inline.length ? `${inline.join(' or ')} (no queue) failed after its retries` : 'a destination failed'}, and ${failure} for a filtered message${queued.length ? `; ${queued.join(', ')} counted as sent once queued, as in hl7c` : ''}. hl7c has no construct for an answer that waits for a delivery: it answers once the message is stored and its queues are written (a crash after the ACK loses nothing), then delivers and retries, so ${inline.length ? `a failure of ${inline.join(' or ')}` : 'a failed delivery'} is a dead letter to watch (an alert rule in the serve config, hl7c messages), not ${failure === 'AE' ? 'an AE' : 'an HTTP 500'} the sender resends on; a filtered message is answered ${failure === 'AE' ? 'AR' : 'as the accept rule says'} here`,
      );
    } else if (response === 'None') this.ackStyle = 'none';
    else {
      this.ackStyle = 'destination';
      const from = this.channel.destinations.find((d) => `d${d.metaDataId}` === response);
      if (this.features.answerAfter && from && from.enabled && from.transportName === 'TCP Sender' && source.transportName === 'TCP Listener' && prop(from, 'destinationConnectorProperties', 'queueEnabled') !== 'true') {
        Object.assign(Object.values(this.spec.source as Record<string, Record<string, unknown>>)[0]!, { answer_from: this.destinationKeys().get(from.metaDataId)!, ...this.answerWait([from]) });
        this.note(at, `Mirth answered with destination ${response}'s response ("${from.name}"): answer_from passes that receiver's own ACK to the sender, byte for byte, once it answered (AA, or its AE/AR). hl7c stores the message first; when "${from.name}" cannot be reached after its retries, Mirth sent its error text (no HL7 ACK) and hl7c answers AE naming the destination (the entry is dead-lettered).`);
        return;
      }
      this.todo(at, `source (${source.transportName})`, `Mirth answered with destination ${response}'s response (the downstream system's own ACK, passed through). hl7c has no construct for that: its sender's answer is hl7c's own ACK, given once the message is stored, and the destination gets the message from the queue afterwards. So the sender gets AA where the receiver answered AE or AR (the receiver's ACK is in the message's history; on_ae/on_ar decide whether to retry), and AA where Mirth's sender got no HL7 ACK at all because the receiver was down (the message waits in the queue). If the sending system must see the receiver's own answer, it has to stay on a direct connection to that receiver`);
    }
  }

  /**
   * How long Mirth could keep the sender waiting on these unqueued destinations: every try's
   * response timeout and the retry intervals between. Only written when over hl7c's 30 s default.
   */
  private answerWait(destinations: MirthConnector[]): { answer_wait_ms?: number } {
    let longest = 0;
    for (const d of destinations) {
      const tries = (Number(prop(d, 'destinationConnectorProperties', 'retryCount')) || 0) + 1;
      const interval = Number(prop(d, 'destinationConnectorProperties', 'retryIntervalMillis')) || 10000;
      const timeout = Number(prop(d, 'responseTimeout')) || 5000;
      longest = Math.max(longest, tries * timeout + (tries - 1) * interval);
    }
    return longest > 30_000 ? { answer_wait_ms: longest } : {};
  }

  private scripts(): void {
    const s = this.channel.scripts;
    for (const [key, label] of [
      ['preprocessing', 'preprocessor'],
      ['postprocessing', 'postprocessor'],
      ['deploy', 'deploy script'],
      ['undeploy', 'undeploy script'],
    ] as const) {
      const script = s[key];
      if (isDefaultScript(script)) continue;
      const code = codeOnly(script);
      if (key === 'preprocessing' && /^message\s*=\s*message(\.replace\(\/\\r\\n\/g,\s*'\\r'\)|\.replace\(\/\\n\/g,\s*'\\r'\))+;\s*\nreturn message;$/.test(code)) {
        this.note(['source'], 'Mirth preprocessor turned LF and CRLF into CR: hl7c reads CR, LF and CRLF segment ends as they come, so it is not needed.');
        continue;
      }
      this.todo(['source'], `channel ${label}`, `the channel's ${label} is not translated`, script);
    }
    for (const t of this.channel.codeTemplates) {
      if (this.usesFunction(t.name)) this.note(['source'], `Code template "${t.name}" (library "${t.library}") is used by this channel; it was exported with it, see the TODOs where it is called.`);
    }
  }

  private usesFunction(name: string): boolean {
    const all = [this.channel.source, ...this.channel.destinations].flatMap((c) => [...c.transformer.steps, ...(c.responseTransformer?.steps ?? [])].map((s) => s.script ?? '').concat(c.filter.map((r) => r.script ?? '')));
    return all.some((s) => new RegExp(`\\b${name}\\s*\\(`).test(s) && !new RegExp(`function\\s+${name}\\s*\\(`).test(s));
  }

  // ---------------------------------------------------------------- source transformer

  readSourceSteps(emit: boolean): void {
    this.emit = emit;
    const source = this.channel.source;
    const jsonIn = source.transformer.inboundDataType === 'JSON';
    const jsonOut = source.transformer.outboundDataType === 'JSON';
    if (jsonIn && this.run) this.buildFromTemplate();
    source.transformer.steps.forEach((step, i) => {
      const location = `source transformer › step ${i} "${step.name}"`;
      if (!step.enabled) return;
      if (step.kind === 'mapper') this.mapperStep(step, location);
      else if (step.kind === 'builder') this.builderStep(step, location);
      else if (step.kind === 'javascript') this.scriptStep(step, location, jsonIn);
      else this.todo(['transform'], location, step.kind === 'xslt' ? `XSLT step "${step.name}" is not translated (hl7c has no XSLT: express it as transform steps)` : `a ${step.className.split('.').pop()} step is not translated`, step.script);
    });
    if (jsonOut && !this.outputJson && emit) {
      const object: Record<string, Mapping> = {};
      for (const [k, v] of this.vars) if (v.mapping) object[k] = v.mapping;
      if (Object.keys(object).length === 0) object.message_control_id = { path: 'MSH-10' };
      this.outputJson = object;
      this.todo(['map'], 'source transformer', 'the JSON Mirth produced was written by a script; placeholder: the channel-map variables as JSON');
    }
    this.emit = true;
  }

  private mapperStep(step: MirthStep, location: string): void {
    const variable = step.variable ?? step.name;
    const mapping = this.expressionMapping(step.mapping ?? '', `${location}`);
    if (!mapping) {
      this.vars.set(variable, { todo: `mapper \`${step.mapping}\``, origin: location });
      this.todo(['map', variable], location, `mapper variable ${variable}: the expression is not a field, literal or concatenation`, step.mapping);
      return;
    }
    const def = step.defaultValue ? operand(step.defaultValue) : undefined;
    if (def?.kind === 'literal' && def.value !== '') mapping.default = def.value;
    else if (def?.kind === 'config') mapping.default = this.env(def.name, '');
    const lost: string[] = [];
    for (const [left, right] of step.replacements) {
      const re = stringLiteral(left);
      const by = stringLiteral(right);
      if (re === undefined || by === undefined) {
        lost.push(`${left} → ${right}`);
        continue;
      }
      if (re === '^\\s+|\\s+$' && by === '') {
        mapping.transform = [...((mapping.transform as string[]) ?? []), 'trim'];
        continue;
      }
      const exact = /^\^([A-Za-z0-9 _-]*)\$$/.exec(re);
      if (exact && !mapping.lookup) {
        mapping.lookup = { [exact[1]!]: by };
        mapping.on_missing = 'keep';
        continue;
      }
      if (this.features.textEdits && validPattern(re)) mapping.replace = [...((mapping.replace as unknown[]) ?? []), { pattern: re, with: by }];
      else lost.push(`/${re}/g → "${by}"`);
    }
    const v: Variable = { mapping, origin: location };
    if (lost.length) {
      v.todo = `regex replacement ${lost.join(', ')}`;
      this.todo(['map', variable], location, `mapper variable ${variable}: the regular-expression replacement ${lost.join(', ')} has no equivalent; the value is used without it`);
    }
    this.vars.set(variable, v);
  }

  /** A mapper or builder expression as an hl7c mapping: field, literal, look-up, concatenation. */
  private expressionMapping(expression: string, location: string): Mapping | undefined {
    const parts = splitConcat(expression);
    if (parts.length === 1) return this.operandMapping(operand(parts[0]!), location);
    const concat: unknown[] = [];
    for (const p of parts) {
      const o = operand(p);
      if (o?.kind === 'path' && !unknownPath(o.path, this.hl7Version)) concat.push({ path: o.path });
      else if (o?.kind === 'literal') concat.push(o.value);
      else return undefined;
    }
    return { concat };
  }

  private operandMapping(o: Operand | undefined, location: string): Mapping | undefined {
    if (!o) return undefined;
    if (o.kind === 'path') return unknownPath(o.path, this.hl7Version) ? undefined : { path: o.path };
    if (o.kind === 'literal') return { value: o.value };
    if (o.kind === 'config') return { value: this.env(o.name, '') };
    const known = this.vars.get(o.name) ?? this.passed?.get(o.name);
    if (known?.mapping && typeof known.mapping.identifier === 'string' && known.identifier && !this.vars.has(o.name)) {
      // An identifier found by the channel that handed the message: the same rule here.
      if (!this.identifiers[known.mapping.identifier]) {
        this.identifiers[known.mapping.identifier] = structuredClone(known.identifier);
        for (const m of JSON.stringify(known.identifier).matchAll(/\$\{([A-Z0-9_]+):-([^}]*)\}/g)) if (!this.envUsed.has(m[1]!)) this.envUsed.set(m[1]!, m[2]!);
        if (this.emit) this.note(['identifiers'], `${o.name}: the identifier ${known.origin} (Mirth passed its value as a map variable; hl7c finds it again in the message handed over).`);
      }
    }
    if (known?.mapping) return structuredClone(known.mapping);
    if (known) return undefined;
    // $('NAME') that is no map variable: Mirth looks in the configuration map last.
    return { value: this.env(o.name, '') };
  }

  private builderStep(step: MirthStep, location: string, into: Array<Record<string, unknown>> = this.transform, at: At = ['transform']): void {
    const target = e4xPath(step.target ?? '');
    if (!target || (target.root !== 'msg' && target.root !== 'tmp')) {
      this.todo(at, location, `message builder target \`${step.target}\` is not an HL7 field`, step.mapping);
      return;
    }
    const unknown = unknownPath(target.path, this.hl7Version);
    if (unknown) {
      this.todo(at, location, `message builder ${target.path} = \`${step.mapping}\` (default ${step.defaultValue || 'none'}) is not translated: ${unknown}`);
      return;
    }
    const mapping = this.expressionMapping(step.mapping ?? '', location);
    const def = step.defaultValue ? operand(step.defaultValue) : undefined;
    const defaultText = def?.kind === 'literal' ? def.value : undefined;
    // Mirth replaces in the value before it writes it; hl7c in the field right after the write.
    const replaceSteps: Array<Record<string, unknown>> = [];
    const lost: string[] = [];
    for (const [left, right] of step.replacements) {
      const re = stringLiteral(left);
      const by = stringLiteral(right);
      if (this.features.textEdits && re !== undefined && by !== undefined && validPattern(re)) replaceSteps.push({ replace: { path: target.path, pattern: re, with: by } });
      else lost.push(`${left} → ${right}`);
    }
    if (lost.length) this.todo(at, location, `the builder step's regex replacement${lost.length === 1 ? '' : 's'} ${lost.join(', ')} ${lost.length === 1 ? 'is' : 'are'} not translated`);
    const push = (edit: Record<string, unknown>) => into.push(edit, ...replaceSteps);
    // `field = its own value, default X`: set X only when the field is blank.
    if (mapping?.path === target.path && defaultText !== undefined) {
      push({ set: { path: target.path, value: defaultText }, when: { path: target.path, empty: true } });
      return;
    }
    if (mapping && 'value' in mapping && typeof mapping.value === 'string') {
      let value = mapping.value;
      // `$('NAME')` (configuration map) with a default: ${NAME:-default}.
      if (defaultText !== undefined && /^\$\{[A-Z0-9_]+:-\}$/.test(value)) {
        value = value.replace(/:-\}$/, `:-${defaultText}}`);
        this.envUsed.set(value.slice(2, value.indexOf(':')), defaultText);
      }
      push({ set: { path: target.path, value } });
      return;
    }
    if (mapping?.path && Object.keys(mapping).length === 1) {
      push({ copy: { from: mapping.path, to: target.path } });
      return;
    }
    this.todo(at, location, `message builder ${target.path} = \`${step.mapping}\` is not translated`, step.mapping);
  }

  private scriptStep(step: MirthStep, location: string, jsonIn: boolean): void {
    const script = step.script ?? '';
    const code = codeOnly(script);
    if (jsonIn) {
      for (const name of allPuts(script)) this.vars.set(name, { todo: `set by the script "${step.name}"`, origin: location });
      // channelMap.put('mrn', String(msg.patient.mrn)): a value of the JSON input.
      for (const m of code.matchAll(/channelMap\.put\(\s*'([^']+)'\s*,\s*(.+?)\);/g)) {
        const { inner, transform } = unwrap(m[2]!);
        const json = /^msg\.([\w.]+)$/.exec(inner);
        if (json && transform.length === 0) this.vars.set(m[1]!, { mapping: { json: json[1] }, origin: location });
      }
      this.todo(['build'], location, `the script that builds the HL7 message is translated below where its assignments are plain${this.buildSkipped.length ? `; not translated: ${this.buildSkipped.join(', ')}` : ''}`, script);
      return;
    }
    if (isDeleteZSegments(script)) {
      this.transform.push({ delete_segments: 'Z*' });
      this.note(['transform'], `Mirth step "${step.name}" removed every Z segment (script recognised: delete_segments "Z*").`);
      for (const v of allPuts(script)) this.vars.set(v, { todo: 'set by a script', origin: location });
      return;
    }
    const pick = readIdentifierPick(script);
    if (pick && /^PID-3$/.test(pick.field)) {
      const name = pick.variable.replace(/[^a-z0-9_]/gi, '_').toLowerCase();
      const rule: Record<string, unknown> = { kind: 'patient' };
      if (pick.authority?.config) rule.assigning_authority = this.env(pick.authority.config, pick.authority.literal ?? '');
      else if (pick.authority?.literal) rule.assigning_authority = pick.authority.literal;
      if (pick.typeCode) rule.type_code = pick.typeCode;
      if (pick.required) rule.required = true;
      if (pick.authority?.config && pick.authority.literal) this.envUsed.set(envName(pick.authority.config), pick.authority.literal);
      this.identifiers[name] = rule;
      this.note(['identifiers'], `Mirth step "${step.name}" picked the ${pick.field} repetition with CX.5 = ${pick.typeCode}${pick.authority ? ' and its CX.4' : ''}${pick.required ? ', and threw (AE) when there was none' : ''}: the identifier rule below does the same.`);
      this.vars.set(pick.variable, { mapping: { identifier: name }, identifier: rule, origin: location });
      return;
    }
    if (/^tmp\s*=\s*msg;?$/.test(code)) return;
    const json = this.jsonFromScript(step, location);
    if (json) return;
    const puts = simplePuts(script);
    const lines = code.split('\n');
    const translated: string[] = [];
    if (this.features.mapFormat) {
      for (const [name, d] of datePuts(script)) {
        const format = javaDatePattern(d.pattern);
        if (!format || unknownPath(d.path, this.hl7Version)) continue;
        this.vars.set(name, { mapping: { path: d.path, format }, origin: location });
        translated.push(name);
      }
    }
    for (const [name, from] of emptyAsNullPuts(script)) {
      const mapping = this.operandMapping({ kind: 'lookup', name: from }, location);
      if (!mapping || 'value' in mapping) continue;
      this.vars.set(name, { mapping, origin: location });
      translated.push(name);
    }
    for (const [name, o] of puts) {
      if (translated.includes(name)) continue;
      const mapping = this.operandMapping(o, location);
      if (!mapping) continue;
      this.vars.set(name, { mapping, origin: location });
      translated.push(name);
    }
    // Only puts (and `var x = $('y');` they read): nothing is left untranslated.
    if (translated.length > 0 && lines.every((l) => /^channelMap\.put\(/.test(l) || /^var\s+\w+\s*=\s*\$\(\s*'[^']+'\s*\);$/.test(l)) && translated.length === allPuts(script).length) return;
    const rest = allPuts(script).filter((n) => !translated.includes(n));
    const edited = this.features.textEdits ? this.dateEditSteps(step, script, translated, rest) : undefined;
    if (edited?.complete) return;
    for (const name of rest) this.vars.set(name, { todo: `set by the script "${step.name}"`, origin: location });
    const modifies = /\b(msg|tmp)\s*(\[[^\]]+\])+\s*=[^=]|delete\s+(msg|tmp)/.test(code);
    this.todo(
      modifies ? ['transform'] : ['map'],
      location,
      `JavaScript step "${step.name}" is not translated${rest.length ? ` (it sets ${rest.join(', ')})` : ''}${translated.length ? `; its ${translated.join(', ')} ${translated.length === 1 ? 'is' : 'are'} read as ${translated.map((n) => JSON.stringify(this.vars.get(n)!.mapping)).join(', ')}` : ''}${edited?.paths.length ? `; its edit of ${edited.paths.join(', ')} is translated as reformat_date` : ''}${modifies ? `; it edits the message${edited?.paths.length ? ' in other ways too' : ''}` : ''}`,
      script,
    );
  }

  /**
   * A script's date rewrites of fields in place (`msg[…] = reformat(msg[…], 'yyyyMMddHHmm')` with a
   * helper that ends in DateUtil.convertDate) as reformat_date steps; complete when that and the
   * translated puts are all the script does.
   */
  private dateEditSteps(step: MirthStep, script: string, translated: string[], untranslated: string[]): { paths: string[]; complete: boolean } | undefined {
    const { edits, rest } = dateEdits(script);
    const steps = edits.map((e) => ({ path: e.path, format: javaDatePattern(e.pattern) }));
    if (steps.length === 0 || steps.some((e) => !e.format || unknownPath(e.path, this.hl7Version))) return undefined;
    for (const e of steps) this.transform.push({ reformat_date: { path: e.path, format: e.format! } });
    const paths = steps.map((e) => e.path);
    const complete = rest === '' && untranslated.length === 0;
    if (complete) {
      this.note(['transform'], [
        `Mirth step "${step.name}" rewrote ${paths.join(', ')} in a date pattern (script recognised: reformat_date${translated.length ? `; ${translated.join(', ')} read as ${translated.map((n) => JSON.stringify(this.vars.get(n)!.mapping)).join(', ')}` : ''}).`,
        'Unlike its helper, a date-only value gets no invented time, and a value that is no real date is answered AE instead of passed on.',
      ]);
    }
    return { paths, complete };
  }

  /**
   * A step that builds a JSON object from the message: `msg = { … }` (outbound JSON) or
   * `channelMap.put('x', JSON.stringify(payload))`, with `for each (seg in msg['OBX'])` loops
   * pushing object literals (→ `each: OBX`). Keys whose value is more than a field, literal or
   * look-up become TODOs.
   */
  private jsonFromScript(step: MirthStep, location: string): boolean {
    const script = step.script ?? '';
    const code = codeOnly(script);
    let objectText: string | undefined;
    let target: { kind: 'output' } | { kind: 'variable'; name: string } | undefined;
    const assign = /(?:^|\n)msg\s*=\s*\{/.exec(code);
    if (assign && this.channel.source.transformer.outboundDataType === 'JSON') {
      objectText = balanced(code, code.indexOf('{', assign.index));
      target = { kind: 'output' };
    } else {
      const put = /channelMap\.put\(\s*'([^']+)'\s*,\s*JSON\.stringify\((\w+)\)\s*\)/.exec(code);
      if (put) {
        const decl = new RegExp(String.raw`var\s+${put[2]}\s*=\s*\{`).exec(code);
        if (decl) objectText = balanced(code, code.indexOf('{', decl.index));
        target = { kind: 'variable', name: put[1]! };
      }
    }
    if (!objectText || !target) return false;
    const locals = this.localsOf(code);
    this.tables = lookupTables(code);
    const skipped: string[] = [];
    const object = this.objectMapping(objectText, '', locals, skipped);
    if (!object) return false;
    for (const name of allPuts(script)) if (target.kind !== 'variable' || name !== target.name) this.vars.set(name, { todo: `set by the script "${step.name}"`, origin: location });
    if (target.kind === 'output') this.outputJson = object;
    else this.vars.set(target.name, { object, origin: location });
    const at: At = target.kind === 'output' ? ['map'] : ['map'];
    this.todo(
      at,
      location,
      `JavaScript step "${step.name}" builds JSON; translated${target.kind === 'variable' ? ` as ${target.name}` : ' as the channel map'} key by key.${skipped.length ? ` Not translated: ${skipped.join(', ')}.` : ''}${allPuts(script).filter((n) => target.kind !== 'variable' || n !== target.name).length ? ` It also sets ${allPuts(script).filter((n) => target.kind !== 'variable' || n !== target.name).join(', ')} (not translated).` : ''}`,
      script,
    );
    return true;
  }

  /** `var x = <simple>;` and `for each (seg in msg['OBX']) { … arr.push(obj) … }` in a script. */
  private localsOf(code: string): Map<string, Mapping | { each: string; objectText: string; loopVar: string }> {
    const locals = new Map<string, Mapping | { each: string; objectText: string; loopVar: string }>();
    const pushedBy = new Set<string>();
    for (const m of code.matchAll(/for\s+each\s*\(\s*(?:var\s+)?(\w+)\s+in\s+(msg\[[^)]*\])\s*\)\s*\{/g)) {
      const seg = e4xPath(m[2]!);
      const body = balanced(code, m.index + m[0].length - 1);
      if (!seg || !body) continue;
      const push = /(\w+)\.push\(\s*(\w+|\{)/.exec(body);
      if (!push) continue;
      let objectText: string | undefined;
      if (push[2] === '{') objectText = balanced(body, body.indexOf('{', push.index));
      else {
        const decl = new RegExp(String.raw`var\s+${push[2]}\s*=\s*\{`).exec(body);
        if (decl) objectText = balanced(body, body.indexOf('{', decl.index));
      }
      // Two loops filling one array (providers, then locations) have no single `each`.
      if (pushedBy.has(push[1]!)) locals.delete(push[1]!);
      else if (objectText) locals.set(push[1]!, { each: seg.path, objectText, loopVar: m[1]! });
      pushedBy.add(push[1]!);
      for (const v of body.matchAll(/var\s+(\w+)\s*=\s*([^;{\n]+);/g)) {
        const o = operand(v[2]!);
        if (o?.kind === 'path') locals.set(v[1]!, { path: o.path });
      }
    }
    for (const v of code.matchAll(/(?:^|\n)var\s+(\w+)\s*=\s*([^;{\n]+);/g)) {
      if (locals.has(v[1]!)) continue;
      const o = operand(v[2]!);
      if (o?.kind === 'path' || (o === undefined && /^msg\[/.test(v[2]!.trim()))) {
        const p = e4xPath(v[2]!.trim());
        if (p) locals.set(v[1]!, { path: p.path });
      }
    }
    return locals;
  }

  private objectMapping(objectText: string, prefix: string, locals: Map<string, Mapping | { each: string; objectText: string; loopVar: string }>, skipped: string[], inEach = false): Record<string, Mapping> | undefined {
    const entries = objectLiteral(objectText);
    if (!entries) return undefined;
    const out: Record<string, Mapping> = {};
    for (const [key, value] of entries) {
      const name = prefix ? `${prefix}.${key}` : key;
      if (value.startsWith('{')) {
        const nested = this.objectMapping(value, name, locals, skipped, inEach);
        if (nested) Object.assign(out, inEach ? prefixKeys(nested, key) : nested);
        else skipped.push(name);
        continue;
      }
      const local = locals.get(value);
      if (local && 'objectText' in local) {
        const fields = this.objectMapping(local.objectText as string, '', locals, skipped, true);
        if (fields) out[name] = { each: (local.each as string).replace(/\[\d+\]$/, ''), fields };
        else skipped.push(name);
        continue;
      }
      // statusByEvent[String($('eventCode'))] || 'unknown': a lookup table.
      const lookup = /^(\w+)\[([\s\S]+)\](?:\s*\|\|\s*(['"][^'"]*['"]))?$/.exec(value);
      if (lookup && this.tables.has(lookup[1]!)) {
        const { inner: key } = unwrap(lookup[2]!);
        const keyMapping = this.operandMapping(operand(key), name);
        if (keyMapping && typeof keyMapping.path === 'string' && Object.keys(keyMapping).length === 1) {
          const m: Mapping = { path: keyMapping.path, lookup: this.tables.get(lookup[1]!) };
          const fallback = lookup[3] ? stringLiteral(lookup[3]) : undefined;
          if (fallback !== undefined) Object.assign(m, { on_missing: 'default', default: fallback });
          else m.on_missing = 'null';
          out[name] = m;
          continue;
        }
      }
      const { inner, transform } = unwrap(value);
      let mapping: Mapping | undefined;
      const l = locals.get(inner);
      if (l && !('objectText' in l)) mapping = structuredClone(l as Mapping);
      else {
        // `obr['OBR.4']['OBR.4.1']` where obr is a local alias of msg['OBR'][0]
        const aliased = /^(\w+)(\[.*)$/.exec(inner);
        const alias = aliased ? locals.get(aliased[1]!) : undefined;
        const o = alias && !('objectText' in alias) ? operand(`msg${aliased![2]}`) : operand(inner);
        mapping = this.operandMapping(o, name);
      }
      if (!mapping) {
        skipped.push(`${name} (\`${value.length > 60 ? value.slice(0, 57) + '…' : value}\`)`);
        continue;
      }
      if (transform.length) mapping.transform = [...((mapping.transform as string[]) ?? []), ...transform];
      out[name] = mapping;
    }
    return out;
  }

  /** JSON in, HL7 out: `build:` from the outbound template, then the script's plain assignments. */
  private buildFromTemplate(): void {
    const tpl = this.channel.source.transformer.outboundTemplate;
    if (!tpl || this.channel.source.transformer.outboundDataType !== 'HL7V2') return;
    let message;
    try {
      message = parseMessage(tpl.replace(/\r?\n/g, '\r'));
    } catch {
      return;
    }
    const get = (p: string) => String(message.get(p) ?? '');
    const type = [get('MSH-9.1'), get('MSH-9.2'), get('MSH-9.3')].filter(Boolean).join('^');
    const build: Record<string, unknown> = { message_type: type, version: get('MSH-12') || '2.5.1' };
    for (const [key, path] of [
      ['sending_application', 'MSH-3'],
      ['sending_facility', 'MSH-4'],
      ['receiving_application', 'MSH-5'],
      ['receiving_facility', 'MSH-6'],
    ] as const)
      if (get(path)) build[key] = get(path);
    if (['P', 'T', 'D'].includes(get('MSH-11'))) build.processing_id = get('MSH-11');
    // Field values from the script: tmp['PID']['PID.3']['PID.3.1'] = msg.patient.mrn;
    const script = this.channel.source.transformer.steps.filter((s) => s.kind === 'javascript' && s.enabled).map((s) => s.script ?? '').join('\n');
    const code = codeOnly(script);
    const assigned = new Map<string, unknown>();
    const locals = new Map<string, unknown>();
    for (const m of code.matchAll(/(?:^|\n)var\s+(\w+)\s*=\s*([^;\n]+);/g)) locals.set(m[1]!, this.jsonValue(m[2]!, locals, undefined));
    for (const m of code.matchAll(/(?:^|\n)tmp((?:\[[^\]]+\])+)\s*=\s*([^;\n]+);/g)) {
      const p = e4xPath(`tmp${m[1]}`);
      if (!p) continue;
      const value = this.jsonValue(m[2]!, locals, undefined);
      assigned.set(p.path, value);
      if (value === undefined) this.buildSkipped.push(/^MSH-(7|10)(\.|$)/.test(p.path) ? `${p.path} (hl7c sets it for each message)` : `${p.path} = \`${m[2]!.trim()}\``);
    }
    const deleted = new Set([...code.matchAll(/delete\s+tmp\[\s*'([A-Z][A-Z0-9]{2})'\s*\]/g)].map((m) => m[1]!));
    const loop = /for\s*\(\s*var\s+(\w+)\s*=\s*0\s*;\s*\1\s*<\s*msg\.([\w.]+)\.length\s*;[^)]*\)\s*\{/.exec(code);
    const segments: unknown[] = [];
    for (const seg of message.segments.slice(1)) {
      if (deleted.has(seg.name)) continue;
      segments.push({ segment: seg.name, fields: this.templateFields(message, seg.name, assigned) });
    }
    if (loop) {
      const body = balanced(code, loop.index + loop[0].length - 1) ?? '';
      const created = /var\s+(\w+)\s*=\s*createSegment\(\s*'([A-Z][A-Z0-9]{2})'/.exec(body);
      const item = new RegExp(String.raw`var\s+(\w+)\s*=\s*msg\.${loop[2]!.replace(/\./g, '\\.')}\[${loop[1]}\]`).exec(body)?.[1];
      if (created) {
        const fields: Record<string, unknown> = {};
        const inner = new Map(locals);
        for (const m of body.matchAll(new RegExp(String.raw`${created[1]}((?:\[[^\]]+\])+)\s*=\s*([^;\n]+);`, 'g'))) {
          const p = e4xPath(`x${m[1]}`);
          if (!p) continue;
          const v = this.jsonValue(m[2]!, inner, { item, index: loop[1]! });
          if (v !== undefined) fields[p.path] = v;
          else this.buildSkipped.push(`${p.path} = \`${m[2]!.trim()}\``);
        }
        segments.push({ each: loop[2], segments: [{ segment: created[2], fields: inHl7Order(fields) }] });
      }
    }
    build.segments = segments.length ? segments : [{ segment: 'PID', fields: {} }];
    this.spec.build = build;
    this.note(['build'], 'From the channel\'s outbound template (the skeleton message) and the script\'s plain assignments. MSH-7 and MSH-10 are new for each message.');
  }

  private templateFields(message: ReturnType<typeof parseMessage>, name: string, assigned: Map<string, unknown>): Record<string, unknown> {
    const fields: Record<string, unknown> = {};
    const segment = message.segments.find((s) => s.name === name)!;
    const raw = segment.toString().split(message.delimiters.field).slice(1);
    raw.forEach((value, i) => {
      const n = i + 1;
      const components = value.split(message.delimiters.component);
      components.forEach((c, j) => {
        const path = components.length > 1 ? `${name}-${n}.${j + 1}` : `${name}-${n}`;
        if (assigned.has(path) || assigned.has(`${name}-${n}.1`) && j === 0) return;
        if (c !== '') fields[path] = c;
      });
    });
    for (const [path, v] of assigned) if (path.startsWith(`${name}-`) && v !== undefined && !/^MSH-(7|10)/.test(path)) fields[path] = v;
    return inHl7Order(fields);
  }

  /** A right-hand side in a JSON → HL7 script as a build value, or undefined (left out, TODO above). */
  private jsonValue(expression: string, locals: Map<string, unknown>, loop: { item?: string; index: string } | undefined): unknown {
    let t = expression.trim();
    const ternary = /^msg\.([\w.]+)\s*\?\s*(.+?)\s*:\s*''$/.exec(t);
    if (ternary) t = ternary[2]!;
    const lit = stringLiteral(t);
    if (lit !== undefined) return lit;
    if (loop && new RegExp(String.raw`^String\(\s*${loop.index}\s*\+\s*1\s*\)$`).test(t)) return { index: true };
    const { inner, transform } = unwrap(t);
    const json = (p: string, root: boolean) => ({ json: root && loop ? `$.${p}` : p, ...(transform.length ? { transform: transform.filter((x) => x !== 'number') } : {}) });
    let m = /^msg\.([\w.]+?)(?:\s*\|\|\s*'')?$/.exec(inner);
    if (m) return clean(json(m[1]!, true));
    if (loop?.item) {
      m = new RegExp(String.raw`^${loop.item}\.([\w.]+?)(?:\s*\|\|\s*'')?$`).exec(inner);
      if (m) return clean(json(m[1]!, false));
    }
    const call = /^(\w+)\(msg\.([\w.]+)\)$/.exec(inner);
    if (call && /iso.*hl7|hl7.*date|toHL7/i.test(call[1]!)) {
      const template = this.channel.codeTemplates.find((t) => t.name === call[1]);
      const note = `${call[1]}() ${template ? `(code template in library "${template.library}")` : '(defined in no step or exported library)'} is read as transform hl7_datetime: check it does the same`;
      if (!this.buildSkipped.includes(note)) this.buildSkipped.push(note);
      return { json: loop ? `$.${call[2]}` : call[2], transform: ['hl7_datetime'] };
    }
    if (locals.has(inner)) {
      const v = locals.get(inner);
      if (v && typeof v === 'object' && 'json' in (v as object) && loop && !(v as { json: string }).json.startsWith('$.')) return { ...(v as object), json: `$.${(v as { json: string }).json}` };
      return v;
    }
    return undefined;
  }

  // ---------------------------------------------------------------- filters

  private sourceFilter(): void {
    const rules = this.channel.source.filter.filter((r) => r.enabled);
    if (rules.length === 0) return;
    const reason = this.rejectedText();
    const accept: Array<Record<string, unknown>> = [];
    const groups = orGroups(rules);
    const otherwise = this.ackStyle === 'before' || this.ackStyle === 'none' ? 'filter' : this.features.filterAck ? 'filter' : 'reject';
    const ack = this.ackStyle === 'before' || this.ackStyle === 'none' ? undefined : this.features.filterAck ? 'AR' : undefined;
    const add = (rule: string, condition: unknown) => {
      const entry: Record<string, unknown> = { rule, if: condition, otherwise };
      if (ack) entry.ack = ack;
      if (otherwise === 'reject' && reason) entry.reason = reason;
      else if (ack && reason) entry.reason = reason;
      accept.push(entry);
    };
    if (groups.length === 1) {
      groups[0]!.forEach((r) => {
        const location = `source filter › rule ${r.sequence} "${r.name}"`;
        const c = this.ruleCondition(r, location, ['accept', accept.length]);
        add(ruleName(r, c), c ?? { path: 'MSH-9', exists: true });
      });
    } else {
      const any = groups.map((g) => ({ all: g.map((r) => this.ruleCondition(r, `source filter › rule ${r.sequence} "${r.name}"`, ['accept', 0]) ?? { path: 'MSH-9', exists: true }) }));
      add('mirth-filter', { any });
    }
    this.spec.accept = accept;
    if (this.ackStyle === 'after' && !this.features.filterAck)
      this.note(['accept'], 'Mirth answers a filtered message AR (its source filter runs before the auto-ACK): `otherwise: reject` gives the same AR (hl7c records it as rejected, Mirth as filtered).');
    else if (this.ackStyle === 'after') this.note(['accept'], 'Mirth answers a filtered message AR (its source filter runs before the auto-ACK).');
  }

  /** MSA-3 text Mirth sent with AR (the source's response generation settings). */
  private rejectedText(): string | undefined {
    const t = this.channel.source.transformer.rejectedAckText;
    return t && t !== 'Message Rejected.' ? t : undefined;
  }

  /** A filter rule as an hl7c condition, or undefined (a TODO is written; the rule then accepts everything). */
  private ruleCondition(rule: MirthRule, location: string, at: At): unknown {
    if (rule.kind === 'rule_builder') {
      const o = operand(rule.field ?? '');
      const path = this.conditionPath(o);
      const values = rule.values.map((v) => operand(v)).map((v) => (v?.kind === 'literal' ? v.value : v?.kind === 'config' ? this.env(v.name, '') : undefined));
      if (!path || values.some((v) => v === undefined)) {
        this.todo(at, location, `filter rule "${rule.name}" reads \`${rule.field}\`, which is not a field or a variable with one; placeholder: a condition that always holds`);
        return undefined;
      }
      const vs = values as string[];
      switch (rule.condition) {
        case 'EQUALS':
          return vs.length === 1 ? { path, equals: vs[0] } : { path, in: vs };
        case 'NOT_EQUAL':
          return { not: vs.length === 1 ? { path, equals: vs[0] } : { path, in: vs } };
        case 'CONTAINS':
          return { path, matches: vs.map(escapeRegex).join('|') };
        case 'NOT_CONTAIN':
          return { not: { path, matches: vs.map(escapeRegex).join('|') } };
        case 'EXISTS':
          return { path, empty: false };
        case 'NOT_EXIST':
          return { path, empty: true };
        case 'REGEX':
          return { path, matches: vs.join('|') };
        default:
          this.todo(at, location, `filter rule condition ${rule.condition} is not translated; placeholder: always holds`);
          return undefined;
      }
    }
    if (rule.kind === 'javascript') {
      const read = readFilterScript(rule.script ?? '');
      const c = read ? this.scriptCondition(read) : undefined;
      if (c) return c;
      this.todo(at, location, `JavaScript filter rule "${rule.name}" is not a plain comparison; placeholder: a condition that always holds`, rule.script);
      return undefined;
    }
    this.todo(at, location, `filter rule of type ${rule.className.split('.').pop()} is not translated; placeholder: always holds`);
    return undefined;
  }

  private conditionPath(o: Operand | undefined): string | undefined {
    if (!o) return undefined;
    if (o.kind === 'path') return unknownPath(o.path, this.hl7Version) ? undefined : o.path;
    if (o.kind === 'lookup') {
      const v = this.vars.get(o.name) ?? this.passed?.get(o.name);
      const m = v?.mapping;
      if (m && typeof m.path === 'string' && Object.keys(m).every((k) => k === 'path')) return m.path;
    }
    return undefined;
  }

  private scriptCondition(c: ScriptCondition): unknown {
    const path = this.conditionPath(c.operand);
    if (!path) return undefined;
    const fold = (s: string) => (c.upper ? s.replace(/[A-Za-z]/g, (ch) => `[${ch.toUpperCase()}${ch.toLowerCase()}]`) : s);
    let cond: unknown;
    if (c.test === 'in') {
      if (c.upper && c.values.some((v) => /[a-z]/i.test(v))) cond = { path, matches: `^(${c.values.map((v) => fold(escapeRegex(v))).join('|')})$` };
      else cond = c.values.length === 1 ? { path, equals: c.values[0] } : { path, in: c.values };
    } else cond = { path, matches: `^${fold(escapeRegex(c.value))}` };
    return c.negate ? { not: cond } : cond;
  }

  // ---------------------------------------------------------------- destinations

  /** The spec's key for each Mirth destination (by metaDataId), disabled ones included so names stay stable. */
  private destinationKeys(): Map<number, string> {
    const keys = new Map<number, string>();
    const used = new Set<string>();
    for (const d of this.channel.destinations) {
      let name = slug(d.name, 'destination').replace(/-+/g, '_').replace(/_+$/, '') || `d${d.metaDataId}`;
      while (used.has(name)) name = `${name}_${d.metaDataId}`;
      used.add(name);
      keys.set(d.metaDataId, name);
    }
    return keys;
  }

  private destinations(): void {
    const destinations: Record<string, Record<string, unknown>> = {};
    const keys = this.destinationKeys();
    this.spec.destinations = destinations;
    for (const d of this.channel.destinations) {
      const name = keys.get(d.metaDataId)!;
      const at: At = ['destinations', name];
      const location = this.where(d);
      if (!d.enabled) {
        this.note(['destinations'], `Mirth destination ${d.metaDataId} "${d.name}" (${d.transportName}) is disabled: not imported.`);
        continue;
      }
      const out = this.destination(d, name, at, location);
      if (!out) continue;
      this.queue(d, out, at, location);
      const filter = d.filter.filter((r) => r.enabled);
      if (filter.length) {
        const groups = orGroups(filter);
        const conditions = groups.map((g) => g.map((r) => this.ruleCondition(r, `${location} › filter rule ${r.sequence} "${r.name}"`, at)));
        const flat = conditions.map((g) => g.filter((c) => c !== undefined));
        const cond = flat.length === 1 ? (flat[0]!.length === 1 ? flat[0]![0] : flat[0]!.length ? { all: flat[0] } : undefined) : { any: flat.map((g) => ({ all: g })) };
        if (cond) out.when = cond;
      }
      this.destinationSteps(d, out, at, location);
      for (const s of d.responseTransformer?.steps.filter((x) => x.enabled) ?? []) this.responseStep(s, out, at, `${location} › response transformer › step ${s.sequence} "${s.name}"`);
      if (!d.waitForPrevious) this.note(at, 'Mirth ran this destination in parallel with the one before it (waitForPrevious=false); hl7c queues each destination on its own anyway.');
      destinations[name] = out;
    }
    if (Object.keys(destinations).length === 0) delete this.spec.destinations;
  }

  private destination(d: MirthConnector, name: string, at: At, location: string): Record<string, unknown> | undefined {
    switch (d.transportName) {
      case 'TCP Sender': {
        const mode = prop(d, 'transmissionModeProperties', 'pluginPointName') || 'MLLP';
        if (mode !== 'MLLP') this.todo(at, location, `the TCP Sender uses ${mode} framing; hl7c sends MLLP`);
        const mllp: Record<string, unknown> = { host: this.config(prop(d, 'remoteAddress'), '127.0.0.1'), port: this.portValue(prop(d, 'remotePort')) };
        if (prop(d, 'destinationConnectorProperties', 'validateResponse') === 'true' && prop(d, 'destinationConnectorProperties', 'queueEnabled') === 'true') {
          mllp.on_ae = 'retry';
          mllp.on_ar = 'retry';
          this.note(at, 'Mirth validated the response (AE/AR kept the message queued and retried it): on_ae/on_ar retry.');
        }
        this.template(d, prop(d, 'template'), at, location, 'hl7');
        return { mllp };
      }
      case 'File Writer': {
        const scheme = prop(d, 'scheme') || 'FILE';
        if (scheme !== 'FILE') this.todo(at, location, `the File Writer writes over ${scheme}; hl7c writes a local directory`);
        const file: Record<string, unknown> = { dir: this.config(prop(d, 'host'), `./out/${name}`) };
        const pattern = prop(d, 'outputPattern');
        if (pattern) file.file_name = this.fileName(pattern, at, location);
        if (prop(d, 'outputAppend') === 'true') {
          if (this.features.fileAppend) file.append = true;
          else this.todo(at, location, 'Mirth appends to the file; hl7c writes a new file per message until `append: true` lands');
        } else if (prop(d, 'errorOnExists') === 'true') file.on_exists = 'fail';
        else this.note(at, 'Mirth overwrote a file of the same name; hl7c never overwrites: it writes name-2.ext (on_exists: suffix).');
        const out: Record<string, unknown> = { file };
        const template = prop(d, 'template');
        if (template.trim() === '${message.rawData}') file.content = 'raw';
        else this.template(d, template, at, location, 'text', out);
        return out;
      }
      case 'Channel Writer': {
        const id = prop(d, 'channelId');
        const target = this.run!.names.get(id);
        const vars = asArray(child(d.properties, 'mapVariables')?.string).map(text);
        if (!target) {
          this.todo(['destinations'], location, `Channel Writer to channel id ${id}, which is not in this import: import that channel too (with this one) and hand to it with \`channel: <its name>\`; the destination is left out`);
          return undefined;
        }
        if (vars.length) this.note(at, `Mirth passed the map variables ${vars.join(', ')}; hl7c hands the message, and ${target} derives them from it again (see there).`);
        this.template(d, prop(d, 'channelTemplate'), at, location, 'hl7');
        return { channel: target };
      }
      case 'HTTP Sender': {
        const method = (prop(d, 'method') || 'post').toUpperCase();
        const http: Record<string, unknown> = { url: this.config(prop(d, 'host'), `http://127.0.0.1:8080/${name}`) };
        if (!/^https?:\/\//.test(String(http.url)) && !String(http.url).startsWith('${')) http.url = `http://${http.url}`;
        if (method !== 'POST') {
          if (['PUT', 'PATCH'].includes(method) || (this.features.httpMethods && ['GET', 'DELETE'].includes(method))) http.method = method;
          else this.todo(at, location, `Mirth sends ${method}; hl7c sends POST until GET/DELETE land`);
        }
        const headers: Record<string, string> = {};
        for (const e of asArray(child(d.properties, 'headers')?.entry).filter(isNode)) {
          const key = text(asArray(e.string)[0]);
          const values = asArray(child(e, 'list')?.string ?? asArray(e.string).slice(1)).map(text);
          const value = values.join(', ');
          headers[key] = this.headerValue(key, value, at, location);
        }
        if (prop(d, 'useAuthentication') === 'true') {
          headers.Authorization = `Basic ${this.env(`${envName(this.spec.channel as string)}_${envName(name)}_BASIC`, '')}`;
          this.todo(at, location, `Mirth sent ${prop(d, 'authenticationType')} authentication (credentials not copied); set the header value (base64 of user:password) in the environment`);
        }
        for (const e of asArray(child(d.properties, 'parameters')?.entry).filter(isNode)) this.todo(at, location, `query parameter ${text(asArray(e.string)[0])} is not translated`);
        if (Object.keys(headers).length) http.headers = headers;
        const timeout = Number(prop(d, 'socketTimeout'));
        if (timeout > 0) http.timeout_ms = timeout;
        const out: Record<string, unknown> = { http };
        this.template(d, prop(d, 'content'), at, location, 'json', out);
        return out;
      }
      case 'Database Writer':
        return this.database(d, name, at, location);
      case 'SMTP Sender':
        return this.smtp(d, at, location);
      default:
        this.todo(['destinations'], location, `hl7c has no ${d.transportName} destination; left out`, prop(d, 'script') || undefined);
        return undefined;
    }
  }

  private portValue(value: string): string | number {
    if (/^\d+$/.test(value.trim())) return Number(value);
    return this.config(value, '2575');
  }

  private headerValue(key: string, value: string, at: At, location: string): string {
    const secret = /authorization|api[-_]?key|token|secret|password/i.test(key);
    let out = value.replace(/\$\{([^}]+)\}/g, (m, name: string) => {
      if (this.vars.has(name) || BUILT_INS.has(name)) {
        const path = this.templatePath(name);
        if (path && this.features.httpMethods) return `{{${path}}}`;
        this.todo(at, location, `header ${key} carries the message value \${${name}}; headers from the message are not in the spec language yet`);
        return '';
      }
      return this.env(name, '');
    });
    // A literal credential in a header is never copied.
    if (secret && !/\$\{/.test(out)) out = this.env(`${envName(this.spec.channel as string)}_${envName(key)}`, '');
    return out;
  }

  /** Mirth's file name template → hl7c's `{message_id}`, `{control_id}`, `{channel}` and `{{PATH}}` forms. */
  private fileName(pattern: string, at: At, location: string): string {
    return pattern.replace(/\$\{([^}]+)\}/g, (_m, name: string) => {
      if (name === 'message.messageId') return '{message_id}';
      if (name === 'channelName') return '{channel}';
      if (name === 'originalFilename') {
        this.todo(at, location, 'the file name used the original file name; hl7c uses the message id');
        return '{message_id}';
      }
      const path = this.templatePath(name);
      if (path && this.features.fileAppend) return `{{${path}}}`;
      if (path) {
        this.todo(at, location, `the file name used \${${name}} (${path}); file names from message fields land with templates: placeholder {control_id}`);
        return '{control_id}';
      }
      if (this.vars.has(name)) {
        this.todo(at, location, `the file name used \${${name}}, which has no field reading; placeholder {control_id}`);
        return '{control_id}';
      }
      return this.env(name, '');
    });
  }

  /** What a `{{…}}` placeholder reads for a variable that is a plain field (`PID-3.1`) or JSON input value (`$.patient.mrn`). */
  private templatePath(name: string): string | undefined {
    const v = this.vars.get(name) ?? this.passed?.get(name);
    const m = v?.mapping;
    if (m && typeof m.path === 'string') return m.path;
    if (m && typeof m.json === 'string' && Object.keys(m).length === 1) return `$.${m.json}`;
    return undefined;
  }

  /** A connector's content template: the channel's output, or a text template, or a JSON variable. */
  private template(d: MirthConnector, template: string, at: At, location: string, kind: 'hl7' | 'json' | 'text', out?: Record<string, unknown>): void {
    const t = template.trim();
    if (t === '' || t === '${message.encodedData}' || t === '${message.transformedData}') return;
    if (t === '${message.rawData}') {
      this.todo(at, location, 'Mirth sent the raw message here; hl7c sends the channel\'s output');
      return;
    }
    const single = /^\$\{([^}]+)\}$/.exec(t);
    if (single && out) {
      const v = this.vars.get(single[1]!);
      if (v?.object) {
        if (this.features.destinationMap) out.map = v.object;
        else this.todo(at, location, `Mirth sent the JSON ${single[1]} here; per-destination \`map\` is not in the spec language yet, so this destination gets the channel's output`);
        return;
      }
      if (v) {
        this.todo(at, location, `Mirth sent the variable ${single[1]} here (${v.todo ?? 'set by a script'}); placeholder: the channel's output`);
        return;
      }
    }
    if (out && this.features.destinationBody) {
      out.body = this.bodyTemplate(template, at, location);
      return;
    }
    this.todo(at, location, `the content template is not translated (${kind === 'text' ? 'text templates' : 'templates'} land with per-destination body); placeholder: the channel's output`, template);
  }

  /** A Mirth `${…}` text template as an hl7c `{{…}}` template. */
  private bodyTemplate(template: string, at: At, location: string): string {
    const lost: string[] = [];
    const out = template.replace(/\$\{([^}]+)\}/g, (_m, name: string) => {
      if (name === 'channelName') return '{{channel}}';
      if (name === 'message.encodedData' || name === 'message.transformedData') {
        lost.push(name);
        return '';
      }
      const v = this.vars.get(name) ?? this.passed?.get(name);
      if (v) {
        const path = this.templatePath(name);
        if (path && Object.keys(v.mapping!).length === 1) return `{{${path}}}`;
        const concat = v.mapping?.concat as Array<string | { path: string }> | undefined;
        if (concat && Object.keys(v.mapping!).length === 1) return concat.map((c) => (typeof c === 'string' ? c : `{{${c.path}}}`)).join('');
        if (path) {
          lost.push(`${name} (read as {{${path}}} without its ${Object.keys(v.mapping!).filter((k) => k !== 'path').join(', ')})`);
          return `{{${path}}}`;
        }
        lost.push(`${name} (${v.todo ?? 'no field reading'})`);
        return '';
      }
      if (BUILT_INS.has(name)) {
        lost.push(name);
        return '';
      }
      return this.env(name, '');
    });
    if (lost.length) this.todo(at, location, `the template's ${lost.join(', ')} ${lost.length === 1 ? 'is' : 'are'} not translated (rendered empty)`);
    return out;
  }

  private database(d: MirthConnector, name: string, at: At, location: string): Record<string, unknown> | undefined {
    const driver = prop(d, 'driver');
    const jdbc = prop(d, 'url');
    const m = /^jdbc:(postgresql|mysql|mariadb):\/\/([^/?]+)\/([^?]*)/.exec(jdbc);
    if (prop(d, 'useScript') === 'true' || !m) {
      this.todo(['destinations'], location, prop(d, 'useScript') === 'true' ? 'the Database Writer runs a JavaScript script; left out' : `the Database Writer's driver ${driver} (${jdbc}) is not PostgreSQL or MySQL; left out`, prop(d, 'query') || undefined);
      return undefined;
    }
    const scheme = m[1] === 'postgresql' ? 'postgres' : 'mysql';
    const user = this.credential(prop(d, 'username'), `${envName(this.spec.channel as string)}_DB_USER`);
    const password = this.credential(prop(d, 'password'), `${envName(this.spec.channel as string)}_DB_PASSWORD`);
    const url = `${scheme}://${user}:${password}@${this.config(m[2]!, '127.0.0.1')}/${this.config(m[3]!, scheme)}`;
    const params: Mapping[] = [];
    const lost: string[] = [];
    const statement = prop(d, 'query').replace(/\$\{([^}]+)\}/g, (_m, v: string) => {
      let mapping: Mapping | undefined;
      if (v === 'message.messageId') {
        mapping = { path: 'MSH-10' };
        lost.push(`\${message.messageId} (Mirth's message id) is bound to MSH-10 (the control id)`);
      } else {
        const known = this.vars.get(v) ?? this.passed?.get(v);
        if (known?.mapping) mapping = structuredClone(known.mapping);
        else {
          mapping = { value: null };
          lost.push(`\${${v}} (${known?.todo ?? 'unknown variable'}) is bound to NULL`);
        }
      }
      params.push(mapping);
      return `$${params.length}`;
    });
    if (!this.features.database) {
      this.todo(['destinations'], location, `Database Writer (${scheme}) left out until the database destination lands: statement and parameters below`, statement + '\n' + params.map((p, i) => `$${i + 1} = ${JSON.stringify(p)}`).join('\n'));
      return undefined;
    }
    if (lost.length) this.todo(at, location, lost.join('; '));
    const extra = /\?(.*)$/.exec(jdbc)?.[1];
    if (extra) this.note(at, `JDBC options ${extra} are not carried over${/stringtype=unspecified/.test(extra) ? ' (PostgreSQL casts the text parameters itself: write ::date where a column needs it)' : ''}.`);
    return { database: { url, statement, params } };
  }

  /** A response transformer step: an HTTP status counted as delivered, a log line (noted), else a TODO. */
  private responseStep(s: MirthStep, out: Record<string, unknown>, at: At, location: string): void {
    const kind = Object.keys(out).find((k) => ['mllp', 'http', 'file', 'channel', 'database', 'smtp'].includes(k)) ?? '';
    const read = s.kind === 'javascript' ? responseScript(s.script ?? '') : undefined;
    if (read && 'delivered' in read && kind === 'http' && this.features.deliveredStatus) {
      const http = out.http as Record<string, unknown>;
      http.delivered_status = [...new Set([...((http.delivered_status as number[] | undefined) ?? []), ...read.delivered])];
      this.note(at, `Mirth's response transformer "${s.name}" counted HTTP ${read.delivered.join(', ')} as sent: delivered_status (its status message is not kept; the attempt's detail says it).`);
      return;
    }
    if (read && 'logsOnly' in read) {
      this.note(at, `Mirth's response transformer "${s.name}" only wrote the answer to Mirth's log: hl7c keeps each answer in the message's history (hl7c messages show), and ${kind === 'mllp' ? 'on_ae/on_ar decide what an AE or AR means' : 'the answer decides the attempt'}.`);
      return;
    }
    this.todo(at, location, `response transformer step "${s.name}" is not translated (hl7c decides success from the ${kind} answer itself)`, s.script);
  }

  private smtp(d: MirthConnector, at: At, location: string): Record<string, unknown> | undefined {
    const smtp: Record<string, unknown> = { host: this.config(prop(d, 'smtpHost'), '127.0.0.1'), port: this.portValue(prop(d, 'smtpPort') || '25') };
    if (typeof smtp.port === 'string') smtp.port = this.config(prop(d, 'smtpPort'), '25');
    const encryption = prop(d, 'encryption');
    smtp.secure = encryption === 'SSL';
    if (prop(d, 'authentication') === 'true') {
      smtp.user = this.credential(prop(d, 'username'), `${envName(this.spec.channel as string)}_SMTP_USER`);
      smtp.password = this.credential(prop(d, 'password'), `${envName(this.spec.channel as string)}_SMTP_PASSWORD`);
    }
    smtp.from = this.config(prop(d, 'from'), 'hl7c@localhost');
    smtp.to = this.config(prop(d, 'to'), 'root@localhost');
    if (prop(d, 'cc')) smtp.cc = this.config(prop(d, 'cc'), '');
    if (prop(d, 'replyTo')) smtp.reply_to = this.config(prop(d, 'replyTo'), '');
    const headers: Record<string, string> = {};
    for (const e of asArray(child(d.properties, 'headers')?.entry).filter(isNode)) {
      const [k, v] = asArray(e.string).map(text);
      headers[k!] = v ?? '';
    }
    if (Object.keys(headers).length) smtp.headers = headers;
    smtp.subject = this.bodyTemplate(prop(d, 'subject'), at, location);
    smtp.body = this.bodyTemplate(prop(d, 'body'), at, location);
    const timeout = Number(prop(d, 'timeout'));
    if (timeout > 0) smtp.timeout_ms = timeout;
    if (prop(d, 'html') === 'true') this.todo(at, location, 'Mirth sent the body as HTML; hl7c sends text');
    if (!this.features.smtp) {
      this.todo(['destinations'], location, `SMTP Sender "${d.name}" left out until the SMTP destination lands: host ${prop(d, 'smtpHost')}, to ${prop(d, 'to')}, subject and body below`, `subject: ${prop(d, 'subject')}\n${prop(d, 'body')}`);
      return undefined;
    }
    if (encryption === 'TLS') this.note(at, 'Mirth used STARTTLS: secure: false upgrades with STARTTLS when the server offers it.');
    return { smtp };
  }

  /** Queue and retry: Mirth's queue retries until it succeeds; without it, retryCount inline retries. */
  private queue(d: MirthConnector, out: Record<string, unknown>, at: At, location: string): void {
    const queued = prop(d, 'destinationConnectorProperties', 'queueEnabled') === 'true';
    const sendFirst = prop(d, 'destinationConnectorProperties', 'sendFirst') === 'true';
    const interval = Number(prop(d, 'destinationConnectorProperties', 'retryIntervalMillis')) || 10000;
    const count = Number(prop(d, 'destinationConnectorProperties', 'retryCount')) || 0;
    const threads = Number(prop(d, 'destinationConnectorProperties', 'threadCount')) || 1;
    const lane = prop(d, 'destinationConnectorProperties', 'threadAssignmentVariable');
    if (queued) {
      if (this.features.retryUnlimited) out.retry = { attempts: 'unlimited', backoff_ms: interval, max_backoff_ms: interval };
      else {
        out.retry = { attempts: 1000000, backoff_ms: interval, max_backoff_ms: interval };
        this.todo(at, location, 'Mirth\'s queue retries until the message is delivered: attempts 1000000 stands in for `attempts: unlimited` until it lands');
      }
      this.note(at, `Mirth: queue on${sendFirst ? ', send first' : ''}, every ${interval} ms until delivered${sendFirst && count ? ` (first ${count} retries inline)` : ''}.`);
      out.on_failure = 'stop_queue';
    } else {
      out.retry = { attempts: count + 1, backoff_ms: interval, max_backoff_ms: interval };
      this.note(at, `Mirth: no queue, ${count} ${count === 1 ? 'retry' : 'retries'} ${interval} ms apart, then the message errored.`);
    }
    if (threads > 1 && lane) {
      out.max_in_flight = 1;
      this.note(at, `Ordering: Mirth used ${threads} queue threads with the thread assignment variable ${lane}, so each ${lane}'s messages stay in order. hl7c keeps the whole queue in order (max_in_flight: 1): every ${lane} still in order, but one stuck message holds all of them.`);
    } else if (threads > 1) out.max_in_flight = threads;
  }

  private destinationSteps(d: MirthConnector, out: Record<string, unknown>, at: At, location: string): void {
    const steps = d.transformer.steps.filter((s) => s.enabled);
    if (steps.length === 0) return;
    const own: Array<Record<string, unknown>> = [];
    for (const s of steps) {
      const where = `${location} › transformer step ${s.sequence} "${s.name}"`;
      if (s.kind === 'javascript' && /^tmp\s*=\s*msg;?$/.test(codeOnly(s.script ?? ''))) continue;
      if (s.kind === 'builder') this.builderStep(s, where, own, at);
      else if (s.kind === 'mapper') this.mapperStep(s, where);
      else this.todo(at, where, `destination transformer step "${s.name}" is not translated`, s.script);
    }
    if (own.length === 0) return;
    if (this.features.destinationTransform) out.transform = own;
    else this.todo(at, location, `this destination's own edits (Mirth destination transformer) wait for per-destination transform: ${own.map((x) => JSON.stringify(x)).join('; ')}`);
  }

  // ---------------------------------------------------------------- tests

  /** A sample message's MSH-12 says which version's tables its paths are read with: written as hl7_version. */
  private sampleVersion(): void {
    const sample = this.channel.source.transformer.inboundTemplate;
    if (!sample?.startsWith('MSH') || this.channel.source.transformer.inboundDataType === 'JSON') return;
    const header = readHeaderLeniently(sample);
    const version = tableVersionOf(header.version.split(header.delimiters.component)[0] ?? '');
    if (!version) return;
    this.hl7Version = version;
    this.spec.hl7_version = version;
    this.note(['hl7_version'], `From MSH-12 (${header.version}) of the sample message saved in the Mirth channel: paths are checked against this version's segments and fields.`);
  }

  private tests(): void {
    const sample = this.channel.source.transformer.inboundTemplate;
    if (!sample) return;
    const json = this.channel.source.transformer.inboundDataType === 'JSON';
    const test: Record<string, unknown> = { name: 'the sample message stored in the Mirth channel' };
    const expect: Record<string, unknown> = {};
    if (json) {
      try {
        test.input = JSON.parse(sample) as unknown;
      } catch {
        return;
      }
      const src = this.spec.source as Record<string, unknown>;
      if (src.http) expect.response_status = 200;
    } else {
      const hl7 = sample.replace(/\r\n?|\n/g, '\n').replace(/\n+$/, '') + '\n';
      test.input = hl7;
      this.blockScalars.push(['tests', 0, 'input']);
      let message;
      try {
        message = parseMessage(hl7.replace(/\n/g, '\r'));
      } catch {
        return;
      }
      const accepted = ((this.spec.accept as Array<{ if: unknown; otherwise: string }>) ?? []).every((r) => evaluateSafe(r.if, message));
      const src = this.spec.source as Record<string, unknown>;
      if (src.mllp && !this.isPlaceholderSource()) expect.ack = accepted ? 'AA' : this.features.filterAck || this.ackStyle !== 'after' ? (this.ackStyle === 'before' ? 'AA' : 'AR') : 'AR';
      if (accepted) {
        const route = Object.entries((this.spec.destinations as Record<string, { when?: unknown }>) ?? {})
          .filter(([, d]) => d.when === undefined || evaluateSafe(d.when, message))
          .map(([n]) => n);
        expect.route = route;
      }
    }
    test.expect = expect;
    this.spec.tests = [test];
    this.note(['tests'], 'From the sample message saved in the Mirth channel (inbound template); the expectations are what the imported rules give it.');
  }

  private isPlaceholderSource(): boolean {
    return this.channel.source.transportName === 'Channel Reader';
  }
}

function evaluateSafe(condition: unknown, message: ReturnType<typeof parseMessage>): boolean {
  return evaluateCondition(condition as never, message);
}

/** Why hl7c would refuse a path in messages of `version` (a segment or field its tables lack there), or undefined. */
export function unknownPath(path: string, version: Hl7Version): string | undefined {
  let parsed;
  try {
    parsed = parsePath(path);
  } catch {
    return `${path} is not an HL7 path`;
  }
  const problem = checkHl7Path(parsed, version, `hl7_version: ${version}`);
  return problem?.severity === 'error' ? problem.message : undefined;
}

/** Mirth joins filter rules left to right with AND/OR; AND binds first, as in the JavaScript it generates. */
function orGroups(rules: MirthRule[]): MirthRule[][] {
  const groups: MirthRule[][] = [];
  rules.forEach((r, i) => {
    if (i === 0 || r.operator === 'OR') groups.push([r]);
    else groups[groups.length - 1]!.push(r);
  });
  return groups;
}

function ruleName(rule: MirthRule, condition: unknown): string {
  const c = condition as Record<string, unknown> | undefined;
  const generated = /^Accept message if /.test(rule.name);
  if (generated && c && typeof c.path === 'string') return slug(`${c.path}-${'in' in c ? 'in' : 'equals' in c ? 'equals' : 'check'}`, 'rule');
  return slug(rule.name, 'rule').slice(0, 48).replace(/-+$/, '');
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function prefixKeys(o: Record<string, Mapping>, prefix: string): Record<string, Mapping> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k.startsWith(`${prefix}.`) ? k : `${prefix}.${k}`, v]));
}

/** `var x = { A: 'a', B: 'b' };` objects whose values are all string literals. */
function lookupTables(code: string): Map<string, Record<string, string>> {
  const out = new Map<string, Record<string, string>>();
  for (const m of code.matchAll(/(?:^|\n)var\s+(\w+)\s*=\s*\{/g)) {
    const body = balanced(code, m.index + m[0].length - 1);
    const entries = body ? objectLiteral(body) : undefined;
    if (!entries || entries.length === 0) continue;
    const values = entries.map(([k, v]) => [k, stringLiteral(v)] as const);
    if (values.every(([, v]) => v !== undefined)) out.set(m[1]!, Object.fromEntries(values) as Record<string, string>);
  }
  return out;
}

/** Build fields sorted as they sit in the segment (PID-3.1 before PID-3.4, PID-5 after PID-3). */
function inHl7Order(fields: Record<string, unknown>): Record<string, unknown> {
  const key = (p: string) => p.replace(/^[A-Z0-9]{3}-/, '').split('.').map((n) => n.padStart(4, '0')).join('.');
  return Object.fromEntries(Object.entries(fields).sort(([a], [b]) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0)));
}

function clean(o: Record<string, unknown>): Record<string, unknown> {
  if (Array.isArray(o.transform) && o.transform.length === 0) delete o.transform;
  return o;
}

/** A Mirth replacement's pattern that hl7c's validate accepts as it is (else it stays a TODO). */
function validPattern(pattern: string): boolean {
  return patternProblem(pattern) === undefined;
}
