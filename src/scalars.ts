import { GraphQLScalarType, type ValueNode } from 'graphql';
import { DateTimeISOResolver } from 'graphql-scalars';

const FRACTION = /\.(\d+)/;

/**
 * A parsed input time, rounded up to the next millisecond when the text was finer than one (a
 * Date drops the rest). Times are stored to the millisecond and the one input, `updatedSince`,
 * means "at or after": `…40.0005Z` must not select a row stamped `…40.000Z`.
 */
function roundedUp(text: unknown, parsed: Date): Date {
  const fraction = typeof text === 'string' ? FRACTION.exec(text)?.[1] : undefined;
  return fraction && /[1-9]/.test(fraction.slice(3)) ? new Date(parsed.getTime() + 1) : parsed;
}

/**
 * graphql-scalars' DateTimeISO, except that values already stored as ISO strings are sent as
 * they are instead of being parsed and printed again on every field of every row, and input
 * finer than a millisecond is rounded up (see roundedUp).
 */
export const DateTimeISO = new GraphQLScalarType({
  ...DateTimeISOResolver.toConfig(),
  serialize: (value) => (typeof value === 'string' ? value : DateTimeISOResolver.serialize(value)),
  parseValue: (value) => roundedUp(value, DateTimeISOResolver.parseValue(value)),
  parseLiteral: (literal: ValueNode) =>
    roundedUp(literal.kind === 'StringValue' ? literal.value : undefined, DateTimeISOResolver.parseLiteral(literal)),
});
