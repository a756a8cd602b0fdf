/**
 * "Apollo alone", the benchmark's third target (`--apollo-alone`): Apollo Server as its authors
 * ship it (startStandaloneServer), with the plugins the service switches off also off, serving
 * the service's published schema (schema.graphql, as an Apollo subgraph) with plain resolvers
 * that run the baseline's own SQL (bench/stores.ts). None of the service's code runs: no
 * type-graphql, TypeORM, graphql-jit, authentication, rate limits, time budget or operation
 * limits. It answers the read workloads (people and person), so that a run shows how much of the
 * gap to the bare baseline is the stack's own, before the service adds anything.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ApolloServer } from '@apollo/server';
import {
  ApolloServerPluginCacheControlDisabled,
  ApolloServerPluginInlineTraceDisabled,
  ApolloServerPluginLandingPageDisabled,
} from '@apollo/server/plugin/disabled';
import { startStandaloneServer } from '@apollo/server/standalone';
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

async function main(): Promise<void> {
  const server = new ApolloServer({
    schema: buildSubgraphSchema({ typeDefs, resolvers }),
    // As in the service: no cache-control plugin (it would wrap every field resolver), and no
    // federated tracing, which a subgraph schema would otherwise switch on.
    plugins: [
      ApolloServerPluginCacheControlDisabled(),
      ApolloServerPluginLandingPageDisabled(),
      ApolloServerPluginInlineTraceDisabled(),
    ],
  });
  await startStandaloneServer(server, { listen: { port: Number(process.env.PORT ?? 4002), host: '127.0.0.1' } });
  process.stdout.write('apollo alone ready\n');
  process.on('SIGTERM', () => void server.stop().then(() => process.exit(0)));
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
