import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateToken, hashToken } from '../../src/auth/token-format';
import { TokenService } from '../../src/auth/token.service';
import { Database } from '../../src/db/database';
import { databaseTargets, type TestDatabase } from '../helpers/databases';
import { countQueries } from '../helpers/query-counter';

const TTL_MS = 1_000;

describe.each(databaseTargets)('token verification cache on $kind', (target) => {
  let testDatabase: TestDatabase;
  let database: Database;
  let clock: number;
  /** The service's token checks, on a clock the test moves by hand. */
  let service: TokenService;
  /** Another process on the same database: the token CLI, or another replica. */
  let elsewhere: TokenService;

  beforeAll(async () => {
    testDatabase = await target.create();
    database = await Database.open(testDatabase.url);
    clock = Date.parse('2026-06-01T12:00:00.000Z');
    service = new TokenService(database, { cacheTtlMs: TTL_MS, now: () => new Date(clock) });
    elsewhere = new TokenService(database);
  });

  afterAll(async () => {
    await database?.close();
    await testDatabase?.drop();
  });

  const tokenLookups = async (check: () => Promise<unknown>) =>
    (await countQueries(database, check)).statements.filter((sql) => /FROM api_token WHERE token_hash/.test(sql))
      .length;

  it('looks a token up once per TTL, not once per request', async () => {
    const created = await elsewhere.create('cached', ['people:read']);
    const lookups = await tokenLookups(async () => {
      for (let request = 0; request < 20; request += 1) {
        expect(await service.authenticate(created.token)).toMatchObject({ ok: true, identity: { name: 'cached' } });
      }
    });
    expect(lookups).toBe(1);

    clock += TTL_MS;
    expect(await tokenLookups(() => service.authenticate(created.token))).toBe(1);
  });

  it('takes a revocation made elsewhere into account within the TTL', async () => {
    const created = await elsewhere.create('revoked-elsewhere', ['people:read']);
    expect((await service.authenticate(created.token)).ok).toBe(true);
    await elsewhere.revoke('revoked-elsewhere');

    clock += TTL_MS - 1;
    expect((await service.authenticate(created.token)).ok).toBe(true);
    clock += 1;
    expect(await service.authenticate(created.token)).toEqual({ ok: false, reason: 'revoked' });
  });

  it('takes a revocation made through the same service into account at once', async () => {
    const created = await elsewhere.create('revoked-here', ['people:read']);
    expect((await service.authenticate(created.token)).ok).toBe(true);
    await service.revoke('revoked-here');
    expect(await service.authenticate(created.token)).toEqual({ ok: false, reason: 'revoked' });
  });

  it('refuses a cached token the moment it expires', async () => {
    const created = await elsewhere.create('expiring', ['people:read'], new Date(clock + 500));
    expect((await service.authenticate(created.token)).ok).toBe(true);
    clock += 500;
    expect(await service.authenticate(created.token)).toEqual({ ok: false, reason: 'expired' });
  });

  it('does not cache unknown tokens: a token stored after its first refusal works at once', async () => {
    const token = generateToken();
    expect(await service.authenticate(token)).toEqual({ ok: false, reason: 'unknown' });
    await database.write((sql) =>
      sql.run(
        `INSERT INTO api_token (id, name, token_hash, scopes, created_at, expires_at, revoked_at, last_used_at)
         VALUES ($1, 'stored-late', $2, 'people:read', $3, NULL, NULL, NULL)`,
        [randomUUID(), hashToken(token), new Date(clock).toISOString()],
      ),
    );
    expect(await service.authenticate(token)).toMatchObject({ ok: true, identity: { name: 'stored-late' } });
  });

  it('with a TTL of 0, looks the token up on every request', async () => {
    const uncached = new TokenService(database, { cacheTtlMs: 0 });
    const created = await elsewhere.create('uncached', ['people:read']);
    const lookups = await tokenLookups(async () => {
      for (let request = 0; request < 5; request += 1)
        expect((await uncached.authenticate(created.token)).ok).toBe(true);
    });
    expect(lookups).toBe(5);
  });
});
