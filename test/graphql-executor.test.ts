import type { GatewayExecutor, GatewayGraphQLRequestContext } from '@apollo/server-gateway-interface';
import {
  buildSchema,
  execute,
  getOperationAST,
  GraphQLError,
  parse,
  type ExecutionResult,
  type GraphQLSchema,
} from 'graphql';
import { beforeAll, describe, expect, it } from 'vitest';
import { jitSchemaProvider } from '../src/graphql-executor';

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
    const loaded = await jitSchemaProvider(schema).load({ apollo: { graphRef: 'test', keyHash: undefined } } as never);
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
