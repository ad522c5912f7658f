import { readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** Expands directories to the specs (*.yaml, *.yml) in them, in name order; files stay as given. */
export function specFiles(paths: string[], cwd: string): string[] {
  return paths.flatMap((p) => {
    const absolute = resolve(cwd, p);
    if (!statSync(absolute, { throwIfNoEntry: false })?.isDirectory()) return [absolute];
    return readdirSync(absolute)
      .filter((f) => /\.ya?ml$/.test(f))
      .sort()
      .map((f) => join(absolute, f));
  });
}
