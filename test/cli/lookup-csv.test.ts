import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { describe, expect, test } from 'vitest';
import { cli, REPO } from './helpers.js';

// A spec whose map looks PV1-2 up in t.csv, with one sample test reading the table through the build.
const spec = (expected: string) => `channel: lk
source: { mllp: { port: 2821 } }
map:
  class: { path: PV1-2, lookup: { file: t.csv }, on_missing: keep }
destinations:
  f: { file: { dir: ./o } }
tests:
  - name: a quoted code and value with commas in them
    input: "MSH|^~\\\\&|A|B|C|D|20261125||ADT^A01^ADT_A01|L1|P|2.5.1\\rPID|1||E1^^^EPI^MR\\rPV1|1|X,Y\\r"
    expect:
      output: { class: ${JSON.stringify(expected)} }
`;

function setUp(csv: string, expected = 'quoted, value'): string {
  const dir = mkdtempSync(join(tmpdir(), 'hl7c-lookup-csv-'));
  writeFileSync(join(dir, 'l.yaml'), spec(expected));
  writeFileSync(join(dir, 't.csv'), csv);
  return dir;
}

describe('lookup tables from CSV (tester finding: misread without warning)', () => {
  test('a quoted code and value holding commas and quotes are read whole (RFC 4180)', async () => {
    const dir = setUp('code,value\r\n"X,Y","quoted, value"\r\nU,"say ""u"""\r\n');
    const run = await cli('test', join(dir, 'l.yaml'));
    expect(run.stdout).toContain('✓ a quoted code and value with commas in them');
    expect(run.code).toBe(0);
    const quotes = setUp('code,value\n"X,Y","say ""u"""\n', 'say "u"');
    expect((await cli('test', join(quotes, 'l.yaml'))).code).toBe(0);
  });

  test('validate reports duplicate codes, rows without a value and extra columns at the CSV line and column, naming the spec line', async () => {
    const dir = setUp('code,value\nM,male\nM,female\nF\n"X,Y","quoted, value"\nM,male\nA,b,c\n');
    const run = await cli('validate', join(dir, 'l.yaml'));
    const out = run.stdout + run.stderr;
    const csv = relative(REPO, join(dir, 't.csv'));
    const use = `${relative(REPO, join(dir, 'l.yaml'))}:4:41`;
    expect(out).toContain(
      `${csv}:3:1: error spec/lookup-duplicate-code: code "M" is listed again with another value: "male" on line 2, "female" here; only one can be used\n` +
        `  hint: keep the row with the right value and remove the other; the table is used at ${use}\n`,
    );
    expect(out).toContain(`${csv}:4:1: warning spec/lookup-row-without-value: the row for "F" has no value: it is left out of the table\n`);
    expect(out).toContain(`${csv}:6:1: warning spec/lookup-duplicate-code: code "M" is listed again (line 2) with the same value\n`);
    expect(out).toContain(`${csv}:7:5: error spec/lookup-extra-column: this row has 3 fields; a lookup table has two: code,value\n`);
    expect(out).not.toContain(`${csv}:5:`);
    expect(out).toContain('1 spec(s): 2 error(s), 2 warning(s)');
    expect(run.code).toBe(1);
  });

  test('an unclosed quote is an error at the quote', async () => {
    const dir = setUp('code,value\nI,"inpatient\nO,outpatient\n');
    const run = await cli('validate', join(dir, 'l.yaml'));
    const out = run.stdout + run.stderr;
    expect(out).toContain(`${relative(REPO, join(dir, 't.csv'))}:2:3: error spec/lookup-csv-syntax: this quoted field is never closed`);
    expect(run.code).toBe(1);
  });
});
