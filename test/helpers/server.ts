import { Writable } from 'node:stream';
import { createApp, type App } from '../../src/app';
import { loadConfig, type Environment } from '../../src/config';
import type { Scope } from '../../src/auth/scopes';
import { sqliteTarget } from './databases';

export interface GraphQLResponse {
  status: number;
  headers: Headers;
  body: {
    data?: Record<string, unknown> | null;
    errors?: { message: string; path?: string[]; extensions?: { code?: string; [key: string]: unknown } }[];
  };
}

export interface TestServer {
  app: App;
  url: string;
  graphqlUrl: string;
  /** Lines the service logged, as parsed JSON. */
  logs: Record<string, unknown>[];
  rawLogs: string[];
  adminToken: string;
  createToken(scopes: Scope[], options?: { name?: string; expiresAt?: Date | null }): Promise<string>;
  /** POSTs a GraphQL request with the given token (the admin token by default; null for none). */
  gql(query: string, variables?: Record<string, unknown>, token?: string | null): Promise<GraphQLResponse>;
  close(): Promise<void>;
}

let tokenCounter = 0;

/** Starts the real service on an ephemeral port against `databaseUrl`, as main.ts would. */
export async function startServer(databaseUrl: string, environment: Environment = {}): Promise<TestServer> {
  const rawLogs: string[] = [];
  const logDestination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      rawLogs.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  const config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    NODE_ENV: 'test',
    LOG_LEVEL: 'info',
    DATABASE_URL: databaseUrl,
    // Tests hammer the service with one token: the limiter runs but never refuses, unless a
    // test asks for a limit (test/http/rate-limit.test.ts).
    RATE_LIMIT_PER_SECOND: '1000000',
    RATE_LIMIT_BURST: '1000000',
    ...environment,
  });
  const app = await createApp(config, { logDestination });
  const url = (await app.listen()).replace('localhost', '127.0.0.1');
  const graphqlUrl = `${url}/graphql`;

  const createToken: TestServer['createToken'] = async (scopes, options = {}) => {
    tokenCounter += 1;
    const created = await app.tokens.create(
      options.name ?? `test-${process.pid}-${tokenCounter}`,
      scopes,
      options.expiresAt ?? null,
    );
    return created.token;
  };
  const adminToken = await createToken(['admin']);

  const gql: TestServer['gql'] = async (query, variables, token = adminToken) => {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (token !== null) headers.authorization = `Bearer ${token}`;
    const response = await fetch(graphqlUrl, { method: 'POST', headers, body: JSON.stringify({ query, variables }) });
    return {
      status: response.status,
      headers: response.headers,
      body: (await response.json()) as GraphQLResponse['body'],
    };
  };

  return {
    app,
    url,
    graphqlUrl,
    rawLogs,
    get logs() {
      return rawLogs.map((line) => JSON.parse(line) as Record<string, unknown>);
    },
    adminToken,
    createToken,
    gql,
    close: () => app.close(),
  };
}

/** Runs `check` against a fresh server on a fresh SQLite database started with `environment`. */
export async function withServer(
  environment: Environment,
  check: (server: TestServer) => Promise<void>,
): Promise<void> {
  const database = await sqliteTarget.create();
  const server = await startServer(database.url, environment);
  try {
    await check(server);
  } finally {
    await server.close();
    await database.drop();
  }
}
