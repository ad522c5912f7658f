import { segmentFields, tableVersionOf } from '../../runtime/hl7/versions/tables.js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { buildSpecs } from '../../src/compiler/build.js';
import { loadChannel } from '../../src/compiler/load-channel.js';
import { runCase } from '../../src/testing/run-tests.js';
import type { Spec } from '../../src/spec/types.js';
import { clearElement, copyElement, Hl7ParseError, Message, parseMessage, readAck, runChannel } from '../../runtime/index.js';
import { corpusFile, corpusFiles } from '../corpus.js';

async function build(yaml: string) {
  const dir = mkdtempSync(join(tmpdir(), 'hl7c-transform-'));
  writeFileSync(join(dir, 'c.yaml'), yaml);
  const result = await buildSpecs([join(dir, 'c.yaml')], { cwd: dir, env: {} });
  return { result, dir, channel: result.ok ? loadChannel(result.files[0]!.code, result.files[0]!.fileName) : undefined };
}

async function compile(yaml: string) {
  const { result, channel, dir } = await build(yaml);
  expect(result.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  return { channel: channel!, spec: result.specs[0]!.data as Spec, dir };
}

/** The PID line of what a destination receives, as bytes on the wire. */
const pidLine = (out: unknown) => String(out).split('\r').find((l) => l.startsWith('PID|'));

// Epic-style ordering: the SSN comes first, the MR second, then a PI.
const EPIC_ADT = [
  'MSH|^~\\&|EPIC|GOODHEALTH|HL7C|DOWNSTREAM|20261125083000-0500||ADT^A08^ADT_A01|ADT-EPIC-1|P|2.5.1',
  'EVN|A08|20261125083000-0500',
  'PID|1||900123456^^^SSA^SS~E1234567^^^EPI^MR~88776655^^^GOODHEALTH&2.16.840.1.113883.3.1234&ISO^PI||TESTPATIENT^ALEX',
  'PV1|1|I|4WEST^412^A',
].join('\r');

describe('values keep their structure (issue 9, case 1)', () => {
  test('the ACK goes back to the sender as addressed in the message received, not as a transform rewrote MSH', async () => {
    const { channel } = await compile(`channel: relay
source: { mllp: { port: 0 } }
transform:
  - set: { path: MSH-3, value: HL7C }
  - set: { path: MSH-5, value: LAB }
destinations:
  next: { mllp: { host: 127.0.0.1, port: 1 } }
`);
    const result = runChannel(channel, Buffer.from(EPIC_ADT));
    expect(String(result.outputs.next).split('\r')[0]).toMatch(/^MSH\|\^~\\&\|HL7C\|GOODHEALTH\|LAB\|/);
    const ackHeader = result.ack!.toString('latin1').split('\r')[0]!.split('|');
    // ACK MSH-3/4 are the receiver's (the message's MSH-5/6), MSH-5/6 the sender's (its MSH-3/4).
    expect(ackHeader.slice(2, 6)).toEqual(['HL7C', 'DOWNSTREAM', 'EPIC', 'GOODHEALTH']);
  });

  test('copy of a repetition moves it as structure: the receiver gets components, not \\S\\ escapes', async () => {
    const { channel } = await compile(`channel: relay
source: { mllp: { port: 0 } }
transform:
  - copy: { from: "PID-3[1]", to: PID-3 }
  - copy: { from: PID-3.4, to: PID-2 }
destinations:
  next: { mllp: { host: 127.0.0.1, port: 1 } }
`);
    const result = runChannel(channel, Buffer.from(EPIC_ADT));
    expect(result.status).toBe('accepted');
    expect(pidLine(result.outputs.next)).toBe('PID|1|SSA|900123456^^^SSA^SS||TESTPATIENT^ALEX');
    // A subcomponent-bearing component stays subcomponents (& not \T\).
    const pi = runChannel(channel, Buffer.from(EPIC_ADT.replace('900123456^^^SSA^SS~', '')));
    expect(pidLine(pi.outputs.next)).toBe('PID|1|EPI|E1234567^^^EPI^MR||TESTPATIENT^ALEX');
  });

  test('a literal set value is still escaped: it is text, not structure', async () => {
    const { channel } = await compile(`channel: relay
source: { mllp: { port: 0 } }
transform:
  - set: { path: PID-5.1, value: "A|B^C" }
destinations:
  next: { mllp: { host: 127.0.0.1, port: 1 } }
`);
    expect(pidLine(runChannel(channel, Buffer.from(EPIC_ADT)).outputs.next)).toContain('|A\\F\\B\\S\\C^ALEX');
  });

  test('property: every field of every corpus message, copied to a position in another message and back, leaves the message byte-identical', () => {
    // The other message declares other delimiters, so the value is re-encoded both ways.
    const other = () => parseMessage('MSH|!@$%*|X|Y|Z|W|20261125||ADT^A01|O-1|P|2.5.1\rZHC|\r');
    let fields = 0;
    for (const file of corpusFiles((c) => c !== 'malformed' && c !== 'batch')) {
      let original: Message;
      try {
        original = parseMessage(file.bytes);
      } catch (err) {
        if (err instanceof Hl7ParseError) continue;
        throw err;
      }
      // Each round trip leaves the message as it was, so one parse serves every field.
      const message = parseMessage(file.bytes);
      const target = other();
      const seen = new Map<string, number>();
      for (const segment of original.segments) {
        if (segment.isBlank) continue;
        const occurrence = (seen.get(segment.name) ?? 0) + 1;
        seen.set(segment.name, occurrence);
        for (let n = segment.isHeader ? 3 : 1; n <= segment.fieldCount; n++) {
          const path = `${segment.name}[${occurrence}]-${n}`;
          const at = message.segments.indexOf(message.segment(`${segment.name}[${occurrence}]`)!);
          const edited = () => message.segments[at]!;
          // Repetitions a sender put in a field that does not repeat (PID-18~…) cannot be copied back into it: refused, tested below.
          const def = segmentFields(tableVersionOf(original.getText('MSH-12')) ?? '2.5.1', segment.name)?.[n - 1];
          if (segment.field(n).includes(original.delimiters.repetition) && def !== undefined && def.maxRepetitions <= 1) continue;
          copyElement(message, path, target, 'ZHC-1');
          message.setRaw(path, 'overwritten^in^between');
          copyElement(target, 'ZHC-1', message, path);
          // Only this segment was touched: compare it each time, the whole message's bytes once per file.
          if (edited().toString() !== segment.toString()) expect(edited().toString(), `${file.category}/${file.name} ${path}`).toBe(segment.toString());
          // The same within one message: to a spare field and back. A field with repetitions is not
          // copied into a spare the version tables say does not repeat (refused), only into ZHC-1 above.
          const spare = `${segment.name}[${occurrence}]-${segment.fieldCount + 5}`;
          if (segment.field(n).includes(original.delimiters.repetition)) {
            fields++;
            continue;
          }
          copyElement(message, path, message, spare);
          message.setRaw(path, '');
          copyElement(message, spare, message, path);
          message.segment(`${segment.name}[${occurrence}]`)!.truncate(segment.fieldCount);
          if (edited().toString() !== segment.toString()) expect(edited().toString(), `${file.category}/${file.name} ${path} within`).toBe(segment.toString());
          fields++;
        }
      }
      expect(message.toBytes().equals(original.toBytes()), `${file.category}/${file.name}`).toBe(true);
    }
    expect(fields).toBeGreaterThan(1000);
  });

  test('a copy that would flatten structure is refused with the reason, not sent half-right', async () => {
    const { channel } = await compile(`channel: relay
source: { mllp: { port: 0 } }
transform:
  - copy: { from: PID-3, to: "PID-2[1]" }
destinations:
  next: { mllp: { host: 127.0.0.1, port: 1 } }
`);
    const result = runChannel(channel, Buffer.from(EPIC_ADT));
    expect(result.status).toBe('error');
    expect(result.reason).toMatch(/cannot copy PID-3 to PID-2\[1\]: it has repetitions/);
    expect(readAck(parseMessage(result.ack!)).code).toBe('AE');
  });

  test('hl7c test compares fields as encoded on the wire: an escaped composite does not pass for the structure', async () => {
    const { channel, spec, dir } = await compile(`channel: relay
source: { mllp: { port: 0 } }
transform:
  - set: { path: PID-3, value: "900123456^^^SSA^SS" }
destinations:
  next: { mllp: { host: 127.0.0.1, port: 1 } }
tests:
  - name: structure expected, escaped text sent
    input: |
${EPIC_ADT.split('\r').map((l) => `      ${l}`).join('\n')}
    expect:
      hl7: { PID-3: "900123456^^^SSA^SS" }
  - name: the wire form passes
    input: |
${EPIC_ADT.split('\r').map((l) => `      ${l}`).join('\n')}
    expect:
      hl7: { PID-3: '900123456\\S\\\\S\\\\S\\SSA\\S\\SS', PID-5: TESTPATIENT^ALEX }
`);
    const [structure, wire] = await Promise.all(spec.tests!.map((t) => runCase(channel, t, dir)));
    expect(structure!.passed).toBe(false);
    expect(structure!.mismatches.join('\n')).toMatch(/PID-3: expected "900123456\^\^\^SSA\^SS" on the wire, got "900123456\\\\S\\\\/);
    expect(wire!.mismatches).toEqual([]);
  });
});

describe('identifier rules drive transforms (issue 9, case 2)', () => {
  const SPEC = `channel: adt-forward
source: { mllp: { port: 0 } }
identifiers:
  patient: { kind: patient, assigning_authority: EPI, type_code: MR, required: true }
  ssn: { kind: patient, type_code: SS }
transform:
  - set: { path: PID-2, identifier: ssn }
  - keep_identifier: patient
  - delete_segments: [EVN, "Z*"]
  - clear: PV1-3.3
  - set: { path: PV1-2, value: O }
    when: { path: MSH-11, equals: T }
destinations:
  downstream: { mllp: { host: 127.0.0.1, port: 1 } }
`;

  test('keep_identifier sends exactly the MR repetition, with Epic ordering (SSN first)', async () => {
    const { channel } = await compile(SPEC);
    const result = runChannel(channel, Buffer.from(`${EPIC_ADT}\rZPI|1|internal\rZPV|x`));
    expect(result.status).toBe('accepted');
    const wire = String(result.outputs.downstream).split('\r');
    // The SSN the rule did not select is not forwarded as the patient's identifier.
    expect(wire.find((l) => l.startsWith('PID|'))).toBe('PID|1|900123456^^^SSA^SS|E1234567^^^EPI^MR||TESTPATIENT^ALEX');
    expect(wire.filter((l) => /^(EVN|Z..)\|/.test(l))).toEqual([]);
    expect(wire.find((l) => l.startsWith('PV1|'))).toBe('PV1|1|I|4WEST^412');
  });

  test('when applies a step only to messages that meet it', async () => {
    const { channel } = await compile(SPEC);
    const test = runChannel(channel, Buffer.from(EPIC_ADT.replace('|P|2.5.1', '|T|2.5.1')));
    expect(String(test.outputs.downstream)).toContain('\rPV1|1|O|4WEST^412\r');
  });

  test('a required identifier missing or ambiguous at the step is an AE naming the field; an optional one leaves the field as it is', async () => {
    const { channel } = await compile(SPEC.replace('required: true', 'required: true, field: PID-3'));
    const twoMr = runChannel(channel, Buffer.from(EPIC_ADT.replace('~88776655', '~E7654321^^^EPI^MR~88776655')));
    expect(twoMr.status).toBe('error');
    const ack = readAck(parseMessage(twoMr.ack!));
    expect(ack.code).toBe('AE');
    expect(ack.errors.join(' ')).toMatch(/identifier patient: 2 repetitions of PID-3 match/);
    const optional = await compile(SPEC.replace('required: true', 'required: false'));
    const noMr = runChannel(optional.channel, Buffer.from(EPIC_ADT.replace('~E1234567^^^EPI^MR', '')));
    expect(noMr.status).toBe('accepted');
    expect(pidLine(noMr.outputs.downstream)).toBe('PID|1|900123456^^^SSA^SS|900123456^^^SSA^SS~88776655^^^GOODHEALTH&2.16.840.1.113883.3.1234&ISO^PI||TESTPATIENT^ALEX');
  });

  test('clearing a repetition removes it: no ~~ is left; a cleared component keeps the places before it', () => {
    const m = parseMessage(corpusFile('adt/hapi-adt-a03-v25-multi-pid3.hl7'));
    const before = m.getRaw('PID-3').split('~');
    clearElement(m, 'PID-3[2]');
    expect(m.getRaw('PID-3')).toBe([before[0], ...before.slice(2)].join('~'));
    expect(m.getRaw('PID-3')).not.toContain('~~');
    clearElement(m, 'PID-3[1].4');
    expect(m.getRaw('PID-3[1]')).toBe('5520255^^^^PK');
    clearElement(m, 'PID-3[1].5');
    expect(m.getRaw('PID-3[1]')).toBe('5520255');
  });

  test('keep_identifier on a merge rule reduces MRG-1, on a visit rule PV1-19: the other repetitions stay behind', async () => {
    const { channel } = await compile(`channel: merges
source: { mllp: { port: 0 } }
identifiers:
  retired: { kind: merge, assigning_authority: BCBS, type_code: MR, required: true }
  visit: { kind: visit, type_code: VN, required: true }
transform:
  - keep_identifier: retired
  - keep_identifier: visit
destinations:
  downstream: { mllp: { host: 127.0.0.1, port: 1 } }
`);
    // The corpus A40, with an SSN before the retired MR in MRG-1 and a visit number after an account number in PV1-19.
    const a40 = corpusFile('adt/fhirconv-adt-a40-mrg.hl7')
      .toString('latin1')
      .replace('MRG|56789^^^BCBS^MR', 'MRG|999887777^^^SSA^SS~56789^^^BCBS^MR')
      .replace(/\r?$/, '\rPV1|1|I|||||||||||||||||A77^^^BCBS^AN~V55^^^BCBS^VN\r');
    const result = runChannel(channel, Buffer.from(a40, 'latin1'));
    expect(result.status).toBe('accepted');
    const wire = String(result.outputs.downstream).split('\r');
    expect(wire.find((l) => l.startsWith('MRG|'))).toBe('MRG|56789^^^BCBS^MR');
    expect(wire.find((l) => l.startsWith('PV1|'))).toBe('PV1|1|I|||||||||||||||||V55^^^BCBS^VN');
    // PID-3 is not the merge rule's field: left as it came.
    expect(wire.find((l) => l.startsWith('PID|'))).toContain('|12345^^^BCBS^MR|');
  });

  test('keep_identifier on an EI identifier, an unknown identifier and a step doing two things are validate errors', async () => {
    const bad = await build(`channel: bad
source: { mllp: { port: 0 } }
identifiers:
  order: { kind: order }
transform:
  - keep_identifier: order
  - set: { path: PID-2, identifier: nobody }
  - { clear: PID-2, copy: { from: PID-3, to: PID-2 } }
destinations:
  downstream: { mllp: { host: 127.0.0.1, port: 1 } }
`);
    expect(bad.result.ok).toBe(false);
    expect(bad.result.diagnostics.map((d) => `${d.line} ${d.code}`)).toEqual(expect.arrayContaining(['6 spec/keep-identifier-not-cx', '7 spec/unknown-identifier', '8 spec/transform-step']));
  });
});

describe('reformat_date failures are the transform step\'s', () => {
  test('a channel with no map: AE "transform failed: reformat_date PID-7: …", ERR 102 at PID-7, nothing delivered', async () => {
    const { channel } = await compile(`channel: xf
source: { mllp: { port: 2611 } }
transform:
  - reformat_date: { path: PID-7, format: "DD/MM/YYYY" }
destinations:
  out: { file: { dir: ./out } }
`);
    const adt = EPIC_ADT.replace('||TESTPATIENT^ALEX', '||TESTPATIENT^ALEX||20230229');
    const result = runChannel(channel, Buffer.from(adt, 'latin1'));
    expect(result.status).toBe('error');
    const wire = result.ack!.toString('latin1').split('\r');
    const reason = 'transform failed: reformat_date PID-7: its day is not 01-28 for its month';
    expect(wire[1]).toBe(`MSA|AE|ADT-EPIC-1|${reason}`);
    expect(wire[2]).toBe(`ERR||PID^1^7^1|102^Data type error^HL70357|E||||${reason}`);
    expect(result.outputs).toEqual({});
  });
});
