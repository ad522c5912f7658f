import { Document, isMap, isPair, isScalar, isSeq, Scalar, visit } from 'yaml';
import type { Node, Pair, YAMLMap } from 'yaml';
import { detectFeatures } from './features.js';
import type { Features } from './features.js';
import type { MirthChannel } from './model.js';
import { readMirthExport } from './model.js';
import { channelVariables, slug, translateChannel } from './translate.js';
import type { At, ImportTodo, RunContext } from './translate.js';
import { asArray, child, text } from './model.js';

export type { ImportTodo } from './translate.js';
export { MirthReadError } from './model.js';

/** One generated spec: its file name, the spec text (YAML with comments), and where it came from. */
export interface ImportedSpec {
  fileName: string;
  channel: string;
  mirthName: string;
  mirthId: string;
  source: string;
  text: string;
}

export interface ImportResult {
  specs: ImportedSpec[];
  /** Everything left as a `# TODO(import):` comment, with its place in the export. */
  todos: ImportTodo[];
}

export interface ImportOptions {
  /** The spec-language constructs to use (default: what this hl7c's schema accepts). */
  features?: Features;
}

/**
 * `hl7c import mirth`: Mirth Connect channel exports (a channel, a group or a whole server) to
 * one hl7c spec per channel. Returns the specs as text; writing them is the caller's business.
 */
export function importMirth(inputs: Array<{ file: string; xml: string }>, options: ImportOptions = {}): ImportResult {
  const features = options.features ?? detectFeatures();
  const channels: MirthChannel[] = [];
  const seen = new Set<string>();
  for (const { file, xml } of inputs)
    for (const c of readMirthExport(xml, file)) {
      if (seen.has(c.id)) continue;
      seen.add(c.id);
      channels.push(c);
    }
  const names = new Map<string, string>();
  const taken = new Set<string>();
  for (const c of channels) {
    let name = slug(c.name);
    for (let i = 2; taken.has(name); i++) name = `${slug(c.name)}-${i}`;
    taken.add(name);
    names.set(c.id, name);
  }
  // Variables handed on by Channel Writers reach the target channel's `$('name')`: read the
  // writers' variables first, then hand each reader what its writers pass.
  const run: RunContext = { features, names, passed: new Map(), variablesOf: new Map() };
  for (const c of channels) run.variablesOf.set(c.id, channelVariables(c, undefined, features));
  for (const c of channels)
    for (const d of c.destinations) {
      if (d.transportName !== 'Channel Writer') continue;
      const target = text(d.properties.channelId);
      const vars = asArray(child(d.properties, 'mapVariables')?.string).map(text);
      const own = run.variablesOf.get(c.id)!;
      const into = run.passed.get(target) ?? new Map();
      for (const v of vars) {
        const def = own.get(v);
        into.set(v, def ? { ...def, origin: `passed by "${c.name}" (${def.origin})` } : { todo: `passed by "${c.name}", unknown there`, origin: c.name });
      }
      run.passed.set(target, into);
    }
  const specs: ImportedSpec[] = [];
  const todos: ImportTodo[] = [];
  const texts = new Map(inputs.map((i) => [i.file, i.xml]));
  for (const c of channels) {
    const t = translateChannel(c, run);
    for (const todo of t.todos) todo.line = lineOf(texts.get(c.file) ?? '', c.id, todo.location);
    todos.push(...t.todos);
    specs.push({ fileName: `${names.get(c.id)}.yaml`, channel: names.get(c.id)!, mirthName: c.name, mirthId: c.id, source: c.file, text: render(t.spec, t.header, t.comments, t.blockScalars) });
  }
  return { specs, todos };
}

/**
 * Where a TODO's connector or step starts in the export: the channel by its id, then the
 * connector and step by their `<name>`, each searched after the one before.
 */
function lineOf(xml: string, channelId: string, location: string): number | undefined {
  let at = xml.indexOf(`<id>${channelId}</id>`);
  if (at < 0) return undefined;
  const escape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
  const names = [...location.matchAll(/"([^"]+)"/g)].map((m) => m[1]!);
  if (location.startsWith('source')) at = Math.max(at, xml.indexOf('<sourceConnector', at));
  const script = { 'channel preprocessor': 'preprocessingScript', 'channel postprocessor': 'postprocessingScript', 'channel deploy script': 'deployScript', 'channel undeploy script': 'undeployScript' }[location];
  if (script && xml.indexOf(`<${script}>`, at) >= 0) at = xml.indexOf(`<${script}>`, at);
  for (const name of names) {
    const next = [escape(name), name].map((n) => xml.indexOf(`<name>${n}</name>`, at)).filter((i) => i >= 0);
    if (next.length === 0) break;
    at = Math.min(...next);
  }
  return xml.slice(0, at).split('\n').length;
}

/** The spec as YAML: header comment, comments placed before the keys they are about, small maps in flow style. */
function render(spec: Record<string, unknown>, header: string[], comments: Array<{ at: At; text: string }>, blockScalars: At[]): string {
  const doc = new Document(spec, { aliasDuplicateObjects: false });
  doc.commentBefore = header.map((h) => ` ${h}`).join('\n');
  // Flow style for small maps of scalars: conditions and mappings read as one line.
  visit(doc, {
    Map(_k, node) {
      if (node.items.every((p) => isScalar(p.value) || (isMap(p.value) && (p.value as YAMLMap).flow) || (isSeq(p.value) && p.value.items.every(isScalar)))) {
        const width = JSON.stringify(node.toJSON()).length;
        if (width <= 90 && !node.items.some((p) => isScalar(p.value) && typeof p.value.value === 'string' && p.value.value.includes('\n'))) node.flow = true;
      }
    },
  });
  for (const at of blockScalars) {
    const node = doc.getIn(at, true);
    if (isScalar(node)) node.type = Scalar.BLOCK_LITERAL;
  }
  for (const { at, text: comment } of comments) {
    const target = commentTarget(doc, at) ?? commentTarget(doc, ['destinations']);
    const lines = comment
      .split('\n')
      .map((l) => ` ${l}`)
      .join('\n');
    if (!target) {
      doc.comment = doc.comment ? `${doc.comment}\n${lines}` : lines;
      continue;
    }
    target.commentBefore = target.commentBefore ? `${target.commentBefore}\n${lines}` : lines;
  }
  return doc.toString({ lineWidth: 0, flowCollectionPadding: true });
}

/** The node a comment about `at` goes before: the key of a map entry, or the item of a list; else the nearest ancestor. */
function commentTarget(doc: Document, at: At): Node | undefined {
  for (let n = at.length; n > 0; n--) {
    const path = at.slice(0, n);
    const parent = n === 1 ? doc.contents : doc.getIn(path.slice(0, -1), true);
    const last = path[path.length - 1];
    if (isMap(parent)) {
      const pair = (parent.items as Pair[]).find((p) => isPair(p) && isScalar(p.key) && p.key.value === last);
      if (pair && isScalar(pair.key)) {
        // A key inside a flow map cannot carry a comment line: go up.
        if (parent.flow) continue;
        return pair.key;
      }
      if (pair && !isScalar(pair.key)) {
        const key = new Scalar(last);
        (pair as Pair<Node, unknown>).key = key;
        return key;
      }
    } else if (isSeq(parent) && typeof last === 'number') {
      const item = parent.items[last];
      if (item && !parent.flow && typeof item === 'object') return item as unknown as Node;
    }
  }
  return undefined;
}
