import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { CliIo } from '../io.js';

const SAMPLE = [
  'MSH|^~\\&|EHR|HOSPITAL|HL7C|APP|20260101120000||ADT^A04^ADT_A01|MSG0001|P|2.5.1',
  'EVN|A04|20260101120000',
  'PID|1||12345^^^HOSP^MR~999-00-1234^^^SSA^SS||DOE^JANE||19800101|F',
].join('\r') + '\r';

const SPEC = `# yaml-language-server: $schema=SCHEMA
channel: my-adt-feed
description: Patient registrations from the hospital, as JSON.

source:
  mllp:
    port: \${MY_ADT_PORT:-2575}

accept:
  - rule: registrations
    if: { message_type: [ADT^A04, ADT^A08] }
    otherwise: reject

identifiers:
  patient:
    kind: patient
    assigning_authority: HOSP
    type_code: MR
    required: true

map:
  event: { path: MSH-9.2 }
  patient.mrn: { identifier: patient }
  patient.family_name: { path: PID-5.1 }
  patient.birth_date: { path: PID-7, transform: [date] }

destinations:
  app:
    http:
      url: \${APP_WEBHOOK_URL:-http://127.0.0.1:8080/hl7}

tests:
  - name: registration maps the MR number
    input: messages/adt-a04.hl7
    expect:
      ack: AA
      identifiers: { patient: "12345" }
      output: { patient: { mrn: "12345", family_name: DOE, birth_date: "1980-01-01" } }
`;

/** `hl7c init <dir>`: a spec with one sample message and one passing test. */
export async function initCommand(args: { dir: string; schemaPath: string }, io: CliIo): Promise<number> {
  const dir = resolve(io.cwd, args.dir);
  await mkdir(join(dir, 'messages'), { recursive: true });
  const specPath = join(dir, 'my-adt-feed.yaml');
  await writeFile(specPath, SPEC.replace('SCHEMA', args.schemaPath), { flag: 'wx' }).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'EEXIST') throw new Error(`${specPath} already exists; init does not overwrite`);
    throw err;
  });
  await writeFile(join(dir, 'messages/adt-a04.hl7'), SAMPLE);
  io.stdout(`created ${join(args.dir, 'my-adt-feed.yaml')} and ${join(args.dir, 'messages/adt-a04.hl7')}\nnext: npx hl7c test ${join(args.dir, 'my-adt-feed.yaml')}\n`);
  return 0;
}
