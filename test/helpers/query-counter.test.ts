import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Database } from '../../src/db/database';
import { databaseTargets, type TestDatabase } from './databases';
import { countQueries, onTable } from './query-counter';

describe.each(databaseTargets)('the query counter on $kind', (target) => {
  let testDatabase: TestDatabase;
  let database: Database;

  beforeAll(async () => {
    testDatabase = await target.create();
    database = await Database.open(testDatabase.url);
  });

  afterAll(async () => {
    await database?.close();
    await testDatabase?.drop();
  });

  it('records every statement of the block, in order, with its parameters, and returns the result', async () => {
    const counted = await countQueries(database, async () => {
      await database.sql.all('SELECT COUNT(*) AS n FROM person WHERE team = $1', ['A']);
      await database.write((sql) => sql.run('UPDATE person SET team = $1 WHERE email = $2', ['B', 'x@example.com']));
      return 42;
    });
    expect(counted.result).toBe(42);
    expect(counted.recorded[0]).toEqual({ sql: 'SELECT COUNT(*) AS n FROM person WHERE team = $1', parameters: ['A'] });
    expect(counted.statements).toContain('UPDATE person SET team = $1 WHERE email = $2');
    expect(counted.count).toBe(counted.statements.length);
  });

  it('stops recording after the block, also when the block throws', async () => {
    await expect(
      countQueries(database, async () => {
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    const counted = await countQueries(database, async () => undefined);
    await database.sql.all('SELECT 1 AS one');
    expect(counted.count).toBe(0);
  });

  it('onTable matches reads and writes of that table only', () => {
    const matches = onTable('person');
    expect(matches('SELECT id FROM person WHERE email = $1')).toBe(true);
    expect(matches('INSERT INTO person (id) VALUES ($1)')).toBe(true);
    expect(matches('UPDATE person SET team = $1')).toBe(true);
    expect(matches('SELECT id FROM api_token WHERE token_hash = $1')).toBe(false);
    expect(matches('SELECT id FROM personnel')).toBe(false);
  });
});
