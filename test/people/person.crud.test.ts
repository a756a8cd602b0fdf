import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseTargets, type TestDatabase } from '../helpers/databases';
import { startServer, type TestServer } from '../helpers/server';

const PERSON_FIELDS =
  'id email firstName lastName organization businessUnit department group team createdAt updatedAt version';
const CREATE = `mutation Create($input: CreatePersonInput!) { createPerson(input: $input) { ${PERSON_FIELDS} } }`;
const UPDATE = `mutation Update($input: UpdatePersonInput!) { updatePerson(input: $input) { ${PERSON_FIELDS} } }`;
const GET = `query Get($email: String!) { person(email: $email) { ${PERSON_FIELDS} } }`;

describe.each(databaseTargets)('people create/get/update on $kind', (target) => {
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

  it('creates a person, normalising only the email, and reads it back in any letter case', async () => {
    const input = {
      email: '  Ada.Lovelace@Example.COM ',
      firstName: 'Ada',
      lastName: 'Lovelace',
      organization: 'Opsera',
      businessUnit: 'Engineering',
      department: 'Platform',
      group: 'Phase 2',
      team: 'AOD',
    };
    const created = await server.gql(CREATE, { input });
    expect(created.status).toBe(200);
    const person = created.body.data?.createPerson as Record<string, unknown>;
    expect(person).toEqual({
      ...input,
      email: 'ada.lovelace@example.com',
      id: expect.stringMatching(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/),
      createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      updatedAt: person.createdAt,
      version: 1,
    });

    const read = await server.gql(GET, { email: 'ADA.LOVELACE@example.com' });
    expect(read.body).toEqual({ data: { person } });
  });

  it('answers CONFLICT for a duplicate email in another letter case', async () => {
    await server.gql(CREATE, { input: { email: 'dup@example.com' } });
    const again = await server.gql(CREATE, { input: { email: 'DUP@Example.com' } });
    expect(again.status).toBe(200);
    expect(again.body).toEqual({
      data: null,
      errors: [
        {
          message: 'A person with email dup@example.com already exists',
          locations: [{ line: 1, column: 47 }],
          path: ['createPerson'],
          extensions: { code: 'CONFLICT' },
        },
      ],
    });
  });

  it('runs no mutation after one that failed the whole operation, so no write goes unreported', async () => {
    const before = await server.gql(CREATE, { input: { email: 'serial@example.com', team: 'Before' } });
    const person = before.body.data?.createPerson as Record<string, unknown>;
    const conflict = (path: string, line: number) => ({
      message: 'A person with email serial@example.com already exists',
      locations: [{ line, column: 2 }],
      path: [path],
      extensions: { code: 'CONFLICT' },
    });

    // createPerson is non-null: its CONFLICT nulls `data`, and the fields after it must not run.
    const failed = await server.gql(`mutation {
 first: createPerson(input: { email: "SERIAL@example.com" }) { id }
 second: updatePerson(input: { email: "serial@example.com", team: "Unreported" }) { version }
 third: createPerson(input: { email: "serial-third@example.com" }) { id }
}`);
    expect(failed).toMatchObject({ status: 200 });
    expect(failed.body).toEqual({ data: null, errors: [conflict('first', 2)] });
    expect((await server.gql(GET, { email: 'serial@example.com' })).body).toEqual({ data: { person } });
    const third = await server.gql(GET, { email: 'serial-third@example.com' });
    expect(third.body.errors?.map((error) => error.extensions?.code)).toEqual(['NOT_FOUND']);

    // The fields before the failing one ran, in order, and their writes stand.
    const partly = await server.gql(`mutation {
 first: updatePerson(input: { email: "serial@example.com", team: "After" }) { team version }
 second: createPerson(input: { email: "serial@example.com" }) { id }
}`);
    expect(partly.body).toEqual({ data: null, errors: [conflict('second', 3)] });
    const after = await server.gql(GET, { email: 'serial@example.com' });
    expect(after.body.data?.person).toMatchObject({ team: 'After', version: 2 });
  });

  it('answers NOT_FOUND for an unknown email, on read and on update', async () => {
    const read = await server.gql(GET, { email: 'nobody@example.com' });
    expect(read.status).toBe(200);
    expect(read.body.data).toEqual({ person: null });
    expect(read.body.errors?.map((error) => [error.message, error.extensions?.code])).toEqual([
      ['Person not found', 'NOT_FOUND'],
    ]);

    const update = await server.gql(UPDATE, { input: { email: 'nobody@example.com', firstName: 'X' } });
    expect(update.body.data).toBeNull();
    expect(update.body.errors?.map((error) => [error.message, error.extensions?.code])).toEqual([
      ['Person not found', 'NOT_FOUND'],
    ]);
  });

  it('updates partially: omitted fields stay, null clears, version goes up by one', async () => {
    const created = await server.gql(CREATE, {
      input: { email: 'grace@example.com', firstName: 'Grace', lastName: 'Hopper', team: 'Navy' },
    });
    const before = created.body.data?.createPerson as Record<string, unknown>;

    const updated = await server.gql(UPDATE, { input: { email: 'GRACE@example.com', lastName: 'Murray', team: null } });
    const after = updated.body.data?.updatePerson as Record<string, unknown>;
    expect(after).toEqual({
      ...before,
      lastName: 'Murray',
      team: null,
      version: 2,
      updatedAt: expect.any(String),
    });
    expect((after.updatedAt as string) >= (before.updatedAt as string)).toBe(true);
    expect((await server.gql(GET, { email: 'grace@example.com' })).body.data?.person).toEqual(after);
  });

  it('applies an update with the current expectedVersion and refuses a stale one with CONFLICT', async () => {
    await server.gql(CREATE, { input: { email: 'cas@example.com', firstName: 'One' } });
    const fresh = await server.gql(UPDATE, {
      input: { email: 'cas@example.com', firstName: 'Two', expectedVersion: 1 },
    });
    expect(fresh.body.data?.updatePerson).toMatchObject({ firstName: 'Two', version: 2 });

    const stale = await server.gql(UPDATE, {
      input: { email: 'cas@example.com', firstName: 'Three', expectedVersion: 1 },
    });
    expect(stale.body.data).toBeNull();
    expect(stale.body.errors?.map((error) => [error.message, error.extensions?.code])).toEqual([
      ['Person cas@example.com is at version 2, not 1', 'CONFLICT'],
    ]);
    expect((await server.gql(GET, { email: 'cas@example.com' })).body.data?.person).toMatchObject({
      firstName: 'Two',
      version: 2,
    });
  });

  it.each([
    ['not-an-email', 'Invalid email format'],
    ['two@@example.com', 'Invalid email format'],
    ['', 'Invalid email format'],
    // KELVIN SIGN lower-cases to an ASCII k: it would be stored as another address.
    ['\u212Aelvin@example.com', 'Invalid email format'],
    ['user@\u212Aelvin.example.com', 'Invalid email format'],
    [`${'a'.repeat(64)}@${'b'.repeat(190)}.example.com`, 'email must be at most 254 characters'],
  ])('refuses the email %j with BAD_USER_INPUT', async (email, message) => {
    const response = await server.gql(CREATE, { input: { email } });
    expect(response.status).toBe(200);
    expect(response.body.data).toBeNull();
    expect(response.body.errors?.map((error) => [error.message, error.extensions?.code])).toEqual([
      [message, 'BAD_USER_INPUT'],
    ]);
  });

  it.each([
    ['firstName', 'x'.repeat(201), 'firstName must be at most 200 characters'],
    ['team', 'a\u0000b', 'team contains control characters or unpaired surrogates'],
    ['lastName', 'bad\uD800', 'lastName contains control characters or unpaired surrogates'],
  ])('refuses %s = %j with BAD_USER_INPUT and stores nothing', async (field, value, message) => {
    const email = `refused-${field}@example.com`;
    const response = await server.gql(CREATE, { input: { email, [field]: value } });
    expect(response.body.errors?.map((error) => [error.message, error.extensions?.code])).toEqual([
      [message, 'BAD_USER_INPUT'],
    ]);
    expect((await server.gql(GET, { email })).body.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
  });

  it('stores values exactly as given: 200 emoji, whitespace, tabs and newlines, right-to-left text', async () => {
    const input = {
      email: 'exact@example.com',
      firstName: '😀'.repeat(200),
      lastName: '   ',
      organization: 'tab\there\nnewline',
      department: '\u202Eשלום',
      team: '',
    };
    const created = await server.gql(CREATE, { input });
    expect(created.body.errors).toBeUndefined();
    const read = await server.gql(GET, { email: input.email });
    expect(read.body.data?.person).toMatchObject(input);
  });
});
