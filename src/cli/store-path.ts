import { statSync } from 'node:fs';
import { resolve } from 'node:path';

/**
 * Commands that read or edit a store refuse one that does not exist: opening it would create an
 * empty database and answer "0 messages" for a mistyped path. Connection strings (a store that
 * is not a file) are left for the store to open.
 */
export function existingStore(path: string, cwd: string): string {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(path)) return path;
  const stat = statSync(resolve(cwd, path), { throwIfNoEntry: false });
  if (!stat) throw new Error(`no store at ${path}: check --store (hl7c serve creates the store; default .hl7c/store.db)`);
  if (!stat.isFile()) throw new Error(`${path} is not a store file: --store takes the SQLite file hl7c serve writes`);
  return path;
}
