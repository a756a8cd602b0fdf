import type { GraphQLResolveInfo } from 'graphql';
import {
  Arg,
  Args,
  ArgsType,
  Ctx,
  Field,
  FieldResolver,
  Info,
  Int,
  Mutation,
  Query,
  Resolver,
  Root,
} from 'type-graphql';
import type { RequestContext } from '../auth/context';
import type { OperationBudget } from '../operation-budget';
import { Person } from './person.entity';
import { CreatePersonInput, PeopleFilter, PeopleOrder, UpdatePersonInput } from './person.inputs';
import { PersonConnection } from './person.connection';
import type { PersonService } from './person.service';
import type { PersonLoaders } from './person.loaders';
import { requestedPersonFields } from './person.columns';

@ArgsType()
class PeopleArgs {
  @Field(() => Int, { nullable: true, description: 'Page size going forward (default 25).' })
  first?: number | null;

  @Field(() => String, { nullable: true })
  after?: string | null;

  @Field(() => Int, { nullable: true, description: 'Page size going backward.' })
  last?: number | null;

  @Field(() => String, { nullable: true })
  before?: string | null;

  @Field(() => PeopleFilter, { nullable: true })
  filter?: PeopleFilter | null;

  @Field(() => PeopleOrder, { nullable: true, defaultValue: PeopleOrder.EMAIL_ASC })
  orderBy?: PeopleOrder | null;
}

export interface PeopleContext extends RequestContext {
  people: PersonService;
  personLoaders: PersonLoaders;
  /** The operation's time budget: database work does not start once it ran out. */
  budget: OperationBudget;
}

@Resolver(() => Person)
export class PersonResolver {
  @Query(() => PersonConnection, { description: 'People, a page at a time (keyset pagination).' })
  people(
    @Args(() => PeopleArgs) args: PeopleArgs,
    @Ctx() { people, budget }: PeopleContext,
    @Info() info: GraphQLResolveInfo,
  ): Promise<PersonConnection> {
    return people.list(
      { ...args, orderBy: args.orderBy ?? PeopleOrder.EMAIL_ASC },
      requestedPersonFields(info, [['nodes'], ['edges', 'node']]),
      budget,
    );
  }

  @Query(() => Person, { nullable: true, description: 'One person by email (any letter case); NOT_FOUND when absent.' })
  person(
    @Arg('email', () => String) email: string,
    @Ctx() { people, budget }: PeopleContext,
    @Info() info: GraphQLResolveInfo,
  ): Promise<Person> {
    return people.getByEmail(email, requestedPersonFields(info), budget);
  }

  @Mutation(() => Person, { description: 'CONFLICT when the email exists in any letter case.' })
  createPerson(
    @Arg('input', () => CreatePersonInput) input: CreatePersonInput,
    @Ctx() { people, budget }: PeopleContext,
  ): Promise<Person> {
    return people.create(input, budget);
  }

  @Mutation(() => Person, { description: 'NOT_FOUND for an unknown email; CONFLICT on a stale expectedVersion.' })
  updatePerson(
    @Arg('input', () => UpdatePersonInput) input: UpdatePersonInput,
    @Ctx() { people, budget }: PeopleContext,
  ): Promise<Person> {
    return people.update(input, budget);
  }
}

@Resolver(() => PersonConnection)
export class PersonConnectionResolver {
  @FieldResolver(() => Int)
  totalCount(@Root() connection: PersonConnection, @Ctx() { people, budget }: PeopleContext): Promise<number> {
    return people.count(connection.filter, budget);
  }
}
