import {
  HeaderMap,
  type ApolloServerPlugin,
  type BaseContext,
  type GraphQLRequestListener,
  type HTTPGraphQLHead,
} from '@apollo/server';
import type { GatewayExecutor, GatewayInterface } from '@apollo/server-gateway-interface';
import {
  execute,
  getNamedType,
  getVariableValues,
  GraphQLError,
  isScalarType,
  type DocumentNode,
  type ExecutionResult,
  getLocation,
  visit,
  visitWithTypeInfo,
  type FieldNode,
  type GraphQLInputType,
  type GraphQLSchema,
  Kind,
  type OperationDefinitionNode,
  TypeInfo,
  type ValueNode,
} from 'graphql';
import { compileQuery, isCompiledQuery, type CompiledQuery } from 'graphql-jit';

/** An operation that graphql-jit would run differently from graphql-js: it runs on graphql-js. */
const ON_GRAPHQL_JS = Symbol('on graphql-js');
type Compiled = CompiledQuery | ExecutionResult | typeof ON_GRAPHQL_JS;

/** The field nodes of a document by the line:column where each starts. */
function fieldNodesByLocation(document: DocumentNode): Map<string, FieldNode> {
  const byLocation = new Map<string, FieldNode>();
  visit(document, {
    Field(node) {
      if (!node.loc) return;
      const { line, column } = getLocation(node.loc.source, node.loc.start);
      byLocation.set(`${line}:${column}`, node);
    },
  });
  return byLocation;
}

/**
 * graphql-jit's errors are not quite graphql-js errors (no `extensions` object, locations without
 * their AST nodes), which Apollo's error formatting expects: rebuild each as the one graphql-js
 * would have raised, with the same message, nodes, path, original error and extensions.
 */
function asGraphQLJsError(error: GraphQLError, fieldNodes: Map<string, FieldNode>): GraphQLError {
  const nodes = error.locations
    ?.map(({ line, column }) => fieldNodes.get(`${line}:${column}`))
    .filter((node): node is FieldNode => node !== undefined);
  return new GraphQLError(error.message, {
    nodes,
    path: error.path,
    originalError: error.originalError,
    extensions: error.extensions,
  });
}

function withGraphQLJsErrors(result: ExecutionResult, document: DocumentNode): ExecutionResult {
  if (!result.errors?.length) return result;
  const fieldNodes = fieldNodesByLocation(document);
  return { ...result, errors: result.errors.map((error) => asGraphQLJsError(error, fieldNodes)) };
}

/**
 * Whether an operation is a mutation of more than one root field. graphql-jit runs such fields one
 * after the other, as it must, but goes on with the next after one has failed the whole operation
 * (`data: null`); the later writes would commit while the response reports none of them.
 * graphql-js stops there, so these run on graphql-js.
 */
function runsSeveralMutations(operation: OperationDefinitionNode): boolean {
  const { selections } = operation.selectionSet;
  return operation.operation === 'mutation' && (selections.length !== 1 || selections[0].kind !== Kind.FIELD);
}

const containsVariable = (value: ValueNode): boolean =>
  value.kind === Kind.VARIABLE ||
  (value.kind === Kind.LIST && value.values.some(containsVariable)) ||
  (value.kind === Kind.OBJECT && value.fields.some((field) => containsVariable(field.value)));

/**
 * Whether the document writes a variable inside a list or object literal given to a scalar, such
 * as `_entities(representations: [{ __typename: "Person", email: $email }])`. graphql-jit parses
 * such a literal without the variables' values, so the representation would name nobody;
 * graphql-js fills them in. (Variables inside input objects are fine on both.)
 */
function nestsVariablesInScalarLiterals(schema: GraphQLSchema, document: DocumentNode): boolean {
  const typeInfo = new TypeInfo(schema);
  let nests = false;
  const check = (type: GraphQLInputType | null | undefined, value: ValueNode) => {
    if (type && isScalarType(getNamedType(type)) && value.kind !== Kind.VARIABLE && containsVariable(value)) {
      nests = true;
    }
  };
  visit(
    document,
    visitWithTypeInfo(typeInfo, {
      Argument: (node) => check(typeInfo.getArgument()?.type, node.value),
      ObjectField: (node) => check(typeInfo.getInputType(), node.value),
    }),
  );
  return nests;
}

/** What running an operation needs of Apollo's request context (its gateway one or its own). */
interface OperationToRun {
  document: DocumentNode;
  operation?: OperationDefinitionNode | null;
  /** The name of the operation Apollo resolved. */
  operationName?: string | null;
  /** The client's request: its variables, and the operation name it sent. */
  request: { variables?: Record<string, unknown>; operationName?: string };
  context: BaseContext;
}

type Executor = (operation: OperationToRun) => Promise<ExecutionResult>;

/** Runs a request on graphql-js itself. */
function executeOnGraphQLJs(schema: GraphQLSchema, { document, request, context }: OperationToRun) {
  return execute({
    schema,
    document,
    // The name the client sent: the requestContext's `operationName` is that of the operation
    // Apollo resolved.
    operationName: request.operationName,
    variableValues: request.variables ?? {},
    contextValue: context,
  });
}

/**
 * Executes operations with graphql-jit instead of graphql-js: each operation is compiled once into
 * a plain JavaScript function, which resolves a page of people several times faster than walking
 * the AST for every field of every row. The operations graphql-jit would run differently (several
 * mutations, variables inside scalar literals: see above) run on graphql-js.
 *
 * A bad variable gets graphql-js's own error, which Apollo answers with 400 BAD_USER_INPUT.
 * Compiled operations live as long as Apollo keeps their parsed document (its LRU document
 * store), so one-off operations do not accumulate.
 */
function jitExecutor(schema: GraphQLSchema): Executor {
  const compiledByDocument = new WeakMap<DocumentNode, Map<string | null, Compiled>>();
  return async (toRun) => {
    const { document, operation, request, context } = toRun;
    const operationName = toRun.operationName ?? null;
    const variables = request.variables ?? {};
    // No operation to run (an unknown operationName) or none this schema has (a subscription):
    // graphql-js says why, in the words clients and Apollo expect.
    if (!operation || !schema.getRootType(operation.operation)) return executeOnGraphQLJs(schema, toRun);
    let byOperation = compiledByDocument.get(document);
    if (!byOperation) compiledByDocument.set(document, (byOperation = new Map()));
    let compiled = byOperation.get(operationName);
    if (!compiled) {
      // Operations graphql-jit would run differently (see above) are found once per document.
      compiled =
        runsSeveralMutations(operation) || nestsVariablesInScalarLiterals(schema, document)
          ? ON_GRAPHQL_JS
          : compileQuery(schema, document, operationName ?? undefined);
      byOperation.set(operationName, compiled);
    }
    if (compiled === ON_GRAPHQL_JS) return executeOnGraphQLJs(schema, toRun);
    if (!isCompiledQuery(compiled)) return withGraphQLJsErrors(compiled, document);
    const result = await compiled.query(undefined, context, variables);
    if (!('data' in result) && result.errors) {
      // Refused before running (bad variables): graphql-js's own errors, which Apollo answers with
      // 400 BAD_USER_INPUT, rather than graphql-jit's wording.
      const coerced = getVariableValues(schema, operation.variableDefinitions ?? [], variables, { maxErrors: 50 });
      if (coerced.errors) return { errors: coerced.errors };
    }
    return withGraphQLJsErrors(result, document);
  };
}

/** What the plugin's response changes of the HTTP answer: nothing (Apollo only reads it). */
const NO_HTTP_CHANGES: HTTPGraphQLHead = { headers: new HeaderMap() };

/**
 * How Apollo runs operations on graphql-jit. Apollo Server 4+ takes a custom executor only through
 * its gateway interface (its migration guide's replacement for the removed `executor` option), but
 * its execution step around that executor costs every request dearly: it copies the request
 * context and wraps it in a gateway context with per-request getters, after which V8 finds each
 * request's objects still reachable at two young-generation collections and moves them to the old
 * generation, which only full collections reclaim. Measured on `person` under load
 * (--trace-gc-nvp): 1.3 MB promoted per scavenge with that step, 25 KB without it, and 1.25x the
 * requests per second without it.
 *
 * So the plugin runs the operation first, in `responseForOperation` (Apollo's documented hook for
 * answering in place of its execution, which response caches use), and answers with the result
 * when it has no errors. A result with errors (or a failure) goes through Apollo's execution step
 * after all, without running again: the gateway executor hands Apollo what the plugin left for it,
 * and Apollo formats the errors, calls `didEncounterErrors` and sets the HTTP status exactly as for
 * any other operation. The gateway executor runs an operation itself only when no plugin did.
 * Plugins' `executionDidStart` hooks run only for results with errors; this service has none.
 */
export function jitExecution(schema: GraphQLSchema): {
  gateway: GatewayInterface;
  plugin: ApolloServerPlugin;
} {
  const run = jitExecutor(schema);
  /**
   * Outcomes the plugin did not answer with (a result with errors, or a failure), from the plugin
   * to the gateway executor, by the request's context value (Apollo makes one per operation).
   */
  const unanswered = new WeakMap<object, Promise<ExecutionResult>>();
  const executor: GatewayExecutor = async (requestContext) => {
    const outcome = unanswered.get(requestContext.context);
    if (!outcome) return run(requestContext);
    unanswered.delete(requestContext.context);
    return outcome;
  };
  const listener: GraphQLRequestListener<BaseContext> = {
    async responseForOperation({ document, operation, operationName, request, contextValue }) {
      const outcome = run({ document, operation, operationName, request, context: contextValue });
      try {
        const result = await outcome;
        if (!result.errors?.length) return { http: NO_HTTP_CHANGES, body: { kind: 'single', singleResult: result } };
      } catch {
        // A failure, too, is Apollo's execution step's to report: the executor hands it over.
      }
      unanswered.set(contextValue, outcome);
      return null;
    },
  };
  return {
    gateway: {
      load: async () => ({ executor }),
      onSchemaLoadOrUpdate(callback) {
        callback({ apiSchema: schema, coreSupergraphSdl: '' });
        return () => undefined;
      },
      stop: async () => undefined,
    },
    plugin: {
      // The listener keeps no state of its own, so all requests share one.
      requestDidStart: async () => listener,
    },
  };
}
