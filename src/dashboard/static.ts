import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../spec/schema.js';

/** The dashboard's files, shipped in the package as they are (no build step, nothing from a CDN). */
const FILES: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/dashboard': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/dashboard/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/dashboard/index.html': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/dashboard/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/dashboard/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
};

export const DASHBOARD_DIR = join(packageRoot(), 'dashboard');

/**
 * The page may load only its own files and talk only to its own server: nothing it shows (a
 * message's content included) can pull in a script or send data elsewhere.
 */
const HEADERS = {
  'cache-control': 'no-cache',
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

const cache = new Map<string, Buffer>();

/**
 * One of the dashboard's files by request path (`/`, `/dashboard/app.js` …), or undefined. No
 * auth is needed for them: the page holds no data; it asks the API, which checks the token.
 */
export function dashboardFile(path: string): { body: Buffer; contentType: string; headers: Record<string, string> } | undefined {
  const entry = FILES[path.split('?')[0]!];
  if (!entry) return undefined;
  let body = cache.get(entry.file);
  if (!body) {
    body = readFileSync(join(DASHBOARD_DIR, entry.file));
    cache.set(entry.file, body);
  }
  return { body, contentType: entry.type, headers: HEADERS };
}
