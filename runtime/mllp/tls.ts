import { readFileSync } from 'node:fs';

/** TLS for an MLLP listener. PEM text or buffers. */
export interface ServerTlsOptions {
  key: string | Buffer;
  cert: string | Buffer;
  /** CA(s) that client certificates must chain to, when requireClientCertificate is set. */
  ca?: string | Buffer | Array<string | Buffer>;
  /** Ask for a client certificate and refuse connections without a valid one (mutual TLS). */
  requireClientCertificate?: boolean;
}

/** TLS for an MLLP sender. */
export interface ClientTlsOptions {
  /** CA(s) to verify the server with; the system store when absent. */
  ca?: string | Buffer | Array<string | Buffer>;
  /** Client certificate and key, for servers that require mutual TLS. */
  cert?: string | Buffer;
  key?: string | Buffer;
  /** Name to verify the server certificate against (defaults to the host). */
  servername?: string;
  /** Only for testing against self-signed servers: skip verification. */
  insecure?: boolean;
}

/** Reads PEM files named by paths (as given on a command line or in a spec). */
export function readPem(path: string | undefined): Buffer | undefined {
  return path === undefined ? undefined : readFileSync(path);
}
