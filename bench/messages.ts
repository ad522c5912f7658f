import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CORPUS_DIR } from './corpus.js';


/** A real ADT^A01 from the shared corpus (~1.5 KB, v2.3). */
export const ADT_A01 = readFileSync(join(CORPUS_DIR, 'adt/fhirconv-adt-a01-v23.hl7'), 'utf8');

/** An ORU^R01 with 22 OBX (~3 KB), shaped like a lab panel with reference ranges and flags. */
export const ORU_R01 = (() => {
  const segments = [
    'MSH|^~\\&|LAB|GOODHEALTH|EHR|GOODHEALTH|20261125101500-0500||ORU^R01^ORU_R01|LAB0000001|P|2.5.1|||AL|NE||UNICODE UTF-8',
    'PID|1||E1234567^^^EPI^MR~900123456^^^SSA^SS||TESTPATIENT^ALEX^J||19840512|F|||100 MAIN ST^^SPRINGFIELD^IL^62701^USA',
    'PV1|1|O|LAB^^^GOODHEALTH||||1234567^WELBY^MARCUS^^^^MD',
    'ORC|RE|ORD-778899^EPIC|LAB-445566^LAB||CM',
    'OBR|1|ORD-778899^EPIC|LAB-445566^LAB|24323-8^Comprehensive metabolic panel^LN|||20261125093000-0500|||||||||1234567^WELBY^MARCUS||||||20261125101400-0500|||F',
  ];
  const tests = ['2345-7^Glucose', '2160-0^Creatinine', '3094-0^Urea nitrogen', '2951-2^Sodium', '2823-3^Potassium', '2075-0^Chloride', '2028-9^CO2', '17861-6^Calcium', '2885-2^Protein', '1751-7^Albumin', '1975-2^Bilirubin', '6768-6^Alk phos', '1742-6^ALT', '1920-8^AST', '33914-3^eGFR', '718-7^Hemoglobin', '4544-3^Hematocrit', '6690-2^WBC', '789-8^RBC', '777-3^Platelets', '2093-3^Cholesterol', '2571-8^Triglyceride'];
  tests.forEach((t, i) => {
    segments.push(`OBX|${i + 1}|NM|${t}^LN||${(4.2 + i * 1.7).toFixed(1)}|mg/dL^milligram per deciliter^UCUM|3.5-${(9 + i).toFixed(1)}|${i % 5 === 0 ? 'H' : 'N'}|||F|||20261125100000-0500|LAB^Main lab`);
  });
  return segments.join('\r') + '\r';
})();
