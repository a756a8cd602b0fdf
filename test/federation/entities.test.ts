import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseTargets, type TestDatabase } from '../helpers/databases';
import { countQueries } from '../helpers/query-counter';
import { startServer, type TestServer } from '../helpers/server';

const ENTITIES = `query Entities($representations: [_Any!]!) {
  _entities(representations: $representations) { ... on Person { id email firstName } }
}`;

describe.each(databaseTargets)('federation _entities and _service on $kind', (target) => {
  let database: TestDatabase;
  let server: TestServer;
  const stored: { id: string; email: string; firstName: string }[] = [];

  beforeAll(async () => {
    database = await target.create();
    server = await startServer(database.url);
    for (let index = 0; index < 60; index += 1) {
      const person = await server.app.people.create({ email: `entity${index}@example.com`, firstName: `E${index}` });
      stored.push({ id: person.id, email: person.email, firstName: `E${index}` });
    }
  });

  afterAll(async () => {
    await server?.close();
    await database?.drop();
  });

  it('resolves 100 mixed id and email representations in order, unknown keys as null', async () => {
    const representations: Record<string, string>[] = [];
    const expected: (Record<string, string> | null)[] = [];
    for (let index = 0; index < 100; index += 1) {
      const person = stored[index % stored.length];
      if (index % 10 === 9) {
        // Unknown keys of both kinds, and an email that is not an address at all.
        const unknown: Record<string, string>[] = [
          { id: '00000000-0000-4000-8000-000000000000' },
          { email: `ghost${index}@example.com` },
          { email: 'not an email' },
        ];
        representations.push({ __typename: 'Person', ...unknown[index % 3] });
        expected.push(null);
      } else if (index % 2 === 0) {
        representations.push({ __typename: 'Person', id: person.id });
        expected.push(person);
      } else {
        representations.push({ __typename: 'Person', email: person.email.toUpperCase() });
        expected.push(person);
      }
    }

    const reader = await server.createToken(['people:read']);
    const { result, statements } = await countQueries(server.app.database, () =>
      server.gql(ENTITIES, { representations }, reader),
    );
    expect(result.status).toBe(200);
    expect(result.body).toEqual({ data: { _entities: expected } });

    // One query per key kind: one for the ids, one for the emails; nothing per representation.
    const personQueries = statements.filter((sql: string) => /from\s+"?person"?/i.test(sql));
    expect(personQueries).toHaveLength(2);
  });

  it('answers null for keys no row could have (NUL, lone surrogate, too long, empty) and still resolves the rest', async () => {
    const [first, second] = stored;
    const impossible = [
      { id: 'ok\u0000' },
      { id: '\ud800' },
      { id: 'x'.repeat(37) },
      { id: '' },
      { email: 'a\u0000@b.io' },
    ];
    const representations = [
      ...impossible.map((key) => ({ __typename: 'Person', ...key })),
      { __typename: 'Person', id: first.id },
      { __typename: 'Person', email: second.email },
    ];
    const reader = await server.createToken(['people:read']);
    const result = await server.gql(ENTITIES, { representations }, reader);
    expect(result.status).toBe(200);
    expect(result.body).toEqual({ data: { _entities: [null, null, null, null, null, first, second] } });
  });

  it('fills in variables written inside the representations literal, as graphql-js does', async () => {
    const [first, second] = stored;
    const query = `query($email: String!, $id: _Any!) {
      _entities(representations: [{ __typename: "Person", email: $email }, $id, { __typename: "Person", id: "${second.id}" }]) {
        ... on Person { id email firstName }
      }
    }`;
    const reader = await server.createToken(['people:read']);
    const result = await server.gql(
      query,
      { email: first.email.toUpperCase(), id: { __typename: 'Person', id: second.id } },
      reader,
    );
    expect(result.status).toBe(200);
    expect(result.body).toEqual({ data: { _entities: [first, second, second] } });
  });

  it('refuses a representation that is not an entity of this subgraph with BAD_USER_INPUT, unlogged', async () => {
    const reader = await server.createToken(['people:read']);
    // A real token sent as a __typename: it must reach neither the log nor the response.
    const tokenAsTypename = await server.createToken(['people:read']);
    const notEntities: unknown[] = [
      { __typename: 'Project', id: 'x' }, // a type this schema does not have
      { id: stored[0].id }, // no __typename
      { __typename: 7, id: stored[0].id },
      { __typename: '__proto__', id: stored[0].id },
      { __typename: 'constructor', id: stored[0].id },
      { __typename: 'toString', id: stored[0].id },
      { __typename: 'Query' }, // object types of this schema that are not entities
      { __typename: 'PersonConnection' },
      { __typename: tokenAsTypename, id: stored[0].id },
      'Person',
      [{ __typename: 'Person', id: stored[0].id }],
      [[{ __typename: 'Person', id: stored[0].id }]],
    ];
    const logsBefore = server.rawLogs.length;
    const answers = [];
    for (const notEntity of notEntities) {
      // After a good representation, so the message must name index 1.
      const representations = [{ __typename: 'Person', id: stored[0].id }, notEntity];
      const { status, body } = await server.gql(ENTITIES, { representations }, reader);
      answers.push({ representation: notEntity, status, body });
    }
    const refusal = {
      status: 200,
      body: {
        errors: [
          {
            message:
              'representations[1] is not an entity of this subgraph: expected an object whose __typename is one of: Person',
            locations: [{ line: 2, column: 3 }],
            path: ['_entities'],
            extensions: { code: 'BAD_USER_INPUT', field: 'representations[1]' },
          },
        ],
        data: null,
      },
    };
    expect(answers).toEqual(notEntities.map((notEntity) => ({ representation: notEntity, ...refusal })));
    expect(JSON.stringify(answers.map(({ body }) => body))).not.toContain(tokenAsTypename);
    const logged = server.logs.slice(logsBefore);
    expect(logged.filter((line) => Number(line.level) >= 50)).toEqual([]);
    expect(server.rawLogs.slice(logsBefore).join('\n')).not.toContain(tokenAsTypename);

    // The refusals leave nothing behind: a good batch still resolves.
    const good = await server.gql(
      ENTITIES,
      {
        representations: [
          { __typename: 'Person', id: stored[1].id },
          { __typename: 'Person', email: stored[2].email },
        ],
      },
      reader,
    );
    expect(good.status).toBe(200);
    expect(good.body).toEqual({ data: { _entities: [stored[1], stored[2]] } });
  });

  it('needs a token with people:read for _service and _entities', async () => {
    const query = '{ _service { sdl } }';
    const anonymous = await server.gql(query, undefined, null);
    expect(anonymous.status).toBe(401);
    expect(anonymous.body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');

    const writer = await server.createToken(['people:write']);
    const forbidden = await server.gql(
      ENTITIES,
      { representations: [{ __typename: 'Person', id: stored[0].id }] },
      writer,
    );
    expect(forbidden.status).toBe(403);
    expect(forbidden.body).toEqual({
      errors: [{ message: 'This operation needs the "people:read" scope', extensions: { code: 'FORBIDDEN' } }],
    });

    const reader = await server.createToken(['people:read']);
    const allowed = await server.gql(query, undefined, reader);
    expect(allowed.status).toBe(200);
    const sdl = (allowed.body.data?._service as { sdl: string }).sdl;
    expect(sdl).toMatch(/type Person\s+@key\(fields: "id"\)\s+@key\(fields: "email"\)/);
  });
});
