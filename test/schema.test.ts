import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { printSubgraphSchemaFile } from '../src/schema';

describe('schema.graphql', () => {
  it('is exactly what the code builds (run `npm run schema` after changing the schema)', async () => {
    const committed = readFileSync(path.join(__dirname, '..', 'schema.graphql'), 'utf8');
    expect(await printSubgraphSchemaFile()).toBe(committed);
  });

  it('declares Person as a federation entity keyed by id and by email', () => {
    const committed = readFileSync(path.join(__dirname, '..', 'schema.graphql'), 'utf8');
    expect(committed).toMatch(/type Person\s+@key\(fields: "id"\)\s+@key\(fields: "email"\)/);
    expect(committed).toContain('@link(url: "https://specs.apollo.dev/federation/v2.3"');
  });
});
