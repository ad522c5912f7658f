import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { cli, REPO } from './cli/helpers.js';

/** The README's spec example is a real spec: it validates and its tests pass. */
test('every YAML block in the README validates and passes its tests', async () => {
  const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
  const blocks = [...readme.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);
  expect(blocks.length).toBeGreaterThanOrEqual(1);
  const dir = mkdtempSync(join(tmpdir(), 'hl7c-readme-'));
  for (const [i, block] of blocks.entries()) {
    const file = join(dir, `readme-${i}.yaml`);
    writeFileSync(file, block);
    const validated = await cli('validate', file);
    expect(validated.stderr).toMatch(/0 error\(s\), 0 warning\(s\)/);
    const tested = await cli('test', file);
    expect(tested.stdout).toMatch(/^\d+ passed, 0 failed$/m);
    expect(tested.code).toBe(0);
  }
});
