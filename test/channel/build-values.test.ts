import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { startServing } from '../../src/serve/serve.js';
import { memoryLogger, waitFor } from '../serve/helpers.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

// The notes example's build, writing to files so the test reads what the receiver gets.
const notesSpec = (out: string) => {
  const example = readFileSync(join(import.meta.dirname, '../../examples/notes-to-ehr.yaml'), 'utf8');
  const build = example.slice(example.indexOf('build:'), example.indexOf('identifiers:'));
  return `channel: notes
source: { http: { host: 127.0.0.1, port: 0, path: /notes } }
${build}destinations:
  out: { file: { dir: ${JSON.stringify(out)} } }
`;
};

async function serveNotes(spec = notesSpec) {
  const dir = mkdtempSync(join(tmpdir(), 'hl7c-build-values-'));
  const out = join(dir, 'out');
  writeFileSync(join(dir, 'n.yaml'), spec(out));
  const serving = await startServing({ specs: [join(dir, 'n.yaml')], storePath: join(dir, 'store.db'), cwd: dir, env: {}, logger: memoryLogger().logger, watch: false });
  cleanups.push(() => serving.close());
  const post = async (body: unknown) => {
    const res = await fetch(`http://127.0.0.1:${serving.ports()['notes']}/notes`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: res.status, body: (await res.json()) as { reason?: string } };
  };
  const files = () => (existsSync(out) ? readdirSync(out).filter((f) => f.endsWith('.hl7')).map((f) => readFileSync(join(out, f), 'utf8')) : []);
  const written = async (n: number) => {
    await waitFor(() => files().length === n, 10_000, `${n} file(s) written`);
    return files();
  };
  return { post, files, written };
}

const note = { id: 'N1', status: 'signed', text: 'line one' };

describe('build writes one value per HL7 field', () => {
  test('a JSON array or object for a field is a 422 naming the JSON key and the field, never JSON text on the wire', async () => {
    const { post, files, written } = await serveNotes();
    const refused = [
      [{ patient: { mrn: ['ZEBRA99887766', 'X'], family_name: 'ZEBRAFISH' }, note }, /^could not build the message: PID-3\.1 \(from patient\.mrn\) is a JSON array, not one value/],
      [{ patient: { mrn: 'ZEBRA99887766', family_name: { a: 'ZEBRAFISH' } }, note }, /^could not build the message: PID-5\.1 \(from patient\.family_name\) is a JSON object, not one value/],
      // Through a lookup and a default too: TXA-17 reads note.status.
      [{ patient: { mrn: 'M1' }, note: { ...note, status: ['signed'] } }, /TXA-17 \(from note\.status\) is a JSON array/],
    ] as const;
    for (const [body, reason] of refused) {
      const r = await post(body);
      expect(r.status).toBe(422);
      expect(r.body.reason).toMatch(reason);
      expect(r.body.reason).not.toContain('ZEBRA');
    }
    expect((await post({ patient: { mrn: 'M1', family_name: 'ZEBRAFISH' }, note })).status).toBe(200);
    const [hl7] = await written(1);
    expect(hl7).toContain('\rPID|1||M1^^^EPI^MR||ZEBRAFISH\r');
    expect(files().join('')).not.toContain('[');
  });
});

describe('each_line writes the text it is given', () => {
  test('a number or boolean is one line of text; an array or object is a 422 naming the key', async () => {
    const { post, written } = await serveNotes();
    const refused = await post({ patient: { mrn: 'M1' }, note: { ...note, text: ['a', 'b'] } });
    expect(refused.status).toBe(422);
    expect(refused.body.reason).toBe('could not build the message: each_line note.text is a JSON array, not text: send the lines as one string, or use each: over an array');
    expect((await post({ patient: { mrn: 'M1' }, note: { ...note, text: { a: 'x' } } })).status).toBe(422);
    expect((await post({ patient: { mrn: 'NUM' }, note: { ...note, text: 12345 } })).status).toBe(200);
    expect((await post({ patient: { mrn: 'BOOL' }, note: { ...note, text: true } })).status).toBe(200);
    const files = await written(2);
    const obx = (mrn: string) => files.find((f) => f.includes(`PID|1||${mrn}^`))!.split('\r').filter((l) => l.startsWith('OBX|'));
    expect(obx('NUM')).toEqual(['OBX|1|TX|NOTE||12345||||||F']);
    expect(obx('BOOL')).toEqual(['OBX|1|TX|NOTE||Y||||||F']);
  });
});

describe('JSON null in build', () => {
  test('null is no value, as a missing key: the field stays empty or gets its default; on_null: delete writes the HL7 null ""', async () => {
    const withDelete = (out: string) => notesSpec(out).replace('PV1-19.1: { json: encounter.visit_number }', 'PV1-19.1: { json: encounter.visit_number, on_null: delete }');
    const { post, written } = await serveNotes(withDelete);
    const body = (mrn: string, visit: unknown) => ({ patient: { mrn, family_name: null }, encounter: { class: null, visit_number: visit }, note: { ...note, status: null } });
    expect((await post(body('NULLS', null))).status).toBe(200);
    expect((await post(body('GIVEN', 'V1'))).status).toBe(200);
    const files = await written(2);
    const segment = (mrn: string, name: string) => files.find((f) => f.includes(`PID|1||${mrn}^`))!.split('\r').find((l) => l.startsWith(`${name}|`));
    // family_name null: PID-5 empty, never "" (which tells the EHR to delete the name it has).
    expect(segment('NULLS', 'PID')).toBe('PID|1||NULLS^^^EPI^MR');
    // class null: its default O; visit_number null with on_null: delete: the HL7 null.
    expect(segment('NULLS', 'PV1')).toBe('PV1||O|||||||||||||||||""');
    expect(segment('GIVEN', 'PV1')).toBe('PV1||O|||||||||||||||||V1');
    // status null: the default IP, as a missing status gets.
    expect(segment('NULLS', 'TXA')!.split('|')[17]).toBe('IP');
  });

  test('on_null: delete needs json:', async () => {
    const { validateSpecs } = await import('../../src/spec/validate.js');
    const dir = mkdtempSync(join(tmpdir(), 'hl7c-null-delete-'));
    writeFileSync(join(dir, 'n.yaml'), notesSpec('out').replace('TXA-3: TX', 'TXA-3: { value: TX, on_null: delete }'));
    const result = await validateSpecs([join(dir, 'n.yaml')], { env: {} });
    expect(result.ok).toBe(false);
    expect(result.diagnostics.map((d) => `${d.line}:${d.code}:${d.message}`)).toEqual([expect.stringMatching(/^30:spec\/build-on-null:TXA-3: on_null: says what a JSON null/)]);
  });
});
