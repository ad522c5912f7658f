import type { ExtraRoute, RouteAnswer, RouteRequest } from '../../runtime/serve/index.js';
import type { Alerts } from '../alerts/start.js';
import { dashboardFile } from './static.js';

function file(request: RouteRequest): RouteAnswer {
  const found = dashboardFile(request.path);
  if (!found) return { status: 404, json: { error: `no such file: ${request.path}` } };
  return { body: found.body, contentType: found.contentType, headers: found.headers };
}

/**
 * What hdash adds to the admin server: the dashboard's page and files (public: the page holds
 * no data and asks for a token when the API answers 401) and GET /api/alerts (viewer: alerts
 * carry no patient data).
 */
export function dashboardRoutes(alerts: Alerts | undefined): ExtraRoute[] {
  return [
    { method: 'GET', path: '/', handler: file, role: 'public' },
    { method: 'GET', path: '/dashboard/*', handler: file, role: 'public' },
    { method: 'GET', path: '/api/alerts', handler: () => ({ json: alerts?.view() ?? { rules: [], recent: [] } }), role: 'viewer' },
  ];
}
