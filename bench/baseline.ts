/**
 * The bare baseline for the benchmark: node:http + the same database driver + hand-written SQL +
 * JSON.stringify, answering the same JSON shapes as the GraphQL service, with no GraphQL, no
 * ORM and no authentication. It is what "as fast as the database allows" looks like here.
 *
 * Routes: GET /people?first=25 · GET /person?email=… · POST /people {email,…} · POST /entities {emails}
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import sqlite3 from 'sqlite3';

const PAGE_COLUMNS =
  'id, email, first_name AS "firstName", last_name AS "lastName", organization, team, updated_at AS "updatedAt"';
const PERSON_COLUMNS =
  'id, email, first_name AS "firstName", last_name AS "lastName", organization, business_unit AS "businessUnit", department, group_name AS "group", team, created_at AS "createdAt", updated_at AS "updatedAt", version';

type Row = Record<string, unknown>;
interface Store {
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

function readJson(request: IncomingMessage): Promise<Row> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as Row);
      } catch (error) {
        reject(error);
      }
    });
    request.on('error', reject);
  });
}

function send(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  response.end(text);
}

async function route(store: Store, request: IncomingMessage, response: ServerResponse): Promise<void> {
  const url = new URL(request.url ?? '/', 'http://localhost');
  if (request.method === 'GET' && url.pathname === '/people') {
    const nodes = await store.page(Number(url.searchParams.get('first') ?? 25));
    return send(response, 200, { data: { people: { nodes } } });
  }
  if (request.method === 'GET' && url.pathname === '/person') {
    const person = await store.person((url.searchParams.get('email') ?? '').trim().toLowerCase());
    return send(response, 200, { data: { person: person ?? null } });
  }
  if (request.method === 'POST' && url.pathname === '/people') {
    const input = await readJson(request);
    const now = new Date().toISOString();
    const person = {
      id: randomUUID(),
      email: String(input.email).trim().toLowerCase(),
      firstName: input.firstName ?? null,
      lastName: input.lastName ?? null,
      createdAt: now,
      updatedAt: now,
    };
    await store.create(person);
    return send(response, 200, { data: { createPerson: { ...person, version: 1 } } });
  }
  if (request.method === 'POST' && url.pathname === '/entities') {
    const emails = ((await readJson(request)).emails as string[]).map((email) => email.toLowerCase());
    const rows = await store.byEmails(emails);
    const byEmail = new Map(rows.map((row) => [row.email as string, row]));
    return send(response, 200, { data: { _entities: emails.map((email) => byEmail.get(email) ?? null) } });
  }
  send(response, 404, { error: 'not found' });
}

const databaseUrl = process.env.DATABASE_URL ?? 'sqlite:./data/people.sqlite';
const store = databaseUrl.startsWith('sqlite:')
  ? sqliteStore(databaseUrl.slice('sqlite:'.length))
  : postgresStore(databaseUrl);
const server = http.createServer((request, response) => {
  route(store, request, response).catch((error: unknown) => send(response, 500, { error: String(error) }));
});
server.listen(Number(process.env.PORT ?? 4001), '127.0.0.1', () => process.stdout.write('baseline ready\n'));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
