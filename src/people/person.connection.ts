import { Directive, Field, Int, ObjectType } from 'type-graphql';
import { Person } from './person.entity';
import type { PeopleFilter } from './person.inputs';

// Shareable: other subgraphs of a federated graph define the same Relay type, and Federation 2
// composes a value type defined in several subgraphs only when each marks it so.
@Directive('@shareable')
@ObjectType({ description: 'Relay page information.', simpleResolvers: true })
export class PageInfo {
  @Field(() => Boolean)
  hasNextPage!: boolean;

  @Field(() => Boolean)
  hasPreviousPage!: boolean;

  @Field(() => String, { nullable: true })
  startCursor!: string | null;

  @Field(() => String, { nullable: true })
  endCursor!: string | null;
}

@ObjectType({ simpleResolvers: true })
export class PersonEdge {
  @Field(() => String)
  cursor!: string;

  @Field(() => Person)
  node!: Person;
}

// Simple resolvers: its fields are plain properties (totalCount keeps its own resolver).
@ObjectType({ description: 'A page of people, in the order asked for.', simpleResolvers: true })
export class PersonConnection {
  @Field(() => Int, { description: 'How many people match the filter; counted only when selected.' })
  totalCount!: number;

  @Field(() => [PersonEdge])
  edges!: PersonEdge[];

  @Field(() => [Person])
  nodes!: Person[];

  @Field(() => PageInfo)
  pageInfo!: PageInfo;

  /** Kept for totalCount's resolver; not a GraphQL field. */
  filter!: PeopleFilter | null;
}
