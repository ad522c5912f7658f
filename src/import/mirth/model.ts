import { XMLParser } from 'fast-xml-parser';

/**
 * Mirth Connect 4.x channel exports (XStream XML) read into a small model: only what the
 * importer translates or reports. Everything is kept as text, exactly as exported.
 */

export interface MirthStep {
  /** mapper | builder | javascript | xslt | other (the XStream class name says which). */
  kind: 'mapper' | 'builder' | 'javascript' | 'xslt' | 'other';
  className: string;
  name: string;
  sequence: number;
  enabled: boolean;
  /** Mapper: the channel-map variable; builder: the target (`msg['MSH']['MSH.5']['MSH.5.1']`). */
  variable?: string;
  target?: string;
  mapping?: string;
  defaultValue?: string;
  replacements: Array<[string, string]>;
  scope?: string;
  script?: string;
}

export interface MirthRule {
  kind: 'rule_builder' | 'javascript' | 'other';
  className: string;
  name: string;
  sequence: number;
  enabled: boolean;
  /** AND (default for the first rule) or OR: how it joins the rules before it. */
  operator: 'AND' | 'OR';
  field?: string;
  condition?: string;
  values: string[];
  script?: string;
}

export interface MirthTransformer {
  steps: MirthStep[];
  inboundTemplate?: string;
  outboundTemplate?: string;
  inboundDataType: string;
  outboundDataType: string;
  /** MSA-3 texts of the auto-generated ACKs (HL7 v2 inbound data type), when set. */
  rejectedAckText?: string;
  errorAckText?: string;
}

export interface MirthConnector {
  metaDataId: number;
  name: string;
  transportName: string;
  enabled: boolean;
  waitForPrevious: boolean;
  /** The connector's `<properties>` as parsed (element name → text or object). */
  properties: Record<string, unknown>;
  propertiesClass: string;
  transformer: MirthTransformer;
  responseTransformer?: MirthTransformer;
  filter: MirthRule[];
}

export interface MirthCodeTemplate {
  name: string;
  library: string;
  code: string;
  /** Channel ids the library is enabled for; empty when it says nothing. */
  channelIds: string[];
}

export interface MirthChannel {
  id: string;
  name: string;
  description: string;
  /** The export file the channel was read from. */
  file: string;
  source: MirthConnector;
  destinations: MirthConnector[];
  scripts: { preprocessing: string; postprocessing: string; deploy: string; undeploy: string };
  initialState: string;
  codeTemplates: MirthCodeTemplate[];
}

const ARRAYS = new Set(['connector', 'string', 'entry', 'channel', 'codeTemplateLibrary', 'codeTemplate', 'org.apache.commons.lang3.tuple.ImmutablePair', 'list', 'metaDataColumn']);

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: false,
  processEntities: true,
  isArray: (name, jpath) => ARRAYS.has(name) || /\.elements\.[^.]+$/.test(String(jpath)),
});

type Node = Record<string, unknown>;

export class MirthReadError extends Error {}

/** Every channel in a channel, group or server-configuration export. */
export function readMirthExport(xml: string, file: string): MirthChannel[] {
  let root: Node;
  try {
    root = parser.parse(xml, true) as Node;
  } catch (err) {
    throw new MirthReadError(`${file}: not well-formed XML (${err instanceof Error ? err.message.split('\n')[0] : String(err)})`);
  }
  const channels: Node[] = [];
  const templates: MirthCodeTemplate[] = [];
  collect(root, channels, templates);
  if (channels.length === 0) throw new MirthReadError(`${file}: no Mirth channel in it (expected <channel> with a <sourceConnector>)`);
  return channels.map((c) => readChannel(c, file, templates));
}

/** Walks the export for channels and code template libraries, wherever the export kind puts them. */
function collect(node: unknown, channels: Node[], templates: MirthCodeTemplate[]): void {
  if (Array.isArray(node)) {
    for (const n of node) collect(n, channels, templates);
    return;
  }
  if (!isNode(node)) return;
  for (const [key, value] of Object.entries(node)) {
    if (key === 'channel') {
      for (const c of asArray(value)) if (isNode(c) && 'sourceConnector' in c) channels.push(c);
      else collect(c, channels, templates);
      // Code templates exported inside a channel's exportData belong to the whole run too.
      for (const c of asArray(value)) if (isNode(c)) collect(c.exportData, channels, templates);
      continue;
    }
    if (key === 'codeTemplateLibrary') {
      for (const lib of asArray(value)) if (isNode(lib)) templates.push(...readLibrary(lib));
      continue;
    }
    if (typeof value === 'object') collect(value, channels, templates);
  }
}

function readLibrary(lib: Node): MirthCodeTemplate[] {
  const name = text(lib.name);
  const channelIds = asArray(child(lib, 'enabledChannelIds')?.string).map(text);
  return asArray(child(lib, 'codeTemplates')?.codeTemplate)
    .filter(isNode)
    .map((t) => ({ name: text(t.name), library: name, code: text(child(t, 'properties')?.code), channelIds }));
}

function readChannel(c: Node, file: string, templates: MirthCodeTemplate[]): MirthChannel {
  const id = text(c.id);
  const destinations = asArray(child(c, 'destinationConnectors')?.connector).filter(isNode).map(readConnector);
  return {
    id,
    name: text(c.name),
    description: text(c.description),
    file,
    source: readConnector(child(c, 'sourceConnector')!),
    destinations,
    scripts: { preprocessing: text(c.preprocessingScript), postprocessing: text(c.postprocessingScript), deploy: text(c.deployScript), undeploy: text(c.undeployScript) },
    initialState: text(child(c, 'properties')?.initialState) || 'STARTED',
    codeTemplates: templates.filter((t) => t.channelIds.length === 0 || t.channelIds.includes(id)),
  };
}

function readConnector(n: Node): MirthConnector {
  const properties = child(n, 'properties') ?? {};
  return {
    metaDataId: Number(text(n.metaDataId)),
    name: text(n.name),
    transportName: text(n.transportName),
    enabled: text(n.enabled) !== 'false',
    waitForPrevious: text(n.waitForPrevious) !== 'false',
    properties,
    propertiesClass: String(properties['@_class'] ?? ''),
    transformer: readTransformer(child(n, 'transformer')),
    responseTransformer: child(n, 'responseTransformer') ? readTransformer(child(n, 'responseTransformer')) : undefined,
    filter: readRules(child(n, 'filter')),
  };
}

function readTransformer(t: Node | undefined): MirthTransformer {
  const steps: MirthStep[] = [];
  for (const [className, list] of Object.entries(child(t, 'elements') ?? {})) {
    if (className.startsWith('#') || className.startsWith('@_')) continue;
    for (const s of asArray(list).filter(isNode)) steps.push(readStep(className, s));
  }
  steps.sort((a, b) => a.sequence - b.sequence);
  return {
    steps,
    inboundTemplate: template(t?.inboundTemplate),
    outboundTemplate: template(t?.outboundTemplate),
    inboundDataType: text(t?.inboundDataType) || 'HL7V2',
    outboundDataType: text(t?.outboundDataType) || 'HL7V2',
    rejectedAckText: text(child(child(t, 'inboundProperties'), 'responseGenerationProperties')?.rejectedACKMessage) || undefined,
    errorAckText: text(child(child(t, 'inboundProperties'), 'responseGenerationProperties')?.errorACKMessage) || undefined,
  };
}

function readStep(className: string, s: Node): MirthStep {
  const kind: MirthStep['kind'] = /MapperStep$/.test(className)
    ? 'mapper'
    : /MessageBuilderStep$/.test(className)
      ? 'builder'
      : /JavaScriptStep$/.test(className)
        ? 'javascript'
        : /XsltStep$/.test(className)
          ? 'xslt'
          : 'other';
  const replacements = asArray(child(s, 'replacements')?.['org.apache.commons.lang3.tuple.ImmutablePair'])
    .filter(isNode)
    .map((p) => [text(p.left), text(p.right)] as [string, string]);
  return {
    kind,
    className,
    name: text(s.name),
    sequence: Number(text(s.sequenceNumber)),
    enabled: text(s.enabled) !== 'false',
    variable: optional(s.variable),
    target: optional(s.messageSegment),
    mapping: optional(s.mapping),
    defaultValue: optional(s.defaultValue),
    replacements,
    scope: optional(s.scope),
    // An XSLT step keeps its stylesheet in <template>: quoted in its TODO like a script.
    script: optional(s.script) ?? (kind === 'xslt' ? optional(s.template) : undefined),
  };
}

function readRules(f: Node | undefined): MirthRule[] {
  const rules: MirthRule[] = [];
  for (const [className, list] of Object.entries(child(f, 'elements') ?? {})) {
    if (className.startsWith('#') || className.startsWith('@_')) continue;
    for (const r of asArray(list).filter(isNode)) {
      const kind: MirthRule['kind'] = /RuleBuilderRule$/.test(className) ? 'rule_builder' : /JavaScriptRule$/.test(className) ? 'javascript' : 'other';
      rules.push({
        kind,
        className,
        name: text(r.name),
        sequence: Number(text(r.sequenceNumber)),
        enabled: text(r.enabled) !== 'false',
        operator: text(r.operator) === 'OR' ? 'OR' : 'AND',
        field: optional(r.field),
        condition: optional(r.condition),
        values: asArray(child(r, 'values')?.string).map(text),
        script: optional(r.script),
      });
    }
  }
  return rules.sort((a, b) => a.sequence - b.sequence);
}

/** A base64 template decoded (Mirth stores sample and outbound templates that way). */
function template(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  const body = isNode(value) ? text(value['#text']) : text(value);
  const encoding = isNode(value) ? String(value['@_encoding'] ?? '') : '';
  if (body.trim() === '') return undefined;
  return encoding === 'base64' ? Buffer.from(body.trim(), 'base64').toString('utf8') : body;
}

export function child(n: unknown, key: string): Node | undefined {
  if (!isNode(n)) return undefined;
  const v = n[key];
  if (Array.isArray(v)) return isNode(v[0]) ? v[0] : undefined;
  return isNode(v) ? v : undefined;
}

export function isNode(v: unknown): v is Node {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function asArray(v: unknown): unknown[] {
  if (v === undefined || v === null || v === '') return [];
  return Array.isArray(v) ? v : [v];
}

/** The text of an element: '' when empty or absent. */
export function text(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (isNode(v) && '#text' in v) return text(v['#text']);
  return '';
}

function optional(v: unknown): string | undefined {
  return v === undefined ? undefined : text(v);
}

/** A connector property as text ('' when absent). */
export function prop(c: MirthConnector, ...path: string[]): string {
  let n: unknown = c.properties;
  for (const key of path) n = isNode(n) ? (Array.isArray(n[key]) ? (n[key] as unknown[])[0] : n[key]) : undefined;
  return text(n);
}
