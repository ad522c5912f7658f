import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** The team's PostgreSQL (trust auth); HL7C_TEST_PG overrides it. */
export const TEST_PG_URL = process.env.HL7C_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/test';

/**
 * A schema of its own for one test: the store address that puts hl7c's tables there, and a
 * drop that removes it (and everything in it) afterwards.
 */
export function testSchema(prefix = 't'): { name: string; url: string; drop: () => Promise<void> } {
  const name = `hl7c_${prefix}_${randomBytes(5).toString('hex')}`;
  return {
    name,
    url: `${TEST_PG_URL}?schema=${name}`,
    drop: async () => {
      const client = new pg.Client({ connectionString: TEST_PG_URL });
      await client.connect();
      try {
        await client.query(`DROP SCHEMA IF EXISTS ${name} CASCADE`);
      } finally {
        await client.end();
      }
    },
  };
}

/** One query against the test database, inside a schema. */
export async function sql<R extends pg.QueryResultRow = pg.QueryResultRow>(schema: string, text: string, values: unknown[] = []): Promise<R[]> {
  const client = new pg.Client({ connectionString: TEST_PG_URL, options: `-c search_path=${schema}` });
  await client.connect();
  try {
    return (await client.query<R>(text, values)).rows;
  } finally {
    await client.end();
  }
}
