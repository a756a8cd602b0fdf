import { spawn } from 'node:child_process';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MIGRATION_LOCK_KEY } from '../../src/db/data-source';
import { Database } from '../../src/db/database';
import { migrations } from '../../src/db/migrations';
import { postgresTarget, type TestDatabase } from '../helpers/databases';
import { spawnMain, stopMain } from '../helpers/main-process';
import { startServer, type GraphQLResponse, type TestServer } from '../helpers/server';

if (!postgresTarget) {
  console.warn('TEST_DATABASE_URL is not set: the two-replicas-on-one-PostgreSQL tests are SKIPPED.');
}

const FIELDS = 'id email firstName team version';
const CREATE = `mutation Create($input: CreatePersonInput!) { createPerson(input: $input) { ${FIELDS} } }`;
const UPDATE = `mutation Update($input: UpdatePersonInput!) { updatePerson(input: $input) { ${FIELDS} } }`;
const GET = `query Get($email: String!) { person(email: $email) { ${FIELDS} } }`;

/** `email` in a different mix of letter cases for each i (bit j of i upper-cases letter j). */
function mixedCase(email: string, i: number): string {
  return [...email].map((char, j) => (j < 20 && (i >> (j % 6)) & 1 ? char.toUpperCase() : char)).join('');
}

function codesOf(responses: GraphQLResponse[]): string[] {
  return responses.map((response) => response.body.errors?.[0]?.extensions?.code ?? 'OK').sort();
}

describe.skipIf(!postgresTarget)('two replicas on one PostgreSQL database', () => {
  let database: TestDatabase;
  let replicas: TestServer[];
  let direct: pg.Client;

  beforeAll(async () => {
    database = await (postgresTarget as NonNullable<typeof postgresTarget>).create();
    replicas = [await startServer(database.url), await startServer(database.url)];
    direct = new pg.Client({ connectionString: database.url });
    await direct.connect();
  });

  afterAll(async () => {
    await direct?.end();
    for (const replica of replicas ?? []) await replica.close();
    await database?.drop();
  });

  /** Request i goes to replica i % 2; all are sent at once. */
  function spread(count: number, send: (replica: TestServer, i: number) => Promise<GraphQLResponse>) {
    return Promise.all(Array.from({ length: count }, (_, i) => send(replicas[i % 2], i)));
  }

  it('50 concurrent creates of one email in mixed letter cases across both: one row, 49 CONFLICT', async () => {
    const emails = Array.from({ length: 50 }, (_, i) => mixedCase('Two.Replicas@Example.com', i + 1));
    expect(new Set(emails).size).toBe(50);

    const responses = await spread(50, (replica, i) =>
      replica.gql(CREATE, { input: { email: emails[i], firstName: `Racer${i}` } }),
    );

    expect(responses.map((response) => response.status)).toEqual(Array(50).fill(200));
    expect(codesOf(responses)).toEqual([...Array(49).fill('CONFLICT'), 'OK']);
    const winner = responses.find((response) => !response.body.errors)?.body.data?.createPerson;
    expect(winner).toMatchObject({ email: 'two.replicas@example.com', version: 1 });
    for (const loser of responses.filter((response) => response.body.errors)) {
      expect(loser.body.errors?.[0].message).toBe('A person with email two.replicas@example.com already exists');
    }
    // Both replicas see the one winner; the table holds exactly one row for the address.
    for (const replica of replicas) {
      expect((await replica.gql(GET, { email: 'TWO.replicas@example.COM' })).body).toEqual({
        data: { person: winner },
      });
    }
    const rows = await direct.query("SELECT id FROM person WHERE lower(email) = 'two.replicas@example.com'");
    expect(rows.rows).toEqual([{ id: (winner as { id: string }).id }]);
  });

  it('concurrent updatePerson with one expectedVersion on both replicas: exactly one wins, version + 1', async () => {
    const email = 'versioned@example.com';
    const created = await replicas[0].gql(CREATE, { input: { email, team: 'Start' } });
    expect(created.body.errors).toBeUndefined();

    for (let round = 0; round < 5; round += 1) {
      const before = (await replicas[round % 2].gql(GET, { email })).body.data?.person as { version: number };
      expect(before.version).toBe(1 + round);

      const responses = await spread(20, (replica, i) =>
        replica.gql(UPDATE, { input: { email, team: `Round${round}-Writer${i}`, expectedVersion: before.version } }),
      );

      expect(responses.map((response) => response.status)).toEqual(Array(20).fill(200));
      expect(codesOf(responses)).toEqual(['OK', ...Array(19).fill('CONFLICT')].sort());
      const winner = responses.find((response) => !response.body.errors)?.body.data?.updatePerson as {
        team: string;
        version: number;
      };
      expect(winner.version).toBe(before.version + 1);
      for (const loser of responses.filter((response) => response.body.errors)) {
        expect(loser.body.errors?.[0].message).toBe(
          `Person ${email} is at version ${before.version + 1}, not ${before.version}`,
        );
      }
      // Both replicas and the table agree: the winner's write, applied once.
      for (const replica of replicas) {
        expect((await replica.gql(GET, { email })).body.data?.person).toEqual(winner);
      }
      const row = await direct.query('SELECT team, version FROM person WHERE email = $1', [email]);
      expect(row.rows).toEqual([{ team: winner.team, version: before.version + 1 }]);
    }
  });
});

describe.skipIf(!postgresTarget)('replicas starting at once on a fresh PostgreSQL database', () => {
  let database: TestDatabase;

  beforeAll(async () => {
    database = await (postgresTarget as NonNullable<typeof postgresTarget>).create();
  });

  afterAll(async () => {
    await database?.drop();
  });

  /**
   * Runs `test` on a fresh database while another connection holds the migration lock, as a
   * replica busy migrating would; `migrating` is that connection.
   */
  async function whileAnotherReplicaMigrates(test: (url: string, migrating: pg.Client) => Promise<void>) {
    const fresh = await (postgresTarget as NonNullable<typeof postgresTarget>).create();
    const migrating = new pg.Client({ connectionString: fresh.url });
    await migrating.connect();
    try {
      await migrating.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
      await test(fresh.url, migrating);
    } finally {
      await migrating.end();
      await fresh.drop();
    }
  }

  it('a replica waits for a migration longer than its statement and query timeouts, which then apply again', async () => {
    await whileAnotherReplicaMigrates(async (url, migrating) => {
      const opening = Database.open(url, { statementTimeoutMs: 100, queryTimeoutMs: 300 });
      await new Promise((resolve) => setTimeout(resolve, 600));
      await migrating.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
      const opened = await opening;
      try {
        // The timeout is back on the connections once the migrations are done.
        await expect(opened.sql.all('SELECT pg_sleep(0.5)')).rejects.toThrow(/statement timeout/);
      } finally {
        await opened.close();
      }
    });
  });

  it("SIGTERM while a replica waits for another one's migrations: it stops at once, exit 0", async () => {
    await whileAnotherReplicaMigrates(async (url, migrating) => {
      const main = spawnMain({ DATABASE_URL: url, PORT: '0', HOST: '127.0.0.1' });
      // It is waiting for the lock: its migration connection shows up in pg_stat_activity.
      const waiting = async () =>
        (
          await migrating.query(
            "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
          )
        ).rowCount;
      await expect.poll(waiting, { timeout: 10_000 }).toBe(1);
      main.child.kill('SIGTERM');
      expect(await main.exited).toBe(0);
      expect(main.stderr()).toBe('people-graph stopped by SIGTERM before it had started\n');
    });
  });

  it("a replica held up by another's migrations logs that it waits, then the migrations it applied", async () => {
    await whileAnotherReplicaMigrates(async (url, migrating) => {
      const main = spawnMain({ DATABASE_URL: url, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info' });
      try {
        await main.waitForStdout(/"msg":"waiting for another process to finish migrating the database"/);
        expect(main.stdout()).not.toMatch(/people-graph listening/);
        await migrating.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
        await main.waitForStdout(/"msg":"people-graph listening"/);
        const applied = main
          .stdout()
          .split('\n')
          .filter((line) => line.includes('"msg":"applied database migrations"'))
          .map((line) => (JSON.parse(line) as { migrations: string[] }).migrations);
        expect(applied).toEqual([migrations.map((migration) => migration.name)]);
      } finally {
        expect(await stopMain(main)).toBe(0);
      }
    });
  });

  it('npm run migrate (dist/cli/migrate.js) says that it waits for the lock, then lists what it applied', async () => {
    await whileAnotherReplicaMigrates(async (url, migrating) => {
      const cli = spawn(process.execPath, ['dist/cli/migrate.js'], {
        cwd: path.resolve(__dirname, '../..'),
        env: { PATH: process.env.PATH ?? '', DATABASE_URL: url },
      });
      let stdout = '';
      let stderr = '';
      cli.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
      cli.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
      const exited = new Promise((resolve) => cli.on('exit', resolve));
      await expect
        .poll(() => stderr, { timeout: 10_000 })
        .toBe('Waiting for another process to finish migrating the database…\n');
      expect(stdout).toBe('');
      await migrating.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
      expect(await exited).toBe(0);
      expect(stdout).toBe(migrations.map((migration) => `Applied ${migration.name}\n`).join(''));
    });
  });

  it('all start: one of them migrates, the others wait for it and find nothing left to do', async () => {
    // As a deployment's replicas do: each opens the database (and migrates) at the same moment.
    const opened = await Promise.allSettled(Array.from({ length: 6 }, () => Database.open(database.url)));
    const failures = opened.flatMap((result) => (result.status === 'rejected' ? [String(result.reason)] : []));
    for (const result of opened) if (result.status === 'fulfilled') await result.value.close();
    expect(failures).toEqual([]);

    const direct = new pg.Client({ connectionString: database.url });
    await direct.connect();
    try {
      const { rows } = await direct.query<{ name: string }>('SELECT name FROM migrations ORDER BY id');
      expect(rows.map((row) => row.name)).toEqual(migrations.map((migration) => migration.name));
    } finally {
      await direct.end();
    }
  });
});

describe.skipIf(!postgresTarget)('DATABASE_POOL_SIZE', () => {
  it('a pool with every connection busy: 503 after the 3 s wait, logged as a busy pool, while /readyz stays 200', async () => {
    const database = await (postgresTarget as NonNullable<typeof postgresTarget>).create();
    // The token stays cached, so that authentication needs no connection while the pool is full.
    const server = await startServer(database.url, {
      DATABASE_POOL_SIZE: '1',
      OPERATION_TIMEOUT_MS: '10000',
      TOKEN_CACHE_TTL_MS: '300000',
    });
    const locker = new pg.Client({ connectionString: database.url });
    await locker.connect();
    // Outside the locker's transaction, which would see one cached snapshot of pg_stat_activity.
    const watcher = new pg.Client({ connectionString: database.url });
    await watcher.connect();
    try {
      expect((await server.gql('{ people(first: 1) { totalCount } }')).status).toBe(200);
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE person IN ACCESS EXCLUSIVE MODE');
      // The first holds the one connection, waiting on the lock; the other two wait for it.
      const held = server.gql('{ people(first: 1) { totalCount } }');
      const waitingOnLock = async () =>
        (
          await watcher.query(
            "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
          )
        ).rowCount;
      await expect.poll(waitingOnLock, { timeout: 5_000 }).toBe(1);
      const waiting = await Promise.all([
        server.gql('{ people(first: 1) { totalCount } }'),
        server.gql('{ people(first: 1) { totalCount } }'),
        // Meanwhile the database answers, and so the replica is ready.
        fetch(`${server.url}/readyz`).then(async (response) => ({
          status: response.status,
          body: await response.json(),
        })),
      ]);
      expect(waiting).toEqual([
        expect.objectContaining({
          status: 503,
          body: {
            data: null,
            errors: [
              expect.objectContaining({
                message: 'Service temporarily unavailable',
                extensions: { code: 'SERVICE_UNAVAILABLE' },
              }),
            ],
          },
        }),
        expect.objectContaining({ status: 503 }),
        { status: 200, body: { status: 'ready' } },
      ]);
      await locker.query('ROLLBACK');
      expect((await held).status).toBe(200);
      const busy = server.logs.filter(
        (line) => line.msg === 'no database connection came free in time: the pool is exhausted',
      );
      expect(busy).toHaveLength(2);
      expect(busy[0]).toMatchObject({ level: 40, dbError: { message: 'timeout exceeded when trying to connect' } });
      expect(server.logs.filter((line) => line.msg === 'database unavailable')).toEqual([]);
    } finally {
      await watcher.end();
      await locker.end();
      await server.close();
      await database.drop();
    }
  });

  it("bounds the replica's connections to PostgreSQL, however many requests wait", async () => {
    const database = await (postgresTarget as NonNullable<typeof postgresTarget>).create();
    const server = await startServer(database.url, { DATABASE_POOL_SIZE: '2', OPERATION_TIMEOUT_MS: '2000' });
    const locker = new pg.Client({ connectionString: database.url });
    await locker.connect();
    // Outside the locker's transaction, which would see one cached snapshot of pg_stat_activity.
    const watcher = new pg.Client({ connectionString: database.url });
    await watcher.connect();
    const serviceConnections = async () =>
      Number(
        (
          await watcher.query<{ count: string }>(
            `SELECT COUNT(*) AS count FROM pg_stat_activity
              WHERE datname = current_database() AND pid NOT IN (pg_backend_pid(), $1)`,
            [(locker as unknown as { processID: number }).processID],
          )
        ).rows[0].count,
      );
    try {
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE person IN ACCESS EXCLUSIVE MODE');
      const answers = Promise.all(Array.from({ length: 6 }, () => server.gql('{ people(first: 1) { totalCount } }')));
      // Two of the six wait on the lock inside the database; the other four wait for a connection.
      await expect.poll(serviceConnections, { timeout: 5_000 }).toBe(2);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(await serviceConnections()).toBe(2);
      await locker.query('ROLLBACK');
      expect((await answers).every((answer) => answer.status < 500 || answer.status === 503)).toBe(true);
    } finally {
      await watcher.end();
      await locker.end();
      await server.close();
      await database.drop();
    }
  });
});
