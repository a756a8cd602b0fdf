import type { DataSource, EntityManager } from 'typeorm';
import { createDataSource, dialectOf, type Dialect } from './data-source';

/**
 * The service's handle on its database: one TypeORM DataSource plus the write discipline each
 * dialect needs. SQLite has a single connection, so transactions must not overlap: writes are
 * queued and run one at a time. PostgreSQL runs them concurrently on its pool.
 */
export class Database {
  private writeQueue: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly dataSource: DataSource,
    readonly dialect: Dialect,
  ) {}

  static async open(databaseUrl: string, options: { migrate?: boolean } = {}): Promise<Database> {
    const dataSource = createDataSource(databaseUrl);
    await dataSource.initialize();
    const database = new Database(dataSource, dialectOf(databaseUrl));
    if (database.dialect === 'sqlite') {
      // WAL with FULL sync: a write that was answered survives a crash or power loss.
      await dataSource.query('PRAGMA synchronous = FULL');
    }
    if (options.migrate ?? true) await dataSource.runMigrations({ transaction: 'each' });
    return database;
  }

  get manager(): EntityManager {
    return this.dataSource.manager;
  }

  /** Runs `work` in a transaction; on SQLite, after every earlier write has finished. */
  write<T>(work: (manager: EntityManager) => Promise<T>): Promise<T> {
    if (this.dialect === 'postgres') return this.dataSource.transaction(work);
    const result = this.writeQueue.then(() => this.dataSource.transaction(work));
    this.writeQueue = result.catch(() => undefined);
    return result;
  }

  /** Resolves when the database answers a trivial query. */
  async ping(): Promise<void> {
    await this.dataSource.query('SELECT 1');
  }

  async close(): Promise<void> {
    if (this.dataSource.isInitialized) await this.dataSource.destroy();
  }
}
