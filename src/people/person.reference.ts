import type { Person } from './person.entity';
import type { PeopleContext } from './person.resolver';
import { isStorableId, tryNormalizeEmail } from './person.validation';

export interface PersonReference {
  __typename: 'Person';
  id?: unknown;
  email?: unknown;
}

/**
 * Federation's `_entities` for Person, keyed by id or by email (any letter case). Unknown or
 * malformed keys resolve to null rather than failing the whole batch.
 */
export async function resolvePersonReference(
  reference: PersonReference,
  context: PeopleContext,
): Promise<Person | null> {
  if (typeof reference.id === 'string') {
    return isStorableId(reference.id) ? context.personLoaders.byId.load(reference.id) : null;
  }
  if (typeof reference.email === 'string') {
    const email = tryNormalizeEmail(reference.email);
    return email === null ? null : context.personLoaders.byEmail.load(email);
  }
  return null;
}
