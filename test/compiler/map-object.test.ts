import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { runChannel, setJsonPath } from '../../runtime/index.js';
import { buildSpecs } from '../../src/compiler/build.js';
import { loadChannel } from '../../src/compiler/load-channel.js';

/**
 * The generated map builds its JSON as an object literal in the output's shape where that gives
 * exactly what setting every key by path in spec order gives (keys in the same order, `when:`
 * fields only when they hold), and sets the fields one by one where it would not.
 */

const MESSAGE = Buffer.from('MSH|^~\\&|A|B|C|D|20261125||ADT^A08|C-1|P|2.5.1\rPID|1||E1^^^EPI^MR||DOE^JANE\r');

async function compile(map: string): Promise<{ code: string; run: () => ReturnType<typeof runChannel> }> {
  const dir = mkdtempSync(join(tmpdir(), 'hl7c-map-object-'));
  writeFileSync(join(dir, 'c.yaml'), `channel: c\nsource: { mllp: { port: 0 } }\nmap:\n${map}\ndestinations:\n  out: { file: { dir: out } }\n`);
  const result = await buildSpecs([join(dir, 'c.yaml')], { cwd: dir, env: {} });
  expect(result.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  const file = result.files[0]!;
  const channel = loadChannel(file.code, file.fileName, {});
  return { code: file.code, run: () => runChannel(channel, MESSAGE) };
}

/** The meaning: each key set by path, in spec order; a `when:` field only when it holds. */
function bySpecOrder(fields: Array<{ key: string; value: string; when?: boolean }>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of fields) if (f.when !== false) setJsonPath(out, f.key, f.value);
  return out;
}

const yamlOf = (fields: Array<{ key: string; value: string; when?: boolean }>) =>
  fields.map((f) => `  ${JSON.stringify(f.key)}: { value: ${JSON.stringify(f.value)}${f.when === undefined ? '' : `, when: { path: MSH-11, equals: ${f.when ? 'P' : 'T'} }`} }`).join('\n');

describe('map output as an object literal', () => {
  test('the ADT shape is one literal, a when: field is set after it, and the JSON is the same as by path', async () => {
    const fields = [
      { key: 'event', value: 'A08' },
      { key: 'patient.mrn', value: 'E1' },
      { key: 'encounter.class', value: 'I' },
      { key: 'patient.name.family', value: 'DOE' },
      { key: 'merge.retired', value: 'E0', when: true },
    ];
    const { code, run } = await compile(yamlOf(fields));
    expect(code).toContain('const out: Record<string, unknown> = {\n    // event');
    expect(code).toContain('  if ((scope.get(MSH_11) ?? "") === "P") setJsonAt(out, OUT_MERGE_RETIRED, "E0");');
    expect(code).not.toContain('setJsonPath');
    expect(JSON.stringify(run().output)).toBe(JSON.stringify(bySpecOrder(fields)));
    expect(JSON.stringify(run().output)).toBe('{"event":"A08","patient":{"mrn":"E1","name":{"family":"DOE"}},"encounter":{"class":"I"},"merge":{"retired":"E0"}}');
  });

  test('a when: field that would come before a later key of its object is set in spec order (no literal)', async () => {
    // With the condition true, merge comes before zzz; a literal with merge set after it could not say so.
    const fields = [
      { key: 'a', value: '1' },
      { key: 'merge.retired', value: 'E0', when: true },
      { key: 'zzz', value: '2' },
    ];
    const { code, run } = await compile(yamlOf(fields));
    expect(code).toContain('const out: Record<string, unknown> = {};');
    expect(JSON.stringify(run().output)).toBe('{"a":"1","merge":{"retired":"E0"},"zzz":"2"}');
  });

  test('a key that is also another key\'s parent is replaced as setting in order does', async () => {
    const fields = [
      { key: 'patient', value: 'flat' },
      { key: 'patient.mrn', value: 'E1' },
      { key: 'x.y', value: 'deep' },
      { key: 'x', value: 'flat again' },
    ];
    const { run } = await compile(yamlOf(fields));
    expect(run().output).toEqual({ patient: { mrn: 'E1' }, x: 'flat again' });
  });

  test('of two lookups that fail (on_missing: error), the first in the spec is the one reported, as before', async () => {
    // In the output's shape x.two would be computed before y; the spec has y first.
    const { code, run } = await compile(
      [
        '  x.one: { value: "1" }',
        '  y: { path: PID-5.1, lookup: { SMITH: s }, on_missing: error }',
        '  x.two: { path: PID-5.2, lookup: { JOHN: j }, on_missing: error }',
      ].join('\n'),
    );
    expect(code).toContain('setJsonAt(out, OUT_Y,');
    const result = run();
    expect(result.status).toBe('error');
    expect(result.reason).toContain('the value mapped to y is not in its lookup table');
  });

  test('a __proto__ key never reaches Object.prototype', async () => {
    const { run } = await compile('  __proto__.polluted: { value: "yes" }\n  ok: { value: "1" }');
    const result = run();
    expect(result.status).toBe('accepted');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(JSON.stringify(result.output)).toBe('{"ok":"1"}');
  });

  test('any keys, indexes and when: fields give the JSON that setting by path in spec order gives', async () => {
    const segment = fc.constantFrom('a', 'b', 'c', 'd[0]', 'd[1]', 'e');
    const field = fc.record({ key: fc.array(segment, { minLength: 1, maxLength: 3 }).map((s) => s.join('.')), value: fc.string({ minLength: 1, maxLength: 3 }).map((v) => `v${v}`), when: fc.constantFrom(undefined, true, false) });
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(field, { selector: (f) => f.key, minLength: 1, maxLength: 6 }), async (fields) => {
        const { run } = await compile(yamlOf(fields));
        const result = run();
        expect(result.status).toBe('accepted');
        expect(JSON.stringify(result.output)).toBe(JSON.stringify(bySpecOrder(fields)));
      }),
      { numRuns: 40 },
    );
  });
});
