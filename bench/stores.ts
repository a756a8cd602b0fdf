/**
 * The benchmark's hand-written data access: the same driver as the service, prepared statements
 * and plain SQL, no ORM. Shared by the bare baseline and by "Apollo alone", so that both run
 * exactly the same queries.
 */
import pg from 'pg';
import sqlite3 from 'sqlite3';

const PAGE_COLUMNS =
  'id, email, first_name AS "firstName", last_name AS "lastName", organization, team, updated_at AS "updatedAt"';
const PERSON_COLUMNS =
  'id, email, first_name AS "firstName", last_name AS "lastName", organization, business_unit AS "businessUnit", department, group_name AS "group", team, created_at AS "createdAt", updated_at AS "updatedAt", version';

export type Row = Record<string, unknown>;
export interface Store {
  page(first: number): Promise<Row[]>;
  person(email: string): Promise<Row | undefined>;
  create(person: Row): Promise<void>;
  byEmails(emails: string[]): Promise<Row[]>;
}

function sqliteStore(file: string): Store {
  const db = new sqlite3.Database(file);
  db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;');
  const pageStatement = db.prepare(`SELECT ${PAGE_COLUMNS} FROM person ORDER BY email LIMIT ?`);
  const personStatement = db.prepare(`SELECT ${PERSON_COLUMNS} FROM person WHERE email = ?`);
  const all = (statement: sqlite3.Statement, params: unknown[]) =>
    new Promise<Row[]>((resolve, reject) =>
      statement.all(params, (error: Error | null, rows: Row[]) => (error ? reject(error) : resolve(rows))),
    );
  return {
    page: (first) => all(pageStatement, [first]),
    person: async (email) => (await all(personStatement, [email]))[0],
    create: (person) =>
      new Promise((resolve, reject) =>
        db.run(
          'INSERT INTO person (id, email, first_name, last_name, created_at, updated_at, version) VALUES (?, ?, ?, ?, ?, ?, 1)',
          [person.id, person.email, person.firstName, person.lastName, person.createdAt, person.updatedAt],
          (error) => (error ? reject(error) : resolve()),
        ),
      ),
    byEmails: (emails) =>
      new Promise((resolve, reject) =>
        db.all(
          `SELECT ${PERSON_COLUMNS} FROM person WHERE email IN (${emails.map(() => '?').join(', ')})`,
          emails,
          (error: Error | null, rows: Row[]) => (error ? reject(error) : resolve(rows)),
        ),
      ),
  };
}

function postgresStore(url: string): Store {
  const pool = new pg.Pool({ connectionString: url, max: 20 });
  return {
    page: async (first) =>
      (
        await pool.query({
          name: 'page',
          text: `SELECT ${PAGE_COLUMNS} FROM person ORDER BY email LIMIT $1`,
          values: [first],
        })
      ).rows,
    person: async (email) =>
      (
        await pool.query({
          name: 'person',
          text: `SELECT ${PERSON_COLUMNS} FROM person WHERE email = $1`,
          values: [email],
        })
      ).rows[0],
    create: async (person) => {
      await pool.query(
        'INSERT INTO person (id, email, first_name, last_name, created_at, updated_at, version) VALUES ($1, $2, $3, $4, $5, $6, 1)',
        [person.id, person.email, person.firstName, person.lastName, person.createdAt, person.updatedAt],
      );
    },
    byEmails: async (emails) =>
      (await pool.query(`SELECT ${PERSON_COLUMNS} FROM person WHERE email = ANY($1)`, [emails])).rows,
  };
}

/** The store for DATABASE_URL (set by the benchmark): `sqlite:<file>` or a PostgreSQL URL. */
export function openStore(databaseUrl = process.env.DATABASE_URL ?? 'sqlite:./data/people.sqlite'): Store {
  return databaseUrl.startsWith('sqlite:')
    ? sqliteStore(databaseUrl.slice('sqlite:'.length))
    : postgresStore(databaseUrl);
}
