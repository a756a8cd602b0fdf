import { describe, expect, it } from 'vitest';
import { Database } from '../../src/db/database';
import { seedEmail, seedPeople } from '../../src/people/person.seed';
import { PeopleOrder } from '../../src/people/person.inputs';
import { PersonService } from '../../src/people/person.service';
import { sqliteTarget } from '../helpers/databases';

describe('closing the SQLite database', () => {
  it('closes cleanly while reads are still running: they finish, then its statements are finalized, then it closes', async () => {
    const testDatabase = await sqliteTarget.create();
    try {
      for (let round = 0; round < 3; round += 1) {
        const database = await Database.open(testDatabase.url);
        if (round === 0) await seedPeople(database, 50);
        const people = new PersonService(database, 100);
        // Still running when close is called, as the queries of requests whose clients went away
        // can be after the HTTP server drained.
        const inFlight = Promise.allSettled([
          ...Array.from({ length: 40 }, (_, i) => people.findByEmail(seedEmail(1 + (i % 50)))),
          ...Array.from({ length: 10 }, () => people.list({ first: 5, orderBy: PeopleOrder.EMAIL_ASC })),
          ...Array.from({ length: 10 }, (_, i) => people.create({ email: `close-${round}-${i}@example.com` })),
        ]);
        // SQLite refuses to close a connection with a statement not yet finalized (SQLITE_BUSY).
        await expect(database.close()).resolves.toBeUndefined();
        const outcomes = await inFlight;
        expect(outcomes.filter((outcome) => outcome.status === 'rejected')).toEqual([]);
      }
    } finally {
      await testDatabase.drop();
    }
  });
});
