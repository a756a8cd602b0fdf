import 'reflect-metadata';
import { loadConfig } from '../config';
import { migrateDatabase } from '../db/data-source';

/** Applies pending migrations and lists what ran (the service also migrates when it starts). */
async function main(): Promise<void> {
  const applied = await migrateDatabase(loadConfig().databaseUrl, {
    onLockWait: () => process.stderr.write('Waiting for another process to finish migrating the database…\n'),
  });
  process.stdout.write(
    applied.length === 0
      ? 'Database is up to date.\n'
      : applied.map((migration) => `Applied ${migration.name}\n`).join(''),
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
