/**
 * "Apollo alone", the benchmark's third target (`--apollo-alone`): Apollo Server behind a bare
 * node:http handler that reads the body and calls `executeHTTPGraphQLRequest` (the integration
 * style the service uses, and the fastest one measured here), with the plugins the service
 * switches off also off, serving the service's published schema (schema.graphql, as an Apollo
 * subgraph) with plain resolvers that run the baseline's own SQL (bench/stores.ts). None of the
 * service's code runs: no type-graphql, TypeORM, graphql-jit, authentication, rate limits, time
 * budget, request ids or operation limits. It answers the read workloads (people and person), so
 * that a run shows where the stack as Apollo is usually deployed (its execution step included,
 * which the service skips: see src/graphql-executor.ts) stands against the bare baseline and the
 * service.
 */
import { readFileSync } from 'node:fs';
import http, { type IncomingMessage } from 'node:http';
import path from 'node:path';
import { ApolloServer, HeaderMap } from '@apollo/server';
import {
  ApolloServerPluginCacheControlDisabled,
  ApolloServerPluginInlineTraceDisabled,
  ApolloServerPluginLandingPageDisabled,
} from '@apollo/server/plugin/disabled';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { parse } from 'graphql';
import { openStore } from './stores';

// Compiled to build/bench/bench/apollo-alone.js; the project root is three levels up.
const typeDefs = parse(readFileSync(path.resolve(__dirname, '..', '..', '..', 'schema.graphql'), 'utf8'));

const store = openStore();
const resolvers = {
  Query: {
    people: async (_: unknown, { first }: { first?: number | null }) => ({ nodes: await store.page(first ?? 25) }),
    person: async (_: unknown, { email }: { email: string }) =>
      (await store.person(email.trim().toLowerCase())) ?? null,
  },
};

function readBody(request: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      try {
        resolve(chunks.length > 0 ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : undefined);
      } catch (error) {
        reject(error);
      }
    });
    request.on('error', reject);
  });
}

async function main(): Promise<void> {
  const apollo = new ApolloServer({
    schema: buildSubgraphSchema({ typeDefs, resolvers }),
    // As in the service: no cache-control plugin (it would wrap every field resolver), and no
    // federated tracing, which a subgraph schema would otherwise switch on.
    plugins: [
      ApolloServerPluginCacheControlDisabled(),
      ApolloServerPluginLandingPageDisabled(),
      ApolloServerPluginInlineTraceDisabled(),
    ],
  });
  await apollo.start();
  const server = http.createServer((request, response) => {
    void (async () => {
      const headers = new HeaderMap();
      for (const [name, value] of Object.entries(request.headers)) {
        if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(', ') : value);
      }
      const queryStart = (request.url ?? '').indexOf('?');
      const result = await apollo.executeHTTPGraphQLRequest({
        httpGraphQLRequest: {
          method: request.method ?? 'GET',
          headers,
          search: queryStart === -1 ? '' : (request.url ?? '').slice(queryStart),
          body: await readBody(request),
        },
        context: async () => ({}),
      });
      for (const [name, value] of result.headers) response.setHeader(name, value);
      response.statusCode = result.status ?? 200;
      response.end(result.body.kind === 'complete' ? result.body.string : '');
    })().catch((error: unknown) => {
      response.statusCode = 500;
      response.end(String(error));
    });
  });
  server.listen(Number(process.env.PORT ?? 4002), '127.0.0.1', () => process.stdout.write('apollo alone ready\n'));
  process.on('SIGTERM', () => server.close(() => void apollo.stop().then(() => process.exit(0))));
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
