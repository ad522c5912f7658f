import { readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Hl7Version } from '../../runtime/index.js';
import { DEFAULT_HL7_VERSION, readHeaderLeniently, tableVersionOf } from '../../runtime/index.js';
import type { PathKey } from './source-map.js';
import type { Spec } from './types.js';

/** The HL7 version a channel's paths are checked against, and why that one. */
export interface ChannelHl7Version {
  version: Hl7Version;
  /** hl7_version: the spec says it; build: its build.version; tests: the one version its test messages carry; default: none of these. */
  from: 'hl7_version' | 'build' | 'tests' | 'default';
  /** Where the spec says it (hl7_version or build.version). */
  where?: PathKey[];
  /** For diagnostics: "hl7_version: 2.3", "the v2.3 its test messages carry (MSH-12)", … */
  why: string;
}

/**
 * Which version's tables a channel's paths are read with: hl7_version when the spec states it;
 * else build.version for a channel that builds its message from JSON; else the version its test
 * messages carry in MSH-12 when they all carry the same one; else v2.5.1, what hl7c always
 * checked against.
 */
export function channelHl7Version(spec: Spec, specDir: string): ChannelHl7Version {
  if (spec.hl7_version) return { version: spec.hl7_version, from: 'hl7_version', where: ['hl7_version'], why: `hl7_version: ${spec.hl7_version}` };
  const built = spec.build && tableVersionOf(spec.build.version);
  if (built) return { version: built, from: 'build', where: ['build', 'version'], why: `build.version: ${spec.build!.version}` };
  const carried = new Set(testMessageVersions(spec, specDir));
  if (carried.size === 1) {
    const version = [...carried][0]!;
    return { version, from: 'tests', why: `the v${version} its test messages carry in MSH-12; say hl7_version: to choose` };
  }
  return { version: DEFAULT_HL7_VERSION, from: 'default', why: `v${DEFAULT_HL7_VERSION}, the default; say hl7_version: for the version its messages carry` };
}

/** The table versions of the HL7 test inputs (inline or files) that have an MSH-12 hl7c can read. */
function testMessageVersions(spec: Spec, specDir: string): Hl7Version[] {
  const versions: Hl7Version[] = [];
  for (const t of spec.tests ?? []) {
    if (typeof t.input !== 'string') continue;
    const input = t.input.trim();
    let text: string | undefined;
    if (input.startsWith('MSH')) text = input;
    else if (statSync(resolve(specDir, input), { throwIfNoEntry: false })?.isFile()) text = readFileSync(resolve(specDir, input)).subarray(0, 4096).toString('latin1');
    if (!text?.startsWith('MSH')) continue;
    const header = readHeaderLeniently(text);
    const version = tableVersionOf(header.version.split(header.delimiters.component)[0] ?? '');
    if (version) versions.push(version);
  }
  return versions;
}
