import 'reflect-metadata';
// First: from here on SIGTERM and SIGINT are caught, while the modules below load.
import { onStopSignal } from './stop-signals';
import { createApp } from './app';
import { createFirstAdminToken } from './auth/bootstrap';
import { ConfigError, loadConfig } from './config';

async function main(): Promise<void> {
  const config = loadConfig();
  // Building the service may wait (for the database, or for another replica's migrations); a
  // signal meanwhile stops the process at once (see stop-signals.ts).
  const app = await createApp(config);

  // A SIGTERM that arrives while the service starts listening (or prints its first token) must
  // still drain and exit 0, not kill the process.
  let starting: Promise<unknown> = Promise.resolve();
  let stopping = false;
  onStopSignal((signal) => {
    if (stopping) return;
    stopping = true;
    app.logger.info({ signal }, 'draining in-flight requests, then exiting');
    starting
      .catch(() => undefined)
      .then(() => app.close())
      .then(
        () => process.exit(0),
        (error: unknown) => {
          app.logger.error({ err: error }, 'shutdown failed');
          process.exit(1);
        },
      );
  });

  starting = (async () => {
    const url = await app.listen();
    app.logger.info({ url: `${url}/graphql` }, 'people-graph listening');
    if (!config.production) {
      const created = await createFirstAdminToken(app.tokens);
      // Shown on the terminal once, never through the logger: logs must not carry secrets.
      if (created) process.stdout.write(createdTokenBanner(created.token, url));
    }
  })();
  await starting;
}

function createdTokenBanner(token: string, url: string): string {
  const body = JSON.stringify({ query: '{ people(first: 5) { totalCount nodes { email firstName lastName } } }' });
  return [
    '',
    'The database had no API token, so this admin token was created. It is shown only this once:',
    '',
    `  ${token}`,
    '',
    'Try it:',
    `  curl -s ${url}/graphql -H 'Authorization: Bearer ${token}' -H 'Content-Type: application/json' -d '${body}'`,
    '',
    '',
  ].join('\n');
}

main().catch((error: unknown) => {
  if (error instanceof ConfigError) {
    process.stderr.write(`${error.message}\n`);
  } else {
    process.stderr.write(
      `people-graph failed to start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
  }
  process.exit(1);
});
