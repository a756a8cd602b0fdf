import type { ApolloServerPlugin, BaseContext, GraphQLRequestListener } from '@apollo/server';
import { ApolloArmor } from '@escape.tech/graphql-armor';
import {
  GraphQLError,
  Kind,
  visit,
  type ArgumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  type ValidationContext,
  type ValidationRule,
} from 'graphql';
import { DEFAULT_PAGE_SIZE } from './people/pagination';

/** The operation limits (see README "Security and operations: limits"). */
export interface OperationLimitSettings {
  /** Nesting depth, fragments flattened, introspection included (MAX_DEPTH). */
  maxDepth: number;
  /** Aliased fields per operation; `__typename` aliases are free (MAX_ALIASES). */
  maxAliases: number;
  /** Directives per operation (MAX_DIRECTIVES). */
  maxDirectives: number;
  /** Lexical tokens per document, enforced by the parser (MAX_TOKENS). */
  maxTokens: number;
  /** graphql-armor's cost estimate per operation (MAX_COST). */
  maxCost: number;
}

type ArmorConfig = NonNullable<ConstructorParameters<typeof ApolloArmor>[0]>;

/**
 * Reports a refused limit as a validation error (Apollo answers 400 GRAPHQL_VALIDATION_FAILED).
 * armor words every refusal as "Syntax Error: ...", which it is not, and reports a cost with all
 * its decimals; the client gets "Query depth limit of 15 exceeded, found 16."
 */
function reportLimit(context: ValidationContext | null, error: GraphQLError): void {
  const message = error.message
    .replace(/^Syntax Error: /, '')
    .replace(/found (\d+\.\d+)/, (_, found: string) => `found ${Math.ceil(Number(found))}`);
  context?.reportError(new GraphQLError(message));
}

/** One armor protection alone: its validation rule. */
function armorRule(config: ArmorConfig): ValidationRule {
  const off = { enabled: false };
  const { validationRules } = new ApolloArmor({
    blockFieldSuggestion: off,
    costLimit: off,
    maxAliases: off,
    maxDepth: off,
    maxDirectives: off,
    // Never armor's max-tokens plugin: it turns long queries and syntax errors into HTTP 500 on
    // Apollo 5. The parser's own maxTokens (parseOptions) answers 400.
    maxTokens: off,
    ...config,
  }).protect();
  if (validationRules.length !== 1) throw new Error('Expected exactly one graphql-armor validation rule');
  return validationRules[0];
}

const callbacks = { propagateOnRejection: false, onReject: [reportLimit], onAccept: [] };

function withPageSize(field: FieldNode, pageSizes: { default: number; max: number }): FieldNode {
  const given = (field.arguments ?? []).filter((arg) => arg.name.value === 'first' || arg.name.value === 'last');
  const size = (value: number) => ({ kind: Kind.INT, value: String(value) }) as const;
  if (given.length === 0) {
    const first: ArgumentNode = {
      kind: Kind.ARGUMENT,
      name: { kind: Kind.NAME, value: 'first' },
      value: size(pageSizes.default),
    };
    return { ...field, arguments: [...(field.arguments ?? []), first] };
  }
  // A variable may bring any size up to the maximum. A literal over it costs the maximum too: it
  // is refused with BAD_USER_INPUT before a row is read, which the client should be told.
  const overMax = (arg: ArgumentNode) => arg.value.kind !== Kind.INT || Number(arg.value.value) > pageSizes.max;
  return {
    ...field,
    arguments: (field.arguments ?? []).map((arg) =>
      given.includes(arg) && overMax(arg) ? { ...arg, value: size(pageSizes.max) } : arg,
    ),
  };
}

/**
 * armor's cost multiplies a paginated field by its `first`/`last` only when the page size is a
 * literal: `people(first: $n)` or a `people` left at its default page size would cost as if it
 * returned one row, and a client could ask for 100x more than the estimate. This rule hands the
 * cost rule a copy of the document where a page size given as a variable counts as MAX_PAGE_SIZE
 * (any value may come), a literal over MAX_PAGE_SIZE as MAX_PAGE_SIZE, and a missing one as the
 * default page size (25). Static, so that Apollo's cache of validated documents stays correct.
 */
function pageSizeAwareCost(costRule: ValidationRule, pageSizes: { default: number; max: number }): ValidationRule {
  return (context) => {
    const paginated = new Set<FieldNode>();
    return {
      Field(node) {
        if (context.getFieldDef()?.args.some((arg) => arg.name === 'first')) paginated.add(node);
      },
      Document: {
        leave(document) {
          const costed = visit(document, {
            Field: (node) => (paginated.has(node) ? withPageSize(node, pageSizes) : undefined),
          });
          const fragments = new Map(
            costed.definitions
              .filter(
                (definition): definition is FragmentDefinitionNode => definition.kind === Kind.FRAGMENT_DEFINITION,
              )
              .map((fragment) => [fragment.name.value, fragment]),
          );
          // The cost rule reads fragments through the context: give it the rewritten ones.
          const costContext: ValidationContext = Object.create(context);
          costContext.getFragment = (name) => fragments.get(name);
          visit(costed, costRule(costContext));
        },
      },
    };
  };
}

/**
 * graphql-armor's max depth, aliases, directives and cost limits as validation rules, plus the
 * parser's token limit. Introspection is not exempt (`ignoreIntrospection: false`): armor skips
 * any field named `__schema`, aliases of it included, so exempting it would let a client hide any
 * amount of work from the limits. The defaults leave room for the GraphiQL introspection query
 * (depth 15, cost about 15,600).
 */
export function operationLimits(limits: OperationLimitSettings, maxPageSize: number) {
  const costRule = armorRule({
    costLimit: {
      maxCost: limits.maxCost,
      ignoreIntrospection: false,
      // Fragments cost what their fields cost wherever they are spread, not one level more.
      flattenFragments: true,
      ...callbacks,
    },
  });
  return {
    parseOptions: { maxTokens: limits.maxTokens },
    validationRules: [
      armorRule({ maxDepth: { n: limits.maxDepth, ignoreIntrospection: false, flattenFragments: true, ...callbacks } }),
      armorRule({ maxAliases: { n: limits.maxAliases, ...callbacks } }),
      armorRule({ maxDirectives: { n: limits.maxDirectives, ...callbacks } }),
      pageSizeAwareCost(costRule, { default: DEFAULT_PAGE_SIZE, max: maxPageSize }),
    ],
  };
}

/**
 * graphql-js's suggestion: ` Did you mean "a"?`, `"a" or "b"?`, `"a", "b", or "c"?`, of enum
 * values (`the enum value "A"`) and of types to spread (`to use an inline fragment on "Person"`).
 */
const SUGGESTION = /^ Did you mean (?:the enum value |to use an inline fragment on )?"\w+"(?:(?:, |,? or )"\w+")*\?$/;

/**
 * The message without graphql-js's "Did you mean ...?". graphql-js only ever appends it, so it is
 * looked for at the end: messages echo the client's values, and a pattern tried at every "Did you
 * mean" in them took quadratic time (seconds of a blocked event loop for one 100 KB request).
 */
export function withoutSuggestion(message: string): string {
  const start = message.lastIndexOf(' Did you mean ');
  return start !== -1 && SUGGESTION.test(message.slice(start)) ? message.slice(0, start) : message;
}

const suggestionRemover: GraphQLRequestListener<BaseContext> = {
  async didEncounterErrors({ errors }) {
    for (const error of errors) error.message = withoutSuggestion(error.message);
  },
};

/**
 * Removes "Did you mean ...?" from every error (unknown fields, arguments, types, enum values and
 * input fields, in the query or in variables): with introspection off, suggestions would reveal
 * the schema one guess at a time. armor's own plugin misses enum values and leaves a stray "?".
 */
export const hideSuggestionsPlugin: ApolloServerPlugin = {
  // The listener keeps no state of its own, so all requests share one.
  requestDidStart: async () => suggestionRemover,
};
