import 'reflect-metadata';
import pg from 'pg';
import sqlite3 from 'sqlite3';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { OperationBudget } from '../../src/operation-budget';
import { PeopleOrder } from '../../src/people/person.inputs';
import { seedEmail, seededPersonRow } from '../../src/people/person.seed';
import { databaseTargets, postgresTarget, sqliteTarget, type TestDatabase } from '../helpers/databases';
import { onTable } from '../helpers/query-counter';
import { startServer, type GraphQLResponse, type TestServer } from '../helpers/server';

/**
 * The per-operation time budget (OPERATION_TIMEOUT_MS). No assertion here is about time: a
 * database lock held by the test keeps the operation waiting for as long as the test decides, and
 * the service must answer 503 TIMEOUT and leave nothing behind. Timeouts are safety nets only.
 */

const CREATE = 'mutation Create($input: CreatePersonInput!) { createPerson(input: $input) { id email } }';
const BUDGET_MS = 300;
const TIMEOUT_BODY = {
  errors: [
    {
      message: `The operation ran past its time budget of ${BUDGET_MS} ms and was cancelled; nothing was changed`,
      extensions: { code: 'TIMEOUT' },
    },
  ],
};

async function post(server: TestServer, query: string, variables?: Record<string, unknown>) {
  const response = await fetch(server.graphqlUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${server.adminToken}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as GraphQLResponse['body'];
  return { status: response.status, retryAfter: response.headers.get('retry-after'), body };
}

/** Resolves when the budget runs out before any write claimed its commit (its `onExpired` listener). */
const expired = (budget: OperationBudget) => new Promise<void>((resolve) => budget.onExpired(resolve));

/** Resolves once the budget's signal has aborted (the budget ran out). */
const ranOut = (budget: OperationBudget) =>
  new Promise<void>((resolve) => budget.signal.addEventListener('abort', () => resolve(), { once: true }));

const timeoutError = { extensions: { code: 'TIMEOUT' } };

describe('OperationBudget', () => {
  it('when nothing claimed a commit: aborts its signal, calls its `onExpired` listener, refuses work', async () => {
    const budget = new OperationBudget(1);
    await expired(budget);
    // A listener set after the budget ran out is called at once.
    const late = vi.fn();
    budget.onExpired(late);
    expect(late).toHaveBeenCalledOnce();
    expect(budget.signal.aborted).toBe(true);
    expect(budget.claimCommit()).toBe(false);
    expect(() => budget.throwIfExpired()).toThrow(`Not run: the operation ran past its time budget of 1 ms`);
  });

  it('when a write claimed its commit first: aborts its signal but never calls its `onExpired` listener', async () => {
    const budget = new OperationBudget(1);
    expect(budget.claimCommit()).toBe(true);
    await ranOut(budget);
    // The listener would have run synchronously with the abort; a turn of the event loop later it still has not.
    const state = await Promise.race([
      expired(budget).then(() => 'expired'),
      new Promise((resolve) => setImmediate(() => resolve('answered with the result'))),
    ]);
    expect(state).toBe('answered with the result');
    expect(() => budget.throwIfExpired()).toThrow(/time budget/);
  });
});

describe.each(databaseTargets)('database work under an expired budget on $kind', (target) => {
  let database: TestDatabase;
  let server: TestServer;

  beforeAll(async () => {
    database = await target.create();
    server = await startServer(database.url);
    await server.app.people.create({ email: 'present@example.com' });
  });

  afterAll(async () => {
    await server?.close();
    await database?.drop();
  });

  const countRows = async (email: string) => {
    const rows = await server.app.database.sql.all<{ count: number | string }>(
      'SELECT COUNT(*) AS count FROM person WHERE email = $1',
      [email],
    );
    return Number(rows[0].count);
  };

  it('does not start: every read and write of people is refused with TIMEOUT, no statement runs', async () => {
    const budget = new OperationBudget(1);
    await expired(budget);
    const { people } = server.app;
    const statements: string[] = [];
    const stop = server.app.database.sql.observe((sql) => statements.push(sql));
    try {
      const attempts: Promise<unknown>[] = [
        people.list({ first: 5, orderBy: PeopleOrder.EMAIL_ASC }, undefined, budget),
        people.count(null, budget),
        people.getByEmail('present@example.com', undefined, budget),
        people.findByIds(['00000000-0000-4000-8000-000000000000'], budget),
        people.findByNormalizedEmails(['present@example.com'], budget),
        people.create({ email: 'never@example.com' }, budget),
        people.update({ email: 'present@example.com', team: 'Never' }, budget),
      ];
      for (const attempt of attempts) await expect(attempt).rejects.toMatchObject(timeoutError);
    } finally {
      stop();
    }
    expect(statements.filter(onTable('person'))).toEqual([]);
    expect(await countRows('never@example.com')).toBe(0);
    const unchanged = await server.app.people.getByEmail('present@example.com');
    expect(unchanged).toMatchObject({ team: null, version: 1 });
  });

  it('rolls back a write whose budget ran out while it ran, instead of committing it', async () => {
    const budget = new OperationBudget(1);
    const row = seededPersonRow(1);
    const columns =
      'id, email, first_name, last_name, organization, business_unit, department, group_name, team, created_at, updated_at, version';
    const write = server.app.database.write(async (sql) => {
      await sql.run(
        `INSERT INTO person (${columns}) VALUES (${row.map((_, index) => `$${index + 1}`).join(', ')})`,
        row,
      );
      // The statement ran; now the budget runs out before the unit can commit.
      if (!budget.signal.aborted) await ranOut(budget);
      return 'done';
    }, budget);
    await expect(write).rejects.toMatchObject(timeoutError);
    expect(await countRows(seedEmail(1))).toBe(0);

    // The same write without a budget commits: the rollback above was the budget's doing.
    await server.app.database.write(async (sql) => {
      await sql.run(
        `INSERT INTO person (${columns}) VALUES (${row.map((_, index) => `$${index + 1}`).join(', ')})`,
        row,
      );
    });
    expect(await countRows(seedEmail(1))).toBe(1);
  });
});

function sqliteFileOf(url: string): string {
  return url.slice('sqlite:'.length);
}

function exec(db: sqlite3.Database, sql: string): Promise<void> {
  return new Promise((resolve, reject) => db.exec(sql, (error) => (error ? reject(error) : resolve())));
}

describe('a write held up past OPERATION_TIMEOUT_MS (sqlite)', () => {
  let database: TestDatabase;
  let server: TestServer;
  let locker: sqlite3.Database;

  beforeAll(async () => {
    database = await sqliteTarget.create();
    server = await startServer(database.url, { OPERATION_TIMEOUT_MS: String(BUDGET_MS) });
    // The token's last-use bookkeeping is a write too: record it now, not during the test.
    expect((await post(server, '{ people(first: 1) { totalCount } }')).status).toBe(200);
    locker = await new Promise<sqlite3.Database>((resolve, reject) => {
      const db = new sqlite3.Database(sqliteFileOf(database.url), (error) => (error ? reject(error) : resolve(db)));
    });
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => (locker ? locker.close(() => resolve()) : resolve()));
    await server?.close();
    await database?.drop();
  });

  it('is answered 503 TIMEOUT with Retry-After, never commits, and the service goes on', async () => {
    const statements: { sql: string; parameters: readonly unknown[] }[] = [];
    const stop = server.app.database.sql.observe((sql, parameters) => statements.push({ sql, parameters }));
    let response;
    // Another connection holds the write lock until the service has answered.
    await exec(locker, 'BEGIN IMMEDIATE');
    try {
      response = await post(server, CREATE, { input: { email: 'late@example.com' } });
    } finally {
      await exec(locker, 'ROLLBACK');
    }
    expect(response).toEqual({ status: 503, retryAfter: '1', body: TIMEOUT_BODY });
    // The write was really waiting for the lock when the budget ran out.
    expect(statements.map((statement) => statement.sql)).toContain('BEGIN IMMEDIATE');

    // Writes run in order: once a later one has committed, the timed-out one has been dealt with.
    const after = await post(server, CREATE, { input: { email: 'after@example.com' } });
    expect(after.status).toBe(200);
    expect(after.body).toEqual({ data: { createPerson: { id: expect.any(String), email: 'after@example.com' } } });
    stop();

    const inserted = statements.filter((statement) => /^INSERT INTO person/.test(statement.sql));
    expect(inserted.map((statement) => statement.parameters[1])).toEqual(['after@example.com']);
    const rows = await new Promise<{ email: string }[]>((resolve, reject) =>
      locker.all('SELECT email FROM person ORDER BY email', (error, found: { email: string }[]) =>
        error ? reject(error) : resolve(found),
      ),
    );
    expect(rows).toEqual([{ email: 'after@example.com' }]);
    const lookup = await post(server, '{ person(email: "late@example.com") { id } }');
    expect(lookup.body.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');

    expect(server.logs).toContainEqual(
      expect.objectContaining({ level: 40, msg: 'operation ran past its time budget', operationTimeoutMs: BUDGET_MS }),
    );
    expect(server.logs).toContainEqual(expect.objectContaining({ msg: 'request', path: '/graphql', status: 503 }));
  });
});

describe.skipIf(!postgresTarget)('operations held up past OPERATION_TIMEOUT_MS (postgres)', () => {
  let database: TestDatabase;
  let server: TestServer;
  let locker: pg.Client;

  beforeAll(async () => {
    database = await (postgresTarget as NonNullable<typeof postgresTarget>).create();
    server = await startServer(database.url, { OPERATION_TIMEOUT_MS: String(BUDGET_MS) });
    expect((await post(server, '{ people(first: 1) { totalCount } }')).status).toBe(200);
    locker = new pg.Client({ connectionString: database.url });
    await locker.connect();
  });

  afterAll(async () => {
    await locker?.end();
    await server?.close();
    await database?.drop();
  });

  /** The service's connections to this database that are running or inside a transaction. */
  async function busyServiceConnections(): Promise<{ state: string; wait: string | null; query: string }[]> {
    const { rows } = await locker.query<{ state: string; wait: string | null; query: string }>(
      `SELECT state, wait_event_type AS wait, query FROM pg_stat_activity
        WHERE datname = current_database() AND pid <> pg_backend_pid() AND state <> 'idle'`,
    );
    return rows;
  }

  it('a write blocked by a lock: 503 TIMEOUT, rolled back, and the next mutation never starts', async () => {
    const statements: string[] = [];
    const stop = server.app.database.sql.observe((sql, parameters) =>
      statements.push(`${sql} ${JSON.stringify(parameters)}`),
    );
    let response;
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE person IN EXCLUSIVE MODE');
    try {
      response = await post(
        server,
        `mutation { a: createPerson(input: { email: "first@example.com" }) { id }
                    b: createPerson(input: { email: "second@example.com" }) { id } }`,
      );
    } finally {
      await locker.query('ROLLBACK');
    }
    expect(response).toEqual({ status: 503, retryAfter: '1', body: TIMEOUT_BODY });

    // Wait until the service has finished with the statement it had started (cancelled by
    // statement_timeout, or let through by the unlock and then rolled back).
    await expect.poll(busyServiceConnections, { timeout: 10_000 }).toEqual([]);
    stop();

    const inserts = statements.filter((statement) => /^INSERT INTO person/.test(statement));
    expect(inserts).toHaveLength(1);
    expect(inserts[0]).toContain('first@example.com');
    const { rows } = await locker.query('SELECT email FROM person');
    expect(rows).toEqual([]);

    const after = await post(server, CREATE, { input: { email: 'after@example.com' } });
    expect(after.status).toBe(200);
    expect(after.body).toEqual({ data: { createPerson: { id: expect.any(String), email: 'after@example.com' } } });
  });

  it('a read blocked by a lock: 503 TIMEOUT, and statement_timeout cancels it in the database', async () => {
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE person IN ACCESS EXCLUSIVE MODE');
    try {
      const response = await post(server, '{ people(first: 1) { totalCount nodes { email } } }');
      expect(response).toEqual({ status: 503, retryAfter: '1', body: TIMEOUT_BODY });
      // The lock is still held, yet the service's statement stops waiting: the server cancelled it.
      await expect
        .poll(async () => (await busyServiceConnections()).filter((connection) => connection.wait === 'Lock'), {
          timeout: 10_000,
        })
        .toEqual([]);
      // Logged once the cancellation reaches the resolver, long after the answer: still with its request's id.
      const cancelled = (line: (typeof server.logs)[number]) =>
        line.msg === 'statement cancelled by statement_timeout' && typeof line.reqId === 'string';
      await expect.poll(() => server.logs.filter(cancelled).length).toBeGreaterThan(0);
    } finally {
      await locker.query('ROLLBACK');
    }

    const after = await post(server, '{ people(first: 5) { totalCount } }');
    const { rows } = await locker.query<{ count: string }>('SELECT COUNT(*) AS count FROM person');
    expect(after).toEqual({
      status: 200,
      retryAfter: null,
      body: { data: { people: { totalCount: Number(rows[0].count) } } },
    });
  });
});

describe.skipIf(!postgresTarget)('DATABASE_QUERY_TIMEOUT_MS below OPERATION_TIMEOUT_MS (postgres)', () => {
  it('a query the service gave up on is cancelled in the database too: no session left waiting', async () => {
    const database = await (postgresTarget as NonNullable<typeof postgresTarget>).create();
    const server = await startServer(database.url, { OPERATION_TIMEOUT_MS: '8000', DATABASE_QUERY_TIMEOUT_MS: '400' });
    const locker = new pg.Client({ connectionString: database.url });
    await locker.connect();
    const waitingOnLock = async () =>
      (
        await locker.query(
          `SELECT pid FROM pg_stat_activity
            WHERE datname = current_database() AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'`,
        )
      ).rows;
    try {
      expect((await post(server, '{ people(first: 1) { totalCount } }')).status).toBe(200);
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE person IN ACCESS EXCLUSIVE MODE');
      const answers = await Promise.all(
        Array.from({ length: 4 }, () => post(server, '{ people(first: 1) { totalCount } }')),
      );
      // After DATABASE_QUERY_TIMEOUT_MS the service stopped waiting and dropped the connection
      // (SERVICE_UNAVAILABLE), or the database, whose statement_timeout is as long, cancelled the
      // statement just before (TIMEOUT) ...
      for (const answer of answers) {
        expect(['SERVICE_UNAVAILABLE', 'TIMEOUT']).toContain(answer.body.errors?.[0]?.extensions?.code);
      }
      // ... and the database cancelled their statements as well, long before the 8 s budget, so
      // that abandoned sessions do not pile up while the lock is held.
      await expect.poll(waitingOnLock, { timeout: 4_000 }).toEqual([]);
    } finally {
      await locker.query('ROLLBACK');
      await locker.end();
      await server.close();
      await database.drop();
    }
  });
});
