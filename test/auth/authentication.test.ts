import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { generateToken } from '../../src/auth/token-format';
import { databaseTargets, type TestDatabase } from '../helpers/databases';
import { httpRequest } from '../helpers/http-request';
import { startServer, type TestServer } from '../helpers/server';

const QUERY = '{ people(first: 1) { nodes { email } } }';
const CREATE = 'mutation Create($input: CreatePersonInput!) { createPerson(input: $input) { email firstName } }';
const GET = 'query Get($email: String!) { person(email: $email) { email firstName } }';

const REALM = 'Bearer realm="people"';
const INVALID = 'Bearer realm="people", error="invalid_token"';
const MISSING_MESSAGE = 'Authentication required: send "Authorization: Bearer <token>"';
const MALFORMED_MESSAGE = 'Malformed Authorization header; expected "Bearer <token>"';

const unauthenticatedBody = (message: string) => ({ errors: [{ message, extensions: { code: 'UNAUTHENTICATED' } }] });
const forbiddenBody = (scope: string) => ({
  errors: [{ message: `This operation needs the "${scope}" scope`, extensions: { code: 'FORBIDDEN' } }],
});

/** Replaces the character at `index` with another base62 character. */
function alterAt(token: string, index: number): string {
  const replacement = token[index] === 'A' ? 'B' : 'A';
  return token.slice(0, index) + replacement + token.slice(index + 1);
}

describe.each(databaseTargets)('authentication and scopes on $kind', (target) => {
  let database: TestDatabase;
  let server: TestServer;
  /** Every token value this file sends, to check that none of them reaches the logs. */
  const sentTokens: string[] = [];

  /** POSTs a GraphQL request with exactly the given headers (plus the JSON content type). */
  async function post(
    headers: Record<string, string>,
    body: Record<string, unknown>,
  ): Promise<{ status: number; headers: Headers; body: unknown }> {
    const response = await fetch(server.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });
    return { status: response.status, headers: response.headers, body: await response.json() };
  }

  async function gqlAs(token: string, query: string, variables?: Record<string, unknown>) {
    sentTokens.push(token);
    return server.gql(query, variables, token);
  }

  async function personExists(email: string): Promise<boolean> {
    const read = await server.gql(GET, { email });
    const code = read.body.errors?.[0]?.extensions?.code;
    if (code !== undefined && code !== 'NOT_FOUND') throw new Error(`unexpected ${JSON.stringify(read.body)}`);
    return read.body.data?.person !== null;
  }

  beforeAll(async () => {
    database = await target.create();
    server = await startServer(database.url);
    sentTokens.push(server.adminToken);
  });

  afterAll(async () => {
    await server?.close();
    await database?.drop();
  });

  describe('refusals with 401', () => {
    it('answers a request without Authorization with 401 and a bare challenge', async () => {
      const response = await server.gql(QUERY, {}, null);
      expect(response.status).toBe(401);
      expect(response.headers.get('www-authenticate')).toBe(REALM);
      expect(response.body).toEqual(unauthenticatedBody(MISSING_MESSAGE));
    });

    it.each([['Basic abc'], ['Bearer'], ['Bearer '], ['Token pgk_abc'], ['Bearer one two']])(
      'answers the malformed header %j with 401 invalid_token',
      async (authorization) => {
        const response = await post({ authorization }, { query: QUERY });
        expect(response.status).toBe(401);
        expect(response.headers.get('www-authenticate')).toBe(INVALID);
        expect(response.body).toEqual(unauthenticatedBody(MALFORMED_MESSAGE));
      },
    );

    it('answers two Authorization headers with 401, whichever comes first: one of them would be ignored', async () => {
      const valid = `Bearer ${server.adminToken}`;
      for (const authorizations of [
        [valid, 'Bearer garbage'],
        ['Bearer garbage', valid],
        [valid, valid],
      ]) {
        // node:http sends an array as one header line per value.
        const response = await httpRequest(server.graphqlUrl, {
          headers: { 'content-type': 'application/json', authorization: authorizations },
          body: JSON.stringify({ query: QUERY }),
        });
        expect([response.status, response.headers['www-authenticate'], JSON.parse(response.text)]).toEqual([
          401,
          INVALID,
          unauthenticatedBody('Send one Authorization header, not several'),
        ]);
      }
    });

    it.each([['garbage'], ['pgk_'], [`pgk_${'A'.repeat(38)}`], ['pgk_short'], ['x'.repeat(5000)]])(
      'answers the garbage token %j with 401 "Invalid token"',
      async (token) => {
        const response = await gqlAs(token, QUERY);
        expect(response.status).toBe(401);
        expect(response.headers.get('www-authenticate')).toBe(INVALID);
        expect(response.body).toEqual(unauthenticatedBody('Invalid token'));
      },
    );

    it('answers a valid token with one character altered with 401 "Invalid token"', async () => {
      const token = await server.createToken(['admin']);
      expect((await gqlAs(token, QUERY)).status).toBe(200);
      // One position in the random body, one in the checksum.
      for (const index of [10, token.length - 1]) {
        const response = await gqlAs(alterAt(token, index), QUERY);
        expect(response.status).toBe(401);
        expect(response.headers.get('www-authenticate')).toBe(INVALID);
        expect(response.body).toEqual(unauthenticatedBody('Invalid token'));
      }
    });

    it('answers a well-formed token that was never issued with 401 "Invalid token"', async () => {
      const response = await gqlAs(generateToken(), QUERY);
      expect(response.status).toBe(401);
      expect(response.headers.get('www-authenticate')).toBe(INVALID);
      expect(response.body).toEqual(unauthenticatedBody('Invalid token'));
    });

    it('answers an expired token with 401 "Token expired", and accepts one expiring later', async () => {
      const expired = await server.createToken(['admin'], { expiresAt: new Date(Date.now() - 1000) });
      const response = await gqlAs(expired, QUERY);
      expect(response.status).toBe(401);
      expect(response.headers.get('www-authenticate')).toBe(INVALID);
      expect(response.body).toEqual(unauthenticatedBody('Token expired'));

      const later = await server.createToken(['admin'], { expiresAt: new Date(Date.now() + 3_600_000) });
      expect((await gqlAs(later, QUERY)).status).toBe(200);
    });

    it('answers a revoked token with 401 "Token revoked", though it worked before', async () => {
      const token = await server.createToken(['people:read', 'people:write'], { name: `revoke-me-${target.kind}` });
      const before = await gqlAs(token, QUERY);
      expect(before.status).toBe(200);

      const revoked = await server.app.tokens.revoke(`revoke-me-${target.kind}`);
      expect(revoked.revokedAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);

      for (const query of [QUERY, CREATE]) {
        const response = await gqlAs(token, query, { input: { email: 'revoked-write@example.com' } });
        expect(response.status).toBe(401);
        expect(response.headers.get('www-authenticate')).toBe(INVALID);
        expect(response.body).toEqual(unauthenticatedBody('Token revoked'));
      }
      expect(await personExists('revoked-write@example.com')).toBe(false);
    });

    it('refuses before parsing: even a syntax error without a token is a 401', async () => {
      const response = await server.gql('{ people(', {}, null);
      expect(response.status).toBe(401);
      expect(response.body).toEqual(unauthenticatedBody(MISSING_MESSAGE));
    });
  });

  describe('scopes', () => {
    it('lets a people:read token query but refuses its mutation with 403, writing nothing', async () => {
      const reader = await server.createToken(['people:read']);
      await server.gql(CREATE, { input: { email: 'read-scope@example.com', firstName: 'Read' } });

      const read = await gqlAs(reader, GET, { email: 'read-scope@example.com' });
      expect(read.status).toBe(200);
      expect(read.body).toEqual({ data: { person: { email: 'read-scope@example.com', firstName: 'Read' } } });

      const write = await gqlAs(reader, CREATE, { input: { email: 'reader-wrote@example.com' } });
      expect(write.status).toBe(403);
      expect(write.body).toEqual(forbiddenBody('people:write'));
      expect(await personExists('reader-wrote@example.com')).toBe(false);
    });

    it('lets a people:write token mutate but refuses its query with 403', async () => {
      const writer = await server.createToken(['people:write']);
      const write = await gqlAs(writer, CREATE, { input: { email: 'writer@example.com', firstName: 'W' } });
      expect(write.status).toBe(200);
      expect(write.body).toEqual({ data: { createPerson: { email: 'writer@example.com', firstName: 'W' } } });
      expect(await personExists('writer@example.com')).toBe(true);

      for (const query of [GET, QUERY, '{ __typename }', '{ _service { sdl } }']) {
        const read = await gqlAs(writer, query, { email: 'writer@example.com' });
        expect(read.status).toBe(403);
        expect(read.body).toEqual(forbiddenBody('people:read'));
      }
    });

    it('answers a subscription, which this schema has none of, with 400 BAD_REQUEST for any token', async () => {
      const reader = await server.createToken(['people:read']);
      const admin = await server.createToken(['admin']);
      for (const token of [reader, admin]) {
        const subscribed = await gqlAs(token, 'subscription { people { totalCount } }');
        expect(subscribed.status).toBe(400);
        expect(subscribed.body).toEqual({
          errors: [
            {
              message: 'This service has no subscription operations: send a query or a mutation',
              extensions: { code: 'BAD_REQUEST' },
            },
          ],
        });
      }
    });

    it('lets a token with both scopes, and an admin token, query and mutate', async () => {
      const both = await server.createToken(['people:read', 'people:write']);
      const admin = await server.createToken(['admin']);
      for (const [label, token] of [
        ['both', both],
        ['admin', admin],
      ]) {
        const email = `${label}-scopes@example.com`;
        const write = await gqlAs(token, CREATE, { input: { email, firstName: label } });
        expect(write.status).toBe(200);
        expect(write.body).toEqual({ data: { createPerson: { email, firstName: label } } });
        const read = await gqlAs(token, GET, { email });
        expect(read.status).toBe(200);
        expect(read.body).toEqual({ data: { person: { email, firstName: label } } });
      }
    });

    it('refuses the mutation of a many-operation document as a whole, before any resolver', async () => {
      const reader = await server.createToken(['people:read']);
      sentTokens.push(reader);
      const document = `
        query ReadOne { people(first: 1) { totalCount } }
        mutation Sneak {
          a: createPerson(input: { email: "sneak-a@example.com" }) { id }
          b: updatePerson(input: { email: "writer@example.com", firstName: "Sneaked" }) { id }
          c: createPerson(input: { email: "sneak-c@example.com" }) { id }
        }`;
      const refused = await post({ authorization: `Bearer ${reader}` }, { query: document, operationName: 'Sneak' });
      expect(refused.status).toBe(403);
      expect(refused.body).toEqual(forbiddenBody('people:write'));

      const allowed = await post({ authorization: `Bearer ${reader}` }, { query: document, operationName: 'ReadOne' });
      expect(allowed.status).toBe(200);
      expect(allowed.body).toEqual({ data: { people: { totalCount: expect.any(Number) } } });

      expect(await personExists('sneak-a@example.com')).toBe(false);
      expect(await personExists('sneak-c@example.com')).toBe(false);
      const writer = await server.gql(GET, { email: 'writer@example.com' });
      expect(writer.body.data?.person).toEqual({ email: 'writer@example.com', firstName: 'W' });
    });
  });

  it('records when a token was last used', async () => {
    const name = `last-used-${target.kind}`;
    const token = await server.createToken(['people:read'], { name });
    const listed = async () => (await server.app.tokens.list()).find((entry) => entry.name === name);
    expect((await listed())?.lastUsedAt).toBeNull();

    const before = new Date().toISOString();
    expect((await gqlAs(token, QUERY)).status).toBe(200);
    const after = new Date().toISOString();

    await vi.waitFor(async () => expect((await listed())?.lastUsedAt).not.toBeNull(), { timeout: 10_000 });
    const lastUsedAt = (await listed())?.lastUsedAt as string;
    expect(lastUsedAt >= before && lastUsedAt <= after).toBe(true);
  });

  it('answers /healthz and /readyz without a token', async () => {
    const health = await fetch(`${server.url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
    const ready = await fetch(`${server.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready' });
  });

  it('never writes a token or an Authorization header to the logs', async () => {
    // Requests that succeed, fail in resolvers, fail validation and fail authentication.
    const reader = await server.createToken(['people:read']);
    const revoked = await server.createToken(['people:read'], { name: `logged-revoked-${target.kind}` });
    await server.app.tokens.revoke(`logged-revoked-${target.kind}`);
    const expired = await server.createToken(['people:read'], { expiresAt: new Date(Date.now() - 1000) });
    await gqlAs(reader, QUERY);
    await gqlAs(reader, GET, { email: 'nobody@example.com' });
    await gqlAs(reader, '{ nonsense }');
    await gqlAs(reader, CREATE, { input: { email: 'logged@example.com' } });
    await gqlAs(revoked, QUERY);
    await gqlAs(expired, QUERY);
    await gqlAs(alterAt(reader, 20), QUERY);
    await gqlAs(generateToken(), QUERY);
    await post({ authorization: `Bearer ${reader} extra` }, { query: QUERY });
    await post({ authorization: `Basic ${Buffer.from(`user:${reader}`).toString('base64')}` }, { query: QUERY });
    const invalidJson = await fetch(server.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${reader}` },
      body: '{"query":',
    });
    expect(invalidJson.status).toBe(400);

    expect(server.rawLogs.length).toBeGreaterThan(10);
    const requestLines = server.logs.filter((line) => line.msg === 'request');
    expect(requestLines.length).toBeGreaterThan(10);
    const leaks = server.rawLogs.filter(
      (line) =>
        line.includes('Bearer ') ||
        line.includes('pgk_') ||
        sentTokens.some((token) => token.length >= 8 && line.includes(token)),
    );
    expect(leaks).toEqual([]);
  });
});
