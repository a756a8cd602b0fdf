import 'reflect-metadata';
import { buildSubgraphSchema, printSubgraphSchema } from '@apollo/subgraph';
import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper';
import { printSchemaWithDirectives } from '@graphql-tools/utils';
import { isUnionType, parse, type GraphQLSchema } from 'graphql';
import { buildSchema, createResolversMap } from 'type-graphql';
import { badUserInput } from './errors';
import { PersonConnectionResolver, PersonResolver } from './people/person.resolver';
import { resolvePersonReference } from './people/person.reference';

const FEDERATION_LINK = `extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key", "@shareable"])`;

/**
 * Builds the type-graphql schema, then turns it into an Apollo Federation 2 subgraph: `Person` is
 * an entity keyed by id and by email, resolved in batches by its reference resolver.
 */
export async function buildPeopleSchema(): Promise<GraphQLSchema> {
  const typeGraphQLSchema = await buildSchema({
    resolvers: [PersonResolver, PersonConnectionResolver],
    validate: false,
  });
  const resolvers = createResolversMap(typeGraphQLSchema) as GraphQLResolverMap<unknown>;
  resolvers.Person = {
    ...resolvers.Person,
    __resolveReference: resolvePersonReference,
  } as GraphQLResolverMap<unknown>[string];
  const schema = buildSubgraphSchema({
    typeDefs: parse(`${FEDERATION_LINK}\n${printSchemaWithDirectives(typeGraphQLSchema)}`),
    resolvers,
  });
  refuseNonEntityRepresentations(schema);
  return schema;
}

/** An object whose `__typename` is one of `entityTypeNames` (not an array, a string, ...). */
function isEntityRepresentation(representation: unknown, entityTypeNames: ReadonlySet<string>): boolean {
  if (typeof representation !== 'object' || representation === null || Array.isArray(representation)) return false;
  const typename = (representation as { __typename?: unknown }).__typename;
  return typeof typename === 'string' && entityTypeNames.has(typename);
}

/**
 * Makes `_entities` answer BAD_USER_INPUT, failing the whole field, for a batch holding anything
 * but a representation of an entity (a member of `_Entity`). @apollo/subgraph's resolver would
 * throw a plain Error quoting the client's `__typename` (an internal error, logged with whatever
 * the client sent there), or fail the item of an object type that is not an entity. Our message
 * names the index, never the value. graphql-jit compiles the schema's resolve functions, so this
 * wrapper is what runs.
 */
function refuseNonEntityRepresentations(schema: GraphQLSchema): void {
  const entitiesField = schema.getQueryType()?.getFields()._entities;
  const resolveEntities = entitiesField?.resolve;
  const entityUnion = schema.getType('_Entity');
  if (!entitiesField || !resolveEntities || !isUnionType(entityUnion)) {
    throw new Error('The subgraph schema has no _entities resolver or _Entity union');
  }
  const entityTypeNames = new Set(entityUnion.getTypes().map((type) => type.name));
  const expected = `an object whose __typename is one of: ${[...entityTypeNames].join(', ')}`;

  entitiesField.resolve = (source, args, context, info) => {
    const representations = args.representations as unknown[];
    const badIndex = representations.findIndex(
      (representation) => !isEntityRepresentation(representation, entityTypeNames),
    );
    if (badIndex !== -1) {
      const field = `representations[${badIndex}]`;
      throw badUserInput(`${field} is not an entity of this subgraph: expected ${expected}`, field);
    }
    return resolveEntities(source, args, context, info);
  };
}

/** The subgraph schema as committed in schema.graphql (with its federation directives). */
export async function printSubgraphSchemaFile(): Promise<string> {
  return `${printSubgraphSchema(await buildPeopleSchema()).trim()}\n`;
}
