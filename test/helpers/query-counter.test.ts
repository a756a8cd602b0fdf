import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { QueryRunner } from 'typeorm';
import { Database } from '../../src/db/database';
import { Person } from '../../src/people/person.entity';
import { databaseTargets, type TestDatabase } from './databases';
import { countQueries, onTable } from './query-counter';

/** The method countQueries wraps: the one the driver's query-runner class defines. */
function queryMethod(database: Database): QueryRunner['query'] {
  let prototype = Object.getPrototypeOf(database.dataSource.driver.createQueryRunner('master')) as object;
  while (!Object.prototype.hasOwnProperty.call(prototype, 'query')) prototype = Object.getPrototypeOf(prototype);
  return (prototype as QueryRunner).query;
}

describe.each(databaseTargets)('countQueries on $kind', (target) => {
  let testDatabase: TestDatabase;
  let database: Database;
  let other: Database;

  beforeAll(async () => {
    testDatabase = await target.create();
    database = await Database.open(testDatabase.url);
    other = await Database.open(testDatabase.url, { migrate: false });
  });

  afterAll(async () => {
    await other?.close();
    await database?.close();
    await testDatabase?.drop();
  });

  it('records every statement in order with its parameters, and the real results come back', async () => {
    const { count, statements, recorded, result } = await countQueries(database.dataSource, async () => {
      const one = await database.dataSource.query('SELECT 1 AS one');
      const people = await database.manager.getRepository(Person).find({ where: { email: 'nobody@example.com' } });
      return { one, people };
    });
    expect(result).toEqual({ one: [{ one: 1 }], people: [] });
    expect(count).toBe(2);
    expect(statements[0]).toBe('SELECT 1 AS one');
    expect(statements[1]).toMatch(/^SELECT .* FROM "person"/);
    expect(recorded.map((statement) => [statement.parameters, statement.failed])).toEqual([
      [[], false],
      [['nobody@example.com'], false],
    ]);
    expect(statements.filter(onTable('person'))).toEqual([statements[1]]);
  });

  it('records transaction control and writes, and failed statements marked as failed', async () => {
    const { statements, recorded } = await countQueries(database.dataSource, async () => {
      await database.write((manager) =>
        manager.insert(Person, {
          id: '00000000-0000-4000-8000-000000000001',
          email: 'counted@example.com',
          createdAt: '2024-01-01T00:00:00.000Z',
          updatedAt: '2024-01-01T00:00:00.000Z',
          version: 1,
        }),
      );
      await expect(database.dataSource.query('SELECT * FROM no_such_table')).rejects.toThrow();
    });
    expect(statements.some((sql) => /^(BEGIN|START TRANSACTION)/.test(sql))).toBe(true);
    expect(statements.filter(onTable('person'))).toEqual([expect.stringMatching(/^INSERT INTO "person"/)]);
    expect(statements).toContain('COMMIT');
    expect(recorded.at(-1)).toEqual({ sql: 'SELECT * FROM no_such_table', parameters: [], failed: true });
    expect(recorded.filter((statement) => statement.failed)).toHaveLength(1);
  });

  it("leaves out another DataSource's statements, even on the same database", async () => {
    const { statements } = await countQueries(database.dataSource, async () => {
      await other.dataSource.query('SELECT 2 AS two');
      await database.dataSource.query('SELECT 3 AS three');
    });
    expect(statements).toEqual(['SELECT 3 AS three']);
  });

  it('restores the query method afterwards, also when the block throws, and nests', async () => {
    const original = queryMethod(database);
    const outer = await countQueries(database.dataSource, async () => {
      await database.dataSource.query('SELECT 1 AS a');
      const inner = await countQueries(database.dataSource, () => database.dataSource.query('SELECT 1 AS b'));
      expect(inner.statements).toEqual(['SELECT 1 AS b']);
      await expect(
        countQueries(database.dataSource, async () => {
          throw new Error('block failed');
        }),
      ).rejects.toThrow('block failed');
      expect(queryMethod(database)).not.toBe(original);
    });
    expect(outer.statements).toEqual(['SELECT 1 AS a', 'SELECT 1 AS b']);
    expect(queryMethod(database)).toBe(original);

    const after = await countQueries(database.dataSource, async () => undefined);
    await database.dataSource.query('SELECT 1 AS unseen');
    expect(after).toMatchObject({ count: 0, statements: [] });
  });

  it('onTable matches reads and writes of that table only', () => {
    const person = onTable('person');
    expect(person('SELECT "p"."id" FROM "person" "p" WHERE 1')).toBe(true);
    expect(person('INSERT INTO "person"("id") VALUES ($1)')).toBe(true);
    expect(person('UPDATE "person" SET "version" = version + 1')).toBe(true);
    expect(person('DELETE FROM person WHERE id = ?')).toBe(true);
    expect(person('SELECT 1 FROM "api_token" "t" JOIN "person" "p" ON 1')).toBe(true);
    expect(person('SELECT "t"."person" FROM "api_token" "t"')).toBe(false);
    expect(person('SELECT 1 FROM "person_archive"')).toBe(false);
  });
});
