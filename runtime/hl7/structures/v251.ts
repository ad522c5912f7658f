/**
 * HL7 v2.5.1 abstract message syntax of the message structures hospitals send, as data.
 *
 * Notation, one element after another: a segment id (`PID`), a choice of segments
 * (`OBR|RQD|RXO`), or a group `NAME(…)`; a suffix says how often: none = once, `?` optional,
 * `+` repeating, `*` optional and repeating. MSH-9.3 names the structure; a message without it
 * is looked up by MSH-9.1^9.2 in EVENT_STRUCTURES (HL7 table 0354).
 */
export const STRUCTURES: Readonly<Record<string, string>> = {
  ACK: 'MSH SFT* MSA ERR*',
  ADT_A01:
    'MSH SFT* EVN PID PD1? ROL* NK1* PV1 PV2? ROL* DB1* OBX* AL1* DG1* DRG? PROCEDURE(PR1 ROL*)* GT1* INSURANCE(IN1 IN2? IN3* ROL*)* ACC? UB1? UB2? PDA?',
  ADT_A02: 'MSH SFT* EVN PID PD1? ROL* PV1 PV2? ROL* DB1* OBX* PDA?',
  ADT_A03:
    'MSH SFT* EVN PID PD1? ROL* NK1* PV1 PV2? ROL* DB1* AL1* DG1* DRG? PROCEDURE(PR1 ROL*)* OBX* GT1* INSURANCE(IN1 IN2? IN3* ROL*)* ACC? PDA?',
  ADT_A05:
    'MSH SFT* EVN PID PD1? ROL* NK1* PV1 PV2? ROL* DB1* OBX* AL1* DG1* DRG? PROCEDURE(PR1 ROL*)* GT1* INSURANCE(IN1 IN2? IN3* ROL*)* ACC? UB1? UB2?',
  ADT_A06:
    'MSH SFT* EVN PID PD1? ROL* MRG? NK1* PV1 PV2? ROL* DB1* OBX* AL1* DG1* DRG? PROCEDURE(PR1 ROL*)* GT1* INSURANCE(IN1 IN2? IN3* ROL*)* ACC? UB1? UB2?',
  ADT_A09: 'MSH SFT* EVN PID PD1? PV1 PV2? DB1* OBX* DG1*',
  ADT_A12: 'MSH SFT* EVN PID PD1? PV1 PV2? DB1* OBX* DG1?',
  ADT_A21: 'MSH SFT* EVN PID PD1? PV1 PV2? DB1* OBX*',
  ADT_A30: 'MSH SFT* EVN PID PD1? MRG',
  ADT_A38: 'MSH SFT* EVN PID PD1? PV1 PV2? DB1* OBX* DG1* DRG?',
  ADT_A39: 'MSH SFT* EVN PATIENT(PID PD1? MRG PV1?)+',
  ADT_A43: 'MSH SFT* EVN PATIENT(PID PD1? MRG)+',
  ORU_R01:
    'MSH SFT* PATIENT_RESULT(PATIENT(PID PD1? NTE* NK1* VISIT(PV1 PV2?)?)? ORDER_OBSERVATION(ORC? OBR NTE* TIMING_QTY(TQ1 TQ2*)* CTD? OBSERVATION(OBX NTE*)* FT1* CTI* SPECIMEN(SPM OBX*)*)+)+ DSC?',
  ORM_O01:
    'MSH NTE* PATIENT(PID PD1? NTE* PATIENT_VISIT(PV1 PV2?)? INSURANCE(IN1 IN2? IN3?)* GT1? AL1*)? ORDER(ORC ORDER_DETAIL(OBR|RQD|RQ1|RXO|ODS|ODT NTE* CTD? DG1* OBSERVATION(OBX NTE*)*)? FT1* CTI* BLG?)+',
  OML_O21:
    'MSH SFT* NTE* PATIENT(PID PD1? NTE* NK1* PATIENT_VISIT(PV1 PV2?)? INSURANCE(IN1 IN2? IN3?)* GT1? AL1*)? ORDER(ORC TIMING(TQ1 TQ2*)* OBSERVATION_REQUEST(OBR TCD* NTE* DG1* OBSERVATION(OBX TCD? NTE*)* SPECIMEN(SPM OBX* CONTAINER(SAC OBX*)*)* PRIOR_RESULT(PATIENT_PRIOR(PID PD1?)? PATIENT_VISIT_PRIOR(PV1 PV2?)? AL1* ORDER_PRIOR(ORC? OBR TIMING_PRIOR(TQ1 TQ2*)* NTE* CTD? OBSERVATION_PRIOR(OBX NTE*)+)+)*)? FT1* CTI* BLG?)+',
  SIU_S12:
    'MSH SCH TQ1* NTE* PATIENT(PID PD1? PV1? PV2? OBX* DG1*)* RESOURCES(RGS SERVICE(AIS NTE*)* GENERAL_RESOURCE(AIG NTE*)* LOCATION_RESOURCE(AIL NTE*)* PERSONNEL_RESOURCE(AIP NTE*)*)+',
  MDM_T01: 'MSH SFT* EVN PID PV1 COMMON_ORDER(ORC TIMING(TQ1 TQ2*)* OBR NTE*)* TXA CON*',
  MDM_T02: 'MSH SFT* EVN PID PV1 COMMON_ORDER(ORC TIMING(TQ1 TQ2*)* OBR NTE*)* TXA CON* OBSERVATION(OBX NTE*)+',
  VXU_V04:
    'MSH SFT* PID PD1? NK1* PATIENT(PV1 PV2?)? GT1* INSURANCE(IN1 IN2? IN3?)* ORDER(ORC TIMING(TQ1 TQ2*)* RXA RXR? OBSERVATION(OBX NTE*)*)*',
  DFT_P03:
    'MSH SFT* EVN PID PD1? ROL* PV1? PV2? ROL* DB1* COMMON_ORDER(ORC? TIMING_QUANTITY(TQ1 TQ2*)* ORDER(OBR NTE*)? OBSERVATION(OBX NTE*)*)* FINANCIAL(FT1 FINANCIAL_PROCEDURE(PR1 ROL*)* FINANCIAL_COMMON_ORDER(ORC? FINANCIAL_TIMING_QUANTITY(TQ1 TQ2*)* FINANCIAL_ORDER(OBR NTE*)? FINANCIAL_OBSERVATION(OBX NTE*)*)*)+ DG1* DRG? GT1* INSURANCE(IN1 IN2? IN3* ROL*)* ACC?',
};

/** MSH-9.1^9.2 to the structure it uses (v2.5.1 table 0354), for messages without MSH-9.3. */
export const EVENT_STRUCTURES: Readonly<Record<string, string>> = {
  ...events('ADT_A01', 'ADT', ['A01', 'A04', 'A08', 'A13']),
  ...events('ADT_A02', 'ADT', ['A02']),
  ...events('ADT_A03', 'ADT', ['A03']),
  ...events('ADT_A05', 'ADT', ['A05', 'A14', 'A28', 'A31']),
  ...events('ADT_A06', 'ADT', ['A06', 'A07']),
  ...events('ADT_A09', 'ADT', ['A09', 'A10', 'A11']),
  ...events('ADT_A12', 'ADT', ['A12']),
  ...events('ADT_A21', 'ADT', ['A21', 'A22', 'A23', 'A25', 'A26', 'A27', 'A29', 'A32', 'A33']),
  ...events('ADT_A30', 'ADT', ['A30', 'A34', 'A35', 'A36', 'A46', 'A47', 'A48', 'A49']),
  ...events('ADT_A38', 'ADT', ['A38']),
  ...events('ADT_A39', 'ADT', ['A39', 'A40', 'A41', 'A42']),
  ...events('ADT_A43', 'ADT', ['A43', 'A44']),
  ...events('ORU_R01', 'ORU', ['R01']),
  ...events('ORM_O01', 'ORM', ['O01']),
  ...events('OML_O21', 'OML', ['O21']),
  ...events('SIU_S12', 'SIU', ['S12', 'S13', 'S14', 'S15', 'S16', 'S17', 'S18', 'S19', 'S20', 'S21', 'S22', 'S23', 'S24', 'S26']),
  ...events('MDM_T01', 'MDM', ['T01', 'T03', 'T05', 'T07', 'T09', 'T11']),
  ...events('MDM_T02', 'MDM', ['T02', 'T04', 'T06', 'T08', 'T10']),
  ...events('VXU_V04', 'VXU', ['V04']),
  ...events('DFT_P03', 'DFT', ['P03']),
};

function events(structure: string, code: string, triggers: readonly string[]): Record<string, string> {
  return Object.fromEntries(triggers.map((t) => [`${code}^${t}`, structure]));
}
