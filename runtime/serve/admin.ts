import http from 'node:http';
import type { Logger } from '../log.js';
import type { Store } from '../store/store.js';
import type { AdminRole, AdminToken, Caller } from './admin-auth.js';
import { allows, checkAdminAuth, LOCAL_CALLER, tokenVerifier } from './admin-auth.js';
import { adminMetrics } from './admin-metrics.js';
import type { MessageQuery } from './operations.js';
import { OperationError, Operations, parseTime } from './operations.js';
import { isLoopbackHost } from './source-guard.js';
import { maskReason } from './mask-reason.js';

/** Who may call a route: anyone (`public`), or a caller with at least this role. */
export type RouteRole = 'public' | AdminRole;

export interface RouteRequest {
  method: string;
  path: string;
  /** `:name` parts of the route's path; `*` holds the rest of a path ending in `/*`. */
  params: Record<string, string>;
  query: URLSearchParams;
  /** The JSON body of a POST (undefined when none). */
  body: unknown;
  /** Who called (null on a public route called without a token). */
  caller: Caller | null;
  /** The remote address, as the audit trail records it. */
  remote: string;
}

/** A JSON answer (`json`), or a body with its content type; void when the handler wrote `res` itself. */
export type RouteAnswer = { status?: number; json?: unknown; body?: string | Buffer; contentType?: string; headers?: Record<string, string> };
export type RouteHandler = (request: RouteRequest, res: http.ServerResponse) => Promise<RouteAnswer | void> | RouteAnswer | void;

export interface ExtraRoute {
  method: string;
  /** `/api/alerts`, `/api/things/:id`, or a prefix `/dashboard/*`. */
  path: string;
  handler: RouteHandler;
  role?: RouteRole;
}

export interface AdminServerOptions {
  /** The query/action module over the store (with the host when inside `hl7c serve`). */
  operations: Operations;
  port: number;
  /** Default 127.0.0.1. Anything else needs tokens. */
  host?: string;
  /** Bearer tokens; none on loopback: every caller is `local`, an operator. */
  tokens?: AdminToken[];
  log?: Logger;
  /** Per channel, what its source refused or dropped (for /metrics). */
  sourceEvents?: () => Record<string, Record<string, number>>;
  /** Routes added by other parts (the dashboard, the alert engine); also `registerRoute` later. */
  extraRoutes?: ExtraRoute[];
}

export interface AdminServer {
  port: number;
  host: string;
  /** Adds a route; a route registered later with the same method and path replaces the earlier. */
  registerRoute(method: string, path: string, handler: RouteHandler, options?: { role?: RouteRole }): void;
  close(): Promise<void>;
}

interface Route {
  method: string;
  parts: string[];
  prefix: boolean;
  role: RouteRole;
  handler: RouteHandler;
}

const MAX_BODY = 64 * 1024;
const MAX_PAGE = 1000;

/**
 * The admin endpoint: /health, /metrics and the admin API (ADMIN-API.md), on 127.0.0.1 unless
 * told otherwise. Off loopback it refuses to start without tokens. Every PHI view and every
 * action is written to the audit trail before it is answered.
 */
export async function startAdminServer(
  storeOrOptions: Store | AdminServerOptions,
  port = 0,
  host = '127.0.0.1',
  _channels?: unknown,
  log?: Logger,
  sourceEvents?: () => Record<string, Record<string, number>>,
): Promise<AdminServer> {
  const options: AdminServerOptions = 'operations' in storeOrOptions ? storeOrOptions : { operations: new Operations({ store: storeOrOptions }), port, host, log, sourceEvents };
  return startAdmin(options);
}

async function startAdmin(options: AdminServerOptions): Promise<AdminServer> {
  const host = options.host ?? '127.0.0.1';
  const tokens = options.tokens ?? [];
  checkAdminAuth(host, tokens);
  const ops = options.operations;
  const log = options.log;
  const verify = tokenVerifier(tokens);
  const loopback = isLoopbackHost(host);
  const metrics = adminMetrics(ops, options.sourceEvents ?? (() => options.operations.host?.sourceCounters() ?? {}));
  /** Token uses already recorded, per token and address: one audit row each per process. */
  const tokenUses = new Set<string>();
  const routes: Route[] = [];

  const registerRoute = (method: string, path: string, handler: RouteHandler, o: { role?: RouteRole } = {}) => {
    const prefix = path.endsWith('/*');
    const parts = (prefix ? path.slice(0, -2) : path).split('/').filter(Boolean);
    const route: Route = { method: method.toUpperCase(), parts, prefix, role: o.role ?? 'operator', handler };
    const same = routes.findIndex((r) => r.method === route.method && r.prefix === prefix && r.parts.join('/') === parts.join('/'));
    if (same >= 0) routes[same] = route;
    else routes.push(route);
  };

  const audit = (request: RouteRequest, action: string, target: string, detail?: string | null) =>
    ops.audit({ who: request.caller?.name ?? 'unknown', role: request.caller?.role ?? '-', action, target, remote: request.remote, detail: detail ?? null });

  /** Runs an action and records it, with its outcome, in the audit trail. */
  const audited = async <T>(request: RouteRequest, action: string, target: string, act: () => Promise<T>, describe: (r: T) => string): Promise<T> => {
    try {
      const result = await act();
      await audit(request, action, target, describe(result));
      return result;
    } catch (err) {
      await audit(request, action, target, `failed: ${(err as Error).message}`).catch(() => undefined);
      throw err;
    }
  };

  /**
   * Reasons and errors as this caller may read them: whole for an operator, with values masked
   * for anyone else (they can quote patient data: a receiver's ACK text, a body excerpt).
   */
  const reasonFor = (r: RouteRequest): ((text: string | null) => string | null) => (r.caller?.role === 'operator' ? (text) => text : maskReason);

  // Read
  registerRoute('GET', '/health', async (r) => {
    const report = await ops.health();
    // Load balancers and uptime checks read /health, and may keep what they read; without tokens
    // every loopback caller counts as the operator, so only a presented operator token unmasks it.
    const reason = r.caller === LOCAL_CALLER ? maskReason : reasonFor(r);
    const store = typeof report.store.error === 'string' ? { ...report.store, error: reason(report.store.error) } : report.store;
    return { status: report.status === 'unavailable' ? 503 : 200, json: { ...report, reasons: report.reasons.map((x) => reason(x)!), store } };
  }, { role: 'public' });
  registerRoute('GET', '/metrics', async () => {
    await metrics.fill(await ops.store.metrics());
    return { body: await metrics.registry.metrics(), contentType: metrics.registry.contentType };
  }, { role: loopback ? 'public' : 'viewer' });
  registerRoute('GET', '/api/whoami', (r) => ({ json: { name: r.caller!.name, role: r.caller!.role } }), { role: 'viewer' });
  registerRoute('GET', '/api/channels', async () => ({ json: { channels: await ops.channels() } }), { role: 'viewer' });
  registerRoute('GET', '/api/destinations', async (r) => {
    const reason = reasonFor(r);
    return { json: { destinations: (await ops.destinations()).map((d) => ({ ...d, last_error: reason(d.last_error) })) } };
  }, { role: 'viewer' });
  // What `hl7c status` prints, from the same module: nodes, versions, queues, paused destinations.
  registerRoute('GET', '/api/status', async () => ({ json: await ops.status() }), { role: 'viewer' });
  registerRoute('GET', '/api/messages', async (r) => {
    const query = messageQuery(r.query);
    // A search by identifier says which patient was looked for: operators only, and audited.
    if (query.identifier) {
      if (r.caller!.role !== 'operator') return forbidden('searching by identifier needs the operator role');
      await audit(r, 'message.search', 'messages', `identifier=${query.identifier}`);
    }
    const reason = reasonFor(r);
    const page = await ops.messages(query);
    return { json: { ...page, messages: page.messages.map((m) => ({ ...m, reason: reason(m.reason) })) } };
  }, { role: 'viewer' });
  registerRoute('GET', '/api/messages/:id', async (r) => {
    const id = messageId(r.params.id!);
    await audit(r, 'message.view', `message ${id}`);
    const detail = await ops.message(id);
    if (!detail) return { status: 404, json: { error: `no message ${id}` } };
    return { json: detail };
  }, { role: 'operator' });
  registerRoute('GET', '/api/audit', async (r) => {
    const before = r.query.get('before');
    const limit = r.query.get('limit');
    const entries = await ops.auditTrail({ limit: limit ? Math.min(MAX_PAGE, positive(limit, 'limit')) : undefined, before: before ? positive(before, 'before') : undefined });
    return {
      json: {
        entries: entries.map((e) => ({ id: e.id, at: new Date(e.at).toISOString(), who: e.who, role: e.role, action: e.action, target: e.target, from: e.remote, detail: e.detail })),
        next: entries.length ? String(entries[entries.length - 1]!.id) : null,
      },
    };
  }, { role: 'operator' });

  // Act
  registerRoute('POST', '/api/messages/:id/replay', async (r) => {
    const id = messageId(r.params.id!);
    const destination = stringField(r.body, 'destination');
    const report = await audited(r, 'message.replay', `message ${id}`, () => ops.replay(id, { destination }), (x) => `${destination ? `to ${destination}: ` : ''}${x.status}; queued ${x.replayed.map((d) => d.destination).join(', ') || 'nothing'}`);
    return { json: report };
  });
  registerRoute('POST', '/api/replay', async (r) => {
    const filter = (r.body && typeof r.body === 'object' && 'filter' in r.body ? (r.body as { filter: unknown }).filter : undefined) ?? {};
    if (typeof filter !== 'object' || filter === null) return { status: 400, json: { error: 'filter must be an object of the GET /api/messages keys' } };
    const query = messageQuery(new URLSearchParams(Object.entries(filter as Record<string, unknown>).map(([k, v]) => [k, String(v)] as [string, string])));
    if (Object.values(query).every((v) => v === undefined || v === false)) return { status: 400, json: { error: 'give a filter (channel, status, …): replaying every message is not what you want' } };
    const destination = stringField(r.body, 'destination');
    const reports = await audited(r, 'messages.replay', JSON.stringify(filter), () => ops.replayMatching(query, { destination }), (x) => `${x.length} message(s)${destination ? ` to ${destination}` : ''}`);
    return { json: { replayed: reports.length, messages: reports.map((x) => ({ id: x.id, status: x.status, replayed: x.replayed })) } };
  });
  registerRoute('POST', '/api/messages/:id/discard', async (r) => {
    const id = messageId(r.params.id!);
    const destination = stringField(r.body, 'destination');
    if (!destination) return { status: 400, json: { error: 'name the destination whose dead or stopped entry to discard: {"destination": "…"}' } };
    await audited(r, 'delivery.discard', `message ${id} → ${destination}`, () => ops.discard(id, destination, r.caller!.name), () => 'discarded');
    return { json: { discarded: true } };
  });
  registerRoute('POST', '/api/discard', async (r) => {
    const filter = (r.body && typeof r.body === 'object' && 'filter' in r.body ? (r.body as { filter: unknown }).filter : undefined) ?? {};
    if (typeof filter !== 'object' || filter === null) return { status: 400, json: { error: 'filter must be an object of the GET /api/messages keys' } };
    const query = messageQuery(new URLSearchParams(Object.entries(filter as Record<string, unknown>).map(([k, v]) => [k, String(v)] as [string, string])));
    const destination = stringField(r.body, 'destination');
    if (!query.channel && !query.status && !destination) return { status: 400, json: { error: 'give a filter (channel, status dead|stopped) or a destination: discarding every entry is not what you want' } };
    const entries = await audited(r, 'deliveries.discard', JSON.stringify({ ...(filter as object), ...(destination ? { destination } : {}) }), () => ops.discardMatching(query, destination, r.caller!.name), (x) => `${x.length} entr${x.length === 1 ? 'y' : 'ies'} discarded`);
    return { json: { discarded: entries.length, entries } };
  });
  for (const action of ['pause', 'resume'] as const) {
    registerRoute('POST', `/api/destinations/:channel/:destination/${action}`, async (r) => {
      const { channel, destination } = r.params as { channel: string; destination: string };
      const result = await audited(r, `destination.${action}`, `${channel}/${destination}`, () => ops.setPaused(channel, destination, action === 'pause', r.caller!.name), (x) =>
        x.changed ? (action === 'pause' ? 'paused' : 'resumed') : `already ${action === 'pause' ? `paused (by ${x.destination.paused_by} at ${x.destination.paused_at})` : 'running'}`,
      );
      return { json: { paused: action === 'pause', changed: result.changed, paused_by: result.destination.paused_by, paused_at: result.destination.paused_at } };
    });
  }
  for (const r of options.extraRoutes ?? []) registerRoute(r.method, r.path, r.handler, { role: r.role });

  const match = (method: string, path: string): { route: Route; params: Record<string, string> } | 'wrong-method' | undefined => {
    let parts: string[];
    try {
      parts = path.split('/').filter(Boolean).map((p) => decodeURIComponent(p));
    } catch {
      // A malformed escape (%E0%A4%A) names no route.
      return undefined;
    }
    let wrongMethod = false;
    // Exact routes before prefixes, later registrations of a prefix before earlier ones.
    for (const route of [...routes.filter((r) => !r.prefix), ...routes.filter((r) => r.prefix).reverse()]) {
      if (route.prefix ? parts.length < route.parts.length : parts.length !== route.parts.length) continue;
      const params: Record<string, string> = {};
      if (!route.parts.every((p, i) => (p.startsWith(':') ? ((params[p.slice(1)] = parts[i]!), true) : p === parts[i]))) continue;
      if (route.method !== method && !(route.method === 'GET' && method === 'HEAD')) {
        wrongMethod = true;
        continue;
      }
      if (route.prefix) params['*'] = parts.slice(route.parts.length).join('/');
      return { route, params };
    }
    return wrongMethod ? 'wrong-method' : undefined;
  };

  const answer = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://admin');
    const method = (req.method ?? 'GET').toUpperCase();
    const remote = req.socket.remoteAddress ?? 'unknown';
    const found = match(method, url.pathname);
    if (found === undefined) return send(res, { status: 404, json: { error: `no such route: ${url.pathname}` } });
    if (found === 'wrong-method') return send(res, { status: 405, json: { error: `${method} is not allowed on ${url.pathname}` } });
    const { route, params } = found;
    const request: RouteRequest = { method, path: url.pathname, params, query: url.searchParams, body: undefined, caller: null, remote };
    if (tokens.length === 0) request.caller = LOCAL_CALLER;
    else if (req.headers.authorization || route.role !== 'public') {
      const caller = verify(req.headers.authorization);
      if (!caller) {
        if (route.role === 'public') return send(res, await run(route, request, req, res));
        await audit(request, 'auth.refused', url.pathname, req.headers.authorization ? 'wrong token' : 'no token').catch((err: Error) => log?.error({ err: err.message }, 'could not write the audit trail'));
        ops.host?.activity.emit({ kind: 'auth-refused', at: Date.now(), summary: `admin API request refused (${req.headers.authorization ? 'wrong token' : 'no token'}) from ${remote}` });
        return send(res, { status: 401, json: { error: 'a valid bearer token is needed (Authorization: Bearer <token>)' }, headers: { 'www-authenticate': 'Bearer' } });
      }
      request.caller = caller;
      const use = `${caller.name}\u0000${remote}`;
      if (!tokenUses.has(use)) {
        tokenUses.add(use);
        await audit(request, 'auth.token', url.pathname, 'first use of this token from this address since start');
      }
    }
    if (route.role !== 'public' && !allows(request.caller!.role, route.role)) {
      return send(res, forbidden(`${method} ${url.pathname} needs the ${route.role} role; this token is a ${request.caller!.role}`));
    }
    return send(res, await run(route, request, req, res));
  };

  const run = async (route: Route, request: RouteRequest, req: http.IncomingMessage, res: http.ServerResponse): Promise<RouteAnswer | void> => {
    if (request.method === 'POST') {
      const body = await readBody(req);
      if (body === undefined) return { status: 413, json: { error: `body larger than ${MAX_BODY} bytes` } };
      if (body.length) {
        try {
          request.body = JSON.parse(body) as unknown;
        } catch {
          return { status: 400, json: { error: 'the body is not JSON' } };
        }
      }
    }
    try {
      return await route.handler(request, res);
    } catch (err) {
      if (err instanceof OperationError) return { status: err.status, json: { error: err.message } };
      throw err;
    }
  };

  const server = http.createServer((req, res) => {
    answer(req, res).catch((err: Error) => {
      // The store could not answer (locked, gone, disk full): say so, and keep serving.
      log?.error({ err: err.message, url: req.url?.split('?')[0] }, 'admin request failed: the store could not be read');
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ status: 'error', reason: `the store could not be read: ${err.message}` }));
    });
  });
  await new Promise<void>((resolve, reject) => {
    const refused = (err: NodeJS.ErrnoException) =>
      reject(
        err.code === 'EADDRINUSE'
          ? new Error(`the admin port ${options.port} on ${host} is in use: choose another --admin-port, or stop what listens there`)
          : new Error(`the admin port ${options.port} on ${host} cannot be opened: ${err.message}`),
      );
    server.once('error', refused);
    server.listen(options.port, host, () => {
      server.off('error', refused);
      resolve();
    });
  });
  // After listening, an error (a socket the OS tears down, …) is reported, never a crash.
  server.on('error', (err) => log?.error({ err: err.message }, 'admin server error'));
  return {
    port: (server.address() as { port: number }).port,
    host,
    registerRoute,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}

function send(res: http.ServerResponse, answer: RouteAnswer | void): void {
  if (!answer || res.headersSent || res.writableEnded) return;
  const headers: Record<string, string> = { 'cache-control': 'no-store', ...(answer.headers ?? {}) };
  if (answer.json !== undefined) {
    res.writeHead(answer.status ?? 200, { ...headers, 'content-type': 'application/json' });
    res.end(JSON.stringify(answer.json));
    return;
  }
  res.writeHead(answer.status ?? 200, { ...headers, 'content-type': answer.contentType ?? 'text/plain; charset=utf-8' });
  res.end(answer.body ?? '');
}

function forbidden(error: string): RouteAnswer {
  return { status: 403, json: { error } };
}

function readBody(req: http.IncomingMessage): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        resolve(undefined);
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function positive(text: string, what: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new OperationError(400, `${what}=${text}: expected a whole number above 0`);
  return n;
}

function messageId(text: string): number {
  return positive(text, 'message id');
}

function stringField(body: unknown, key: string): string | undefined {
  if (!body || typeof body !== 'object') return undefined;
  const v = (body as Record<string, unknown>)[key];
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string') throw new OperationError(400, `${key} must be a string`);
  return v;
}

/** The GET /api/messages keys (also the `filter` of POST /api/replay). */
function messageQuery(q: URLSearchParams): MessageQuery {
  const get = (k: string) => q.get(k) || undefined;
  const time = (k: string) => {
    const v = get(k);
    if (v === undefined) return undefined;
    try {
      return parseTime(v);
    } catch (err) {
      throw new OperationError(400, `${k}: ${(err as Error).message}`);
    }
  };
  const limit = get('limit');
  return {
    channel: get('channel'),
    type: get('type'),
    status: get('status'),
    since: time('since'),
    until: time('until'),
    controlId: get('control_id'),
    identifier: get('identifier'),
    limit: limit ? Math.min(MAX_PAGE, positive(limit, 'limit')) : undefined,
    before: get('before'),
    oldestFirst: ['1', 'true'].includes(q.get('oldest_first') ?? '') || undefined,
  };
}
