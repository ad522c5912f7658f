import type { Hl7Path, Hl7Version } from '../../runtime/index.js';
import { editDistance } from './schema.js';
import { componentCount, componentType, describeVersions, HL7_VERSIONS, knownSegments, segmentFields, versionsWithField, versionsWithSegment } from '../../runtime/index.js';

/** Segments each message code can carry (v2.5.1 abstract message structures, flattened; PRT from v2.7). */
export const MESSAGE_SEGMENTS: Readonly<Record<string, readonly string[]>> = {
  ADT: ['MSH', 'SFT', 'EVN', 'PID', 'PD1', 'ROL', 'PRT', 'NK1', 'PV1', 'PV2', 'OBX', 'AL1', 'DG1', 'PR1', 'GT1', 'IN1', 'IN2', 'MRG', 'NTE'],
  SIU: ['MSH', 'SCH', 'TQ1', 'NTE', 'PID', 'PD1', 'PV1', 'PV2', 'OBX', 'DG1', 'RGS', 'AIS', 'AIG', 'AIL', 'AIP', 'PRT'],
  ORU: ['MSH', 'SFT', 'PID', 'PD1', 'PRT', 'NTE', 'NK1', 'PV1', 'PV2', 'ORC', 'OBR', 'TQ1', 'OBX', 'SPM'],
  ORM: ['MSH', 'NTE', 'PID', 'PD1', 'PV1', 'PV2', 'IN1', 'GT1', 'AL1', 'ORC', 'OBR', 'TQ1', 'DG1', 'OBX'],
  OMG: ['MSH', 'SFT', 'NTE', 'PID', 'PD1', 'PRT', 'PV1', 'PV2', 'IN1', 'GT1', 'AL1', 'ORC', 'TQ1', 'OBR', 'DG1', 'OBX', 'SPM'],
  MDM: ['MSH', 'SFT', 'EVN', 'PID', 'PV1', 'TXA', 'OBX', 'NTE'],
  DFT: ['MSH', 'SFT', 'EVN', 'PID', 'PD1', 'ROL', 'PRT', 'PV1', 'PV2', 'OBX', 'FT1', 'PR1', 'DG1', 'GT1', 'IN1', 'NTE'],
  ACK: ['MSH', 'SFT', 'MSA', 'ERR'],
};

export function isZSegment(name: string): boolean {
  return name.startsWith('Z');
}

/** Segments hl7c has tables for, in any version. */
export function isKnownSegment(name: string): boolean {
  return versionsWithSegment(name).length > 0;
}

/** What is wrong with a path in messages of one HL7 version, as a diagnostic without its position. */
export interface PathProblem {
  severity: 'error' | 'warning';
  code: string;
  message: string;
  hint?: string;
}

/**
 * Checks a path's segment, field and component against the tables of `version`. `why` says
 * where the version came from ("hl7_version: 2.3", "the default") for the hints. Z-segments
 * are site-defined and always pass.
 */
export function checkHl7Path(path: Hl7Path, version: Hl7Version, why: string): PathProblem | undefined {
  const { segment } = path;
  if (isZSegment(segment)) return undefined;
  const inVersions = versionsWithSegment(segment);
  if (inVersions.length === 0) {
    const close = knownSegments().find((s) => editDistance(s, segment) === 1);
    return { severity: 'error', code: 'hl7/unknown-segment', message: `${segment} is not a segment hl7c knows (v${HL7_VERSIONS[0]} to v${HL7_VERSIONS[HL7_VERSIONS.length - 1]})`, hint: close ? `did you mean ${close}?` : 'site-defined segments start with Z' };
  }
  const fields = segmentFields(version, segment);
  if (!fields) {
    return {
      severity: 'error',
      code: 'hl7/segment-not-in-version',
      message: `${segment} is not a segment of HL7 v${version} (it is in ${describeVersions(inVersions)}); this channel reads v${version} messages (${why})`,
      hint: `if the sender's messages carry ${segment}, set hl7_version: "${inVersions[0]}" or later, the version in their MSH-12`,
    };
  }
  if (path.field === undefined) return undefined;
  const n = path.field;
  const at = `${segment}-${n}`;
  const field = fields[n - 1];
  if (!field) {
    const elsewhere = versionsWithField(segment, n);
    if (elsewhere.length) {
      const name = segmentFields(elsewhere[0]!, segment)![n - 1]!.name;
      return {
        severity: 'error',
        code: 'hl7/unknown-field',
        message: `${segment} has ${fields.length} fields in HL7 v${version}; there is no ${at} (${at} ${name} is in ${describeVersions(elsewhere)}); this channel reads v${version} messages (${why})`,
        hint: `if the sender's messages carry ${at}, set hl7_version: "${elsewhere[0]}" or later, the version in their MSH-12`,
      };
    }
    const latest = HL7_VERSIONS[HL7_VERSIONS.length - 1]!;
    return { severity: 'error', code: 'hl7/unknown-field', message: `${segment} has ${fields.length} fields in HL7 v${version} (${segmentFields(latest, segment)!.length} in v${latest}); there is no ${at}` };
  }
  if (field.withdrawn) {
    const since = HL7_VERSIONS.find((v) => segmentFields(v, segment)?.[n - 1]?.withdrawn)!;
    return {
      severity: 'warning',
      code: 'hl7/withdrawn-field',
      message: `${at} (${field.name}) was withdrawn in HL7 v${since}: messages that follow v${version} leave it empty; this channel reads v${version} messages (${why})`,
      hint: `if the sender still fills ${at}, its messages are of an older version: set hl7_version: to the version in their MSH-12`,
    };
  }
  if (path.component === undefined) return undefined;
  const components = componentCount(version, field.type);
  if (components === undefined) return undefined;
  if (path.component <= components) return checkSubcomponent(path, field.type, components, version, why);
  const shape = components === 1 ? 'a value without components' : `with ${components} components`;
  return {
    severity: 'warning',
    code: 'hl7/unknown-component',
    message: `${at} (${field.name}) is ${field.type} in HL7 v${version}, ${shape}: ${path.text} is empty in messages that follow v${version}; this channel reads v${version} messages (${why})`,
    hint: components === 1 ? `read ${at}` : `components of ${field.type} are .1 to .${components}`,
  };
}

/** The data type of a path's component: the field's own type for component 1 of a field without components. */
function typeOfComponent(version: Hl7Version, fieldType: string, component: number): string | undefined {
  const components = componentCount(version, fieldType);
  if (components === undefined) return undefined;
  return components === 1 ? (component === 1 ? fieldType : undefined) : componentType(version, fieldType, component);
}

/**
 * A subcomponent of a component whose type has none (PID-22.1.2: CWE.1 is ST) reads nothing in
 * any message; one of a composite component (PID-3.4.1: CX.4 is HD) is a place like any other.
 */
function checkSubcomponent(path: Hl7Path, fieldType: string, components: number, version: Hl7Version, why: string): PathProblem | undefined {
  if (path.subcomponent === undefined || path.subcomponent === 1) return undefined;
  const c = path.component!;
  const type = typeOfComponent(version, fieldType, c);
  if (type === undefined) return undefined;
  const count = componentCount(version, type);
  if (count === undefined || count > 1) return undefined;
  const componentText = path.text.replace(/\.\d+$/, '');
  const at = `${path.segment}-${path.field}.${c}`;
  const whose = components === 1 ? `${path.segment}-${path.field} is ${fieldType}` : `${at} (component ${c} of ${fieldType}) is ${type}`;
  // The same component may have subcomponents in another version's tables (XPN.1 is ST in v2.3, FN from v2.3.1).
  const composite = HL7_VERSIONS.filter((v) => {
    const fields = segmentFields(v, path.segment);
    const f = fields?.[path.field! - 1];
    if (!f || f.withdrawn) return false;
    const t = typeOfComponent(v, f.type, c);
    return t !== undefined && (componentCount(v, t) ?? 1) > 1;
  });
  const next = c + 1 <= components ? `${componentText.replace(/\.\d+$/, '')}.${c + 1}` : undefined;
  const hint = `read ${componentText}${next ? `, or ${next} for the next component (components are separated by ^, subcomponents by &)` : ''}`;
  if (composite.length) {
    return {
      severity: 'warning',
      code: 'hl7/no-subcomponents',
      message: `${whose} in HL7 v${version}, a value without subcomponents: ${path.text} is empty in messages that follow v${version} (it has subcomponents in ${describeVersions(composite)}); this channel reads v${version} messages (${why})`,
      hint: `${hint}; if the sender's messages are of a version where it has subcomponents, set hl7_version: to the version in their MSH-12`,
    };
  }
  return {
    severity: 'error',
    code: 'hl7/no-subcomponents',
    message: `${whose} in HL7 v${version}, a value without subcomponents: there is no ${path.text}; this channel reads v${version} messages (${why})`,
    hint,
  };
}
