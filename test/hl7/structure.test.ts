import { describe, expect, test } from 'vitest';
import { parseMessage } from '../../runtime/index.js';
import type { GroupInstance, MessageStructure } from '../../runtime/hl7/structure.js';
import { matchStructure, structureDefinition, structureIdOf } from '../../runtime/hl7/structure.js';
import { STRUCTURES } from '../../runtime/hl7/structures/v251.js';
import { corpusFile, corpusFiles } from '../corpus.js';

const TYPES = ['adt', 'oru', 'orm', 'mdm', 'siu', 'vxu', 'dft'];

/** The group path of a segment, e.g. ORU_R01/PATIENT_RESULT/ORDER_OBSERVATION/OBSERVATION. */
function groupPath(structure: MessageStructure, position: number): string {
  const names: string[] = [];
  for (let g: GroupInstance | undefined = structure.owner[position]; g; g = g.parent) names.unshift(g.definition.name);
  return names.join('/');
}

/** Segment positions of the tree in the order a depth-first walk meets them. */
function positionsInTree(group: GroupInstance): number[] {
  return group.children.flatMap((c) => (typeof c === 'number' ? [c] : positionsInTree(c)));
}

function match(relative: string | Buffer): MessageStructure {
  const message = parseMessage(typeof relative === 'string' ? corpusFile(relative) : relative);
  const structure = matchStructure(message);
  if (!structure) throw new Error(`no structure for ${String(relative)}`);
  return structure;
}

describe('message structure groups', () => {
  test('every structure in the table parses, and every group can be opened', () => {
    for (const id of Object.keys(STRUCTURES)) {
      const d = structureDefinition(id)!;
      expect(d.name).toBe(id);
      expect(d.contains.has('MSH')).toBe(true);
      const groups = [d];
      for (let i = 0; i < groups.length; i++) for (const e of groups[i]!.elements) if (e.kind === 'group') groups.push(e);
      for (const g of groups) expect(g.opens.size, `${id} ${g.name}`).toBeGreaterThan(0);
    }
  });

  const files = corpusFiles((c) => TYPES.includes(c)).filter((f) => structureIdOf(parseMessage(f.bytes)) !== undefined);

  test('the corpus has messages of every type hl7c knows the structure of', () => {
    const ids = new Set(files.map((f) => structureIdOf(parseMessage(f.bytes))));
    for (const id of ['ADT_A01', 'ADT_A03', 'ADT_A39', 'ORU_R01', 'ORM_O01', 'SIU_S12', 'MDM_T02', 'VXU_V04', 'DFT_P03']) expect(ids).toContain(id);
  });

  test.each(files.map((f) => [`${f.category}/${f.name}`, f.bytes] as const))('%s: every segment is placed once, in message order', (_name, bytes) => {
    const message = parseMessage(bytes);
    const structure = matchStructure(message)!;
    expect(positionsInTree(structure.root)).toEqual(message.segments.map((_, i) => i));
    message.segments.forEach((_, i) => expect(structure.owner[i]).toBeDefined());
    expect(groupPath(structure, 0)).toBe(structure.id);
  });

  test('A40 with two PID/MRG pairs: one PATIENT group per pair', () => {
    const s = match('adt/fhirconv-adt-a40-mrg-multi.hl7');
    expect(s.id).toBe('ADT_A39');
    expect([2, 3, 4, 5].map((i) => groupPath(s, i))).toEqual(Array(4).fill('ADT_A39/PATIENT'));
    expect(s.owner[2]).toBe(s.owner[3]);
    expect(s.owner[4]).toBe(s.owner[5]);
    expect(s.owner[2]).not.toBe(s.owner[4]);
    expect(groupPath(s, 1)).toBe('ADT_A39');
  });

  test('ORU: patient notes, order notes, result notes and specimen results each in their group', () => {
    // MSH SFT PID PD1 NTE NTE NK1 NK1 PV1 PV2 ORC OBR OBX OBX SPM OBX OBR NTE NTE OBX NTE NTE SPM OBX
    const s = match('oru/prime-oru-r01-full-mapping.hl7');
    const R = 'ORU_R01/PATIENT_RESULT';
    expect(groupPath(s, 4)).toBe(`${R}/PATIENT`);
    expect(groupPath(s, 8)).toBe(`${R}/PATIENT/VISIT`);
    expect(groupPath(s, 11)).toBe(`${R}/ORDER_OBSERVATION`);
    expect(groupPath(s, 12)).toBe(`${R}/ORDER_OBSERVATION/OBSERVATION`);
    expect(s.owner[12]).not.toBe(s.owner[13]);
    expect(groupPath(s, 15)).toBe(`${R}/ORDER_OBSERVATION/SPECIMEN`);
    expect(s.owner[15]).toBe(s.owner[14]);
    expect(s.owner[17]).toBe(s.owner[16]);
    expect(s.owner[16]).not.toBe(s.owner[11]);
    expect(s.owner[20]).toBe(s.owner[19]);
    expect(groupPath(s, 20)).toBe(`${R}/ORDER_OBSERVATION/OBSERVATION`);
    expect(s.owner[23]).toBe(s.owner[22]);
  });

  test('ORU without MSH-9.3 (v2.3) and with Z-segments at the end: the Z-segments stay with the group they follow', () => {
    const s = match('oru/hamaluik-oru-r01-cbc-escapes.hl7');
    const last = s.owner.length - 1;
    expect(groupPath(s, last)).toBe('ORU_R01/PATIENT_RESULT/ORDER_OBSERVATION/OBSERVATION');
    expect(s.owner[last]).toBe(s.owner[last - 2]);
  });

  test('SIU: resources with their own notes', () => {
    // … RGS AIS NTE AIG NTE AIL NTE AIP NTE NTE RGS AIS AIS NTE …
    const s = match('siu/fhirconv-siu-s12-rgs-ais.hl7');
    const message = parseMessage(corpusFile('siu/fhirconv-siu-s12-rgs-ais.hl7'));
    const names = message.segments.map((x) => x.name);
    const aip = names.indexOf('AIP');
    expect(groupPath(s, aip + 1)).toBe('SIU_S12/RESOURCES/PERSONNEL_RESOURCE');
    expect(groupPath(s, aip + 2)).toBe('SIU_S12/RESOURCES/PERSONNEL_RESOURCE');
    expect(groupPath(s, names.indexOf('NTE'))).toBe('SIU_S12');
    expect(groupPath(s, names.indexOf('PID'))).toBe('SIU_S12/PATIENT');
    const rgs = names.flatMap((n, i) => (n === 'RGS' ? [i] : []));
    expect(s.owner[rgs[0]!]).not.toBe(s.owner[rgs[1]!]);
  });

  test('ORM, MDM, VXU, DFT: orders, observations and financial groups', () => {
    // MSH PID PD1 NTE NTE PV1 PV2 IN1 ORC OBR OBX NTE OBX NTE
    const orm = match('orm/prime-orm-o01-full-mapping.hl7');
    expect([3, 5, 7, 9, 10, 11].map((i) => groupPath(orm, i))).toEqual([
      'ORM_O01/PATIENT',
      'ORM_O01/PATIENT/PATIENT_VISIT',
      'ORM_O01/PATIENT/INSURANCE',
      'ORM_O01/ORDER/ORDER_DETAIL',
      'ORM_O01/ORDER/ORDER_DETAIL/OBSERVATION',
      'ORM_O01/ORDER/ORDER_DETAIL/OBSERVATION',
    ]);
    // MSH EVN PID PV1 ORC TQ1 OBR NTE TXA CON OBX NTE OBX
    const mdm = match('mdm/fhirconv-mdm-t02-01.hl7');
    expect([5, 7, 8, 10, 11].map((i) => groupPath(mdm, i))).toEqual(['MDM_T02/COMMON_ORDER/TIMING', 'MDM_T02/COMMON_ORDER', 'MDM_T02', 'MDM_T02/OBSERVATION', 'MDM_T02/OBSERVATION']);
    expect(mdm.owner[12]).not.toBe(mdm.owner[10]);
    // MSH PID ORC RXA OBX ORC RXA OBX
    const vxu = match('vxu/lfh-vxu-v04-miic-two-rxa.hl7');
    expect([3, 4, 6].map((i) => groupPath(vxu, i))).toEqual(['VXU_V04/ORDER', 'VXU_V04/ORDER/OBSERVATION', 'VXU_V04/ORDER']);
    expect(vxu.owner[3]).not.toBe(vxu.owner[6]);
    // MSH EVN PID PV1 ORC OBR NTE OBX NTE FT1 IN1
    const dft = match('dft/lfh-dft-p03-minimal-ft1-in1.hl7');
    expect([4, 5, 6, 7, 8, 9, 10].map((i) => groupPath(dft, i))).toEqual([
      'DFT_P03/COMMON_ORDER',
      'DFT_P03/COMMON_ORDER/ORDER',
      'DFT_P03/COMMON_ORDER/ORDER',
      'DFT_P03/COMMON_ORDER/OBSERVATION',
      'DFT_P03/COMMON_ORDER/OBSERVATION',
      'DFT_P03/FINANCIAL',
      'DFT_P03/INSURANCE',
    ]);
  });

  test('OML^O21 (structure from the event when MSH-9.3 is empty): specimens and containers under their request', () => {
    const oml = Buffer.from(
      ['MSH|^~\\&|LIS|GH|LAB|GH|20261125||OML^O21|1|P|2.5.1', 'PID|1||E1^^^EPI^MR', 'ORC|NW|P1', 'OBR|1|P1||CBC', 'NTE|1||fasting', 'SPM|1|S1', 'SAC|1', 'OBX|1|ST|X||y', 'ORC|NW|P2', 'OBR|2|P2||BMP'].join('\r'),
    );
    const s = match(oml);
    expect(s.id).toBe('OML_O21');
    expect([1, 3, 4, 5, 6, 7, 9].map((i) => groupPath(s, i))).toEqual([
      'OML_O21/PATIENT',
      'OML_O21/ORDER/OBSERVATION_REQUEST',
      'OML_O21/ORDER/OBSERVATION_REQUEST',
      'OML_O21/ORDER/OBSERVATION_REQUEST/SPECIMEN',
      'OML_O21/ORDER/OBSERVATION_REQUEST/SPECIMEN/CONTAINER',
      'OML_O21/ORDER/OBSERVATION_REQUEST/SPECIMEN/CONTAINER',
      'OML_O21/ORDER/OBSERVATION_REQUEST',
    ]);
    expect(s.owner[3]).not.toBe(s.owner[9]);
  });

  test('out-of-order, unknown and Z-segments never crash and are all placed, in order', () => {
    for (const f of files) {
      const message = parseMessage(f.bytes);
      const segments = message.segments;
      // Deterministic shuffles of everything after MSH, plus a Z-segment and an unknown one.
      for (let seed = 1; seed <= 5; seed++) {
        const rest = segments.slice(1).map((s) => s.toString());
        for (let i = rest.length - 1; i > 0; i--) {
          const j = (i * 7919 + seed * 104729) % (i + 1);
          [rest[i], rest[j]] = [rest[j]!, rest[i]!];
        }
        rest.splice(seed % (rest.length + 1), 0, 'ZXX|1|site data', 'QAK|1');
        const shuffled = parseMessage(Buffer.from([segments[0]!.toString(), ...rest].join('\r')));
        const s = matchStructure(shuffled)!;
        expect(positionsInTree(s.root)).toEqual(shuffled.segments.map((_, i) => i));
      }
    }
  });

  test('an unknown structure has none (callers keep reading segments in order)', () => {
    expect(matchStructure(parseMessage(corpusFile('edge/hl7apy-zdt-z01-custom-message-type.hl7')))).toBeUndefined();
    expect(matchStructure(parseMessage(corpusFile('adt/medplum-adt-v21-msh9-one-component.hl7')))).toBeUndefined();
  });
});
