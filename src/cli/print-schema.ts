import 'reflect-metadata';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { printSubgraphSchemaFile } from '../schema';

/** Writes schema.graphql at the project root from the code. */
async function main(): Promise<void> {
  const target = path.resolve(__dirname, '../../schema.graphql');
  writeFileSync(target, await printSubgraphSchemaFile());
  process.stdout.write(`Wrote ${target}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${String(error)}\n`);
  process.exitCode = 1;
});
