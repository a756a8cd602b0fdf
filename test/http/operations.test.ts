import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseTargets, sqliteTarget, type TestDatabase } from '../helpers/databases';
import { httpRequest } from '../helpers/http-request';
import { startServer, withServer, type TestServer } from '../helpers/server';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const CREATE = 'mutation Create($input: CreatePersonInput!) { createPerson(input: $input) { id email } }';

const json = (token: string) => ({ 'content-type': 'application/json', authorization: `Bearer ${token}` });
const errorBody = (code: string, message: string | RegExp) => ({
  errors: [{ message: typeof message === 'string' ? message : expect.stringMatching(message), extensions: { code } }],
});

describe('HTTP routes, malformed requests and request ids (sqlite)', () => {
  let database: TestDatabase;
  let server: TestServer;

  beforeAll(async () => {
    database = await sqliteTarget.create();
    server = await startServer(database.url);
  });

  afterAll(async () => {
    await server?.close();
    await database?.drop();
  });

  it('answers /healthz and /readyz without a token', async () => {
    for (const [path, body] of [
      ['/healthz', { status: 'ok' }],
      ['/readyz', { status: 'ready' }],
    ] as const) {
      const response = await fetch(`${server.url}${path}`);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toMatch(/^application\/json/);
      expect(await response.json()).toEqual(body);
    }
  });

  it('answers an unknown path with 404 and a coded JSON error', async () => {
    const response = await fetch(`${server.url}/nope?x=1`, {
      headers: { authorization: `Bearer ${server.adminToken}` },
    });
    expect(response.status).toBe(404);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await response.json()).toEqual(errorBody('NOT_FOUND', 'No route /nope; GraphQL is served at /graphql'));
  });

  it('refuses a body over 100 KB with 413 PAYLOAD_TOO_LARGE, with or without a content-length', async () => {
    const limit = 100 * 1024;
    const padded = (size: number) => {
      const shell = JSON.stringify({ query: '{ __typename }', variables: { pad: '' } });
      return shell.replace('"pad":""', `"pad":"${'x'.repeat(size - shell.length)}"`);
    };
    expect(Buffer.byteLength(padded(limit + 1))).toBe(limit + 1);

    for (const chunked of [false, true]) {
      const tooLarge = await httpRequest(server.graphqlUrl, {
        headers: json(server.adminToken),
        body: padded(limit + 1),
        chunked,
      });
      expect(tooLarge.status).toBe(413);
      expect(JSON.parse(tooLarge.text)).toEqual(errorBody('PAYLOAD_TOO_LARGE', /over 102400 bytes/));

      const atLimit = await httpRequest(server.graphqlUrl, {
        headers: json(server.adminToken),
        body: padded(limit),
        chunked,
      });
      expect(atLimit.status).toBe(200);
      expect(JSON.parse(atLimit.text)).toEqual({ data: { __typename: 'Query' } });
    }
  });

  it('answers a body many times the limit with a complete 413, streamed or declared, and keeps the connection', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const huge = Buffer.alloc(5 * 1024 * 1024, 'x');
      const small = JSON.stringify({ query: '{ __typename }' });
      for (const chunked of [true, false]) {
        // The service stops reading at the limit and answers while the client is still sending:
        // the rest must be read and dropped, or the client sees a reset instead of the 413.
        const tooLarge = await httpRequest(server.graphqlUrl, {
          headers: json(server.adminToken),
          body: huge,
          chunked,
          agent,
        });
        expect(tooLarge.status).toBe(413);
        expect(tooLarge.headers.connection).toBe('keep-alive');
        expect(JSON.parse(tooLarge.text)).toEqual(
          errorBody('PAYLOAD_TOO_LARGE', 'The request body is over 102400 bytes'),
        );

        const next = await httpRequest(server.graphqlUrl, { headers: json(server.adminToken), body: small, agent });
        expect(next.status).toBe(200);
        expect(JSON.parse(next.text)).toEqual({ data: { __typename: 'Query' } });
      }
    } finally {
      agent.destroy();
    }
  });

  it('answers malformed JSON with 400 BAD_REQUEST', async () => {
    const response = await httpRequest(server.graphqlUrl, {
      headers: json(server.adminToken),
      body: '{"query": "{ __typename }"',
    });
    expect(response.status).toBe(400);
    expect(JSON.parse(response.text)).toEqual(errorBody('BAD_REQUEST', 'The request body is not valid JSON'));
  });

  it('answers a body that is not valid UTF-8 with 400 BAD_REQUEST', async () => {
    const body = Buffer.concat([
      Buffer.from('{"query":"{ person(email: \\"'),
      Buffer.from([0xff, 0xfe, 0xc3]),
      Buffer.from('@example.com\\") { id } }"}'),
    ]);
    const response = await httpRequest(server.graphqlUrl, { headers: json(server.adminToken), body });
    expect(response.status).toBe(400);
    expect(JSON.parse(response.text)).toEqual(errorBody('BAD_REQUEST', 'The request body is not valid UTF-8'));
  });

  it('answers a GraphQL syntax error with 400 GRAPHQL_PARSE_FAILED', async () => {
    const response = await server.gql('{ people(first: 1) { nodes { email } }');
    expect(response.status).toBe(400);
    expect(response.body).toEqual({
      errors: [
        {
          message: 'Syntax Error: Expected Name, found <EOF>.',
          locations: [{ line: 1, column: 39 }],
          extensions: { code: 'GRAPHQL_PARSE_FAILED' },
        },
      ],
    });
  });

  it('answers an unknown field with 400 GRAPHQL_VALIDATION_FAILED', async () => {
    const response = await server.gql('{ people(first: 1) { nodes { email salary } } }');
    expect(response.status).toBe(400);
    expect(response.body).toEqual({
      errors: [
        {
          message: 'Cannot query field "salary" on type "Person".',
          locations: [{ line: 1, column: 36 }],
          extensions: { code: 'GRAPHQL_VALIDATION_FAILED' },
        },
      ],
    });
  });

  it('answers a variable of the wrong type with 400 BAD_USER_INPUT', async () => {
    const response = await server.gql('query Get($email: String!) { person(email: $email) { id } }', { email: 42 });
    expect(response.status).toBe(400);
    expect(response.body).toEqual({
      errors: [
        {
          message: 'Variable "$email" got invalid value 42; String cannot represent a non string value: 42',
          locations: [{ line: 1, column: 11 }],
          extensions: { code: 'BAD_USER_INPUT' },
        },
      ],
    });

    const page = await server.gql('query Page($first: Int) { people(first: $first) { totalCount } }', { first: 'ten' });
    expect(page.status).toBe(400);
    expect(page.body.errors?.map((error) => error.extensions?.code)).toEqual(['BAD_USER_INPUT']);
  });

  it('echoes a sent x-request-id and logs it as reqId; generates one when absent or unusable', async () => {
    const sent = await fetch(server.graphqlUrl, {
      method: 'POST',
      headers: { ...json(server.adminToken), 'x-request-id': 'trace-abc.123:4' },
      body: JSON.stringify({ query: '{ __typename }' }),
    });
    expect(sent.status).toBe(200);
    expect(sent.headers.get('x-request-id')).toBe('trace-abc.123:4');
    await sent.text();

    const generated = await fetch(`${server.url}/healthz`);
    const generatedId = generated.headers.get('x-request-id') ?? '';
    expect(generatedId).toMatch(UUID);
    await generated.text();

    // A token sent by mistake as the request id is replaced too: it must reach no log line.
    const tokenAsId = await fetch(`${server.url}/healthz`, { headers: { 'x-request-id': server.adminToken } });
    expect(tokenAsId.headers.get('x-request-id')).toMatch(UUID);
    await tokenAsId.text();
    expect(server.rawLogs.join('\n')).not.toContain(server.adminToken);

    // A value that is not a plain id (spaces, quotes, too long) is replaced, never echoed.
    const unusable = await fetch(`${server.url}/healthz`, { headers: { 'x-request-id': 'a "b" c'.repeat(20) } });
    const replacedId = unusable.headers.get('x-request-id') ?? '';
    expect(replacedId).toMatch(UUID);
    await unusable.text();

    const requestLine = (reqId: string) => server.logs.filter((line) => line.msg === 'request' && line.reqId === reqId);
    expect(requestLine('trace-abc.123:4')).toEqual([
      expect.objectContaining({ method: 'POST', path: '/graphql', status: 200, service: 'people-graph' }),
    ]);
    expect(requestLine(generatedId)).toEqual([expect.objectContaining({ path: '/healthz', status: 200 })]);
    expect(requestLine(replacedId)).toEqual([expect.objectContaining({ path: '/healthz', status: 200 })]);
    expect(generatedId).not.toBe(replacedId);
  });
});

describe('log lines of an authenticated request name its token (sqlite)', () => {
  it('by id and name on the access line; a refused request names none', async () => {
    await withServer({}, async (server) => {
      const name = 'reporting-job';
      const token = await server.createToken(['people:read'], { name });
      const [{ id }] = (await server.app.tokens.list()).filter((listed) => listed.name === name);
      const post = (headers: Record<string, string>, reqId: string) =>
        fetch(server.graphqlUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-request-id': reqId, ...headers },
          body: JSON.stringify({ query: '{ people(first: 1) { totalCount } }' }),
        }).then((response) => response.text());
      await post({ authorization: `Bearer ${token}` }, 'with-token');
      await post({}, 'without-token');
      const linesOf = (reqId: string) =>
        server.logs
          .filter((line) => line.reqId === reqId)
          .map(({ msg, tokenId, tokenName }) => ({ msg, tokenId, tokenName }));
      expect(linesOf('with-token')).toEqual([{ msg: 'request', tokenId: id, tokenName: name }]);
      expect(linesOf('without-token')).toEqual([{ msg: 'request', tokenId: undefined, tokenName: undefined }]);
    });
  });
});

describe('tokens never reach the logs (sqlite, LOG_LEVEL=trace)', () => {
  let database: TestDatabase;
  let server: TestServer;

  beforeAll(async () => {
    database = await sqliteTarget.create();
    server = await startServer(database.url, { LOG_LEVEL: 'trace' });
  });

  afterAll(async () => {
    await server?.close();
    await database?.drop();
  });

  it('logs no Authorization value: valid, unknown, malformed, expired, revoked or with a failing request', async () => {
    const expiredToken = await server.createToken(['people:read'], { expiresAt: new Date(Date.now() - 60_000) });
    const revokedToken = await server.createToken(['people:read'], { name: 'to-revoke' });
    await server.app.tokens.revoke('to-revoke');
    const readToken = await server.createToken(['people:read']);
    const secrets = [
      server.adminToken,
      readToken,
      expiredToken,
      revokedToken,
      `pgk_${'Z'.repeat(38)}`,
      'not-a-token-but-secret-1234',
    ];

    const statuses: number[] = [];
    for (const secret of secrets) {
      for (const query of ['{ people(first: 1) { totalCount } }', '{ broken', 'mutation { x }']) {
        const response = await fetch(server.graphqlUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${secret}` },
          body: JSON.stringify({ query }),
        });
        statuses.push(response.status);
        await response.text();
      }
      const write = await fetch(server.graphqlUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${secret}` },
        body: JSON.stringify({ query: CREATE, variables: { input: { email: 'not an email' } } }),
      });
      statuses.push(write.status);
      await write.text();
    }
    // The requests did reach the service and were logged, with a variety of outcomes.
    expect(new Set(statuses)).toEqual(new Set([200, 400, 401, 403]));
    expect(server.logs.filter((line) => line.msg === 'request').length).toBeGreaterThanOrEqual(secrets.length * 4);

    for (const line of server.rawLogs) {
      for (const secret of secrets) expect(line).not.toContain(secret);
      expect(line).not.toMatch(/pgk_[0-9A-Za-z]{10}/);
      expect(line.toLowerCase()).not.toContain('bearer');
    }
  });
});

/** Whatever a masked internal error must not show a client. */
const LEAKS = [
  /SQL/i,
  /SELECT/i,
  /sqlite/i,
  /postgres/i,
  /stack/i,
  /\bat \S+ \(/,
  /no such table/i,
  /does not exist/i,
  /relation/i,
  /"person_/i,
  /api_token/i,
  /QueryFailedError/,
  /node_modules/,
  /\.ts:\d+/,
  /\.js:\d+/,
];

function expectNoLeak(text: string): void {
  for (const leak of LEAKS) expect(text, `response body leaks ${leak}`).not.toMatch(leak);
}

async function rawGraphQL(server: TestServer, query: string, variables?: Record<string, unknown>) {
  const response = await fetch(server.graphqlUrl, {
    method: 'POST',
    headers: json(server.adminToken),
    body: JSON.stringify({ query, variables }),
  });
  return { status: response.status, requestId: response.headers.get('x-request-id'), text: await response.text() };
}

describe.each(databaseTargets)('unexpected internal failures on $kind', (target) => {
  let database: TestDatabase;
  let server: TestServer;

  beforeAll(async () => {
    database = await target.create();
    // Stack traces stay out of responses even in development. Tokens are looked up on every
    // request, so that taking the token table away fails authentication at once.
    server = await startServer(database.url, { NODE_ENV: 'development', TOKEN_CACHE_TTL_MS: '0' });
    await server.gql(CREATE, { input: { email: 'before@example.com' } });
    // `people` has run before the table goes away, `person` has not: both ways of failing are met.
    await server.gql('{ people(first: 5) { totalCount nodes { email } } }');
  });

  afterAll(async () => {
    await server?.close();
    await database?.drop();
  });

  it('masks a failing field as INTERNAL_SERVER_ERROR "Internal server error", logs the real error, recovers', async () => {
    const realError = target.kind === 'sqlite' ? /no such table: person/ : /relation "person" does not exist/;
    const internal = (path: string, line: number, column: number) => ({
      message: 'Internal server error',
      locations: [{ line, column }],
      path: [path],
      extensions: { code: 'INTERNAL_SERVER_ERROR' },
    });

    const cases = [
      {
        query: '{ person(email: "before@example.com") { id email } }',
        expected: { data: { person: null }, errors: [internal('person', 1, 3)] },
      },
      {
        query: '{ people(first: 5) { totalCount nodes { email } } }',
        expected: { data: null, errors: [internal('people', 1, 3)] },
      },
      {
        query: 'mutation { createPerson(input: { email: "after@example.com" }) { id } }',
        expected: { data: null, errors: [internal('createPerson', 1, 12)] },
      },
      {
        query: 'mutation { updatePerson(input: { email: "before@example.com", team: "T" }) { id } }',
        expected: { data: null, errors: [internal('updatePerson', 1, 12)] },
      },
    ];
    await server.app.database.dataSource.query('ALTER TABLE person RENAME TO person_moved_away');
    try {
      for (const { query, expected } of cases) {
        const logsBefore = server.logs.length;
        const response = await rawGraphQL(server, query);
        expect(response.status).toBe(200);
        expect(JSON.parse(response.text)).toEqual(expected);
        expectNoLeak(response.text);

        const logged = server.logs.slice(logsBefore).filter((line) => line.msg === 'unexpected error');
        expect(logged).toHaveLength(1);
        // The driver's own error, in full (node-sqlite3 errors carry no JS stack frames), with the
        // id the client was sent, so that a report quoting it finds this line.
        expect(response.requestId).toMatch(UUID);
        expect(logged[0]).toMatchObject({
          level: 50,
          reqId: response.requestId,
          err: { message: expect.stringMatching(realError) },
        });
      }
    } finally {
      await server.app.database.dataSource.query('ALTER TABLE person_moved_away RENAME TO person');
    }

    // With the table back, the same service answers normally again: no broken statement was kept.
    const healed = await server.gql('{ person(email: "before@example.com") { email } }');
    expect(healed.body).toEqual({ data: { person: { email: 'before@example.com' } } });
  });

  it('masks a failure while authenticating as a request-level HTTP 500 and logs the real error', async () => {
    await server.app.database.dataSource.query('ALTER TABLE api_token RENAME TO api_token_moved_away');
    try {
      const logsBefore = server.logs.length;
      const response = await rawGraphQL(server, '{ people(first: 1) { totalCount } }');
      expect(response.status).toBe(500);
      expect(JSON.parse(response.text)).toEqual({
        errors: [{ message: 'Internal server error', extensions: { code: 'INTERNAL_SERVER_ERROR' } }],
      });
      expectNoLeak(response.text);
      const logged = server.logs.slice(logsBefore).filter((line) => line.level === 50);
      expect(JSON.stringify(logged)).toMatch(/api_token/);
      expect(response.requestId).toMatch(UUID);
      expect(logged.map((line) => line.reqId)).toEqual(logged.map(() => response.requestId));
    } finally {
      await server.app.database.dataSource.query('ALTER TABLE api_token_moved_away RENAME TO api_token');
    }
    const healed = await server.gql('{ people(first: 1) { totalCount } }');
    expect(healed.body).toEqual({ data: { people: { totalCount: 1 } } });
  });
});

describe('a lowered BODY_LIMIT_BYTES (sqlite)', () => {
  let database: TestDatabase;
  let server: TestServer;

  beforeAll(async () => {
    database = await sqliteTarget.create();
    server = await startServer(database.url, { BODY_LIMIT_BYTES: '2048' });
  });

  afterAll(async () => {
    await server?.close();
    await database?.drop();
  });

  it('refuses a body just over the configured limit with 413 and accepts one within it', async () => {
    const body = (padding: number) =>
      JSON.stringify({ query: '{ __typename }', variables: { pad: 'y'.repeat(padding) } });
    const over = await httpRequest(server.graphqlUrl, { headers: json(server.adminToken), body: body(2048) });
    expect(over.status).toBe(413);
    expect(JSON.parse(over.text)).toEqual(errorBody('PAYLOAD_TOO_LARGE', 'The request body is over 2048 bytes'));

    const overChunked = await httpRequest(server.graphqlUrl, {
      headers: json(server.adminToken),
      body: body(4000),
      chunked: true,
    });
    expect(overChunked.status).toBe(413);
    expect(JSON.parse(overChunked.text)).toEqual(errorBody('PAYLOAD_TOO_LARGE', 'The request body is over 2048 bytes'));

    const within = await httpRequest(server.graphqlUrl, { headers: json(server.adminToken), body: body(1900) });
    expect(within.status).toBe(200);
    expect(JSON.parse(within.text)).toEqual({ data: { __typename: 'Query' } });
  });
});
