import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateToken, hashToken } from '../../src/auth/token-format';
import { runCli } from '../helpers/token-cli';
import { databaseTargets, type TestDatabase } from '../helpers/databases';
import { startServer, type TestServer } from '../helpers/server';

const DAY_MS = 86_400_000;
/** A well-formed token value, typed where something else belonged: it must never be echoed. */
const LEAKED = generateToken();

const QUERY = 'query Get($email: String!) { person(email: $email) { email firstName } }';
const CREATE = 'mutation Create($input: CreatePersonInput!) { createPerson(input: $input) { email firstName } }';

const lastLine = (text: string) => text.trimEnd().split('\n').at(-1) ?? '';

interface CreatedJson {
  id: string;
  name: string;
  token: string;
  scopes: string[];
  expiresAt: string | null;
}

describe.each(databaseTargets)('the token CLI (node dist/auth/token.cli.js) on $kind', (target) => {
  let database: TestDatabase;
  let server: TestServer;
  let created: CreatedJson;
  let createdBetween: [number, number];

  const cli = (...args: string[]) => runCli(database.url, args);

  beforeAll(async () => {
    database = await target.create();
    // The CLI runs first on the fresh database: it must migrate it itself.
    const before = Date.now();
    const result = await cli(
      'create',
      '--name',
      'ci',
      '--scopes',
      'people:read,people:write',
      '--expires',
      '90d',
      '--json',
    );
    createdBetween = [before, Date.now()];
    if (result.code !== 0) throw new Error(`token create failed (${result.code}): ${result.stderr}`);
    created = JSON.parse(lastLine(result.stdout)) as CreatedJson;
    server = await startServer(database.url);
  });

  afterAll(async () => {
    await server?.close();
    await database?.drop();
  });

  /**
   * The CLI is another process: the running service learns of its revocation when its cached
   * verification of the token expires (TOKEN_CACHE_TTL_MS, 1 s by default), not before.
   */
  async function refusedWithinCacheTtl(token: string) {
    const revokedAt = Date.now();
    let answer = await server.gql(QUERY, { email: 'cli@example.com' }, token);
    while (answer.status === 200 && Date.now() - revokedAt < server.app.config.tokenCacheTtlMs + 1_000) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      answer = await server.gql(QUERY, { email: 'cli@example.com' }, token);
    }
    return answer;
  }

  it('creates a token with --json: the last stdout line has exactly id, name, token, scopes, expiresAt', async () => {
    expect(Object.keys(created)).toEqual(['id', 'name', 'token', 'scopes', 'expiresAt']);
    expect(created).toEqual({
      id: expect.stringMatching(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/),
      name: 'ci',
      token: expect.stringMatching(/^pgk_[0-9A-Za-z]{38}$/),
      scopes: ['people:read', 'people:write'],
      expiresAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
    });
    const expiresAt = Date.parse(created.expiresAt as string);
    expect(expiresAt).toBeGreaterThanOrEqual(createdBetween[0] + 90 * DAY_MS);
    expect(expiresAt).toBeLessThanOrEqual(createdBetween[1] + 90 * DAY_MS);

    const stored = (await server.app.tokens.list()).find((token) => token.name === 'ci');
    expect(stored).toMatchObject({ id: created.id, tokenHash: hashToken(created.token), revokedAt: null });
  });

  it('gives a token that queries and mutates on a server over the same database', async () => {
    const write = await server.gql(CREATE, { input: { email: 'cli@example.com', firstName: 'Cli' } }, created.token);
    expect(write.status).toBe(200);
    expect(write.body).toEqual({ data: { createPerson: { email: 'cli@example.com', firstName: 'Cli' } } });
    const read = await server.gql(QUERY, { email: 'cli@example.com' }, created.token);
    expect(read.status).toBe(200);
    expect(read.body).toEqual({ data: { person: { email: 'cli@example.com', firstName: 'Cli' } } });
  });

  it('prints the token in plain text once when created without --json', async () => {
    const result = await cli('create', '--name', 'plain', '--scopes', 'people:read');
    expect(result).toMatchObject({ code: 0, stderr: '' });
    const tokens = result.stdout.match(/pgk_[0-9A-Za-z]+/g) ?? [];
    expect(tokens).toHaveLength(1);
    expect(tokens[0]).toMatch(/^pgk_[0-9A-Za-z]{38}$/);
    expect(result.stdout).toContain('Created token "plain"');
    expect(result.stdout).toContain('expires never');
    const read = await server.gql(QUERY, { email: 'cli@example.com' }, tokens[0]);
    expect(read.body).toEqual({ data: { person: { email: 'cli@example.com', firstName: 'Cli' } } });
  });

  it('lists tokens by name, never with their secret or hash', async () => {
    const result = await cli('list');
    expect(result).toMatchObject({ code: 0, stderr: '' });
    const ciLine = result.stdout.split('\n').find((line) => line.includes(created.id));
    expect(ciLine).toContain('  ci  ');
    expect(ciLine).toContain('people:read,people:write');
    expect(ciLine).toContain(`expires ${created.expiresAt}`);
    expect(result.stdout).not.toContain(created.token);
    expect(result.stdout).not.toContain(created.token.slice(4, 20));
    expect(result.stdout).not.toContain(hashToken(created.token));
    expect(result.stdout).not.toContain('pgk_');
  });

  it('lists tokens as JSON, never with their secret or hash', async () => {
    const result = await cli('list', '--json');
    expect(result).toMatchObject({ code: 0, stderr: '' });
    const list = JSON.parse(lastLine(result.stdout)) as Record<string, unknown>[];
    const ci = list.find((token) => token.name === 'ci');
    expect(ci).toEqual({
      id: created.id,
      name: 'ci',
      scopes: ['people:read', 'people:write'],
      createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      expiresAt: created.expiresAt,
      revokedAt: null,
      lastUsedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });
    for (const token of list) expect(Object.keys(token)).not.toContain('tokenHash');
    expect(result.stdout).not.toContain(created.token);
    expect(result.stdout).not.toContain(hashToken(created.token));
    expect(result.stdout).not.toContain('pgk_');
  });

  it('revokes by name; the token then gets 401 "Token revoked"', async () => {
    const result = await cli('revoke', 'ci');
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout).toMatch(new RegExp(`^Revoked token "ci" \\(${created.id}\\) at \\d{4}-\\d\\d-\\d\\dT`));

    const refused = await refusedWithinCacheTtl(created.token);
    expect(refused.status).toBe(401);
    expect(refused.headers.get('www-authenticate')).toBe('Bearer realm="people", error="invalid_token"');
    expect(refused.body).toEqual({ errors: [{ message: 'Token revoked', extensions: { code: 'UNAUTHENTICATED' } }] });

    const list = JSON.parse(lastLine((await cli('list', '--json')).stdout)) as Record<string, unknown>[];
    expect(list.find((token) => token.name === 'ci')?.revokedAt).toMatch(/^\d{4}-\d\d-\d\dT/);
  });

  it('revokes by id; the token then gets 401 "Token revoked"', async () => {
    const made = await cli('create', '--name', 'by-id', '--scopes', 'admin', '--json');
    expect(made.code).toBe(0);
    const byId = JSON.parse(lastLine(made.stdout)) as CreatedJson;
    expect(byId).toMatchObject({ name: 'by-id', scopes: ['admin'], expiresAt: null });
    expect((await server.gql(QUERY, { email: 'cli@example.com' }, byId.token)).status).toBe(200);

    const result = await cli('revoke', byId.id);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout).toContain(`Revoked token "by-id" (${byId.id})`);
    const refused = await refusedWithinCacheTtl(byId.token);
    expect(refused.status).toBe(401);
    expect(refused.body).toEqual({ errors: [{ message: 'Token revoked', extensions: { code: 'UNAUTHENTICATED' } }] });
  });

  it.each([
    [
      'an unknown scope',
      ['create', '--name', 'bad-scope', '--scopes', 'people:read,people:delete'],
      'Unknown scope "people:delete"; scopes are people:read, people:write, admin',
    ],
    ['no scopes', ['create', '--name', 'no-scope', '--scopes', ' , '], 'At least one scope is needed'],
    ['empty scopes', ['create', '--name', 'no-scope', '--scopes', ''], 'At least one scope is needed'],
    ['an empty name', ['create', '--name', '', '--scopes', 'admin'], 'A token name is 1-100 letters'],
    ['a name with spaces around it', ['create', '--name', ' w4', '--scopes', 'admin'], 'A token name is 1-100 letters'],
    ['a missing --name', ['create', '--scopes', 'people:read'], 'create needs --name and --scopes'],
    ['a missing --scopes', ['create', '--name', 'no-scopes'], 'create needs --name and --scopes'],
    ['a duplicate name', ['create', '--name', 'ci', '--scopes', 'people:read'], 'A token named "ci" already exists'],
    ['an invalid name', ['create', '--name', 'has space', '--scopes', 'admin'], 'A token name is 1-100 letters'],
    [
      'a name shaped like a token id',
      ['create', '--name', '3A1A0F4E-2B6C-4D8E-9F01-23456789ABCD', '--scopes', 'admin'],
      'A token name may not look like a token id (a UUID)',
    ],
    [
      'an unreadable expiry',
      ['create', '--name', 'bad-expiry', '--scopes', 'admin', '--expires', '3 weeks'],
      'Cannot read expiry "3 weeks"',
    ],
    [
      'an expiry of no time',
      ['create', '--name', 'zero-expiry', '--scopes', 'admin', '--expires', '0d'],
      'Expiry "0d" is no time at all; use at least 1m, or never',
    ],
    ['an unknown revoke target', ['revoke', 'no-such-token'], 'No token with id or name "no-such-token"'],
    [
      'a token value given as a scope (not echoed)',
      ['create', '--name', 'scope-leak', '--scopes', `people:read,${LEAKED}`],
      'Unknown scope that looks like a token value; scopes are people:read, people:write, admin',
    ],
    [
      'a token value given as a name (not echoed)',
      ['create', '--name', LEAKED, '--scopes', 'admin'],
      'A token name may not contain "pgk_": it would look like a token',
    ],
    ['revoke without a target', ['revoke'], 'Usage:'],
    ['an unknown command', ['delete', 'ci'], 'Usage:'],
    ['an unknown option', ['list', '--all'], "Unknown option '--all'"],
  ])('exits 1 with a clear message on %s', async (_case, args, message) => {
    const result = await cli(...args);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain(message);
    expect(result.stderr).not.toMatch(/\n\s+at /);
    expect(result.stderr).not.toContain(LEAKED);
  });

  it('created nothing for the refused commands', async () => {
    const names = (await server.app.tokens.list()).map((token) => token.name);
    for (const refused of [
      'bad-scope',
      'no-scope',
      'no-scopes',
      'has space',
      'bad-expiry',
      'zero-expiry',
      '3A1A0F4E-2B6C-4D8E-9F01-23456789ABCD',
    ]) {
      expect(names).not.toContain(refused);
    }
    expect(names.filter((name) => name === 'ci')).toHaveLength(1);
  });
});
