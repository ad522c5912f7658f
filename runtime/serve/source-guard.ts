import net from 'node:net';

/** Tokens found in examples, tutorials and default configs: as good as none. */
const WELL_KNOWN_TOKENS = new Set([
  'dev',
  'dev-token',
  'devtoken',
  'test',
  'test-token',
  'token',
  'secret',
  'changeme',
  'change-me',
  'password',
  'admin',
  'default',
  'example',
  'demo',
  'hl7c',
  'bearer',
  'letmein',
]);

/** Shorter tokens can be guessed or were typed by hand; a generated one is longer. */
export const MIN_TOKEN_LENGTH = 16;

/** Whether a listener on this host can only be reached from the machine itself. */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[|\]$/g, '');
  if (h === 'localhost') return true;
  if (net.isIPv4(h)) return h.startsWith('127.');
  if (h.startsWith('::ffff:') && net.isIPv4(h.slice(7))) return h.slice(7).startsWith('127.');
  return h === '::1';
}

/** Why a bearer token is not fit to guard a source reachable from the network; undefined when it is. */
export function weakTokenReason(token: string, what = 'auth_token'): string | undefined {
  if (!token) return `no ${what} is set`;
  if (WELL_KNOWN_TOKENS.has(token.toLowerCase())) return `the ${what} is a well-known placeholder ("${token}")`;
  if (token.length < MIN_TOKEN_LENGTH) return `the ${what} is shorter than ${MIN_TOKEN_LENGTH} characters`;
  return undefined;
}

/**
 * Refuses to start an HTTP source that anyone on the network could post to: unless it listens
 * on loopback only, it needs a bearer token that is neither missing, well known nor short.
 */
export function checkHttpSourceAuth(channel: string, source: { host: string; auth_token: string; basic_auth?: { user: string; password: string } }): void {
  if (isLoopbackHost(source.host)) return;
  // Every credential the source accepts must be strong: a weak one would let anyone in.
  const reasons: string[] = [];
  if (source.auth_token || !source.basic_auth) {
    const r = weakTokenReason(source.auth_token);
    if (r) reasons.push(r);
  }
  if (source.basic_auth) {
    if (!source.basic_auth.user) reasons.push('the basic_auth user is empty');
    const r = weakTokenReason(source.basic_auth.password);
    if (r) reasons.push(r.replace('auth_token', 'basic_auth password'));
  }
  const reason = reasons.join('; ');
  if (!reason) return;
  const variable = `${channel.toUpperCase().replace(/[^A-Z0-9]+/g, '_')}_TOKEN`;
  throw new Error(
    `channel ${channel}: the HTTP source on ${source.host} would accept requests from the network, but ${reason}. ` +
      `Set auth_token (or basic_auth's password) to a long random secret from the environment (e.g. auth_token: \${${variable}}, made with \`openssl rand -hex 32\`), or bind host: 127.0.0.1 behind a proxy that authenticates.`,
  );
}
