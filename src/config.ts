import { z } from 'zod';
import type { CorsOrigins } from './http/cors';
import type { RateLimitSettings } from './http/rate-limit';
import type { OperationLimitSettings } from './operation-limits';

const booleanFlag = z.enum(['true', 'false']).transform((value) => value === 'true');

const databaseUrl = z
  .string()
  .min(1)
  // `sqlite://./x` would open /x: the path follows `sqlite:` directly.
  .refine((url) => /^(sqlite:(?!\/\/).|postgres:\/\/|postgresql:\/\/)/.test(url), {
    message: 'must be sqlite:<path> (e.g. sqlite:./data/people.sqlite, sqlite::memory:) or postgres://…',
  });

/**
 * A number written plainly in decimal: `0x10`, `1e3`, ` 5` or `Infinity` are refused, where
 * JavaScript's Number() would read them. Within [min, max]; `fraction` allows digits after a point.
 */
const decimal = (min: number, max: number, { fraction = false } = {}) =>
  z
    .string()
    .regex(
      fraction ? /^\d+(\.\d+)?$/ : /^\d+$/,
      fraction ? 'must be a decimal number, such as 12 or 0.5' : 'must be a whole number in decimal digits',
    )
    .transform(Number)
    .pipe(z.number().min(min).max(max));

/** An origin as browsers send it: scheme, host and port if any; no path, not even a trailing slash. */
const isOrigin = (value: string) => {
  try {
    const url = new URL(value);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.origin === value;
  } catch {
    return false;
  }
};

/** `*`, or a comma-separated list of exact origins (`https://app.example.com,http://localhost:5173`). */
const corsOrigins = z
  .string()
  .transform((list) =>
    list
      .split(',')
      .map((origin) => origin.trim())
      .filter(Boolean),
  )
  .refine((origins) => (origins.length === 1 && origins[0] === '*') || origins.every(isOrigin), {
    message: 'must be * or a comma-separated list of origins such as https://app.example.com (no path)',
  })
  .transform((origins): CorsOrigins => (origins[0] === '*' ? '*' : origins));

/** Timers: at most a day (setTimeout and PostgreSQL's statement_timeout stop at 2^31 - 1 ms). */
const MAX_TIMER_MS = 86_400_000;
const milliseconds = (min: number) => decimal(min, MAX_TIMER_MS);
const UNBOUNDED = Number.MAX_SAFE_INTEGER;

const environmentSchema = z.object({
  PORT: decimal(0, 65535).default(4000),
  HOST: z.string().min(1).default('0.0.0.0'),
  DATABASE_URL: databaseUrl.default('sqlite:./data/people.sqlite'),
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  MAX_PAGE_SIZE: decimal(1, 1000).default(100),
  BODY_LIMIT_BYTES: decimal(1024, UNBOUNDED).default(100 * 1024),
  SHUTDOWN_TIMEOUT_MS: milliseconds(0).default(10_000),
  // A client that sends its request slowly (slowloris) holds a connection only this long.
  REQUEST_TIMEOUT_MS: milliseconds(100).default(30_000),
  // Unset: OPERATION_TIMEOUT_MS + 1 s (see loadConfig).
  DATABASE_QUERY_TIMEOUT_MS: milliseconds(1).optional(),
  // PostgreSQL connections per process: replicas x this must stay below max_connections.
  DATABASE_POOL_SIZE: decimal(1, 1000).default(20),
  GRAPHQL_IDE: booleanFlag.optional(),
  GRAPHQL_INTROSPECTION: booleanFlag.optional(),
  GRAPHQL_STACKTRACES: booleanFlag.default(false),
  // Operation limits (README "Security and operations: limits"). Every query of this schema,
  // GraphiQL's introspection (depth 15, cost about 15,600) included, is well within them.
  MAX_DEPTH: decimal(1, UNBOUNDED).default(15),
  MAX_ALIASES: decimal(0, UNBOUNDED).default(15),
  MAX_DIRECTIVES: decimal(0, UNBOUNDED).default(50),
  MAX_TOKENS: decimal(1, UNBOUNDED).default(1000),
  MAX_COST: decimal(1, UNBOUNDED).default(20_000),
  TOKEN_CACHE_TTL_MS: decimal(0, 300_000).default(1_000),
  OPERATION_TIMEOUT_MS: milliseconds(1).default(10_000),
  // Rate limiting per token (README "Rate limiting"); 0 turns it off, fractions are allowed.
  RATE_LIMIT_PER_SECOND: decimal(0, 1e9, { fraction: true })
    .refine((rate) => rate === 0 || rate >= 0.001, 'must be 0 (off) or at least 0.001')
    .default(50),
  RATE_LIMIT_BURST: decimal(1, 1e9).default(100),
  REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\//, 'must start with redis:// or rediss://')
    .optional(),
  RATE_LIMIT_REDIS_PREFIX: z.string().max(200).default('people-graph:rate:'),
  // Browser origins allowed to call the API (README "Calling it from a browser app").
  CORS_ORIGINS: corsOrigins.default([]),
});

/** How much longer than an operation's budget a query may go unanswered by default. */
const QUERY_TIMEOUT_MARGIN_MS = 1_000;

export type Environment = Record<string, string | undefined>;

export interface Config {
  port: number;
  host: string;
  databaseUrl: string;
  production: boolean;
  logLevel: z.infer<typeof environmentSchema>['LOG_LEVEL'];
  maxPageSize: number;
  bodyLimitBytes: number;
  shutdownTimeoutMs: number;
  /** How long a client may take to send a whole request, headers and body (408 after). */
  requestTimeoutMs: number;
  /** PostgreSQL: how long to wait for any answer before counting the database unavailable (503). */
  databaseQueryTimeoutMs: number;
  /** PostgreSQL: the most connections this process opens (DATABASE_POOL_SIZE). */
  databasePoolSize: number;
  ide: boolean;
  introspection: boolean;
  stacktraces: boolean;
  limits: OperationLimitSettings;
  /** The time budget of one operation; past it the operation is cancelled (503 TIMEOUT). */
  operationTimeoutMs: number;
  rateLimit: RateLimitSettings;
  /** How long a verified token is trusted before the database is asked again (0: every request). */
  tokenCacheTtlMs: number;
  /** Origins whose pages may call the API from a browser (none by default). */
  corsOrigins: CorsOrigins;
}

export class ConfigError extends Error {}

/** The only reader of process.env: validates it once and returns typed settings. */
export function loadConfig(environment: Environment = process.env): Config {
  // Empty variables count as unset, as in most shells' `VAR= cmd`.
  const present = Object.fromEntries(
    Object.entries(environment).filter(([, value]) => value !== undefined && value !== ''),
  );
  const parsed = environmentSchema.safeParse(present);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigError(`Invalid configuration: ${problems.join('; ')}`);
  }
  const env = parsed.data;
  const production = env.NODE_ENV === 'production';
  return {
    port: env.PORT,
    host: env.HOST,
    databaseUrl: env.DATABASE_URL,
    production,
    logLevel: env.LOG_LEVEL,
    maxPageSize: env.MAX_PAGE_SIZE,
    bodyLimitBytes: env.BODY_LIMIT_BYTES,
    shutdownTimeoutMs: env.SHUTDOWN_TIMEOUT_MS,
    requestTimeoutMs: env.REQUEST_TIMEOUT_MS,
    // Later than the operation's own budget by default: a query that is merely slow is cancelled
    // by statement_timeout and answered TIMEOUT; only a database that does not answer at all is
    // counted unavailable (and its connection dropped).
    databaseQueryTimeoutMs: env.DATABASE_QUERY_TIMEOUT_MS ?? env.OPERATION_TIMEOUT_MS + QUERY_TIMEOUT_MARGIN_MS,
    databasePoolSize: env.DATABASE_POOL_SIZE,
    ide: env.GRAPHQL_IDE ?? !production,
    introspection: env.GRAPHQL_INTROSPECTION ?? !production,
    stacktraces: env.GRAPHQL_STACKTRACES,
    limits: {
      maxDepth: env.MAX_DEPTH,
      maxAliases: env.MAX_ALIASES,
      maxDirectives: env.MAX_DIRECTIVES,
      maxTokens: env.MAX_TOKENS,
      maxCost: env.MAX_COST,
    },
    operationTimeoutMs: env.OPERATION_TIMEOUT_MS,
    tokenCacheTtlMs: env.TOKEN_CACHE_TTL_MS,
    corsOrigins: env.CORS_ORIGINS,
    rateLimit: {
      perSecond: env.RATE_LIMIT_PER_SECOND,
      burst: env.RATE_LIMIT_BURST,
      redisUrl: env.REDIS_URL,
      redisKeyPrefix: env.RATE_LIMIT_REDIS_PREFIX,
    },
  };
}
