import pg from 'pg';
import sqlite3 from 'sqlite3';
import type { DataSource } from 'typeorm';
import { isDatabaseUnavailable } from '../errors';
import type { OperationBudget } from '../operation-budget';
import type { Dialect } from './data-source';

export type SqlValue = string | number | null | readonly string[];
export type SqlRow = Record<string, unknown>;

/** What a unit of write work may do: statements inside the unit's transaction. */
export interface SqlExecutor {
  all<T = SqlRow>(sql: string, params?: readonly SqlValue[]): Promise<T[]>;
  /** Runs a statement and returns the number of rows it changed. */
  run(sql: string, params?: readonly SqlValue[]): Promise<number>;
}

/**
 * Hand-written SQL on the connections TypeORM opened, for the hot paths: statements are written
 * once with `$1…$n` placeholders and prepared (and cached) on either database.
 */
export interface SqlClient {
  readonly dialect: Dialect;
  /** `column IN (the list bound at placeholder)`, written the way this database does it best. */
  inList(column: string, placeholder: string): string;
  /** The value to bind for inList's placeholder. */
  listParameter(values: readonly string[]): SqlValue;
  /** Calls `listener` with the text of every statement about to run; returns the unsubscribe. */
  observe(listener: StatementListener): () => void;
  /**
   * The SQL for "now" in a write, in `toISOString`'s form. PostgreSQL: the database's clock at
   * the moment the row is written, after any row lock the statement waited for, and one clock for
   * every replica of the service; a time taken before the statement would let a later version of
   * a row carry an earlier `updatedAt`, which `updatedSince` readers would never see. SQLite: the
   * service's clock, bound through `bind` (its one writer runs writes in turn), never behind a
   * time it stamped before, even when the system clock is stepped back. With `notBefore`, a
   * column of the row written: never earlier than its value either (a clock that was set back
   * since, on a replica or across a restart).
   */
  writeTime(bind: (value: SqlValue) => string, notBefore?: string): string;
  /**
   * A read outside any transaction, on a prepared statement. With a `budget`, it refuses to start
   * (TIMEOUT) once the operation's time budget has run out.
   */
  all<T = SqlRow>(sql: string, params?: readonly SqlValue[], budget?: OperationBudget): Promise<T[]>;
  /**
   * Runs `work` atomically and durably: its statements commit together or not at all, and the
   * promise settles only after the commit. On SQLite concurrent units share one commit. With a
   * `budget`, work that has not started when the budget runs out never starts, and work that has
   * run rolls back unless it claimed its commit first (see OperationBudget): no write of an
   * operation that was answered TIMEOUT commits.
   */
  write<T>(work: (sql: SqlExecutor) => Promise<T>, budget?: OperationBudget): Promise<T>;
  /** Resolves when the database answers (readiness), however busy the service's connections are. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export type StatementListener = (sql: string, params: readonly SqlValue[]) => void;

/** Statement observers (query logging, the tests' query counter); empty in normal running. */
class Observers {
  private readonly listeners = new Set<StatementListener>();

  add(listener: StatementListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  notify(sql: string, params: readonly SqlValue[] = []): void {
    if (this.listeners.size > 0) for (const listener of this.listeners) listener(sql, params);
  }
}

/** SQLite numbers its parameters `?1…?n`; `$n` there would be bound by first appearance. */
const toSqlitePlaceholders = (sql: string) => sql.replace(/\$(\d+)/g, '?$1');

const MAX_PREPARED_STATEMENTS = 200;

/**
 * Errors from sqlite3's native callbacks carry no JavaScript stack (its verbose mode, which adds
 * one to every call, is off for speed). On the failure path only, record where the statement was
 * awaited from (V8's async stack) and which statement it was, for the server log.
 */
function withCallerStack(error: unknown, sql: string): unknown {
  if (error instanceof Error) {
    Error.captureStackTrace(error, withCallerStack);
    Object.assign(error, { sql });
  }
  return error;
}

class SqliteConnection implements SqlExecutor {
  private readonly statements = new Map<string, Promise<sqlite3.Statement>>();

  constructor(
    readonly db: sqlite3.Database,
    private readonly observers: Observers,
  ) {}

  /**
   * A cached prepared statement. A statement whose prepare failed never answers later calls, so
   * the failure is taken from the prepare callback and the statement is not kept.
   */
  private prepared(sql: string, params: readonly SqlValue[]): Promise<sqlite3.Statement> {
    this.observers.notify(sql, params);
    let statement = this.statements.get(sql);
    if (!statement) {
      if (this.statements.size >= MAX_PREPARED_STATEMENTS) void this.clearStatements();
      statement = new Promise<sqlite3.Statement>((resolve, reject) => {
        const prepared = this.db.prepare(toSqlitePlaceholders(sql), (error: Error | null) =>
          error ? reject(error) : resolve(prepared),
        );
      });
      this.statements.set(sql, statement);
      statement.catch(() => this.statements.delete(sql));
    }
    return statement;
  }

  async all<T = SqlRow>(sql: string, params: readonly SqlValue[] = []): Promise<T[]> {
    try {
      const statement = await this.prepared(sql, params);
      // `all` (never `get`) so that the statement is reset after each use and pins no snapshot.
      return await new Promise((resolve, reject) =>
        statement.all(params as SqlValue[], (error: Error | null, rows: T[]) =>
          error ? reject(error) : resolve(rows),
        ),
      );
    } catch (error) {
      throw withCallerStack(error, sql);
    }
  }

  async run(sql: string, params: readonly SqlValue[] = []): Promise<number> {
    try {
      const statement = await this.prepared(sql, params);
      return await new Promise((resolve, reject) =>
        statement.run(params as SqlValue[], function (this: sqlite3.RunResult, error: Error | null) {
          if (error) reject(error);
          else resolve(this.changes);
        }),
      );
    } catch (error) {
      throw withCallerStack(error, sql);
    }
  }

  exec(sql: string): Promise<void> {
    this.observers.notify(sql);
    return new Promise((resolve, reject) => this.db.exec(sql, (error) => (error ? reject(error) : resolve())));
  }

  /**
   * Finalizes the cached statements; resolves once all are finalized (each after the runs queued
   * on it). SQLite refuses to close a connection that still has a statement, so close awaits this.
   */
  clearStatements(): Promise<void> {
    const statements = [...this.statements.values()];
    this.statements.clear();
    return Promise.all(
      statements.map((statement) =>
        statement.then(
          (prepared) => new Promise<void>((resolve) => prepared.finalize(() => resolve())),
          () => undefined,
        ),
      ),
    ).then(() => undefined);
  }
}

interface PendingWrite {
  work: (sql: SqlExecutor) => Promise<unknown>;
  budget: OperationBudget | undefined;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

const MAX_GROUP = 256;

/**
 * Reads handed to node-sqlite3 at once on the reader connection. It runs each call on a libuv
 * thread-pool thread, and SQLite runs one statement at a time per connection: past two (one
 * running, one ready to start), more only park pool threads on the connection's mutex, and the
 * writer's steps wait in the pool's queue behind them. The rest wait here, in order.
 */
const MAX_READS_IN_FLIGHT = 2;

/**
 * SQLite: reads on TypeORM's connection, writes on a second connection that owns the write lock.
 * Writes queue while a commit is in progress and then run together in one transaction (group
 * commit): one fsync for many requests. Each unit runs in its own savepoint, so a unit that fails
 * (say, a duplicate email) is rolled back alone and the others still commit.
 */
class SqliteClient implements SqlClient {
  readonly dialect = 'sqlite' as const;
  private pending: PendingWrite[] = [];
  private flushing: Promise<void> | null = null;
  private closed = false;
  /** The latest time writeTime gave (ISO strings order as the times they write). */
  private latestWriteTime = '';
  private readsInFlight = 0;
  private readonly waitingReads: (() => void)[] = [];
  private readonly readsIdle: (() => void)[] = [];

  private constructor(
    private readonly reader: SqliteConnection,
    private readonly writer: SqliteConnection,
    private readonly observers: Observers,
  ) {}

  static async open(dataSource: DataSource, file: string): Promise<SqliteClient> {
    const observers = new Observers();
    const readerDb = (dataSource.driver as unknown as { databaseConnection: sqlite3.Database }).databaseConnection;
    const reader = new SqliteConnection(readerDb, observers);
    // An in-memory database exists only on its own connection, so there it reads and writes.
    if (file === ':memory:') return new SqliteClient(reader, reader, observers);
    const writerDb = await new Promise<sqlite3.Database>((resolve, reject) => {
      const db = new sqlite3.Database(file, (error) => (error ? reject(error) : resolve(db)));
    });
    const writer = new SqliteConnection(writerDb, observers);
    await writer.exec('PRAGMA busy_timeout = 5000; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;');
    return new SqliteClient(reader, writer, observers);
  }

  inList(column: string, placeholder: string): string {
    return `${column} IN (SELECT value FROM json_each(${placeholder}))`;
  }

  listParameter(values: readonly string[]): SqlValue {
    return JSON.stringify(values);
  }

  observe(listener: StatementListener): () => void {
    return this.observers.add(listener);
  }

  writeTime(bind: (value: SqlValue) => string, notBefore?: string): string {
    const now = new Date().toISOString();
    if (now > this.latestWriteTime) this.latestWriteTime = now;
    const time = bind(this.latestWriteTime);
    return notBefore ? `MAX(${time}, ${notBefore})` : time;
  }

  async all<T = SqlRow>(sql: string, params?: readonly SqlValue[], budget?: OperationBudget): Promise<T[]> {
    budget?.throwIfExpired();
    // In memory, the one connection also holds the group's open transaction, where a read would
    // see units not yet committed (and perhaps rolled back later): reads take their turn in the
    // write queue instead, between groups.
    if (this.reader === this.writer) return this.write((connection) => connection.all<T>(sql, params));
    if (this.readsInFlight >= MAX_READS_IN_FLIGHT) {
      await new Promise<void>((resolve) => this.waitingReads.push(resolve));
      // The slot was handed over by the read that finished: give it back if this one never starts.
      try {
        budget?.throwIfExpired();
      } catch (error) {
        this.releaseRead();
        throw error;
      }
    } else {
      this.readsInFlight += 1;
    }
    try {
      return await this.reader.all<T>(sql, params);
    } finally {
      this.releaseRead();
    }
  }

  /** Hands the read slot to the next waiting read, or frees it. */
  private releaseRead(): void {
    const next = this.waitingReads.shift();
    if (next) next();
    else if (--this.readsInFlight === 0) for (const idle of this.readsIdle.splice(0)) idle();
  }

  write<T>(work: (sql: SqlExecutor) => Promise<T>, budget?: OperationBudget): Promise<T> {
    if (this.closed) return Promise.reject(new Error('The database is closed'));
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ work, budget, resolve: resolve as (value: unknown) => void, reject });
      this.flushing ??= this.flush();
    });
  }

  private async flush(): Promise<void> {
    try {
      while (this.pending.length > 0) {
        const group = this.pending.splice(0, MAX_GROUP);
        await this.commitGroup(group);
      }
    } finally {
      this.flushing = null;
    }
  }

  private async commitGroup(queued: PendingWrite[]): Promise<void> {
    // Units whose operation ran out of time while they waited are refused without a transaction.
    const group = queued.filter((unit) => {
      if (unit.budget?.ranOut) unit.reject(unit.budget.timeoutError());
      return !unit.budget?.ranOut;
    });
    if (group.length === 0) return;
    const outcomes: { ok: boolean; value: unknown }[] = [];
    try {
      await this.writer.exec('BEGIN IMMEDIATE');
      // Each exec is a round trip through the thread pool and back through a busy event loop, so
      // the statements that close one unit's savepoint travel with the next one's (or the COMMIT):
      // `ending` is what the previous unit still needs, run first in the next exec.
      let ending = '';
      for (const unit of group) {
        // Or while the transaction waited for the write lock: such a unit is never started either.
        if (unit.budget?.ranOut) {
          outcomes.push({ ok: false, value: unit.budget.timeoutError() });
          continue;
        }
        await this.writer.exec(`${ending}SAVEPOINT unit`);
        try {
          const value = await unit.work(this.writer);
          // The budget may have run out while the unit ran: then its statements are undone.
          if (unit.budget && !unit.budget.claimCommit()) throw unit.budget.timeoutError();
          ending = 'RELEASE unit; ';
          outcomes.push({ ok: true, value });
        } catch (error) {
          ending = 'ROLLBACK TO unit; RELEASE unit; ';
          outcomes.push({ ok: false, value: error });
        }
      }
      // Should the RELEASE (or ROLLBACK TO) fail, the COMMIT does not run and the catch below
      // rolls the whole group back, as it would have when the RELEASE ran alone.
      await this.writer.exec(`${ending}COMMIT`);
    } catch (error) {
      // The transaction itself failed (disk, lock): nothing in the group was committed.
      await this.writer.exec('ROLLBACK').catch(() => undefined);
      for (const unit of group) unit.reject(error);
      return;
    }
    group.forEach((unit, index) =>
      outcomes[index].ok ? unit.resolve(outcomes[index].value) : unit.reject(outcomes[index].value),
    );
  }

  async ping(): Promise<void> {
    await this.reader.all('SELECT 1 AS ok');
  }

  /** Lets queued writes commit, then closes the writer; TypeORM closes the reader. */
  async close(): Promise<void> {
    this.closed = true;
    await this.flushing;
    // Reads still waiting for their turn prepare their statements when it comes: let them run first.
    if (this.readsInFlight > 0) await new Promise<void>((resolve) => this.readsIdle.push(resolve));
    await this.reader.clearStatements();
    if (this.writer === this.reader) return;
    await this.writer.clearStatements();
    await new Promise<void>((resolve, reject) => this.writer.db.close((error) => (error ? reject(error) : resolve())));
  }
}

class PostgresExecutor implements SqlExecutor {
  constructor(
    private readonly client: pg.Pool | pg.PoolClient,
    private readonly observers: Observers,
  ) {}

  async all<T = SqlRow>(sql: string, params: readonly SqlValue[] = []): Promise<T[]> {
    this.observers.notify(sql, params);
    return (await this.client.query({ name: statementName(sql), text: sql, values: params as SqlValue[] })).rows as T[];
  }

  async run(sql: string, params: readonly SqlValue[] = []): Promise<number> {
    this.observers.notify(sql, params);
    return (
      (await this.client.query({ name: statementName(sql), text: sql, values: params as SqlValue[] })).rowCount ?? 0
    );
  }
}

const statementNames = new Map<string, string>();
/**
 * pg prepares a named statement once per connection and reuses it. The service's statements are
 * a bounded set; past the cap, rarer shapes simply run unnamed (parsed each time).
 */
function statementName(sql: string): string | undefined {
  let name = statementNames.get(sql);
  if (!name && statementNames.size < MAX_PREPARED_STATEMENTS) {
    name = `s${statementNames.size}`;
    statementNames.set(sql, name);
  }
  return name;
}

/** PostgreSQL: the pool TypeORM opened; each write is its own transaction, concurrently. */
class PostgresClient implements SqlClient {
  readonly dialect = 'postgres' as const;
  private readonly observers = new Observers();
  private readonly reads: PostgresExecutor;
  private health: Promise<pg.Client> | undefined;

  constructor(private readonly pool: pg.Pool) {
    this.reads = new PostgresExecutor(pool, this.observers);
  }

  inList(column: string, placeholder: string): string {
    return `${column} = ANY(${placeholder}::text[])`;
  }

  listParameter(values: readonly string[]): SqlValue {
    return values;
  }

  observe(listener: StatementListener): () => void {
    return this.observers.add(listener);
  }

  writeTime(_bind: (value: SqlValue) => string, notBefore?: string): string {
    // clock_timestamp(), unlike now(), moves within a transaction and is read when the row is written.
    const time = `to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
    return notBefore ? `GREATEST(${time}, ${notBefore})` : time;
  }

  async all<T = SqlRow>(sql: string, params?: readonly SqlValue[], budget?: OperationBudget): Promise<T[]> {
    budget?.throwIfExpired();
    return this.reads.all<T>(sql, params);
  }

  async write<T>(work: (sql: SqlExecutor) => Promise<T>, budget?: OperationBudget): Promise<T> {
    budget?.throwIfExpired();
    const client = await this.pool.connect();
    let broken: Error | undefined;
    // pg emits 'error' on a client whose connection breaks, even mid-query, and the pool listens
    // only while the client is idle: without this listener a lost connection would crash the process.
    const onConnectionError = (error: Error) => {
      broken = error;
    };
    client.on('error', onConnectionError);
    try {
      // The wait for a pooled connection may have used up the budget.
      budget?.throwIfExpired();
      this.observers.notify('BEGIN');
      await client.query('BEGIN');
      const result = await work(new PostgresExecutor(client, this.observers));
      // Claimed synchronously right before COMMIT; when the budget ran out, the catch rolls back.
      if (budget && !budget.claimCommit()) throw budget.timeoutError();
      await client.query('COMMIT');
      return result;
    } catch (error) {
      if (isDatabaseUnavailable(error)) {
        // The connection is broken or silent: a ROLLBACK would only wait out the query timeout
        // again. Discarding the connection rolls the transaction back on the server.
        broken ??= error instanceof Error ? error : new Error(String(error));
      } else {
        await client.query('ROLLBACK').catch((rollbackError: Error) => {
          broken = rollbackError;
        });
      }
      throw error;
    } finally {
      client.removeListener('error', onConnectionError);
      client.release(broken);
    }
  }

  /**
   * On a connection of its own, kept open between pings: when every pooled connection is busy
   * the database still answers, and the replica is still ready. Were readiness to wait for the
   * pool, a load burst would take every replica out of rotation at once.
   */
  async ping(): Promise<void> {
    this.health ??= this.connectHealthClient();
    const health = this.health;
    try {
      await (await health).query('SELECT 1 AS ok');
    } catch (error) {
      // Reconnected on the next ping.
      void this.discardHealth(health);
      throw error;
    }
  }

  /** Forgets a health connection (unless already replaced) and ends it. */
  private discardHealth(health: Promise<pg.Client>): Promise<void> {
    if (this.health === health) this.health = undefined;
    return health.then((client) => client.end()).catch(() => undefined);
  }

  private connectHealthClient(): Promise<pg.Client> {
    // The pool's own settings: the same server, credentials, connect and query timeouts.
    const client = new pg.Client(this.pool.options);
    const connected = client.connect().then(() => client);
    // A connection that breaks between pings (the database restarted, say) is dropped at once, so
    // that the next ping connects anew instead of failing on it; and it must not crash the process.
    client.on('error', () => void this.discardHealth(connected));
    return connected;
  }

  async close(): Promise<void> {
    // The pool belongs to TypeORM, which ends it when the DataSource is destroyed.
    if (this.health) await this.discardHealth(this.health);
  }
}

export async function openSqlClient(dataSource: DataSource, dialect: Dialect, sqliteFile: string): Promise<SqlClient> {
  if (dialect === 'postgres') return new PostgresClient((dataSource.driver as unknown as { master: pg.Pool }).master);
  return SqliteClient.open(dataSource, sqliteFile);
}
