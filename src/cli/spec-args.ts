import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { specFiles } from '../spec/files.js';

/**
 * The spec files named on the command line, directories expanded as `hl7c serve` does; a
 * directory without any spec is refused rather than read as "nothing to check".
 */
export function specArguments(paths: string[], cwd: string): string[] {
  for (const p of paths) {
    if (statSync(resolve(cwd, p), { throwIfNoEntry: false })?.isDirectory() && specFiles([p], cwd).length === 0) {
      throw new Error(`${p} is a directory with no specs in it (*.yaml, *.yml)`);
    }
  }
  return specFiles(paths, cwd);
}
