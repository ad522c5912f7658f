import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { afterEach, describe, expect, test } from 'vitest';
import { MllpClient } from '../../runtime/index.js';
import { startServing } from '../../src/serve/serve.js';
import { validateSpecs } from '../../src/spec/validate.js';
import { corpusFile } from '../corpus.js';
import { startPgProxy } from '../store/pg-proxy.js';
import { memoryLogger, waitFor } from '../serve/helpers.js';
import { cli } from '../cli/helpers.js';

/** The team's MariaDB: root, no password. Each test makes a database of its own and drops it. */
const SERVER = { host: '127.0.0.1', port: 3306, user: 'root' };

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function query(sql: string, database?: string): Promise<unknown[]> {
  const connection = await mysql.createConnection({ ...SERVER, ...(database ? { database } : {}), dateStrings: true });
  try {
    return (await connection.query(sql))[0] as unknown[];
  } finally {
    await connection.end();
  }
}

async function database(): Promise<string> {
  const name = `hv2_my_${randomBytes(4).toString('hex')}`;
  await query(`CREATE DATABASE ${name}`);
  cleanups.push(() => query(`DROP DATABASE IF EXISTS ${name}`));
  await query(`CREATE TABLE adt_event (control_id varchar(40) PRIMARY KEY, mrn varchar(40) NOT NULL, family varchar(80), birth_date date, event varchar(8), note varchar(80)) ENGINE=InnoDB`, name);
  await query(`CREATE TABLE audit (control_id varchar(40), note varchar(80)) ENGINE=InnoDB`, name);
  return name;
}

const adt = (controlId: string, mrn: string, family = 'Doe', dob = '19840512') =>
  `MSH|^~\\&|STAR|LRH|HL7C|PIX|20261125083000||ADT^A01^ADT_A01|${controlId}|P|2.5.1\rPID|1||${mrn}^^^LRH^MR||${family}^Jane||${dob}|F\r`;

async function serve(destination: string, url: string) {
  const dir = mkdtempSync(join(tmpdir(), 'hv2-my-'));
  const file = join(dir, 'pix.yaml');
  writeFileSync(file, `channel: pix
source: { mllp: { host: 127.0.0.1, port: 0 } }
map:
  event: { path: MSH-9.2 }
destinations:
${destination}`);
  const { logger } = memoryLogger();
  const serving = await startServing({ specs: [file], storePath: join(dir, 'store.db'), cwd: dir, env: { PIX_DB_URL: url }, logger, watch: false });
  cleanups.push(() => serving.close());
  const client = new MllpClient({ host: '127.0.0.1', port: serving.ports().pix! });
  cleanups.push(() => client.close());
  return { serving, send: (m: string | Buffer) => client.send(m) };
}

// $2 comes before $1 and is used twice; the '$1' in quotes is text, not a placeholder.
const UPSERT = `  index:
    database:
      url: \${PIX_DB_URL}
      statement: >-
        INSERT INTO adt_event (mrn, control_id, family, birth_date, event, note)
        VALUES ($2, $1, $3, $4, $5, CONCAT($2, ' as $1'))
        ON DUPLICATE KEY UPDATE family = VALUES(family)
      params:
        - { path: MSH-10 }
        - { path: PID-3.1 }
        - { path: PID-5.1, transform: [upper] }
        - { path: PID-7, transform: [date] }
        - { json: event }
    retry: { attempts: 50, backoff_ms: 20, max_backoff_ms: 100 }
`;

describe('database destination (MySQL/MariaDB)', () => {
  test('each message is a row, with $n sent as ? in the right order; an upsert updates it; empty values are NULL', async () => {
    const db = await database();
    const { serving, send } = await serve(UPSERT, `mysql://root@127.0.0.1:3306/${db}`);
    expect((await send(adt('MY-1', 'E1'))).code).toBe('AA');
    expect((await send(adt('MY-2', 'E2', 'Roe', ''))).code).toBe('AA');
    expect((await send(adt('MY-1', 'E1', 'Smith'))).code).toBe('AA');
    // A corpus message (v2.3, a timestamp with an offset in MSH-7): PID-7 is a date-only value.
    expect((await send(corpusFile('adt/fhirconv-adt-a01-v23.hl7'))).code).toBe('AA');
    await waitFor(async () => (await serving.store.listMessages()).every((m) => m.deliveries === 'index:sent'), 10_000, 'four rows written');
    expect(await query('SELECT control_id, mrn, family, birth_date, event, note FROM adt_event ORDER BY control_id', db)).toEqual([
      { control_id: '599102', mrn: '10006579', family: 'DUCK', birth_date: '1924-10-10', event: 'A01', note: '10006579 as $1' },
      { control_id: 'MY-1', mrn: 'E1', family: 'SMITH', birth_date: '1984-05-12', event: 'A01', note: 'E1 as $1' },
      { control_id: 'MY-2', mrn: 'E2', family: 'ROE', birth_date: null, event: 'A01', note: 'E2 as $1' },
    ]);
    expect((await serving.store.getMessage(1))!.events.map((e) => e.detail)).toContain('1 statement, 1 row');
  });

  test('statements run in one transaction: a constraint violation rolls the first back and dead-letters the entry after one attempt', async () => {
    const db = await database();
    const { serving, send } = await serve(`  index:
    database:
      url: mariadb://root@127.0.0.1:3306/${db}
      statements:
        - statement: INSERT INTO audit (control_id, note) VALUES ($1, 'received')
          params: [ { path: MSH-10 } ]
        - statement: INSERT INTO adt_event (control_id, mrn) VALUES ($1, $2)
          params: [ { path: MSH-10 }, { path: PID-3.1 } ]
    retry: { attempts: 5, backoff_ms: 20 }
`, '');
    // No MRN: NULL into a NOT NULL column is ER_BAD_NULL_ERROR, SQLSTATE 23000; retrying cannot fix it.
    expect((await send(adt('TX-1', ''))).code).toBe('AA');
    await waitFor(async () => (await serving.store.getMessage(1))!.deliveries[0]!.state === 'dead', 10_000, 'the entry dead-lettered');
    const delivery = (await serving.store.getMessage(1))!.deliveries[0]!;
    expect(delivery.attempts).toBe(1);
    expect(delivery.last_error).toMatch(/Column 'mrn' cannot be null \(SQLSTATE 23000\)/);
    expect(await query(`SELECT * FROM audit`, db)).toEqual([]);
    expect(await query(`SELECT * FROM adt_event`, db)).toEqual([]);
  });

  test('a database that cannot be reached is a failed attempt, retried until it can: the row arrives', async () => {
    const db = await database();
    const proxy = await startPgProxy({ host: '127.0.0.1', port: 3306 });
    cleanups.push(() => proxy.close());
    proxy.cut();
    const { serving, send } = await serve(UPSERT, `mysql://root@127.0.0.1:${proxy.port}/${db}`);
    expect((await send(adt('RT-1', 'E9'))).code).toBe('AA');
    await waitFor(async () => ((await serving.store.getMessage(1))!.deliveries[0]!.attempts ?? 0) >= 2, 10_000, 'two failed attempts');
    const failing = (await serving.store.getMessage(1))!.deliveries[0]!;
    expect(failing.state).not.toBe('sent');
    expect(failing.last_error).toBeTruthy();
    expect(await query(`SELECT mrn FROM adt_event`, db)).toEqual([]);
    proxy.restore();
    await waitFor(async () => (await serving.store.getMessage(1))!.deliveries[0]!.state === 'sent', 10_000, 'the row written after the database came back');
    expect(await query(`SELECT mrn FROM adt_event WHERE control_id = 'RT-1'`, db)).toEqual([{ mrn: 'E9' }]);
  });

  test('a database that stays down dead-letters the entry when the attempts run out', async () => {
    const db = await database();
    const proxy = await startPgProxy({ host: '127.0.0.1', port: 3306 });
    cleanups.push(() => proxy.close());
    proxy.cut();
    const { serving, send } = await serve(UPSERT.replace('attempts: 50', 'attempts: 3'), `mysql://root@127.0.0.1:${proxy.port}/${db}`);
    expect((await send(adt('DN-1', 'E7'))).code).toBe('AA');
    await waitFor(async () => (await serving.store.getMessage(1))!.deliveries[0]!.state === 'dead', 10_000, 'the entry dead-lettered');
    const delivery = (await serving.store.getMessage(1))!.deliveries[0]!;
    expect(delivery.attempts).toBe(3);
    expect(delivery.last_error).not.toContain('root@');
    expect(await query(`SELECT mrn FROM adt_event`, db)).toEqual([]);
  });
});

test('validate: a bare ? in a MySQL statement is an error where it stands; $n must have no gaps; quoted text is not a placeholder', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hv2-my-validate-'));
  const file = join(dir, 'db.yaml');
  writeFileSync(file, `channel: db
source: { mllp: { port: 2901 } }
destinations:
  marks:
    database:
      url: mysql://pix@db.local/pix
      statement: >-
        INSERT INTO t (a, b, c)
        VALUES ('?', ?, $1)
      params: [ { path: PID-3.1 } ]
  gap:
    database:
      url: mariadb://pix@db.local/pix
      statement: "INSERT INTO t (a, b) VALUES ($1, $3)"
      params: [ { path: PID-3.1 }, { path: PID-5.1 }, { path: PID-7 } ]
  quoted:
    database:
      url: postgres://pix@db.local/pix
      statement: "INSERT INTO t (a, b) VALUES ($1, '$2?')"
      params: [ { path: PID-3.1 } ]
  other:
    database:
      url: sqlserver://db.local/pix
      statement: SELECT 1
`);
  const result = await validateSpecs([file], { cwd: dir, env: {} });
  expect(result.diagnostics.map((d) => `${d.line}:${d.column} ${d.severity} ${d.code}`)).toEqual([
    '9:22 error spec/database-placeholder',
    '14:18 error spec/database-params',
    '23:12 error spec/database-url',
  ]);
  expect(result.diagnostics[1]!.message).toBe('the statement uses $3 but not $2');
  expect(result.diagnostics[0]!.hint).toMatch(/write \$1, \$2 … for MySQL and MariaDB too/);
});

test("a database's error quoting a value (Duplicate entry 'MRN') is kept whole in the store for operators, and masked in the log and in hl7c messages without --show-phi", async () => {
  const db = await database();
  await query('CREATE TABLE patients (mrn varchar(40) PRIMARY KEY) ENGINE=InnoDB', db);
  const dir = mkdtempSync(join(tmpdir(), 'hv2-my-phi-'));
  writeFileSync(join(dir, 'pix.yaml'), `channel: pix
source: { mllp: { host: 127.0.0.1, port: 0 } }
destinations:
  patients:
    database:
      url: \${PIX_DB_URL}
      statement: INSERT INTO patients (mrn) VALUES ($1)
      params: [ { path: PID-3.1 } ]
    retry: { attempts: 1, backoff_ms: 10, max_backoff_ms: 10 }
`);
  const { logger, lines } = memoryLogger();
  const store = join(dir, 'store.db');
  const serving = await startServing({ specs: [join(dir, 'pix.yaml')], storePath: store, cwd: dir, env: { PIX_DB_URL: `mysql://root@127.0.0.1:3306/${db}` }, logger, watch: false });
  cleanups.push(() => serving.close());
  const client = new MllpClient({ host: '127.0.0.1', port: serving.ports().pix! });
  cleanups.push(() => client.close());
  const MRN = 'QX44718';
  expect((await client.send(adt('PHI-1', MRN))).code).toBe('AA');
  expect((await client.send(adt('PHI-2', MRN))).code).toBe('AA');
  await waitFor(async () => (await serving.store.getMessage(2))?.deliveries[0]?.state === 'dead', 10_000, 'the second dead-lettered');
  const dead = (await serving.store.getMessage(2))!.deliveries[0]!;
  expect(dead.last_error).toContain(`Duplicate entry '${MRN}'`);
  const logged = lines.filter((l) => l.msg === 'delivery dead-lettered');
  expect(logged).toHaveLength(1);
  expect(logged[0]!.error).toMatch(/^Duplicate entry '•••'/);
  expect(JSON.stringify(lines)).not.toContain(MRN);
  await serving.close();
  const shown = await cli('messages', 'show', '2', '--store', store);
  expect(shown.code).toBe(0);
  expect(shown.stdout).toContain("last error: Duplicate entry '•••'");
  expect(shown.stdout).not.toContain(MRN);
  const listed = await cli('messages', '--store', store, '--status', 'dead', '--json');
  expect(listed.stdout).not.toContain(MRN);
  expect((await cli('messages', 'show', '2', '--store', store, '--show-phi')).stdout).toContain(`last error: Duplicate entry '${MRN}'`);
});
