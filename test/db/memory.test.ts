import { describe, expect, it } from 'vitest';
import { Database } from '../../src/db/database';
import { PersonService } from '../../src/people/person.service';

describe('SQLite in memory (sqlite::memory:), where reads and writes share one connection', () => {
  it('a read never sees a write that is not committed, such as one rolled back after it was made', async () => {
    const database = await Database.open('sqlite::memory:');
    try {
      const people = new PersonService(database, 100);
      let inserted!: () => void;
      const insertDone = new Promise<void>((resolve) => (inserted = resolve));
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      // A unit that inserts a person, then waits inside the open transaction, then fails.
      const writing = database.write(async (sql) => {
        await sql.run(
          `INSERT INTO person (id, email, created_at, updated_at, version)
           VALUES ('00000000-0000-4000-8000-000000000001', 'phantom@example.com', $1, $1, 1)`,
          [new Date().toISOString()],
        );
        inserted();
        await gate;
        throw new Error('rolled back');
      });
      await insertDone;
      const reading = people.findByEmail('phantom@example.com');
      // The read waits for the transaction instead of answering from inside it.
      const early = await Promise.race([reading, new Promise((resolve) => setTimeout(() => resolve('waiting'), 200))]);
      release();
      await expect(writing).rejects.toThrow('rolled back');
      expect(early).toBe('waiting');
      expect(await reading).toBeNull();
    } finally {
      await database.close();
    }
  });
});
