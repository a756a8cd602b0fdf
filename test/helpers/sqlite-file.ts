import sqlite3 from 'sqlite3';
import { sqlitePath } from '../../src/db/data-source';

/** A direct connection to a SQLite database file, outside the service, for checks after a fault. */
export interface SqliteFile {
  all<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  close(): Promise<void>;
}

export async function openSqliteFile(databaseUrl: string): Promise<SqliteFile> {
  const db = await new Promise<sqlite3.Database>((resolve, reject) => {
    const opened = new sqlite3.Database(sqlitePath(databaseUrl), (error) => (error ? reject(error) : resolve(opened)));
  });
  return {
    all: <T>(sql: string, params: unknown[] = []) =>
      new Promise<T[]>((resolve, reject) =>
        db.all(sql, params, (error: Error | null, rows: T[]) => (error ? reject(error) : resolve(rows))),
      ),
    close: () => new Promise<void>((resolve, reject) => db.close((error) => (error ? reject(error) : resolve()))),
  };
}
