import path from 'node:path';
import sqlite3 from 'sqlite3';
import { DataSource, MigrationExecutor, type DataSourceOptions, type Migration } from 'typeorm';
import { ConfigError } from '../config';
import { Person } from '../people/person.entity';
import { ApiToken } from '../auth/token.entity';
import { migrations } from './migrations';

export type Dialect = 'sqlite' | 'postgres';

export function dialectOf(databaseUrl: string): Dialect {
  return databaseUrl.startsWith('sqlite:') ? 'sqlite' : 'postgres';
}

/** `sqlite:./data/people.sqlite` -> `./data/people.sqlite`; `sqlite::memory:` -> `:memory:`. */
export function sqlitePath(databaseUrl: string): string {
  const location = databaseUrl.slice('sqlite:'.length);
  return location === ':memory:' ? location : path.resolve(location);
}

// TypeORM calls sqlite3.verbose(), which wraps every call to record stack traces; hand it the
// plain module instead.
const sqliteWithoutVerbose = Object.assign(Object.create(sqlite3) as typeof sqlite3, {
  verbose: () => sqlite3,
});

/** Options only the service sets; the CLIs and ormconfig.ts leave them unset. */
export interface ConnectionSettings {
  /** PostgreSQL's statement_timeout for every connection of the pool (ms); unset: none. */
  statementTimeoutMs?: number;
  /**
   * PostgreSQL: how long the client waits for the answer to any query (ms); unset: forever. When
   * it runs out the query fails (isDatabaseUnavailable) and its connection is dropped from the
   * pool, so that a silent network (no RST, no FIN) cannot hold requests or connections forever.
   */
  queryTimeoutMs?: number;
  /** PostgreSQL: the most connections this process opens (DATABASE_POOL_SIZE); unset: 20. */
  poolSize?: number;
}

/** The TypeORM options for a DATABASE_URL: the service, its CLIs and ormconfig.ts share these. */
export function dataSourceOptions(databaseUrl: string, settings: ConnectionSettings = {}): DataSourceOptions {
  const common = { entities: [Person, ApiToken], migrations, synchronize: false, logging: false };
  if (dialectOf(databaseUrl) === 'sqlite') {
    return {
      ...common,
      type: 'sqlite',
      database: sqlitePath(databaseUrl),
      driver: sqliteWithoutVerbose,
      enableWAL: true,
      busyTimeout: 5000,
    };
  }
  return {
    ...common,
    type: 'postgres',
    url: databaseUrl,
    extra: {
      max: settings.poolSize ?? 20,
      connectionTimeoutMillis: 3000,
      // Sent in each connection's startup message: no extra round trip per statement.
      ...(settings.statementTimeoutMs ? { statement_timeout: settings.statementTimeoutMs } : {}),
      ...(settings.queryTimeoutMs ? { query_timeout: settings.queryTimeoutMs } : {}),
    },
  };
}

export function createDataSource(databaseUrl: string, settings: ConnectionSettings = {}): DataSource {
  return new DataSource(dataSourceOptions(databaseUrl, settings));
}

/** DATABASE_URL as it may be shown: its password replaced by `***`. */
export function displayedDatabaseUrl(databaseUrl: string): string {
  if (dialectOf(databaseUrl) === 'sqlite') return databaseUrl;
  try {
    const url = new URL(databaseUrl);
    if (url.password) url.password = '***';
    return url.toString();
  } catch {
    return 'postgres://…';
  }
}

/** The driver's reason; a connection that tried several addresses fails with one per address. */
function reasonOf(error: unknown): string {
  if (error instanceof AggregateError && !error.message) {
    return [...new Set(error.errors.map((inner: unknown) => reasonOf(inner)))].join('; ');
  }
  return error instanceof Error ? error.message : String(error);
}

/**
 * Connects to (or opens) the database. Failing that, the start stops with one line naming
 * DATABASE_URL (without its password) and the driver's reason, instead of a stack trace.
 */
export async function initializeDataSource(dataSource: DataSource, databaseUrl: string): Promise<void> {
  try {
    await dataSource.initialize();
  } catch (error) {
    throw new ConfigError(
      `Cannot open the database of DATABASE_URL ${displayedDatabaseUrl(databaseUrl)}: ${reasonOf(error)}`,
      { cause: error },
    );
  }
}

/** A fixed key: the PostgreSQL advisory lock under which this service's migrations run. */
export const MIGRATION_LOCK_KEY = 7_301_948_526;

/** What a migrating process is told, for its log. */
export interface MigrationEvents {
  /** Another process holds the migration lock: this one waits for it. */
  onLockWait?: () => void;
  /** The migrations this process applied (none when the database was up to date). */
  onApplied?: (names: string[]) => void;
}

/**
 * Applies the pending migrations, each in its own transaction, and returns those it applied. On
 * PostgreSQL they run on one connection that holds an advisory lock meanwhile: replicas that start
 * together take turns (the first migrates, the others then find nothing pending), where they
 * would race to create the same tables and all but one fail to start. A process that has to wait
 * says so (`onLockWait`), so that a start held up by another's migrations is not a mystery.
 */
export async function runMigrations(dataSource: DataSource, events: MigrationEvents = {}): Promise<Migration[]> {
  const runner = dataSource.createQueryRunner();
  const postgres = dataSource.options.type === 'postgres';
  try {
    if (postgres) {
      const [{ locked }] = (await runner.query('SELECT pg_try_advisory_lock($1) AS locked', [MIGRATION_LOCK_KEY])) as {
        locked: boolean;
      }[];
      if (!locked) {
        events.onLockWait?.();
        await runner.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
      }
    }
    const executor = new MigrationExecutor(dataSource, runner);
    executor.transaction = 'each';
    try {
      const applied = await executor.executePendingMigrations();
      events.onApplied?.(applied.map((migration) => migration.name));
      return applied;
    } finally {
      if (postgres) await runner.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
    }
  } finally {
    await runner.release();
  }
}

/**
 * Applies the pending migrations of DATABASE_URL on a connection of its own, without the service's
 * statement and query timeouts, so that neither a long migration nor the wait for another
 * replica's is cut short (`npm run migrate`, and the service's start on PostgreSQL).
 */
export async function migrateDatabase(databaseUrl: string, events: MigrationEvents = {}): Promise<Migration[]> {
  const dataSource = createDataSource(databaseUrl);
  await initializeDataSource(dataSource, databaseUrl);
  try {
    return await runMigrations(dataSource, events);
  } finally {
    await dataSource.destroy();
  }
}
