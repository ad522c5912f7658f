import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CORPUS_DIR } from '../bench/corpus.js';

export { CORPUS_DIR };

export interface CorpusFile {
  category: string;
  name: string;
  path: string;
  bytes: Buffer;
}

export function corpusFiles(filter: (category: string) => boolean = () => true): CorpusFile[] {
  const files: CorpusFile[] = [];
  for (const category of readdirSync(CORPUS_DIR, { withFileTypes: true })) {
    if (!category.isDirectory() || !filter(category.name)) continue;
    for (const name of readdirSync(join(CORPUS_DIR, category.name)).sort()) {
      const path = join(CORPUS_DIR, category.name, name);
      files.push({ category: category.name, name, path, bytes: readFileSync(path) });
    }
  }
  return files;
}

export function corpusFile(relative: string): Buffer {
  return readFileSync(join(CORPUS_DIR, relative));
}
