import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { SHARED_CORPUS_DIR, VENDORED_CORPUS_DIR } from '../bench/corpus.js';

/** Every file under a directory, as sorted relative paths. */
function filesUnder(dir: string): string[] {
  return (readdirSync(dir, { recursive: true }) as string[]).filter((p) => statSync(join(dir, p)).isFile()).sort();
}

describe('the corpus copy in test/fixtures/corpus', () => {
  test('names the source and licence of every message it holds', () => {
    const sources = readFileSync(join(VENDORED_CORPUS_DIR, 'SOURCES.md'), 'utf8');
    const messages = filesUnder(VENDORED_CORPUS_DIR).filter((p) => p !== 'SOURCES.md');
    expect(messages.length).toBeGreaterThan(90);
    const unlisted = messages.filter((p) => !sources.includes(`| ${p} |`));
    expect(unlisted).toEqual([]);
  });

  // Where the shared corpus sits beside the repository (the team's machines, CI), the tests read
  // it; the copy must then be the same, byte for byte, or a fresh clone elsewhere would test
  // against other messages.
  test.skipIf(!existsSync(SHARED_CORPUS_DIR))('is byte for byte the shared corpus beside the repository', () => {
    const shared = filesUnder(SHARED_CORPUS_DIR);
    expect(filesUnder(VENDORED_CORPUS_DIR)).toEqual(shared);
    const differing = shared.filter((p) => !readFileSync(join(SHARED_CORPUS_DIR, p)).equals(readFileSync(join(VENDORED_CORPUS_DIR, p))));
    expect(differing).toEqual([]);
  });
});
