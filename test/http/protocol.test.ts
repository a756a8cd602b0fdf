import { createHash } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sqliteTarget, type TestDatabase } from '../helpers/databases';
import { httpRequest } from '../helpers/http-request';
import { startServer, withServer, type TestServer } from '../helpers/server';
import { rawRequest, sendRaw, statusesOf } from '../robustness/raw-http';

/**
 * The HTTP protocol of /graphql: methods, content types, batching, mutations over GET and CSRF
 * prevention. Every refusal is a coded JSON error with a 4xx status, never a 500.
 */

const coded = (code: string, message: string) => ({ errors: [{ message, extensions: { code } }] });

const CSRF_MESSAGE =
  "This operation has been blocked as a potential Cross-Site Request Forgery (CSRF). Please either specify a 'content-type' " +
  'header (with a type that is not one of application/x-www-form-urlencoded, multipart/form-data, text/plain) or provide a ' +
  'non-empty value for one of the following headers: x-apollo-operation-name, apollo-require-preflight\n';

describe('the /graphql protocol (sqlite)', () => {
  let database: TestDatabase;
  let server: TestServer;
  let auth: { authorization: string };

  beforeAll(async () => {
    database = await sqliteTarget.create();
    server = await startServer(database.url);
    auth = { authorization: `Bearer ${server.adminToken}` };
  });

  afterAll(async () => {
    await server?.close();
    await database?.drop();
  });

  const getUrl = (query: string, variables?: Record<string, unknown>) =>
    `${server.graphqlUrl}?query=${encodeURIComponent(query)}` +
    (variables ? `&variables=${encodeURIComponent(JSON.stringify(variables))}` : '');

  it('refuses a batched request (a JSON array) with 400, before authentication', async () => {
    const batch = JSON.stringify([{ query: '{ __typename }' }, { query: '{ people(first: 1) { totalCount } }' }]);
    for (const headers of [auth, {}]) {
      const response = await httpRequest(server.graphqlUrl, {
        headers: { 'content-type': 'application/json', ...headers },
        body: batch,
      });
      expect(response.status).toBe(400);
      expect(response.headers['content-type']).toBe('application/json; charset=utf-8');
      expect(JSON.parse(response.text)).toEqual(
        coded('BAD_REQUEST', 'Batched requests (a JSON array) are not supported: send one operation per request'),
      );
    }
  });

  it("marks GET answers Cache-Control: no-store, so no cache (the browser's included) keeps a token's data", async () => {
    const query = '{ people(first: 1) { totalCount } }';
    const get = (headers: Record<string, string>) => httpRequest(getUrl(query), { method: 'GET', headers });
    const answers = [
      // data, a 401 without a token, a CSRF refusal, and HEAD
      await get({ ...auth, 'apollo-require-preflight': 'true' }),
      await get({ 'apollo-require-preflight': 'true' }),
      await get(auth),
      await httpRequest(getUrl(query), { method: 'HEAD', headers: { ...auth, 'apollo-require-preflight': 'true' } }),
    ];
    expect(answers.map((answer) => [answer.status, answer.headers['cache-control']])).toEqual([
      [200, 'no-store'],
      [401, 'no-store'],
      [400, 'no-store'],
      [200, 'no-store'],
    ]);
    // A POST's answer is never stored without explicit freshness (RFC 9111), and gets none.
    const posted = await httpRequest(server.graphqlUrl, {
      headers: { 'content-type': 'application/json', ...auth },
      body: JSON.stringify({ query }),
    });
    expect([posted.status, posted.headers['cache-control'], posted.headers.expires]).toEqual([
      200,
      undefined,
      undefined,
    ]);
  });

  it('answers a mutation over GET with 405 and Allow: POST, and does not run it', async () => {
    const mutation = 'mutation { createPerson(input: { email: "over-get@example.com" }) { id } }';
    const response = await httpRequest(getUrl(mutation), {
      method: 'GET',
      headers: { ...auth, 'apollo-require-preflight': 'true' },
    });
    expect(response.status).toBe(405);
    expect(response.headers.allow).toBe('POST');
    expect(JSON.parse(response.text)).toEqual(
      coded('BAD_REQUEST', 'GET requests only support query operations, not mutation operations'),
    );
    const lookup = await server.gql('{ person(email: "over-get@example.com") { id } }');
    expect(lookup.body.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
  });

  it('CSRF prevention: a GET without a preflight header or JSON content type is refused with 400', async () => {
    const query = '{ people(first: 1) { totalCount } }';
    const plain = await httpRequest(getUrl(query), { method: 'GET', headers: auth });
    expect(plain.status).toBe(400);
    expect(JSON.parse(plain.text)).toEqual(coded('BAD_REQUEST', CSRF_MESSAGE));

    // A simple content type is no excuse either.
    const simple = await httpRequest(getUrl(query), {
      method: 'GET',
      headers: { ...auth, 'content-type': 'text/plain' },
    });
    expect(simple.status).toBe(400);
    expect(JSON.parse(simple.text)).toEqual(coded('BAD_REQUEST', CSRF_MESSAGE));

    // Either header that a browser cannot send cross-site without a preflight lets it through.
    for (const header of ['apollo-require-preflight', 'x-apollo-operation-name']) {
      const allowed = await httpRequest(getUrl(query), { method: 'GET', headers: { ...auth, [header]: 'yes' } });
      expect(allowed.status).toBe(200);
      expect(JSON.parse(allowed.text)).toEqual({ data: { people: { totalCount: 0 } } });
    }
    // So does a JSON content type, which is not a "simple" one.
    const json = await httpRequest(getUrl(query), {
      method: 'GET',
      headers: { ...auth, 'content-type': 'application/json' },
    });
    expect(json.status).toBe(200);

    // A GET with a preflight header but a content type other than JSON: Apollo's 415.
    const wrongType = await httpRequest(getUrl(query), {
      method: 'GET',
      headers: { ...auth, 'apollo-require-preflight': 'true', 'content-type': 'text/plain' },
    });
    expect(wrongType.status).toBe(415);
    expect(JSON.parse(wrongType.text)).toEqual(
      coded('BAD_REQUEST', 'GET requests may not have a content-type header other than application/json.'),
    );
  });

  it('answers an unknown operationName, or none among several operations, with 400 BAD_REQUEST', async () => {
    const document = 'query A { __typename } query B { __typename }';
    const cases = [
      [{ query: document, operationName: 'C' }, 'Unknown operation named "C".'],
      [{ query: document }, 'Must provide operation name if query contains multiple operations.'],
    ] as const;
    for (const [request, message] of cases) {
      const response = await httpRequest(server.graphqlUrl, {
        headers: { ...auth, 'content-type': 'application/json' },
        body: JSON.stringify(request),
      });
      expect(response.status).toBe(400);
      expect(JSON.parse(response.text)).toEqual(coded('BAD_REQUEST', message));
    }
  });

  it('takes an empty operationName as none, over POST and GET (GraphQL over HTTP)', async () => {
    const single = 'query A { __typename }';
    const post = (operationName: string, query: string) =>
      httpRequest(server.graphqlUrl, {
        headers: { ...auth, 'content-type': 'application/json' },
        body: JSON.stringify({ query, operationName }),
      });
    const get = (query: string) =>
      httpRequest(`${getUrl(query)}&operationName=`, {
        method: 'GET',
        headers: { ...auth, 'apollo-require-preflight': 'true' },
      });
    for (const response of [await post('', single), await get(single)]) {
      expect({ status: response.status, body: JSON.parse(response.text) }).toEqual({
        status: 200,
        body: { data: { __typename: 'Query' } },
      });
    }
    // As with no name at all: a document of several operations still needs one.
    const several = 'query A { __typename } query B { __typename }';
    for (const response of [await post('', several), await get(several)]) {
      expect({ status: response.status, body: JSON.parse(response.text) }).toEqual({
        status: 400,
        body: coded('BAD_REQUEST', 'Must provide operation name if query contains multiple operations.'),
      });
    }
  });

  it('answers a POST that is not application/json, or compressed, with 415, never running it', async () => {
    const body = JSON.stringify({ query: 'mutation { createPerson(input: { email: "form@example.com" }) { id } }' });
    const cases: [string | undefined, string][] = [
      ['text/plain', 'Unsupported Content-Type "text/plain"'],
      ['text/plain;charset=UTF-8', 'Unsupported Content-Type "text/plain;charset=UTF-8"'],
      ['multipart/form-data; boundary=xyz', 'Unsupported Content-Type "multipart/form-data; boundary=xyz"'],
      ['application/x-www-form-urlencoded', 'Unsupported Content-Type "application/x-www-form-urlencoded"'],
      ['application/xml', 'Unsupported Content-Type "application/xml"'],
      ['application/jsonp', 'Unsupported Content-Type "application/jsonp"'],
      [undefined, 'No Content-Type'],
    ];
    for (const [contentType, problem] of cases) {
      for (const preflight of [{}, { 'apollo-require-preflight': 'true' }] as Record<string, string>[]) {
        const headers: Record<string, string> = { ...auth, ...preflight };
        if (contentType) headers['content-type'] = contentType;
        const response = await httpRequest(server.graphqlUrl, { headers, body });
        expect(response.status, contentType).toBe(415);
        expect(response.headers['content-type']).toBe('application/json; charset=utf-8');
        expect(JSON.parse(response.text)).toEqual(
          coded('BAD_REQUEST', `${problem}: POST requests to /graphql must be application/json`),
        );
      }
    }
    const lookup = await server.gql('{ person(email: "form@example.com") { id } }');
    expect(lookup.body.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');

    // A compressed body is refused as such, not read as garbled JSON; `identity` is no encoding.
    for (const encoding of ['gzip', 'br', 'deflate, gzip']) {
      const response = await httpRequest(server.graphqlUrl, {
        headers: { ...auth, 'content-type': 'application/json', 'content-encoding': encoding },
        body,
      });
      expect(response.status, encoding).toBe(415);
      expect(JSON.parse(response.text)).toEqual(
        coded('BAD_REQUEST', `Unsupported Content-Encoding "${encoding}": send the request body uncompressed`),
      );
    }
    const identity = await httpRequest(server.graphqlUrl, {
      headers: { ...auth, 'content-type': 'application/json', 'content-encoding': 'Identity' },
      body: JSON.stringify({ query: '{ __typename }' }),
    });
    expect(JSON.parse(identity.text)).toEqual({ data: { __typename: 'Query' } });

    // A body in another charset is refused as such, not decoded as UTF-8.
    for (const [contentType, charset] of [
      ['application/json; charset=utf-16', 'utf-16'],
      ['application/json;charset="ISO-8859-1"', 'ISO-8859-1'],
      ['application/json; charset=', ''],
    ]) {
      const response = await httpRequest(server.graphqlUrl, {
        headers: { ...auth, 'content-type': contentType },
        body,
      });
      expect(response.status, contentType).toBe(415);
      expect(JSON.parse(response.text)).toEqual(
        coded('BAD_REQUEST', `Unsupported charset "${charset}": send the request body as UTF-8`),
      );
    }

    // JSON in any letter case and with a UTF-8 charset, however written, is fine.
    for (const contentType of [
      'application/json',
      'Application/JSON; charset=utf-8',
      'application/json;charset=UTF8',
      'application/json; charset="utf-8"',
    ]) {
      const response = await httpRequest(server.graphqlUrl, {
        headers: { ...auth, 'content-type': contentType },
        body: JSON.stringify({ query: '{ __typename }' }),
      });
      expect(response.status).toBe(200);
      expect(JSON.parse(response.text)).toEqual({ data: { __typename: 'Query' } });
    }
  });

  it('answers other methods with 405 and Allow, OPTIONS with 204 and Allow, on a reusable connection', async () => {
    // One keep-alive connection for all of them: a refused body is drained, not left on the socket.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (const method of ['PUT', 'DELETE', 'PATCH', 'TRACE']) {
        const response = await httpRequest(server.graphqlUrl, {
          method,
          agent,
          headers: { ...auth, 'content-type': 'application/json' },
          body: method === 'TRACE' ? undefined : JSON.stringify({ query: '{ __typename }' }),
        });
        expect(response.status, method).toBe(405);
        expect(response.headers.allow).toBe('GET, POST, HEAD, OPTIONS');
        expect(JSON.parse(response.text)).toEqual(
          coded('BAD_REQUEST', `Method ${method} is not allowed on /graphql: use POST (or GET for queries)`),
        );
      }
      const options = await httpRequest(server.graphqlUrl, { method: 'OPTIONS', agent });
      expect(options.status).toBe(204);
      expect(options.headers.allow).toBe('GET, POST, HEAD, OPTIONS');
      expect(options.text).toBe('');

      const after = await httpRequest(server.graphqlUrl, {
        agent,
        headers: { ...auth, 'content-type': 'application/json' },
        body: JSON.stringify({ query: '{ __typename }' }),
      });
      expect(after.status).toBe(200);
    } finally {
      agent.destroy();
    }
  });

  it('answers HEAD like GET, without a body', async () => {
    const response = await httpRequest(getUrl('{ people(first: 1) { totalCount } }'), {
      method: 'HEAD',
      headers: { ...auth, 'apollo-require-preflight': 'true' },
    });
    expect(response.status).toBe(200);
    expect(response.headers['content-type']).toMatch(/^application\/json/);
    expect(response.text).toBe('');

    const unprotected = await httpRequest(getUrl('{ __typename }'), { method: 'HEAD', headers: auth });
    expect(unprotected.status).toBe(400);
  });

  it.each([
    ['415 (text/plain)', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{}' }, 415],
    ['405 (PUT)', { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{}' }, 405],
    ['413', { method: 'POST', headers: { 'content-type': 'application/json' }, body: 'x'.repeat(200_000) }, 413],
    ['400 (a batch)', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '[]' }, 400],
    ['400 (not JSON)', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{' }, 400],
  ])(
    'answers its own refusals (%s) in the media type Apollo would: the one the client prefers',
    async (_name, request, status) => {
      const answer = (accept?: string) =>
        httpRequest(server.graphqlUrl, {
          ...request,
          headers: { ...auth, ...request.headers, ...(accept ? { accept } : {}) },
        });
      const typeFor = async (accept?: string) => {
        const response = await answer(accept);
        expect(response.status).toBe(status);
        expect(JSON.parse(response.text).errors[0].extensions.code).toEqual(expect.any(String));
        return response.headers['content-type'];
      };
      expect(await typeFor()).toBe('application/json; charset=utf-8');
      expect(await typeFor('application/json')).toBe('application/json; charset=utf-8');
      expect(await typeFor('application/graphql-response+json')).toBe(
        'application/graphql-response+json; charset=utf-8',
      );
      expect(await typeFor('application/graphql-response+json, application/json;q=0.9')).toBe(
        'application/graphql-response+json; charset=utf-8',
      );
      // What Apollo answers to the same Accept for an error it raises itself (a parse error).
      const apollo = await httpRequest(server.graphqlUrl, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json', accept: 'application/graphql-response+json' },
        body: JSON.stringify({ query: '{' }),
      });
      expect(apollo.headers['content-type']).toBe('application/graphql-response+json; charset=utf-8');
    },
  );

  it("answers Apollo's automatic persisted queries: an unknown hash, then the query with its hash, then the hash alone", async () => {
    const query = '{ people(first: 1) { totalCount } }';
    const sha256Hash = createHash('sha256').update(query).digest('hex');
    const persisted = { persistedQuery: { version: 1, sha256Hash } };
    const send = async (body: Record<string, unknown>) => {
      const response = await httpRequest(server.graphqlUrl, {
        headers: { ...auth, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      return { status: response.status, body: JSON.parse(response.text) as unknown };
    };
    expect(await send({ extensions: persisted })).toEqual({
      status: 200,
      body: coded('PERSISTED_QUERY_NOT_FOUND', 'PersistedQueryNotFound'),
    });
    const answer = { status: 200, body: { data: { people: { totalCount: expect.any(Number) } } } };
    expect(await send({ query, extensions: persisted })).toEqual(answer);
    expect(await send({ extensions: persisted })).toEqual(answer);
  });

  it('keeps the body limit: 413 PAYLOAD_TOO_LARGE, whatever the method or batching', async () => {
    const huge = JSON.stringify([{ query: '{ __typename }', variables: { pad: 'x'.repeat(200 * 1024) } }]);
    const response = await httpRequest(server.graphqlUrl, {
      headers: { ...auth, 'content-type': 'application/json' },
      body: huge,
    });
    expect(response.status).toBe(413);
    expect(JSON.parse(response.text)).toEqual(coded('PAYLOAD_TOO_LARGE', 'The request body is over 102400 bytes'));
  });
});

/** The status line, Content-Type and JSON body of a raw exchange's one answer. */
function answerOf(text: string) {
  const [head, body] = text.split('\r\n\r\n');
  const [statusLine, ...headerLines] = head.split('\r\n');
  const headers = Object.fromEntries(
    headerLines.map((line) => [
      line.slice(0, line.indexOf(':')).toLowerCase(),
      line.slice(line.indexOf(':') + 1).trim(),
    ]),
  );
  return { statusLine, contentType: headers['content-type'], connection: headers.connection, body: JSON.parse(body) };
}

describe('requests node:http refuses before the service sees them (sqlite)', () => {
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

  const port = () => Number(new URL(server.url).port);

  it('headers over the size limit: 431 with a coded JSON body, and the connection closed', async () => {
    const request = rawRequest({
      headers: [
        ['Host', 'localhost'],
        ['Content-Type', 'application/json'],
        ['X-Padding', 'x'.repeat(http.maxHeaderSize)],
      ],
      body: '{"query":"{ __typename }"}',
    });
    const exchange = await sendRaw(port(), request);
    expect(exchange.statuses).toEqual([431]);
    expect(answerOf(exchange.text)).toEqual({
      statusLine: 'HTTP/1.1 431 Request Header Fields Too Large',
      contentType: 'application/json; charset=utf-8',
      connection: 'close',
      body: coded('BAD_REQUEST', `The request headers are over ${http.maxHeaderSize} bytes`),
    });
    expect(exchange.ending).toBe('closed');
  });

  it('a request that is not HTTP: 400 with a coded JSON body; the service goes on answering', async () => {
    const exchange = await sendRaw(port(), Buffer.from('HELLO THERE\r\n\r\n', 'latin1'));
    expect(exchange.statuses).toEqual([400]);
    expect(answerOf(exchange.text)).toEqual({
      statusLine: 'HTTP/1.1 400 Bad Request',
      contentType: 'application/json; charset=utf-8',
      connection: 'close',
      body: coded('BAD_REQUEST', 'The request is not valid HTTP/1.1'),
    });
    expect((await server.gql('{ __typename }')).body).toEqual({ data: { __typename: 'Query' } });
  });

  it('a broken request pipelined behind one still running: one 400 and the connection closed, as Node does', async () => {
    const first = rawRequest({
      headers: [
        ['Host', 'localhost'],
        ['Content-Type', 'application/json'],
        ['Authorization', `Bearer ${server.adminToken}`],
      ],
      body: '{"query":"{ __typename }"}',
    });
    const exchange = await sendRaw(port(), Buffer.concat([first, Buffer.from('NOT HTTP\r\n\r\n', 'latin1')]));
    // The framing is lost: the first request, not yet answered, is dropped with the connection.
    expect(exchange.statuses).toEqual([400]);
    expect(answerOf(exchange.text).body).toEqual(coded('BAD_REQUEST', 'The request is not valid HTTP/1.1'));
    expect(exchange.ending).toBe('closed');
    expect((await server.gql('{ __typename }')).body).toEqual({ data: { __typename: 'Query' } });
  });
});

/**
 * Sends a POST to `target` that announces an endless body and streams it (64 KiB writes, waiting for the
 * socket to drain) until the server closes the connection or `limitBytes` are sent; then waits
 * for the server to answer or close, up to `waitMs`. Returns the bytes sent, what came back, and
 * whether the server closed the connection.
 */
function streamEndlessBody(
  port: number,
  target: string,
  headers: Record<string, string>,
  limitBytes: number,
  waitMs: number,
): Promise<{ sent: number; text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    const received: Buffer[] = [];
    let sent = 0;
    let closed = false;
    const chunk = Buffer.alloc(64 * 1024, 'x');
    const done = () => resolve({ sent, text: Buffer.concat(received).toString('latin1'), closed });
    socket.on('data', (data: Buffer) => received.push(data));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      closed = true;
      clearTimeout(wait);
      done();
    });
    let wait: NodeJS.Timeout | undefined;
    const pump = () => {
      while (!closed && sent < limitBytes) {
        sent += chunk.length;
        if (!socket.write(chunk)) return void socket.once('drain', pump);
      }
      if (!closed) wait ??= setTimeout(() => socket.destroy(), waitMs);
    };
    socket.on('connect', () => {
      const head = Object.entries({ Host: 'localhost', ...headers, 'Content-Length': '100000000000' });
      socket.write(rawRequest({ method: 'POST', target, headers: head, contentLength: false }));
      pump();
    });
  });
}

describe('an endless body, answered before it is read (sqlite)', () => {
  it.each([
    ['over the limit', '/graphql', 'application/json', 413],
    ['not JSON', '/graphql', 'text/plain', 415],
    ['to a path that is not served', '/nowhere', 'application/json', 404],
  ])(
    '%s (POST %s, %s): one answer, %i, and the connection closed after 1 MiB more rather than read to the end',
    async (_name, target, contentType, status) => {
      await withServer({ REQUEST_TIMEOUT_MS: '2000' }, async (server) => {
        const port = Number(new URL(server.url).port);
        const headers = { 'Content-Type': contentType, Authorization: `Bearer ${server.adminToken}` };
        // Past REQUEST_TIMEOUT_MS: a connection still open then would be timed out (408) as well.
        const exchange = await streamEndlessBody(port, target, headers, 64 * 1024 * 1024, 3000);
        expect(statusesOf(exchange.text)).toEqual([status]);
        expect(exchange.closed).toBe(true);
        // The server stopped reading long before the client's 64 MiB (socket buffers hold a few MiB).
        expect(exchange.sent).toBeLessThan(32 * 1024 * 1024);
        expect((await server.gql('{ __typename }')).body).toEqual({ data: { __typename: 'Query' } });
      });
    },
  );
});

describe('a request answered before its body arrived, whose body then stalls (sqlite)', () => {
  it.each([
    ['a path that is not served', 'POST', '/nowhere', 404],
    ['/healthz', 'POST', '/healthz', 200],
    ['OPTIONS /graphql', 'OPTIONS', '/graphql', 204],
    ['a body that is not JSON', 'POST', '/graphql', 415],
  ])(
    '%s: answered once, never again with 408 when its body does not arrive in time',
    async (_name, method, target, status) => {
      await withServer({ REQUEST_TIMEOUT_MS: '1000' }, async (server) => {
        // Announces 1000 bytes of body and sends 9, then waits.
        const request = rawRequest({
          method,
          target,
          headers: [
            ['Host', 'localhost'],
            ['Content-Type', status === 415 ? 'text/plain' : 'application/json'],
            ['Content-Length', '1000'],
          ],
          body: '{"query":',
          contentLength: false,
        });
        // Past REQUEST_TIMEOUT_MS (checked every quarter of it), the connection is closed, with
        // nothing more written on it.
        const exchange = await sendRaw(Number(new URL(server.url).port), request, {
          timeoutMs: 5_000,
          untilClosed: true,
        });
        expect([exchange.statuses, exchange.ending]).toEqual([[status], 'closed']);
      });
    },
  );
});

describe('REQUEST_TIMEOUT_MS (sqlite)', () => {
  it('answers 408 and closes the connection of a client that does not finish its body in time', async () => {
    await withServer({ REQUEST_TIMEOUT_MS: '1000' }, async (server) => {
      // Announces 100 bytes of body and sends 9.
      const request = rawRequest({
        headers: [
          ['Host', 'localhost'],
          ['Content-Type', 'application/json'],
          ['Authorization', `Bearer ${server.adminToken}`],
          ['Content-Length', '100'],
        ],
        body: '{"query":',
        contentLength: false,
      });
      const started = Date.now();
      const exchange = await sendRaw(Number(new URL(server.url).port), request, { timeoutMs: 10_000 });
      const closedAfterMs = Date.now() - started;
      expect(exchange.statuses).toEqual([408]);
      expect(answerOf(exchange.text)).toEqual({
        statusLine: 'HTTP/1.1 408 Request Timeout',
        contentType: 'application/json; charset=utf-8',
        connection: 'close',
        body: coded('BAD_REQUEST', 'The request did not arrive in full within 1000 ms (REQUEST_TIMEOUT_MS)'),
      });
      expect(exchange.ending).toBe('closed');
      // The timeout is checked every quarter of it: the connection goes within 1 to 1.5 s.
      expect(closedAfterMs).toBeGreaterThanOrEqual(900);
      expect(closedAfterMs).toBeLessThan(5_000);
      // The service goes on answering.
      expect((await server.gql('{ __typename }')).body).toEqual({ data: { __typename: 'Query' } });
    });
  });
});
