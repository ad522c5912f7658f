import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { acknowledge, acknowledgements, buildAck, HL7_ERROR, parseMessage, readAck, receive } from '../runtime/index.js';
import { corpusFile } from './corpus.js';

const msg = (version: string, msh15 = '', msh16 = '') =>
  parseMessage(`MSH|^~\\&|EPIC|HOSP|HL7C|APP|20261125120000||ADT^A01^ADT_A01|CTRL-42|P|${version}|||${msh15}|${msh16}\rPID|1||123^^^HOSP^MR\r`);

describe('ACK messages', () => {
  test('routing swapped, MSH-9 ACK^trigger^ACK, new MSH-10, MSH-11/12 copied, MSA-2 = original MSH-10', () => {
    const ack = buildAck(msg('2.5.1'), { code: 'AA', controlId: 'ACK-1' });
    expect(ack.get('MSH-3')).toBe('HL7C');
    expect(ack.get('MSH-4')).toBe('APP');
    expect(ack.get('MSH-5')).toBe('EPIC');
    expect(ack.get('MSH-6')).toBe('HOSP');
    expect(ack.get('MSH-7')).toMatch(/^\d{14}[+-]\d{4}$/);
    expect(ack.getRaw('MSH-9')).toBe('ACK^A01^ACK');
    expect(ack.controlId).toBe('ACK-1');
    expect(ack.get('MSH-11')).toBe('P');
    expect(ack.get('MSH-12')).toBe('2.5.1');
    expect(ack.getRaw('MSA')).toBe('MSA|AA|CTRL-42');
    expect(ack.segmentsNamed('ERR')).toHaveLength(0);
  });

  test('ACKs to messages from different senders, one after another, each route back to their own sender', () => {
    // The ACK's routing is reused while messages keep the same header: this checks it is not reused wrongly.
    const from = (app: string, facility: string, type: string, version: string, charset = '') =>
      parseMessage(`MSH|^~\\&|${app}|${facility}|HL7C|APP|20261125120000||${type}|C-${app}|P|${version}||||||${charset}\rPID|1\r`);
    const messages = [
      from('EPIC', 'HOSP', 'ADT^A01^ADT_A01', '2.5.1'),
      from('EPIC', 'CLINIC', 'ADT^A01^ADT_A01', '2.5.1'),
      from('CERNER', 'HOSP', 'ORM^O01', '2.3', '8859/1'),
      from('EPIC', 'HOSP', 'SIU^S12^SIU_S12', '2.5.1'),
    ];
    for (let round = 0; round < 2; round++) {
      for (const m of messages) {
        const ack = parseMessage(acknowledge(m, 'accept')!);
        expect([ack.get('MSH-5'), ack.get('MSH-6'), ack.get('MSA-2')]).toEqual([m.get('MSH-3'), m.get('MSH-4'), m.controlId]);
        expect(ack.getRaw('MSH-9')).toBe(m.get('MSH-12') === '2.3' ? 'ACK^O01' : `ACK^${m.get('MSH-9.2')}^ACK`);
        expect(ack.get('MSH-12')).toBe(m.get('MSH-12'));
        expect(ack.get('MSH-18')).toBe(m.get('MSH-18'));
      }
    }
  });

  test('a new control id every time', () => {
    const ids = new Set(Array.from({ length: 1000 }, () => buildAck(msg('2.5'), { code: 'AA' }).controlId));
    expect(ids.size).toBe(1000);
    for (const id of ids) expect(id.length).toBeLessThanOrEqual(20);
  });

  test('v2.5+: ERR-2 location, ERR-3 table 0357, ERR-4 severity, ERR-8 user message; MSA-3 too', () => {
    const ack = buildAck(msg('2.5.1'), {
      code: 'AE',
      errors: [{ code: HL7_ERROR.requiredFieldMissing, location: { segment: 'PID', field: 3, component: 5 }, userMessage: 'PID-3 has no MR identifier' }],
    });
    expect(ack.get('MSA-1')).toBe('AE');
    expect(ack.get('MSA-3')).toBe('PID-3 has no MR identifier');
    expect(ack.getRaw('ERR-2')).toBe('PID^1^3^1^5');
    expect(ack.getRaw('ERR-3')).toBe('101^Required field missing^HL70357');
    expect(ack.get('ERR-4')).toBe('E');
    expect(ack.get('ERR-8')).toBe('PID-3 has no MR identifier');
    expect(ack.get('ERR-1')).toBe('');
    expect(readAck(ack).errors).toEqual(['PID-3 has no MR identifier']);
  });

  test('before v2.5: ERR-1 segment^sequence^field^code', () => {
    const ack = buildAck(msg('2.3'), { code: 'AR', errors: [{ code: 200, location: { segment: 'MSH', field: 9 }, userMessage: 'no' }] });
    expect(ack.getRaw('ERR-1')).toBe('MSH^^9^200&Unsupported message type&HL70357');
    expect(ack.get('ERR-2')).toBe('');
    const noStructure = parseMessage('MSH|^~\\&|A|B|C|D|1||ADT^A01|X|P|2.3\r');
    expect(buildAck(noStructure, { code: 'AA' }).getRaw('MSH-9')).toBe('ACK^A01');
  });

  test('MSH-9 mirrors the received shape for old messages', () => {
    const v21 = parseMessage(corpusFile('adt/medplum-adt-v21-msh9-one-component.hl7'));
    expect(buildAck(v21, { code: 'AA' }).getRaw('MSH-9')).toBe('ACK');
  });

  test('original mode answers AA/AE/AR', () => {
    expect(readAck(parseMessage(acknowledge(msg('2.5'), 'accept')!)).code).toBe('AA');
    expect(readAck(parseMessage(acknowledge(msg('2.5'), 'error')!)).code).toBe('AE');
    expect(readAck(parseMessage(acknowledge(msg('2.5'), 'reject')!)).code).toBe('AR');
  });

  test.each([
    ['AL', 'accept', 'CA'],
    // Stored but failed in processing: still committed, so CA; the AE/AR is the application ACK's.
    ['AL', 'error', 'CA'],
    ['AL', 'reject', 'CA'],
    ['AL', 'not_stored', 'CE'],
    ['ER', 'accept', undefined],
    ['ER', 'error', undefined],
    ['ER', 'reject', undefined],
    ['ER', 'not_stored', 'CE'],
    ['SU', 'accept', 'CA'],
    ['SU', 'error', 'CA'],
    ['NE', 'accept', undefined],
    ['NE', 'not_stored', 'CE'],
    ['', 'accept', 'CA'],
  ] as const)('enhanced mode MSH-15=%s, outcome %s → accept ACK %s', (msh15, outcome, code) => {
    const ack = acknowledge(msg('2.5', msh15, 'AL'), outcome, [{ code: 207, userMessage: 'why' }]);
    const read = ack === undefined ? undefined : readAck(parseMessage(ack));
    expect(read?.code).toBe(code);
    // A CA carries no error: the application ACK does.
    if (read?.code === 'CA') expect(read.errors).toEqual([]);
  });

  test.each([
    ['', '', 'accept', ['AA']],
    ['', '', 'error', ['AE']],
    ['', '', 'reject', ['AR']],
    ['', '', 'not_stored', ['AE']],
    ['AL', 'NE', 'accept', ['CA']],
    ['AL', 'NE', 'error', ['CA']],
    ['AL', '', 'accept', ['CA']],
    ['NE', 'AL', 'accept', ['AA']],
    ['NE', 'AL', 'reject', ['AR']],
    ['AL', 'AL', 'accept', ['CA', 'AA']],
    ['', 'AL', 'accept', ['CA', 'AA']],
    // An application error is never a CE ("not committed, send again"): CA, then AE/AR.
    ['AL', 'AL', 'error', ['CA', 'AE']],
    ['AL', 'AL', 'reject', ['CA', 'AR']],
    ['AL', 'AL', 'not_stored', ['CE']],
    ['ER', 'AL', 'accept', ['AA']],
    ['ER', 'AL', 'error', ['AE']],
    ['ER', 'AL', 'not_stored', ['CE']],
    ['NE', 'ER', 'accept', []],
    ['NE', 'ER', 'error', ['AE']],
    ['NE', 'NE', 'not_stored', ['CE']],
    ['AL', 'ER', 'accept', ['CA']],
    ['AL', 'ER', 'error', ['CA', 'AE']],
    ['AL', 'SU', 'accept', ['CA', 'AA']],
    ['AL', 'SU', 'error', ['CA']],
    ['NE', 'SU', 'error', []],
    ['NE', 'NE', 'accept', []],
  ] as const)('MSH-15=%s MSH-16=%s, outcome %s: the receiver sends %j', (msh15, msh16, outcome, codes) => {
    const m = msg('2.5', msh15, msh16);
    const acks = acknowledgements(m, outcome).map((b) => parseMessage(b));
    expect(acks.map((a) => readAck(a).code)).toEqual(codes);
    for (const ack of acks) {
      expect(ack.get('MSA-2')).toBe('CTRL-42');
      expect(ack.getRaw('MSH-9')).toBe('ACK^A01^ACK');
    }
    expect(new Set(acks.map((a) => a.controlId)).size).toBe(acks.length);
  });

  test('ACKs are never acknowledged', () => {
    expect(acknowledge(parseMessage(corpusFile('edge/medplum-ack-aa-v261.hl7')), 'accept')).toBeUndefined();
  });

  test('an unreadable message still gets an AR naming it, with the reason and location', () => {
    const received = receive(Buffer.from('MSH|^~\\&|EPIC|HOSP|HL7C|APP|20261125||ADT^A01|BAD-1|P|2.5.1\rPID|1||1\x0b2\r'));
    expect(received.ok).toBe(false);
    if (received.ok) return;
    const ack = parseMessage(received.reject);
    expect(ack.get('MSA-1')).toBe('AR');
    expect(ack.get('MSA-2')).toBe('BAD-1');
    expect(ack.getRaw('ERR-2')).toBe('PID^1^3^1');
    expect(ack.get('ERR-3.1')).toBe('102');
    expect(ack.get('ERR-8')).toMatch(/control byte 0x0b/);
  });

  test('an AR to a header holding control bytes carries none of them: the sender can frame and read it', () => {
    // 0x1C in MSH-3 would end the ACK's MLLP frame early; NUL and 0x0B would make it unreadable.
    const received = receive(Buffer.from('MSH|^~\\&|EP\x1cIC|HO\x00SP|HL7C|A\x0bPP|20261125||ADT^A01|BAD-2|P|2.5.1\rPID|1||1\r'));
    expect(received.ok).toBe(false);
    if (received.ok) return;
    expect([...received.reject].filter((b) => (b < 0x20 && b !== 0x0d) || b === 0x7f)).toEqual([]);
    const ack = parseMessage(received.reject);
    expect(ack.get('MSA-1')).toBe('AR');
    expect(ack.get('MSA-2')).toBe('BAD-2');
    expect([ack.get('MSH-3'), ack.get('MSH-5'), ack.get('MSH-6')]).toEqual(['HL7C', 'EPIC', 'HOSP']);
  });
});

describe('the README table "what the sender sees"', () => {
  const readme = readFileSync(join(dirname(fileURLToPath(import.meta.url)), '..', 'README.md'), 'utf8');
  const table = readme.slice(readme.indexOf('| MSH-15 / MSH-16 |'));
  const lines = table.split('\n');
  const rows = lines
    .slice(2, lines.findIndex((l) => !l.startsWith('|')))
    .map((l) => l.split('|').slice(1, -1).map((c) => c.trim()));
  const outcomes = ['accept', 'error', 'reject', 'not_stored'] as const;

  test('has a row for each MSH-15/16 combination that matters', () => {
    expect(rows.length).toBeGreaterThanOrEqual(11);
  });

  test.each(rows.map((r) => [r[0]!, r] as const))('%s: the receiver sends what the table says', (_, row) => {
    const [head, ...cells] = row;
    const pairs = head!.startsWith('empty / empty')
      ? [['', '']]
      : (() => {
          const [a, b] = head!.split(' / ');
          const alts = (v: string) => v!.split(' or ').map((x) => (x === 'empty' ? '' : x));
          return alts(a!).flatMap((x) => alts(b!).map((y) => [x, y]));
        })();
    for (const [msh15, msh16] of pairs) {
      outcomes.forEach((outcome, i) => {
        const expected = cells[i] === 'nothing' ? [] : cells[i]!.split(', ');
        const sent = acknowledgements(msg('2.5', msh15, msh16), outcome).map((b) => readAck(parseMessage(b)).code);
        expect(sent, `${msh15}/${msh16} ${outcome}`).toEqual(expected);
      });
    }
  });
});
