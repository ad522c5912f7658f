import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { MllpClient } from '../../runtime/index.js';
import { startServing } from '../../src/serve/serve.js';
import { validateSpecs } from '../../src/spec/validate.js';
import { startBin, stop } from '../cli/helpers.js';
import { corpusFile } from '../corpus.js';
import { memoryLogger, waitFor } from '../serve/helpers.js';

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** One channel under hl7c serve, MLLP in, writing each message (or its JSON) to a folder. */
async function serve(spec: string) {
  const dir = mkdtempSync(join(tmpdir(), 'hv2-edits-'));
  const file = join(dir, 'c.yaml');
  writeFileSync(file, spec.replace('dir: out', `dir: ${join(dir, 'out')}`));
  const { logger } = memoryLogger();
  const serving = await startServing({ specs: [file], storePath: join(dir, 'store.db'), cwd: dir, env: {}, logger, watch: false });
  cleanups.push(() => serving.close());
  const client = new MllpClient({ host: '127.0.0.1', port: serving.ports().edits! });
  cleanups.push(() => client.close());
  const out = join(dir, 'out');
  const written = async (name: string) => {
    await waitFor(() => readdirSync(out).includes(name), 10_000, `${name} written`);
    return readFileSync(join(out, name), 'latin1');
  };
  return { send: (m: string | Buffer) => client.send(m), written };
}

/** A PV1 with PV1-44 (admit date/time) and nothing else after PV1-2. */
const pv1 = (admit: string) => `PV1|1|I${'|'.repeat(42)}${admit}\r`;
const segment = (message: string, name: string) => message.split('\r').find((s) => s.startsWith(`${name}|`))!;

describe('replace and reformat_date transform steps', () => {
  const SPEC = `channel: edits
source: { mllp: { host: 127.0.0.1, port: 0 } }
transform:
  # Epic wants PV1-44 to the minute, without seconds or offset.
  - reformat_date: { path: PV1-44, format: YYYYMMDDHHmm }
  # Letters, spaces, apostrophes and hyphens only in the family name.
  - replace: { path: PID-5.1, pattern: "[^A-Za-z '\\\\-]", with: "" }
  # ZIP+4 to ZIP, only where the address has one.
  - replace: { path: PID-11.5, pattern: "^(\\\\d{5})-\\\\d{4}$", with: "$1" }
  - replace: { path: PID-5.2, pattern: "^DESMOND$", with: "D^S" }
destinations:
  out: { file: { dir: out } }
`;

  test('the receiver gets PV1-44 to the minute and the names and ZIP edited, escapes decoded before matching and encoded after', async () => {
    const { send, written } = await serve(SPEC);
    // A corpus A01: PV1-44 20050110045502+0700.
    const corpus = corpusFile('adt/fhirconv-adt-a01-v23.hl7');
    expect((await send(corpus)).code).toBe('AA');
    const a01 = await written('599102.hl7');
    expect(segment(a01, 'PV1').split('|')[44]).toBe('200501100455');
    expect(segment(a01, 'PID').split('|')[5]).toBe('DUCK^DONALD^D');

    // Hostile: an escaped & (\T\) in the family name, a ZIP+4, an escaped ^ (\S\) in the given name.
    const hostile = `MSH|^~\\&|STAR|LRH|EPIC|LRH|20261103081512||ADT^A01^ADT_A01|ED-2|P|2.5.1\rPID|1||0082215^^^LRH^MR||O'HAL\\T\\LORAN-VIX 3RD^DESMOND||19700304|X|||12 Shore Rd^^Lakeshore^MI^49999-1234\r${pv1('20261103081512-0500')}`;
    expect((await send(hostile)).code).toBe('AA');
    const pid = segment(await written('ED-2.hl7'), 'PID').split('|');
    // \T\ decoded to & and removed with the digits; the "D^S" written back is data, so ^ is escaped.
    expect(pid[5]).toBe("O'HALLORAN-VIX RD^D\\S\\S");
    expect(pid[11]).toBe('12 Shore Rd^^Lakeshore^MI^49999');
  });

  test('a date-only PV1-44 stays as it is (no time invented); an impossible one is AE naming PV1-44; replace on a field with components is AE', async () => {
    const { send, written } = await serve(SPEC);
    const base = (id: string, pv144: string, pid5 = 'DOE^JANE') => `MSH|^~\\&|STAR|LRH|EPIC|LRH|20261103081512||ADT^A01^ADT_A01|${id}|P|2.5.1\rPID|1||1^^^LRH^MR||${pid5}\r${pv1(pv144)}`;
    expect((await send(base('DO-1', '20261103'))).code).toBe('AA');
    expect(segment(await written('DO-1.hl7'), 'PV1').split('|')[44]).toBe('20261103');
    const bad = await send(base('DO-2', '20261303081500'));
    expect(bad.code).toBe('AE');
    expect(bad.raw!.toString('latin1')).toMatch(/ERR\|\|PV1\^1\^44/);
    expect(bad.text).toMatch(/PV1-44/);

    const { send: send2 } = await serve(SPEC.replace('path: PID-5.2,', 'path: PID-5,'));
    const structured = await send2(base('DO-3', '', 'DOE^JANE'));
    expect(structured.code).toBe('AE');
    expect(structured.text).toMatch(/replace in PID-5: it has components or repetitions; name one \(e\.g\. PID-5\.1\)/);
  });
});

test('map: replace: [{pattern, with}] edits the value read before its transform; the JSON receiver gets it', async () => {
  const { send, written } = await serve(`channel: edits
source: { mllp: { host: 127.0.0.1, port: 0 } }
map:
  document_id: { path: TXA-12.1, replace: [ { pattern: "[^A-Za-z0-9_-]", with: "_" } ] }
  family: { path: PID-5.1, replace: [ { pattern: "^(\\\\w+)-(\\\\w+)$", with: "$2 $1" }, { pattern: "X", with: "x" } ], transform: [upper] }
  zip: { path: PID-11.5, replace: [ { pattern: "-\\\\d{4}$", with: "" } ], default: "00000" }
destinations:
  out: { file: { dir: out } }
`);
  const mdm = `MSH|^~\\&|DICT|LRH|EHR|LRH|20261106||MDM^T02|MD-1|P|2.5.1\rPID|1||1^^^LRH^MR||VIX-OHALLORAN^D||||||1 Rd^^X^MI^49999-1234\rTXA|1|CN|TX|||||||||CN.DOC 2026/1106#9\r`;
  expect((await send(mdm)).code).toBe('AA');
  expect(JSON.parse(await written('MD-1.json'))).toEqual({ document_id: 'CN_DOC_2026_1106_9', family: 'OHALLORAN VIX', zip: '49999' });
});

test('map: default then replace, as Mirth\'s mapper does (and hl7c import mirth assumes): an empty ZIP takes the default 00000-0000 and the ZIP+4 replacement applies to it; a lookup miss still takes the default', async () => {
  const { send, written } = await serve(`channel: edits
source: { mllp: { host: 127.0.0.1, port: 0 } }
map:
  zip: { path: PID-11.5, default: "00000-0000", replace: [ { pattern: "-\\\\d{4}$", with: "" } ] }
  sex: { path: PID-8, default: unknown, replace: [ { pattern: "^X$", with: "U" } ], lookup: { F: female, M: male } }
destinations:
  out: { file: { dir: out } }
`);
  const adt = (id: string, sex: string, zip: string) => `MSH|^~\\&|STAR|LRH|EHR|LRH|20261106||ADT^A08|${id}|P|2.5.1\rPID|1||1^^^LRH^MR||DOE^J||19700101|${sex}|||1 Rd^^X^MI^${zip}\r`;
  expect((await send(adt('Z-1', 'F', '49999-1234'))).code).toBe('AA');
  expect((await send(adt('Z-2', '', ''))).code).toBe('AA');
  expect((await send(adt('Z-3', 'X', '49999'))).code).toBe('AA');
  expect(await written('Z-1.json')).toBe('{"zip":"49999","sex":"female"}');
  expect(await written('Z-2.json')).toBe('{"zip":"00000","sex":"unknown"}');
  // X becomes U, which the table lacks: null, so the default.
  expect(await written('Z-3.json')).toBe('{"zip":"49999","sex":"unknown"}');
});

test('validate: a pattern that is no regular expression is spec/regex at its line:col; replace and reformat_date paths are checked', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hv2-edits-validate-'));
  const file = join(dir, 'c.yaml');
  writeFileSync(file, `channel: edits
source: { mllp: { port: 2901 } }
transform:
  - replace: { path: PID-5.1, pattern: "([A-Z]", with: "" }
  - reformat_date: { path: PV1-444, format: YYYYMMDD }
  - replace: { path: PID-5.1, pattern: a, with: b }
    clear: PID-6
map:
  zip: { path: PID-11.5, replace: [ { pattern: "*5", with: "" } ] }
destinations:
  out: { file: { dir: out } }
`);
  const result = await validateSpecs([file], { cwd: dir, env: {} });
  expect(result.diagnostics.map((d) => `${d.line}:${d.column} ${d.severity} ${d.code}`)).toEqual([
    '4:40 error spec/regex',
    '5:28 error hl7/unknown-field',
    '6:5 error spec/transform-step',
    '9:48 error spec/regex',
  ]);
  expect(result.diagnostics[0]!.message).toBe('"([A-Z]" is not a regular expression: Unterminated group');
});

test('a pattern that backtracks exponentially on a hostile value still answers, and the next message too (linear-time fallback)', { timeout: 90_000 }, async () => {
  // hl7c serve as shipped, in a process of its own: without the fallback, 40 letters and a "!"
  // keep V8's backtracking engine busy for hours, the ACK never comes and the test fails at the
  // client's timeout instead of stalling this worker.
  const dir = mkdtempSync(join(tmpdir(), 'hv2-edits-redos-'));
  writeFileSync(join(dir, 'c.yaml'), `channel: edits
source: { mllp: { host: 127.0.0.1, port: 0 } }
transform:
  - replace: { path: PID-5.1, pattern: "^(\\\\w+\\\\s?)*$", with: "WORDS" }
destinations:
  out: { file: { dir: ${join(dir, 'out')} } }
`);
  const { child, match } = await startBin(['serve', join(dir, 'c.yaml'), '--store', join(dir, 'store.db'), '--no-watch'], /channel edits on port (\d+)/, process.env, 60_000);
  cleanups.push(() => stop(child, 'SIGKILL'));
  const client = new MllpClient({ host: '127.0.0.1', port: Number(match[1]), ackTimeoutMs: 20_000 });
  cleanups.push(() => client.close());
  const message = (id: string, family: string) => `MSH|^~\\&|A|B|C|D|20261125||ADT^A08|${id}|P|2.5.1\rPID|1||1^^^LRH^MR||${family}^Ann\r`;
  expect((await client.send(message('RX-1', `${'a'.repeat(40)}!`))).code).toBe('AA');
  expect((await client.send(message('RX-2', 'Smith Jones'))).code).toBe('AA');
  const written = (name: string) => readFileSync(join(dir, 'out', name), 'latin1');
  await waitFor(() => readdirSync(join(dir, 'out')).includes('RX-2.hl7'), 10_000, 'RX-2 written');
  expect(segment(written('RX-1.hl7'), 'PID').split('|')[5]).toBe(`${'a'.repeat(40)}!^Ann`);
  expect(segment(written('RX-2.hl7'), 'PID').split('|')[5]).toBe('WORDS^Ann');
});

test('validate: a nested repetition with a backreference or lookaround is spec/regex-backtracking; a condition pattern is checked too', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hv2-edits-backtracking-'));
  const file = join(dir, 'c.yaml');
  writeFileSync(file, `channel: edits
source: { mllp: { port: 2901 } }
transform:
  - replace: { path: PID-5.1, pattern: "^((\\\\w)+\\\\2)*$", with: "" }
  - replace: { path: PID-5.2, pattern: "^(\\\\w+\\\\s?)*$", with: "" }
destinations:
  out:
    file: { dir: out }
    when: { path: PID-8, matches: "(F" }
`);
  const result = await validateSpecs([file], { cwd: dir, env: {} });
  expect(result.diagnostics.map((d) => `${d.line}:${d.column} ${d.severity} ${d.code}`)).toEqual(['4:40 error spec/regex-backtracking', '9:35 error spec/regex']);
  expect(result.diagnostics[0]!.hint).toMatch(/nested repetition/);
});
