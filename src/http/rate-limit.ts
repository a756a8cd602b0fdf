import { Redis, type Result } from 'ioredis';
import type { Logger } from 'pino';
import { rateLimited } from '../errors';

/** The per-token rate limit (README "Rate limiting"). */
export interface RateLimitSettings {
  /** Tokens added to a bucket per second; 0 turns rate limiting off (RATE_LIMIT_PER_SECOND). */
  perSecond: number;
  /** The bucket's size: how many requests a rested token may send at once (RATE_LIMIT_BURST). */
  burst: number;
  /** When set, the buckets live in Redis and every replica shares them (REDIS_URL). */
  redisUrl?: string;
  /** Prefix of the Redis keys; the token's id follows it (RATE_LIMIT_REDIS_PREFIX). */
  redisKeyPrefix: string;
}

export interface RateDecision {
  allowed: boolean;
  /** Whole seconds until the bucket holds a token again: 0 when allowed, otherwise at least 1. */
  retryAfterSeconds: number;
}

/** A token bucket per key. The key is an API token's id, never its secret. */
export interface RateLimiter {
  take(key: string): Promise<RateDecision>;
  close(): Promise<void>;
}

const ALLOWED: RateDecision = { allowed: true, retryAfterSeconds: 0 };

/** How long a refused request waits for the one token it lacks, in whole seconds (at least 1). */
function retryAfter(missingTokens: number, perSecond: number): number {
  return Math.max(1, Math.ceil(missingTokens / perSecond));
}

/** Rate limiting turned off (RATE_LIMIT_PER_SECOND=0). */
export const unlimited: RateLimiter = {
  take: async () => ALLOWED,
  close: async () => undefined,
};

interface Bucket {
  tokens: number;
  /** When `tokens` was computed (monotonic clock, ms). */
  at: number;
}

/**
 * Token buckets in this process. The Map is kept in order of last use (a bucket is moved to the
 * end on every take), so expiry is cheap: the buckets at the front that have refilled completely
 * are the same as no bucket and are dropped; past `maxBuckets` the least recently used goes.
 */
export class MemoryRateLimiter implements RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  /** Time for an empty bucket to fill up; an idle bucket older than this is full. */
  private readonly refillMs: number;

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
    private readonly maxBuckets = 100_000,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.refillMs = (burst / perSecond) * 1000;
  }

  /** Buckets currently held (for tests and metrics). */
  get size(): number {
    return this.buckets.size;
  }

  async take(key: string): Promise<RateDecision> {
    return this.takeNow(key);
  }

  takeNow(key: string): RateDecision {
    const now = this.now();
    this.dropFullBuckets(now);
    const bucket = this.buckets.get(key);
    let tokens = this.burst;
    if (bucket) {
      tokens = Math.min(this.burst, bucket.tokens + ((now - bucket.at) * this.perSecond) / 1000);
      this.buckets.delete(key);
    }
    const allowed = tokens >= 1;
    if (allowed) tokens -= 1;
    this.buckets.set(key, { tokens, at: now });
    if (this.buckets.size > this.maxBuckets) this.buckets.delete(this.buckets.keys().next().value as string);
    return allowed ? ALLOWED : { allowed: false, retryAfterSeconds: retryAfter(1 - tokens, this.perSecond) };
  }

  private dropFullBuckets(now: number): void {
    for (const [key, bucket] of this.buckets) {
      if (now - bucket.at < this.refillMs) return;
      this.buckets.delete(key);
    }
  }

  async close(): Promise<void> {
    this.buckets.clear();
  }
}

/**
 * The same token bucket, atomically in Redis, with Redis's clock (TIME) so that replicas with
 * skewed clocks agree. KEYS[1] the bucket; ARGV: tokens per second, burst, key TTL in ms.
 * Returns { 1, 0 } when allowed, { 0, ms until a token is there } when not.
 */
const TAKE_TOKEN_SCRIPT = `
if redis.replicate_commands then redis.replicate_commands() end
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + tonumber(time[2]) / 1000
local stored = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(stored[1])
local at = tonumber(stored[2])
if tokens == nil or at == nil then
  tokens = burst
else
  tokens = math.min(burst, tokens + math.max(0, now - at) * rate / 1000)
end
local allowed = 0
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  wait = math.ceil((1 - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'at', string.format('%.3f', now))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return { allowed, wait }
`;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    peopleGraphTakeToken(
      key: string,
      perSecond: string,
      burst: string,
      ttlMs: string,
    ): Result<[number, number], Context>;
  }
}

/** How long the service waits for Redis at start, and for one command, before falling back. */
const CONNECT_TIMEOUT_MS = 2_000;
const COMMAND_TIMEOUT_MS = 500;
/** While Redis is down, how often one request tries it again (the others do not wait for it). */
const PROBE_INTERVAL_MS = 1_000;

/**
 * Buckets shared by every replica through Redis. While Redis cannot be reached, requests are never
 * refused because of it: each replica falls back to its own in-memory buckets (the same limit,
 * per replica), logs one warning, and goes back to the shared buckets once Redis answers again.
 * A Redis that stops answering without closing the connection costs each command its timeout, so
 * while it is down only one request at a time, at most once a PROBE_INTERVAL_MS, tries it; the
 * others take the in-memory bucket at once.
 */
export class RedisRateLimiter implements RateLimiter {
  private readonly redis: Redis;
  private readonly fallback: MemoryRateLimiter;
  private readonly ttlMs: string;
  private degraded = false;
  private probing = false;
  private nextProbeAt = 0;

  private constructor(
    private readonly settings: RateLimitSettings & { redisUrl: string },
    private readonly logger: Logger,
  ) {
    this.fallback = new MemoryRateLimiter(settings.perSecond, settings.burst);
    // A key outlives a full refill by a second; once gone, the bucket is full, as it would be.
    this.ttlMs = String(Math.ceil((settings.burst / settings.perSecond) * 1000) + 1000);
    this.redis = new Redis(settings.redisUrl, {
      lazyConnect: true,
      // Commands fail at once while disconnected instead of queueing: requests fall back and go on.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      connectTimeout: CONNECT_TIMEOUT_MS,
      commandTimeout: COMMAND_TIMEOUT_MS,
    });
    this.redis.defineCommand('peopleGraphTakeToken', { numberOfKeys: 1, lua: TAKE_TOKEN_SCRIPT });
    // ioredis reconnects by itself; every failed attempt is an 'error' event.
    this.redis.on('error', (error: Error) => this.markDown(error));
  }

  /** Connects (waiting at most a few seconds); an unreachable Redis does not stop the start. */
  static async connect(settings: RateLimitSettings & { redisUrl: string }, logger: Logger): Promise<RedisRateLimiter> {
    const limiter = new RedisRateLimiter(settings, logger);
    try {
      await limiter.redis.connect();
    } catch (error) {
      limiter.markDown(error);
    }
    return limiter;
  }

  async take(key: string): Promise<RateDecision> {
    if (this.degraded && (this.probing || performance.now() < this.nextProbeAt)) return this.fallback.takeNow(key);
    const probe = this.degraded;
    this.probing ||= probe;
    let allowed: number;
    let waitMs: number;
    try {
      [allowed, waitMs] = await this.redis.peopleGraphTakeToken(
        this.settings.redisKeyPrefix + key,
        String(this.settings.perSecond),
        String(this.settings.burst),
        this.ttlMs,
      );
    } catch (error) {
      this.markDown(error);
      return this.fallback.takeNow(key);
    } finally {
      if (probe) this.probing = false;
    }
    this.markUp();
    if (allowed === 1) return ALLOWED;
    return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000)) };
  }

  private markDown(error: unknown): void {
    this.nextProbeAt = performance.now() + PROBE_INTERVAL_MS;
    if (this.degraded) return;
    this.degraded = true;
    // The message only: the URL, which may hold a password, is never logged.
    this.logger.warn(
      { redisError: error instanceof Error ? error.message : String(error) },
      'Redis unreachable: rate limits fall back to in-memory buckets per replica until it answers again',
    );
  }

  private markUp(): void {
    if (!this.degraded) return;
    this.degraded = false;
    this.logger.info('Redis reachable again: rate limits are shared by all replicas again');
  }

  async close(): Promise<void> {
    await this.fallback.close();
    if (this.redis.status === 'ready') {
      try {
        await this.redis.quit();
        return;
      } catch {
        // Fall through: drop the connection.
      }
    }
    this.redis.disconnect();
  }
}

/** The limiter the settings ask for: none (rate 0), in this process, or shared through Redis. */
export async function createRateLimiter(settings: RateLimitSettings, logger: Logger): Promise<RateLimiter> {
  if (settings.perSecond === 0) return unlimited;
  if (settings.redisUrl) return RedisRateLimiter.connect({ ...settings, redisUrl: settings.redisUrl }, logger);
  return new MemoryRateLimiter(settings.perSecond, settings.burst);
}

/** The message of a 429: the limit and when to come back. */
export function rateLimitMessage(settings: Pick<RateLimitSettings, 'perSecond' | 'burst'>, seconds: number): string {
  return (
    `Rate limit exceeded for this token (${settings.perSecond} requests per second, bursts of ${settings.burst}); ` +
    `retry after ${seconds} second${seconds === 1 ? '' : 's'}`
  );
}

/** Charges one request to the token; throws RATE_LIMITED (429 + Retry-After) when its bucket is empty. */
export async function enforceRateLimit(
  limiter: RateLimiter,
  settings: RateLimitSettings,
  tokenId: string,
): Promise<void> {
  const decision = await limiter.take(tokenId);
  if (decision.allowed) return;
  const seconds = decision.retryAfterSeconds;
  throw rateLimited(rateLimitMessage(settings, seconds), seconds);
}
