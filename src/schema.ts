import 'reflect-metadata';
import { buildSubgraphSchema, printSubgraphSchema } from '@apollo/subgraph';
import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper';
import { printSchemaWithDirectives } from '@graphql-tools/utils';
import { parse, type GraphQLSchema } from 'graphql';
import { buildSchema, createResolversMap } from 'type-graphql';
import { PersonConnectionResolver, PersonResolver } from './people/person.resolver';
import { resolvePersonReference } from './people/person.reference';

const FEDERATION_LINK = `extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key"])`;

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
  return buildSubgraphSchema({
    typeDefs: parse(`${FEDERATION_LINK}\n${printSchemaWithDirectives(typeGraphQLSchema)}`),
    resolvers,
  });
}

/** The subgraph schema as committed in schema.graphql (with its federation directives). */
export async function printSubgraphSchemaFile(): Promise<string> {
  return `${printSubgraphSchema(await buildPeopleSchema()).trim()}\n`;
}
