import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';

/** A throwaway database for one test file: a temporary SQLite file or a fresh PostgreSQL database. */
export interface TestDatabase {
  readonly kind: 'sqlite' | 'postgres';
  readonly url: string;
  drop(): Promise<void>;
}

export interface DatabaseTarget {
  kind: 'sqlite' | 'postgres';
  create(): Promise<TestDatabase>;
}

const postgresUrl = process.env.TEST_DATABASE_URL;

if (!postgresUrl) {
  console.warn('TEST_DATABASE_URL is not set: the PostgreSQL runs of the suite are SKIPPED (SQLite only).');
}

async function createSqlite(): Promise<TestDatabase> {
  const directory = mkdtempSync(path.join(tmpdir(), 'people-graph-'));
  return {
    kind: 'sqlite',
    url: `sqlite:${path.join(directory, 'people.sqlite')}`,
    drop: async () => rmSync(directory, { recursive: true, force: true }),
  };
}

async function createPostgres(): Promise<TestDatabase> {
  const name = `people_graph_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: postgresUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(postgresUrl as string);
  url.pathname = `/${name}`;
  return {
    kind: 'postgres',
    url: url.toString(),
    drop: async () => {
      const client = new pg.Client({ connectionString: postgresUrl });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await client.end();
    },
  };
}

export const sqliteTarget: DatabaseTarget = { kind: 'sqlite', create: createSqlite };
export const postgresTarget: DatabaseTarget | null = postgresUrl ? { kind: 'postgres', create: createPostgres } : null;

/** SQLite always; PostgreSQL too when TEST_DATABASE_URL is set. */
export const databaseTargets: DatabaseTarget[] = postgresTarget ? [sqliteTarget, postgresTarget] : [sqliteTarget];
