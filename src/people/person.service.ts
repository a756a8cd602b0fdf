import { randomUUID } from 'node:crypto';
import type { Database } from '../db/database';
import type { OperationBudget } from '../operation-budget';
import type { SqlExecutor, SqlValue } from '../db/sql-client';
import { conflict, isUniqueViolation, notFound } from '../errors';
import { PERSON_TEXT_FIELDS, type Person } from './person.entity';
import type { CreatePersonInput, PeopleFilter, UpdatePersonInput } from './person.inputs';
import { encodeCursor, toPageRequest, type PageArgs } from './pagination';
import type { PersonConnection } from './person.connection';
import { ALL_PERSON_FIELDS, columnOf, selectList, type PersonField } from './person.columns';
import { normalizeEmail, validatePeopleFilter, validatePersonFields } from './person.validation';

const EXACT_FILTERS = ['organization', 'businessUnit', 'department', 'group', 'team'] as const;
const ALL_COLUMNS = selectList(ALL_PERSON_FIELDS);
const LAST_STORABLE_TIME = Date.parse('9999-12-31T23:59:59.999Z');

function escapeLike(value: string): string {
  return value.replace(/[\\%_]/g, (char) => `\\${char}`);
}

/** Collects parameters and hands out their `$n` placeholders. */
class Parameters {
  readonly values: SqlValue[] = [];

  add(value: SqlValue): string {
    this.values.push(value);
    return `$${this.values.length}`;
  }
}

/**
 * All reads and writes of people; resolvers only translate GraphQL to these calls. Each method
 * takes the operation's time budget, if any: its database work does not start once it ran out.
 */
export class PersonService {
  constructor(
    private readonly database: Database,
    private readonly maxPageSize: number,
  ) {}

  private get sql() {
    return this.database.sql;
  }

  async findByEmail(
    email: string,
    fields: Iterable<PersonField> = ALL_PERSON_FIELDS,
    budget?: OperationBudget,
  ): Promise<Person | null> {
    // The id is always read, so that even `{ __typename }` selects a column.
    const rows = await this.sql.all<Person>(
      `SELECT ${selectList([...fields, 'id'])} FROM person WHERE email = $1`,
      [normalizeEmail(email)],
      budget,
    );
    return rows[0] ?? null;
  }

  async getByEmail(email: string, fields?: Iterable<PersonField>, budget?: OperationBudget): Promise<Person> {
    const person = await this.findByEmail(email, fields, budget);
    if (!person) throw notFound();
    return person;
  }

  /** People with these ids, in no particular order; unknown ids are simply absent. */
  findByIds(ids: readonly string[], budget?: OperationBudget): Promise<Person[]> {
    return this.sql.all<Person>(
      `SELECT ${ALL_COLUMNS} FROM person WHERE ${this.sql.inList('id', '$1')}`,
      [this.sql.listParameter(ids)],
      budget,
    );
  }

  /** People with these already-normalised emails, in no particular order. */
  findByNormalizedEmails(emails: readonly string[], budget?: OperationBudget): Promise<Person[]> {
    return this.sql.all<Person>(
      `SELECT ${ALL_COLUMNS} FROM person WHERE ${this.sql.inList('email', '$1')}`,
      [this.sql.listParameter(emails)],
      budget,
    );
  }

  async list(
    args: PageArgs & { filter?: PeopleFilter | null },
    fields: Iterable<PersonField> = ALL_PERSON_FIELDS,
    budget?: OperationBudget,
  ): Promise<PersonConnection> {
    const page = toPageRequest(args, this.maxPageSize);
    const parameters = new Parameters();
    const conditions = this.filterConditions(args.filter, parameters);
    const keyColumns = page.keys.map(columnOf);
    // Row-value comparisons walk the (key, id) index from a cursor: no OFFSET, no rescans. Rows
    // after a cursor come later in the order: greater keys, or smaller ones in a descending order.
    const bound = (values: string[], comparison: '<' | '>') =>
      `(${keyColumns.join(', ')}) ${comparison} (${values.map((value) => parameters.add(value)).join(', ')})`;
    if (page.after) conditions.push(bound(page.after, page.descending ? '<' : '>'));
    if (page.before) conditions.push(bound(page.before, page.descending ? '>' : '<'));
    // A backward page reads its window from the end: against the order.
    const direction = page.backward !== page.descending ? 'DESC' : 'ASC';
    const rows = await this.sql.all<Person>(
      `SELECT ${selectList([...fields, ...page.keys])} FROM person` +
        (conditions.length > 0 ? ` WHERE ${conditions.join(' AND ')}` : '') +
        ` ORDER BY ${keyColumns.map((column) => `${column} ${direction}`).join(', ')}` +
        ` LIMIT ${parameters.add(page.size + 1)}`,
      parameters.values,
      budget,
    );

    const hasMore = rows.length > page.size;
    const nodes = rows.slice(0, page.size);
    if (page.backward) nodes.reverse();
    const { orderBy } = args;
    // Edges and cursors are made only when a client selects them (getters run on field resolution).
    const cursorOf = (node: Person | undefined) => (node ? encodeCursor(orderBy, node) : null);
    return {
      get edges() {
        return nodes.map((node) => ({
          node,
          get cursor() {
            return encodeCursor(orderBy, node);
          },
        }));
      },
      nodes,
      filter: args.filter ?? null,
      totalCount: 0, // replaced by the totalCount resolver, which counts only when selected
      // Relay: more rows of the window on the side the page was read towards; on the other side,
      // a cursor there says that rows exist beyond it.
      pageInfo: {
        hasNextPage: page.backward ? page.before !== null : hasMore,
        hasPreviousPage: page.backward ? hasMore : page.after !== null,
        get startCursor() {
          return cursorOf(nodes[0]);
        },
        get endCursor() {
          return cursorOf(nodes.at(-1));
        },
      },
    };
  }

  async count(filter: PeopleFilter | null, budget?: OperationBudget): Promise<number> {
    const parameters = new Parameters();
    const conditions = this.filterConditions(filter, parameters);
    const [row] = await this.sql.all<{ count: number | string }>(
      `SELECT COUNT(*) AS count FROM person${conditions.length > 0 ? ` WHERE ${conditions.join(' AND ')}` : ''}`,
      parameters.values,
      budget,
    );
    return Number(row.count);
  }

  async create(input: CreatePersonInput, budget?: OperationBudget): Promise<Person> {
    const email = normalizeEmail(input.email);
    const fields = validatePersonFields(input);
    const id = randomUUID();
    try {
      // The unique index decides, so concurrent creates of one email cannot both succeed.
      return await this.database.write(async (sql) => {
        const person = {
          id,
          email,
          ...Object.fromEntries(PERSON_TEXT_FIELDS.map((field) => [field, fields[field] ?? null])),
          version: 1,
        } as Omit<Person, 'createdAt' | 'updatedAt'>;
        const parameters = new Parameters();
        // Both times are one, taken when the row is written (see SqlClient.writeTime). The
        // version is written out: PostgreSQL would type a parameter in a SELECT list as text.
        const valueOf = (field: PersonField) => {
          if (field === 'createdAt' || field === 'updatedAt') return 'stamp.now';
          if (field === 'version') return String(person.version);
          return parameters.add(person[field]);
        };
        const [{ now }] = await sql.all<{ now: string }>(
          `INSERT INTO person (${ALL_PERSON_FIELDS.map(columnOf).join(', ')})
           SELECT ${ALL_PERSON_FIELDS.map(valueOf).join(', ')}
             FROM (SELECT ${this.sql.writeTime((value) => parameters.add(value))} AS now) AS stamp
           RETURNING created_at AS now`,
          parameters.values,
        );
        return { ...person, createdAt: now, updatedAt: now };
      }, budget);
    } catch (error) {
      if (isUniqueViolation(error)) throw conflict(`A person with email ${email} already exists`);
      throw error;
    }
  }

  async update(input: UpdatePersonInput, budget?: OperationBudget): Promise<Person> {
    const email = normalizeEmail(input.email);
    const changes = validatePersonFields(input);
    const expectedVersion = input.expectedVersion ?? null;
    return this.database.write(async (sql) => {
      const parameters = new Parameters();
      const assignments = Object.entries(changes).map(
        ([field, value]) => `${columnOf(field as PersonField)} = ${parameters.add(value)}`,
      );
      assignments.push(
        `updated_at = ${this.sql.writeTime((value) => parameters.add(value), 'updated_at')}`,
        'version = version + 1',
      );
      let where = `email = ${parameters.add(email)}`;
      // Compare-and-set in the WHERE clause: the version check and the write are one statement.
      if (expectedVersion !== null) where += ` AND version = ${parameters.add(expectedVersion)}`;
      const [updated] = await sql.all<Person>(
        `UPDATE person SET ${assignments.join(', ')} WHERE ${where} RETURNING ${ALL_COLUMNS}`,
        parameters.values,
      );
      if (updated) return updated;
      throw await this.whyNotUpdated(sql, email, expectedVersion);
    }, budget);
  }

  private async whyNotUpdated(sql: SqlExecutor, email: string, expectedVersion: number | null) {
    const [current] = await sql.all<{ version: number }>('SELECT version FROM person WHERE email = $1', [email]);
    if (!current) return notFound();
    return conflict(`Person ${email} is at version ${current.version}, not ${expectedVersion}`);
  }

  private filterConditions(filter: PeopleFilter | null | undefined, parameters: Parameters): string[] {
    if (!filter) return [];
    validatePeopleFilter(filter);
    const conditions: string[] = [];
    for (const field of EXACT_FILTERS) {
      const value = filter[field];
      if (value != null) conditions.push(`${columnOf(field)} = ${parameters.add(value)}`);
    }
    if (filter.search != null && filter.search !== '') {
      // Only A-Z are case-folded, identically on both databases: SQLite's LOWER() folds nothing
      // else, PostgreSQL's does under the C collation only (names use the database's default one).
      const lowered = filter.search.replace(/[A-Z]+/g, (letters) => letters.toLowerCase());
      const prefix = parameters.add(`${escapeLike(lowered)}%`);
      const lower = (column: string) =>
        this.database.dialect === 'postgres' ? `LOWER(${column} COLLATE "C")` : `LOWER(${column})`;
      conditions.push(
        `(email LIKE ${prefix} ESCAPE '\\' OR ${lower('first_name')} LIKE ${prefix} ESCAPE '\\' OR ${lower('last_name')} LIKE ${prefix} ESCAPE '\\')`,
      );
    }
    if (filter.updatedSince != null) {
      // Times are stored and compared as ISO text of years 0000-9999; a later instant prints as
      // `+010000-…`, which sorts before them all. Nobody was updated after it.
      conditions.push(
        filter.updatedSince.getTime() > LAST_STORABLE_TIME
          ? '1 = 0'
          : `updated_at >= ${parameters.add(filter.updatedSince.toISOString())}`,
      );
    }
    return conditions;
  }
}
