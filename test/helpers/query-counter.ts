import type { DataSource, QueryRunner } from 'typeorm';

/**
 * Counts the SQL statements a TypeORM DataSource runs while a block of test code runs.
 *
 *   const { count, statements, result } = await countQueries(app.database.dataSource, () => gql(QUERY));
 *   const personStatements = statements.filter(onTable('person'));
 *
 * How: the `query` method of the query-runner class of the DataSource's driver (SqliteQueryRunner,
 * PostgresQueryRunner, ...) is wrapped for the duration of the block and restored afterwards. It is
 * instrumentation, not a mock: every statement still runs on the real database and returns its real
 * result. Every statement TypeORM sends goes through that method (repositories, query builders,
 * `dataSource.query`, and BEGIN/COMMIT/ROLLBACK/SAVEPOINT of transactions), on any connection of the
 * pool.
 *
 * What is recorded, with nothing left out:
 * - every statement of this DataSource that *starts* while the block runs, in the order they start,
 *   including statements that fail (marked `failed`) and statements the request causes outside the
 *   resolvers (the Bearer token lookup, its last-used bookkeeping, transaction control). Bookkeeping
 *   that a request fires without awaiting it may start after the request has answered, so it can
 *   fall inside or outside the block; filter on the table you mean (`onTable('person')`) rather than
 *   asserting on the raw total;
 * - statements of other DataSources (another server in the same test process) are not recorded.
 *
 * Not seen: SQL sent straight to the driver's connections without going through TypeORM (a
 * hand-written client on `driver.databaseConnection` or on the pg pool). If the app moves a path to
 * such a client, count it there.
 *
 * Counters may be nested or overlap (each sees every statement of its DataSource during its own
 * block); the method is restored when the last one ends, also when the block throws.
 */

export interface RecordedStatement {
  sql: string;
  parameters: readonly unknown[];
  /** Set once the statement has failed; false while it runs or after it succeeded. */
  failed: boolean;
}

export interface QueryCount<T> {
  /** How many statements started during the block. */
  count: number;
  /** Their SQL text, in the order they started. */
  statements: string[];
  /** The same statements with their parameters and outcome. */
  recorded: RecordedStatement[];
  /** What the block returned. */
  result: T;
}

type QueryMethod = QueryRunner['query'];
type Listener = (runner: QueryRunner, entry: RecordedStatement) => void;

interface Patch {
  owner: { query: QueryMethod };
  original: QueryMethod;
  patched: QueryMethod;
  listeners: Set<Listener>;
}

/** One patch per query-runner class, shared by every counter active on it. */
const patches = new Map<object, Patch>();

/** The prototype in the driver's query-runner chain that defines `query` itself. */
function queryMethodOwner(dataSource: DataSource): { query: QueryMethod } {
  if (!dataSource.isInitialized) throw new Error('countQueries needs an initialized DataSource');
  // SQLite hands out its one shared runner; PostgreSQL a new, not yet connected one (no connection
  // is taken from the pool until a runner runs a statement, so it is released straight away).
  const runner = dataSource.driver.createQueryRunner('master');
  const shared = dataSource.options.type === 'sqlite' || dataSource.options.type === 'better-sqlite3';
  if (!shared) void runner.release();
  let prototype: object | null = Object.getPrototypeOf(runner) as object | null;
  while (prototype && !Object.prototype.hasOwnProperty.call(prototype, 'query')) {
    prototype = Object.getPrototypeOf(prototype) as object | null;
  }
  if (!prototype) throw new Error(`No query method on ${runner.constructor.name}`);
  return prototype as { query: QueryMethod };
}

function install(owner: { query: QueryMethod }): Patch {
  const existing = patches.get(owner);
  if (existing) return existing;
  const original = owner.query;
  const listeners = new Set<Listener>();
  const patched = async function (this: QueryRunner, sql: string, parameters?: unknown[], ...rest: unknown[]) {
    const entry: RecordedStatement = { sql, parameters: [...(parameters ?? [])], failed: false };
    for (const listener of listeners) listener(this, entry);
    try {
      return await (original as (...args: unknown[]) => Promise<unknown>).call(this, sql, parameters, ...rest);
    } catch (error) {
      entry.failed = true;
      throw error;
    }
  } as QueryMethod;
  owner.query = patched;
  const patch = { owner, original, patched, listeners };
  patches.set(owner, patch);
  return patch;
}

function uninstall(patch: Patch): void {
  if (patch.listeners.size > 0) return;
  patches.delete(patch.owner);
  // Put back what was there, unless someone else has wrapped it on top of us since.
  if (patch.owner.query === patch.patched) patch.owner.query = patch.original;
}

/** Runs `block` and reports every SQL statement `dataSource` started meanwhile (see above). */
export async function countQueries<T>(dataSource: DataSource, block: () => Promise<T>): Promise<QueryCount<T>> {
  const patch = install(queryMethodOwner(dataSource));
  const recorded: RecordedStatement[] = [];
  const listener: Listener = (runner, entry) => {
    if (runner.connection === dataSource) recorded.push(entry);
  };
  patch.listeners.add(listener);
  let result: T;
  try {
    result = await block();
  } finally {
    patch.listeners.delete(listener);
    uninstall(patch);
  }
  const taken = [...recorded];
  return { count: taken.length, statements: taken.map((entry) => entry.sql), recorded: taken, result };
}

/**
 * A filter for `statements`: true for SQL that reads or writes `table` (FROM, JOIN, INTO, UPDATE,
 * DELETE FROM), quoted as TypeORM quotes it on SQLite and PostgreSQL ("person") or unquoted.
 */
export function onTable(table: string): (sql: string) => boolean {
  const escaped = table.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const pattern = new RegExp(`\\b(?:FROM|JOIN|INTO|UPDATE)\\s+(?:"${escaped}"|\`${escaped}\`|${escaped}\\b)`, 'i');
  return (sql) => pattern.test(sql);
}
