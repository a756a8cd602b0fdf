import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateToken } from '../../src/auth/token-format';
import { runCli } from '../helpers/token-cli';
import { databaseTargets, sqliteTarget, type TestDatabase } from '../helpers/databases';
import { printedAdminToken, startMain } from '../helpers/main-process';
import { startServer, type TestServer } from '../helpers/server';
import { rawRequest, sendRaw, type HeaderValue } from './raw-http';

/**
 * No token and no Authorization value reaches a log line, whatever happens to the request:
 * success, refusal (401, 403, 404, BAD_USER_INPUT, CONFLICT, 413, 415, 429), malformed headers that
 * node itself refuses, internal errors (a table renamed away) and the token CLI's own output.
 * Broader than the checks in test/auth and test/http: errors included, and every way a secret
 * could be written down (as text, base64, Basic credentials, a Buffer's bytes, a header field).
 */

const PEOPLE = '{ people(first: 2) { totalCount nodes { email } } }';
const GET = 'query Get($email: String!) { person(email: $email) { email firstName } }';
const CREATE = 'mutation Create($input: CreatePersonInput!) { createPerson(input: $input) { email } }';
const UPDATE = 'mutation Update($input: UpdatePersonInput!) { updatePerson(input: $input) { email version } }';

/** Every form in which a secret could be written to a log, for one secret. */
function forms(secret: string): string[] {
  const bytes = [...Buffer.from(secret.slice(0, 16))].join(',');
  // The secret without its first characters too: what is left of a token whose prefix was encoded.
  return [secret, secret.slice(4), Buffer.from(secret).toString('base64'), Buffer.from(secret).toString('hex'), bytes];
}

/** Log lines that give a secret away: the forms above, any pgk_ string, a Bearer credential. */
function leaks(lines: string[], secrets: string[]): string[] {
  const forbidden = secrets.filter((secret) => secret.length >= 12).flatMap(forms);
  return lines.filter(
    (line) =>
      /pgk_/i.test(line) ||
      /\b(bearer|basic)\s+[\w+/=.~-]{6,}/i.test(line) ||
      forbidden.some((form) => line.includes(form)) ||
      authorizationFieldsIn(JSON.parse(line)).length > 0,
  );
}

/** Fields named like an authorization header anywhere in a log object, unless redacted. */
function authorizationFieldsIn(value: unknown, found: string[] = []): string[] {
  if (typeof value !== 'object' || value === null) return found;
  for (const [key, inner] of Object.entries(value)) {
    if (/authorization|api[-_]?key|cookie|^token$/i.test(key) && inner !== '[redacted]') found.push(key);
    authorizationFieldsIn(inner, found);
  }
  return found;
}

describe.each(databaseTargets)('no secret in the logs, errors included, on $kind', (target) => {
  let database: TestDatabase;
  let server: TestServer;
  let port: number;
  /** Every token value and Authorization value this file sends or creates. */
  const secrets: string[] = [];
  const statuses = new Map<string, number[]>();

  /** Sends `body` to /graphql with exactly these headers (plus JSON content type); records the status. */
  async function send(label: string, headers: Record<string, string>, body: unknown, init: RequestInit = {}) {
    for (const value of Object.values(headers)) secrets.push(value);
    const response = await fetch(server.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
      ...init,
    });
    await response.arrayBuffer();
    statuses.set(label, [...(statuses.get(label) ?? []), response.status]);
    return response.status;
  }

  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

  beforeAll(async () => {
    database = await target.create();
    // Tokens are looked up on every request: renaming the token table must fail authentication.
    server = await startServer(database.url, {
      LOG_LEVEL: 'trace',
      RATE_LIMIT_PER_SECOND: '0',
      TOKEN_CACHE_TTL_MS: '0',
    });
    port = Number(new URL(server.url).port);
    secrets.push(server.adminToken);
  });

  afterAll(async () => {
    await server?.close();
    await database?.drop();
  });

  it('logs no token on success and on every refusal: 401, 403, 404, BAD_USER_INPUT, CONFLICT, 400, 405, 413, 415', async () => {
    const reader = await server.createToken(['people:read']);
    const writer = await server.createToken(['people:write']);
    const expired = await server.createToken(['admin'], { expiresAt: new Date(Date.now() - 1_000) });
    const revoked = await server.createToken(['admin'], { name: `revoked-${target.kind}` });
    await server.app.tokens.revoke(`revoked-${target.kind}`);
    const neverIssued = generateToken();
    const altered = `${writer.slice(0, 12)}${writer[12] === 'A' ? 'B' : 'A'}${writer.slice(13)}`;
    secrets.push(reader, writer, expired, revoked, neverIssued, altered);

    expect(
      await send('create', bearer(writer), { query: CREATE, variables: { input: { email: 'a@example.com' } } }),
    ).toBe(200);
    expect(await send('read', bearer(reader), { query: PEOPLE })).toBe(200);
    await send('CONFLICT', bearer(writer), { query: CREATE, variables: { input: { email: 'A@example.com' } } });
    await send('NOT_FOUND', bearer(reader), { query: GET, variables: { email: 'nobody@example.com' } });
    await send('NOT_FOUND update', bearer(writer), {
      query: UPDATE,
      variables: { input: { email: 'no@example.com' } },
    });
    await send('BAD_USER_INPUT', bearer(writer), { query: CREATE, variables: { input: { email: 'not an email' } } });
    await send('BAD_USER_INPUT variables', bearer(reader), { query: GET, variables: { email: 5 } });
    await send('FORBIDDEN', bearer(reader), { query: CREATE, variables: { input: { email: 'b@example.com' } } });
    await send('FORBIDDEN query', bearer(writer), { query: PEOPLE });
    await send('parse error', bearer(reader), { query: '{ people(' });
    await send('validation error', bearer(reader), { query: '{ nonsense }' });
    await send('invalid JSON', bearer(reader), '{"query":');
    await send('413', bearer(reader), { query: PEOPLE, padding: 'x'.repeat(200_000) });
    await send('415', { ...bearer(reader), 'content-type': 'text/plain' }, { query: PEOPLE });
    await send('405', bearer(reader), undefined, { method: 'PUT' });
    for (const token of [
      expired,
      revoked,
      neverIssued,
      altered,
      'garbage-but-secret-1234',
      `pgk_${'x'.repeat(10_000)}`,
    ]) {
      expect(await send('401', bearer(token), { query: PEOPLE })).toBe(401);
    }
    for (const authorization of [
      `Basic ${Buffer.from(`user:${writer}`).toString('base64')}`,
      `Bearer ${writer} extra`,
      `Token ${writer}`,
      `bearer ${expired}`,
      `Bearer\t${revoked}`,
    ]) {
      expect(await send('401 malformed', { authorization }, { query: PEOPLE })).toBe(401);
    }
    // Secrets in headers other than Authorization, and in the query string.
    await send(
      'other headers',
      { 'proxy-authorization': `Bearer ${writer}`, 'x-api-key': writer, cookie: `t=${writer}` },
      {
        query: PEOPLE,
      },
    );
    const viaUrl = await fetch(`${server.graphqlUrl}?access_token=${writer}&query=${encodeURIComponent(PEOPLE)}`, {
      headers: bearer(reader),
    });
    await viaUrl.arrayBuffer();
    // A token in the path (a client's templating mistake), plain and percent-encoded (any of its
    // prefix's characters, even twice): a 404, logged without it.
    for (const path of [
      `/graphql/${writer}`,
      `/${writer}/x`,
      `/graphql/${writer.replace('_', '%5F')}`,
      `/graphql/%70${writer.slice(1)}`,
      `/graphql/%70%67%6B%5F${writer.slice(4)}`,
      `/graphql/%2570${writer.slice(1)}`,
    ]) {
      const inPath = await fetch(`${server.url}${path}`, { method: 'POST', headers: bearer(reader), body: '{}' });
      expect(inPath.status).toBe(404);
      await inPath.arrayBuffer();
    }

    // Headers that fetch cannot send and node refuses itself, over a raw socket.
    const rawValues: HeaderValue[] = [
      `Bearer ${writer.slice(0, 20)}\x01${writer.slice(20)}`,
      `Bearer ${writer}\x7f`,
      Buffer.from(`Bearer ${writer}ü😀`, 'utf8'),
      `Bearer ${writer}`,
    ];
    for (const value of rawValues) {
      secrets.push(value.toString());
      const exchange = await sendRaw(
        port,
        rawRequest({
          headers: [
            ['Host', '127.0.0.1'],
            ['Connection', 'close'],
            ['Content-Type', 'application/json'],
            ['Authorization', value],
            ['Authorization', `Bearer ${reader}`],
          ],
          body: JSON.stringify({ query: PEOPLE }),
        }),
      );
      expect(exchange.statuses.every((status) => status < 500)).toBe(true);
    }

    const seen = new Set([...statuses.values()].flat());
    for (const status of [200, 400, 401, 403, 405, 413, 415]) expect(seen).toContain(status);
    expect(server.logs.filter((line) => line.msg === 'request').length).toBeGreaterThanOrEqual(30);
    expect(leaks(server.rawLogs, secrets)).toEqual([]);
  });

  it('logs no token when the operation fails inside the service (tables renamed away)', async () => {
    const writer = await server.createToken(['people:read', 'people:write']);
    secrets.push(writer);
    const logsBefore = server.rawLogs.length;
    await server.app.database.dataSource.query('ALTER TABLE person RENAME TO person_gone');
    try {
      for (const body of [
        { query: PEOPLE },
        { query: GET, variables: { email: 'a@example.com' } },
        { query: CREATE, variables: { input: { email: 'c@example.com' } } },
        { query: UPDATE, variables: { input: { email: 'a@example.com', team: 'T' } } },
      ]) {
        expect(await send('internal', bearer(writer), body)).toBe(200);
      }
    } finally {
      await server.app.database.dataSource.query('ALTER TABLE person_gone RENAME TO person');
    }
    await server.app.database.dataSource.query('ALTER TABLE api_token RENAME TO api_token_gone');
    try {
      expect(await send('internal while authenticating', bearer(writer), { query: PEOPLE })).toBe(500);
      expect(await send('internal while authenticating', bearer(generateToken()), { query: PEOPLE })).toBe(500);
    } finally {
      await server.app.database.dataSource.query('ALTER TABLE api_token_gone RENAME TO api_token');
    }

    const logged = server.logs.slice(logsBefore);
    // The failures were logged in full (the driver's error), and those lines are free of secrets.
    expect(logged.filter((line) => line.msg === 'unexpected error').length).toBeGreaterThanOrEqual(4);
    expect(logged.filter((line) => Number(line.level) >= 50).length).toBeGreaterThanOrEqual(6);
    expect(leaks(server.rawLogs, secrets)).toEqual([]);
  });

  it('the token CLI shows a token once, at creation, and nowhere else: list, revoke, and its errors', async () => {
    const cli = (...args: string[]) => runCli(database.url, args);
    const made = await cli('create', '--name', `cli-${target.kind}`, '--scopes', 'people:read', '--json');
    expect(made.code).toBe(0);
    const { token } = JSON.parse(made.stdout.trim().split('\n').at(-1) ?? '{}') as { token: string };
    const plain = await cli('create', '--name', `cli-plain-${target.kind}`, '--scopes', 'admin');
    expect(plain.code).toBe(0);
    const plainToken = /pgk_[0-9A-Za-z]{38}/.exec(plain.stdout)?.[0] ?? '';
    secrets.push(token, plainToken);
    // Shown exactly once, on stdout, and never on stderr.
    expect(made.stdout.split(token)).toHaveLength(2);
    expect(plain.stdout.split(plainToken)).toHaveLength(2);
    expect(made.stderr + plain.stderr).toBe('');

    const outputs = [
      await cli('list'),
      await cli('list', '--json'),
      await cli('revoke', `cli-${target.kind}`),
      // Mistakes a user could make with a token at hand: none may echo it back.
      await cli('revoke', token),
      await cli('revoke', plainToken),
      await cli('create', '--name', `cli-${target.kind}`, '--scopes', 'people:read'),
      await cli(token),
    ];
    expect(outputs.map((output) => output.code)).toEqual([0, 0, 0, 1, 1, 1, 1]);
    for (const output of outputs) {
      const lines = `${output.stdout}\n${output.stderr}`.split('\n').filter(Boolean);
      expect(lines.filter((line) => /pgk_/i.test(line) || line.includes(token) || line.includes(plainToken))).toEqual(
        [],
      );
    }

    // The tokens work (so they were real), and using them logs nothing of them either.
    expect(await send('cli token', bearer(plainToken), { query: PEOPLE })).toBe(200);
    expect(leaks(server.rawLogs, secrets)).toEqual([]);
  });
});

describe('no secret in the logs of node dist/main.js, nor of a rate-limited token (sqlite)', () => {
  it('keeps the first-start token out of its JSON log lines, and a 429 logs no token', async () => {
    const database = await sqliteTarget.create();
    const { main, graphqlUrl } = await startMain({
      DATABASE_URL: database.url,
      LOG_LEVEL: 'trace',
      RATE_LIMIT_PER_SECOND: '0.01',
      RATE_LIMIT_BURST: '2',
    });
    try {
      const token = await printedAdminToken(main);
      const answers: number[] = [];
      for (let i = 0; i < 4; i += 1) {
        const response = await fetch(graphqlUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
          body: JSON.stringify({ query: i === 0 ? '{ people(' : PEOPLE }),
        });
        answers.push(response.status);
        await response.arrayBuffer();
      }
      expect(answers).toContain(429);
      // The last request's line may still be on its way through the pipe.
      await main.waitForStdout(/(?:"msg":"request"[^\n]*\n[^]*){4}/);
      const logLines = main
        .stdout()
        .split('\n')
        .filter((line) => line.startsWith('{'));
      expect(logLines.filter((line) => line.includes('"msg":"request"')).length).toBeGreaterThanOrEqual(4);
      expect(leaks(logLines, [token])).toEqual([]);
      // The banner is the one place it appears: on the terminal, outside the JSON log.
      expect(main.stdout().split(token).length).toBeGreaterThan(1);
    } finally {
      main.child.kill('SIGTERM');
      await main.exited;
      await database.drop();
    }
  });
});
