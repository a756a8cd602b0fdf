import type { DataSource, EntityManager } from 'typeorm';
import type { OperationBudget } from '../operation-budget';
import {
  createDataSource,
  dialectOf,
  initializeDataSource,
  migrateDatabase,
  runMigrations,
  sqlitePath,
  type ConnectionSettings,
  type Dialect,
  type MigrationEvents,
} from './data-source';
import { openSqlClient, type SqlClient, type SqlExecutor } from './sql-client';

/**
 * The service's handle on its database: the TypeORM DataSource (connections, entities,
 * migrations) and, on the same connections, the SQL client that the hot paths and every write
 * go through.
 */
export class Database {
  private constructor(
    readonly dataSource: DataSource,
    readonly dialect: Dialect,
    readonly sql: SqlClient,
  ) {}

  /**
   * `statementTimeoutMs` (PostgreSQL): the server cancels any statement of this connection pool
   * that runs longer, so that a runaway statement does not outlive its operation's time budget.
   * `queryTimeoutMs` (PostgreSQL): the client gives up on any query unanswered for that long
   * (see ConnectionSettings).
   */
  static async open(
    databaseUrl: string,
    options: { migrate?: boolean; migrationEvents?: MigrationEvents } & ConnectionSettings = {},
  ): Promise<Database> {
    const dialect = dialectOf(databaseUrl);
    const { migrate = true, migrationEvents, ...settings } = options;
    // PostgreSQL migrates on a connection without this pool's timeouts (see migrateDatabase).
    if (migrate && dialect === 'postgres') await migrateDatabase(databaseUrl, migrationEvents);
    const dataSource = createDataSource(databaseUrl, settings);
    await initializeDataSource(dataSource, databaseUrl);
    try {
      if (dialect === 'sqlite') {
        // WAL with FULL sync: a write that was answered survives a crash or power loss.
        await dataSource.query('PRAGMA synchronous = FULL');
        // On its own connection: `sqlite::memory:` exists only on this one.
        if (migrate) await runMigrations(dataSource, migrationEvents);
      }
      const sql = await openSqlClient(dataSource, dialect, dialect === 'sqlite' ? sqlitePath(databaseUrl) : '');
      return new Database(dataSource, dialect, sql);
    } catch (error) {
      await dataSource.destroy();
      throw error;
    }
  }

  get manager(): EntityManager {
    return this.dataSource.manager;
  }

  /** Runs `work` atomically; it settles after the commit (see SqlClient.write). */
  write<T>(work: (sql: SqlExecutor) => Promise<T>, budget?: OperationBudget): Promise<T> {
    return this.sql.write(work, budget);
  }

  /** Resolves when the database answers a trivial query. */
  ping(): Promise<void> {
    return this.sql.ping();
  }

  async close(): Promise<void> {
    await this.sql.close();
    if (this.dataSource.isInitialized) await this.dataSource.destroy();
  }
}
