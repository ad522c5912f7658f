import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
/** The repo root, whether this runs from bench/ or compiled from dist/bench/. */
export const REPO_ROOT = here.includes(join('dist', 'bench')) ? resolve(here, '../..') : resolve(here, '..');

/** The shared public corpus beside the repository (read-only; present on the team's machines and in CI). */
export const SHARED_CORPUS_DIR = resolve(REPO_ROOT, '../shared/corpus');
/** The copy kept in the repository, so a clone anywhere can run the tests and the benchmark. */
export const VENDORED_CORPUS_DIR = join(REPO_ROOT, 'test/fixtures/corpus');

/** The HL7 v2 sample corpus: the shared one when it is there, else the repository's copy. */
export const CORPUS_DIR = existsSync(SHARED_CORPUS_DIR) ? SHARED_CORPUS_DIR : VENDORED_CORPUS_DIR;
