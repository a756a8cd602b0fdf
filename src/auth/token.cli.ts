import 'reflect-metadata';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../config';
import { Database } from '../db/database';
import { parseExpiry, parseScopes, TokenError, TokenService } from './token.service';

const USAGE = `Usage:
  npm run token -- create --name NAME --scopes people:read,people:write [--expires 90d|12h|30m|never] [--json]
  npm run token -- list [--json]
  npm run token -- revoke ID_OR_NAME`;

async function run(tokens: TokenService, argv: string[]): Promise<void> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      name: { type: 'string' },
      scopes: { type: 'string' },
      expires: { type: 'string', default: 'never' },
      json: { type: 'boolean', default: false },
    },
  });
  const [command, target] = positionals;

  if (command === 'create') {
    // Given but empty (`--scopes ''`) is not missing: the checks below say what is wrong with it.
    if (values.name === undefined || values.scopes === undefined) {
      throw new TokenError(`create needs --name and --scopes\n${USAGE}`);
    }
    const created = await tokens.create(values.name, parseScopes(values.scopes), parseExpiry(values.expires));
    if (values.json) {
      const { id, name, token, scopes, expiresAt } = created;
      process.stdout.write(`${JSON.stringify({ id, name, token, scopes, expiresAt })}\n`);
    } else {
      process.stdout.write(
        `Created token "${created.name}" (${created.id}), scopes ${created.scopes.join(',')}, ` +
          `expires ${created.expiresAt ?? 'never'}.\nIt is shown only this once:\n\n  ${created.token}\n\n`,
      );
    }
    return;
  }
  if (command === 'list') {
    const list = (await tokens.list()).map(({ tokenHash: _hash, ...metadata }) => metadata);
    if (values.json) {
      // Scopes as a list, as `create --json` prints them.
      const listed = list.map((token) => ({ ...token, scopes: token.scopes.split(',') }));
      process.stdout.write(`${JSON.stringify(listed)}\n`);
    } else {
      for (const token of list) {
        const state = token.revokedAt ? `revoked ${token.revokedAt}` : `expires ${token.expiresAt ?? 'never'}`;
        process.stdout.write(
          `${token.id}  ${token.name}  ${token.scopes}  ${state}  last used ${token.lastUsedAt ?? 'never'}\n`,
        );
      }
      if (list.length === 0) process.stdout.write('No tokens.\n');
    }
    return;
  }
  if (command === 'revoke' && target) {
    const revoked = await tokens.revoke(target);
    process.stdout.write(`Revoked token "${revoked.name}" (${revoked.id}) at ${revoked.revokedAt}.\n`);
    return;
  }
  throw new TokenError(USAGE);
}

async function main(): Promise<void> {
  const config = loadConfig();
  const database = await Database.open(config.databaseUrl);
  try {
    await run(new TokenService(database), process.argv.slice(2));
  } finally {
    await database.close();
  }
}

main().catch((error: unknown) => {
  const known =
    error instanceof TokenError ||
    error instanceof ConfigError ||
    (error instanceof Error && 'code' in error && String(error.code).startsWith('ERR_PARSE_ARGS'));
  process.stderr.write(`${known ? (error as Error).message : String(error)}\n`);
  process.exitCode = 1;
});
