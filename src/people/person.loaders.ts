import DataLoader from 'dataloader';
import type { OperationBudget } from '../operation-budget';
import type { Person } from './person.entity';
import type { PersonService } from './person.service';

export interface PersonLoaders {
  byId: DataLoader<string, Person | null>;
  byEmail: DataLoader<string, Person | null>;
}

/** Per-request loaders: all references of one key kind in a request become one query. */
export function createPersonLoaders(people: PersonService, budget?: OperationBudget): PersonLoaders {
  const inOrder = (keys: readonly string[], found: Person[], keyOf: (person: Person) => string) => {
    const byKey = new Map(found.map((person) => [keyOf(person), person]));
    return keys.map((key) => byKey.get(key) ?? null);
  };
  return {
    byId: new DataLoader(async (ids) => inOrder(ids, await people.findByIds(ids, budget), (person) => person.id)),
    byEmail: new DataLoader(async (emails) =>
      inOrder(emails, await people.findByNormalizedEmails(emails, budget), (person) => person.email),
    ),
  };
}
