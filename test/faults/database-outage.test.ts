import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresTarget, type TestDatabase } from '../helpers/databases';
import { printedAdminToken, startMain, stopMain, type MainProcess, killMain } from '../helpers/main-process';
import type { Environment } from '../../src/config';
import { startServer, type TestServer } from '../helpers/server';
import { startTcpProxy, type ProxyMode, type TcpProxy } from '../helpers/tcp-proxy';

if (!postgresTarget) {
  console.warn('TEST_DATABASE_URL is not set: the database outage tests (PostgreSQL behind a TCP proxy) are SKIPPED.');
}

/** Short, so that a blackholed database is answered within seconds (connect timeout is 3 s). */
const QUERY_TIMEOUT_MS = 2_000;
/** A safety net against a hanging request, not a timing assertion. */
const SAFETY_NET_MS = 30_000;

const PAGE = '{ people(first: 5) { totalCount nodes { email } } }';
const CREATE = 'mutation Create($input: CreatePersonInput!) { createPerson(input: $input) { email version } }';
const GET = 'query Get($email: String!) { person(email: $email) { email } }';

interface Answer {
  status: number;
  body: { data?: Record<string, unknown> | null; errors?: { message: string; extensions?: { code?: string } }[] };
}

describe.skipIf(!postgresTarget)('database outage: PostgreSQL behind a TCP proxy that is cut', () => {
  let database: TestDatabase;
  let proxy: TcpProxy;
  let main: MainProcess;
  let url: string;
  let token: string;
  let created = 0;

  beforeAll(async () => {
    database = await (postgresTarget as NonNullable<typeof postgresTarget>).create();
    const direct = new URL(database.url);
    proxy = await startTcpProxy({ host: direct.hostname, port: Number(direct.port || 5432) });
    const proxied = new URL(database.url);
    proxied.hostname = '127.0.0.1';
    proxied.port = String(proxy.port);
    const started = await startMain({
      DATABASE_URL: proxied.toString(),
      DATABASE_QUERY_TIMEOUT_MS: String(QUERY_TIMEOUT_MS),
    });
    main = started.main;
    url = started.url;
    token = await printedAdminToken(main);
    expect((await gql(CREATE, { input: { email: 'known@example.com' } })).body.errors).toBeUndefined();
    created = 1;
  });

  afterAll(async () => {
    await killMain(main);
    await proxy?.close();
    await database?.drop();
  });

  async function request(path: string, init: RequestInit = {}): Promise<Answer> {
    const response = await fetch(`${url}${path}`, { ...init, signal: AbortSignal.timeout(SAFETY_NET_MS) });
    return { status: response.status, body: (await response.json()) as Answer['body'] };
  }

  function gql(query: string, variables: Record<string, unknown> = {}): Promise<Answer> {
    return request('/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query, variables }),
    });
  }

  /** A mix of reads and writes, all at once. */
  function burst(label: string): Promise<Answer[]> {
    return Promise.all([
      ...Array.from({ length: 8 }, () => gql(PAGE)),
      ...Array.from({ length: 4 }, () => gql(GET, { email: 'Known@Example.com' })),
      ...Array.from({ length: 8 }, (_, i) => gql(CREATE, { input: { email: `${label}-${i}@example.com` } })),
    ]);
  }

  async function expectHealthy(label: string): Promise<void> {
    expect((await request('/readyz')).status).toBe(200);
    const answers = await burst(label);
    for (const answer of answers) {
      expect(answer.status, JSON.stringify(answer.body)).toBe(200);
      expect(answer.body.errors, JSON.stringify(answer.body)).toBeUndefined();
    }
    created += 8;
    const count = await gql(PAGE);
    expect((count.body.data?.people as { totalCount: number }).totalCount).toBe(created);
  }

  async function expectUnavailable(label: string): Promise<void> {
    const answers = await burst(label);
    for (const answer of answers) {
      // Refused while authenticating or by a non-null field (no data at all): 503. With the token
      // cached, `person` (nullable) leaves data, which goes out with 200 and the field error.
      expect(answer.status, JSON.stringify(answer.body)).toBe(answer.body.data ? 200 : 503);
      expect(answer.body.errors).toEqual([expect.objectContaining({ extensions: { code: 'SERVICE_UNAVAILABLE' } })]);
      expect(Object.values(answer.body.data ?? {})).toEqual(Object.values(answer.body.data ?? {}).map(() => null));
      expect(answer.body.errors?.[0].message).toBe('Service temporarily unavailable');
    }
    expect(await request('/readyz')).toEqual({
      status: 503,
      body: { errors: [{ message: 'Database unavailable', extensions: { code: 'SERVICE_UNAVAILABLE' } }] },
    });
    expect(await request('/healthz')).toEqual({ status: 200, body: { status: 'ok' } });
    expect(main.child.exitCode).toBeNull();
  }

  /** Waits until /readyz answers 200 again; the safety net fails the test if it never does. */
  async function readyAgain(): Promise<number> {
    const deadline = Date.now() + SAFETY_NET_MS;
    for (let attempt = 1; ; attempt += 1) {
      if ((await request('/readyz')).status === 200) return attempt;
      if (Date.now() > deadline) throw new Error('safety net: /readyz never became 200 after the database returned');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /**
   * Creates that are inside their transactions, on connections the service has checked out of its
   * pool, when the cut comes: a transaction outside the service holds their emails' unique-index
   * entries, so each INSERT waits on it. Resolves once all of them are waiting.
   */
  async function blockedCreates(label: string, count: number) {
    const holder = new pg.Client({ connectionString: database.url });
    const monitor = new pg.Client({ connectionString: database.url });
    // When a failed test drops the database under them, that must not be an uncaught error too.
    holder.on('error', () => undefined);
    monitor.on('error', () => undefined);
    await Promise.all([holder.connect(), monitor.connect()]);
    const emails = Array.from({ length: count }, (_, i) => `${label}-${i}@example.com`);
    await holder.query('BEGIN');
    for (const email of emails) {
      await holder.query(
        "INSERT INTO person (id, email, created_at, updated_at, version) VALUES (gen_random_uuid()::text, $1, '', '', 1)",
        [email],
      );
    }
    const answers = emails.map((email) => gql(CREATE, { input: { email } }));
    const deadline = Date.now() + SAFETY_NET_MS;
    for (;;) {
      const { rows } = await monitor.query<{ waiting: number }>(
        "SELECT count(*)::int AS waiting FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
      );
      if (rows[0].waiting >= count) break;
      if (Date.now() > deadline) throw new Error('safety net: the creates never reached their INSERT');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await monitor.end();
    return {
      emails,
      answers: Promise.all(answers),
      /** Ends the outside transaction without committing anything. */
      release: async () => {
        await holder.query('ROLLBACK');
        await holder.end();
      },
    };
  }

  it.each<ProxyMode>(['reset', 'blackhole'])(
    'with the proxy in %s mode: 503 SERVICE_UNAVAILABLE, /readyz 503, /healthz 200; recovers when it is restored',
    async (mode) => {
      const pid = main.child.pid;
      // Healthy, with a pool of open connections that the cut will break.
      await expectHealthy(`before-${mode}`);

      const blocked = await blockedCreates(`blocked-${mode}`, 4);
      proxy.setMode(mode);
      // The writes caught mid-transaction fail cleanly with 503, and the process survives them.
      for (const answer of await blocked.answers) {
        expect(answer.status, JSON.stringify(answer.body)).toBe(503);
        expect(answer.body.errors?.[0].extensions?.code).toBe('SERVICE_UNAVAILABLE');
      }
      await blocked.release();
      await expectUnavailable(`during-${mode}`);
      // And again: the pool holds no half-dead connection that would answer differently.
      await expectUnavailable(`still-${mode}`);

      proxy.setMode('up');
      await readyAgain();
      await expectHealthy(`after-${mode}`);
      // None of the writes answered 503 committed anything.
      for (const email of blocked.emails) {
        expect((await gql(GET, { email })).body.errors?.[0].extensions?.code).toBe('NOT_FOUND');
      }
      // The same process throughout: recovery needed no restart.
      expect(main.child.pid).toBe(pid);
      expect(main.child.exitCode).toBeNull();
    },
    60_000, // a safety net: the blackhole alone waits out connect and query timeouts several times
  );

  it('never crashed, logged the outage, and still stops cleanly', async () => {
    const outageLines = main
      .stdout()
      .split('\n')
      .filter((line) => line.includes('"msg":"database unavailable"'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(outageLines.length).toBeGreaterThan(0);
    // One short line per failed request, with its request id: the driver's reason, no stack trace.
    for (const line of outageLines) {
      expect(line).toMatchObject({ level: 50, reqId: expect.any(String), dbError: { message: expect.any(String) } });
      expect(JSON.stringify(line)).not.toMatch(/stack|\n\s+at /);
    }
    expect(main.stderr()).toBe('');
    expect(await stopMain(main)).toBe(0);
  });
});

/** A server on a fresh PostgreSQL database that it reaches through a TCP proxy the test can cut. */
async function serverBehindProxy(environment: Environment = {}) {
  const database = await (postgresTarget as NonNullable<typeof postgresTarget>).create();
  const direct = new URL(database.url);
  const proxy = await startTcpProxy({ host: direct.hostname, port: Number(direct.port || 5432) });
  const proxied = new URL(database.url);
  proxied.hostname = '127.0.0.1';
  proxied.port = String(proxy.port);
  const server = await startServer(proxied.toString(), environment);
  const close = async () => {
    await server.close();
    await proxy.close();
    await database.drop();
  };
  return { server, proxy, close };
}

describe.skipIf(!postgresTarget)('the status of an answer to an operation cut off by an outage', () => {
  it('503 when the outage left no data; 200 with the field error when it left some', async () => {
    // The token stays cached through the outage, so that the operations reach their fields.
    const { server, proxy, close } = await serverBehindProxy({ TOKEN_CACHE_TTL_MS: '300000' });
    try {
      expect((await server.gql('{ people(first: 1) { totalCount } }')).status).toBe(200);
      proxy.setMode('reset');
      const unavailable = (path: string, column: number) => ({
        message: 'Service temporarily unavailable',
        locations: [{ line: 1, column }],
        path: [path],
        extensions: { code: 'SERVICE_UNAVAILABLE' },
      });

      // `person` is nullable: the rest of the data goes out, with 200 (GraphQL over HTTP).
      const partial = await server.gql('{ kind: __typename person(email: "a@example.com") { email } }');
      expect(partial).toMatchObject({
        status: 200,
        body: { data: { kind: 'Query', person: null }, errors: [unavailable('person', 20)] },
      });
      // `people` is not: no data is left, and the whole answer is 503.
      const none = await server.gql('{ people(first: 1) { totalCount } }');
      expect(none).toMatchObject({ status: 503, body: { data: null, errors: [unavailable('people', 3)] } });
    } finally {
      await close();
    }
  });
});

describe.skipIf(!postgresTarget)('/readyz across a short outage', () => {
  it('is 200 on the first probe once the database is back, though its connection broke meanwhile', async () => {
    const { server, proxy, close } = await serverBehindProxy();
    const readyz = async () => (await fetch(`${server.url}/readyz`)).status;
    try {
      expect(await readyz()).toBe(200);
      // The connection /readyz keeps is cut while idle, and the database is back before the next probe.
      proxy.setMode('reset');
      await new Promise((resolve) => setTimeout(resolve, 200));
      proxy.setMode('up');
      expect(await readyz()).toBe(200);
      expect(server.logs.filter((line) => line.msg === 'readiness check failed')).toEqual([]);
    } finally {
      await close();
    }
  });
});

describe.skipIf(!postgresTarget)('a PostgreSQL that takes no writes (a standby, or a demoted primary)', () => {
  it('answers writes 503 SERVICE_UNAVAILABLE, not 500, and reads as usual', async () => {
    const database = await (postgresTarget as NonNullable<typeof postgresTarget>).create();
    let server: TestServer | undefined;
    try {
      server = await startServer(database.url);
      // From now on every session is read-only, as on a hot standby: the service's current
      // connections are ended, so that it reconnects to a database that takes no writes.
      const admin = new pg.Client({ connectionString: database.url });
      await admin.connect();
      await admin.query(
        `ALTER DATABASE "${new URL(database.url).pathname.slice(1)}" SET default_transaction_read_only = on`,
      );
      await admin.query(
        'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()',
      );
      await admin.end();
      // The ended connections fail once, as any dropped connection does: wait until reads work.
      await expect.poll(async () => (await (server as TestServer).gql(PAGE)).status).toBe(200);

      const write = await server.gql(CREATE, { input: { email: 'standby@example.com' } });
      expect(write.status).toBe(503);
      expect(write.body).toEqual({
        data: null,
        errors: [
          {
            message: 'Service temporarily unavailable',
            locations: [{ line: 1, column: 47 }],
            path: ['createPerson'],
            extensions: { code: 'SERVICE_UNAVAILABLE' },
          },
        ],
      });
      const read = await server.gql(PAGE);
      expect(read.status).toBe(200);
      expect(read.body).toEqual({ data: { people: { totalCount: 0, nodes: [] } } });
    } finally {
      await server?.close();
      await database.drop();
    }
  });
});
