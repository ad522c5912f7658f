import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { parseMessage } from '../../runtime/index.js';
import { CORPUS_DIR, corpusFile } from '../corpus.js';
import { runBin } from './helpers.js';

// Each case starts the real CLI, which compiles the spec (TypeScript) before it runs: slow on a busy machine.
const hl7c = (args: string[]) => runBin(args, { timeoutMs: 60_000 });
const SLOW = 90_000;

const SPEC = `channel: preview-adt
source: { mllp: { port: 2575 } }
identifiers:
  patient: { kind: patient, type_code: MR, required: true }
transform:
  - set: { path: MSH-5, value: PREVIEW }
destinations:
  ehr:
    mllp: { host: ehr.local, port: 2575 }
  test-only:
    when: { path: MSH-11, equals: T }
    http: { url: "http://127.0.0.1:9/x" }
  archive:
    file: { dir: $DIR/archive, file_name: "{control_id}.hl7", content: raw }
`;

function writeSpec(): { dir: string; spec: string } {
  const dir = mkdtempSync(join(tmpdir(), 'hl7c-preview-'));
  const spec = join(dir, 'adt.yaml');
  writeFileSync(spec, SPEC.replaceAll('$DIR', dir));
  return { dir, spec };
}

const segments = (bytes: Buffer) => bytes.toString('utf8').split('\r').filter(Boolean);

describe('hl7c preview', () => {
  test('a corpus ADT: outcome, the ACK a segment per line, identifiers, route with why not, each payload as it would go on the wire', async () => {
    const { dir, spec } = writeSpec();
    const file = join(CORPUS_DIR, 'adt/fhirconv-adt-a01-v28.hl7');
    const { code, stdout, stderr } = await hl7c(['preview', spec, file]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const lines = stdout.split('\n');
    expect(lines.slice(0, 4)).toEqual(['channel     preview-adt (HL7 in, HL7 out)', 'message     ADT^A01^ADT_A01 MSG00001', 'outcome     accepted', 'ack         AA']);
    expect(lines[4]).toMatch(/^ {4}MSH\|\^~\\&\|[^|]*\|GHHRFacility\^[^|]*\|ADTApp\|GHHSFacility\^[^|]*\|\d{14}[+-]\d{4}\|\|ACK\^A01\^ACK\|[^|]+\|P\|2\.8$/);
    expect(lines[5]).toBe('    MSA|AA|MSG00001');
    expect(stdout).toContain('identifiers\n    patient: PATID1234 (PID-3[1], test1 MR)\n');
    expect(stdout).toContain(
      ['route', '    → ehr (mllp ehr.local:2575)', '    × test-only (http POST http://127.0.0.1:9/x): when is false: MSH-11 = "T"', `    → archive (file ${dir}/archive/{control_id}.hl7 (raw bytes as received))`].join('\n'),
    );
    // HL7 payloads: a segment per line, exactly the bytes that would be sent (MSH-5 rewritten for
    // the EHR; the archive copy is the message as received).
    const received = segments(corpusFile('adt/fhirconv-adt-a01-v28.hl7'));
    const payload = (name: string) => {
      const start = lines.indexOf(`payload     ${name} (HL7)`);
      expect(start).toBeGreaterThan(0);
      const rest = lines.slice(start + 1);
      return rest.slice(0, rest.findIndex((l) => !l.startsWith('    '))).map((l) => l.slice(4));
    };
    expect(payload('ehr')).toEqual([received[0]!.replace('|EHRApp^1.Edu^ISO|', '|PREVIEW|'), ...received.slice(1)]);
    expect(payload('archive')).toEqual(received);
    expect(stdout).not.toContain('payload     test-only');
    // Nothing written, nothing stored.
    expect(readdirSync(dir)).toEqual(['adt.yaml']);
  }, SLOW);

  test('--json on the example JSON for write-back: the built ORU as the EHR would get it, and the HTTP answer', async () => {
    const { code, stdout } = await hl7c(['preview', 'examples/results-to-ehr.yaml', 'examples/json/glucose-results.json', '--json']);
    expect(code).toBe(0);
    const preview = JSON.parse(stdout) as Record<string, unknown> & { payloads: Array<{ destination: string; kind: string; segments: string[] }>; route: unknown[] };
    expect(preview).toMatchObject({ channel: 'results-to-ehr', input: 'json', output: 'hl7', status: 'accepted', answer: '200', message_type: 'ORU^R01^ORU_R01', acks: [] });
    expect(preview.response).toEqual({ status: 200, body: { status: 'accepted', control_id: preview.control_id } });
    expect(preview.identifiers).toMatchObject({ patient: { id: 'E1234567', assigning_authority: 'EPI', type_code: 'MR' } });
    expect(preview.route).toEqual([{ destination: 'epic', target: 'mllp 127.0.0.1:6661', taken: true }]);
    expect(preview.payloads).toHaveLength(1);
    const oru = preview.payloads[0]!;
    expect(oru).toMatchObject({ destination: 'epic', kind: 'hl7' });
    expect(oru.segments.map((s) => s.slice(0, 3))).toEqual(['MSH', 'PID', 'ORC', 'OBR', 'OBX', 'OBX', 'OBX']);
    expect(oru.segments[0]).toContain(`|ORU^R01^ORU_R01|${preview.control_id as string}|P|2.5.1`);
    // As encoded on the wire: the | in the note is escaped.
    expect(oru.segments[6]).toContain('|TX|X-COMMENT^Home monitoring note^LN||Patient reports fasting \\F\\ 10h|');
  }, SLOW);

  test('a message the channel rejects: the AR with its ERR, no destination taken, exit 1', async () => {
    const { code, stdout } = await hl7c(['preview', 'examples/siu-appointments.yaml', join(CORPUS_DIR, 'adt/fhirconv-adt-a08-v28.hl7'), '--json']);
    expect(code).toBe(1);
    const preview = JSON.parse(stdout) as { status: string; acks: Array<{ code: string; segments: string[] }>; route: Array<{ taken: boolean; why: string }>; payloads: unknown[] };
    expect(preview.status).toBe('rejected');
    expect(preview.acks[0]!.segments.map((s) => s.slice(0, 3))).toEqual(['MSH', 'MSA', 'ERR']);
    expect(preview.route).toEqual([expect.objectContaining({ taken: false, why: 'the message is rejected: it goes to no destination' })]);
    expect(preview.payloads).toEqual([]);
  }, SLOW);
});

describe('hl7c preview of text bodies', () => {
  test('a body that starts with a bracket but is not JSON is shown as text, not a crash', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hl7c-preview-'));
    const spec = join(dir, 'notify.yaml');
    writeFileSync(
      spec,
      `channel: notify
source: { mllp: { port: 2575 } }
destinations:
  pager:
    http: { url: "http://127.0.0.1:9/page" }
    body: "[{{PID-5.1}}] admitted ({{MSH-9.2}})"
`,
    );
    const shown = await hl7c(['preview', spec, join(CORPUS_DIR, 'adt/fhirconv-adt-a01-v23.hl7')]);
    expect(shown.stderr).toBe('');
    expect(shown.code).toBe(0);
    const family = parseMessage(corpusFile('adt/fhirconv-adt-a01-v23.hl7')).get('PID-5.1');
    expect(shown.stdout).toContain(`payload     pager (TEXT)\n    [${family}] admitted (A01)\n`);
  }, SLOW);
});

test('a message with 100,000 PID-3 repetitions mapped to a JSON array previews (tester finding: Maximum call stack size exceeded)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hl7c-preview-big-'));
  writeFileSync(join(dir, 'ids.yaml'), `channel: ids\nsource: { mllp: { port: 2825 } }\nmap:\n  ids: { each: PID-3, fields: { id: { path: PID-3.1 } } }\ndestinations:\n  f: { file: { dir: ./x } }\n`);
  const reps = Array.from({ length: 100_000 }, (_, i) => `${i}^^^X^PI`).join('~');
  writeFileSync(join(dir, 'reps.hl7'), `MSH|^~\\&|EPIC|GH|HL7C|APP|20261125083000||ADT^A01^ADT_A01|R1|P|2.5.1\rPID|1||${reps}||DOE\r`);
  const run = await hl7c(['preview', join(dir, 'ids.yaml'), join(dir, 'reps.hl7')]);
  expect(run.stderr).not.toContain('Maximum call stack');
  expect(run.code).toBe(0);
  expect(run.stdout).toContain('"id": "99999"');
}, SLOW);
