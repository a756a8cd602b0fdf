import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { sqliteTarget, type TestDatabase } from '../helpers/databases';
import { killMain, printedAdminToken, spawnMain, startMain, stopMain, type MainProcess } from '../helpers/main-process';
import { startServer } from '../helpers/server';
import { rawRequest } from '../robustness/raw-http';

const REQUESTS = 100;

interface Outcome {
  status: number;
  /** The response's Connection header. */
  connection: string | undefined;
  text: string;
}

/**
 * A GraphQL POST on its own connection that sends its headers and the first part of its body now
 * and the rest when `finish` is called. `response` settles with the answer or the socket error.
 */
function heldRequest(graphqlUrl: string, token: string, body: string, heldBytes: number) {
  const bytes = Buffer.from(body);
  // Keep-alive, as clients in front of a service are: the server decides when the connection ends.
  const agent = new http.Agent({ keepAlive: true });
  const request = http.request(graphqlUrl, {
    method: 'POST',
    agent,
    headers: {
      'content-type': 'application/json',
      'content-length': bytes.length,
      authorization: `Bearer ${token}`,
    },
  });
  const response = new Promise<Outcome>((resolve, reject) => {
    request.on('error', reject);
    request.on('response', (incoming) => {
      const chunks: Buffer[] = [];
      incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
      incoming.on('error', reject);
      incoming.on('end', () => {
        if (!incoming.complete) reject(new Error('response cut short'));
        else {
          resolve({
            status: incoming.statusCode ?? 0,
            connection: incoming.headers.connection,
            text: Buffer.concat(chunks).toString('utf8'),
          });
        }
      });
    });
  });
  // Observed by the test; this keeps an early failure from being reported as unhandled meanwhile.
  response.catch(() => undefined).finally(() => agent.destroy());
  const sent = new Promise<void>((resolve, reject) => {
    request.write(bytes.subarray(0, bytes.length - heldBytes), (error) => (error ? reject(error) : resolve()));
  });
  return { sent, response, finish: () => request.end(bytes.subarray(bytes.length - heldBytes)) };
}

/** The i-th of a mix of writes and reads. */
function requestBody(prefix: string, i: number): string {
  if (i % 2 === 0) {
    return JSON.stringify({
      query: 'mutation Create($input: CreatePersonInput!) { createPerson(input: $input) { email version } }',
      variables: { input: { email: `${prefix}${i}@example.com`, firstName: `First${i}` } },
    });
  }
  return JSON.stringify({
    query: 'query Page($search: String!) { people(first: 10, filter: { search: $search }) { nodes { email } } }',
    variables: { search: prefix },
  });
}

async function graphql(graphqlUrl: string, token: string, query: string, variables: Record<string, unknown> = {}) {
  const response = await fetch(graphqlUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

/**
 * Resolves with the error code of a connection attempt that fails, or throws when it is answered.
 * A connection made in the instant between the drain log line and the listening socket's close
 * is reset rather than refused; then it tries again, up to `attempts` times.
 */
async function connectionError(url: string, attempts = 20): Promise<string> {
  let code = '';
  for (let attempt = 0; attempt < attempts && code !== 'ECONNREFUSED'; attempt += 1) code = await connectOnce(url);
  return code;
}

function connectOnce(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const request = http.get(url, { agent: false }, (response) => {
      response.resume();
      reject(new Error(`a new connection was answered with ${response.statusCode} while draining`));
    });
    request.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  });
}

function expectAllAnswered(outcomes: PromiseSettledResult<Outcome>[], prefix: string): void {
  const failures = outcomes.flatMap((outcome, i) =>
    outcome.status === 'rejected' ? [`request ${i}: ${String(outcome.reason)}`] : [],
  );
  expect(failures).toEqual([]);
  for (const [i, outcome] of outcomes.entries()) {
    const { status, text } = (outcome as PromiseFulfilledResult<Outcome>).value;
    expect(status, text).toBe(200);
    const body = JSON.parse(text) as { data?: Record<string, unknown>; errors?: unknown };
    expect(body.errors).toBeUndefined();
    if (i % 2 === 0) {
      expect(body).toEqual({ data: { createPerson: { email: `${prefix}${i}@example.com`, version: 1 } } });
    } else {
      expect(body.data?.people).toEqual({ nodes: expect.any(Array) });
    }
  }
}

describe('SIGTERM drains in-flight requests (node dist/main.js on sqlite)', () => {
  let database: TestDatabase | undefined;
  const started: MainProcess[] = [];

  afterEach(async () => {
    for (const main of started.splice(0)) await killMain(main);
    await database?.drop();
    database = undefined;
  });

  async function countStored(databaseUrl: string, token: string, prefix: string): Promise<number> {
    const restarted = await startMain({ DATABASE_URL: databaseUrl });
    started.push(restarted.main);
    const count = await graphql(
      restarted.graphqlUrl,
      token,
      'query Count($search: String!) { people(filter: { search: $search }) { totalCount } }',
      { search: prefix },
    );
    expect(await stopMain(restarted.main)).toBe(0);
    return (count.body as { data: { people: { totalCount: number } } }).data.people.totalCount;
  }

  it('answers all 100 requests that were mid-upload at SIGTERM, refuses new connections, exits 0', async () => {
    database = await sqliteTarget.create();
    const { main, url, graphqlUrl } = await startMain({ DATABASE_URL: database.url });
    started.push(main);
    const token = await printedAdminToken(main);

    const requests = Array.from({ length: REQUESTS }, (_, i) =>
      heldRequest(graphqlUrl, token, requestBody('held', i), 10),
    );
    await Promise.all(requests.map((request) => request.sent));
    // Connections are accepted in order: once a later one is answered, the held ones were accepted.
    const probe = await graphql(graphqlUrl, token, '{ people(first: 1) { totalCount } }');
    expect(probe.status).toBe(200);

    main.child.kill('SIGTERM');
    await main.waitForStdout(/"signal":"SIGTERM","msg":"draining in-flight requests, then exiting"/);
    expect(await connectionError(`${url}/healthz`)).toBe('ECONNREFUSED');
    expect(main.child.exitCode).toBeNull();

    for (const request of requests) request.finish();
    const outcomes = await Promise.allSettled(requests.map((request) => request.response));
    expectAllAnswered(outcomes, 'held');
    // Read before SIGTERM, answered after: each connection closes after its answer.
    const connections = outcomes.map((outcome) => outcome.status === 'fulfilled' && outcome.value.connection);
    expect(connections).toEqual(connections.map(() => 'close'));
    expect(await main.exited).toBe(0);
    expect(main.stderr()).toBe('');

    // Every create that was answered was committed.
    expect(await countStored(database.url, token, 'held')).toBe(REQUESTS / 2);
  });

  it('answers all 100 requests being processed when SIGTERM arrives and exits 0', async () => {
    database = await sqliteTarget.create();
    const { main, graphqlUrl } = await startMain({ DATABASE_URL: database.url });
    started.push(main);
    const token = await printedAdminToken(main);

    const requests = Array.from({ length: REQUESTS }, (_, i) =>
      heldRequest(graphqlUrl, token, requestBody('busy', i), 1),
    );
    await Promise.all(requests.map((request) => request.sent));
    const probe = await graphql(graphqlUrl, token, '{ people(first: 1) { totalCount } }');
    expect(probe.status).toBe(200);

    for (const request of requests) request.finish();
    main.child.kill('SIGTERM');
    const outcomes = await Promise.allSettled(requests.map((request) => request.response));
    expectAllAnswered(outcomes, 'busy');
    expect(await main.exited).toBe(0);
    expect(main.stdout()).toContain('"msg":"draining in-flight requests, then exiting"');
    expect(main.stderr()).toBe('');

    expect(await countStored(database.url, token, 'busy')).toBe(REQUESTS / 2);
  });
});

describe('SIGTERM to npm start (sqlite)', () => {
  let database: TestDatabase | undefined;
  let main: MainProcess | undefined;

  afterEach(async () => {
    await killMain(main);
    await database?.drop();
  });

  it('reaches the service itself, which drains and exits: nothing is left serving', async () => {
    database = await sqliteTarget.create();
    // dist/ is built by the test setup; --ignore-scripts skips prestart's rebuild.
    const started = await startMain({ DATABASE_URL: database.url }, ['npm', 'start', '--ignore-scripts']);
    main = started.main;
    expect((await fetch(`${started.url}/healthz`)).status).toBe(200);

    main.child.kill('SIGTERM');
    await main.waitForStdout(/"signal":"SIGTERM","msg":"draining in-flight requests, then exiting"/);
    expect(await main.exited).toBe(0);
    expect(await connectionError(`${started.url}/healthz`)).toBe('ECONNREFUSED');
  });
});

describe('shutdown and keep-alive connections (sqlite)', () => {
  it('a request sent on an idle keep-alive connection just as shutdown starts is answered, not reset', async () => {
    const database = await sqliteTarget.create();
    const server = await startServer(database.url);
    const socket = net.connect(Number(new URL(server.url).port), '127.0.0.1');
    try {
      const received: Buffer[] = [];
      socket.on('data', (chunk: Buffer) => received.push(chunk));
      const ended = new Promise<string>((resolve) => {
        socket.on('close', () => resolve('closed'));
        socket.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
      });
      const request = rawRequest({
        headers: [
          ['Host', 'localhost'],
          ['Content-Type', 'application/json'],
          ['Authorization', `Bearer ${server.adminToken}`],
        ],
        body: '{"query":"{ __typename }"}',
      });
      socket.write(request);
      // The first answer comes back, and the connection stays open (keep-alive): it is idle now.
      await expect
        .poll(() => Buffer.concat(received).toString('latin1'))
        .toMatch(/\{"data":\{"__typename":"Query"\}\}\n?$/);
      received.length = 0;

      // Shutdown starts, and the client's next request is already on its way.
      const closing = server.close();
      socket.write(request);

      expect(await ended).toBe('closed');
      const answer = Buffer.concat(received).toString('latin1');
      expect(answer).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
      expect(answer).toMatch(/\r\nConnection: close\r\n/i);
      expect(answer).toMatch(/\{"data":\{"__typename":"Query"\}\}\n?$/);
      await closing;
    } finally {
      socket.destroy();
      await database.drop();
    }
  });
});

describe('SIGTERM before the service has started (node dist/main.js on sqlite)', () => {
  it('while its modules are still loading: stops with exit 0 and one line on stderr', async () => {
    const database = await sqliteTarget.create();
    const main = spawnMain({ DATABASE_URL: database.url, PORT: '0', HOST: '127.0.0.1' }, [
      process.execPath,
      '--require',
      path.resolve(__dirname, '../fixtures/sigterm-while-loading.cjs'),
      path.resolve(__dirname, '../../dist/main.js'),
    ]);
    try {
      expect(await main.exited).toBe(0);
      expect(main.stderr()).toBe('people-graph stopped by SIGTERM before it had started\n');
      expect(main.stdout()).toBe('');
    } finally {
      await killMain(main);
      await database.drop();
    }
  });
});
