import { z } from 'zod';

const booleanFlag = z.enum(['true', 'false']).transform((value) => value === 'true');

const databaseUrl = z
  .string()
  .min(1)
  .refine((url) => /^(sqlite:|postgres:\/\/|postgresql:\/\/)/.test(url), {
    message: 'must start with sqlite: or postgres://',
  });

const environmentSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(4000),
  HOST: z.string().min(1).default('0.0.0.0'),
  DATABASE_URL: databaseUrl.default('sqlite:./data/people.sqlite'),
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  MAX_PAGE_SIZE: z.coerce.number().int().min(1).max(1000).default(100),
  BODY_LIMIT_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .default(100 * 1024),
  SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().min(0).default(10_000),
  GRAPHQL_IDE: booleanFlag.optional(),
  GRAPHQL_INTROSPECTION: booleanFlag.optional(),
  GRAPHQL_STACKTRACES: booleanFlag.default(false),
});

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
  ide: boolean;
  introspection: boolean;
  stacktraces: boolean;
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
    ide: env.GRAPHQL_IDE ?? !production,
    introspection: env.GRAPHQL_INTROSPECTION ?? !production,
    stacktraces: env.GRAPHQL_STACKTRACES,
  };
}
