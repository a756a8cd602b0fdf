import { ApolloServer } from '@apollo/server';
import type { GatewayExecutor, GatewayGraphQLRequestContext, GatewayInterface } from '@apollo/server-gateway-interface';
import {
  buildSchema,
  execute,
  getOperationAST,
  GraphQLError,
  parse,
  type ExecutionResult,
  type GraphQLSchema,
} from 'graphql';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { jitExecution } from '../src/graphql-executor';

/**
 * The graphql-jit executor must answer exactly as graphql-js would: same data, same errors with
 * the same message, locations, path, extensions and original error, which Apollo's error handling
 * and this service's masking rely on. Each operation runs through both and is compared.
 */
const failure = Object.assign(new Error('disk on fire'), { code: 'SQLITE_IOERR' });
const coded = new GraphQLError('No person with that email', { extensions: { code: 'NOT_FOUND' } });

function testSchema(): GraphQLSchema {
  const schema = buildSchema(`
    type Query { person(email: String!): Person, people(first: Int): [Person!]!, broken: Person, missing: Person }
    type Person { email: String!, team: String, friends: [Person!] }
  `);
  const fields = schema.getQueryType()!.getFields();
  const ada = { email: 'ada@example.com', team: 'Engines', friends: [{ email: 'charles@example.com', team: null }] };
  fields.person.resolve = async (_root, { email }: { email: string }) => ({ ...ada, email });
  fields.people.resolve = async (_root, { first }: { first?: number }) => Array(first ?? 2).fill(ada);
  fields.broken.resolve = async () => {
    throw failure;
  };
  fields.missing.resolve = () => {
    throw coded;
  };
  return schema;
}

/** What a client and Apollo see of a result: the JSON, and what each error wraps. */
function observable(result: ExecutionResult) {
  return {
    json: JSON.parse(JSON.stringify(result)) as unknown,
    errors: (result.errors ?? []).map((error) => ({
      isGraphQLError: error instanceof GraphQLError,
      extensions: error.extensions,
      originalError: error.originalError,
      nodeKinds: error.nodes?.map((node) => node.kind),
    })),
  };
}

describe('the graphql-jit executor answers as graphql-js does', () => {
  let schema: GraphQLSchema;
  let executor: GatewayExecutor;

  beforeAll(async () => {
    schema = testSchema();
    const loaded = await jitExecution(schema).gateway.load({
      apollo: { graphRef: 'test', keyHash: undefined },
    } as never);
    executor = loaded.executor!;
  });

  async function both(query: string, variables: Record<string, unknown> = {}, operationName?: string) {
    const document = parse(query);
    const operation = getOperationAST(document, operationName);
    const context = {};
    const expected = await execute({
      schema,
      document,
      variableValues: variables,
      operationName,
      contextValue: context,
    });
    const requestContext = {
      document,
      operation,
      operationName: operation?.name?.value ?? null,
      request: { query, variables, operationName },
      context,
    } as unknown as GatewayGraphQLRequestContext;
    // Twice: the second run uses the compiled operation from the cache.
    const first = await executor(requestContext);
    const second = await executor(requestContext);
    return { expected: observable(expected), first: observable(first), second: observable(second) };
  }

  it.each([
    ['a nested selection', '{ people(first: 2) { email team friends { email team } } }', {}],
    ['variables', 'query($e: String!) { person(email: $e) { email } }', { e: 'grace@example.com' }],
    ['a resolver that throws a driver error', '{ broken { email } person(email: "x@example.com") { email } }', {}],
    ['a resolver that throws a coded GraphQLError', 'query { missing { email } }', {}],
    ['a variable of the wrong type', 'query($n: Int) { people(first: $n) { email } }', { n: 'many' }],
    ['a missing required variable', 'query($e: String!) { person(email: $e) { email } }', {}],
    ['a subscription, which the schema has none of', 'subscription { person { email } }', {}],
  ])('%s', async (_name, query, variables) => {
    const { expected, first, second } = await both(query, variables);
    expect(first).toEqual(expected);
    expect(second).toEqual(expected);
  });

  it('an operation name that is not in the document', async () => {
    const { expected, first } = await both('query A { people { email } }', {}, 'B');
    expect(first).toEqual(expected);
    expect(first.json).toEqual({ errors: [{ message: 'Unknown operation named "B".' }] });
  });
});

describe('inside Apollo', () => {
  /** A real Apollo Server on jitExecution, counting resolver runs and calls of the gateway executor. */
  async function apolloOnJit() {
    const schema = testSchema();
    const runs = { person: 0, broken: 0, executor: 0 };
    const fields = schema.getQueryType()!.getFields();
    const { person, broken } = { person: fields.person.resolve!, broken: fields.broken.resolve! };
    fields.person.resolve = (...args) => ((runs.person += 1), person(...args));
    fields.broken.resolve = (...args) => ((runs.broken += 1), broken(...args));
    const { gateway, plugin } = jitExecution(schema);
    const countingGateway: GatewayInterface = {
      ...gateway,
      load: async (options) => {
        const { executor } = await gateway.load(options);
        return { executor: (requestContext) => ((runs.executor += 1), executor!(requestContext)) };
      },
    };
    const apollo = new ApolloServer({
      gateway: countingGateway,
      plugins: [plugin],
      includeStacktraceInErrorResponses: false,
    });
    await apollo.start();
    return { apollo, runs };
  }

  let apollo: ApolloServer;
  let runs: Awaited<ReturnType<typeof apolloOnJit>>['runs'];
  beforeEach(async () => {
    ({ apollo, runs } = await apolloOnJit());
  });
  afterEach(() => apollo.stop());

  /** The single result of an operation run through Apollo's whole request pipeline. */
  async function answer(query: string) {
    const response = await apollo.executeOperation({ query });
    if (response.body.kind !== 'single') throw new Error('expected a single result');
    return { status: response.http.status, result: response.body.singleResult };
  }

  it('answers an operation without errors from the plugin, never calling the executor', async () => {
    expect(await answer('{ person(email: "ada@example.com") { email team } }')).toEqual({
      status: undefined,
      result: { data: { person: { email: 'ada@example.com', team: 'Engines' } } },
    });
    expect(runs).toEqual({ person: 1, broken: 0, executor: 0 });
  });

  it('runs an operation with errors once, and Apollo formats its errors', async () => {
    expect(await answer('{ person(email: "ada@example.com") { email } broken { email } }')).toEqual({
      status: undefined,
      result: {
        data: { person: { email: 'ada@example.com' }, broken: null },
        // The code is Apollo's: graphql-jit's error has none.
        errors: [
          {
            message: 'disk on fire',
            locations: [{ line: 1, column: 46 }],
            path: ['broken'],
            extensions: { code: 'INTERNAL_SERVER_ERROR' },
          },
        ],
      },
    });
    // The executor handed Apollo the plugin's result: no resolver ran a second time.
    expect(runs).toEqual({ person: 1, broken: 1, executor: 1 });
  });

  it('lets Apollo answer an operation that failed, as its own execution step would', async () => {
    // graphql-js throws for variables that are not an object (Apollo's HTTP layer refuses them
    // before, but a direct caller can pass them): the failure reaches Apollo's execution step.
    const response = await apollo.executeOperation({
      query: 'query A { person(email: "ada@example.com") { email } }',
      operationName: 'B',
      variables: 'not an object' as never,
    });
    expect({ status: response.http.status, body: response.body }).toEqual({
      status: 500,
      body: {
        kind: 'single',
        singleResult: {
          errors: [
            {
              message:
                'Variables must be provided as an Object where each property is a variable value. Perhaps look to see if an unparsed JSON string was provided.',
              extensions: { code: 'INTERNAL_SERVER_ERROR' },
            },
          ],
        },
      },
    });
    expect(runs).toEqual({ person: 0, broken: 0, executor: 1 });
  });
});
