import { Field, ID, Int, ObjectType, Directive } from 'type-graphql';
import { Column, Entity, PrimaryColumn } from 'typeorm';
import { DateTimeISO } from '../scalars';

/**
 * A person in the directory. Timestamps are stored as ISO-8601 UTC strings on every database:
 * they sort correctly as text, compare identically on SQLite and PostgreSQL, and pass through
 * to clients without re-parsing.
 */
@Directive('@key(fields: "id")')
@Directive('@key(fields: "email")')
@ObjectType({ simpleResolvers: true })
@Entity({ name: 'person' })
export class Person {
  @Field(() => ID)
  @PrimaryColumn({ type: 'varchar', length: 36 })
  id!: string;

  @Field(() => String)
  @Column({ type: 'varchar', length: 254 })
  email!: string;

  @Field(() => String, { nullable: true })
  @Column({ name: 'first_name', type: 'varchar', length: 200, nullable: true })
  firstName!: string | null;

  @Field(() => String, { nullable: true })
  @Column({ name: 'last_name', type: 'varchar', length: 200, nullable: true })
  lastName!: string | null;

  @Field(() => String, { nullable: true })
  @Column({ type: 'varchar', length: 200, nullable: true })
  organization!: string | null;

  @Field(() => String, { nullable: true })
  @Column({ name: 'business_unit', type: 'varchar', length: 200, nullable: true })
  businessUnit!: string | null;

  @Field(() => String, { nullable: true })
  @Column({ type: 'varchar', length: 200, nullable: true })
  department!: string | null;

  @Field(() => String, { nullable: true })
  @Column({ name: 'group_name', type: 'varchar', length: 200, nullable: true })
  group!: string | null;

  @Field(() => String, { nullable: true })
  @Column({ type: 'varchar', length: 200, nullable: true })
  team!: string | null;

  @Field(() => DateTimeISO)
  @Column({ name: 'created_at', type: 'varchar', length: 24 })
  createdAt!: string;

  @Field(() => DateTimeISO)
  @Column({ name: 'updated_at', type: 'varchar', length: 24 })
  updatedAt!: string;

  @Field(() => Int)
  @Column({ type: 'integer' })
  version!: number;
}

/** The columns a client may set; everything but the identity and bookkeeping columns. */
export const PERSON_TEXT_FIELDS = [
  'firstName',
  'lastName',
  'organization',
  'businessUnit',
  'department',
  'group',
  'team',
] as const;
export type PersonTextField = (typeof PERSON_TEXT_FIELDS)[number];
