import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Person } from '../../src/people/person.entity';
import { seedEmail, seedPeople } from '../../src/people/person.seed';
import { databaseTargets, type TestDatabase } from '../helpers/databases';
import { countQueries, onTable } from '../helpers/query-counter';
import { startServer, type TestServer } from '../helpers/server';

type Order = 'EMAIL_ASC' | 'EMAIL_DESC' | 'CREATED_AT_ASC' | 'CREATED_AT_DESC' | 'UPDATED_AT_DESC';
const ORDERS: Order[] = ['EMAIL_ASC', 'EMAIL_DESC', 'CREATED_AT_ASC', 'CREATED_AT_DESC', 'UPDATED_AT_DESC'];

interface PersonNode {
  id: string;
  email: string;
  firstName: string | null;
  lastName: string | null;
  organization: string | null;
  department: string | null;
  team: string | null;
  createdAt: string;
  updatedAt: string;
}
interface PageInfo {
  hasNextPage: boolean;
  hasPreviousPage: boolean;
  startCursor: string | null;
  endCursor: string | null;
}
interface Page {
  totalCount?: number;
  edges: { cursor: string; node: { id: string } }[];
  nodes: PersonNode[];
  pageInfo: PageInfo;
}
interface Filter {
  organization?: string;
  department?: string;
  team?: string;
  search?: string;
  updatedSince?: string;
}

const NODE_FIELDS = 'id email firstName lastName organization department team createdAt updatedAt';
const CONNECTION = `edges { cursor node { id } } nodes { ${NODE_FIELDS} } pageInfo { hasNextPage hasPreviousPage startCursor endCursor }`;
const VARIABLES =
  '$first: Int, $after: String, $last: Int, $before: String, $filter: PeopleFilter, $orderBy: PeopleOrder';
const ARGUMENTS = 'first: $first, after: $after, last: $last, before: $before, filter: $filter, orderBy: $orderBy';
const PEOPLE = `query People(${VARIABLES}) { people(${ARGUMENTS}) { ${CONNECTION} } }`;
const COUNTED = `query People(${VARIABLES}) { people(${ARGUMENTS}) { totalCount ${CONNECTION} } }`;
/** Where the `people` field starts in PEOPLE, as GraphQL reports it in an error. */
const PEOPLE_LOCATION = { line: 1, column: PEOPLE.indexOf('people(') + 1 };
const CREATE = 'mutation Create($input: CreatePersonInput!) { createPerson(input: $input) { email } }';
const UPDATE = 'mutation Update($input: UpdatePersonInput!) { updatePerson(input: $input) { id updatedAt } }';

// Seed values: mixed-case names for `search`, an underscore that LIKE would treat as a wildcard
// (o_brien vs Oxbrien), and some people without names or organization.
const EMAIL_WORDS = ['Zulu', 'alpha', 'Mc.Kinley', 'kilo', 'delta', 'Oscar'];
const FIRST_NAMES = ['Ada', 'alan', 'GRACE', 'Grace', 'linus', 'Linda', 'Margaret', 'barbara'];
const LAST_NAMES = ['McDonald', 'mcintyre', 'MacArthur', 'MCKAY', 'Hopper', 'o_brien', 'Oxbrien'];
const ORGANIZATIONS = ['Acme', 'Globex', 'Initech'];
const TEAMS = ['Red', 'Blue', 'Green', 'Gold'];
const DEPARTMENTS = ['Ops', 'Dev', 'Sales', 'Legal', 'Support'];
const PEOPLE_COUNT = 60;
const BATCH = 6;
/** Seed indexes updated after the seed, for `updatedSince` and UPDATED_AT_DESC. */
const UPDATED = [3, 11, 17, 24, 30, 41, 52, 58];

function seedInput(i: number) {
  return {
    email: `${EMAIL_WORDS[i % EMAIL_WORDS.length]}.${String(i).padStart(2, '0')}@Example.org`,
    firstName: i % 13 === 12 ? null : FIRST_NAMES[i % FIRST_NAMES.length],
    lastName: i % 11 === 10 ? null : LAST_NAMES[(i * 3) % LAST_NAMES.length],
    organization: i % 10 === 9 ? null : ORGANIZATIONS[i % ORGANIZATIONS.length],
    department: DEPARTMENTS[i % DEPARTMENTS.length],
    team: TEAMS[i % TEAMS.length],
  };
}

function compareBy(keys: (keyof PersonNode)[], descending: boolean) {
  return (a: PersonNode, b: PersonNode): number => {
    for (const key of keys) {
      const [x, y] = [a[key] as string, b[key] as string];
      if (x !== y) return (x < y ? -1 : 1) * (descending ? -1 : 1);
    }
    return 0;
  };
}

/** Each order as the contract defines it; ties on a timestamp are broken by id, same direction. */
const COMPARATORS: Record<Order, (a: PersonNode, b: PersonNode) => number> = {
  EMAIL_ASC: compareBy(['email'], false),
  EMAIL_DESC: compareBy(['email'], true),
  CREATED_AT_ASC: compareBy(['createdAt', 'id'], false),
  CREATED_AT_DESC: compareBy(['createdAt', 'id'], true),
  UPDATED_AT_DESC: compareBy(['updatedAt', 'id'], true),
};

/** The filter as the contract defines it: exact matches, case-insensitive prefix, updated at or after. */
function matches(person: PersonNode, filter: Filter): boolean {
  for (const field of ['organization', 'department', 'team'] as const) {
    if (filter[field] !== undefined && person[field] !== filter[field]) return false;
  }
  if (filter.search !== undefined) {
    const prefix = filter.search.toLowerCase();
    const fields = [person.email, person.firstName, person.lastName];
    if (!fields.some((value) => value !== null && value.toLowerCase().startsWith(prefix))) return false;
  }
  if (filter.updatedSince !== undefined && person.updatedAt < new Date(filter.updatedSince).toISOString()) {
    return false;
  }
  return true;
}

const base64url = (text: string) => Buffer.from(text, 'utf8').toString('base64url');

/** Resolves once the clock has moved past `instant` (an ISO timestamp), so later writes sort after it. */
async function clockPast(instant: string): Promise<void> {
  while (new Date().toISOString() <= instant) await new Promise((resolve) => setTimeout(resolve, 1));
}

function badInput(message: string, field: string) {
  return {
    data: null,
    errors: [
      { message, locations: [PEOPLE_LOCATION], path: ['people'], extensions: { code: 'BAD_USER_INPUT', field } },
    ],
  };
}

describe.each(databaseTargets)('people pagination on $kind', (target) => {
  let database: TestDatabase;
  let server: TestServer;
  /** Every person, read straight from the table: the model the expectations are computed from. */
  let rows: PersonNode[];
  /** An instant after every creation and before every update. */
  let since: string;

  beforeAll(async () => {
    database = await target.create();
    server = await startServer(database.url);
    // Batches of concurrent creates: each create stamps its time before its first await, so the
    // people of one batch usually share createdAt to the millisecond and only the id orders them.
    for (let start = 0; start < PEOPLE_COUNT; start += BATCH) {
      const batch = Array.from({ length: BATCH }, (_, offset) => server.app.people.create(seedInput(start + offset)));
      await Promise.all(batch);
    }
    const created = await server.app.database.manager.find(Person);
    await clockPast(
      created
        .map((person) => person.createdAt)
        .sort()
        .at(-1) as string,
    );
    since = new Date().toISOString();
    // Concurrent updates through the API: they may share updatedAt too.
    const updates = await Promise.all(
      UPDATED.map((i) => server.gql(UPDATE, { input: { email: seedInput(i).email, department: 'Moved' } })),
    );
    for (const update of updates) expect(update.body.errors).toBeUndefined();

    const stored = await server.app.database.manager.find(Person);
    rows = stored.map(({ id, email, firstName, lastName, organization, department, team, createdAt, updatedAt }) => ({
      id,
      email,
      firstName,
      lastName,
      organization,
      department,
      team,
      createdAt,
      updatedAt,
    }));
  });

  afterAll(async () => {
    await server?.close();
    await database?.drop();
  });

  function expected(order: Order, filter: Filter = {}): PersonNode[] {
    return rows.filter((person) => matches(person, filter)).sort(COMPARATORS[order]);
  }

  async function people(variables: Record<string, unknown>, query = PEOPLE): Promise<Page> {
    const response = await server.gql(query, variables);
    expect(response.body.errors).toBeUndefined();
    expect(response.status).toBe(200);
    return response.body.data?.people as Page;
  }

  /** Edges and nodes agree, and the page's start/end cursors are its first/last edge's. */
  function expectConsistent(page: Page): void {
    expect(page.edges.map((edge) => edge.node.id)).toEqual(page.nodes.map((node) => node.id));
    expect(page.pageInfo.startCursor).toBe(page.edges[0]?.cursor ?? null);
    expect(page.pageInfo.endCursor).toBe(page.edges.at(-1)?.cursor ?? null);
  }

  /** Follows endCursor with `first` until hasNextPage is false. */
  async function walkForward(orderBy: Order, size: number, filter?: Filter, query = PEOPLE): Promise<Page[]> {
    const pages: Page[] = [];
    let after: string | null = null;
    for (;;) {
      const page = await people({ first: size, after, orderBy, filter }, query);
      pages.push(page);
      expectConsistent(page);
      if (!page.pageInfo.hasNextPage) return pages;
      if (pages.length > PEOPLE_COUNT) throw new Error('hasNextPage never became false');
      after = page.pageInfo.endCursor;
    }
  }

  /** From the end, follows startCursor with `last` until hasPreviousPage is false; pages in order. */
  async function walkBackward(orderBy: Order, size: number, filter?: Filter, query = PEOPLE): Promise<Page[]> {
    const pages: Page[] = [];
    let before: string | null = null;
    for (;;) {
      const page = await people({ last: size, before, orderBy, filter }, query);
      pages.unshift(page);
      expectConsistent(page);
      if (!page.pageInfo.hasPreviousPage) return pages;
      if (pages.length > PEOPLE_COUNT) throw new Error('hasPreviousPage never became false');
      before = page.pageInfo.startCursor;
    }
  }

  const ids = (list: { id: string }[]) => list.map((person) => person.id);

  it('seeds what the other tests rely on: 60 people, createdAt ties, 8 updated after `since`', () => {
    expect(rows).toHaveLength(PEOPLE_COUNT);
    const perCreatedAt = new Map<string, number>();
    for (const person of rows) perCreatedAt.set(person.createdAt, (perCreatedAt.get(person.createdAt) ?? 0) + 1);
    expect(Math.max(...perCreatedAt.values())).toBeGreaterThan(1);
    const updatedEmails = UPDATED.map((i) => seedInput(i).email.toLowerCase()).sort();
    expect(
      rows
        .filter((person) => person.updatedAt >= since)
        .map((person) => person.email)
        .sort(),
    ).toEqual(updatedEmails);
    expect(rows.filter((person) => person.department === 'Moved').map((person) => person.email)).toHaveLength(8);
  });

  describe.each(ORDERS)('orderBy %s', (orderBy) => {
    it('forward with first 7 visits every person once, in order, across 9 pages', async () => {
      const pages = await walkForward(orderBy, 7);
      expect(pages.map((page) => page.nodes.length)).toEqual([7, 7, 7, 7, 7, 7, 7, 7, 4]);
      expect(pages.flatMap((page) => page.nodes)).toEqual(expected(orderBy));
      expect(pages.map((page) => page.pageInfo.hasPreviousPage)).toEqual([false, ...Array(8).fill(true)]);
      expect(pages.map((page) => page.pageInfo.hasNextPage)).toEqual([...Array(8).fill(true), false]);
      expect(new Set(pages.flatMap((page) => page.edges.map((edge) => edge.cursor))).size).toBe(PEOPLE_COUNT);
    });

    it('backward with last 7 from the end visits the same sequence, with the same cursors', async () => {
      const backward = await walkBackward(orderBy, 7);
      expect(backward.map((page) => page.nodes.length)).toEqual([4, 7, 7, 7, 7, 7, 7, 7, 7]);
      expect(backward.flatMap((page) => page.nodes)).toEqual(expected(orderBy));
      expect(backward.map((page) => page.pageInfo.hasPreviousPage)).toEqual([false, ...Array(8).fill(true)]);
      expect(backward.map((page) => page.pageInfo.hasNextPage)).toEqual([...Array(8).fill(true), false]);

      const forward = await walkForward(orderBy, 10);
      expect(backward.flatMap((page) => page.edges.map((edge) => edge.cursor))).toEqual(
        forward.flatMap((page) => page.edges.map((edge) => edge.cursor)),
      );
    });

    it('the cursor of any edge resumes right after it (first) or right before it (last)', async () => {
      const want = expected(orderBy);
      const cursors = (await walkForward(orderBy, 20)).flatMap((page) => page.edges.map((edge) => edge.cursor));
      for (const i of [0, 1, 6, 7, 33, 57, 58, 59]) {
        const after = await people({ first: 3, after: cursors[i], orderBy });
        expectConsistent(after);
        expect(ids(after.nodes)).toEqual(ids(want.slice(i + 1, i + 4)));
        expect(after.pageInfo).toMatchObject({ hasPreviousPage: true, hasNextPage: i + 4 < PEOPLE_COUNT });

        const before = await people({ last: 3, before: cursors[i], orderBy });
        expectConsistent(before);
        expect(ids(before.nodes)).toEqual(ids(want.slice(Math.max(0, i - 3), i)));
        expect(before.pageInfo).toMatchObject({ hasPreviousPage: i - 3 > 0, hasNextPage: true });
      }
    });
  });

  it('pages that end exactly at the last person: hasNextPage false, no trailing empty page', async () => {
    for (const orderBy of ['EMAIL_ASC', 'UPDATED_AT_DESC'] as const) {
      const forward = await walkForward(orderBy, 6);
      expect(forward.map((page) => page.nodes.length)).toEqual(Array(10).fill(6));
      expect(forward.flatMap((page) => page.nodes)).toEqual(expected(orderBy));
      const backward = await walkBackward(orderBy, 6);
      expect(backward.map((page) => page.nodes.length)).toEqual(Array(10).fill(6));
      expect(backward.flatMap((page) => page.nodes)).toEqual(expected(orderBy));
    }
  });

  it('after the last cursor and before the first one the page is empty, with null cursors', async () => {
    const [page] = await walkForward('CREATED_AT_ASC', 100);
    const first = page.edges[0].cursor;
    const last = page.edges.at(-1)?.cursor;
    const emptyPage = (pageInfo: Partial<PageInfo>) => ({
      totalCount: PEOPLE_COUNT,
      edges: [],
      nodes: [],
      pageInfo: { startCursor: null, endCursor: null, ...pageInfo },
    });
    expect(await people({ first: 5, after: last, orderBy: 'CREATED_AT_ASC' }, COUNTED)).toEqual(
      emptyPage({ hasNextPage: false, hasPreviousPage: true }),
    );
    expect(await people({ last: 5, before: first, orderBy: 'CREATED_AT_ASC' }, COUNTED)).toEqual(
      emptyPage({ hasNextPage: true, hasPreviousPage: false }),
    );
  });

  it.each([
    ['organization', { organization: 'Globex' }, 'EMAIL_ASC', 18],
    ['team', { team: 'Blue' }, 'CREATED_AT_DESC', 15],
    ['organization in another letter case, which is not a match', { organization: 'globex' }, 'EMAIL_ASC', 0],
    ['organization and team', { organization: 'Acme', team: 'Red' }, 'CREATED_AT_ASC', 5],
    ['search on email and last name prefixes, any case', { search: 'mc' }, 'EMAIL_DESC', 28],
    ['search in upper case on mixed-case first names', { search: 'GRA' }, 'UPDATED_AT_DESC', 15],
    ['search with an underscore, which is not a wildcard', { search: 'o_B' }, 'EMAIL_ASC', 7],
    ['search with a percent sign, which is not a wildcard', { search: '%' }, 'EMAIL_ASC', 0],
    ['search and team', { search: 'Li', team: 'Blue' }, 'CREATED_AT_DESC', 7],
    ['department set by the updates', { department: 'Moved' }, 'UPDATED_AT_DESC', 8],
  ] as [string, Filter, Order, number][])(
    'filter by %s: exactly the matching people across pages, both ways, with totalCount',
    async (_name, filter, orderBy, count) => {
      const want = expected(orderBy, filter);
      expect(want).toHaveLength(count);
      const forward = await walkForward(orderBy, 4, filter, COUNTED);
      expect(forward.flatMap((page) => page.nodes)).toEqual(want);
      expect(forward).toHaveLength(Math.max(1, Math.ceil(count / 4)));
      expect(forward.map((page) => page.totalCount)).toEqual(forward.map(() => count));
      const backward = await walkBackward(orderBy, 4, filter, COUNTED);
      expect(backward.flatMap((page) => page.nodes)).toEqual(want);
      expect(backward.map((page) => page.totalCount)).toEqual(backward.map(() => count));
    },
  );

  it('updatedSince returns the people updated at or after the instant, across pages', async () => {
    const want = expected('UPDATED_AT_DESC', { updatedSince: since });
    expect(want.map((person) => person.email).sort()).toEqual(
      UPDATED.map((i) => seedInput(i).email.toLowerCase()).sort(),
    );
    const pages = await walkForward('UPDATED_AT_DESC', 3, { updatedSince: since }, COUNTED);
    expect(pages.map((page) => page.nodes.length)).toEqual([3, 3, 2]);
    expect(pages.flatMap((page) => page.nodes)).toEqual(want);
    expect(pages.map((page) => page.totalCount)).toEqual([8, 8, 8]);

    const combined = { updatedSince: since, organization: 'Acme' };
    const acme = await walkForward('EMAIL_ASC', 2, combined, COUNTED);
    expect(acme.flatMap((page) => page.nodes)).toEqual(expected('EMAIL_ASC', combined));
    expect(acme[0].totalCount).toBe(expected('EMAIL_ASC', combined).length);
  });

  it('updatedSince includes a person updated at exactly the instant and excludes one a millisecond earlier', async () => {
    const earliest = expected('UPDATED_AT_DESC', { updatedSince: since }).at(-1) as PersonNode;
    const atInstant = await people({ first: 100, filter: { updatedSince: earliest.updatedAt } }, COUNTED);
    expect(ids(atInstant.nodes)).toContain(earliest.id);
    expect(atInstant.totalCount).toBe(expected('EMAIL_ASC', { updatedSince: earliest.updatedAt }).length);

    const later = new Date(Date.parse(earliest.updatedAt) + 1).toISOString();
    const afterInstant = await people({ first: 100, filter: { updatedSince: later } }, COUNTED);
    expect(ids(afterInstant.nodes)).not.toContain(earliest.id);
    expect(afterInstant.nodes).toEqual(expected('EMAIL_ASC', { updatedSince: later }));

    // An offset is honoured: the same instant written in another time zone selects the same people.
    const zoned = new Date(Date.parse(earliest.updatedAt) + 2 * 3_600_000).toISOString().replace('Z', '+02:00');
    const sameInstant = await people({ first: 100, filter: { updatedSince: zoned } });
    expect(sameInstant.nodes).toEqual(atInstant.nodes);

    // Finer than a millisecond: half a millisecond after the instant is after it (times are
    // stored to the millisecond, so this selects from the next millisecond on).
    const halfAfter = earliest.updatedAt.replace('Z', '5Z');
    const afterHalf = await people({ first: 100, filter: { updatedSince: halfAfter } }, COUNTED);
    expect(ids(afterHalf.nodes)).not.toContain(earliest.id);
    expect(afterHalf.nodes).toEqual(afterInstant.nodes);
    const exactly = await people({ first: 100, filter: { updatedSince: earliest.updatedAt.replace('Z', '000Z') } });
    expect(exactly.nodes).toEqual(atInstant.nodes);
  });

  it('updatedSince after the last storable time (9999-12-31T23:59:59.999Z) matches nobody', async () => {
    // Both are instants in year 10000 (the second once rounded up to the millisecond).
    for (const updatedSince of ['9999-12-31T23:59:59-01:00', '9999-12-31T23:59:59.9995Z']) {
      const answer = await server.gql(
        'query($since: DateTimeISO) { people(filter: { updatedSince: $since }) { totalCount nodes { id } } }',
        { since: updatedSince },
      );
      expect({ updatedSince, body: answer.body }).toEqual({
        updatedSince,
        body: { data: { people: { totalCount: 0, nodes: [] } } },
      });
    }
  });

  it('totalCount counts every match whatever page is asked for', async () => {
    const [page] = await walkForward('EMAIL_ASC', 40);
    const middle = page.edges[30].cursor;
    for (const variables of [{}, { first: 1 }, { first: 2, after: middle }, { last: 5 }, { last: 3, before: middle }]) {
      expect((await people(variables, COUNTED)).totalCount).toBe(PEOPLE_COUNT);
    }
    const globex = await people({ first: 1, filter: { organization: 'Globex' } }, COUNTED);
    expect(globex.totalCount).toBe(expected('EMAIL_ASC', { organization: 'Globex' }).length);
    // An empty search is the empty prefix, which every email has.
    expect((await people({ first: 1, filter: { search: '' } }, COUNTED)).totalCount).toBe(PEOPLE_COUNT);
    const nobody = await server.gql(COUNTED, { filter: { organization: 'Nobody Inc' } });
    expect(nobody.body).toEqual({
      data: {
        people: {
          totalCount: 0,
          edges: [],
          nodes: [],
          pageInfo: { hasNextPage: false, hasPreviousPage: false, startCursor: null, endCursor: null },
        },
      },
    });
  });

  it('counts only when totalCount is selected: no COUNT without it, exactly one with it', async () => {
    const database = server.app.database;
    const filter = { organization: 'Globex' };

    const plain = await countQueries(database, () => server.gql(PEOPLE, { first: 5, filter }));
    expect(plain.result.body.errors).toBeUndefined();
    expect(plain.statements.filter((sql) => /COUNT\(/i.test(sql))).toEqual([]);
    const plainPerson = plain.statements.filter(onTable('person'));
    expect(plainPerson).toHaveLength(1);
    expect(plainPerson[0]).toMatch(/^SELECT /);

    const counted = await countQueries(database, () => server.gql(COUNTED, { first: 5, filter }));
    expect((counted.result.body.data?.people as Page).totalCount).toBe(expected('EMAIL_ASC', filter).length);
    const countedPerson = counted.recorded.filter((statement) => onTable('person')(statement.sql));
    expect(countedPerson).toHaveLength(2);
    const counts = counted.recorded.filter((statement) => /COUNT\(/i.test(statement.sql));
    expect(counts).toHaveLength(1);
    expect(onTable('person')(counts[0].sql)).toBe(true);
    expect(counts[0].parameters).toEqual(['Globex']);
  });

  it('defaults: 25 people in EMAIL_ASC order when neither first nor last nor orderBy is given', async () => {
    const want = expected('EMAIL_ASC');
    const response = await server.gql('{ people { nodes { email } pageInfo { hasNextPage hasPreviousPage } } }');
    expect(response.body).toEqual({
      data: {
        people: {
          nodes: want.slice(0, 25).map(({ email }) => ({ email })),
          pageInfo: { hasNextPage: true, hasPreviousPage: false },
        },
      },
    });
    // orderBy: null falls back to EMAIL_ASC too.
    expect(ids((await people({ first: 60, orderBy: null })).nodes)).toEqual(ids(want));
    // `before` alone reads the 25 people before the cursor.
    const [page] = await walkForward('EMAIL_ASC', 50);
    const before = await people({ before: page.edges[40].cursor });
    expect(ids(before.nodes)).toEqual(ids(want.slice(15, 40)));
    expect(before.pageInfo).toMatchObject({ hasPreviousPage: true, hasNextPage: true });
  });

  it('accepts page sizes 1 and MAX_PAGE_SIZE (100) both ways', async () => {
    const want = expected('CREATED_AT_DESC');
    const one = await people({ first: 1, orderBy: 'CREATED_AT_DESC' });
    expect(one.nodes).toEqual(want.slice(0, 1));
    expect(one.pageInfo).toMatchObject({ hasNextPage: true, hasPreviousPage: false });
    const lastOne = await people({ last: 1, orderBy: 'CREATED_AT_DESC' });
    expect(lastOne.nodes).toEqual(want.slice(-1));
    expect(lastOne.pageInfo).toMatchObject({ hasNextPage: false, hasPreviousPage: true });
    for (const size of [{ first: 100 }, { last: 100 }]) {
      const all = await people({ ...size, orderBy: 'CREATED_AT_DESC' });
      expect(all.nodes).toEqual(want);
      expect(all.pageInfo).toMatchObject({ hasNextPage: false, hasPreviousPage: false });
    }
  });

  describe('both cursors: the window between them (Relay ApplyCursorsToEdges)', () => {
    it.each(ORDERS)('%s: first, last or neither, within after and before', async (orderBy) => {
      const all = expected(orderBy);
      const [page] = await walkForward(orderBy, 12);
      const [after, before] = [page.edges[2].cursor, page.edges[10].cursor];
      // Rows 3..9 (0-based) lie strictly between the cursors.
      const window = all.slice(3, 10);
      const forward = await people({ orderBy, after, before, first: 4 });
      expect(forward.nodes).toEqual(window.slice(0, 4));
      expect(forward.pageInfo).toMatchObject({ hasNextPage: true, hasPreviousPage: true });
      const backward = await people({ orderBy, after, before, last: 4 });
      expect(backward.nodes).toEqual(window.slice(-4));
      expect(backward.pageInfo).toMatchObject({ hasNextPage: true, hasPreviousPage: true });
      // The whole window fits: no more within it, though there is more outside it.
      const whole = await people({ orderBy, after, before, first: 10 });
      expect(whole.nodes).toEqual(window);
      expect(whole.pageInfo).toMatchObject({ hasNextPage: false, hasPreviousPage: true });
      expect((await people({ orderBy, after, before })).nodes).toEqual(window);
      // One cursor with the other size: first with before, last with after.
      expect((await people({ orderBy, before, first: 3 })).nodes).toEqual(all.slice(0, 3));
      expect((await people({ orderBy, after, last: 3 })).nodes).toEqual(all.slice(-3));
    });

    it('cursors in the wrong order give an empty window, not an error', async () => {
      const [page] = await walkForward('EMAIL_ASC', 10);
      const empty = await people({ after: page.edges[8].cursor, before: page.edges[2].cursor, first: 5 });
      expect(empty.nodes).toEqual([]);
      expect(empty.pageInfo).toMatchObject({ hasNextPage: false, startCursor: null, endCursor: null });
    });
  });

  describe('bad input', () => {
    it.each([
      ['first 0', { first: 0 }, '"first" must be between 1 and 100', 'first'],
      ['first -1', { first: -1 }, '"first" must be between 1 and 100', 'first'],
      ['first 101', { first: 101 }, '"first" must be between 1 and 100', 'first'],
      ['last 0', { last: 0 }, '"last" must be between 1 and 100', 'last'],
      ['last 101', { last: 101 }, '"last" must be between 1 and 100', 'last'],
      ['first and last', { first: 5, last: 5 }, 'Give either "first" or "last", not both', 'first'],
      [
        'a NUL in a filter value',
        { filter: { team: 'Red\u0000' } },
        'filter.team contains control characters or unpaired surrogates',
        'filter.team',
      ],
      [
        'a control character in search',
        { filter: { search: 'a\u001b' } },
        'filter.search contains control characters or unpaired surrogates',
        'filter.search',
      ],
    ])('%s: BAD_USER_INPUT, HTTP 200, data null', async (_name, variables, message, field) => {
      const response = await server.gql(PEOPLE, variables);
      expect(response.status).toBe(200);
      expect(response.body).toEqual(badInput(message, field));
    });

    const garbage: [string, string][] = [
      ['a word', 'garbage'],
      ['an empty string', ''],
      ['punctuation', '!!!!'],
      ['a long string', 'x'.repeat(5000)],
      ['base64 of text', base64url('not json')],
      ['base64 of an object', base64url('{"order":"EMAIL_ASC","email":"a@b.c"}')],
      ['base64 of null', base64url('null')],
      ['base64 of a string', base64url('"EMAIL_ASC"')],
      ['base64 of an empty array', base64url('[]')],
      ['base64 of the order alone', base64url('["EMAIL_ASC"]')],
      ['base64 of a number key', base64url('["EMAIL_ASC",1]')],
      ['base64 of a null key', base64url('["EMAIL_ASC",null]')],
      ['base64 of too many keys', base64url('["EMAIL_ASC","a@b.c","x"]')],
      ['base64 of an over-long key', base64url(JSON.stringify(['EMAIL_ASC', 'a'.repeat(301)]))],
      ['base64 of a key with NUL', base64url(JSON.stringify(['EMAIL_ASC', 'a\u0000b']))],
      ['base64 of a key with a lone surrogate', base64url(JSON.stringify(['EMAIL_ASC', 'a\ud800']))],
      ['base64 of an unknown order', base64url('["SIDEWAYS","a@b.c"]')],
      ['base64 of an order name in lower case', base64url('["email_asc","a@b.c"]')],
    ];

    it.each(garbage)('a cursor that is %s: "Invalid cursor", in after and in before', async (_name, cursor) => {
      const forward = await server.gql(PEOPLE, { first: 5, after: cursor });
      expect(forward.status).toBe(200);
      expect(forward.body).toEqual(badInput('Invalid cursor in "after"', 'after'));
      const backward = await server.gql(PEOPLE, { last: 5, before: cursor });
      expect(backward.status).toBe(200);
      expect(backward.body).toEqual(badInput('Invalid cursor in "before"', 'before'));
    });

    // Well-formed cursors whose key values the service never stores; each case but the reviewer's
    // own (the first three) has one forged value beside real-looking ones.
    const ID = '3f1b6c1e-8d2a-4c5e-9b7f-0a1d2e3c4b5a';
    const TIME = '2024-05-06T07:08:09.010Z';
    const forged: [string, Order, string[]][] = [
      ['a creation time that is no date', 'CREATED_AT_ASC', ['CREATED_AT_ASC', 'notadate', 'x']],
      ['an empty creation time', 'CREATED_AT_ASC', ['CREATED_AT_ASC', '', 'x']],
      ['an update time in month 13', 'UPDATED_AT_DESC', ['UPDATED_AT_DESC', '2024-13-45T99:00:00Z', 'x']],
      ['a timestamp that is no date, real id', 'CREATED_AT_DESC', ['CREATED_AT_DESC', 'notadate', ID]],
      ['a timestamp on February 30', 'CREATED_AT_ASC', ['CREATED_AT_ASC', '2024-02-30T00:00:00.000Z', ID]],
      ['a timestamp without milliseconds', 'UPDATED_AT_DESC', ['UPDATED_AT_DESC', '2024-05-06T07:08:09Z', ID]],
      ['a timestamp with an offset', 'CREATED_AT_ASC', ['CREATED_AT_ASC', '2024-05-06T07:08:09.010+00:00', ID]],
      ['a date alone', 'CREATED_AT_ASC', ['CREATED_AT_ASC', '2024-05-06', ID]],
      ['a timestamp past year 9999', 'CREATED_AT_ASC', ['CREATED_AT_ASC', '+010000-01-01T00:00:00.000Z', ID]],
      ['a timestamp before year 0', 'UPDATED_AT_DESC', ['UPDATED_AT_DESC', '-000001-01-01T00:00:00.000Z', ID]],
      ['an empty id', 'CREATED_AT_ASC', ['CREATED_AT_ASC', TIME, '']],
      ['an id longer than the column', 'UPDATED_AT_DESC', ['UPDATED_AT_DESC', TIME, `${ID}0`]],
      ['an id with a NUL', 'CREATED_AT_DESC', ['CREATED_AT_DESC', TIME, 'a\u0000b']],
      ['an email that is no address', 'EMAIL_ASC', ['EMAIL_ASC', 'not-an-email']],
      ['an empty email', 'EMAIL_DESC', ['EMAIL_DESC', '']],
      ['an email in upper case', 'EMAIL_ASC', ['EMAIL_ASC', 'Zulu.00@Example.org']],
      ['an email with a space around it', 'EMAIL_DESC', ['EMAIL_DESC', ' zulu.00@example.org']],
      [
        'an email of 255 characters',
        'EMAIL_ASC',
        ['EMAIL_ASC', `${'a'.repeat(64)}@${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(62)}`],
      ],
      // Refused as invalid, not as made for another order: the service never made it at all.
      ['a forged timestamp, used with another order', 'EMAIL_ASC', ['CREATED_AT_ASC', 'notadate', ID]],
    ];

    it.each(forged)('a cursor with %s: "Invalid cursor", in after and in before', async (_name, orderBy, keyset) => {
      const cursor = base64url(JSON.stringify(keyset));
      const forward = await server.gql(PEOPLE, { first: 5, after: cursor, orderBy });
      expect(forward.status).toBe(200);
      expect(forward.body).toEqual(badInput('Invalid cursor in "after"', 'after'));
      const backward = await server.gql(PEOPLE, { last: 5, before: cursor, orderBy });
      expect(backward.status).toBe(200);
      expect(backward.body).toEqual(badInput('Invalid cursor in "before"', 'before'));
    });

    it('a cursor made for another orderBy is refused for every other order, naming both', async () => {
      const cursors = new Map<Order, string>();
      for (const orderBy of ORDERS) cursors.set(orderBy, (await people({ first: 3, orderBy })).edges[1].cursor);
      for (const made of ORDERS) {
        for (const used of ORDERS.filter((order) => order !== made)) {
          const forward = await server.gql(PEOPLE, { first: 5, after: cursors.get(made), orderBy: used });
          expect(forward.body).toEqual(
            badInput(`The cursor in "after" was made for orderBy ${made}, not ${used}`, 'after'),
          );
          const backward = await server.gql(PEOPLE, { last: 5, before: cursors.get(made), orderBy: used });
          expect(backward.body).toEqual(
            badInput(`The cursor in "before" was made for orderBy ${made}, not ${used}`, 'before'),
          );
        }
      }
    });

    it.each([
      [
        'first "x"',
        { first: 'x' },
        '$first',
        'Variable "$first" got invalid value "x"; Int cannot represent non-integer value: "x"',
      ],
      [
        'first 1.5',
        { first: 1.5 },
        '$first',
        'Variable "$first" got invalid value 1.5; Int cannot represent non-integer value: 1.5',
      ],
      [
        'last 2^31',
        { last: 2 ** 31 },
        '$last',
        'Variable "$last" got invalid value 2147483648; Int cannot represent non 32-bit signed integer value: 2147483648',
      ],
      [
        'after 5',
        { after: 5 },
        '$after',
        'Variable "$after" got invalid value 5; String cannot represent a non string value: 5',
      ],
      [
        'an unknown orderBy',
        { orderBy: 'SIDEWAYS' },
        '$orderBy',
        'Variable "$orderBy" got invalid value "SIDEWAYS"; Value "SIDEWAYS" does not exist in "PeopleOrder" enum.',
      ],
      [
        'updatedSince that is no date-time',
        { filter: { updatedSince: 'yesterday' } },
        '$filter',
        'Variable "$filter" got invalid value "yesterday" at "filter.updatedSince"; DateTime cannot represent an invalid date-time-string yesterday.',
      ],
    ])('%s is rejected with the variables: HTTP 400, BAD_USER_INPUT', async (_name, variables, variable, message) => {
      const response = await server.gql(PEOPLE, variables);
      expect(response.status).toBe(400);
      expect(response.body).toEqual({
        errors: [
          {
            message,
            locations: [{ line: 1, column: PEOPLE.indexOf(variable) + 1 }],
            extensions: { code: 'BAD_USER_INPUT' },
          },
        ],
      });
    });
  });

  describe('with MAX_PAGE_SIZE=10', () => {
    let small: TestServer;

    beforeAll(async () => {
      small = await startServer(database.url, { MAX_PAGE_SIZE: '10' });
    });

    afterAll(async () => {
      await small?.close();
    });

    it('refuses first 11 and last 11, and accepts 10', async () => {
      for (const [variables, message, field] of [
        [{ first: 11 }, '"first" must be between 1 and 10', 'first'],
        [{ last: 11 }, '"last" must be between 1 and 10', 'last'],
      ] as const) {
        const refused = await small.gql(PEOPLE, variables);
        expect(refused.status).toBe(200);
        expect(refused.body).toEqual(badInput(message, field));
      }
      const accepted = await small.gql(PEOPLE, { first: 10 });
      expect(accepted.body.errors).toBeUndefined();
      expect((accepted.body.data?.people as Page).nodes).toEqual(expected('EMAIL_ASC').slice(0, 10));
      const backward = await small.gql(PEOPLE, { last: 10 });
      expect((backward.body.data?.people as Page).nodes).toEqual(expected('EMAIL_ASC').slice(-10));
    });

    it('a request that names no page size gets MAX_PAGE_SIZE people instead of an error', async () => {
      const response = await small.gql('{ people { nodes { email } pageInfo { hasNextPage } } }');
      expect(response.body).toEqual({
        data: {
          people: {
            nodes: expected('EMAIL_ASC')
              .slice(0, 10)
              .map(({ email }) => ({ email })),
            pageInfo: { hasNextPage: true },
          },
        },
      });
    });
  });
});

describe.each(databaseTargets)('every cursor the service hands out is taken back, on $kind', (target) => {
  const SEEDED = 20;
  // The most unusual addresses the email rule allows, as a client might send them.
  const UNUSUAL_EMAILS = [
    `${'a'.repeat(64)}@${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}`,
    "!#$%&'*+/=?^_`{|}~-.0@x-1.io",
    '\u3000 Mixed.CASE+tag@Sub.Example.COM\t',
    'ALL.CAPS@EXAMPLE.ORG',
  ];
  // One more row, imported by hand with an id the service would not make.
  const COUNT = SEEDED + UNUSUAL_EMAILS.length + 1;
  let database: TestDatabase;
  let server: TestServer;

  beforeAll(async () => {
    database = await target.create();
    server = await startServer(database.url);
    // Seeded people carry the seed's own ids and timestamps; the others those of the API.
    expect(await seedPeople(server.app.database, SEEDED)).toBe(SEEDED);
    // Seeding again inserts nothing, and says so.
    expect(await seedPeople(server.app.database, SEEDED)).toBe(0);
    const created = await Promise.all(UNUSUAL_EMAILS.map((email) => server.gql(CREATE, { input: { email } })));
    expect(created.map((response) => response.body)).toEqual(
      UNUSUAL_EMAILS.map((email) => ({ data: { createPerson: { email: email.trim().toLowerCase() } } })),
    );
    expect(UNUSUAL_EMAILS[0]).toHaveLength(254);
    await server.app.database.dataSource.query(
      `INSERT INTO person (id, email, created_at, updated_at, version)
       VALUES ('legacy-42', 'imported@example.com', '2020-01-01T00:00:00.000Z', '2020-01-01T00:00:00.000Z', 1)`,
    );
    // And update times written by updatePerson.
    for (const email of [seedEmail(7), UNUSUAL_EMAILS[0]]) {
      const updated = await server.gql(UPDATE, { input: { email, team: 'Moved' } });
      expect(updated.body.errors).toBeUndefined();
    }
  });

  afterAll(async () => {
    await server?.close();
    await database?.drop();
  });

  async function people(variables: Record<string, unknown>): Promise<Page> {
    const response = await server.gql(PEOPLE, variables);
    expect(response.body.errors).toBeUndefined();
    return response.body.data?.people as Page;
  }

  it.each(ORDERS)('%s: one person per page, forward and backward, every cursor resumes', async (orderBy) => {
    const everyone = (await people({ first: 100, orderBy })).nodes.map((node) => node.id);
    expect(everyone).toHaveLength(COUNT);
    // Forward follows the cursor of every person but the last, backward of every one but the first.
    const forward: string[] = [];
    let after: string | null = null;
    for (;;) {
      const page = await people({ first: 1, after, orderBy });
      forward.push(...page.nodes.map((node) => node.id));
      if (!page.pageInfo.hasNextPage || forward.length > COUNT) break;
      after = page.pageInfo.endCursor;
    }
    expect(forward).toEqual(everyone);
    const backward: string[] = [];
    let before: string | null = null;
    for (;;) {
      const page = await people({ last: 1, before, orderBy });
      backward.unshift(...page.nodes.map((node) => node.id));
      if (!page.pageInfo.hasPreviousPage || backward.length > COUNT) break;
      before = page.pageInfo.startCursor;
    }
    expect(backward).toEqual(everyone);
  });
});
