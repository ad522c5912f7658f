import http from 'node:http';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { MllpClient } from '../../runtime/index.js';
import { startServing } from '../../src/serve/serve.js';
import { memoryLogger, waitFor } from '../serve/helpers.js';

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A patient API: answers GET /patients?mrn=… with JSON, records every request as it came. */
async function patientApi() {
  const requests: Array<{ method: string; url: string; headers: http.IncomingHttpHeaders; body: string }> = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests.push({ method: req.method!, url: req.url!, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      const mrn = new URL(req.url!, 'http://x').searchParams.get('mrn');
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(req.method === 'GET' ? JSON.stringify({ mrn, status: 'active', flags: ['fall-risk'] }) : '');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  cleanups.push(() => new Promise<void>((r) => { server.close(() => r()); server.closeAllConnections(); }));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}/patients`, requests };
}

describe('HTTP sender: GET/DELETE, query and headers from the message, the response to another channel', () => {
  test('a GET carries the MRN in the query and a header; its JSON answer is handed to a channel that files it', async () => {
    const api = await patientApi();
    const dir = mkdtempSync(join(tmpdir(), 'hv2-get-'));
    writeFileSync(join(dir, 'lookup.yaml'), `channel: lookup
source: { mllp: { host: 127.0.0.1, port: 0 } }
destinations:
  patient-api:
    http:
      url: "${api.url}"
      method: GET
      query: { mrn: "{{PID-3.1}}", source: "{{channel}}" }
      headers: { X-Control-Id: "{{MSH-10}}", X-Api-Key: "\${API_KEY}" }
      response: { channel: lookup-results }
  forget:
    http:
      url: "${api.url}/{{PID-3.1}}"
      method: DELETE
      headers: { X-Control-Id: "{{MSH-10}}" }
`);
    writeFileSync(join(dir, 'results.yaml'), `channel: lookup-results
source:
  channel: { input: json }
map:
  mrn: { json: mrn }
  first_flag: { json: "flags[0]" }
destinations:
  out: { file: { dir: ${dir}/out, file_name: "{{$.mrn}}.json" } }
`);
    const { logger } = memoryLogger();
    const serving = await startServing({ specs: [join(dir, 'lookup.yaml'), join(dir, 'results.yaml')], storePath: join(dir, 'store.db'), cwd: dir, env: { API_KEY: 'k-123' }, logger, watch: false });
    cleanups.push(() => serving.close());
    const client = new MllpClient({ host: '127.0.0.1', port: serving.ports().lookup! });
    cleanups.push(() => client.close());
    expect((await client.send('MSH|^~\\&|A|B|C|D|20261125||ADT^A08|G-1|P|2.5.1\rPID|1||E 42&X^^^LRH^MR\r')).code).toBe('AA');
    await waitFor(() => existsSync(join(dir, 'out', 'E 42&X.json')) && api.requests.length === 2, 10_000, 'the answer filed and both requests made');
    const get = api.requests.find((r) => r.method === 'GET')!;
    expect(get.url).toBe('/patients?mrn=E+42%26X&source=lookup');
    expect(get.headers['x-control-id']).toBe('G-1');
    expect(get.headers['x-api-key']).toBe('k-123');
    expect(get.body).toBe('');
    expect(JSON.parse(readFileSync(join(dir, 'out', 'E 42&X.json'), 'utf8'))).toEqual({ mrn: 'E 42&X', first_flag: 'fall-risk' });
    const del = api.requests.find((r) => r.method === 'DELETE')!;
    expect(del.headers['x-control-id']).toBe('G-1');
    // In the path, the value is percent-encoded: it cannot add a segment or a query.
    expect(del.url).toBe('/patients/E%2042%26X');
    expect(del.body).toBe('');
    const handed = (await serving.store.listMessages()).find((m) => m.channel === 'lookup-results')!;
    expect(handed.source).toBe('channel:lookup');
  });
});

test('delivered_status: [409]: a portal that answers 409 Conflict (it already has the accession) counts as delivered; a 400 still fails', async () => {
  const statuses = new Map([['LA-1', 409], ['LA-2', 400], ['LA-3', 201]]);
  const seen: string[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const accession = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { accession: string }).accession;
      seen.push(accession);
      res.writeHead(statuses.get(accession) ?? 500);
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  cleanups.push(() => new Promise<void>((r) => { server.close(() => r()); server.closeAllConnections(); }));
  const dir = mkdtempSync(join(tmpdir(), 'hv2-409-'));
  writeFileSync(join(dir, 'portal.yaml'), `channel: portal
source: { mllp: { host: 127.0.0.1, port: 0 } }
map:
  accession: { path: OBR-3.1 }
destinations:
  portal:
    http: { url: "http://127.0.0.1:${(server.address() as { port: number }).port}/results", delivered_status: [ 409 ] }
    retry: { attempts: 3, backoff_ms: 20 }
`);
  const { logger } = memoryLogger();
  const serving = await startServing({ specs: [join(dir, 'portal.yaml')], storePath: join(dir, 'store.db'), cwd: dir, env: {}, logger, watch: false });
  cleanups.push(() => serving.close());
  const client = new MllpClient({ host: '127.0.0.1', port: serving.ports().portal! });
  cleanups.push(() => client.close());
  for (const accession of ['LA-1', 'LA-2', 'LA-3']) {
    expect((await client.send(`MSH|^~\\&|LIS|LRH|PORTAL|LRH|20261125||ORU^R01|${accession}|P|2.5.1\rOBR|1||${accession}\r`)).code).toBe('AA');
  }
  const state = async (id: number) => (await serving.store.getMessage(id))!.deliveries[0]!;
  await waitFor(async () => (await state(1)).state === 'sent' && (await state(2)).state === 'dead' && (await state(3)).state === 'sent', 10_000, 'each entry settled');
  expect((await state(1)).attempts).toBe(1);
  expect((await serving.store.getMessage(1))!.events.map((e) => e.detail)).toContain('HTTP 409, counted as delivered (delivered_status)');
  expect((await state(2)).last_error).toBe('HTTP 400');
  expect(seen.filter((a) => a === 'LA-1')).toEqual(['LA-1']);
});
