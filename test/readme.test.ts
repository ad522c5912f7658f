import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
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
    if (block.startsWith('# hl7c.config.yaml')) {
      // The serve config (alerts) is checked as `hl7c validate` checks it, beside the README's
      // first spec (the channel its rules name), not as a spec.
      const config = join(dir, `config-${i}`);
      mkdirSync(config);
      writeFileSync(join(config, 'hl7c.config.yaml'), block);
      writeFileSync(join(config, 'spec.yaml'), blocks[0]!);
      const checked = await cli('validate', config);
      expect(checked.stderr).toBe('1 spec(s) and the serve config: 0 error(s), 0 warning(s)\n');
      continue;
    }
    const file = join(dir, `readme-${i}.yaml`);
    writeFileSync(file, block);
    const validated = await cli('validate', file);
    expect(validated.stderr).toMatch(/0 error\(s\), 0 warning\(s\)/);
    const tested = await cli('test', file);
    expect(tested.stdout).toMatch(/^\d+ passed, 0 failed$/m);
    expect(tested.code).toBe(0);
  }
});
