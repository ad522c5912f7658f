import { createHash, timingSafeEqual } from 'node:crypto';
import { isLoopbackHost, weakTokenReason } from './source-guard.js';

/**
 * Who may use the admin API. `viewer`: channels, destinations, counts and the PHI-free message
 * list; `operator`: everything, patient data and actions included.
 */
export type AdminRole = 'viewer' | 'operator';

export interface AdminToken {
  /** Recorded in the audit trail as who did it. */
  name: string;
  token: string;
  role: AdminRole;
}

export interface Caller {
  name: string;
  role: AdminRole;
}

/** The caller with no tokens configured, on loopback only: whoever can reach 127.0.0.1. */
export const LOCAL_CALLER: Caller = { name: 'local', role: 'operator' };

/**
 * Refuses an admin API that the network could reach without a token: bound anywhere but
 * loopback, it needs at least one token, and none may be short or a placeholder.
 */
export function checkAdminAuth(host: string, tokens: readonly AdminToken[]): void {
  const names = new Set<string>();
  for (const t of tokens) {
    if (t.role !== 'viewer' && t.role !== 'operator') throw new Error(`admin token "${t.name}": role must be viewer or operator (got ${String(t.role)})`);
    if (names.has(t.name)) throw new Error(`admin token "${t.name}" is listed twice: give each token its own name (the audit trail records it)`);
    names.add(t.name);
    const weak = weakTokenReason(t.token, `admin token "${t.name}"`);
    if (weak) throw new Error(`${weak}: make one with \`openssl rand -hex 32\``);
  }
  if (tokens.length === 0 && !isLoopbackHost(host)) {
    throw new Error(
      `the admin API on ${host} would be reachable from the network without a token: set HL7C_ADMIN_TOKEN (operator) or --admin-tokens FILE ` +
        `([{name, token, role: viewer|operator}]), or bind --admin-host 127.0.0.1`,
    );
  }
}

const digest = (text: string) => createHash('sha256').update(text, 'utf8').digest();

/**
 * Finds the token a request carries. Every configured token is compared, each in constant time
 * on equal-length digests, so neither the time taken nor an early exit tells how much of a
 * guess was right or which token it was close to.
 */
export function tokenVerifier(tokens: readonly AdminToken[]): (authorization: string | undefined) => Caller | undefined {
  const known = tokens.map((t) => ({ caller: { name: t.name, role: t.role } as Caller, digest: digest(t.token) }));
  return (authorization) => {
    const given = digest(authorization?.startsWith('Bearer ') ? authorization.slice(7).trim() : '');
    let found: Caller | undefined;
    for (const k of known) if (timingSafeEqual(given, k.digest) && !found) found = k.caller;
    return found;
  };
}

/** What a role may do, by the role a route needs. */
export function allows(role: AdminRole, needed: AdminRole): boolean {
  return needed === 'viewer' || role === 'operator';
}
