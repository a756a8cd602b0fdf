import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseTargets, sqliteTarget, type TestDatabase } from '../helpers/databases';
import { printedAdminToken, startMain, stopMain } from '../helpers/main-process';
import { startServer, type TestServer } from '../helpers/server';

const PERSON_FIELDS =
  'id email firstName lastName organization businessUnit department group team createdAt updatedAt version';
const CREATE = `mutation Create($input: CreatePersonInput!) { createPerson(input: $input) { ${PERSON_FIELDS} } }`;
const UPDATE = `mutation Update($input: UpdatePersonInput!) { updatePerson(input: $input) { ${PERSON_FIELDS} } }`;
const ALL = `{ people(first: 100) { totalCount nodes { ${PERSON_FIELDS} } } }`;

async function post(graphqlUrl: string, token: string | null, query: string, variables?: Record<string, unknown>) {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(graphqlUrl, { method: 'POST', headers, body: JSON.stringify({ query, variables }) });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

describe.each(databaseTargets)('data and tokens survive a restart on $kind', (target) => {
  let database: TestDatabase;
  let server: TestServer | undefined;

  beforeAll(async () => {
    database = await target.create();
  });

  afterAll(async () => {
    await server?.close();
    await database?.drop();
  });

  it('keeps people, updates and tokens when a new app starts on the same database', async () => {
    server = await startServer(database.url);
    const readerToken = await server.createToken(['people:read']);
    const writerToken = await server.createToken(['people:write']);
    for (let i = 1; i <= 5; i += 1) {
      const created = await server.gql(CREATE, { input: { email: `keep${i}@example.com`, firstName: `Keep${i}` } });
      expect(created.body.errors).toBeUndefined();
    }
    const updated = await server.gql(UPDATE, { input: { email: 'keep3@example.com', team: 'Kept' } }, writerToken);
    expect(updated.body.data?.updatePerson).toMatchObject({ team: 'Kept', version: 2 });
    const before = await server.gql(ALL, {}, readerToken);
    expect(before.body.data?.people).toMatchObject({ totalCount: 5 });
    await server.close();
    server = undefined;

    server = await startServer(database.url);
    const after = await server.gql(ALL, {}, readerToken);
    expect(after.status).toBe(200);
    expect(after.body).toEqual(before.body);

    // The writer token still authenticates and still lacks the read scope.
    const write = await server.gql(UPDATE, { input: { email: 'keep1@example.com', team: 'Again' } }, writerToken);
    expect(write.body.data?.updatePerson).toMatchObject({ email: 'keep1@example.com', team: 'Again', version: 2 });
    const forbidden = await server.gql(ALL, {}, writerToken);
    expect(forbidden.status).toBe(403);
    expect(forbidden.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');

    // A token nobody issued is still refused after the restart.
    const unknown = await server.gql(ALL, {}, `pgk_${'A'.repeat(38)}`);
    expect(unknown.status).toBe(401);
  });
});

describe('the compiled service (node dist/main.js) on sqlite, stopped with SIGTERM and started again', () => {
  let database: TestDatabase;
  const running: { stop: () => Promise<unknown> }[] = [];

  beforeAll(async () => {
    database = await sqliteTarget.create();
  });

  afterAll(async () => {
    for (const child of running) await child.stop();
    await database?.drop();
  });

  it('keeps the printed admin token and the data, and prints no second token', async () => {
    const first = await startMain({ DATABASE_URL: database.url });
    running.push({ stop: () => stopMain(first.main) });
    const token = await printedAdminToken(first.main);

    const emails = Array.from({ length: 10 }, (_, i) => `durable${i}@example.com`);
    const created = await Promise.all(
      emails.map((email, i) => post(first.graphqlUrl, token, CREATE, { input: { email, lastName: `Durable${i}` } })),
    );
    for (const response of created) expect(response.body.errors).toBeUndefined();
    const before = await post(first.graphqlUrl, token, ALL);
    expect(before.body).toMatchObject({ data: { people: { totalCount: 10 } } });

    expect(await stopMain(first.main)).toBe(0);
    expect(first.main.stderr()).toBe('');

    const second = await startMain({ DATABASE_URL: database.url });
    running.push({ stop: () => stopMain(second.main) });
    const after = await post(second.graphqlUrl, token, ALL);
    expect(after).toEqual({ status: 200, body: before.body });

    const missing = await post(second.graphqlUrl, null, ALL);
    expect(missing.status).toBe(401);

    expect(await stopMain(second.main)).toBe(0);
    expect(second.main.stdout()).not.toContain('pgk_');
    expect(second.main.stderr()).toBe('');
  });
});
