import { z } from 'zod';
import { badUserInput } from '../errors';
import { PERSON_TEXT_FIELDS, type PersonTextField } from './person.entity';

export const MAX_EMAIL_LENGTH = 254;
export const MAX_TEXT_LENGTH = 200;

// A practical address shape: ASCII local part and a dotted domain of DNS labels, in any letter
// case. Checked before lower-casing, which maps a few non-ASCII letters to ASCII ones (KELVIN
// SIGN to k): such an address would otherwise be stored as a different one. (Without the `u`
// flag, `i` matches only ASCII letters to ASCII letters.)
const EMAIL_PATTERN =
  /^[a-z0-9!#$%&'*+/=?^_`{|}~-]{1,64}(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]{1,64})*@[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$/i;

// Control characters other than tab and newline, and unpaired UTF-16 surrogates: SQLite would
// store a lone surrogate as U+FFFD and PostgreSQL refuses NUL, so both are refused everywhere.
const UNSTORABLE = /(?![\t\n])[\p{Cc}\p{Cs}]/u;

/** True when `value` holds a character that is never stored (see UNSTORABLE). */
export const hasUnstorableCharacters = (value: string) => UNSTORABLE.test(value);

/**
 * Whether the id column could hold `value`. The service makes UUIDs, but the column holds any 36
 * characters (rows may come from an import). Anything else names no row, on either database
 * (PostgreSQL would refuse a NUL in the query itself).
 */
export const isStorableId = (value: string) =>
  value.length > 0 && value.length <= 36 && !hasUnstorableCharacters(value);

const emailSchema = z
  .string()
  .transform((email) => email.trim())
  .pipe(
    z
      .string()
      .max(MAX_EMAIL_LENGTH, `email must be at most ${MAX_EMAIL_LENGTH} characters`)
      .regex(EMAIL_PATTERN, 'Invalid email format')
      .transform((email) => email.toLowerCase()),
  );

function textSchema(field: PersonTextField) {
  return z
    .string()
    .refine((value) => [...value].length <= MAX_TEXT_LENGTH, `${field} must be at most ${MAX_TEXT_LENGTH} characters`)
    .refine((value) => !UNSTORABLE.test(value), `${field} contains control characters or unpaired surrogates`)
    .nullable();
}

// Built once: making a zod schema (about 30 µs) costs hundreds of times more than checking a value with it.
const TEXT_SCHEMAS = Object.fromEntries(PERSON_TEXT_FIELDS.map((field) => [field, textSchema(field)])) as Record<
  PersonTextField,
  ReturnType<typeof textSchema>
>;

function parse<T>(schema: z.ZodType<T>, value: unknown, field: string): T {
  const result = schema.safeParse(value);
  if (!result.success) throw badUserInput(result.error.issues[0]?.message ?? `Invalid ${field}`, field);
  return result.data;
}

/** Trims and lower-cases an email, or throws BAD_USER_INPUT "Invalid email format". */
export function normalizeEmail(email: string): string {
  return parse(emailSchema, email, 'email');
}

export type PersonFieldValues = Partial<Record<PersonTextField, string | null>>;

/**
 * Checks the name and organisation fields that are present (undefined = not given) and returns
 * them unchanged: values are stored exactly as given or refused, never altered.
 */
export function validatePersonFields(
  input: Partial<Record<PersonTextField, string | null | undefined>>,
): PersonFieldValues {
  const values: PersonFieldValues = {};
  for (const field of PERSON_TEXT_FIELDS) {
    const value = input[field];
    if (value !== undefined) values[field] = parse(TEXT_SCHEMAS[field], value, field);
  }
  return values;
}

/** Like normalizeEmail, but null instead of an error for an address that cannot exist. */
export function tryNormalizeEmail(email: string): string | null {
  const result = emailSchema.safeParse(email);
  return result.success ? result.data : null;
}

const FILTER_TEXT_FIELDS = ['organization', 'businessUnit', 'department', 'group', 'team', 'search'] as const;

/**
 * Refuses filter strings with characters no stored value holds: PostgreSQL would refuse a NUL
 * parameter outright (an internal error) where SQLite just matched nothing.
 */
export function validatePeopleFilter(
  filter: Partial<Record<(typeof FILTER_TEXT_FIELDS)[number], string | null | undefined>> | null | undefined,
): void {
  if (!filter) return;
  for (const field of FILTER_TEXT_FIELDS) {
    const value = filter[field];
    if (typeof value === 'string' && hasUnstorableCharacters(value)) {
      throw badUserInput(`filter.${field} contains control characters or unpaired surrogates`, `filter.${field}`);
    }
  }
  // No stored email or name is longer, so a longer prefix could match nothing; SQLite would even
  // refuse it as a LIKE pattern over 50,000 bytes (an internal error) where PostgreSQL answers.
  if (typeof filter.search === 'string' && [...filter.search].length > MAX_EMAIL_LENGTH) {
    throw badUserInput(`filter.search must be at most ${MAX_EMAIL_LENGTH} characters`, 'filter.search');
  }
}
