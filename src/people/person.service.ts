import { randomUUID } from 'node:crypto';
import type { SelectQueryBuilder } from 'typeorm';
import type { Database } from '../db/database';
import { conflict, isUniqueViolation, notFound } from '../errors';
import { Person, PERSON_TEXT_FIELDS } from './person.entity';
import type { CreatePersonInput, PeopleFilter, UpdatePersonInput } from './person.inputs';
import { encodeCursor, toPageRequest, type PageArgs } from './pagination';
import type { PersonConnection } from './person.connection';
import { normalizeEmail, validatePeopleFilter, validatePersonFields } from './person.validation';

const EXACT_FILTERS = ['organization', 'businessUnit', 'department', 'group', 'team'] as const;

function escapeLike(value: string): string {
  return value.replace(/[\\%_]/g, (char) => `\\${char}`);
}

/** All reads and writes of people; resolvers only translate GraphQL to these calls. */
export class PersonService {
  constructor(
    private readonly database: Database,
    private readonly maxPageSize: number,
  ) {}

  private query(): SelectQueryBuilder<Person> {
    return this.database.manager.getRepository(Person).createQueryBuilder('p');
  }

  async findByEmail(email: string): Promise<Person | null> {
    return this.query()
      .where('p.email = :email', { email: normalizeEmail(email) })
      .getOne();
  }

  async getByEmail(email: string): Promise<Person> {
    const person = await this.findByEmail(email);
    if (!person) throw notFound();
    return person;
  }

  /** People with these ids, in no particular order; unknown ids are simply absent. */
  findByIds(ids: readonly string[]): Promise<Person[]> {
    return this.query().where('p.id IN (:...ids)', { ids }).getMany();
  }

  /** People with these already-normalised emails, in no particular order. */
  findByNormalizedEmails(emails: readonly string[]): Promise<Person[]> {
    return this.query().where('p.email IN (:...emails)', { emails }).getMany();
  }

  async list(args: PageArgs & { filter?: PeopleFilter | null }): Promise<PersonConnection> {
    const page = toPageRequest(args, this.maxPageSize);
    const query = this.applyFilter(this.query(), args.filter);
    if (page.position) {
      const columns = page.keys.map((key) => `p.${key}`).join(', ');
      const placeholders = page.keys.map((_, index) => `:position${index}`).join(', ');
      const parameters = Object.fromEntries(page.position.map((value, index) => [`position${index}`, value]));
      query.andWhere(`(${columns}) ${page.readDescending ? '<' : '>'} (${placeholders})`, parameters);
    }
    for (const key of page.keys) query.addOrderBy(`p.${key}`, page.readDescending ? 'DESC' : 'ASC');
    const rows = await query.limit(page.size + 1).getMany();

    const hasMore = rows.length > page.size;
    const nodes = rows.slice(0, page.size);
    if (page.backward) nodes.reverse();
    const edges = nodes.map((node) => ({ cursor: encodeCursor(args.orderBy, node), node }));
    return {
      edges,
      nodes,
      filter: args.filter ?? null,
      totalCount: 0, // replaced by the totalCount resolver, which counts only when selected
      pageInfo: {
        hasNextPage: page.backward ? page.position !== null : hasMore,
        hasPreviousPage: page.backward ? hasMore : page.position !== null,
        startCursor: edges[0]?.cursor ?? null,
        endCursor: edges.at(-1)?.cursor ?? null,
      },
    };
  }

  count(filter: PeopleFilter | null): Promise<number> {
    return this.applyFilter(this.query(), filter).getCount();
  }

  async create(input: CreatePersonInput): Promise<Person> {
    const email = normalizeEmail(input.email);
    const fields = validatePersonFields(input);
    const now = new Date().toISOString();
    const person: Person = {
      id: randomUUID(),
      email,
      ...Object.fromEntries(PERSON_TEXT_FIELDS.map((field) => [field, fields[field] ?? null])),
      createdAt: now,
      updatedAt: now,
      version: 1,
    } as Person;
    try {
      // The unique index decides, so concurrent creates of one email cannot both succeed.
      await this.database.write((manager) => manager.insert(Person, person));
    } catch (error) {
      if (isUniqueViolation(error)) throw conflict(`A person with email ${email} already exists`);
      throw error;
    }
    return person;
  }

  async update(input: UpdatePersonInput): Promise<Person> {
    const email = normalizeEmail(input.email);
    const changes = validatePersonFields(input);
    const expectedVersion = input.expectedVersion ?? null;
    return this.database.write(async (manager) => {
      // Compare-and-set in the WHERE clause: the version check and the write are one statement.
      const update = manager
        .createQueryBuilder()
        .update(Person)
        .set({ ...changes, updatedAt: new Date().toISOString(), version: () => 'version + 1' })
        .where('email = :email', { email });
      if (expectedVersion !== null) update.andWhere('version = :expectedVersion', { expectedVersion });
      const result = await update.execute();
      if (result.affected === 0) {
        const current = await manager.findOne(Person, { where: { email } });
        if (!current) throw notFound();
        throw conflict(`Person ${email} is at version ${current.version}, not ${expectedVersion}`);
      }
      return manager.findOneOrFail(Person, { where: { email } });
    });
  }

  private applyFilter(query: SelectQueryBuilder<Person>, filter: PeopleFilter | null | undefined) {
    if (!filter) return query;
    validatePeopleFilter(filter);
    for (const field of EXACT_FILTERS) {
      const value = filter[field];
      if (value != null) query.andWhere(`p.${field} = :${field}`, { [field]: value });
    }
    if (filter.search != null && filter.search !== '') {
      query.andWhere(
        '(p.email LIKE :search ESCAPE :escape OR LOWER(p.firstName) LIKE :search ESCAPE :escape OR LOWER(p.lastName) LIKE :search ESCAPE :escape)',
        {
          search: `${escapeLike(filter.search.toLowerCase())}%`,
          escape: '\\',
        },
      );
    }
    if (filter.updatedSince != null) {
      query.andWhere('p.updatedAt >= :updatedSince', { updatedSince: filter.updatedSince.toISOString() });
    }
    return query;
  }
}
