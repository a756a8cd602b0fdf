import 'reflect-metadata';
import { loadConfig } from '../config';
import { createDataSource, initializeDataSource, runMigrations } from '../db/data-source';

/** Applies pending migrations and lists what ran (the service also migrates when it starts). */
async function main(): Promise<void> {
  const { databaseUrl } = loadConfig();
  const dataSource = createDataSource(databaseUrl);
  await initializeDataSource(dataSource, databaseUrl);
  try {
    const applied = await runMigrations(dataSource);
    process.stdout.write(
      applied.length === 0
        ? 'Database is up to date.\n'
        : applied.map((migration) => `Applied ${migration.name}\n`).join(''),
    );
  } finally {
    await dataSource.destroy();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
