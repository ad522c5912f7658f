import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { buildSpecs } from '../../src/compiler/build.js';
import { loadChannel } from '../../src/compiler/load-channel.js';
import { runChannel } from '../../runtime/index.js';

/** Every JavaScript reserved word (and then some), and every name the generated code uses itself. */
const RESERVED = `break case catch class const continue debugger default delete do else enum export extends false finally for
function if import in instanceof new null return super switch this throw true try typeof var void while with yield let static
implements interface package private protected public await async arguments eval undefined of get set constructor prototype`.split(/\s+/);
const GENERATOR = `problems message out scope ids item to input builder accept identify map route transform build require module
exports settle selectcx selectei evaluate interpolate definechannel setjsonpath applytransform lookupvalue withdefault copyelement
clearelement keepidentifier setidentifier deletesegments i1 item1 pid1 obx1 pid_rep1`.split(/\s+/);

test('identifier and destination names that are JavaScript keywords or generated names build, load and run (issue 9, case 8)', async () => {
  const names = [...new Set([...RESERVED, ...GENERATOR])];
  const yaml = [
    'channel: names',
    'source: { mllp: { port: 0 } }',
    'identifiers:',
    // Quoted: to YAML, unquoted true, false and null are not names.
    ...names.map((n) => `  "${n}": { kind: patient, type_code: MR, required: true }`),
    'transform:',
    '  - keep_identifier: "new"',
    'map:',
    ...names.map((n) => `  ids_${n}: { identifier: "${n}" }`),
    '  nested:',
    '    each: PID-3',
    '    fields: { id: { path: PID-3.1 } }',
    'destinations:',
    ...names.map((n) => `  "${n}": { file: { dir: out } }`),
  ].join('\n');
  const dir = mkdtempSync(join(tmpdir(), 'hl7c-names-'));
  writeFileSync(join(dir, 'names.yaml'), yaml);
  const result = await buildSpecs([join(dir, 'names.yaml')], { cwd: dir, env: {} });
  expect(result.diagnostics.filter((d) => d.severity === "error").map((d) => `${d.line} ${d.message}`)).toEqual([]);
  const channel = loadChannel(result.files[0]!.code, result.files[0]!.fileName);
  const run = runChannel(channel, Buffer.from('MSH|^~\\&|A|B|C|D|20261125||ADT^A08|N-1|P|2.5.1\rPID|1||E1^^^EPI^MR~9^^^SSA^SS\r'));
  expect(run.status).toBe('accepted');
  expect(Object.keys(run.identifiers).sort()).toEqual([...names].sort());
  for (const n of names) expect(run.identifiers[n]?.id).toBe('E1');
  expect(Object.keys(run.outputs).sort()).toEqual([...names].sort());
  const output = run.outputs.new as Record<string, unknown>;
  for (const n of names) expect(output[`ids_${n}`]).toBe('E1');
  // The keep_identifier step on `new` ran: only the MR repetition is left (mapped after the transform).
  expect(output.nested).toEqual([{ id: 'E1' }]);
});
