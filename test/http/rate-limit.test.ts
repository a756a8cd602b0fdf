import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config';
import { MemoryRateLimiter, rateLimitMessage } from '../../src/http/rate-limit';
import { postgresTarget, sqliteTarget, type TestDatabase } from '../helpers/databases';
import { startServer, type GraphQLResponse, type TestServer } from '../helpers/server';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy';

const QUERY = '{ people(first: 1) { totalCount } }';
const CREATE = 'mutation Create($input: CreatePersonInput!) { createPerson(input: $input) { email } }';
const GET = 'query Get($email: String!) { person(email: $email) { email } }';
const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
/** A safety net against a test that would wait forever, not a timing assertion. */
const SAFETY_NET_MS = 20_000;

/**
 * Whether a Redis answers PING at `url`, checked synchronously (in a child process) because
 * `describe.skipIf` is decided when the file is collected.
 */
function redisAnswers(url: string): boolean {
  const { hostname, port } = new URL(url);
  const probe = `
    const socket = require('node:net').connect(${Number(port || 6379)}, ${JSON.stringify(hostname)});
    socket.setTimeout(1000, () => process.exit(1));
    socket.on('error', () => process.exit(1));
    socket.on('connect', () => socket.write('PING\\r\\n'));
    socket.on('data', (data) => process.exit(String(data).startsWith('+PONG') ? 0 : 1));`;
  return spawnSync(process.execPath, ['-e', probe], { timeout: 5_000 }).status === 0;
}

const redisUp = redisAnswers(REDIS_URL);
if (!redisUp) {
  console.warn(`Redis is not reachable at ${REDIS_URL}: the shared (Redis) rate-limit tests are SKIPPED.`);
}

/** A client of the machine's Redis for checks and clean-up (only when it answers). */
let redis: Redis;

beforeAll(async () => {
  if (!redisUp) return;
  redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
});

afterAll(async () => {
  if (redisUp) await redis.quit();
});

/** A fresh key prefix for one test run, so that runs never share buckets. */
const uniquePrefix = () => `people-graph-test:${process.pid}:${randomBytes(6).toString('hex')}:`;

async function keysUnder(prefix: string): Promise<string[]> {
  return redis.keys(`${prefix}*`);
}

async function deleteKeysUnder(prefix: string): Promise<void> {
  const keys = await keysUnder(prefix);
  if (keys.length > 0) await redis.del(...keys);
}

/** A port on 127.0.0.1 where nothing listens. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A token with a known name, and its id (the rate-limit key). */
async function namedToken(server: TestServer, label: string): Promise<{ id: string; secret: string }> {
  const name = `rate-${label}-${randomBytes(4).toString('hex')}`;
  const secret = await server.createToken(['people:read', 'people:write'], { name });
  const record = (await server.app.tokens.list()).find((token) => token.name === name);
  return { id: record?.id as string, secret };
}

function retryAfterOf(response: GraphQLResponse): number {
  const header = response.headers.get('retry-after') ?? '';
  expect(header).toMatch(/^[1-9]\d*$/);
  return Number(header);
}

/** The exact 429 body: the message names the limit and the wait; nothing else is in it. */
function expectRateLimited(response: GraphQLResponse, limit: { perSecond: number; burst: number }): number {
  expect(response.status).toBe(429);
  expect(response.headers.get('content-type')).toMatch(/^application\/(graphql-response\+)?json/);
  const seconds = retryAfterOf(response);
  expect(seconds).toBeGreaterThanOrEqual(1);
  expect(response.body).toEqual({
    errors: [{ message: rateLimitMessage(limit, seconds), extensions: { code: 'RATE_LIMITED' } }],
  });
  return seconds;
}

describe('the in-memory token bucket', () => {
  it('allows the burst, then refuses with the seconds until the next token, then refills', () => {
    let now = 0;
    const limiter = new MemoryRateLimiter(0.5, 2, 100, () => now);
    expect(limiter.takeNow('a')).toEqual({ allowed: true, retryAfterSeconds: 0 });
    expect(limiter.takeNow('a')).toEqual({ allowed: true, retryAfterSeconds: 0 });
    // Empty; one token every 2 s.
    expect(limiter.takeNow('a')).toEqual({ allowed: false, retryAfterSeconds: 2 });
    expect(limiter.takeNow('b')).toEqual({ allowed: true, retryAfterSeconds: 0 });
    now = 1_000;
    expect(limiter.takeNow('a')).toEqual({ allowed: false, retryAfterSeconds: 1 });
    now = 2_000;
    expect(limiter.takeNow('a')).toEqual({ allowed: true, retryAfterSeconds: 0 });
    expect(limiter.takeNow('a')).toEqual({ allowed: false, retryAfterSeconds: 2 });
    // A long rest never fills the bucket past the burst.
    now = 1_000_000;
    expect([1, 2, 3].map(() => limiter.takeNow('a').allowed)).toEqual([true, true, false]);
  });

  it('drops buckets that have refilled completely, so idle tokens hold no memory', () => {
    let now = 0;
    // 10 per second, burst 5: an empty bucket is full again after 500 ms.
    const limiter = new MemoryRateLimiter(10, 5, 100, () => now);
    for (const key of ['a', 'b', 'c']) limiter.takeNow(key);
    expect(limiter.size).toBe(3);
    now = 300;
    limiter.takeNow('b');
    now = 600;
    limiter.takeNow('d');
    // a and c are full (idle for 600 ms) and gone; b (300 ms ago) and d remain.
    expect(limiter.size).toBe(2);
    now = 10_000;
    limiter.takeNow('e');
    expect(limiter.size).toBe(1);
  });

  it('holds at most maxBuckets buckets, dropping the least recently used', () => {
    const limiter = new MemoryRateLimiter(1, 1, 3, () => 0);
    for (const key of ['a', 'b', 'c']) expect(limiter.takeNow(key).allowed).toBe(true);
    expect(limiter.takeNow('a').allowed).toBe(false);
    limiter.takeNow('d');
    expect(limiter.size).toBe(3);
    // b was the least recently used: dropped, so it starts over with a full bucket; a was kept.
    expect(limiter.takeNow('b').allowed).toBe(true);
    expect(limiter.takeNow('a').allowed).toBe(false);
  });
});

describe('rate-limit configuration', () => {
  it('defaults to 50 per second with bursts of 100, in memory', () => {
    expect(loadConfig({}).rateLimit).toEqual({
      perSecond: 50,
      burst: 100,
      redisUrl: undefined,
      redisKeyPrefix: 'people-graph:rate:',
    });
  });

  it('accepts fractions and 0 (off); refuses bad values naming the variable', () => {
    expect(loadConfig({ RATE_LIMIT_PER_SECOND: '0.5' }).rateLimit.perSecond).toBe(0.5);
    expect(loadConfig({ RATE_LIMIT_PER_SECOND: '0' }).rateLimit.perSecond).toBe(0);
    expect(() => loadConfig({ RATE_LIMIT_PER_SECOND: '-1' })).toThrow(/RATE_LIMIT_PER_SECOND/);
    expect(() => loadConfig({ RATE_LIMIT_PER_SECOND: 'fast' })).toThrow(/RATE_LIMIT_PER_SECOND/);
    expect(() => loadConfig({ RATE_LIMIT_PER_SECOND: '0.0001' })).toThrow(/RATE_LIMIT_PER_SECOND: must be 0/);
    expect(() => loadConfig({ RATE_LIMIT_BURST: '0' })).toThrow(/RATE_LIMIT_BURST/);
    expect(() => loadConfig({ RATE_LIMIT_BURST: '2.5' })).toThrow(/RATE_LIMIT_BURST/);
    expect(() => loadConfig({ REDIS_URL: 'http://127.0.0.1:6379' })).toThrow(/REDIS_URL: must start with redis:\/\//);
  });
});

describe('rate limiting per token, in memory', () => {
  const limit = { perSecond: 1, burst: 3 };
  let database: TestDatabase;
  let server: TestServer;

  beforeAll(async () => {
    database = await sqliteTarget.create();
    server = await startServer(database.url, { RATE_LIMIT_PER_SECOND: '1', RATE_LIMIT_BURST: '3' });
  });

  afterAll(async () => {
    await server?.close();
    await database?.drop();
  });

  it('answers the 4th quick request of a token 429 RATE_LIMITED with Retry-After; other tokens go on', async () => {
    const first = await namedToken(server, 'first');
    const other = await namedToken(server, 'other');

    for (let i = 0; i < 3; i += 1) {
      const response = await server.gql(QUERY, undefined, first.secret);
      expect(response.status).toBe(200);
      expect(response.body.errors).toBeUndefined();
      expect(response.headers.get('retry-after')).toBeNull();
    }
    const limited = await server.gql(QUERY, undefined, first.secret);
    const seconds = expectRateLimited(limited, limit);

    // Another token has its own bucket.
    const unaffected = await server.gql(QUERY, undefined, other.secret);
    expect(unaffected.status).toBe(200);
    expect(unaffected.body.errors).toBeUndefined();

    // After Retry-After, the token works again.
    await sleep(seconds * 1000);
    const again = await server.gql(QUERY, undefined, first.secret);
    expect(again.status).toBe(200);
    expect(again.body.errors).toBeUndefined();
  });

  it('refuses the whole operation before it runs: a refused mutation changes nothing', async () => {
    const writer = await namedToken(server, 'writer');
    for (let i = 0; i < 3; i += 1) {
      const created = await server.gql(CREATE, { input: { email: `burst${i}@example.com` } }, writer.secret);
      expect(created.body.errors).toBeUndefined();
    }
    expectRateLimited(await server.gql(CREATE, { input: { email: 'refused@example.com' } }, writer.secret), limit);
    const read = await server.gql(GET, { email: 'refused@example.com' });
    expect(read.body.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
  });

  it('charges no token for unauthenticated requests: they get 401, never 429', async () => {
    const { secret } = await namedToken(server, 'victim');
    const revoked = await namedToken(server, 'revoked');
    await server.app.tokens.revoke(revoked.id);
    for (let i = 0; i < 5; i += 1) {
      for (const token of [null, revoked.secret, `${secret}x`]) {
        const response = await server.gql(QUERY, undefined, token);
        expect(response.status).toBe(401);
        expect(response.body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
        expect(response.headers.get('retry-after')).toBeNull();
      }
    }
    // The token whose secret was tampered with still has its whole burst.
    for (let i = 0; i < 3; i += 1) expect((await server.gql(QUERY, undefined, secret)).status).toBe(200);
    expectRateLimited(await server.gql(QUERY, undefined, secret), limit);
  });

  it('is off with RATE_LIMIT_PER_SECOND=0', async () => {
    const unlimited = await startServer(database.url, { RATE_LIMIT_PER_SECOND: '0', RATE_LIMIT_BURST: '1' });
    try {
      const statuses = [];
      for (let i = 0; i < 10; i += 1) statuses.push((await unlimited.gql(QUERY)).status);
      expect(statuses).toEqual(Array(10).fill(200));
    } finally {
      await unlimited.close();
    }
  });
});

describe.skipIf(!redisUp)('rate limiting shared through Redis', () => {
  const prefix = uniquePrefix();
  const limit = { perSecond: 0.01, burst: 4 };
  let database: TestDatabase;
  let replicas: TestServer[];

  beforeAll(async () => {
    database = await (postgresTarget ?? sqliteTarget).create();
    // One token per 100 s: nothing refills while the test runs.
    const environment = {
      REDIS_URL,
      RATE_LIMIT_PER_SECOND: '0.01',
      RATE_LIMIT_BURST: '4',
      RATE_LIMIT_REDIS_PREFIX: prefix,
    };
    replicas = [await startServer(database.url, environment), await startServer(database.url, environment)];
  });

  afterAll(async () => {
    for (const replica of replicas ?? []) await replica.close();
    await database?.drop();
    if (redisUp) await deleteKeysUnder(prefix);
  });

  it('two replicas share one budget: alternating requests get exactly 4 successes, then 429s', async () => {
    const shared = await namedToken(replicas[0], 'shared');
    const statuses: number[] = [];
    const refusals: GraphQLResponse[] = [];
    for (let i = 0; i < 10; i += 1) {
      const response = await replicas[i % 2].gql(QUERY, undefined, shared.secret);
      statuses.push(response.status);
      if (response.status === 429) refusals.push(response);
      else expect(response.body.errors).toBeUndefined();
    }
    expect(statuses).toEqual([200, 200, 200, 200, 429, 429, 429, 429, 429, 429]);
    // Both replicas refuse, with the wait computed from the shared bucket (about 100 s).
    for (const refusal of refusals) expect(expectRateLimited(refusal, limit)).toBeGreaterThan(1);

    // The other replica's own admin token has its own bucket.
    expect((await replicas[1].gql(QUERY)).status).toBe(200);
  });

  it("keys Redis by the token's id, never its secret, with a TTL", async () => {
    const { id, secret } = await namedToken(replicas[1], 'keyed');
    expect((await replicas[1].gql(QUERY, undefined, secret)).status).toBe(200);
    const keys = await keysUnder(prefix);
    expect(keys).toContain(`${prefix}${id}`);
    expect(keys.join(' ')).not.toContain(secret);
    expect(keys.every((key) => /^[0-9a-f-]{36}$/.test(key.slice(prefix.length)))).toBe(true);
    const ttl = await redis.pttl(`${prefix}${id}`);
    // A key outlives a full refill (4 tokens at 0.01 per second: 400 s) by a second, no more.
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(401_000);
  });

  it('works again after Retry-After, computed by Redis', async () => {
    const fast = await startServer(database.url, {
      REDIS_URL,
      RATE_LIMIT_PER_SECOND: '1',
      RATE_LIMIT_BURST: '1',
      RATE_LIMIT_REDIS_PREFIX: prefix,
    });
    try {
      const { id, secret } = await namedToken(fast, 'fast');
      expect((await fast.gql(QUERY, undefined, secret)).status).toBe(200);
      expect(await redis.exists(`${prefix}${id}`)).toBe(1);
      const seconds = expectRateLimited(await fast.gql(QUERY, undefined, secret), { perSecond: 1, burst: 1 });
      await sleep(seconds * 1000);
      expect((await fast.gql(QUERY, undefined, secret)).status).toBe(200);
    } finally {
      await fast.close();
    }
  });
});

/**
 * The chosen behaviour when Redis cannot be reached: fail open to in-memory buckets per replica.
 * No request is refused because Redis is down, the limit still holds on each replica, one warning
 * is logged, /readyz stays about the database, and the shared buckets return with Redis.
 */
describe('rate limiting when Redis is unreachable', () => {
  const limit = { perSecond: 0.01, burst: 3 };
  let database: TestDatabase;

  beforeAll(async () => {
    database = await sqliteTarget.create();
  });

  afterAll(async () => {
    await database?.drop();
  });

  it('with REDIS_URL on a closed port: starts, serves, limits per replica, warns once, stays ready', async () => {
    const password = `pw${randomBytes(8).toString('hex')}`;
    const server = await startServer(database.url, {
      REDIS_URL: `redis://:${password}@127.0.0.1:${await closedPort()}`,
      RATE_LIMIT_PER_SECOND: '0.01',
      RATE_LIMIT_BURST: '3',
    });
    try {
      const { secret } = await namedToken(server, 'no-redis');
      for (let i = 0; i < 3; i += 1) {
        const response = await server.gql(QUERY, undefined, secret);
        expect(response.status).toBe(200);
        expect(response.body.errors).toBeUndefined();
      }
      expectRateLimited(await server.gql(QUERY, undefined, secret), limit);
      expect((await server.gql(QUERY)).status).toBe(200);

      const ready = await fetch(`${server.url}/readyz`);
      expect(ready.status).toBe(200);

      const warnings = server.logs.filter((line) => /Redis unreachable/.test(String(line.msg)));
      expect(warnings).toHaveLength(1);
      expect(warnings[0].level).toBe(40);
      expect(server.rawLogs.join('\n')).not.toContain(password);
    } finally {
      await server.close();
    }
  });

  describe.skipIf(!redisUp)('Redis behind a TCP proxy that is cut and restored', () => {
    const prefix = uniquePrefix();
    let proxy: TcpProxy;
    let server: TestServer;

    beforeAll(async () => {
      const target = new URL(REDIS_URL);
      proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 6379) });
      server = await startServer(database.url, {
        REDIS_URL: `redis://127.0.0.1:${proxy.port}`,
        RATE_LIMIT_PER_SECOND: '0.01',
        RATE_LIMIT_BURST: '3',
        RATE_LIMIT_REDIS_PREFIX: prefix,
      });
    });

    afterAll(async () => {
      await server?.close();
      await proxy?.close();
      if (redisUp) await deleteKeysUnder(prefix);
    });

    /** Sends requests of a probe token until its bucket shows up in Redis: the limiter is back on Redis. */
    async function waitUntilShared(): Promise<void> {
      const deadline = Date.now() + SAFETY_NET_MS;
      while (Date.now() < deadline) {
        const probe = await namedToken(server, 'probe');
        await server.gql(QUERY, undefined, probe.secret);
        if ((await redis.exists(`${prefix}${probe.id}`)) === 1) return;
        await sleep(100);
      }
      throw new Error('the service did not go back to Redis after it returned');
    }

    it('falls back per replica while Redis is cut (reset or blackholed), then shares Redis buckets again', async () => {
      const { id, secret } = await namedToken(server, 'outage');
      for (let i = 0; i < 3; i += 1) expect((await server.gql(QUERY, undefined, secret)).status).toBe(200);
      expectRateLimited(await server.gql(QUERY, undefined, secret), limit);
      expect(await redis.exists(`${prefix}${id}`)).toBe(1);

      for (const mode of ['reset', 'blackhole'] as const) {
        proxy.setMode(mode);
        // Redis is out of reach: requests are answered, from this replica's own (fresh) buckets.
        const during = await namedToken(server, `during-${mode}`);
        for (let i = 0; i < 3; i += 1) {
          const response = await server.gql(QUERY, undefined, during.secret);
          expect(response.status).toBe(200);
          expect(response.body.errors).toBeUndefined();
        }
        expectRateLimited(await server.gql(QUERY, undefined, during.secret), limit);
        expect((await fetch(`${server.url}/readyz`)).status).toBe(200);

        proxy.setMode('up');
        await waitUntilShared();
        // Back on Redis: the bucket the token emptied before the outage is still empty.
        const after = await server.gql(QUERY, undefined, secret);
        expect(expectRateLimited(after, limit)).toBeGreaterThan(1);
      }

      const messages = server.logs.map((line) => String(line.msg));
      expect(messages.filter((message) => /Redis unreachable/.test(message)).length).toBeGreaterThanOrEqual(2);
      expect(messages.filter((message) => /Redis reachable again/.test(message)).length).toBeGreaterThanOrEqual(2);
    });

    it('while Redis hangs, requests do not each wait for it: one probe at a time, the rest use local buckets', async () => {
      await waitUntilShared();
      const hang = await namedToken(server, 'hang');
      proxy.setMode('blackhole');
      const swallowedBefore = proxy.swallowed;
      const statuses: number[] = [];
      for (let i = 0; i < 20; i += 1) statuses.push((await server.gql(QUERY, undefined, hang.secret)).status);
      // Answered from this replica's buckets: the burst of 3, then 429s.
      expect(statuses).toEqual([200, 200, 200, ...Array(17).fill(429)]);
      // The first request found Redis silent; after it, one probe a second at most. Without the
      // probe rule each of the 20 sent its command and waited out the command timeout.
      expect(proxy.swallowed - swallowedBefore).toBeLessThanOrEqual(5);

      proxy.setMode('up');
      await waitUntilShared();
    });
  });
});
