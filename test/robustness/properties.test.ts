import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseTargets, postgresTarget, sqliteTarget, type TestDatabase } from '../helpers/databases';
import { startServer, type GraphQLResponse, type TestServer } from '../helpers/server';
import {
  asciiLower,
  assertProperty,
  hostileShortEmail,
  hostileShortText,
  longSearch,
  hasUnstorableCharacter,
  hostileEmail,
  hostileText,
  isImpossibleEmail,
  isStorableText,
  MAX_EMAIL_LENGTH,
  mustAcceptEmail,
  normalizedEmail,
  paddedValidEmail,
  preview,
  TEXT_FIELDS,
  type TextField,
} from './input-arbitraries';

/**
 * Property-based tests of every input over real HTTP: arbitrary Unicode either round-trips
 * exactly (emails: trimmed and lower-cased) or is refused with BAD_USER_INPUT; never another
 * code, never a 5xx; and SQLite and PostgreSQL decide alike for the same generated inputs.
 *
 * FC_SEED=<n> replays a run (the seed is printed); PROPERTY_RUNS=<n> changes the number of runs.
 */
const RUNS = Number(process.env.PROPERTY_RUNS ?? 200);
/** Generous: the runs take seconds, but a loaded machine must not turn that into a failure. */
const PROPERTY_TIMEOUT_MS = 180_000;
const BASE_SEED = process.env.FC_SEED ? Number(process.env.FC_SEED) : Math.floor(Math.random() * 0x7fffffff);
process.stdout.write(`properties.test.ts: FC_SEED=${BASE_SEED}, ${RUNS} runs per property and database\n`);

/** Each property gets its own seed, the same on every database, so the inputs can be compared. */
function seedOf(property: string): number {
  let hash = BASE_SEED;
  for (const character of property) hash = (Math.imul(hash, 31) + character.charCodeAt(0)) | 0;
  return hash;
}

const PERSON_FIELDS =
  'id email firstName lastName organization businessUnit department group team createdAt updatedAt version';
const CREATE = `mutation Create($input: CreatePersonInput!) { createPerson(input: $input) { ${PERSON_FIELDS} } }`;
const UPDATE = `mutation Update($input: UpdatePersonInput!) { updatePerson(input: $input) { ${PERSON_FIELDS} } }`;
const GET = `query Get($email: String!) { person(email: $email) { ${PERSON_FIELDS} } }`;
const PEOPLE = `query People($first: Int, $after: String, $last: Int, $before: String, $filter: PeopleFilter, $orderBy: PeopleOrder) {
  people(first: $first, after: $after, last: $last, before: $before, filter: $filter, orderBy: $orderBy) {
    totalCount
    edges { cursor node { email firstName lastName organization businessUnit department group team updatedAt } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}`;
const ORDERS = ['EMAIL_ASC', 'EMAIL_DESC', 'CREATED_AT_ASC', 'CREATED_AT_DESC', 'UPDATED_AT_DESC'] as const;
const MAX_PAGE_SIZE = 100;
const BODY_LIMIT_BYTES = 100 * 1024;

type PersonRecord = Record<string, unknown> & { email: string; version: number };

/** The decisions each database made, by property, in generation order: compared at the end. */
const decisions = new Map<string, Map<string, string[]>>();
function recordDecisions(kind: string, property: string, list: string[]): void {
  if (!decisions.has(property)) decisions.set(property, new Map());
  decisions.get(property)?.set(kind, list);
}

/** Never a 5xx; a request-level refusal (400) only for variables the schema itself rejects. */
function expectServed(response: GraphQLResponse): void {
  expect(response.status, JSON.stringify(response.body).slice(0, 500)).toBeLessThan(500);
  expect([200, 400]).toContain(response.status);
}

function codesOf(response: GraphQLResponse): (string | undefined)[] {
  return (response.body.errors ?? []).map((error) => error.extensions?.code);
}

/** A short, comparable description of an answer: the stored values or the refusal. */
function signatureOf(response: GraphQLResponse, field: string): string {
  const error = response.body.errors?.[0];
  if (error) return `refused ${error.extensions?.code} ${String(error.extensions?.field)} ${error.message}`;
  const person = response.body.data?.[field] as Record<string, unknown> | null;
  if (!person) return 'null';
  const { id: _id, createdAt: _created, updatedAt: _updated, ...stored } = person;
  return `stored ${JSON.stringify(stored)}`;
}

function expectRefusedBadInput(response: GraphQLResponse, fields: string[]): void {
  expectServed(response);
  expect(codesOf(response), JSON.stringify(response.body)).toEqual(['BAD_USER_INPUT']);
  expect(fields).toContain(response.body.errors?.[0]?.extensions?.field);
}

const storableText = hostileShortText.filter(isStorableText);
/** Guaranteed-storable values, hostile ones (about half of which are storable too), and null. */
const updateValue = fc.oneof(storableText, hostileShortText, fc.constant(null));
/** Rate limiting is another item's concern: off here, so that every request reaches validation. */
const ENVIRONMENT = { RATE_LIMIT_PER_SECOND: '0' };

describe.each(databaseTargets)('property-based input checks on $kind', (target) => {
  let database: TestDatabase;
  let server: TestServer;
  let counter = 0;
  /** Normalised emails this database has stored, to tell a rightful CONFLICT from a wrong one. */
  const storedEmails = new Set<string>();

  beforeAll(async () => {
    database = await target.create();
    server = await startServer(database.url, ENVIRONMENT);
  });

  afterAll(async () => {
    await server?.close();
    await database?.drop();
    // The figures: how many generated inputs each property sent here, and what became of them.
    const lines = [...decisions].map(([property, byKind]) => {
      const list = byKind.get(target.kind) ?? [];
      const counts = new Map<string, number>();
      for (const decision of list) {
        const outcome = decision.startsWith('stored')
          ? 'stored'
          : decision.startsWith('total') || decision === 'answered'
            ? 'answered'
            : decision.split(' ').slice(0, 2).join(' ');
        counts.set(outcome, (counts.get(outcome) ?? 0) + 1);
      }
      return `  ${property}: ${list.length} inputs, ${[...counts].map(([outcome, count]) => `${outcome} ${count}`).join(', ')}`;
    });
    process.stdout.write(`properties on ${target.kind} (FC_SEED=${BASE_SEED}):\n${lines.join('\n')}\n`);
  });

  async function read(email: string): Promise<GraphQLResponse> {
    const response = await server.gql(GET, { email });
    expectServed(response);
    return response;
  }

  it(
    'createPerson, every text field: arbitrary Unicode round-trips exactly (read, filter, search) or is BAD_USER_INPUT',
    async () => {
      const lists = new Map<TextField, string[]>(TEXT_FIELDS.map((field) => [field, []]));
      const values = fc.record(Object.fromEntries(TEXT_FIELDS.map((field) => [field, hostileText]))) as fc.Arbitrary<
        Record<TextField, string>
      >;
      await assertProperty(
        fc.asyncProperty(values, async (generated) => {
          counter += 1;
          // One person per field, each with the hostile value in that field only; sent together, so
          // that the accepted ones share a commit.
          const cases = TEXT_FIELDS.map((field, index) => ({
            field,
            value: generated[field],
            email: `${field.toLowerCase()}-${counter}@example.com`,
            tag: `tag-${counter}-${index}`,
          }));
          const created = await Promise.all(
            cases.map(({ field, value, email, tag }) =>
              server.gql(CREATE, { input: { email, [field]: value, ...(field === 'team' ? {} : { team: tag }) } }),
            ),
          );
          const reads = await server.gql(
            `query Read(${cases.map((_, index) => `$e${index}: String!`).join(', ')}) {
            ${cases.map((_, index) => `p${index}: person(email: $e${index}) { ${PERSON_FIELDS} }`).join('\n')}
          }`,
            Object.fromEntries(cases.map(({ email }, index) => [`e${index}`, email])),
          );
          expectServed(reads);
          const readErrors = new Map((reads.body.errors ?? []).map((error) => [error.path?.[0], error]));

          const searches: { alias: string; filter: Record<string, string>; email: string }[] = [];
          cases.forEach(({ field, value, email, tag }, index) => {
            const response = created[index];
            expectServed(response);
            lists.get(field)?.push(signatureOf(response, 'createPerson'));
            const label = `${field} = ${preview(value, 300)}`;
            const stored = reads.body.data?.[`p${index}`] as PersonRecord | null;
            if (!isStorableText(value)) {
              expectRefusedBadInput(response, [field]);
              expect(stored, label).toBeNull();
              expect(readErrors.get(`p${index}`)?.extensions?.code, label).toBe('NOT_FOUND');
              return;
            }
            expect(response.body.errors, `${label}: ${preview(response.body.errors)}`).toBeUndefined();
            expect((response.body.data?.createPerson as PersonRecord)[field] === value, label).toBe(true);
            expect(stored?.[field] === value, label).toBe(true);
            storedEmails.add(email);
            if (field === 'firstName' || field === 'lastName') {
              // `search` finds a name by itself as a prefix, in any ASCII letter case.
              const upper = value.replace(/[a-z]/g, (letter) => letter.toUpperCase());
              searches.push({ alias: `s${index}`, filter: { search: value, team: tag }, email });
              searches.push({ alias: `u${index}`, filter: { search: upper, team: tag }, email });
            } else {
              // The exact filter finds it by the very value (the email prefix narrows to this person).
              searches.push({ alias: `f${index}`, filter: { [field]: value, search: email }, email });
            }
          });
          if (searches.length === 0) return;
          const found = await server.gql(
            `query Find(${searches.map(({ alias }) => `$${alias}: PeopleFilter`).join(', ')}) {
            ${searches.map(({ alias }) => `${alias}: people(first: 100, filter: $${alias}) { totalCount nodes { email } }`).join('\n')}
          }`,
            Object.fromEntries(searches.map(({ alias, filter }) => [alias, filter])),
          );
          expectServed(found);
          expect(found.body.errors, preview(found.body.errors)).toBeUndefined();
          for (const { alias, filter, email } of searches) {
            expect(found.body.data?.[alias], `filter ${preview(filter, 300)}`).toEqual({
              totalCount: 1,
              nodes: [{ email }],
            });
          }
        }),
        { numRuns: RUNS, seed: seedOf('create') },
      );
      for (const [field, list] of lists) recordDecisions(target.kind, `create.${field}`, list);
    },
    PROPERTY_TIMEOUT_MS,
  );

  it(
    'createPerson.email: stored trimmed and lower-cased, or BAD_USER_INPUT (CONFLICT only for a stored one)',
    async () => {
      const list: string[] = [];
      await assertProperty(
        fc.asyncProperty(hostileEmail, async (email) => {
          const normalized = normalizedEmail(email.value);
          const created = await server.gql(CREATE, { input: { email: email.value } });
          expectServed(created);
          list.push(signatureOf(created, 'createPerson'));
          const [code] = codesOf(created);

          if (code === undefined) {
            expect(isImpossibleEmail(email.value), JSON.stringify(email.value)).toBe(false);
            expect((created.body.data?.createPerson as PersonRecord).email).toBe(normalized);
            storedEmails.add(normalized);
            // Found again by the stored form and by exactly what was sent.
            for (const lookup of [normalized, email.value]) {
              const found = await read(lookup);
              expect((found.body.data?.person as PersonRecord | null)?.email).toBe(normalized);
            }
            // Its cursor is taken back, though cursors are checked against the stored forms of
            // their keys (in EMAIL_ASC, the address comes first among those it is a prefix of).
            const listed = await server.gql(PEOPLE, { first: 1, filter: { search: normalized } });
            const [edge] = (listed.body.data?.people as { edges: { cursor: string; node: { email: string } }[] }).edges;
            expect(edge.node.email).toBe(normalized);
            const resumed = await server.gql(PEOPLE, { last: 1, before: edge.cursor });
            expect(resumed.body.errors, `cursor of ${JSON.stringify(normalized)}`).toBeUndefined();
          } else if (code === 'CONFLICT') {
            expect(storedEmails.has(normalized), `CONFLICT for ${JSON.stringify(email.value)}`).toBe(true);
          } else {
            expectRefusedBadInput(created, ['email']);
            expect(mustAcceptEmail(email), `refused ${JSON.stringify(email.value)}`).toBe(false);
          }
        }),
        { numRuns: RUNS, seed: seedOf('create.email') },
      );
      recordDecisions(target.kind, 'create.email', list);
    },
    PROPERTY_TIMEOUT_MS,
  );

  it(
    'updatePerson: partial updates store given values exactly, keep omitted ones, or are BAD_USER_INPUT / NOT_FOUND',
    async () => {
      const email = 'update-target@example.com';
      const initial = await server.gql(CREATE, {
        input: Object.fromEntries([['email', email], ...TEXT_FIELDS.map((field) => [field, `initial ${field}`])]),
      });
      expect(initial.body.errors).toBeUndefined();
      storedEmails.add(email);
      let model = initial.body.data?.createPerson as PersonRecord;

      const sameTarget = fc
        .record({
          cased: fc.mixedCase(fc.constant(email)),
          before: fc.constantFrom('', ' ', '\t', '\u00a0', '\ufeff'),
          after: fc.constantFrom('', ' ', '\n', '\u3000'),
        })
        .map(({ cased, before, after }) => `${before}${cased}${after}`);
      const arbitrary = fc.record({
        email: fc.oneof(
          { weight: 4, arbitrary: sameTarget },
          { weight: 1, arbitrary: hostileShortEmail.map((e) => e.value) },
        ),
        changes: fc.record(Object.fromEntries(TEXT_FIELDS.map((field) => [field, updateValue])), { requiredKeys: [] }),
        withVersion: fc.boolean(),
      });

      const list: string[] = [];
      await assertProperty(
        fc.asyncProperty(arbitrary, async ({ email: named, changes, withVersion }) => {
          const given = changes as Partial<Record<TextField, string | null>>;
          const invalid = Object.entries(given)
            .filter(([, value]) => typeof value === 'string' && !isStorableText(value))
            .map(([field]) => field);
          const input = { email: named, ...given, ...(withVersion ? { expectedVersion: model.version } : {}) };
          const response = await server.gql(UPDATE, { input });
          expectServed(response);
          list.push(signatureOf(response, 'updatePerson'));
          const [code] = codesOf(response);

          if (normalizedEmail(named) !== email) {
            // Another address: refused, or unknown; never applied to the target.
            if (code === undefined) {
              expect(storedEmails.has(normalizedEmail(named))).toBe(true);
            } else if (code === 'NOT_FOUND') {
              expect(invalid).toEqual([]);
              expect(isImpossibleEmail(named)).toBe(false);
            } else {
              expectRefusedBadInput(response, ['email', ...invalid]);
            }
            return;
          }
          if (invalid.length > 0) {
            expectRefusedBadInput(response, invalid);
            const unchanged = (await read(email)).body.data?.person as PersonRecord;
            expect(unchanged).toEqual(model);
            return;
          }
          expect(response.body.errors, JSON.stringify(response.body.errors)).toBeUndefined();
          const updated = response.body.data?.updatePerson as PersonRecord;
          const expected = { ...model, ...given, version: model.version + 1 };
          expect({ ...updated, updatedAt: undefined }).toEqual({ ...expected, updatedAt: undefined });
          expect((await read(email)).body.data?.person).toEqual(updated);
          model = updated;
        }),
        { numRuns: RUNS, seed: seedOf('update') },
      );
      recordDecisions(target.kind, 'update', list);
    },
    PROPERTY_TIMEOUT_MS,
  );

  it(
    'people: arbitrary filters, search, cursors, page sizes and orders give results that match, or BAD_USER_INPUT',
    async () => {
      // Real cursors of every order, to be replayed as they are, under another order, or altered.
      const realCursors: string[] = [];
      for (const orderBy of ORDERS) {
        const page = await server.gql(PEOPLE, { first: 3, orderBy });
        const edges = (page.body.data?.people as { edges: { cursor: string }[] }).edges;
        realCursors.push(...edges.map((edge) => edge.cursor));
      }
      expect(realCursors.length).toBeGreaterThan(5);
      const base64url = (text: string) => Buffer.from(text).toString('base64url');
      // An altered cursor decodes to bytes of this database's own rows (their times and ids), so
      // whether it is still valid may differ between databases: such inputs are checked on each
      // database but left out of the comparison between them.
      const alteredCursors = new Set<string>();
      const cursor = fc.oneof(
        { weight: 4, arbitrary: fc.constantFrom(...realCursors) },
        {
          weight: 1,
          arbitrary: fc
            .tuple(fc.constantFrom(...realCursors), fc.nat(), fc.string({ unit: 'binary', minLength: 1, maxLength: 2 }))
            .map(([real, at, insert]) => {
              const altered = real.slice(0, at % real.length) + insert + real.slice((at % real.length) + 1);
              alteredCursors.add(altered);
              return altered;
            }),
        },
        { weight: 1, arbitrary: hostileShortText },
        { weight: 1, arbitrary: fc.jsonValue().map((value) => base64url(JSON.stringify(value) ?? 'null')) },
        {
          weight: 1,
          arbitrary: fc
            .tuple(fc.constantFrom(...ORDERS), fc.array(hostileShortText, { maxLength: 3 }))
            .map(([order, values]) => base64url(JSON.stringify([order, ...values]))),
        },
      );
      // Mostly well-formed arguments with one or two hostile ones, so that both answers are common.
      const size = fc.oneof(
        { weight: 6, arbitrary: fc.integer({ min: 1, max: MAX_PAGE_SIZE }) },
        { weight: 1, arbitrary: fc.integer({ min: -3, max: MAX_PAGE_SIZE + 3 }) },
        { weight: 1, arbitrary: fc.integer() },
        {
          weight: 1,
          arbitrary: fc.constantFrom(0, -0, 2 ** 31, -(2 ** 31) - 1, 2 ** 53, Number.MAX_VALUE, 1.5, '25', 'NaN', true),
        },
      );
      const date = fc.oneof(
        { weight: 4, arbitrary: fc.date({ noInvalidDate: true }).map((value) => value.toISOString()) },
        {
          weight: 1,
          arbitrary: fc.constantFrom('2000-01-01T00:00:00Z', '2024-02-30T00:00:00Z', '0000-01-01T00:00:00Z', 'x', 5),
        },
        { weight: 1, arbitrary: hostileShortText },
      );
      const filterText = fc.oneof(
        { weight: 3, arbitrary: storableText },
        {
          weight: 3,
          arbitrary: fc.constantFrom('', ' ', 'tag-1-0', 'tag-2-1', 'org', 'FIRST', 'team-', 'l', '%', '_'),
        },
        { weight: 2, arbitrary: hostileShortText },
      );
      const maybe = <T>(arbitrary: fc.Arbitrary<T>, absent: number) =>
        fc.oneof({ weight: absent, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary });
      const filter = fc.record(
        {
          organization: maybe(filterText, 3),
          businessUnit: maybe(filterText, 3),
          department: maybe(filterText, 3),
          group: maybe(filterText, 3),
          team: maybe(filterText, 3),
          search: maybe(fc.oneof({ weight: 8, arbitrary: filterText }, { weight: 1, arbitrary: longSearch }), 1),
          updatedSince: maybe(date, 3),
        },
        { requiredKeys: [] },
      );
      const pages = fc.oneof(
        { weight: 5, arbitrary: fc.record({ first: maybe(size, 1), after: maybe(cursor, 1) }) },
        { weight: 3, arbitrary: fc.record({ last: size, before: maybe(cursor, 1) }) },
        {
          weight: 1,
          arbitrary: fc.record({ first: size, last: size, after: cursor, before: cursor }, { requiredKeys: [] }),
        },
      );
      const arbitrary = fc
        .record({
          page: pages,
          orderBy: maybe(
            fc.oneof(
              { weight: 9, arbitrary: fc.constantFrom(...ORDERS) },
              { weight: 1, arbitrary: fc.constantFrom('email_asc', '') },
            ),
            1,
          ),
          filter: maybe(filter, 1),
        })
        .map(
          ({ page, orderBy, filter: given }) =>
            Object.fromEntries(
              Object.entries({ ...page, orderBy, filter: given }).filter(([, value]) => value !== undefined),
            ) as {
              first?: unknown;
              last?: unknown;
              after?: unknown;
              before?: unknown;
              orderBy?: string;
              filter?: Record<string, unknown>;
            },
        );

      const list: string[] = [];
      await assertProperty(
        fc.asyncProperty(arbitrary, async (variables) => {
          const response = await server.gql(PEOPLE, variables as Record<string, unknown>);
          const size = Buffer.byteLength(JSON.stringify({ query: PEOPLE, variables }));
          if (size > BODY_LIMIT_BYTES) {
            // Rarely, several long values together pass the body limit: that has its own answer.
            expect(response.status).toBe(413);
            expect(codesOf(response)).toEqual(['PAYLOAD_TOO_LARGE']);
            list.push('too large');
            return;
          }
          expectServed(response);
          const { first, last, after, before, orderBy } = variables;
          const filter = (variables.filter ?? {}) as Record<string, unknown>;
          const isInt = (value: unknown) =>
            typeof value === 'number' && Number.isInteger(value) && value >= -(2 ** 31) && value < 2 ** 31;
          const texts = ['organization', 'businessUnit', 'department', 'group', 'team', 'search']
            .map((key) => filter[key])
            .filter((value): value is string => typeof value === 'string');
          const backward = last != null || (first == null && before != null && after == null);
          const pageSize = (backward ? last : first) ?? 25;
          const mustRefuse =
            (first != null && !isInt(first)) ||
            (last != null && !isInt(last)) ||
            (first != null && last != null) ||
            (orderBy != null && !(ORDERS as readonly string[]).includes(orderBy)) ||
            (isInt(pageSize) && ((pageSize as number) < 1 || (pageSize as number) > MAX_PAGE_SIZE)) ||
            texts.some(hasUnstorableCharacter) ||
            (typeof filter.search === 'string' && [...filter.search].length > MAX_EMAIL_LENGTH);

          const [code] = codesOf(response);
          const hasAlteredCursor = [after, before].some(
            (value) => typeof value === 'string' && alteredCursors.has(value),
          );
          list.push(
            hasAlteredCursor
              ? 'altered cursor (not compared)'
              : code
                ? `refused ${code}`
                : filter.updatedSince === undefined
                  ? `total ${(response.body.data?.people as { totalCount: number }).totalCount}`
                  : 'answered',
          );
          if (mustRefuse || code !== undefined) {
            // Variables the schema rejects may give one error each; all of them are BAD_USER_INPUT.
            const codes = codesOf(response);
            expect(codes.length).toBeGreaterThan(0);
            expect(new Set(codes), preview(variables)).toEqual(new Set(['BAD_USER_INPUT']));
            return;
          }
          const people = response.body.data?.people as {
            totalCount: number;
            edges: { cursor: string; node: Record<string, string | null> }[];
          };
          expect(people.edges.length).toBeLessThanOrEqual(pageSize as number);
          expect(people.totalCount).toBeGreaterThanOrEqual(people.edges.length);
          for (const { node } of people.edges) {
            for (const key of ['organization', 'businessUnit', 'department', 'group', 'team']) {
              if (typeof filter[key] === 'string') expect(node[key]).toBe(filter[key]);
            }
            if (typeof filter.search === 'string') {
              const prefix = asciiLower(filter.search);
              expect(
                [node.email, node.firstName, node.lastName].some(
                  (value) => value !== null && asciiLower(value).startsWith(prefix),
                ),
                `${JSON.stringify(node)} for search ${JSON.stringify(filter.search)}`,
              ).toBe(true);
            }
            const since = filter.updatedSince;
            if (typeof since === 'string' && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/.test(since)) {
              expect(String(node.updatedAt) >= new Date(since).toISOString()).toBe(true);
            }
          }
        }),
        { numRuns: RUNS, seed: seedOf('people') },
      );
      recordDecisions(target.kind, 'people', list);
    },
    PROPERTY_TIMEOUT_MS,
  );

  it('refuses a search longer than any stored value with BAD_USER_INPUT (SQLite refused the LIKE pattern)', async () => {
    // 25,001 two-byte characters make a LIKE pattern over SQLite's 50,000-byte limit: that was an
    // INTERNAL_SERVER_ERROR on SQLite while PostgreSQL answered.
    for (const search of ['é'.repeat(25_001), 'a'.repeat(255), '%'.repeat(30_000)]) {
      const response = await server.gql(PEOPLE, { filter: { search } });
      expect(response.status).toBe(200);
      expect(response.body.errors?.map((error) => [error.extensions?.code, error.extensions?.field])).toEqual([
        ['BAD_USER_INPUT', 'filter.search'],
      ]);
    }
    const longest = await server.gql(PEOPLE, { filter: { search: 'a'.repeat(254) } });
    expect(longest.body.errors).toBeUndefined();
    expect(longest.body.data?.people).toMatchObject({ totalCount: 0, edges: [] });
  });
});

describe('SQLite and PostgreSQL decide alike (the same seeds on both)', () => {
  it('made identical decisions and stored identical values for every generated input', () => {
    if (!postgresTarget) {
      console.warn('TEST_DATABASE_URL is not set: the SQLite/PostgreSQL comparison of the properties is SKIPPED.');
      return;
    }
    expect([...decisions.keys()].sort()).toEqual(
      ['create.email', 'people', 'update', ...TEXT_FIELDS.map((field) => `create.${field}`)].sort(),
    );
    for (const [property, byKind] of decisions) {
      const sqlite = byKind.get('sqlite') ?? [];
      const postgres = byKind.get('postgres') ?? [];
      expect(sqlite.length, property).toBe(RUNS);
      expect(postgres.length, property).toBe(RUNS);
      const first = sqlite.findIndex((decision, index) => decision !== postgres[index]);
      expect(
        first,
        `${property}, input #${first}: SQLite ${preview(sqlite[first], 600)}; PostgreSQL ${preview(postgres[first], 600)}`,
      ).toBe(-1);
    }
  });
});

describe.skipIf(!postgresTarget)('one input, both databases, in the same iteration', () => {
  const servers: TestServer[] = [];
  const databases: TestDatabase[] = [];

  beforeAll(async () => {
    for (const target of [sqliteTarget, postgresTarget]) {
      if (!target) continue;
      const database = await target.create();
      databases.push(database);
      servers.push(await startServer(database.url, ENVIRONMENT));
    }
  });

  afterAll(async () => {
    for (const server of servers) await server.close();
    for (const database of databases) await database.drop();
  });

  it(
    'answers create and then update of a whole record identically on SQLite and PostgreSQL',
    async () => {
      let counter = 0;
      const record = fc.record({
        // Half of the addresses valid ones: with hostile addresses alone only about one record in
        // eight is storable (as few as 12 of 200 over 300 seeds), too few to compare stored values
        // reliably; with these, 30 to 74 of 200.
        email: fc.oneof(hostileShortEmail, paddedValidEmail),
        fields: fc.record(Object.fromEntries(TEXT_FIELDS.map((field) => [field, updateValue])), { requiredKeys: [] }),
        changes: fc.record(Object.fromEntries(TEXT_FIELDS.map((field) => [field, updateValue])), { requiredKeys: [] }),
      });
      let accepted = 0;
      await assertProperty(
        fc.asyncProperty(record, async ({ email, fields, changes }) => {
          counter += 1;
          // Valid generated addresses get a unique prefix so that most creates can succeed.
          const address = email.valid ? `n${counter}.${email.value.trimStart()}` : email.value;
          const created = await Promise.all(
            servers.map((server) => server.gql(CREATE, { input: { email: address, ...fields } })),
          );
          created.forEach(expectServed);
          const [onSqlite, onPostgres] = created.map((response) => ({
            status: response.status,
            answer: signatureOf(response, 'createPerson'),
          }));
          expect(onPostgres).toEqual(onSqlite);
          if (created[0].body.errors) return;
          accepted += 1;
          const stored = normalizedEmail(address);
          const updated = await Promise.all(
            servers.map((server) => server.gql(UPDATE, { input: { email: stored, ...changes } })),
          );
          updated.forEach(expectServed);
          const [updatedOnSqlite, updatedOnPostgres] = updated.map((response) => signatureOf(response, 'updatePerson'));
          expect(updatedOnPostgres).toEqual(updatedOnSqlite);
          const read = await Promise.all(servers.map((server) => server.gql(GET, { email: stored })));
          expect(signatureOf(read[1], 'person')).toEqual(signatureOf(read[0], 'person'));
        }),
        { numRuns: RUNS, seed: seedOf('both') },
      );
      // The comparison is only worth something if both databases stored values, not just refused them.
      expect(accepted).toBeGreaterThan(RUNS / 10);
    },
    PROPERTY_TIMEOUT_MS,
  );
});
