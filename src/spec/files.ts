import { readdirSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';

/** The serve config (alerts) sits beside the specs under this name; it is not a spec. */
export const CONFIG_FILE_NAMES = ['hl7c.config.yaml', 'hl7c.config.yml'];

export function isConfigFile(path: string): boolean {
  return CONFIG_FILE_NAMES.includes(basename(path));
}

/** Expands directories to the specs (*.yaml, *.yml) in them, in name order; files stay as given. */
export function specFiles(paths: string[], cwd: string): string[] {
  return paths.flatMap((p) => {
    const absolute = resolve(cwd, p);
    if (!statSync(absolute, { throwIfNoEntry: false })?.isDirectory()) return isConfigFile(absolute) ? [] : [absolute];
    return readdirSync(absolute)
      .filter((f) => /\.ya?ml$/.test(f) && !isConfigFile(f))
      .sort()
      .map((f) => join(absolute, f));
  });
}

/**
 * The serve config for these spec arguments: `explicit` (--config) when given, else the first
 * hl7c.config.yaml in a directory given, or beside a spec file given.
 */
export function configFileFor(paths: string[], cwd: string, explicit?: string): string | undefined {
  if (explicit) return resolve(cwd, explicit);
  for (const p of paths) {
    const absolute = resolve(cwd, p);
    if (isConfigFile(absolute) && statSync(absolute, { throwIfNoEntry: false })?.isFile()) return absolute;
    const dir = statSync(absolute, { throwIfNoEntry: false })?.isDirectory() ? absolute : resolve(absolute, '..');
    for (const name of CONFIG_FILE_NAMES) {
      const candidate = join(dir, name);
      if (statSync(candidate, { throwIfNoEntry: false })?.isFile()) return candidate;
    }
  }
  return undefined;
}

/**
 * Where the serve config goes when none exists yet (serve picks it up once it is written): the
 * first directory given, or beside the first spec file given.
 */
export function defaultConfigFile(paths: string[], cwd: string): string | undefined {
  const first = paths[0];
  if (first === undefined) return undefined;
  const absolute = resolve(cwd, first);
  const dir = statSync(absolute, { throwIfNoEntry: false })?.isDirectory() ? absolute : resolve(absolute, '..');
  return join(dir, CONFIG_FILE_NAMES[0]!);
}
