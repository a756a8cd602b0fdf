import { readFileSync } from 'node:fs';
import path from 'node:path';
import { composeServices } from '@apollo/composition';
import { ApolloGateway, RemoteGraphQLDataSource } from '@apollo/gateway';
import { ApolloServer } from '@apollo/server';
import { startStandaloneServer } from '@apollo/server/standalone';
import { parse } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseTargets, type TestDatabase } from '../helpers/databases';
import { startServer, type TestServer } from '../helpers/server';
import { projectsTypeDefs, startProjectsSubgraph } from '../fixtures/projects-subgraph';

const peopleTypeDefs = parse(readFileSync(path.join(__dirname, '..', '..', 'schema.graphql'), 'utf8'));

function compose() {
  return composeServices([
    { name: 'people', typeDefs: peopleTypeDefs, url: 'http://people.invalid/graphql' },
    { name: 'projects', typeDefs: projectsTypeDefs, url: 'http://projects.invalid/graphql' },
  ]);
}

describe('composition', () => {
  it('composes the people subgraph with a projects subgraph that references Person by email', () => {
    const result = compose();
    expect(result.errors).toBeUndefined();
    expect(result.supergraphSdl).toContain('type Person');
    expect(result.supergraphSdl).toContain('projects: [Project!]!');
  });

  it('composes with another subgraph that has its own Relay PageInfo (a value type both define)', () => {
    const ordersTypeDefs = parse(`
      extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key", "@shareable"])
      type PageInfo @shareable {
        hasNextPage: Boolean!
        hasPreviousPage: Boolean!
        startCursor: String
        endCursor: String
      }
      type Order @key(fields: "id") { id: ID! }
      type OrderConnection { nodes: [Order!]! pageInfo: PageInfo! }
      type Query { orders(first: Int): OrderConnection! }
    `);
    const result = composeServices([
      { name: 'people', typeDefs: peopleTypeDefs, url: 'http://people.invalid/graphql' },
      { name: 'orders', typeDefs: ordersTypeDefs, url: 'http://orders.invalid/graphql' },
    ]);
    expect(result.errors?.map((error) => error.message)).toBeUndefined();
    expect(result.supergraphSdl).toContain('type PageInfo');
  });
});

interface GatewayContext {
  authorization?: string;
}

describe.each(databaseTargets)('federation end to end on $kind', (target) => {
  let database: TestDatabase;
  let people: TestServer;
  let projects: { url: string; stop: () => Promise<void> };
  let gateway: ApolloServer<GatewayContext>;
  let gatewayUrl: string;

  beforeAll(async () => {
    database = await target.create();
    people = await startServer(database.url);
    for (const [email, firstName, team] of [
      ['ada@example.com', 'Ada', 'Engines'],
      ['grace@example.com', 'Grace', 'Compilers'],
    ]) {
      await people.app.people.create({ email, firstName, team });
    }
    projects = await startProjectsSubgraph([
      { id: 'p1', name: 'Analytical Engine', ownerEmail: 'Ada@Example.com' },
      { id: 'p2', name: 'COBOL', ownerEmail: 'grace@example.com' },
      { id: 'p3', name: 'Orphan', ownerEmail: 'nobody@example.com' },
    ]);

    const supergraph = compose();
    if (!supergraph.supergraphSdl) throw new Error('composition failed');
    const urls: Record<string, string> = { people: people.graphqlUrl, projects: projects.url };
    gateway = new ApolloServer<GatewayContext>({
      gateway: new ApolloGateway({
        supergraphSdl: supergraph.supergraphSdl,
        buildService: ({ name }) =>
          new RemoteGraphQLDataSource<GatewayContext>({
            url: urls[name],
            // Forward the client's token to the subgraphs, as a router's header propagation does.
            willSendRequest({ request, context }) {
              if (context.authorization) request.http?.headers.set('authorization', context.authorization);
            },
          }),
      }),
    });
    ({ url: gatewayUrl } = await startStandaloneServer(gateway, {
      listen: { port: 0, host: '127.0.0.1' },
      context: async ({ req }) => ({ authorization: req.headers.authorization }),
    }));
  });

  afterAll(async () => {
    await gateway?.stop();
    await projects?.stop();
    await people?.close();
    await database?.drop();
  });

  async function throughGateway(query: string, token: string | null) {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (token) headers.authorization = `Bearer ${token}`;
    const response = await fetch(gatewayUrl, { method: 'POST', headers, body: JSON.stringify({ query }) });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  }

  it('answers a query across both subgraphs with the people data from this service', async () => {
    const reader = await people.createToken(['people:read']);
    const { status, body } = await throughGateway('{ projects { name owner { email firstName team } } }', reader);
    // The key field comes from the projects subgraph as it stored it; the rest is resolved here,
    // matching the email case-insensitively; an unknown owner resolves to null fields.
    expect(status).toBe(200);
    expect(body).toEqual({
      data: {
        projects: [
          { name: 'Analytical Engine', owner: { email: 'Ada@Example.com', firstName: 'Ada', team: 'Engines' } },
          { name: 'COBOL', owner: { email: 'grace@example.com', firstName: 'Grace', team: 'Compilers' } },
          { name: 'Orphan', owner: { email: 'nobody@example.com', firstName: null, team: null } },
        ],
      },
    });
  });

  it('refuses the people part when the client sends no token: the subgraph answers UNAUTHENTICATED', async () => {
    const { body } = await throughGateway('{ projects { name owner { firstName } } }', null);
    const errors = body.errors as { extensions?: { code?: string } }[];
    expect(errors.length).toBeGreaterThan(0);
    expect(JSON.stringify(errors)).toContain('UNAUTHENTICATED');
    expect(JSON.stringify(body.data ?? null)).not.toContain('Ada');
  });
});
