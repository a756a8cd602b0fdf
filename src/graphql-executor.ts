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

/** Runs a request on graphql-js itself. */
function executeOnGraphQLJs(
  schema: GraphQLSchema,
  { document, request, context }: Parameters<GatewayExecutor>[0],
): Promise<ExecutionResult> | ExecutionResult {
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
 * the AST for every field of every row. Apollo still parses, validates (operation limits
 * included), runs the plugins and formats errors; only execution changes. The operations graphql-jit
 * would run differently (several mutations, variables inside scalar literals: see above) run on
 * graphql-js.
 *
 * A bad variable gets graphql-js's own error, which Apollo answers with 400 BAD_USER_INPUT.
 * Compiled operations live as long as Apollo keeps their parsed document (its LRU document
 * store), so one-off operations do not accumulate.
 */
function jitExecutor(schema: GraphQLSchema): GatewayExecutor {
  const compiledByDocument = new WeakMap<DocumentNode, Map<string | null, Compiled>>();
  return async (requestContext) => {
    const { document, operation, operationName, request, context } = requestContext;
    const variables = request.variables ?? {};
    // No operation to run (an unknown operationName) or none this schema has (a subscription):
    // graphql-js says why, in the words clients and Apollo expect.
    if (!operation || !schema.getRootType(operation.operation)) return executeOnGraphQLJs(schema, requestContext);
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
    if (compiled === ON_GRAPHQL_JS) return executeOnGraphQLJs(schema, requestContext);
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

/**
 * Apollo Server 4+ accepts a custom executor only through its gateway interface (its migration
 * guide's replacement for the removed `executor` option): a fixed schema and the jit executor.
 */
export function jitSchemaProvider(schema: GraphQLSchema): GatewayInterface {
  return {
    load: async () => ({ executor: jitExecutor(schema) }),
    onSchemaLoadOrUpdate(callback) {
      callback({ apiSchema: schema, coreSupergraphSdl: '' });
      return () => undefined;
    },
    stop: async () => undefined,
  };
}
