import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LoadedSpec } from '../spec/load.js';
import { HL7C_VERSION } from '../version.js';

/**
 * The compiled-channel cache: `hl7c build` writes, beside each generated module, the JavaScript
 * it transpiles to (`<channel>.channel.json`), keyed by everything the generated code depends
 * on: the spec's text and its values after `${ENV}` interpolation, the lookup tables it inlines,
 * the hl7c version and the generator itself. `hl7c serve` and `hl7c test` run a fresh entry
 * without loading the TypeScript compiler; anything else is compiled again.
 */
export interface CachedChannel {
  /** The generated module's file name, e.g. adt-to-webhook.ts. */
  fileName: string;
  /** The spec version stored with each message (the spec text's hash). */
  specVersion: string;
  js: string;
}

interface CacheEntry extends CachedChannel {
  format: 1;
  hl7c: string;
  key: string;
}

type Spec = LoadedSpec & { dir: string };

export function cacheKey(spec: Spec): string {
  const hash = createHash('sha256');
  for (const part of [HL7C_VERSION, generatorStamp(), spec.file, spec.text, JSON.stringify(spec.data)]) hash.update(part).update('\0');
  for (const file of lookupFiles(spec.data)) {
    hash.update(file).update('\0');
    try {
      hash.update(readFileSync(resolve(spec.dir, file)));
    } catch {
      hash.update('(missing)');
    }
    hash.update('\0');
  }
  return hash.digest('hex');
}

function entryPath(buildDir: string, spec: Spec): string | undefined {
  const channel = (spec.data as { channel?: unknown }).channel;
  return typeof channel === 'string' ? join(buildDir, `${channel}.channel.json`) : undefined;
}

/** The cached channel for this spec, when one was built from exactly this input. */
export function readCachedChannel(buildDir: string, spec: Spec): CachedChannel | undefined {
  const path = entryPath(buildDir, spec);
  if (!path) return undefined;
  let entry: Partial<CacheEntry>;
  try {
    entry = JSON.parse(readFileSync(path, 'utf8')) as Partial<CacheEntry>;
  } catch {
    return undefined;
  }
  if (entry.format !== 1 || entry.key !== cacheKey(spec) || typeof entry.js !== 'string' || typeof entry.fileName !== 'string' || typeof entry.specVersion !== 'string') return undefined;
  return { fileName: entry.fileName, specVersion: entry.specVersion, js: entry.js };
}

export function writeCachedChannel(buildDir: string, spec: Spec, channel: CachedChannel): void {
  const path = entryPath(buildDir, spec);
  if (!path) return;
  mkdirSync(buildDir, { recursive: true });
  const entry: CacheEntry = { format: 1, hl7c: HL7C_VERSION, key: cacheKey(spec), ...channel };
  // Written whole, then renamed: a serve starting meanwhile reads the old entry or the new one.
  writeFileSync(`${path}.tmp`, JSON.stringify(entry));
  renameSync(`${path}.tmp`, path);
}

/** `lookup: { file: … }` tables anywhere in the spec: their rows are inlined into the code. */
function lookupFiles(data: unknown, found: string[] = []): string[] {
  if (Array.isArray(data)) for (const item of data) lookupFiles(item, found);
  else if (data && typeof data === 'object') {
    for (const [key, value] of Object.entries(data)) {
      if (key === 'lookup' && value && typeof value === 'object' && typeof (value as { file?: unknown }).file === 'string') found.push((value as { file: string }).file);
      else lookupFiles(value, found);
    }
  }
  return found;
}

let stamp: string | undefined;

/** Size and mtime of the generator: a rebuilt hl7c of the same version does not run stale code. */
function generatorStamp(): string {
  if (stamp === undefined) {
    stamp = '';
    for (const name of ['emit.js', 'emit.ts']) {
      const st = statSync(fileURLToPath(new URL(name, import.meta.url)), { throwIfNoEntry: false });
      if (st) {
        stamp = `${name}:${st.size}:${st.mtimeMs}`;
        break;
      }
    }
  }
  return stamp;
}
