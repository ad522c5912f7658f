import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Project } from 'ts-morph';
import type { Type } from 'ts-morph';
import { expect, test } from 'vitest';
import { REPO } from '../cli/helpers.js';

/**
 * The JSON Schema (what editors and validate check) and src/spec/types.ts (what the compiler
 * reads) are written by hand; this walks both together from the root and lists every object
 * whose keys differ, so a key added to one and not the other fails here.
 */
type SchemaNode = Record<string, unknown>;
const schema = JSON.parse(readFileSync(join(REPO, 'schema/hl7c-spec.schema.json'), 'utf8')) as SchemaNode;

function resolveRef(node: SchemaNode): SchemaNode {
  const ref = node.$ref as string | undefined;
  if (!ref) return node;
  return ref.replace(/^#\//, '').split('/').reduce<SchemaNode>((n, k) => n[k] as SchemaNode, schema);
}

/** The object shapes a schema node allows: its properties, and those of anyOf/oneOf branches. */
function schemaShapes(raw: SchemaNode): { props: Map<string, SchemaNode[]>; map?: SchemaNode[]; items?: SchemaNode[] } {
  const props = new Map<string, SchemaNode[]>();
  let map: SchemaNode[] | undefined;
  let items: SchemaNode[] | undefined;
  const visit = (n: SchemaNode) => {
    const node = resolveRef(n);
    for (const [k, v] of Object.entries((node.properties as Record<string, SchemaNode>) ?? {})) props.set(k, [...(props.get(k) ?? []), v]);
    if (node.additionalProperties && typeof node.additionalProperties === 'object') map = [...(map ?? []), node.additionalProperties as SchemaNode];
    if (node.items && typeof node.items === 'object') items = [...(items ?? []), node.items as SchemaNode];
    for (const k of ['anyOf', 'oneOf', 'allOf']) for (const b of (node[k] as SchemaNode[]) ?? []) visit(b);
  };
  visit(raw);
  return { props, map, items };
}

function objectMembers(type: Type): Type[] {
  const t = type.getNonNullableType();
  const parts = t.isUnion() ? t.getUnionTypes() : t.isIntersection() ? [t] : [t];
  return parts.filter((p) => p.isObject() && !p.isArray() && p.getCallSignatures().length === 0);
}

// The type checker loads what types.ts imports: seconds on a quiet machine, more under load.
test('schema/hl7c-spec.schema.json and src/spec/types.ts name the same keys everywhere', { timeout: 120_000 }, () => {
  const project = new Project({ tsConfigFilePath: join(REPO, 'tsconfig.json'), skipAddingFilesFromTsConfig: true });
  const file = project.addSourceFileAtPath(join(REPO, 'src/spec/types.ts'));
  project.resolveSourceFileDependencies();
  const spec = file.getInterfaceOrThrow('Spec').getType();
  const problems: string[] = [];
  const seen = new Set<string>();
  const walk = (type: Type, nodes: SchemaNode[], where: string, depth: number) => {
    if (depth > 12) return;
    const key = `${where}|${type.getText()}`;
    if (seen.has(key)) return;
    seen.add(key);
    const shapes = nodes.map(schemaShapes);
    const t = type.getNonNullableType();
    const arrays = (t.isUnion() ? t.getUnionTypes() : [t]).filter((p) => p.isArray());
    for (const a of arrays) walk(a.getArrayElementTypeOrThrow(), shapes.flatMap((s) => s.items ?? []), `${where}[]`, depth + 1);
    const objects = objectMembers(type);
    if (objects.length === 0) return;
    const typeKeys = new Set<string>();
    let indexType: Type | undefined;
    for (const o of objects) {
      for (const p of o.getProperties()) typeKeys.add(p.getName());
      indexType ??= o.getStringIndexType();
    }
    const schemaKeys = new Set(shapes.flatMap((s) => [...s.props.keys()]));
    if (schemaKeys.size === 0 && typeKeys.size === 0 && !indexType) return;
    if (schemaKeys.size > 0 || typeKeys.size > 0) {
      const onlySchema = [...schemaKeys].filter((k) => !typeKeys.has(k));
      const onlyTypes = [...typeKeys].filter((k) => !schemaKeys.has(k));
      if (onlySchema.length) problems.push(`${where}: in the schema only: ${onlySchema.join(', ')}`);
      if (onlyTypes.length && !indexType) problems.push(`${where}: in types.ts only: ${onlyTypes.join(', ')}`);
    }
    for (const name of typeKeys) {
      const sub = shapes.flatMap((s) => s.props.get(name) ?? []);
      if (sub.length === 0) continue;
      const member = objects.map((o) => o.getProperty(name)).find(Boolean)!;
      walk(member.getTypeAtLocation(file), sub, `${where}.${name}`, depth + 1);
    }
    if (indexType) walk(indexType, shapes.flatMap((s) => s.map ?? []), `${where}.*`, depth + 1);
  };
  walk(spec, [schema], 'spec', 0);
  expect(problems).toEqual([]);
});
