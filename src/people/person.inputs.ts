import { Field, InputType, Int, registerEnumType } from 'type-graphql';
import { DateTimeISO } from '../scalars';

@InputType({ description: 'A new person. Only the email is normalised (trimmed, lower-cased).' })
export class CreatePersonInput {
  @Field(() => String)
  email!: string;

  @Field(() => String, { nullable: true })
  firstName?: string | null;

  @Field(() => String, { nullable: true })
  lastName?: string | null;

  @Field(() => String, { nullable: true })
  organization?: string | null;

  @Field(() => String, { nullable: true })
  businessUnit?: string | null;

  @Field(() => String, { nullable: true })
  department?: string | null;

  @Field(() => String, { nullable: true })
  group?: string | null;

  @Field(() => String, { nullable: true })
  team?: string | null;
}

@InputType({
  description: 'Names the person by email; each other field: omitted = unchanged, null = cleared.',
})
export class UpdatePersonInput extends CreatePersonInput {
  @Field(() => Int, {
    nullable: true,
    description: 'When given, the update is refused with CONFLICT unless the stored version matches.',
  })
  expectedVersion?: number | null;
}

@InputType({ description: 'Exact matches on each given field; all given fields must match.' })
export class PeopleFilter {
  @Field(() => String, { nullable: true })
  organization?: string | null;

  @Field(() => String, { nullable: true })
  businessUnit?: string | null;

  @Field(() => String, { nullable: true })
  department?: string | null;

  @Field(() => String, { nullable: true })
  group?: string | null;

  @Field(() => String, { nullable: true })
  team?: string | null;

  @Field(() => String, {
    nullable: true,
    description: 'Case-insensitive prefix of the email, first name or last name.',
  })
  search?: string | null;

  @Field(() => DateTimeISO, { nullable: true, description: 'Only people updated at or after this time.' })
  updatedSince?: Date | null;
}

export enum PeopleOrder {
  EMAIL_ASC = 'EMAIL_ASC',
  EMAIL_DESC = 'EMAIL_DESC',
  CREATED_AT_ASC = 'CREATED_AT_ASC',
  CREATED_AT_DESC = 'CREATED_AT_DESC',
  UPDATED_AT_DESC = 'UPDATED_AT_DESC',
}
registerEnumType(PeopleOrder, { name: 'PeopleOrder' });
