import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse } from 'yaml';
import type { AdminToken } from '../../runtime/serve/index.js';

/**
 * The admin API's tokens: `HL7C_ADMIN_TOKEN` (an operator named `HL7C_ADMIN_TOKEN`) and the
 * entries of a tokens file (`--admin-tokens`, YAML or JSON: `[{name, token, role}]`). Their
 * strength is checked when the admin server starts (checkAdminAuth).
 */
export function loadAdminTokens(file: string | undefined, env: NodeJS.ProcessEnv, cwd: string): AdminToken[] {
  const tokens: AdminToken[] = [];
  if (env.HL7C_ADMIN_TOKEN) tokens.push({ name: 'HL7C_ADMIN_TOKEN', token: env.HL7C_ADMIN_TOKEN, role: 'operator' });
  if (!file) return tokens;
  const path = resolve(cwd, file);
  let entries: unknown;
  try {
    entries = parse(readFileSync(path, 'utf8')) as unknown;
  } catch (err) {
    throw new Error(`the admin tokens file ${path} cannot be read: ${(err as Error).message}`);
  }
  if (!Array.isArray(entries)) throw new Error(`the admin tokens file ${path} must hold a list: [{name, token, role: viewer|operator}]`);
  entries.forEach((e: unknown, i) => {
    const t = (e ?? {}) as Record<string, unknown>;
    if (typeof t.name !== 'string' || typeof t.token !== 'string' || (t.role !== 'viewer' && t.role !== 'operator')) {
      throw new Error(`the admin tokens file ${path}, entry ${i + 1}: needs name, token (strings) and role (viewer or operator)`);
    }
    tokens.push({ name: t.name, token: t.token, role: t.role });
  });
  return tokens;
}
