import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { loadConfig } from '../../src/config';
import { sqliteTarget, type TestDatabase } from '../helpers/databases';
import { killMain, spawnMain, startMain, type MainProcess } from '../helpers/main-process';

describe('node dist/main.js refuses invalid configuration', () => {
  let database: TestDatabase;
  let databaseFile: string;

  beforeAll(async () => {
    database = await sqliteTarget.create();
    databaseFile = database.url.slice('sqlite:'.length);
  });

  afterAll(async () => {
    await database?.drop();
  });

  it.each([
    ['PORT', 'abc'],
    ['PORT', '70000'],
    ['DATABASE_URL', 'mysql://x'],
    ['DATABASE_URL', 'sqlite://./data/people.sqlite'],
    ['DATABASE_URL', 'sqlite:'],
    ['MAX_PAGE_SIZE', '0'],
    ['MAX_PAGE_SIZE', 'ten'],
    ['LOG_LEVEL', 'loud'],
    ['NODE_ENV', 'staging'],
    ['BODY_LIMIT_BYTES', '12'],
    ['REQUEST_TIMEOUT_MS', '50'],
    ['OPERATION_TIMEOUT_MS', '3000000000'],
    ['SHUTDOWN_TIMEOUT_MS', '3000000000'],
    ['DATABASE_QUERY_TIMEOUT_MS', '3000000000'],
    ['DATABASE_POOL_SIZE', '0'],
    // Numbers are plain decimals: what Number() would also read is refused.
    ['PORT', '0x1290'],
    ['PORT', '4.752e3'],
    ['MAX_PAGE_SIZE', ' 5'],
    ['RATE_LIMIT_PER_SECOND', '1e3'],
  ])('%s=%s: exits non-zero, names the variable on stderr, touches nothing', async (variable, value) => {
    const main = spawnMain({
      DATABASE_URL: database.url,
      PORT: '0',
      HOST: '127.0.0.1',
      [variable]: value,
    });
    // Should a value be accepted after all, the test fails without leaving a server running.
    onTestFinished(() => killMain(main));
    const code = await main.exited;

    expect(code).not.toBe(0);
    expect(typeof code).toBe('number');
    expect(main.stderr()).toMatch(new RegExp(`^Invalid configuration: .*\\b${variable}\\b`));
    expect(main.stderr().trim().split('\n')).toHaveLength(1);
    expect(main.stderr()).not.toMatch(/\n\s+at /);
    expect(main.stdout()).toBe('');
    // Validation comes first: no database was created, no token printed, nothing listened.
    expect(existsSync(databaseFile)).toBe(false);
    expect(readdirSync(path.dirname(databaseFile))).toEqual([]);
  });

  it('names every invalid variable at once', async () => {
    const main = spawnMain({ DATABASE_URL: 'mysql://x', PORT: 'abc', MAX_PAGE_SIZE: '0' });
    expect(await main.exited).toBe(1);
    const stderr = main.stderr();
    for (const variable of ['DATABASE_URL', 'PORT', 'MAX_PAGE_SIZE']) expect(stderr).toContain(`${variable}:`);
  });
});

describe('node dist/main.js where it cannot listen, or listens on IPv6', () => {
  let database: TestDatabase;
  let main: MainProcess | undefined;

  beforeAll(async () => {
    database = await sqliteTarget.create();
  });

  afterAll(async () => {
    await killMain(main);
    await database?.drop();
  });

  it('a PORT already in use: exits 1 with one line naming PORT and HOST, no stack trace', async () => {
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const { port } = taken.address() as AddressInfo;
    try {
      const refused = spawnMain({ DATABASE_URL: database.url, PORT: String(port), HOST: '127.0.0.1' });
      expect(await refused.exited).toBe(1);
      expect(refused.stderr()).toBe(`Invalid configuration: PORT ${port} on HOST 127.0.0.1 is already in use\n`);
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  });

  it('HOST=::1: the URL it logs brackets the address, and answers there', async () => {
    const started = await startMain({ DATABASE_URL: database.url, HOST: '::1' });
    main = started.main;
    expect(started.url).toMatch(/^http:\/\/\[::1\]:\d+$/);
    expect((await fetch(`${started.url}/healthz`)).status).toBe(200);
  });
});

describe('a database that cannot be opened', () => {
  /** A port on this machine that nothing listens on. */
  async function closedPort(): Promise<number> {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    await new Promise((resolve) => server.close(resolve));
    return port;
  }

  const commands: [string, [string, ...string[]]][] = [
    ['node dist/main.js', [process.execPath, 'dist/main.js']],
    ['the token CLI', [process.execPath, 'dist/auth/token.cli.js', 'list']],
    ['the migrate CLI', [process.execPath, 'dist/cli/migrate.js']],
  ];

  it.each(commands)(
    'PostgreSQL not listening: %s exits 1 with one line naming DATABASE_URL and the reason, without the password',
    async (_name, command) => {
      const port = await closedPort();
      const main = spawnMain(
        { DATABASE_URL: `postgres://people:s3cret-pw@127.0.0.1:${port}/people`, PORT: '0', HOST: '127.0.0.1' },
        command,
      );
      expect(await main.exited).toBe(1);
      expect(main.stderr()).toBe(
        `Cannot open the database of DATABASE_URL postgres://people:***@127.0.0.1:${port}/people: ` +
          `connect ECONNREFUSED 127.0.0.1:${port}\n`,
      );
      expect(main.stdout()).toBe('');
    },
  );

  it('a SQLite path that cannot be created: node dist/main.js exits 1 with one line naming DATABASE_URL', async () => {
    const directory = mkdtempSync(path.join(os.tmpdir(), 'people-graph-'));
    try {
      // A regular file where the database's directory should be.
      writeFileSync(path.join(directory, 'not-a-directory'), '');
      const url = `sqlite:${path.join(directory, 'not-a-directory', 'people.sqlite')}`;
      const main = spawnMain({ DATABASE_URL: url, PORT: '0', HOST: '127.0.0.1' });
      expect(await main.exited).toBe(1);
      expect(main.stderr()).toMatch(new RegExp(`^Cannot open the database of DATABASE_URL ${url}: E[A-Z]+: .+\n$`));
      expect(main.stderr().trim().split('\n')).toHaveLength(1);
      expect(main.stdout()).toBe('');
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });
});

describe('derived defaults', () => {
  it('lets a query go unanswered 1 s longer than the operation budget before the database counts as down', () => {
    expect(loadConfig({}).databaseQueryTimeoutMs).toBe(11_000);
    expect(loadConfig({ OPERATION_TIMEOUT_MS: '3000' }).databaseQueryTimeoutMs).toBe(4_000);
    expect(loadConfig({ OPERATION_TIMEOUT_MS: '3000', DATABASE_QUERY_TIMEOUT_MS: '500' }).databaseQueryTimeoutMs).toBe(
      500,
    );
    expect(() => loadConfig({ DATABASE_QUERY_TIMEOUT_MS: '0' })).toThrow(/DATABASE_QUERY_TIMEOUT_MS/);
  });
});
