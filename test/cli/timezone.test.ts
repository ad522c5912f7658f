import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { describe, expect, test } from 'vitest';
import { cli, REPO } from './helpers.js';

const message = (admitted: string) => `"MSH|^~\\\\&|EPIC|GH|APP|GH|20260101||ADT^A01^ADT_A01|TZ1|P|2.5.1\\rPID|1||E1^^^EPI^MR\\rPV1|1|I${'|'.repeat(42)}${admitted}\\r"`;

/** A spec mapping PV1-44 (admit date/time) through `datetime`, with one sample test per value. */
function spec(timezone: string, cases: Array<[string, string, string]>): string {
  const tests = cases.map(([name, value, iso]) => `  - name: ${name}\n    input: ${message(value)}\n    expect:\n      output: { admitted_at: "${iso}" }\n`).join('');
  return `channel: tz\ntimezone: ${timezone}\nsource: { mllp: { port: 2822 } }\nmap:\n  admitted_at: { path: PV1-44, transform: [datetime] }\ndestinations:\n  f: { file: { dir: ./o } }\ntests:\n${tests}`;
}

function write(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'hl7c-timezone-'));
  writeFileSync(join(dir, 'tz.yaml'), text);
  return join(dir, 'tz.yaml');
}

describe('timezone: an IANA zone (tester finding: a fixed offset is an hour off in summer)', () => {
  test('America/New_York: winter -05:00, summer -04:00, the spring-forward gap and the fall-back overlap', async () => {
    const path = write(
      spec('America/New_York', [
        ['winter', '20260115083000', '2026-01-15T08:30:00-05:00'],
        ['summer', '20260715083000', '2026-07-15T08:30:00-04:00'],
        ['the last minute before spring forward', '202603080159', '2026-03-08T01:59-05:00'],
        ['a time the clocks skip takes the offset before the change', '20260308023000', '2026-03-08T02:30:00-05:00'],
        ['after spring forward', '20260308030000', '2026-03-08T03:00:00-04:00'],
        ['a time that happens twice is the first, in summer time', '20261101013000', '2026-11-01T01:30:00-04:00'],
        ['after fall back', '20261101020000', '2026-11-01T02:00:00-05:00'],
        ['an offset the sender gave wins', '20260715083000+0100', '2026-07-15T08:30:00+01:00'],
      ]),
    );
    const validate = await cli('validate', path);
    expect(validate.stdout + validate.stderr).toContain('1 spec(s): 0 error(s)');
    expect(validate.code).toBe(0);
    const run = await cli('test', path);
    expect(run.stdout).toContain('8 passed, 0 failed');
    expect(run.code).toBe(0);
  });

  test('a fixed offset still works, the same all year', async () => {
    const path = write(spec('"-05:00"', [['summer', '20260715083000', '2026-07-15T08:30:00-05:00']]));
    const run = await cli('test', path);
    expect(run.stdout).toContain('1 passed, 0 failed');
  });

  test('a zone Node.js does not know is an error at its line and column', async () => {
    const path = write(spec('Mars/Olympus_Mons', [['summer', '20260715083000', '2026-07-15T08:30:00-05:00']]));
    const run = await cli('validate', path);
    expect(run.stdout + run.stderr).toContain(`${relative(REPO, path)}:2:11: error spec/unknown-timezone: Mars/Olympus_Mons is no time zone this Node.js knows`);
    expect(run.code).toBe(1);
  });
});
