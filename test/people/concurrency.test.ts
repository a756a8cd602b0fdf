import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseTargets, type TestDatabase } from '../helpers/databases';
import { startServer, type TestServer } from '../helpers/server';

const PERSON_FIELDS =
  'id email firstName lastName organization businessUnit department group team createdAt updatedAt version';
const CREATE = `mutation Create($input: CreatePersonInput!) { createPerson(input: $input) { ${PERSON_FIELDS} } }`;
const UPDATE = `mutation Update($input: UpdatePersonInput!) { updatePerson(input: $input) { ${PERSON_FIELDS} } }`;
const GET = `query Get($email: String!) { person(email: $email) { ${PERSON_FIELDS} } }`;
const SEARCH = `query Search($search: String!) {
  people(first: 100, filter: { search: $search }) { totalCount nodes { email } }
}`;
const TEXT_FIELDS = ['firstName', 'lastName', 'organization', 'businessUnit', 'department', 'group', 'team'] as const;

/** `race@example.com` in a different mix of letter cases for each i (bit j of i upper-cases letter j). */
function mixedCase(email: string, i: number): string {
  return [...email].map((char, j) => (j < 16 && (i >> (j % 5)) & 1 ? char.toUpperCase() : char)).join('');
}

/** Log lines or response bodies that would betray a collision on the database connection. */
const COLLISION = /SQLITE_BUSY|database is locked|transaction already started|cannot start a transaction/i;

describe.each(databaseTargets)('concurrent requests on $kind', (target) => {
  let database: TestDatabase;
  let server: TestServer;

  beforeAll(async () => {
    database = await target.create();
    server = await startServer(database.url);
  });

  afterAll(async () => {
    await server?.close();
    await database?.drop();
  });

  it('20 concurrent creates of one email in mixed letter cases: one person, 19 CONFLICT', async () => {
    const emails = Array.from({ length: 20 }, (_, i) => mixedCase(' Race.Condition@Example.com', i + 1));
    expect(new Set(emails).size).toBe(20);

    const responses = await Promise.all(
      emails.map((email, i) => server.gql(CREATE, { input: { email, firstName: `Racer${i}` } })),
    );

    expect(responses.map((response) => response.status)).toEqual(Array(20).fill(200));
    const winners = responses.filter((response) => response.body.errors === undefined);
    const losers = responses.filter((response) => response.body.errors !== undefined);
    expect(winners).toHaveLength(1);
    expect(losers).toHaveLength(19);
    const winner = winners[0].body.data?.createPerson as Record<string, unknown>;
    expect(winner).toMatchObject({ email: 'race.condition@example.com', version: 1 });
    for (const loser of losers) {
      expect(loser.body).toEqual({
        data: null,
        errors: [
          {
            message: 'A person with email race.condition@example.com already exists',
            locations: [{ line: 1, column: 47 }],
            path: ['createPerson'],
            extensions: { code: 'CONFLICT' },
          },
        ],
      });
    }

    const search = await server.gql(SEARCH, { search: 'RACE.condition' });
    expect(search.body).toEqual({
      data: { people: { totalCount: 1, nodes: [{ email: 'race.condition@example.com' }] } },
    });
    expect((await server.gql(GET, { email: 'RACE.CONDITION@example.com' })).body).toEqual({
      data: { person: winner },
    });
  });

  it('20 concurrent updates without expectedVersion all apply: version 1 + 20, the last write per field wins', async () => {
    const email = 'counter@example.com';
    const created = await server.gql(CREATE, { input: { email } });
    expect(created.body.errors).toBeUndefined();

    // Update i sets one field (the fields in turn) to a value naming i.
    const updates = Array.from({ length: 20 }, (_, i) => ({
      field: TEXT_FIELDS[i % TEXT_FIELDS.length],
      value: `v${i}`,
    }));
    const responses = await Promise.all(
      updates.map(({ field, value }, i) =>
        server.gql(UPDATE, { input: { email: i % 2 ? email.toUpperCase() : email, [field]: value } }),
      ),
    );

    expect(responses.map((response) => [response.status, response.body.errors])).toEqual(
      Array(20).fill([200, undefined]),
    );
    const results = responses.map((response) => response.body.data?.updatePerson as Record<string, unknown>);
    // Each update saw its own version: together exactly 2..21, so none was lost or applied twice.
    expect(results.map((result) => result.version as number).sort((a, b) => a - b)).toEqual(
      Array.from({ length: 20 }, (_, i) => i + 2),
    );
    for (const [i, result] of results.entries()) expect(result[updates[i].field]).toBe(updates[i].value);

    // The stored value of each field is the one written by the update that committed last.
    const expected: Record<string, unknown> = { version: 21 };
    for (const field of TEXT_FIELDS) {
      const writers = updates
        .map((update, i) => ({ ...update, version: results[i].version as number }))
        .filter((update) => update.field === field)
        .sort((a, b) => b.version - a.version);
      expected[field] = writers[0].value;
    }
    const stored = await server.gql(GET, { email });
    expect(stored.body.errors).toBeUndefined();
    expect(stored.body.data?.person).toMatchObject(expected);
    expect(stored.body.data?.person).toEqual(results.find((result) => result.version === 21));
  });

  it('50 concurrent updates of one person: a later version never carries an earlier updatedAt', async () => {
    // updatedSince readers keep the latest updatedAt they saw; a newer version stamped earlier
    // than an older one (its time taken before it waited for the row) would never reach them.
    const email = 'clock@example.com';
    const created = await server.gql(CREATE, { input: { email } });
    expect(created.body.errors).toBeUndefined();

    const responses = await Promise.all(
      Array.from({ length: 50 }, (_, i) => server.gql(UPDATE, { input: { email, team: `T${i}` } })),
    );
    expect(responses.map((response) => response.body.errors)).toEqual(Array(50).fill(undefined));
    const stamps = responses
      .map((response) => response.body.data?.updatePerson as { version: number; updatedAt: string })
      .sort((a, b) => a.version - b.version);
    expect(stamps.map((stamp) => stamp.version)).toEqual(Array.from({ length: 50 }, (_, i) => i + 2));
    const backwards = stamps.filter((stamp, i) => i > 0 && stamp.updatedAt < stamps[i - 1].updatedAt);
    expect(backwards).toEqual([]);
    // Stamped in the form the service always writes (cursors and updatedSince compare it as text).
    for (const { updatedAt } of stamps) expect(new Date(updatedAt).toISOString()).toBe(updatedAt);
    const stored = await server.gql(GET, { email });
    expect(stored.body.data?.person).toMatchObject(stamps[49]);
  });

  it('20 concurrent updates with the same expectedVersion: exactly one applies, 19 CONFLICT', async () => {
    const email = 'cas-race@example.com';
    await server.gql(CREATE, { input: { email, firstName: 'Start' } });
    const bumped = await server.gql(UPDATE, { input: { email, firstName: 'Bumped' } });
    expect(bumped.body.data?.updatePerson).toMatchObject({ version: 2 });

    const responses = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        server.gql(UPDATE, { input: { email, firstName: `Writer${i}`, expectedVersion: 2 } }),
      ),
    );

    expect(responses.map((response) => response.status)).toEqual(Array(20).fill(200));
    const winners = responses.filter((response) => response.body.errors === undefined);
    const losers = responses.filter((response) => response.body.errors !== undefined);
    expect(winners).toHaveLength(1);
    expect(losers).toHaveLength(19);
    const winner = winners[0].body.data?.updatePerson as Record<string, unknown>;
    expect(winner).toMatchObject({ version: 3, firstName: expect.stringMatching(/^Writer\d+$/) });
    for (const loser of losers) {
      expect(loser.body).toEqual({
        data: null,
        errors: [
          {
            message: `Person ${email} is at version 3, not 2`,
            locations: [{ line: 1, column: 47 }],
            path: ['updatePerson'],
            extensions: { code: 'CONFLICT' },
          },
        ],
      });
    }
    expect((await server.gql(GET, { email })).body).toEqual({ data: { person: winner } });
  });

  it('50 concurrent creates of distinct emails interleaved with reads: all stored, no collision, no 5xx', async () => {
    const emails = Array.from({ length: 50 }, (_, i) => `bulk${String(i).padStart(2, '0')}@example.com`);
    const reads = (i: number) =>
      i % 2
        ? server.gql(SEARCH, { search: 'bulk' })
        : server.gql(GET, { email: 'race.condition@example.com' }, server.adminToken);
    // A fresh token per batch also makes the service record its first use, a write of its own.
    const readerToken = await server.createToken(['people:read']);
    const work = emails.flatMap((email, i) => [
      server.gql(CREATE, { input: { email, team: `Team${i % 10}` } }),
      reads(i),
      server.gql(SEARCH, { search: 'bulk' }, readerToken),
    ]);
    const responses = await Promise.all(work);

    for (const response of responses) {
      expect(response.status).toBe(200);
      expect(response.body.errors).toBeUndefined();
      expect(JSON.stringify(response.body)).not.toMatch(COLLISION);
    }
    const created = responses.filter((_, i) => i % 3 === 0).map((r) => r.body.data?.createPerson);
    expect(created.map((person) => (person as { email: string }).email)).toEqual(emails);
    // Reads see a consistent set of committed rows: in order, without duplicates, only bulk people.
    for (const response of responses.filter((_, i) => i % 3 === 2)) {
      const seen = (response.body.data?.people as { nodes: { email: string }[] }).nodes.map((node) => node.email);
      expect(seen).toEqual(emails.filter((email) => seen.includes(email)));
    }

    const all = await server.gql(SEARCH, { search: 'bulk' });
    expect(all.body).toEqual({ data: { people: { totalCount: 50, nodes: emails.map((email) => ({ email })) } } });

    const requestLines = server.logs.filter((line) => line.msg === 'request');
    expect(requestLines.length).toBeGreaterThanOrEqual(150);
    expect(requestLines.filter((line) => (line.status as number) >= 500)).toEqual([]);
    expect(server.rawLogs.filter((line) => COLLISION.test(line) || /"level":50/.test(line))).toEqual([]);
  });
});
