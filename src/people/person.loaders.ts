import DataLoader from 'dataloader';
import type { OperationBudget } from '../operation-budget';
import type { Person } from './person.entity';
import type { PersonService } from './person.service';

function inOrder(keys: readonly string[], found: Person[], keyOf: (person: Person) => string): (Person | null)[] {
  const byKey = new Map(found.map((person) => [keyOf(person), person]));
  return keys.map((key) => byKey.get(key) ?? null);
}

/**
 * Per-request loaders: all references of one key kind in a request become one query. Each loader
 * is made on first use, since only federation's entity lookups need one.
 */
export class PersonLoaders {
  private byIdLoader?: DataLoader<string, Person | null>;
  private byEmailLoader?: DataLoader<string, Person | null>;

  constructor(
    private readonly people: PersonService,
    private readonly budget?: OperationBudget,
  ) {}

  get byId(): DataLoader<string, Person | null> {
    return (this.byIdLoader ??= new DataLoader(async (ids) =>
      inOrder(ids, await this.people.findByIds(ids, this.budget), (person) => person.id),
    ));
  }

  /** Keys are normalised emails. */
  get byEmail(): DataLoader<string, Person | null> {
    return (this.byEmailLoader ??= new DataLoader(async (emails) =>
      inOrder(emails, await this.people.findByNormalizedEmails(emails, this.budget), (person) => person.email),
    ));
  }
}
