import { execFile } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseTargets, type TestDatabase } from '../helpers/databases';

const ROOT = path.resolve(__dirname, '../..');

/** Runs a command from the project root against `databaseUrl`, as a user would; resolves with its stdout. */
function run(databaseUrl: string, command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      command,
      args,
      { cwd: ROOT, env: { PATH: process.env.PATH ?? '', DATABASE_URL: databaseUrl }, timeout: 120_000 },
      (error, stdout, stderr) => (error ? reject(new Error(`${command} failed: ${stderr}`)) : resolve(stdout)),
    );
  });
}

describe.each(databaseTargets)('the TypeORM CLI on ormconfig.ts, on $kind', (target) => {
  let database: TestDatabase;

  beforeAll(async () => {
    database = await target.create();
  });

  afterAll(async () => {
    await database?.drop();
  });

  it('shows the migrations pending, then applied once the service has migrated', async () => {
    const show = () => run(database.url, 'npx', ['typeorm-ts-node-commonjs', '-d', 'ormconfig.ts', 'migration:show']);
    // `[ ] CreatePerson…` while pending, `[X] 1 CreatePerson…` once applied.
    const migrations = (listing: string) =>
      listing
        .split('\n')
        .map((line) => /^\s*\[([ X])\] (?:\d+ )?(\w+)$/.exec(line))
        .filter((match) => match !== null)
        .map(([, state, name]) => ({ applied: state === 'X', name }));

    const before = migrations(await show());
    expect(before.length).toBeGreaterThan(0);
    expect(before.every((migration) => !migration.applied)).toBe(true);

    await run(database.url, process.execPath, ['dist/cli/migrate.js']);
    expect(migrations(await show())).toEqual(before.map(({ name }) => ({ applied: true, name })));
  });
});
