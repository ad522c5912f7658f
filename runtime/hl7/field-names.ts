/**
 * HL7 v2.5.1 field names of the segments hospital interfaces carry, for showing a message field
 * by field (the admin API's message detail, the dashboard). Index 0 is field 1. A segment or
 * field not listed here has no name (Z-segments are site-defined); callers show its position.
 */
const FIELD_NAMES: Readonly<Record<string, readonly string[]>> = {
  MSH: [
    'Field Separator', 'Encoding Characters', 'Sending Application', 'Sending Facility', 'Receiving Application', 'Receiving Facility',
    'Date/Time of Message', 'Security', 'Message Type', 'Message Control ID', 'Processing ID', 'Version ID', 'Sequence Number',
    'Continuation Pointer', 'Accept Acknowledgment Type', 'Application Acknowledgment Type', 'Country Code', 'Character Set',
    'Principal Language of Message', 'Alternate Character Set Handling Scheme', 'Message Profile Identifier',
  ],
  EVN: ['Event Type Code', 'Recorded Date/Time', 'Date/Time Planned Event', 'Event Reason Code', 'Operator ID', 'Event Occurred', 'Event Facility'],
  PID: [
    'Set ID - PID', 'Patient ID', 'Patient Identifier List', 'Alternate Patient ID - PID', 'Patient Name', "Mother's Maiden Name", 'Date/Time of Birth',
    'Administrative Sex', 'Patient Alias', 'Race', 'Patient Address', 'County Code', 'Phone Number - Home', 'Phone Number - Business',
    'Primary Language', 'Marital Status', 'Religion', 'Patient Account Number', 'SSN Number - Patient', "Driver's License Number - Patient",
    "Mother's Identifier", 'Ethnic Group', 'Birth Place', 'Multiple Birth Indicator', 'Birth Order', 'Citizenship', 'Veterans Military Status',
    'Nationality', 'Patient Death Date and Time', 'Patient Death Indicator', 'Identity Unknown Indicator', 'Identity Reliability Code',
    'Last Update Date/Time', 'Last Update Facility', 'Species Code', 'Breed Code', 'Strain', 'Production Class Code', 'Tribal Citizenship',
  ],
  PD1: [
    'Living Dependency', 'Living Arrangement', 'Patient Primary Facility', 'Patient Primary Care Provider Name & ID No.', 'Student Indicator',
    'Handicap', 'Living Will Code', 'Organ Donor Code', 'Separate Bill', 'Duplicate Patient', 'Publicity Code', 'Protection Indicator',
    'Protection Indicator Effective Date', 'Place of Worship', 'Advance Directive Code', 'Immunization Registry Status',
    'Immunization Registry Status Effective Date', 'Publicity Code Effective Date', 'Military Branch', 'Military Rank/Grade', 'Military Status',
  ],
  NK1: [
    'Set ID - NK1', 'Name', 'Relationship', 'Address', 'Phone Number', 'Business Phone Number', 'Contact Role', 'Start Date', 'End Date',
    'Next of Kin / Associated Parties Job Title', 'Next of Kin / Associated Parties Job Code/Class', 'Next of Kin / Associated Parties Employee Number',
    'Organization Name - NK1', 'Marital Status', 'Administrative Sex', 'Date/Time of Birth', 'Living Dependency', 'Ambulatory Status', 'Citizenship',
    'Primary Language', 'Living Arrangement', 'Publicity Code', 'Protection Indicator', 'Student Indicator', 'Religion', "Mother's Maiden Name",
    'Nationality', 'Ethnic Group', 'Contact Reason', 'Contact Person\'s Name', "Contact Person's Telephone Number", "Contact Person's Address",
    "Next of Kin/Associated Party's Identifiers", 'Job Status', 'Race', 'Handicap', 'Contact Person Social Security Number', 'Next of Kin Birth Place',
    'VIP Indicator',
  ],
  PV1: [
    'Set ID - PV1', 'Patient Class', 'Assigned Patient Location', 'Admission Type', 'Preadmit Number', 'Prior Patient Location', 'Attending Doctor',
    'Referring Doctor', 'Consulting Doctor', 'Hospital Service', 'Temporary Location', 'Preadmit Test Indicator', 'Re-admission Indicator',
    'Admit Source', 'Ambulatory Status', 'VIP Indicator', 'Admitting Doctor', 'Patient Type', 'Visit Number', 'Financial Class',
    'Charge Price Indicator', 'Courtesy Code', 'Credit Rating', 'Contract Code', 'Contract Effective Date', 'Contract Amount', 'Contract Period',
    'Interest Code', 'Transfer to Bad Debt Code', 'Transfer to Bad Debt Date', 'Bad Debt Agency Code', 'Bad Debt Transfer Amount',
    'Bad Debt Recovery Amount', 'Delete Account Indicator', 'Delete Account Date', 'Discharge Disposition', 'Discharged to Location', 'Diet Type',
    'Servicing Facility', 'Bed Status', 'Account Status', 'Pending Location', 'Prior Temporary Location', 'Admit Date/Time', 'Discharge Date/Time',
    'Current Patient Balance', 'Total Charges', 'Total Adjustments', 'Total Payments', 'Alternate Visit ID', 'Visit Indicator', 'Other Healthcare Provider',
  ],
  MRG: ['Prior Patient Identifier List', 'Prior Alternate Patient ID', 'Prior Patient Account Number', 'Prior Patient ID', 'Prior Visit Number', 'Prior Alternate Visit ID', 'Prior Patient Name'],
  AL1: ['Set ID - AL1', 'Allergen Type Code', 'Allergen Code/Mnemonic/Description', 'Allergy Severity Code', 'Allergy Reaction Code', 'Identification Date'],
  DG1: [
    'Set ID - DG1', 'Diagnosis Coding Method', 'Diagnosis Code - DG1', 'Diagnosis Description', 'Diagnosis Date/Time', 'Diagnosis Type',
    'Major Diagnostic Category', 'Diagnostic Related Group', 'DRG Approval Indicator', 'DRG Grouper Review Code', 'Outlier Type', 'Outlier Days',
    'Outlier Cost', 'Grouper Version And Type', 'Diagnosis Priority', 'Diagnosing Clinician', 'Diagnosis Classification', 'Confidential Indicator',
    'Attestation Date/Time', 'Diagnosis Identifier', 'Diagnosis Action Code',
  ],
  ORC: [
    'Order Control', 'Placer Order Number', 'Filler Order Number', 'Placer Group Number', 'Order Status', 'Response Flag', 'Quantity/Timing',
    'Parent', 'Date/Time of Transaction', 'Entered By', 'Verified By', 'Ordering Provider', "Enterer's Location", 'Call Back Phone Number',
    'Order Effective Date/Time', 'Order Control Code Reason', 'Entering Organization', 'Entering Device', 'Action By', 'Advanced Beneficiary Notice Code',
    'Ordering Facility Name', 'Ordering Facility Address', 'Ordering Facility Phone Number', 'Ordering Provider Address', 'Order Status Modifier',
    'Advanced Beneficiary Notice Override Reason', "Filler's Expected Availability Date/Time", 'Confidentiality Code', 'Order Type',
    'Enterer Authorization Mode', 'Parent Universal Service Identifier',
  ],
  OBR: [
    'Set ID - OBR', 'Placer Order Number', 'Filler Order Number', 'Universal Service Identifier', 'Priority - OBR', 'Requested Date/Time',
    'Observation Date/Time', 'Observation End Date/Time', 'Collection Volume', 'Collector Identifier', 'Specimen Action Code', 'Danger Code',
    'Relevant Clinical Information', 'Specimen Received Date/Time', 'Specimen Source', 'Ordering Provider', 'Order Callback Phone Number',
    'Placer Field 1', 'Placer Field 2', 'Filler Field 1', 'Filler Field 2', 'Results Rpt/Status Chng - Date/Time', 'Charge to Practice',
    'Diagnostic Serv Sect ID', 'Result Status', 'Parent Result', 'Quantity/Timing', 'Result Copies To', 'Parent', 'Transportation Mode',
    'Reason for Study', 'Principal Result Interpreter', 'Assistant Result Interpreter', 'Technician', 'Transcriptionist', 'Scheduled Date/Time',
    'Number of Sample Containers', 'Transport Logistics of Collected Sample', "Collector's Comment", 'Transport Arrangement Responsibility',
    'Transport Arranged', 'Escort Required', 'Planned Patient Transport Comment', 'Procedure Code', 'Procedure Code Modifier',
    'Placer Supplemental Service Information', 'Filler Supplemental Service Information', 'Medically Necessary Duplicate Procedure Reason',
    'Result Handling', 'Parent Universal Service Identifier',
  ],
  OBX: [
    'Set ID - OBX', 'Value Type', 'Observation Identifier', 'Observation Sub-ID', 'Observation Value', 'Units', 'References Range',
    'Abnormal Flags', 'Probability', 'Nature of Abnormal Test', 'Observation Result Status', 'Effective Date of Reference Range',
    'User Defined Access Checks', 'Date/Time of the Observation', "Producer's ID", 'Responsible Observer', 'Observation Method',
    'Equipment Instance Identifier', 'Date/Time of the Analysis', 'Reserved', 'Reserved', 'Reserved', 'Performing Organization Name',
    'Performing Organization Address', 'Performing Organization Medical Director',
  ],
  NTE: ['Set ID - NTE', 'Source of Comment', 'Comment', 'Comment Type'],
  TXA: [
    'Set ID - TXA', 'Document Type', 'Document Content Presentation', 'Activity Date/Time', 'Primary Activity Provider Code/Name',
    'Origination Date/Time', 'Transcription Date/Time', 'Edit Date/Time', 'Originator Code/Name', 'Assigned Document Authenticator',
    'Transcriptionist Code/Name', 'Unique Document Number', 'Parent Document Number', 'Placer Order Number', 'Filler Order Number',
    'Unique Document File Name', 'Document Completion Status', 'Document Confidentiality Status', 'Document Availability Status',
    'Document Storage Status', 'Document Change Reason', 'Authentication Person, Time Stamp', 'Distributed Copies',
  ],
  SCH: [
    'Placer Appointment ID', 'Filler Appointment ID', 'Occurrence Number', 'Placer Group Number', 'Schedule ID', 'Event Reason',
    'Appointment Reason', 'Appointment Type', 'Appointment Duration', 'Appointment Duration Units', 'Appointment Timing Quantity',
    'Placer Contact Person', 'Placer Contact Phone Number', 'Placer Contact Address', 'Placer Contact Location', 'Filler Contact Person',
    'Filler Contact Phone Number', 'Filler Contact Address', 'Filler Contact Location', 'Entered By Person', 'Entered By Phone Number',
    'Entered By Location', 'Parent Placer Appointment ID', 'Parent Filler Appointment ID', 'Filler Status Code', 'Placer Order Number',
    'Filler Order Number',
  ],
  MSA: ['Acknowledgment Code', 'Message Control ID', 'Text Message', 'Expected Sequence Number', 'Delayed Acknowledgment Type', 'Error Condition'],
  ERR: [
    'Error Code and Location', 'Error Location', 'HL7 Error Code', 'Severity', 'Application Error Code', 'Application Error Parameter',
    'Diagnostic Information', 'User Message', 'Inform Person Indicator', 'Override Type', 'Override Reason Code', 'Help Desk Contact Point',
  ],
};

/** The HL7 name of field `n` (1-based) of a segment, or null when the table does not know it. */
export function fieldName(segment: string, n: number): string | null {
  return FIELD_NAMES[segment]?.[n - 1] ?? null;
}

/** Segments whose field names are known. */
export function namedSegments(): string[] {
  return Object.keys(FIELD_NAMES);
}
