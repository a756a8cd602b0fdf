import 'reflect-metadata';
import { parseArgs } from 'node:util';
import { loadConfig } from '../config';
import { Database } from '../db/database';
import { seedPeople } from '../people/person.seed';

/** `npm run seed -- --count N`: fills the configured database with the deterministic people. */
async function main(): Promise<void> {
  const { values } = parseArgs({ options: { count: { type: 'string', default: '1000' } } });
  const count = Number(values.count);
  if (!Number.isInteger(count) || count < 1) throw new Error('--count must be a positive whole number');
  const database = await Database.open(loadConfig().databaseUrl);
  const started = Date.now();
  let inserted;
  try {
    inserted = await seedPeople(database, count, (done) => process.stdout.write(`\rseeded ${done}/${count}`));
  } finally {
    await database.close();
  }
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  process.stdout.write(`\nPeople 1..${count} are there: ${inserted} inserted, the rest already were (${seconds} s).\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
