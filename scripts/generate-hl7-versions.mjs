#!/usr/bin/env node
/**
 * Writes runtime/hl7/versions/definitions.ts: the fields (name, data type, repetition, withdrawn)
 * of the segments hospital interfaces carry, for HL7 v2.3 to v2.8, and the component counts of
 * their data types. Run once when the tables change; the output is committed and deterministic.
 *
 *   npm install --no-save --prefix /tmp/hl7-tables hl7v2-dictionary@1.8.0
 *   node scripts/generate-hl7-versions.mjs /tmp/hl7-tables/node_modules
 *
 * Sources. v2.3 to v2.7.1: the npm package hl7v2-dictionary 1.8.0 (MIT), whose tables are
 * the HL7 v2 database export also published as hl7-dictionary 1.0.1 (the two agree field for
 * field on every segment below). That export shows a field withdrawn in v2.7 and later as
 * optionality B with type ST; such fields are written here as withdrawn ('-').
 * v2.8: the package's own 2.8 table is a copy of 2.7.1, so v2.8 is 2.7.1 with the changes
 * HL7's v2.8 tables make to these segments, as read in the v2.8 tables of hl7apy (MIT, itself
 * generated from HL7's v2.8 database): the fields listed in V28_CHANGES below. Field names in
 * v2.8 are otherwise the 2.7.1 names.
 */
import { writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const VERSIONS = ['2.3', '2.3.1', '2.4', '2.5', '2.5.1', '2.6', '2.7', '2.7.1', '2.8'];
/** Segments of the interfaces hospitals run (ADT, ORM/OML, ORU, SIU, MDM, DFT, VXU, RDE, ACK). */
const SEGMENTS = [
  'MSH', 'SFT', 'EVN', 'PID', 'PD1', 'NK1', 'PV1', 'PV2', 'ROL', 'PRT', 'MRG', 'ACC', 'AL1', 'DG1', 'PR1', 'GT1', 'IN1', 'IN2',
  'ORC', 'OBR', 'OBX', 'NTE', 'TQ1', 'SPM', 'TXA', 'SCH', 'RGS', 'AIS', 'AIG', 'AIL', 'AIP', 'RXO', 'RXE', 'RXR', 'RXA', 'FT1',
  'MSA', 'ERR',
];

/** v2.8 against v2.7.1 for the segments above (hl7apy v2_8 segments.py / fields.py). */
const V28_CHANGES = {
  'IN1-55': { name: 'Insurance Action Code', type: 'ID', rep: 1 },
  'OBX-27': { name: 'Root Cause', type: 'CWE', rep: 1 },
  'OBX-28': { name: 'Local Process Control', type: 'CWE', rep: 'infinite' },
  'ORC-34': { name: 'Order Workflow Profile', type: 'CWE', rep: 'infinite' },
  'RXA-11': { withdrawn: true },
  'RXA-29': { name: 'Administered Tag Identifier', type: 'EI', rep: 'infinite' },
  'PID-35': { name: 'Taxonomic Classification Code' },
};

const modules = resolve(process.argv[2] ?? 'node_modules');
const { dictionaries } = await import(pathToFileURL(join(modules, 'hl7v2-dictionary', 'index.js')).href);

/** One field in one version: "name|type|repeat" ('' once, '*' unbounded, n at most n; type '-' withdrawn). */
function fieldText(f, version) {
  const withdrawn = f.withdrawn || (version >= '2.7' && f.opt === 'B');
  const rep = f.rep === 'infinite' ? '*' : f.rep === 1 || f.rep === undefined ? '' : String(f.rep);
  const type = withdrawn ? '-' : f.type === 'VARIES' ? 'varies' : f.type;
  return `${f.desc.trim()}|${type}|${withdrawn ? '' : rep}`;
}

function fieldsIn(version, segment) {
  const dictVersion = version === '2.8' ? '2.7.1' : version;
  const seg = dictionaries[dictVersion].segments[segment];
  if (!seg) return [];
  const fields = Object.entries(seg.fields).sort((a, b) => Number(a[0]) - Number(b[0])).map(([, f]) => ({ ...f }));
  if (version === '2.8') {
    for (const [path, change] of Object.entries(V28_CHANGES)) {
      const [s, n] = path.split('-');
      if (s !== segment) continue;
      const i = Number(n) - 1;
      fields[i] = change.type ? { desc: change.name, type: change.type, rep: change.rep, opt: 'O' } : { ...fields[i], ...change, ...(change.name ? { desc: change.name } : {}) };
    }
  }
  return fields.map((f) => fieldText(f, version));
}

/** Names that differ only in case, spacing or punctuation ("Date/Time Of Message") are one name, spelled as the latest version does. */
const nameKey = (name) => name.toLowerCase().replace(/[^a-z0-9]/g, '');
function sameSpelling(perVersion) {
  const count = Math.max(...perVersion.map((f) => f.length));
  for (let i = 0; i < count; i++) {
    const latest = new Map();
    for (let vi = perVersion.length - 1; vi >= 0; vi--) {
      const text = perVersion[vi][i];
      if (text === undefined) continue;
      const [name, ...rest] = text.split('|');
      const key = nameKey(name);
      if (!latest.has(key)) latest.set(key, name);
      perVersion[vi][i] = [latest.get(key), ...rest].join('|');
    }
  }
  return perVersion;
}

const histories = {};
const typesUsed = new Set();
for (const segment of SEGMENTS) {
  const perVersion = sameSpelling(VERSIONS.map((v) => fieldsIn(v, segment)));
  const count = Math.max(...perVersion.map((f) => f.length));
  if (count === 0) throw new Error(`no version defines ${segment}`);
  const fields = [];
  for (let i = 0; i < count; i++) {
    const variants = [];
    let last;
    VERSIONS.forEach((v, vi) => {
      const text = perVersion[vi][i];
      if (text === undefined) {
        if (last !== undefined) throw new Error(`${segment}-${i + 1} disappears in ${v} without being withdrawn`);
        return;
      }
      typesUsed.add(`${v}:${text.split('|')[1]}`);
      if (text !== last) variants.push(`${v}|${text}`);
      last = text;
    });
    fields.push(variants);
  }
  histories[segment] = fields;
}

/** The data types of the components of `type` in `version`, in order; undefined for a primitive. */
function componentTypesOf(version, type) {
  const def = dictionaries[version === '2.8' ? '2.7.1' : version].types[type];
  if (!def?.fields) return undefined;
  return Object.entries(def.fields).sort((a, b) => Number(a[0]) - Number(b[0])).map(([, c]) => (c.type === 'VARIES' ? 'varies' : (c.type ?? '')));
}

/**
 * The types of the components of the composite types the fields above use, per version
 * ("version|T1,T2,…"), and those component types join the types whose components are counted:
 * a path's subcomponent is checked against its component's type (PID-3.4.1: CX.4 is HD).
 */
const componentTypes = {};
// Down to subcomponents: the types of components' components too (XAD.1 is SAD, whose .1 is ST).
for (let pending = [...typesUsed].sort(); pending.length; ) {
  const next = [];
  for (const key of pending) {
    const [version, type] = key.split(':');
    if (type === '-' || type === 'varies') continue;
    const types = componentTypesOf(version, type);
    if (!types) continue;
    (componentTypes[type] ??= {})[version] = types.join(',');
    for (const t of types) {
      if (!t || t === 'varies' || typesUsed.has(`${version}:${t}`)) continue;
      typesUsed.add(`${version}:${t}`);
      next.push(`${version}:${t}`);
    }
  }
  pending = next.sort();
}

/** Components of each data type the fields above use, and of their components' types, per version ("version|count"). */
const components = {};
for (const key of [...typesUsed].sort()) {
  const [version, type] = key.split(':');
  if (type === '-' || type === 'varies') continue;
  const def = dictionaries[version === '2.8' ? '2.7.1' : version].types[type];
  const count = def?.fields ? Object.keys(def.fields).length : 1;
  (components[type] ??= {})[version] = count;
}
const componentHistories = {};
for (const type of Object.keys(components).sort()) {
  const variants = [];
  let last;
  for (const v of VERSIONS) {
    const n = components[type][v];
    if (n === undefined || n === last) continue;
    variants.push(`${v}|${n}`);
    last = n;
  }
  componentHistories[type] = variants;
}
const componentTypeHistories = {};
for (const type of Object.keys(componentTypes).sort()) {
  const variants = [];
  let last;
  for (const v of VERSIONS) {
    const types = componentTypes[type][v];
    if (types === undefined || types === last) continue;
    variants.push(`${v}|${types}`);
    last = types;
  }
  componentTypeHistories[type] = variants;
}

const q = (s) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
const lines = [
  '// Generated by scripts/generate-hl7-versions.mjs. Do not edit: change the script and run it again.',
  '//',
  '// Source: the HL7 v2 database export in the npm package hl7v2-dictionary 1.8.0 (MIT) for v2.3 to',
  '// v2.7.1; v2.8 is v2.7.1 with the v2.8 changes to these segments read from the v2.8 tables of',
  '// hl7apy (MIT, generated from HL7\'s v2.8 database). See the script for the details and limits.',
  '',
  '/** The HL7 v2 versions hl7c has tables for, oldest first. */',
  `export const HL7_VERSIONS = [${VERSIONS.map(q).join(', ')}] as const;`,
  '',
  '/**',
  ' * Per segment, per field (index 0 is field 1): the definitions the field had, oldest first, each',
  ' * "version|name|type|repeat" valid from that version until the next entry. A field is not in',
  ' * versions before its first entry. repeat: empty (once), * (unbounded) or the most repetitions;',
  ' * type - : withdrawn from that version on (the position stays, the field must be empty).',
  ' */',
  'export const SEGMENT_FIELDS: Readonly<Record<string, readonly (readonly string[])[]>> = {',
];
for (const segment of SEGMENTS) {
  lines.push(`  ${segment}: [`);
  for (const variants of histories[segment]) lines.push(`    [${variants.map(q).join(', ')}],`);
  lines.push('  ],');
}
lines.push('};', '', '/** Components of each data type these fields use, per version: "version|count" from that version on (1: a primitive). */');
lines.push('export const DATA_TYPE_COMPONENTS: Readonly<Record<string, readonly string[]>> = {');
for (const [type, variants] of Object.entries(componentHistories)) lines.push(`  ${/^[A-Za-z_]\w*$/.test(type) ? type : q(type)}: [${variants.map(q).join(', ')}],`);
lines.push('};', '', '/** The data types of the components of each composite type above, per version: "version|T1,T2,…" from that version on (empty: not given). */');
lines.push('export const DATA_TYPE_COMPONENT_TYPES: Readonly<Record<string, readonly string[]>> = {');
for (const [type, variants] of Object.entries(componentTypeHistories)) lines.push(`  ${/^[A-Za-z_]\w*$/.test(type) ? type : q(type)}: [${variants.map(q).join(', ')}],`);
lines.push('};', '');

const out = join(dirname(fileURLToPath(import.meta.url)), '..', 'runtime', 'hl7', 'versions', 'definitions.ts');
writeFileSync(out, lines.join('\n'));
console.log(`wrote ${out}`);
