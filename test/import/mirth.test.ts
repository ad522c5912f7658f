import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import mysql from 'mysql2/promise';
import { afterEach, describe, expect, test } from 'vitest';
import { acknowledge, frame, MllpClient, MllpServer, parseMessage, receive } from '../../runtime/index.js';
import { compileChannels } from '../../src/compiler/compile-channels.js';
import { allFeatures, detectFeatures } from '../../src/import/mirth/features.js';
import { importMirth } from '../../src/import/mirth/index.js';
import { e4xPath } from '../../src/import/mirth/e4x.js';
import { compileForPreview, previewChannel } from '../../src/preview/preview.js';
import { startServing } from '../../src/serve/serve.js';
import type { Spec } from '../../src/spec/types.js';
import { validateSpecs } from '../../src/spec/validate.js';
import { runCase } from '../../src/testing/run-tests.js';
import { runCli } from '../../src/cli/program.js';
import { memoryLogger, waitFor } from '../serve/helpers.js';
import { RawPeer } from '../mllp/helpers.js';

const repo = join(dirname(fileURLToPath(import.meta.url)), '../..');
/** The Mirth 4.5.2 sample exports live in the team's shared folder beside the repository (CI has it). */
const SAMPLES = join(repo, '../shared/mirth-samples');
const haveSamples = existsSync(SAMPLES);
if (!haveSamples) console.warn(`test/import/mirth.test.ts: ${SAMPLES} is absent, so the Mirth import tests are skipped (CI has it)`);

const sampleFiles = haveSamples ? readdirSync(SAMPLES).filter((f) => f.endsWith('.xml')).sort() : [];
const samples = () => sampleFiles.map((file) => ({ file, xml: readFileSync(join(SAMPLES, file), 'utf8') }));

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function writeSpecs(specs: Array<{ fileName: string; text: string }>): { dir: string; files: string[] } {
  const dir = mkdtempSync(join(tmpdir(), 'hl7c-mirth-'));
  return { dir, files: specs.map((s) => (writeFileSync(join(dir, s.fileName), s.text), join(dir, s.fileName))) };
}

describe('E4X field access', () => {
  test.each([
    ["msg['PID']['PID.5']['PID.5.1'].toString()", 'PID-5.1'],
    ["msg['PID']['PID.3'][0]['PID.3.1'].toString()", 'PID-3.1'],
    ["msg['PID']['PID.3'][1]['PID.3.4']['PID.3.4.1']", 'PID-3[2].4.1'],
    ["msg['OBR'][0]['OBR.3']['OBR.3.1']", 'OBR-3.1'],
    ["msg['OBX'][2]['OBX.5']", 'OBX[3]-5'],
    ["seg['OBX.5']['OBX.5.1'].toString()", 'OBX-5.1'],
    ["tmp['MSH']['MSH.9']['MSH.9.2']", 'MSH-9.2'],
  ])('%s → %s', (expression, path) => {
    expect(e4xPath(expression)?.path).toBe(path);
  });
  test.each([["msg['PID']['PID.5'].length()"], ['msg.children()'], ["$('mrn')"]])('%s is no field', (expression) => {
    expect(e4xPath(expression)).toBeUndefined();
  });
});

describe.skipIf(!haveSamples)('hl7c import mirth on the Mirth 4.5.2 samples', () => {
  test('every sample imports to a spec that validates (together, with no environment set) and passes its generated tests', async () => {
    const result = importMirth(samples());
    expect(result.specs.map((s) => s.fileName).sort()).toEqual(sampleFiles.map((f) => f.replace(/\.xml$/, '.yaml')).sort());
    const { dir, files } = writeSpecs(result.specs);
    const validation = await validateSpecs(files, { cwd: dir, env: {} });
    expect(validation.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);

    const compiled = await compileChannels(files, { cwd: dir, env: {} });
    expect(compiled.channels).toBeDefined();
    let cases = 0;
    for (const { spec, definition } of compiled.channels!) {
      for (const testCase of (spec.data as Spec).tests ?? []) {
        const r = await runCase(definition, testCase, spec.dir);
        expect(r.mismatches, `${spec.file}: ${r.name}`).toEqual([]);
        cases++;
      }
    }
    // Six channels hold a sample message (inbound template): each became a test.
    expect(cases).toBe(6);
  }, 60_000);

  test('the Channel Writer names the target channel, never its UUID; every TODO is in the report with its place in the export', () => {
    const result = importMirth(samples());
    const router = result.specs.find((s) => s.mirthName === 'LRH ADT Inbound Router')!.text;
    expect(router).toMatch(/channel: lrh-adt-patient-index\n/);
    const lab = result.specs.find((s) => s.mirthName === 'LRH Lab Results File Pickup')!.text;
    expect(lab).toMatch(/channel: lrh-critical-result-alerts\n/);
    // The response transformer "Accept 409 as delivered" is delivered_status; "Log pharmacy NAKs" a note.
    expect(lab).toMatch(/delivered_status:\s+- 409\n/);
    expect(result.todos.some((t) => /response transformer/.test(t.location))).toBe(false);
    expect(result.specs.find((s) => s.mirthName === 'LRH Pharmacy Orders Passthrough')!.text).toContain('only wrote the answer to Mirth\'s log');
    for (const s of result.specs) expect(s.text).not.toMatch(/channel: [0-9a-f]{8}-[0-9a-f]{4}-/);

    const inText = result.specs.reduce((n, s) => n + (s.text.match(/# TODO\(import\)/g) ?? []).length, 0);
    expect(result.todos.length).toBe(inText);
    for (const t of result.todos) {
      expect(t.file).toMatch(/\.xml$/);
      expect(t.location).toMatch(/^(source|destination \d+ "[^"]+"|channel \w+)/);
      // The line is where that connector or step is named in the export.
      expect(t.line, `${t.file}: ${t.location}`).toBeGreaterThan(1);
      const line = readFileSync(join(SAMPLES, t.file), 'utf8').split('\n')[t.line! - 1]!;
      const last = [...t.location.matchAll(/"([^"]+)"/g)].pop()?.[1];
      if (last) expect(line.replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&gt;/g, '>')).toContain(`<name>${last}</name>`);
    }
    // The JavaScript that is not translated is quoted where it stood.
    const mdm = result.specs.find((s) => s.mirthName === 'LRH MDM Transcription Inbound')!.text;
    expect(mdm).toContain("#   | channelMap.put('lineCount', String(lines.length));");
    // Respond from d1 and Auto-generate (Destinations completed) are translated: no TODO, the answer waits.
    expect(result.todos.filter((t) => t.location.startsWith('source ('))).toEqual([]);
    expect(result.specs.find((s) => s.mirthName === 'LRH Pharmacy Orders Passthrough')!.text).toMatch(/\n    answer_from: omnicell\n    answer_wait_ms: 55000\n/);
    expect(mdm).toMatch(/\n    answer_after:\n      - write_report_text\n/);
    expect(result.specs.find((s) => s.mirthName === 'LRH Flowsheet Vitals (HTTP)')!.text).toMatch(/\n    answer_after:\n      - audit_copy\n/);
  });

  test('credentials are never copied: written in the export as text, they become environment references', () => {
    const secrets = ['s3cret-db-Pa55', 'smtp-Pa55-word', 'portal-token-9f8e7d', 'REPLACE_ME', 'api-key-0a1b2c'];
    const inputs = samples().map(({ file, xml }) => ({
      file,
      xml: xml
        .replace('<password>${PIX_DB_PASSWORD}</password>', `<password>${secrets[0]}</password>`)
        .replace('<password>${SMTP_PASSWORD}</password>', `<password>${secrets[1]}</password>`)
        .replace('Bearer ${PORTAL_API_TOKEN}', `Bearer ${secrets[2]}`)
        .replace('<string>${SCHEDULING_API_KEY}</string>', `<string>${secrets[4]}</string>`),
    }));
    const joined = inputs.map((i) => i.xml).join('\n');
    for (const s of secrets) expect(joined).toContain(s);
    for (const features of [detectFeatures(), allFeatures(true), allFeatures(false)]) {
      const result = importMirth(inputs, { features });
      const out = result.specs.map((s) => s.text).join('\n');
      for (const s of secrets) expect(out).not.toContain(s);
      expect(out).not.toContain('nursing-app');
    }
    const v2 = importMirth(inputs, { features: allFeatures(true) }).specs.map((s) => s.text).join('\n');
    expect(v2).toMatch(/password: \$\{[A-Z_]+:-\}/);
  });

  test.each([
    ['lrh-adt-inbound-router', 'v2'],
    ['lrh-adt-patient-index', 'v2'],
    ['lrh-mdm-transcription-inbound', 'v2'],
    ['lrh-adt-inbound-router', 'v1'],
  ])('golden: %s (spec language %s)', (name, language) => {
    const result = importMirth(samples(), { features: allFeatures(language === 'v2') });
    const text = result.specs.find((s) => s.fileName === `${name}.yaml`)!.text;
    const golden = join(repo, 'test/import/golden', `${name}.${language}.yaml`);
    if (process.env.HL7C_UPDATE_GOLDEN) {
      mkdirSync(dirname(golden), { recursive: true });
      writeFileSync(golden, text);
    }
    expect(text).toBe(readFileSync(golden, 'utf8'));
  });

  test('the CLI writes one spec per channel, prints the report, validates what it wrote, and refuses to overwrite', async () => {
    const out = mkdtempSync(join(tmpdir(), 'hl7c-mirth-cli-'));
    let stdout = '';
    let stderr = '';
    const io = { stdout: (t: string | Uint8Array) => void (stdout += String(t)), stderr: (t: string) => void (stderr += t), cwd: SAMPLES, stopSignal: new Promise<string>(() => undefined) };
    const code = await runCli(['import', 'mirth', 'lrh-adt-inbound-router.xml', 'lrh-adt-patient-index.xml', '--out', out], io);
    expect(stderr.replace(/^.*warning spec\/no-destination.*\n.*\n/gm, '')).toBe('');
    expect(code).toBe(0);
    expect(readdirSync(out).sort()).toEqual(['lrh-adt-inbound-router.yaml', 'lrh-adt-patient-index.yaml']);
    // The router translates without a TODO; the patient index keeps one.
    expect(stdout).not.toContain('lrh-adt-inbound-router.xml › channel');
    expect(stdout).toContain('lrh-adt-patient-index.xml › channel "LRH ADT Patient Index"');
    expect(stdout).toMatch(/line \d+, destination 1 "Insert adt_patient_event": \$\{message\.messageId\} \(Mirth's message id\) is bound to MSH-10/);
    expect(stdout).toMatch(/2 spec\(s\) written, \d+ TODO\(import\) to review, 0 validation error\(s\)/);
    stderr = '';
    expect(await runCli(['import', 'mirth', 'lrh-adt-inbound-router.xml', '--out', out], io)).toBe(1);
    expect(stderr).toMatch(/already exists; nothing written \(--force overwrites\)/);
  });

  test.each([
    ['a server configuration export', (channels: string) => `<serverConfiguration version="4.5.2"><channelGroups/><channels>${channels}</channels><codeTemplateLibraries/></serverConfiguration>`],
    ['a channel group export', (channels: string) => `<channelGroup version="4.5.2"><id>g1</id><name>LRH</name><channels>${channels}</channels></channelGroup>`],
    ['a list of channels', (channels: string) => `<list>${channels}</list>`],
  ])('%s with all eight channels gives the same specs as the eight files', (_kind, wrap) => {
    const one = importMirth(samples());
    const all = importMirth([{ file: 'lrh-server.xml', xml: wrap(samples().map((s) => s.xml).join('\n')) }]);
    expect(all.specs.map((s) => s.fileName)).toEqual(one.specs.map((s) => s.fileName));
    all.specs.forEach((s, i) => expect(s.text).toBe(one.specs[i]!.text.replaceAll(one.specs[i]!.source, 'lrh-server.xml')));
    expect(all.todos.length).toBe(one.todos.length);
  });

  test('a JavaScript Reader, an XSLT step and a JavaScript Writer: TODOs quoting the original where each stood, in the report with its line, and the spec validates', async () => {
    let xml = readFileSync(join(SAMPLES, 'lrh-pharmacy-orders-passthrough.xml'), 'utf8');
    xml = xml.replace('<transportName>TCP Listener</transportName>', '<transportName>JavaScript Reader</transportName>');
    xml = xml.replace('<properties class="com.mirth.connect.connectors.tcp.TcpReceiverProperties" version="4.5.2">', '<properties class="com.mirth.connect.connectors.js.JavaScriptReceiverProperties" version="4.5.2">\n      <script>var rows = dbConn.executeCachedQuery(&quot;SELECT hl7 FROM outbox&quot;);\nreturn rows;</script>');
    const at = xml.indexOf('<elements>') + '<elements>'.length;
    xml = `${xml.slice(0, at)}\n        <com.mirth.connect.plugins.xsltstep.XsltStep version="4.5.2">\n          <name>Rewrite with XSLT</name>\n          <sequenceNumber>9</sequenceNumber>\n          <enabled>true</enabled>\n          <template>&lt;xsl:stylesheet version="1.0"/&gt;</template>\n        </com.mirth.connect.plugins.xsltstep.XsltStep>${xml.slice(at)}`;
    xml = xml.replace('<transportName>TCP Sender</transportName>', '<transportName>JavaScript Writer</transportName>');
    xml = xml.replace('<properties class="com.mirth.connect.connectors.tcp.TcpDispatcherProperties" version="4.5.2">', '<properties class="com.mirth.connect.connectors.js.JavaScriptDispatcherProperties" version="4.5.2">\n        <script>router.routeMessage(&apos;x&apos;, connectorMessage.getEncodedData());</script>');
    const result = importMirth([{ file: 'scripted.xml', xml }]);
    const text = result.specs[0]!.text;
    expect(text).toContain('# TODO(import): hl7c has no JavaScript Reader source; placeholder: an MLLP listener on a free loopback port\n#   | var rows = dbConn.executeCachedQuery("SELECT hl7 FROM outbox");\n#   | return rows;\nsource:\n');
    expect(text).toContain('# TODO(import): XSLT step "Rewrite with XSLT" is not translated (hl7c has no XSLT: express it as transform steps)\n#   | <xsl:stylesheet version="1.0"/>\ntransform:\n');
    expect(text).toContain("# TODO(import): hl7c has no JavaScript Writer destination; left out\n#   | router.routeMessage('x', connectorMessage.getEncodedData());\n");
    const lines = xml.split('\n');
    const where = (what: RegExp) => result.todos.find((t) => what.test(t.what))!;
    expect(lines[where(/JavaScript Reader/).line! - 1]).toContain('<sourceConnector');
    expect(lines[where(/XSLT/).line! - 1]).toContain('<name>Rewrite with XSLT</name>');
    expect(lines[where(/JavaScript Writer/).line! - 1]).toContain('<name>Omnicell</name>');
    const { dir, files } = writeSpecs(result.specs);
    expect((await validateSpecs(files, { cwd: dir, env: {} })).diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  });

  test('not an export: a clear error, exit 1', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hl7c-mirth-bad-'));
    writeFileSync(join(dir, 'x.xml'), '<list><string>nothing</string></list>');
    let stderr = '';
    const io = { stdout: () => undefined, stderr: (t: string) => void (stderr += t), cwd: dir, stopSignal: new Promise<string>(() => undefined) };
    expect(await runCli(['import', 'mirth', 'x.xml'], io)).toBe(1);
    expect(stderr).toContain('x.xml: no Mirth channel in it');
  });
});

describe.skipIf(!haveSamples)('imported channels produce what Mirth produced (the .expect.md checks on an OIE 4.5.2 server)', () => {
  async function preview(name: string, input: string | Buffer) {
    const result = importMirth(samples());
    const { dir } = writeSpecs(result.specs);
    const { channel, diagnostics } = await compileForPreview(join(dir, `${name}.yaml`), { cwd: dir, env: {} });
    expect(diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
    return previewChannel(channel!, Buffer.from(input))[0]!;
  }

  test('flowsheet vitals (JSON in, ORU out): the message Epic got, field for field, but OBX-2 (left as a TODO)', async () => {
    const xml = readFileSync(join(SAMPLES, 'lrh-flowsheet-vitals-http.xml'), 'utf8');
    const body = Buffer.from(/<inboundTemplate encoding="base64">([^<]+)</.exec(xml)![1]!, 'base64');
    const p = await preview('lrh-flowsheet-vitals-http', body);
    const epic = p.payloads.find((x) => x.destination === 'epic_flowsheet_inbound')!;
    expect(epic.kind).toBe('hl7');
    const segments = (epic as { segments: string[] }).segments;
    // As Epic received them from Mirth (lrh-flowsheet-vitals-http.expect.md), OBX-2 (NM) aside.
    expect(segments.slice(1)).toEqual([
      'PID|1||2041877^^^LRH^MR||ASHGROVE^LENA',
      'PV1|1|I|||||||||||||||||880112934',
      'OBR|1|||VITALS^Vital signs^L|||20260314080500-0500||||||||||||||||||F',
      'OBX|1||8867-4^Heart rate^LN||72|/min|||||F|||20260314080500-0500||RN4471^PELLETIER, CORA',
      'OBX|2||8480-6^Systolic blood pressure^LN||128|mm[Hg]|||||F|||20260314080500-0500||RN4471^PELLETIER, CORA',
    ]);
    expect(segments[0]).toMatch(/^MSH\|\^~\\&\|LRH_NURSING\|LRH\|EPIC\|LRH\|\d+.*\|\|ORU\^R01\^ORU_R01\|[^|]+\|P\|2\.5\.1/);
  });

  test('SIU scheduling: the appointment JSON has the values Mirth posted (start, end and resources aside: TODOs)', async () => {
    const p = await preview('lrh-siu-scheduling-webhook', readSampleMessage('lrh-siu-scheduling-webhook.xml'));
    expect(p.answer).toBe('AA');
    const json = (p.payloads[0] as { json: Record<string, unknown> }).json;
    expect(json).toMatchObject({ appointmentId: 'FL4410', status: 'booked', visitType: 'FOLLOWUP', patient: { mrn: '0082215', family: 'VOSS', given: 'HELGA' } });
  });

  test('lab results: the portal JSON has what Mirth posted, results from each OBX (collectedAt aside: a TODO)', async () => {
    const p = await preview('lrh-lab-results-file-pickup', readSampleMessage('lrh-lab-results-file-pickup.xml'));
    const portal = p.payloads.find((x) => x.destination === 'post_to_patient_portal') as { kind: string; json: Record<string, unknown> };
    expect(portal.kind).toBe('json');
    expect(portal.json).toMatchObject({ facility: 'LRH', mrn: '0082215', accession: 'LA-77120', orderCode: 'BMP' });
    const results = portal.json.results as Array<Record<string, unknown>>;
    expect(results).toHaveLength(2);
    expect(results[0]).toMatchObject({ sequence: 1, code: '2823-3', display: 'Potassium', value: '6.9', units: 'mmol/L', abnormalFlag: 'HH', status: 'F' });
    expect(results[1]).toMatchObject({ sequence: 2, code: '2951-2', abnormalFlag: 'N' });
    // Preliminary results are filtered, as Mirth's JavaScript filter did.
    const preliminary = await preview('lrh-lab-results-file-pickup', readSampleMessage('lrh-lab-results-file-pickup.xml').replace('|||F\r', '|||P\r'));
    expect(preliminary.status).toBe('filtered');
  });
});

describe.skipIf(!haveSamples)('an imported MLLP channel under hl7c serve', () => {
  test('the ADT router answers as Mirth did (AA, AR with its text, AE without the MR) and archives the message without Z segments', async () => {
    const result = importMirth(samples().filter((s) => /adt-/.test(s.file)));
    const { dir, files } = writeSpecs(result.specs);
    // Epic stand-in: an MLLP receiver that keeps what it gets.
    const epicGot: string[] = [];
    const epic = new MllpServer({
      host: '127.0.0.1',
      port: 0,
      handler: (payload) => {
        const r = receive(payload);
        if (r.ok) epicGot.push(r.message.toString());
        return r.ok ? acknowledge(r.message, 'accept') : r.reject;
      },
    });
    const epicPort = await epic.listen();
    cleanups.push(() => epic.close());
    const archive = join(dir, 'archive');
    mkdirSync(archive);
    const env = { LRH_ADT_INBOUND_ROUTER_PORT: '0', ADT_ARCHIVE_DIR: archive, EPIC_ADT_HOST: '127.0.0.1', EPIC_ADT_PORT: String(epicPort), PIX_DB_HOST: '127.0.0.1' };
    const { serving, client } = await serveRouter(files, dir, env);

    const sample = readSampleMessage('lrh-adt-inbound-router.xml');
    const a01 = await client.send(sample);
    expect(a01.code).toBe('AA');
    expect(a01.acknowledgedControlId).toBe('STAR000771');

    // The archive file: the channel's message as sent on, Z segments removed (Mirth's ${message.encodedData}).
    await waitFor(() => readdirSync(archive).filter((f) => !f.startsWith('.')).length === 1, 10_000, 'the archive file');
    const [name] = readdirSync(archive).filter((f) => !f.startsWith('.'));
    const features = detectFeatures();
    expect(name).toMatch(features.fileAppend ? /^A01_\d+\.hl7$/ : /^STAR000771_\d+\.hl7$/);
    const written = readFileSync(join(archive, name!), 'latin1');
    const expected = sample
      .split('\r')
      .filter((s) => s && !s.startsWith('Z'))
      .join('\r')
      // and PV1-44 to the minute (the .expect.md: the archive has PV1-44 rewritten).
      .replace(features.textEdits ? '|20261103081512-0500' : '', features.textEdits ? '|202611030815' : '');
    expect(written.replace(/\r$/, '')).toBe(expected);
    expect(written).not.toMatch(/ZPD|ZPV/);

    // Epic gets the same message (and, once per-destination transform is in, its own MSH-5/6).
    await waitFor(() => epicGot.length === 1, 10_000, 'Epic to receive the A01');
    const atEpic = parseMessage(epicGot[0]!);
    expect(atEpic.segments.map((s) => s.name)).toEqual(['MSH', 'EVN', 'PID', 'PV1']);
    if (features.destinationTransform) {
      expect(atEpic.get('MSH-5')).toBe('EPIC');
      expect(atEpic.get('MSH-6')).toBe('LRH');
    }
    // PV1-44 to the minute, no offset, as the script "Reformat PV1-44 and DOB" wrote it for Epic.
    if (features.textEdits) expect(atEpic.get('PV1-44')).toBe('202611030815');

    // What Mirth answered for the other test messages of the .expect.md.
    const oru = await client.send(sample.replace('ADT^A01^ADT_A01', 'ORU^R01^ORU_R01'));
    expect(oru.code).toBe('AR');
    // Mirth's MSA-3 text; hl7c adds the rule's name after it.
    expect(oru.text).toMatch(/^Message type not accepted by the LRH ADT router\./);
    const noMr = await client.send(sample.replace('0082215^^^LRH^MR', '0082215^^^LRH^PI').replace('STAR000771', 'STAR000772'));
    expect(noMr.code).toBe('AE');
    const training = await client.send(sample.replace("O'HALLORAN-VIX", 'ZZTEST-ONE').replace('STAR000771', 'STAR000773'));
    expect(training.code).toBe('AR');
    const a02 = await client.send(sample.replace(/ADT\^A01\^ADT_A01/, 'ADT^A02^ADT_A02').replace('STAR000771', 'STAR000774'));
    expect(a02.code).toBe('AA');
    // A02 is archived and sent to Epic, not handed to the patient index (destination filter).
    await waitFor(() => readdirSync(archive).filter((f) => !f.startsWith('.')).length === 2 && epicGot.length === 2, 10_000, 'the A02 archived and sent');
    const messages = await serving.store.listMessages();
    const a02Row = messages.find((m) => m.control_id === 'STAR000774')!;
    const history = (await serving.store.getMessage(a02Row.id))!;
    expect(history.deliveries.map((d) => d.destination).sort()).toEqual(['archive_to_disk', 'epic_adt_inbound']);
  }, 60_000);
});

describe.skipIf(!haveSamples)('an imported respond-from-destination channel under hl7c serve', () => {
  test("the pharmacy passthrough answers Epic with Omnicell's own ACK, byte for byte (lrh-pharmacy-orders-passthrough.expect.md), and AE when Omnicell is down", async () => {
    const result = importMirth(samples().filter((s) => /pharmacy/.test(s.file)));
    // Mirth's 2 retries 5 s apart, made quick for the test.
    const { dir, files } = writeSpecs(result.specs.map((s) => ({ ...s, text: s.text.replace('backoff_ms: 5000, max_backoff_ms: 5000', 'backoff_ms: 20, max_backoff_ms: 20') })));
    const omnicellGot: string[] = [];
    const omnicellAcks: Buffer[] = [];
    const omnicell = new MllpServer({
      host: '127.0.0.1',
      port: 0,
      handler: (payload) => {
        const r = receive(payload);
        if (!r.ok) return r.reject;
        omnicellGot.push(r.message.toString());
        const ack = Buffer.from(`MSH|^~\\&|OMNICELL|LRH_RX|EPIC|LRH|20261125090001||ACK^O11^ACK|OMNI-${r.message.controlId}|P|2.5.1\rMSA|AA|${r.message.controlId}|dispensed to cabinet 4\r`, 'latin1');
        omnicellAcks.push(ack);
        return ack;
      },
    });
    const omnicellPort = await omnicell.listen();
    cleanups.push(() => omnicell.close());
    const { logger } = memoryLogger();
    const env = { LRH_PHARMACY_ORDERS_PASSTHROUGH_PORT: '0', PHARMACY_HOST: '127.0.0.1', PHARMACY_PORT: String(omnicellPort) };
    const serving = await startServing({ specs: files, storePath: join(dir, 'store.db'), cwd: dir, env, logger, watch: false });
    cleanups.push(() => serving.close());
    const sample = readSampleMessage('lrh-pharmacy-orders-passthrough.xml');
    const epic = await RawPeer.connect(serving.ports()['lrh-pharmacy-orders-passthrough']!);
    cleanups.push(() => epic.end());
    await epic.write(frame(sample));
    const [answer] = await epic.waitForFrames(1, 20_000);
    expect(omnicellAcks).toHaveLength(1);
    expect(answer!.equals(omnicellAcks[0]!)).toBe(true);
    const atOmnicell = parseMessage(omnicellGot[0]!);
    expect([atOmnicell.get('MSH-5'), atOmnicell.get('MSH-6'), atOmnicell.get('RXE-2')]).toEqual(['OMNICELL', 'LRH_RX', '00409-1234-01^HEPARIN 5000 UNIT/ML^NDC']);

    // Omnicell down: Mirth sent d1's error text; hl7c answers AE naming the destination once its retries are spent.
    await omnicell.close();
    await epic.write(frame(sample.replace('|WIL5501|', '|RX-DOWN|')));
    const [, down] = await epic.waitForFrames(2, 30_000);
    expect(down!.toString('latin1')).toMatch(/\rMSA\|AE\|RX-DOWN\|destination omnicell could not deliver the message: /);
  }, 90_000);
});

describe.skipIf(!haveSamples)('an imported Database Writer on MySQL/MariaDB', () => {
  test('the patient index, pointed at MariaDB, writes the row Mirth wrote to PostgreSQL (ZIP+4 cut to ZIP by the mapper regex)', async () => {
    const db = `hv2_pix_${process.pid}_${Date.now() % 100000}`;
    const server = { host: '127.0.0.1', port: 3306, user: 'root' };
    const admin = await mysql.createConnection(server);
    cleanups.push(async () => {
      await admin.query(`DROP DATABASE IF EXISTS ${db}`);
      await admin.end();
    });
    await admin.query(`CREATE DATABASE ${db}`);
    await admin.query(`CREATE TABLE ${db}.adt_patient_event (mrn varchar(20), family_name varchar(80), given_name varchar(80), birth_date date, sex char(1), home_zip varchar(10), event_type varchar(8), message_control_id varchar(40), mirth_message_id varchar(40), received_at datetime) ENGINE=InnoDB`);
    const inputs = samples()
      .filter((s) => /adt-/.test(s.file))
      .map((s) => ({ ...s, xml: s.xml.replace('<driver>org.postgresql.Driver</driver>', '<driver>com.mysql.cj.jdbc.Driver</driver>').replace('jdbc:postgresql://${PIX_DB_HOST}:5432/patient_index?stringtype=unspecified', `jdbc:mysql://\${PIX_DB_HOST}:3306/${db}`) }));
    const result = importMirth(inputs);
    const index = result.specs.find((s) => s.fileName === 'lrh-adt-patient-index.yaml')!.text;
    expect(index).toContain(`url: mysql://\${PIX_DB_USER:-}:\${PIX_DB_PASSWORD:-}@\${PIX_DB_HOST:-127.0.0.1}:3306/${db}`);
    expect(index).not.toContain('JDBC options');
    const { dir, files } = writeSpecs(result.specs);
    const env = { LRH_ADT_INBOUND_ROUTER_PORT: '0', ADT_ARCHIVE_DIR: join(dir, 'archive'), EPIC_ADT_PORT: '1', PIX_DB_HOST: '127.0.0.1', PIX_DB_USER: 'root' };
    const { client } = await serveRouter(files, dir, env);
    const sample = readSampleMessage('lrh-adt-inbound-router.xml');
    expect(sample).toContain('^49999-1234^');
    expect((await client.send(sample)).code).toBe('AA');
    let rows: unknown[] = [];
    await waitFor(async () => (rows = (await admin.query(`SELECT mrn, family_name, given_name, DATE_FORMAT(birth_date, '%Y-%m-%d') AS birth_date, sex, home_zip, event_type, message_control_id, received_at IS NOT NULL AS stamped FROM ${db}.adt_patient_event`))[0] as unknown[]).length === 1, 15_000, 'the row in MariaDB');
    expect(rows).toEqual([{ mrn: '0082215', family_name: "O'HALLORAN-VIX", given_name: 'DESMOND', birth_date: '1970-03-04', sex: 'X', home_zip: '49999', event_type: 'A01', message_control_id: 'STAR000771', stamped: 1 }]);
  }, 60_000);
});

/** The imported specs under hl7c serve, and an MLLP client to the ADT router. */
async function serveRouter(files: string[], dir: string, env: Record<string, string>) {
  const { logger } = memoryLogger();
  const serving = await startServing({ specs: files, storePath: join(dir, 'store.db'), cwd: dir, env, logger, watch: false });
  cleanups.push(() => serving.close());
  const client = new MllpClient({ host: '127.0.0.1', port: serving.ports()['lrh-adt-inbound-router']! });
  cleanups.push(() => client.close());
  return { serving, client };
}

function readSampleMessage(file: string): string {
  const xml = readFileSync(join(SAMPLES, file), 'utf8');
  const b64 = /<inboundTemplate encoding="base64">([^<]+)<\/inboundTemplate>/.exec(xml)![1]!;
  return Buffer.from(b64, 'base64').toString('utf8');
}
