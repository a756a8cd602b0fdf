import 'reflect-metadata';
import { getIntrospectionQuery } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config';
import { withoutSuggestion } from '../../src/operation-limits';
import { sqliteTarget, type TestDatabase } from '../helpers/databases';
import { startServer, withServer, type TestServer } from '../helpers/server';

/**
 * The operation limits (MAX_DEPTH, MAX_ALIASES, MAX_DIRECTIVES, MAX_TOKENS, MAX_COST) and hidden
 * field suggestions, over real HTTP. Each limit: a query just under it passes, just over it is
 * refused with HTTP 400, a coded error and a message naming the limit.
 */

/** The introspection query the bundled GraphiQL sends (captured from the page in Chromium). */
const TYPE_REF =
  'fragment TypeRef on __Type{kind name ofType{name kind ofType{name kind ofType{name kind ofType{name kind ' +
  'ofType{name kind ofType{name kind ofType{name kind ofType{name kind ofType{name kind}}}}}}}}}}';
const INTROSPECTION_FRAGMENTS =
  'fragment FullType on __Type{kind name description fields(includeDeprecated:true){name description ' +
  'args(includeDeprecated:true){...InputValue}type{...TypeRef}isDeprecated deprecationReason}' +
  'inputFields(includeDeprecated:true){...InputValue}interfaces{...TypeRef}enumValues(includeDeprecated:true)' +
  '{name description isDeprecated deprecationReason}possibleTypes{...TypeRef}}' +
  'fragment InputValue on __InputValue{name description type{...TypeRef}defaultValue isDeprecated ' +
  `deprecationReason}${TYPE_REF}`;
const SCHEMA_SELECTION =
  '{description queryType{name kind}mutationType{name kind}subscriptionType{name kind}types{...FullType}' +
  'directives{name description locations args(includeDeprecated:true){...InputValue}}}';
const GRAPHIQL_INTROSPECTION = `query IntrospectionQuery{__schema${SCHEMA_SELECTION}}${INTROSPECTION_FRAGMENTS}`;

const PERSON_FIELDS =
  'id email firstName lastName organization businessUnit department group team createdAt updatedAt version';
/** armor's cost of `people(first: N) { nodes { all 12 fields } }`: (2 + 1.5 * (2 + 1.5 * 12)) * N = 32N. */
const page = (alias: string, first: number | string | null) =>
  `${alias}: people${first === null ? '' : `(first: ${first})`} { nodes { ${PERSON_FIELDS} } }`;
/** `count` aliased `__typename`s: free for the alias limit (armor's allow list), 3 tokens and cost 1 each. */
const typenames = (count: number, prefix = 't') =>
  Array.from({ length: count }, (_, index) => `${prefix}${index}: __typename`).join(' ');

const refused = (code: string, message: string | RegExp) => ({
  errors: [{ message: typeof message === 'string' ? message : expect.stringMatching(message), extensions: { code } }],
});
const validationRefusal = (message: string | RegExp) => refused('GRAPHQL_VALIDATION_FAILED', message);

interface Answer {
  status: number;
  body: { data?: Record<string, unknown> | null; errors?: unknown[] };
}

async function post(server: TestServer, query: string, variables?: Record<string, unknown>): Promise<Answer> {
  const response = await server.gql(query, variables);
  return { status: response.status, body: response.body };
}

describe('operation limits with their defaults (sqlite)', () => {
  let database: TestDatabase;
  let server: TestServer;
  const ids: string[] = [];

  beforeAll(async () => {
    database = await sqliteTarget.create();
    server = await startServer(database.url);
    for (let index = 0; index < 100; index += 1) {
      ids.push((await server.app.people.create({ email: `limit${index}@example.com`, team: `T${index % 3}` })).id);
    }
  });

  afterAll(async () => {
    await server?.close();
    await database?.drop();
  });

  it('let every legitimate query of the schema pass', async () => {
    const everything = `{ people(first: 100) { totalCount edges { cursor node { ${PERSON_FIELDS} } }
      nodes { ${PERSON_FIELDS} } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }`;
    const full = await post(server, everything);
    expect(full.status).toBe(200);
    expect(full.body.errors).toBeUndefined();
    expect((full.body.data?.people as { nodes: unknown[] }).nodes).toHaveLength(100);

    // Federation: 100 representations (50 by id, 50 by email) in variables, every field.
    const representations = ids.map((id, index) =>
      index % 2 === 0 ? { __typename: 'Person', id } : { __typename: 'Person', email: `LIMIT${index}@example.com` },
    );
    const entities = await post(
      server,
      `query($r: [_Any!]!) { _entities(representations: $r) { ... on Person { ${PERSON_FIELDS} } } }`,
      { r: representations },
    );
    expect(entities.status).toBe(200);
    expect(entities.body.errors).toBeUndefined();
    const found = entities.body.data?._entities as { id: string }[];
    expect(found.map((person) => person.id)).toEqual(ids);

    const service = await post(server, '{ _service { sdl } }');
    expect(service.status).toBe(200);
    expect(service.body.errors).toBeUndefined();

    // The IDE's introspection query (depth 15, cost about 15,600), and graphql-js's with every option.
    const introspectionQueries = [
      GRAPHIQL_INTROSPECTION,
      getIntrospectionQuery({
        descriptions: true,
        specifiedByUrl: true,
        directiveIsRepeatable: true,
        schemaDescription: true,
        inputValueDeprecation: true,
        oneOf: true,
      }),
    ];
    for (const query of introspectionQueries) {
      const introspection = await post(server, query);
      expect(introspection.status).toBe(200);
      expect(introspection.body.errors).toBeUndefined();
      const types = (introspection.body.data?.__schema as { types: { name: string }[] }).types;
      expect(types.map((type) => type.name)).toContain('PersonConnection');
    }
  });

  it('MAX_DEPTH 15: depth 15 passes, 16 is refused, through an alias of __schema too', async () => {
    // __schema (1) types (2) ofType x n, name: depth n + 3.
    const deep = (ofTypes: number) =>
      `{ deep: __schema { types { ${'ofType { '.repeat(ofTypes)}name${' }'.repeat(ofTypes)} } } }`;
    const under = await post(server, deep(12));
    expect(under.status).toBe(200);
    expect(under.body.errors).toBeUndefined();

    const over = await post(server, deep(13));
    expect(over).toEqual({ status: 400, body: validationRefusal('Query depth limit of 15 exceeded, found 16.') });
  });

  it('MAX_ALIASES 15: 15 aliases pass, 16 are refused', async () => {
    const aliased = (count: number) =>
      `{ ${Array.from({ length: count }, (_, index) => `a${index}: people(first: 1) { totalCount }`).join(' ')} }`;
    const under = await post(server, aliased(15));
    expect(under.status).toBe(200);
    expect(Object.keys(under.body.data ?? {})).toHaveLength(15);

    expect(await post(server, aliased(16))).toEqual({
      status: 400,
      body: validationRefusal('Aliases limit of 15 exceeded, found 16.'),
    });
  });

  it('MAX_DIRECTIVES 50: 50 directives pass, 51 are refused', async () => {
    const directed = (count: number) =>
      `{ ${Array.from({ length: count }, (_, index) => `d${index}: __typename @include(if: true)`).join(' ')} }`;
    const under = await post(server, directed(50));
    expect(under.status).toBe(200);
    expect(Object.keys(under.body.data ?? {})).toHaveLength(50);

    expect(await post(server, directed(51))).toEqual({
      status: 400,
      body: validationRefusal('Directives limit of 50 exceeded, found 51.'),
    });
  });

  it('MAX_TOKENS 1000: 1000 tokens pass, 1001 are refused by the parser with 400', async () => {
    // `{` `}` and `__typename __typename` are 4 tokens; each aliased __typename 3 more: 4 + 3 * 332 = 1000.
    const under = await post(server, `{ __typename __typename ${typenames(332)} }`);
    expect(under.status).toBe(200);
    expect(Object.keys(under.body.data ?? {})).toHaveLength(333);

    const over = await post(server, `{ __typename __typename __typename ${typenames(332)} }`);
    expect(over).toEqual({
      status: 400,
      body: {
        errors: [
          {
            // graphql-js's wording ("more that"); the location is the first token past the limit.
            message: 'Syntax Error: Document contains more that 1000 tokens. Parsing aborted.',
            locations: [{ line: 1, column: 5570 }],
            extensions: { code: 'GRAPHQL_PARSE_FAILED' },
          },
        ],
      },
    });
  });

  it('MAX_COST 20000: a query costing 20000 passes, 20001 is refused', async () => {
    // 6 pages of 100 (3200 each) and one of 25 (800): exactly 20000.
    const pages = [1, 2, 3, 4, 5, 6].map((index) => page(`p${index}`, 100)).join(' ');
    const under = await post(server, `{ ${pages} ${page('p7', 25)} }`);
    expect(under.status).toBe(200);
    expect(under.body.errors).toBeUndefined();
    expect(Object.keys(under.body.data ?? {})).toHaveLength(7);

    // A root __typename costs 1 more.
    expect(await post(server, `{ ${pages} ${page('p7', 25)} __typename }`)).toEqual({
      status: 400,
      body: validationRefusal('Query Cost limit of 20000 exceeded, found 20001.'),
    });
  });

  it('a fragment named __schema is costed like any other fragment', async () => {
    const fragment = `fragment __schema on Query { ${page('everyone', 100)} }`;
    // Spread once it is one page of 100: allowed.
    const once = await post(server, `{ ...__schema } ${fragment}`);
    expect(once.status).toBe(200);
    expect(once.body.errors).toBeUndefined();

    // Spread many times (through aliased wrappers), it is refused on cost, not waved through.
    const many = `{ ${Array.from({ length: 7 }, () => '...__schema').join(' ')} } ${fragment}`;
    expect(await post(server, many)).toEqual({
      status: 400,
      body: validationRefusal(/^Query Cost limit of 20000 exceeded, found \d+\.$/),
    });

    // With seven pages inside, a single spread is refused too.
    const heavy = `fragment __schema on Query { ${[1, 2, 3, 4, 5, 6, 7].map((index) => page(`p${index}`, 100)).join(' ')} }`;
    expect(await post(server, `{ ...__schema } ${heavy}`)).toEqual({
      status: 400,
      body: validationRefusal(/^Query Cost limit of 20000 exceeded, found \d+\.$/),
    });
  });

  it('aliases of __schema count towards the cost: one introspection passes, two are refused', async () => {
    const one = await post(server, `{ a: __schema { types { ...FullType } } } ${INTROSPECTION_FRAGMENTS}`);
    expect(one.status).toBe(200);
    expect(one.body.errors).toBeUndefined();

    const two = await post(
      server,
      `{ a: __schema { types { ...FullType } } b: __schema { types { ...FullType } } } ${INTROSPECTION_FRAGMENTS}`,
    );
    expect(two).toEqual({ status: 400, body: validationRefusal(/^Query Cost limit of 20000 exceeded, found \d+\.$/) });
  });

  it.each(['first: 5000', 'last: 100000', 'first: 2147483647'])(
    'a literal page size over MAX_PAGE_SIZE (%s) is BAD_USER_INPUT, as in a variable, not a cost refusal',
    async (size) => {
      const field = size.split(':')[0];
      expect(await post(server, `{ people(${size}) { nodes { ${PERSON_FIELDS} } } }`)).toEqual({
        status: 200,
        body: {
          data: null,
          errors: [
            {
              message: `"${field}" must be between 1 and 100`,
              locations: [{ line: 1, column: 3 }],
              path: ['people'],
              extensions: { code: 'BAD_USER_INPUT', field },
            },
          ],
        },
      });
    },
  );

  it('a page size in a variable costs as MAX_PAGE_SIZE, whatever value is sent', async () => {
    const sevenPages = (first: string) =>
      `${first === '$n' ? 'query($n: Int)' : ''} { ${[1, 2, 3, 4, 5, 6, 7].map((index) => page(`p${index}`, first)).join(' ')} }`;
    // Literal pages of 1 are cheap (7 * 32 = 224) ...
    const literal = await post(server, sevenPages('1'));
    expect(literal.status).toBe(200);
    expect(literal.body.errors).toBeUndefined();
    // ... but `first: $n` could be 100, so seven of them cost 7 * 3200 = 22400 even with n = 1.
    expect(await post(server, sevenPages('$n'), { n: 1 })).toEqual({
      status: 400,
      body: validationRefusal('Query Cost limit of 20000 exceeded, found 22400.'),
    });
  });

  it('refusals happen before anything runs: no statement reaches the database', async () => {
    const statements: string[] = [];
    const stop = server.app.database.sql.observe((sql) => statements.push(sql));
    try {
      const pages = [1, 2, 3, 4, 5, 6, 7].map((index) => page(`p${index}`, 100)).join(' ');
      const response = await post(server, `{ ${pages} }`);
      expect(response.status).toBe(400);
    } finally {
      stop();
    }
    expect(statements.filter((sql) => /\bperson\b/i.test(sql))).toEqual([]);
  });
});

describe('operation limits from the environment (sqlite)', () => {
  it('MAX_DEPTH, MAX_ALIASES, MAX_DIRECTIVES, MAX_TOKENS and MAX_COST are honoured', async () => {
    const environment = { MAX_DEPTH: '3', MAX_ALIASES: '1', MAX_DIRECTIVES: '1', MAX_TOKENS: '40', MAX_COST: '800' };
    await withServer(environment, async (server) => {
      expect(server.app.config.limits).toEqual({
        maxDepth: 3,
        maxAliases: 1,
        maxDirectives: 1,
        maxTokens: 40,
        maxCost: 800,
      });
      // Depth 3 (people > nodes > email) passes; 4 (people > edges > node > email) does not.
      expect((await post(server, '{ people(first: 1) { nodes { email } } }')).status).toBe(200);
      expect(await post(server, '{ people(first: 1) { edges { node { email } } } }')).toEqual({
        status: 400,
        body: validationRefusal('Query depth limit of 3 exceeded, found 4.'),
      });

      expect((await post(server, '{ a: people(first: 1) { totalCount } }')).status).toBe(200);
      expect(await post(server, '{ a: people(first: 1) { totalCount } b: people(first: 2) { totalCount } }')).toEqual({
        status: 400,
        body: validationRefusal('Aliases limit of 1 exceeded, found 2.'),
      });

      expect((await post(server, '{ __typename @include(if: true) }')).status).toBe(200);
      expect(await post(server, '{ __typename @include(if: true) @skip(if: false) }')).toEqual({
        status: 400,
        body: validationRefusal('Directives limit of 1 exceeded, found 2.'),
      });

      // 40 tokens: `{` `}` plus 38 `__typename`s (they merge into one field).
      const names = (count: number) => `{ ${'__typename '.repeat(count)}}`;
      expect((await post(server, names(38))).status).toBe(200);
      expect(await post(server, names(39))).toEqual({
        status: 400,
        body: {
          errors: [
            {
              message: 'Syntax Error: Document contains more that 40 tokens. Parsing aborted.',
              locations: [{ line: 1, column: 432 }],
              extensions: { code: 'GRAPHQL_PARSE_FAILED' },
            },
          ],
        },
      });

      // Without `first` a page costs the default page size, 25: 32 * 25 = 800 passes, 801 does not.
      const defaultPage = await post(server, `{ ${page('p', null)} }`);
      expect(defaultPage.status).toBe(200);
      expect(defaultPage.body.errors).toBeUndefined();
      expect(await post(server, `{ ${page('p', null)} __typename }`)).toEqual({
        status: 400,
        body: validationRefusal('Query Cost limit of 800 exceeded, found 801.'),
      });
    });
  });

  it('refuses an invalid limit at start, naming the variable', async () => {
    for (const variable of ['MAX_DEPTH', 'MAX_ALIASES', 'MAX_DIRECTIVES', 'MAX_TOKENS', 'MAX_COST']) {
      expect(() => loadConfig({ [variable]: 'lots' })).toThrow(new RegExp(`Invalid configuration: ${variable}`));
      expect(() => loadConfig({ [variable]: '-1' })).toThrow(new RegExp(`Invalid configuration: ${variable}`));
    }
  });
});

describe('field suggestions', () => {
  const typo = '{ people(first: 1) { nodes { emial } } }';
  const badEnum = '{ people(first: 1, orderBy: EMAIL_ACS) { totalCount } }';
  const badArgument = '{ people(frist: 1) { totalCount } }';
  const CREATE = 'mutation($input: CreatePersonInput!) { createPerson(input: $input) { id } }';

  /** A typo in a field, an enum value, an argument, an enum value in variables, an input field in variables. */
  const typos = async (server: TestServer) => [
    await post(server, typo),
    await post(server, badEnum),
    await post(server, badArgument),
    await post(server, 'query($o: PeopleOrder) { people(orderBy: $o) { totalCount } }', { o: 'EMAIL_ACS' }),
    await post(server, CREATE, { input: { email: 'x@example.com', frstName: 'X' } }),
  ];

  it('are shown in development', async () => {
    await withServer({ NODE_ENV: 'development' }, async (server) => {
      const answers = await typos(server);
      expect(answers.map((answer) => answer.status)).toEqual([400, 400, 400, 400, 400]);
      expect(answers.map((answer) => (answer.body.errors as { message: string }[])[0].message)).toEqual([
        'Cannot query field "emial" on type "Person". Did you mean "email"?',
        'Value "EMAIL_ACS" does not exist in "PeopleOrder" enum. Did you mean the enum value "EMAIL_ASC" or "EMAIL_DESC"?',
        'Unknown argument "frist" on field "Query.people". Did you mean "first" or "last"?',
        'Variable "$o" got invalid value "EMAIL_ACS"; Value "EMAIL_ACS" does not exist in "PeopleOrder" enum. Did you mean the enum value "EMAIL_ASC" or "EMAIL_DESC"?',
        'Variable "$input" got invalid value { email: "x@example.com", frstName: "X" }; Field "frstName" is not defined by type "CreatePersonInput". Did you mean "firstName" or "lastName"?',
      ]);
    });
  });

  it('are hidden in production: in the query and in variables, for fields, arguments, enum values, input fields', async () => {
    await withServer({ NODE_ENV: 'production' }, async (server) => {
      const answers = await typos(server);
      expect(answers.map((answer) => answer.status)).toEqual([400, 400, 400, 400, 400]);
      expect(answers.map((answer) => answer.body)).toEqual([
        {
          errors: [
            {
              message: 'Cannot query field "emial" on type "Person".',
              locations: [{ line: 1, column: 30 }],
              extensions: { code: 'GRAPHQL_VALIDATION_FAILED' },
            },
          ],
        },
        {
          errors: [
            {
              message: 'Value "EMAIL_ACS" does not exist in "PeopleOrder" enum.',
              locations: [{ line: 1, column: 29 }],
              extensions: { code: 'GRAPHQL_VALIDATION_FAILED' },
            },
          ],
        },
        {
          errors: [
            {
              message: 'Unknown argument "frist" on field "Query.people".',
              locations: [{ line: 1, column: 10 }],
              extensions: { code: 'GRAPHQL_VALIDATION_FAILED' },
            },
          ],
        },
        {
          errors: [
            {
              message:
                'Variable "$o" got invalid value "EMAIL_ACS"; Value "EMAIL_ACS" does not exist in "PeopleOrder" enum.',
              locations: [{ line: 1, column: 7 }],
              extensions: { code: 'BAD_USER_INPUT' },
            },
          ],
        },
        {
          errors: [
            {
              message:
                'Variable "$input" got invalid value { email: "x@example.com", frstName: "X" }; Field "frstName" is not defined by type "CreatePersonInput".',
              locations: [{ line: 1, column: 10 }],
              extensions: { code: 'BAD_USER_INPUT' },
            },
          ],
        },
      ]);
      expect(JSON.stringify(answers)).not.toMatch(/Did you mean|firstName|EMAIL_ASC|"email"\?/);
    });
  });

  it('are cut only where graphql-js puts them, the end, whatever the echoed values say', () => {
    // A client's value echoed in a message, shaped like a suggestion or full of its words, is kept.
    const echoed = `Variable "$n" got invalid value "Did you mean Did you mean "x"? Did you mean"; Int cannot represent non-integer value: "Did you mean"`;
    expect(withoutSuggestion(echoed)).toBe(echoed);
    expect(withoutSuggestion(`${echoed} Did you mean "first", "last", or "after"?`)).toBe(echoed);
    expect(withoutSuggestion('Value "X" does not exist in "E" enum. Did you mean the enum value "A"?')).toBe(
      'Value "X" does not exist in "E" enum.',
    );
    // `{ _entities(representations: []) { id } }` names the entity types it could spread.
    expect(
      withoutSuggestion(
        'Cannot query field "id" on type "_Entity". Did you mean to use an inline fragment on "Person"?',
      ),
    ).toBe('Cannot query field "id" on type "_Entity".');
  });

  it('a 100 KB variable full of "Did you mean " is answered like any bad variable, in production', async () => {
    // This one used to block the event loop for about 2 s (a pattern tried at every "Did you mean").
    await withServer({ NODE_ENV: 'production' }, async (server) => {
      const value = 'Did you mean '.repeat(7500);
      const answer = await post(server, 'query($n: Int) { people(first: $n) { totalCount } }', { n: value });
      expect(answer.status).toBe(400);
      expect(answer.body).toEqual({
        errors: [
          {
            message: `Variable "$n" got invalid value "${value}"; Int cannot represent non-integer value: "${value}"`,
            locations: [{ line: 1, column: 7 }],
            extensions: { code: 'BAD_USER_INPUT' },
          },
        ],
      });
    });
  });
});
