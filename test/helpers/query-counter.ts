import type { Database } from '../../src/db/database';
import type { SqlValue } from '../../src/db/sql-client';

/**
 * Records the SQL statements the service sends while a block of test code runs:
 *
 *   const { count, statements, result } = await countQueries(server.app.database, () => server.gql(QUERY));
 *   const personStatements = statements.filter(onTable('person'));
 *
 * It listens on the service's SqlClient, which every runtime read and write goes through (the
 * token lookup and its last-used bookkeeping, person reads, writes with their BEGIN/SAVEPOINT/
 * COMMIT). It is instrumentation, not a mock: every statement still runs for real. Bookkeeping a
 * request fires without awaiting may land inside or outside the block, so filter on the table you
 * mean rather than asserting on the raw total.
 */
export interface RecordedStatement {
  sql: string;
  parameters: readonly SqlValue[];
}

export interface QueryCount<T> {
  count: number;
  statements: string[];
  recorded: RecordedStatement[];
  result: T;
}

export async function countQueries<T>(database: Database, block: () => Promise<T>): Promise<QueryCount<T>> {
  const recorded: RecordedStatement[] = [];
  const stop = database.sql.observe((sql, parameters) => recorded.push({ sql, parameters: [...parameters] }));
  let result: T;
  try {
    result = await block();
  } finally {
    stop();
  }
  return { count: recorded.length, statements: recorded.map((entry) => entry.sql), recorded, result };
}

/** A filter for `statements`: true for SQL that reads or writes `table` (FROM, JOIN, INTO, UPDATE). */
export function onTable(table: string): (sql: string) => boolean {
  const escaped = table.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const pattern = new RegExp(`\\b(?:FROM|JOIN|INTO|UPDATE)\\s+(?:"${escaped}"|${escaped}\\b)`, 'i');
  return (sql) => pattern.test(sql);
}
