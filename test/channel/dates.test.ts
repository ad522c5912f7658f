import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { isoToHl7DateTime, MllpClient } from '../../runtime/index.js';
import { startServing } from '../../src/serve/serve.js';
import { corpusFile } from '../corpus.js';
import { memoryLogger, startWebhook, waitFor } from '../serve/helpers.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const SPEC = `channel: adt-dates
source: { mllp: { host: 127.0.0.1, port: 0 } }
map:
  birth_date: { path: PID-7, transform: [date] }
  born_at: { path: PID-7, transform: [datetime] }
  admitted_at: { path: PV1-44, transform: [datetime] }
  admitted_on: { path: PV1-44, format: "MM/DD/YYYY" }
destinations:
  webhook:
    http: { url: "\${TEST_WEBHOOK_URL}" }
`;

// A real corpus ADT (PID-7 19241010, PV1-44 20050110045502+0700), with its dates replaced.
const ADT = corpusFile('adt/fhirconv-adt-a01-v23.hl7').toString('latin1');
const withDates = (controlId: string, birth: string, admitted = '20050110045502+0700') =>
  Buffer.from(ADT.replace('|599102|', `|${controlId}|`).replace('|19241010|M||1|', `|${birth}|M||1|`).replace(/(\rPV1\|(?:[^|\r]*\|){43})20050110045502\+0700/, `$1${admitted}`), 'latin1');

async function serve() {
  const hook = await startWebhook();
  cleanups.push(() => hook.close());
  const dir = mkdtempSync(join(tmpdir(), 'hl7c-dates-'));
  writeFileSync(join(dir, 'adt.yaml'), SPEC);
  const serving = await startServing({ specs: [join(dir, 'adt.yaml')], storePath: join(dir, 'store.db'), cwd: dir, env: { TEST_WEBHOOK_URL: hook.url }, logger: memoryLogger().logger, watch: false });
  cleanups.push(() => serving.close());
  const client = new MllpClient({ host: '127.0.0.1', port: serving.ports()['adt-dates']! });
  cleanups.push(() => client.close());
  return { hook, serving, client };
}

describe('date and datetime mappings never send a wrong date', () => {
  test('impossible dates and times are an AE naming the field, stored as error, sent nowhere; the value is never in the reason', async () => {
    const { hook, serving, client } = await serve();
    const cases = [
      ['BAD-MONTH', '19991399', undefined, 'PID-7', /month is not 01-12/],
      ['BAD-DAY', '19990132', undefined, 'PID-7', /day is not 01-31/],
      ['FEB-30', '20240230', undefined, 'PID-7', /day is not 01-29/],
      ['FEB-29-1900', '19000229', undefined, 'PID-7', /day is not 01-28/],
      ['HOUR-25', '19241010', '200501102530', 'PV1-44', /hour is not 00-23/],
      ['NOT-A-DATE', '10/10/1924', undefined, 'PID-7', /not an HL7 date\/time/],
      // Zones run from UTC-12:00 to UTC+14:00; an offset's minutes are 00-59, said as such.
      ['OFFSET-+1401', '19241010', '200501100455+1401', 'PV1-44', /its UTC offset is not -1200 to \+1400$/],
      ['OFFSET--1459', '19241010', '200501100455-1459', 'PV1-44', /its UTC offset is not -1200 to \+1400$/],
      ['OFFSET--1201', '19241010', '200501100455-1201', 'PV1-44', /its UTC offset is not -1200 to \+1400$/],
      ['OFFSET-+0575', '19241010', '200501100455+0575', 'PV1-44', /its UTC offset minutes are not 00-59$/],
    ] as const;
    for (const [id, birth, admitted, field, problem] of cases) {
      const ack = await client.send(withDates(id, birth, admitted));
      expect(ack.code, id).toBe('AE');
      // MSA-3 says what and where; the message is v2.3, so ERR-1 locates it: segment^^field^102 (data type error).
      expect(ack.text, id).toMatch(new RegExp(`^mapping failed: ${field} \\(mapped to \\w+\\) is not a valid date/time`));
      expect(ack.text, id).toMatch(problem);
      expect(ack.raw!.toString('latin1'), id).not.toContain(admitted ?? birth);
      expect(ack.message!.getRaw('ERR-1').split('^').slice(0, 4).join('^'), id).toBe(`${field.slice(0, 3)}^^${field.slice(4)}^102&Data type error&HL70357`);
    }
    // One good message after them: the webhook got that one only.
    expect((await client.send(withDates('GOOD', '20240229'))).code).toBe('AA');
    await waitFor(() => hook.received.length === 1, 10_000, 'the good message delivered');
    await waitFor(async () => !(await serving.store.openQueues()).length, 10_000, 'queues empty');
    expect(hook.received.map((r) => r.body.birth_date)).toEqual(['2024-02-29']);
    const rows = await serving.store.listMessages();
    expect(rows.map((r) => [r.control_id, r.status, r.deliveries])).toEqual([...cases.map(([id]) => [id, 'error', '']), ['GOOD', 'accepted', 'webhook:sent']]);
  });

  test('month and year precision are kept as YYYY-MM and YYYY; datetime never invents a time for a date, nor minutes or seconds for a time', async () => {
    const { hook, client } = await serve();
    expect((await client.send(withDates('MONTH', '199905', '20050110'))).code).toBe('AA');
    expect((await client.send(withDates('YEAR', '1999', '200501100455'))).code).toBe('AA');
    expect((await client.send(withDates('DAY', '19990512', '20050110045502.25-0500'))).code).toBe('AA');
    expect((await client.send(withDates('WEST', '1998', '200501100455-1200'))).code).toBe('AA');
    expect((await client.send(withDates('EAST', '1997', '200501100455+1400'))).code).toBe('AA');
    expect((await client.send(withDates('HOUR', '1996', '2026120214'))).code).toBe('AA');
    expect((await client.send(withDates('HOUR-ZONE', '1995', '2026120214-0500'))).code).toBe('AA');
    await waitFor(() => hook.received.length === 7, 10_000, 'seven deliveries');
    const bodies = Object.fromEntries(hook.received.map((r) => [String((r.body as { birth_date: string }).birth_date), r.body]));
    expect(bodies['1999-05']).toEqual({ birth_date: '1999-05', born_at: '1999-05', admitted_at: '2005-01-10', admitted_on: '01/10/2005' });
    expect(bodies['1999']).toEqual({ birth_date: '1999', born_at: '1999', admitted_at: '2005-01-10T04:55', admitted_on: '01/10/2005' });
    expect(bodies['1999-05-12']).toEqual({ birth_date: '1999-05-12', born_at: '1999-05-12', admitted_at: '2005-01-10T04:55:02.25-05:00', admitted_on: '01/10/2005' });
    expect(bodies['1998']!.admitted_at).toBe('2005-01-10T04:55-12:00');
    expect(bodies['1997']!.admitted_at).toBe('2005-01-10T04:55+14:00');
    // Hour precision is ISO 8601's reduced precision, YYYY-MM-DDThh: no :00 minutes.
    expect(bodies['1996']).toEqual({ birth_date: '1996', born_at: '1996', admitted_at: '2026-12-02T14', admitted_on: '12/02/2026' });
    expect(bodies['1995']!.admitted_at).toBe('2026-12-02T14-05:00');
  });

  test('build (JSON to HL7): an ISO date that does not exist is refused, month precision kept', () => {
    expect(isoToHl7DateTime('2024-02-29')).toBe('20240229');
    expect(isoToHl7DateTime('2024-05')).toBe('202405');
    expect(isoToHl7DateTime('2024-05-01T08:30:00-05:00')).toBe('20240501083000-0500');
    expect(() => isoToHl7DateTime('2023-02-29')).toThrow(/day is not 01-28/);
    expect(() => isoToHl7DateTime('2024-05-01T25:30')).toThrow(/hour is not 00-23/);
    expect(() => isoToHl7DateTime('2024-13-01')).toThrow(/month is not 01-12/);
    expect(() => isoToHl7DateTime('2024-13-01', { field: 'PID-7', json: 'dob' })).toThrow(/^PID-7 \(from dob\) is not a valid date\/time: its month is not 01-12$/);
  });
});

const buildSpec = (out: string) => `channel: bld
source: { http: { host: 127.0.0.1, port: 0, path: /in } }
build:
  message_type: ADT^A08
  version: 2.5.1
  segments:
    - segment: PID
      fields:
        PID-3: { json: mrn }
        PID-7: { json: dob, transform: [hl7_date] }
    - segment: PV1
      fields:
        PV1-2: I
        PV1-44: { json: admit, transform: [hl7_datetime] }
destinations:
  out: { file: { dir: ${JSON.stringify(out)} } }
`;

describe('build (JSON to HL7) never drops a date', () => {
  test('a dob that is no date is a 422 naming PID-7 and the JSON key, written nowhere; HL7 DT text is checked and written', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hl7c-build-dates-'));
    writeFileSync(join(dir, 'b.yaml'), buildSpec(join(dir, 'out')));
    const serving = await startServing({ specs: [join(dir, 'b.yaml')], storePath: join(dir, 'store.db'), cwd: dir, env: {}, logger: memoryLogger().logger, watch: false });
    cleanups.push(() => serving.close());
    const post = async (body: unknown) => {
      const res = await fetch(`http://127.0.0.1:${serving.ports()['bld']}/in`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      return { status: res.status, body: (await res.json()) as { reason?: string } };
    };
    const refused = [
      ['12/05/1984', /^could not build the message: PID-7 \(from dob\) is not a valid date\/time: it is neither an ISO 8601 date/],
      ['1984-5-2', /PID-7 \(from dob\) is not a valid date\/time: it is neither/],
      ['garbage', /PID-7 \(from dob\) is not a valid date\/time: it is neither/],
      [19840512, /PID-7 \(from dob\) is not a valid date\/time: it is a JSON number/],
      ['19840230', /PID-7 \(from dob\) is not a valid date\/time: its day is not 01-29/],
      ['1984-02-30', /PID-7 \(from dob\) is not a valid date\/time: its day is not 01-29/],
    ] as const;
    for (const [dob, reason] of refused) {
      const r = await post({ mrn: 'X', dob, admit: '2024-01-01T10:00:00Z' });
      expect(r.status, String(dob)).toBe(422);
      expect(r.body.reason, String(dob)).toMatch(reason);
      expect(r.body.reason, String(dob)).not.toContain(String(dob));
    }
    const bad = await post({ mrn: 'X', dob: '1984-05-12', admit: '2024-01-01T25:00:00Z' });
    expect(bad.status).toBe(422);
    expect(bad.body.reason).toMatch(/PV1-44 \(from admit\) is not a valid date\/time: its hour is not 00-23/);
    expect(existsSync(join(dir, 'out'))).toBe(false);
    // HL7 DT text is taken as HL7 and written; ISO as before.
    expect((await post({ mrn: 'HL7', dob: '19840512', admit: '202401011000+0100' })).status).toBe(200);
    expect((await post({ mrn: 'ISO', dob: '1984-05-12', admit: '2024-01-01T10:00:00Z' })).status).toBe(200);
    const files = () => readdirSync(join(dir, 'out')).filter((f) => f.endsWith('.hl7')).map((f) => readFileSync(join(dir, 'out', f), 'utf8').split('\r'));
    await waitFor(() => existsSync(join(dir, 'out')) && files().filter((l) => l.some((x) => x.startsWith('PV1|'))).length === 2, 10_000, 'two files written');
    const pids = files();
    const line = (seg: string, mrn: string) => pids.find((l) => l.some((x) => x.startsWith(`PID|||${mrn}|`)))!.find((x) => x.startsWith(seg))!.split('|');
    expect(line('PID', 'HL7')[7]).toBe('19840512');
    expect(line('PV1', 'HL7')[44]).toBe('202401011000+0100');
    expect(line('PID', 'ISO')[7]).toBe('19840512');
    expect(line('PV1', 'ISO')[44]).toBe('20240101100000+0000');
  });
});

describe('a date that is no date inside each: names the repetition', () => {
  test('the fourth OBX\'s OBX-14 is OBX[4]-14 in MSA-3 and ERR-8, and ERR-2 carries segment sequence 4; an order\'s date read inside each: OBX names that OBR', async () => {
    const hook = await startWebhook();
    cleanups.push(() => hook.close());
    const dir = mkdtempSync(join(tmpdir(), 'hl7c-each-dates-'));
    writeFileSync(
      join(dir, 'oru.yaml'),
      `channel: results
source: { mllp: { host: 127.0.0.1, port: 0 } }
map:
  orders:
    each: OBR
    fields:
      results:
        each: OBX
        fields:
          code: { path: OBX-3.1 }
          observed: { path: OBX-14, transform: [datetime] }
          ordered: { path: OBR-7, format: "YYYY-MM-DD" }
destinations:
  webhook:
    http: { url: "\${TEST_WEBHOOK_URL}" }
`,
    );
    const serving = await startServing({ specs: [join(dir, 'oru.yaml')], storePath: join(dir, 'store.db'), cwd: dir, env: { TEST_WEBHOOK_URL: hook.url }, logger: memoryLogger().logger, watch: false });
    cleanups.push(() => serving.close());
    const client = new MllpClient({ host: '127.0.0.1', port: serving.ports()['results']! });
    cleanups.push(() => client.close());
    const obx = (n: number, code: string, observed: string) => `OBX|${n}|NM|${code}||1||||||F|||${observed}\r`;
    const oru = (id: string, obr2Date: string, thirdObserved: string, type = 'ORU^R01^ORU_R01') =>
      `MSH|^~\\&|LAB|GH|HL7C|APP|20261202||${type}|${id}|P|2.5.1\rPID|1||E1^^^EPI^MR\r` +
      `OBR|1||F1|CBC|||20261201\r${obx(1, 'HGB', '20261202')}${obx(2, 'WBC', '20261202')}` +
      `OBR|2||F2|BMP|||${obr2Date}\r${obx(1, 'NA', '20261202')}${obx(2, 'K', thirdObserved)}`;
    const errAndMsa = (raw: Buffer) => raw.toString('latin1').split('\r').filter((s) => /^(MSA|ERR)/.test(s));

    // OBX 1, 2 of the first order, then OBX 1, 2 of the second: the fourth OBX of the message.
    const observed = await client.send(oru('BAD-OBX', '20261201', '20261399'));
    expect(observed.code).toBe('AE');
    expect(errAndMsa(observed.raw!)).toEqual([
      'MSA|AE|BAD-OBX|mapping failed: OBX[4]-14 (mapped to orders.results.observed) is not a valid date/time: its month is not 01-12',
      'ERR||OBX^4^14^1|102^Data type error^HL70357|E||||mapping failed: OBX[4]-14 (mapped to orders.results.observed) is not a valid date/time: its month is not 01-12',
    ]);
    // The second order's OBR-7, read from its results: OBR[2]-7, segment sequence 2.
    const ordered = await client.send(oru('BAD-OBR', '20260230', '20261202'));
    expect(errAndMsa(ordered.raw!)).toEqual([
      'MSA|AE|BAD-OBR|mapping failed: OBR[2]-7 (mapped to orders.results.ordered) is not a valid date/time: its day is not 01-28 for its month',
      'ERR||OBR^2^7^1|102^Data type error^HL70357|E||||mapping failed: OBR[2]-7 (mapped to orders.results.ordered) is not a valid date/time: its day is not 01-28 for its month',
    ]);
    // A message type whose structure hl7c does not know is walked in order: the same answer.
    const unknown = await client.send(oru('BAD-ZZZ', '20261201', '20261399', 'ZRU^Z01'));
    expect(errAndMsa(unknown.raw!)[0]).toBe('MSA|AE|BAD-ZZZ|mapping failed: OBX[4]-14 (mapped to orders.results.observed) is not a valid date/time: its month is not 01-12');
    expect(errAndMsa(unknown.raw!)[1]).toMatch(/^ERR\|\|OBX\^4\^14\^1\|102/);
  });
});
