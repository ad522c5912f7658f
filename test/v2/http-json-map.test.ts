import { mkdtempSync, readFileSync, existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { startServing } from '../../src/serve/serve.js';
import { validateSpecs } from '../../src/spec/validate.js';
import { cli } from '../cli/helpers.js';
import { memoryLogger, startWebhook, waitFor } from '../serve/helpers.js';

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function serve(spec: string, env: Record<string, string> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'hv2-http-'));
  const file = join(dir, 'spec.yaml');
  writeFileSync(file, spec.replaceAll('$DIR', dir));
  const { logger } = memoryLogger();
  const serving = await startServing({ specs: [file], storePath: join(dir, 'store.db'), cwd: dir, env, logger, watch: false });
  cleanups.push(() => serving.close());
  return { dir, file, serving, port: Object.values(serving.ports())[0]! };
}

const VITALS = (hookUrl: string, host = '127.0.0.1') => `channel: vitals
source:
  http:
    host: ${host}
    port: 0
    path: /vitals
    basic_auth: { user: "\${VITALS_USER}", password: "\${VITALS_PASSWORD}" }
map:
  resourceType: { value: Observation }
  subject.identifier[0].system: { value: "urn:lrh:mrn" }
  subject.identifier[0].value: { json: patient.mrn }
  subject.identifier[1].system: { value: "urn:lrh:visit" }
  subject.identifier[1].value: { json: visit }
  taken: { json: taken_at }
  readings:
    each: { json: vitals }
    fields:
      code: { json: code, transform: [upper] }
      value: { json: value }
      unit: { json: unit, default: "1" }
      first_of_all: { json: "$.vitals[0].code" }
destinations:
  ehr:
    http: { url: "${hookUrl}" }
tests:
  - name: vitals map to an observation
    input: { patient: { mrn: E1 }, visit: V9, taken_at: "2026-11-25T08:30:00Z", vitals: [ { code: hr, value: 72, unit: "/min" }, { code: spo2, value: 97.5 } ] }
    expect:
      output:
        subject: { identifier: [ { system: "urn:lrh:mrn", value: E1 }, { system: "urn:lrh:visit", value: V9 } ] }
        readings: [ { code: HR, value: 72, unit: /min, first_of_all: hr }, { code: SPO2, value: 97.5, unit: "1" } ]
`;

const ENV = { VITALS_USER: 'flowsheet', VITALS_PASSWORD: 'a-long-random-basic-password-123' };
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

describe('HTTP source variants and JSON -> JSON maps', () => {
  test('a JSON source with map and no build: JSON in, mapped JSON out (arrays by index, each over a JSON array), Basic auth', async () => {
    const hook = await startWebhook();
    cleanups.push(() => hook.close());
    const { port } = await serve(VITALS(hook.url), ENV);
    const body = JSON.stringify({ patient: { mrn: 'E1' }, visit: 'V9', taken_at: '2026-11-25T08:30:00Z', vitals: [{ code: 'hr', value: 72, unit: '/min' }, { code: 'spo2', value: 97.5 }] });
    const url = `http://127.0.0.1:${port}/vitals`;
    const refused = await fetch(url, { method: 'POST', body, headers: { authorization: basic('flowsheet', 'wrong') } });
    expect(refused.status).toBe(401);
    expect(refused.headers.get('www-authenticate')).toMatch(/^Basic/);
    const ok = await fetch(url, { method: 'POST', body, headers: { authorization: basic('flowsheet', ENV.VITALS_PASSWORD), 'content-type': 'application/json' } });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ status: 'accepted' });
    await waitFor(() => hook.received.length === 1, 10_000, 'the mapped JSON');
    expect(hook.received[0]!.body).toEqual({
      resourceType: 'Observation',
      subject: { identifier: [{ system: 'urn:lrh:mrn', value: 'E1' }, { system: 'urn:lrh:visit', value: 'V9' }] },
      taken: '2026-11-25T08:30:00Z',
      readings: [
        { code: 'HR', value: 72, unit: '/min', first_of_all: 'hr' },
        { code: 'SPO2', value: 97.5, unit: '1', first_of_all: 'hr' },
      ],
    });
  });

  test('off loopback, a placeholder Basic password is refused at start', async () => {
    await expect(serve(VITALS('http://127.0.0.1:9/x', '0.0.0.0'), { VITALS_USER: 'flowsheet', VITALS_PASSWORD: 'changeme' })).rejects.toThrow(/basic_auth password is a well-known placeholder/);
  });

  test('content: hl7 takes an HL7 message in the body and answers with the outcome', async () => {
    const { dir, port } = await serve(`channel: hl7-over-http
source:
  http: { host: 127.0.0.1, port: 0, path: /hl7, content: hl7 }
accept:
  - rule: adt
    if: { message_type: [ADT] }
    otherwise: reject
destinations:
  out: { file: { dir: $DIR/out, file_name: "{control_id}.hl7" } }
`);
    const url = `http://127.0.0.1:${port}/hl7`;
    const adt = 'MSH|^~\\&|A|B|C|D|20261125||ADT^A08|H-1|P|2.5.1\rPID|1||E1\r';
    const r = await fetch(url, { method: 'POST', body: adt, headers: { 'content-type': 'application/hl7-v2' } });
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ status: 'accepted', control_id: 'H-1' });
    await waitFor(() => existsSync(join(dir, 'out', 'H-1.hl7')), 10_000, 'the file');
    expect(readFileSync(join(dir, 'out', 'H-1.hl7'), 'latin1')).toBe(adt);
    const orm = await fetch(url, { method: 'POST', body: adt.replace('ADT^A08', 'ORM^O01') });
    expect(orm.status).toBe(400);
  });

  test('hl7c test runs a JSON -> JSON spec', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hv2-http-t-'));
    writeFileSync(join(dir, 'v.yaml'), VITALS('http://127.0.0.1:9/x').replace(/basic_auth: .*/, 'basic_auth: { user: flowsheet, password: on-loopback-for-tests }'));
    const r = await cli('test', join(dir, 'v.yaml'));
    expect(r.stdout).toMatch(/1 passed, 0 failed/);
  });

  test('validate: a JSON-only channel reads JSON only; json: and each: {json} only where JSON is', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hv2-http-v-'));
    writeFileSync(join(dir, 'j.yaml'), `channel: j
source: { http: { host: 127.0.0.1, port: 0, path: /j } }
accept:
  - rule: r
    if: { path: MSH-11, equals: P }
    otherwise: filter
map:
  mrn: { path: PID-3.1 }
  items: { each: OBX, fields: { v: { json: value } } }
destinations:
  out:
    file: { dir: out }
    body: "{{PID-5.1}}"
`);
    writeFileSync(join(dir, 'h.yaml'), `channel: h
source: { mllp: { port: 2991 } }
map:
  items: { each: { json: items }, fields: { v: { path: OBX-5 } } }
destinations:
  out: { file: { dir: out } }
`);
    const result = await validateSpecs([join(dir, 'j.yaml'), join(dir, 'h.yaml')], { cwd: dir, env: {} });
    expect(result.diagnostics.map((d) => `${d.file}:${d.line}:${d.column} ${d.code}`)).toEqual([
      'h.yaml:4:18 spec/json-not-here',
      'j.yaml:4:3 spec/path-needs-hl7',
      'j.yaml:8:16 spec/path-needs-hl7',
      'j.yaml:9:18 spec/path-needs-hl7',
      'j.yaml:13:14 spec/path-needs-hl7',
    ]);
  });
});

test('JSON dates are ISO 8601: format: and date/datetime read them on a JSON → JSON map (a date stays a date), an impossible one is 422 naming the key', async () => {
  const hook = await startWebhook();
  cleanups.push(() => hook.close());
  const { port } = await serve(`channel: visits
source: { http: { host: 127.0.0.1, port: 0, path: /visits } }
map:
  born_us: { json: patient.dob, format: "MM/DD/YYYY" }
  born: { json: patient.dob, transform: [datetime] }
  seen_at: { json: seen, format: "DD.MM.YYYY HH:mm" }
  seen_hour: { json: patient.dob, format: "HH:mm" }
  seen: { json: seen, transform: [datetime] }
  legacy: { json: legacy_dob, format: "YYYY/MM/DD" }
destinations:
  app: { http: { url: "${hook.url}" } }
`);
  const post = (body: unknown) => fetch(`http://127.0.0.1:${port}/visits`, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
  const ok = await post({ patient: { dob: '1984-05-12' }, seen: '2026-11-25T08:30:00-05:00', legacy_dob: '19840512' });
  expect(ok.status).toBe(200);
  await waitFor(() => hook.received.length === 1, 10_000, 'the mapped visit');
  expect(hook.received[0]!.body).toEqual({ born_us: '05/12/1984', born: '1984-05-12', seen_at: '25.11.2026 08:30', seen_hour: null, seen: '2026-11-25T08:30:00-05:00', legacy: '1984/05/12' });
  const bad = await post({ patient: { dob: '2026-02-30' }, seen: '2026-11-25T08:30:00Z' });
  expect(bad.status).toBe(422);
  expect(((await bad.json()) as { reason: string }).reason).toMatch(/mapped to born_us\) \(from patient\.dob\) is not a valid date\/time/);
});
