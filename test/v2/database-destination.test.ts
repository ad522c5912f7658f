import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { MllpClient } from '../../runtime/index.js';
import { startServing } from '../../src/serve/serve.js';
import { validateSpecs } from '../../src/spec/validate.js';
import { TEST_PG_URL } from '../store/pg-helpers.js';
import { startPgProxy } from '../store/pg-proxy.js';
import { memoryLogger, waitFor } from '../serve/helpers.js';

/** A schema of this file's own on the team's PostgreSQL, dropped afterwards. */
const SCHEMA = `hv2_db_${randomBytes(4).toString('hex')}`;
async function sql(text: string, values: unknown[] = []) {
  const client = new pg.Client({ connectionString: TEST_PG_URL });
  await client.connect();
  try {
    return (await client.query(text, values)).rows;
  } finally {
    await client.end();
  }
}
beforeAll(async () => {
  await sql(`CREATE SCHEMA ${SCHEMA}`);
  await sql(`CREATE TABLE ${SCHEMA}.adt_event (control_id text PRIMARY KEY, mrn text NOT NULL, family text, birth_date date, event text, sex text)`);
  await sql(`CREATE TABLE ${SCHEMA}.audit (control_id text, note text)`);
});
afterAll(async () => {
  await sql(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`);
});

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const adt = (controlId: string, mrn: string, family = 'Doe', dob = '19840512') =>
  `MSH|^~\\&|STAR|LRH|HL7C|PIX|20261125083000||ADT^A01^ADT_A01|${controlId}|P|2.5.1\rPID|1||${mrn}^^^LRH^MR||${family}^Jane||${dob}|F\r`;

async function serve(destination: string, env: Record<string, string> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'hv2-db-'));
  const file = join(dir, 'pix.yaml');
  writeFileSync(file, `channel: pix
source: { mllp: { host: 127.0.0.1, port: 0 } }
map:
  event: { path: MSH-9.2 }
  sex: { path: PID-8, lookup: { F: female, M: male }, on_missing: keep }
destinations:
${destination.replaceAll('$SCHEMA', SCHEMA)}`);
  const { logger } = memoryLogger();
  const serving = await startServing({ specs: [file], storePath: join(dir, 'store.db'), cwd: dir, env: { HV2_DB_URL: TEST_PG_URL, ...env }, logger, watch: false });
  cleanups.push(() => serving.close());
  const client = new MllpClient({ host: '127.0.0.1', port: serving.ports().pix! });
  cleanups.push(() => client.close());
  return { serving, send: (m: string) => client.send(m), file, dir };
}

const UPSERT = `  index:
    database:
      url: \${HV2_DB_URL}
      statement: >-
        INSERT INTO $SCHEMA.adt_event (control_id, mrn, family, birth_date, event, sex) VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (control_id) DO UPDATE SET family = EXCLUDED.family
      params:
        - { path: MSH-10 }
        - { path: PID-3.1 }
        - { path: PID-5.1, transform: [upper] }
        - { path: PID-7, transform: [date] }
        - { json: event }
        - { json: sex }
    retry: { attempts: 50, backoff_ms: 20, max_backoff_ms: 100 }
`;

describe('database destination (PostgreSQL)', () => {
  test('each message is a row; an upsert updates it; empty values are NULL', async () => {
    const { serving, send } = await serve(UPSERT);
    expect((await send(adt('DB-1', 'E1'))).code).toBe('AA');
    expect((await send(adt('DB-2', 'E2', 'Roe', ''))).code).toBe('AA');
    expect((await send(adt('DB-1', 'E1', 'Smith'))).code).toBe('AA');
    await waitFor(async () => (await serving.store.listMessages()).every((m) => m.deliveries === 'index:sent'), 10_000, 'three rows written');
    const rows = await sql(`SELECT control_id, mrn, family, to_char(birth_date, 'YYYY-MM-DD') AS birth_date, event, sex FROM ${SCHEMA}.adt_event ORDER BY control_id`);
    expect(rows).toEqual([
      { control_id: 'DB-1', mrn: 'E1', family: 'SMITH', birth_date: '1984-05-12', event: 'A01', sex: 'female' },
      { control_id: 'DB-2', mrn: 'E2', family: 'ROE', birth_date: null, event: 'A01', sex: 'female' },
    ]);
    const shown = await serving.store.getMessage(1);
    expect(shown!.events.map((e) => e.detail)).toContain('1 statement, 1 row');
  });

  test('statements run in one transaction: when the second fails, the first is rolled back and the entry fails for good', async () => {
    const { serving, send } = await serve(`  index:
    database:
      url: \${HV2_DB_URL}
      statements:
        - statement: INSERT INTO $SCHEMA.audit (control_id, note) VALUES ($1, 'received')
          params: [ { path: MSH-10 } ]
        - statement: INSERT INTO $SCHEMA.adt_event (control_id, mrn) VALUES ($1, $2)
          params: [ { path: MSH-10 }, { path: PID-3.1 } ]
    retry: { attempts: 5, backoff_ms: 20 }
`);
    // No MRN: the second statement violates NOT NULL (SQLSTATE 23502), which retrying cannot fix.
    expect((await send(adt('TX-1', ''))).code).toBe('AA');
    await waitFor(async () => (await serving.store.getMessage(1))!.deliveries[0]!.state === 'dead', 10_000, 'the entry dead-lettered');
    const delivery = (await serving.store.getMessage(1))!.deliveries[0]!;
    expect(delivery.attempts).toBe(1);
    expect(delivery.last_error).toMatch(/not-null constraint.*\(SQLSTATE 23502\)/);
    expect(await sql(`SELECT * FROM ${SCHEMA}.audit WHERE control_id = 'TX-1'`)).toEqual([]);
  });

  test('a database that cannot be reached is retried until it can: the row arrives', async () => {
    const proxy = await startPgProxy();
    cleanups.push(() => proxy.close());
    proxy.cut();
    const viaProxy = TEST_PG_URL.replace('127.0.0.1:5432', `127.0.0.1:${proxy.port}`);
    const { serving, send } = await serve(UPSERT, { HV2_DB_URL: viaProxy });
    expect((await send(adt('RT-1', 'E9'))).code).toBe('AA');
    await waitFor(async () => ((await serving.store.getMessage(1))!.deliveries[0]!.attempts ?? 0) >= 2, 10_000, 'two failed attempts');
    expect(await sql(`SELECT mrn FROM ${SCHEMA}.adt_event WHERE control_id = 'RT-1'`)).toEqual([]);
    proxy.restore();
    await waitFor(async () => (await serving.store.getMessage(1))!.deliveries[0]!.state === 'sent', 10_000, 'the row written after the database came back');
    expect(await sql(`SELECT mrn FROM ${SCHEMA}.adt_event WHERE control_id = 'RT-1'`)).toEqual([{ mrn: 'E9' }]);
  });

  test('validate: statement and params agree; a literal password is a warning; a scheme hl7c does not write to is an error', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hv2-db-validate-'));
    const file = join(dir, 'db.yaml');
    writeFileSync(file, `channel: db
source: { mllp: { port: 2901 } }
destinations:
  few:
    database:
      url: postgres://pix:hunter2@db.local/pix
      statement: INSERT INTO t (a, b) VALUES ($1, $2)
      params: [ { path: PID-3.1 } ]
  none:
    database:
      url: sqlserver://db.local/pix
  json-in-map:
    file: { dir: out }
    map: { mrn: { json: mrn } }
`);
    const result = await validateSpecs([file], { cwd: dir, env: {} });
    expect(result.diagnostics.map((d) => `${d.line}:${d.column} ${d.severity} ${d.code}`)).toEqual([
      '6:12 warning spec/credential-in-spec',
      '7:18 error spec/database-params',
      '11:7 error spec/database-statement',
      '11:12 error spec/database-url',
      '14:25 error spec/json-not-here',
    ]);
    expect(result.diagnostics[1]!.message).toBe('the statement uses $1 … $2 but 1 param is given');
  });
});
