import type { Condition, GroupDefinition } from '../../runtime/index.js';
import { groupDefinitions, homeOf, parsePath, reachableAround, structureDefinition, structureIds } from '../../runtime/index.js';
import type { Diagnostic } from '../diagnostics/diagnostic.js';
import type { LoadedSpec } from './load.js';
import type { PathKey } from './source-map.js';
import type { Mapping, Spec } from './types.js';

/** An `each:` over segments the mapping is inside of, and where it is written. */
interface EachLevel {
  segment: string;
  where: PathKey[];
}

/**
 * Inside `each: X`, a path reads the segment of the current group instance or of an enclosing
 * one (see runtime/channel/scope.ts). A path to a segment that is in neither, for every message
 * structure the spec accepts that has it, would read another group's segment (the next order's
 * OBR from inside a patient), so it is an error naming the path and the `each:`.
 */
export function groupPathDiagnostics(loaded: LoadedSpec, accepted: ReadonlySet<string> | undefined): Diagnostic[] {
  const spec = loaded.data as Spec;
  const ids = accepted ? [...accepted].flatMap((code) => structureIds(code)) : structureIds();
  const definitions = ids.map((id) => structureDefinition(id)!).filter(Boolean);
  const out: Diagnostic[] = [];

  const check = (text: string, where: PathKey[], chain: readonly EachLevel[]) => {
    let path;
    try {
      path = parsePath(text);
    } catch {
      return; // reported as hl7/path-syntax
    }
    // OBX[2]-5 names its occurrence in the message; a segment an each: is on reads that one.
    if (path.segmentRepetition !== undefined || chain.some((level) => level.segment === path.segment)) return;
    let leaves: { structure: string; group: string } | undefined;
    for (const definition of definitions) {
      const verdict = verdictIn(definition, chain, path.segment);
      if (verdict === 'ok') return;
      if (verdict) leaves ??= { structure: definition.name, group: verdict.group };
    }
    if (!leaves) return;
    const innermost = chain[chain.length - 1]!;
    const pos = loaded.sourceMap.valueAt(where);
    const each = loaded.sourceMap.valueAt(innermost.where);
    out.push({
      file: loaded.file,
      line: pos.line,
      column: pos.column,
      severity: 'error',
      code: 'spec/path-leaves-group',
      message: `${text} reads ${path.segment}, which is not in the ${leaves.group} group that each: ${innermost.segment} (${loaded.file}:${each.line}:${each.column}) walks, nor in a group around it (${leaves.structure}): it would read another group's ${path.segment}, or the wrong one`,
      hint: `map ${path.segment} with its own each: ${path.segment}, or read it outside this each:`,
    });
  };

  const walkCondition = (c: Condition, where: PathKey[], chain: readonly EachLevel[]) => {
    if ('path' in c) check(c.path, [...where, 'path'], chain);
    if ('all' in c) c.all.forEach((x, i) => walkCondition(x, [...where, 'all', i], chain));
    if ('any' in c) c.any.forEach((x, i) => walkCondition(x, [...where, 'any', i], chain));
    if ('not' in c) walkCondition(c.not, [...where, 'not'], chain);
  };

  const walk = (m: Mapping, where: PathKey[], chain: readonly EachLevel[]) => {
    if (chain.length > 0) {
      if (m.path) check(m.path, [...where, 'path'], chain);
      m.concat?.forEach((part, i) => typeof part === 'object' && check(part.path, [...where, 'concat', i, 'path'], chain));
      if (m.when) walkCondition(m.when, [...where, 'when'], chain);
      if (typeof m.each === 'string' && m.each.includes('-')) check(m.each, [...where, 'each'], chain);
    }
    const inner = typeof m.each === 'string' && !m.each.includes('-') ? [...chain, { segment: m.each, where: [...where, 'each'] }] : chain;
    for (const [key, child] of Object.entries(m.fields ?? {})) walk(child, [...where, 'fields', key], inner);
  };
  for (const [key, m] of Object.entries(spec.map ?? {})) walk(m, ['map', key], []);
  // A destination's own map reads the same message, with the same groups.
  for (const [name, d] of Object.entries(spec.destinations ?? {})) for (const [key, m] of Object.entries(d.map ?? {})) walk(m, ['destinations', name, 'map', key], []);
  return out;
}

/**
 * In one structure: undefined when it has no say (it lacks the each: segments or the path's
 * segment), 'ok' when some place of the each: segment reaches the path's segment, else the
 * group the each: walks, which the path would leave.
 */
function verdictIn(definition: GroupDefinition, chain: readonly EachLevel[], segment: string): 'ok' | { group: string } | undefined {
  if (!definition.contains.has(segment)) return undefined;
  let places = groupDefinitions(definition).filter((g) => g.members.has(chain[0]!.segment));
  for (const level of chain.slice(1)) {
    const next = new Set<GroupDefinition>();
    for (const place of places) {
      let around: GroupDefinition | undefined = place;
      while (around && !around.contains.has(level.segment)) around = around.parent;
      const home = around && homeOf(around, level.segment);
      if (home) next.add(home);
    }
    places = [...next];
  }
  if (places.length === 0) return undefined;
  for (const place of places) {
    let around: GroupDefinition = place;
    while (!around.contains.has(segment)) around = around.parent!;
    if (around === place || reachableAround(around, segment)) return 'ok';
  }
  return { group: places[0]!.name };
}
