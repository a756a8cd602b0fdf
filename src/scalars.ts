import { GraphQLScalarType } from 'graphql';
import { DateTimeISOResolver } from 'graphql-scalars';

/**
 * graphql-scalars' DateTimeISO, except that values already stored as ISO strings are sent as
 * they are instead of being parsed and printed again on every field of every row.
 */
export const DateTimeISO = new GraphQLScalarType({
  ...DateTimeISOResolver.toConfig(),
  serialize: (value) => (typeof value === 'string' ? value : DateTimeISOResolver.serialize(value)),
});
