/**
 * HL7 v2.5.1 segments that interfaces use, with their number of fields, so specs can be checked
 * before go-live. Z-segments are site-defined and always allowed.
 */
export const SEGMENT_FIELD_COUNTS: Readonly<Record<string, number>> = {
  MSH: 21, EVN: 7, PID: 39, PD1: 21, NK1: 39, PV1: 52, PV2: 49, MRG: 7, AL1: 6, DG1: 21, IN1: 53, IN2: 72, GT1: 57,
  ORC: 31, OBR: 50, OBX: 25, NTE: 4, TXA: 23, SCH: 27, AIS: 12, AIG: 14, AIL: 12, AIP: 12, RGS: 3, FT1: 31,
  MSA: 6, ERR: 12, TQ1: 14, SPM: 30, SFT: 6, PR1: 20, ROL: 12,
};

/** Segments each message code can carry (v2.5.1 abstract message structures, flattened). */
export const MESSAGE_SEGMENTS: Readonly<Record<string, readonly string[]>> = {
  ADT: ['MSH', 'SFT', 'EVN', 'PID', 'PD1', 'ROL', 'NK1', 'PV1', 'PV2', 'OBX', 'AL1', 'DG1', 'PR1', 'GT1', 'IN1', 'IN2', 'MRG', 'NTE'],
  SIU: ['MSH', 'SCH', 'TQ1', 'NTE', 'PID', 'PD1', 'PV1', 'PV2', 'OBX', 'DG1', 'RGS', 'AIS', 'AIG', 'AIL', 'AIP'],
  ORU: ['MSH', 'SFT', 'PID', 'PD1', 'NTE', 'NK1', 'PV1', 'PV2', 'ORC', 'OBR', 'TQ1', 'OBX', 'SPM'],
  ORM: ['MSH', 'NTE', 'PID', 'PD1', 'PV1', 'PV2', 'IN1', 'GT1', 'AL1', 'ORC', 'OBR', 'TQ1', 'DG1', 'OBX'],
  OMG: ['MSH', 'SFT', 'NTE', 'PID', 'PD1', 'PV1', 'PV2', 'IN1', 'GT1', 'AL1', 'ORC', 'TQ1', 'OBR', 'DG1', 'OBX', 'SPM'],
  MDM: ['MSH', 'SFT', 'EVN', 'PID', 'PV1', 'TXA', 'OBX', 'NTE'],
  DFT: ['MSH', 'SFT', 'EVN', 'PID', 'PD1', 'ROL', 'PV1', 'PV2', 'OBX', 'FT1', 'PR1', 'DG1', 'GT1', 'IN1', 'NTE'],
  ACK: ['MSH', 'SFT', 'MSA', 'ERR'],
};

export function isZSegment(name: string): boolean {
  return name.startsWith('Z');
}
