import { createServer, type AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TokenService } from '../../src/auth/token.service';
import { Database } from '../../src/db/database';
import { sqliteTarget, type TestDatabase } from '../helpers/databases';
import { spawnMain, stopMain, type MainProcess } from '../helpers/main-process';

const LISTENING = /"url":"(http:\/\/[^"]+\/graphql)","msg":"people-graph listening"/;

/** A port nothing listens on right now: bound on port 0, then released. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

/** Splits a shell command line into words, honouring single quotes (all the banner uses). */
function shellWords(line: string): string[] {
  return [...line.matchAll(/'([^']*)'|(\S+)/g)].map((match) => match[1] ?? match[2]);
}

/** Turns the printed `curl` line into the same request made with fetch. */
function curlToFetch(line: string): { url: string; init: RequestInit } {
  const words = shellWords(line.trim());
  expect(words[0]).toBe('curl');
  const headers: Record<string, string> = {};
  let url: string | undefined;
  let body: string | undefined;
  for (let index = 1; index < words.length; index += 1) {
    const word = words[index];
    if (word === '-s') continue;
    if (word === '-H') {
      const [name, ...value] = words[(index += 1)].split(':');
      headers[name.trim().toLowerCase()] = value.join(':').trim();
    } else if (word === '-d') {
      body = words[(index += 1)];
    } else if (word.startsWith('-')) {
      throw new Error(`unexpected curl option ${word} in ${line}`);
    } else {
      url = word;
    }
  }
  if (!url) throw new Error(`no URL in ${line}`);
  // curl -d sends a POST.
  return { url, init: { method: body === undefined ? 'GET' : 'POST', headers, body } };
}

const jsonLogLines = (main: MainProcess) =>
  main
    .stdout()
    .split('\n')
    .filter((line) => line.startsWith('{'));

async function countTokens(databaseUrl: string): Promise<number> {
  const database = await Database.open(databaseUrl);
  try {
    return await new TokenService(database).count();
  } finally {
    await database.close();
  }
}

describe('the first start of node dist/main.js prints one admin token', () => {
  const databases: TestDatabase[] = [];
  const running: MainProcess[] = [];

  async function freshDatabase(): Promise<TestDatabase> {
    const database = await sqliteTarget.create();
    databases.push(database);
    return database;
  }

  function start(environment: Record<string, string>): MainProcess {
    const main = spawnMain({ LOG_LEVEL: 'info', ...environment });
    running.push(main);
    return main;
  }

  afterEach(async () => {
    for (const main of running.splice(0)) await stopMain(main);
  });

  afterAll(async () => {
    for (const database of databases) await database.drop();
  });

  let firstToken: string;
  let firstDatabase: TestDatabase;
  let firstPort: number;

  beforeAll(async () => {
    firstDatabase = await freshDatabase();
    firstPort = await freePort();
  });

  it('outside production, prints the token once with a curl line that works as printed', async () => {
    const main = start({ DATABASE_URL: firstDatabase.url, PORT: String(firstPort) });
    const [, graphqlUrl] = await main.waitForStdout(LISTENING);
    expect(graphqlUrl).toBe(`http://localhost:${firstPort}/graphql`);
    const [curlLine] = await main.waitForStdout(/^ *curl .*$/m);

    const stdout = main.stdout();
    const tokens = stdout.match(/pgk_[0-9A-Za-z]+/g) ?? [];
    expect(new Set(tokens).size).toBe(1);
    firstToken = tokens[0] ?? '';
    expect(firstToken).toMatch(/^pgk_[0-9A-Za-z]{38}$/);
    // Shown once on a line of its own, and once inside the curl line.
    expect(stdout.match(/^ {2}pgk_[0-9A-Za-z]+$/gm)).toEqual([`  ${firstToken}`]);
    expect(stdout.match(/^ *curl /gm)).toHaveLength(1);
    expect(curlLine).toContain(`Authorization: Bearer ${firstToken}`);

    const { url, init } = curlToFetch(curlLine);
    expect(url).toBe(`http://localhost:${firstPort}/graphql`);
    const response = await fetch(url, init);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ data: { people: { totalCount: 0, nodes: [] } } });

    // The token is an admin token: it may write as well.
    const write = await fetch(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${firstToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ query: 'mutation { createPerson(input: { email: "first@example.com" }) { email } }' }),
    });
    expect(await write.json()).toEqual({ data: { createPerson: { email: 'first@example.com' } } });

    expect(await stopMain(main)).toBe(0);
    expect(main.stderr()).toBe('');

    const logLines = jsonLogLines(main);
    expect(logLines.length).toBeGreaterThanOrEqual(3);
    for (const line of logLines) expect(() => JSON.parse(line)).not.toThrow();
    expect(logLines.filter((line) => line.includes(firstToken) || line.includes('pgk_'))).toEqual([]);
    expect(logLines.some((line) => line.includes('"msg":"request"'))).toBe(true);
  });

  it('prints no token when started again on the same database, and the first token still works', async () => {
    const main = start({ DATABASE_URL: firstDatabase.url, PORT: String(firstPort) });
    const [, graphqlUrl] = await main.waitForStdout(LISTENING);
    const response = await fetch(graphqlUrl, {
      method: 'POST',
      headers: { authorization: `Bearer ${firstToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ people { totalCount } }' }),
    });
    expect(await response.json()).toEqual({ data: { people: { totalCount: 1 } } });

    expect(await stopMain(main)).toBe(0);
    expect(main.stderr()).toBe('');
    expect(main.stdout()).not.toContain('pgk_');
    expect(main.stdout()).not.toMatch(/curl /);
    expect(await countTokens(firstDatabase.url)).toBe(1);
  });

  it('exits 0 on SIGTERM sent as soon as it listens', async () => {
    const database = await freshDatabase();
    const main = start({ DATABASE_URL: database.url, PORT: String(await freePort()) });
    await main.waitForStdout(LISTENING);
    expect(await stopMain(main)).toBe(0);
    expect(main.stderr()).toBe('');
    // Either the token was created (and printed) before the stop, or neither happened.
    const printed = main.stdout().match(/^ {2}pgk_[0-9A-Za-z]+$/gm) ?? [];
    expect(printed.length).toBe(await countTokens(database.url));
  });

  it('in production, prints and creates no token on a fresh database', async () => {
    const database = await freshDatabase();
    const main = start({ DATABASE_URL: database.url, PORT: String(await freePort()), NODE_ENV: 'production' });
    const [, graphqlUrl] = await main.waitForStdout(LISTENING);
    const anonymous = await fetch(graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ people { totalCount } }' }),
    });
    expect(anonymous.status).toBe(401);

    expect(await stopMain(main)).toBe(0);
    expect(main.stderr()).toBe('');
    expect(main.stdout()).not.toContain('pgk_');
    expect(main.stdout()).not.toMatch(/curl /);
    expect(
      main
        .stdout()
        .split('\n')
        .filter(Boolean)
        .every((line) => line.startsWith('{')),
    ).toBe(true);
    expect(await countTokens(database.url)).toBe(0);
  });
});
