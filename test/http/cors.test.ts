import { existsSync } from 'node:fs';
import http, { type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config';
import { sqliteTarget, type TestDatabase } from '../helpers/databases';
import { httpRequest } from '../helpers/http-request';
import { startServer, withServer, type TestServer } from '../helpers/server';

/**
 * CORS_ORIGINS: pages of the listed origins may call /graphql from a browser; any other origin
 * gets no CORS headers, and the browser keeps the answer from its script.
 */

const APP = 'http://app.example.test';
const QUERY = JSON.stringify({ query: '{ people(first: 1) { totalCount } }' });
const PREFLIGHT = {
  'access-control-request-method': 'POST',
  'access-control-request-headers': 'authorization,content-type',
};

const corsHeaders = (headers: http.IncomingHttpHeaders) =>
  Object.fromEntries(Object.entries(headers).filter(([name]) => name.startsWith('access-control-') || name === 'vary'));

describe('CORS_ORIGINS (sqlite)', () => {
  let database: TestDatabase;
  let server: TestServer;

  beforeAll(async () => {
    database = await sqliteTarget.create();
    server = await startServer(database.url, { CORS_ORIGINS: `${APP}, http://localhost:5173` });
  });

  afterAll(async () => {
    await server?.close();
    await database?.drop();
  });

  it('answers the preflight of a listed origin: its methods, headers and how long to keep it', async () => {
    const response = await httpRequest(server.graphqlUrl, {
      method: 'OPTIONS',
      headers: { origin: APP, ...PREFLIGHT },
    });
    expect(response.status).toBe(204);
    expect(corsHeaders(response.headers)).toEqual({
      'access-control-allow-origin': APP,
      'access-control-allow-methods': 'GET, POST',
      'access-control-allow-headers':
        'authorization, content-type, accept, apollo-require-preflight, x-apollo-operation-name, x-request-id, ' +
        'apollographql-client-name, apollographql-client-version',
      'access-control-max-age': '600',
      vary: 'origin',
    });
  });

  it('lets a listed origin read answers, errors included, and the headers a client needs', async () => {
    const ok = await httpRequest(server.graphqlUrl, {
      headers: { origin: APP, 'content-type': 'application/json', authorization: `Bearer ${server.adminToken}` },
      body: QUERY,
    });
    const refused = await httpRequest(server.graphqlUrl, {
      headers: { origin: APP, 'content-type': 'application/json' },
      body: QUERY,
    });
    for (const [response, status] of [
      [ok, 200],
      [refused, 401],
    ] as const) {
      expect(response.status).toBe(status);
      expect(corsHeaders(response.headers)).toEqual({
        'access-control-allow-origin': APP,
        'access-control-expose-headers': 'x-request-id, retry-after, www-authenticate',
        vary: 'origin',
      });
    }
    expect(JSON.parse(ok.text)).toEqual({ data: { people: { totalCount: 0 } } });
  });

  it('gives an origin not listed, or a request without Origin, no CORS headers (the browser blocks it)', async () => {
    for (const origin of ['http://evil.example.test', `${APP}:8080`, 'null']) {
      const preflight = await httpRequest(server.graphqlUrl, { method: 'OPTIONS', headers: { origin, ...PREFLIGHT } });
      expect([preflight.status, corsHeaders(preflight.headers)]).toEqual([204, { vary: 'origin' }]);
    }
    const plain = await httpRequest(server.graphqlUrl, {
      headers: { 'content-type': 'application/json', authorization: `Bearer ${server.adminToken}` },
      body: QUERY,
    });
    expect([plain.status, corsHeaders(plain.headers)]).toEqual([200, { vary: 'origin' }]);
  });

  it('the IDE page keeps Origin in its Vary, beside Accept and Accept-Encoding', async () => {
    const page = await httpRequest(server.graphqlUrl, { method: 'GET', headers: { origin: APP, accept: 'text/html' } });
    expect(page.status).toBe(200);
    expect(corsHeaders(page.headers)).toMatchObject({
      'access-control-allow-origin': APP,
      vary: 'origin, Accept, Accept-Encoding',
    });
  });

  it('CORS_ORIGINS=*: any origin, still without credentials', async () => {
    await withServer({ CORS_ORIGINS: '*' }, async (anyOrigin) => {
      const response = await httpRequest(anyOrigin.graphqlUrl, {
        method: 'OPTIONS',
        headers: { origin: 'https://elsewhere.example.test', ...PREFLIGHT },
      });
      expect(response.headers['access-control-allow-origin']).toBe('https://elsewhere.example.test');
      expect(response.headers['access-control-allow-credentials']).toBeUndefined();
      // Two Origin headers (Node joins them) are no origin at all.
      const twice = await httpRequest(anyOrigin.graphqlUrl, {
        method: 'OPTIONS',
        headers: { origin: ['https://a.example.test', 'https://b.example.test'], ...PREFLIGHT },
      });
      expect(twice.headers['access-control-allow-origin']).toBeUndefined();
    });
  });

  it('unset: no CORS headers at all, as before', async () => {
    await withServer({}, async (closed) => {
      const response = await httpRequest(closed.graphqlUrl, {
        method: 'OPTIONS',
        headers: { origin: APP, ...PREFLIGHT },
      });
      expect([response.status, corsHeaders(response.headers)]).toEqual([204, {}]);
    });
  });

  it('refuses an origin with a path, a wildcard inside a list, or another scheme, naming CORS_ORIGINS', () => {
    for (const value of [
      'https://app.example.com/',
      'https://app.example.com/x',
      `${APP},*`,
      'ftp://files.example.com',
    ]) {
      expect(() => loadConfig({ CORS_ORIGINS: value })).toThrow(/CORS_ORIGINS: must be \* or a comma-separated list/);
    }
    expect(loadConfig({ CORS_ORIGINS: ' https://a.example.com , http://localhost:5173 ' }).corsOrigins).toEqual([
      'https://a.example.com',
      'http://localhost:5173',
    ]);
    expect(loadConfig({}).corsOrigins).toEqual([]);
  });
});

const CHROMIUM = '/usr/bin/chromium';

describe.skipIf(!existsSync(CHROMIUM))('CORS in headless Chromium: a page on another origin calls the API', () => {
  let database: TestDatabase;
  let page: Server;
  let pageOrigin: string;

  beforeAll(async () => {
    database = await sqliteTarget.create();
    // The frontend's own origin: a blank page the test runs fetch() in.
    page = http.createServer((_request, response) =>
      response.writeHead(200, { 'content-type': 'text/html' }).end('<p>app'),
    );
    await new Promise<void>((resolve) => page.listen(0, '127.0.0.1', resolve));
    pageOrigin = `http://127.0.0.1:${(page.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await new Promise((resolve) => page?.close(resolve));
    await database?.drop();
  });

  /** What the page's script gets from a cross-origin POST with a token: the data and the request id, or fetch's error. */
  async function callFromPage(corsOrigins: string): Promise<unknown> {
    const server = await startServer(database.url, { CORS_ORIGINS: corsOrigins });
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox'] });
    try {
      const tab = await browser.newPage();
      await tab.goto(pageOrigin);
      return await tab.evaluate(
        async ({ url, token, body }) => {
          try {
            const response = await fetch(url, {
              method: 'POST',
              headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
              body,
            });
            return {
              status: response.status,
              body: await response.json(),
              hasRequestId: response.headers.has('x-request-id'),
            };
          } catch (error) {
            return { failed: String(error) };
          }
        },
        { url: server.graphqlUrl, token: server.adminToken, body: QUERY },
      );
    } finally {
      await browser.close();
      await server.close();
    }
  }

  it('works when the page origin is listed, and is blocked by the browser when it is not', async () => {
    expect(await callFromPage(pageOrigin)).toEqual({
      status: 200,
      body: { data: { people: { totalCount: 0 } } },
      hasRequestId: true,
    });
    expect(await callFromPage('http://other.example.test')).toEqual({ failed: 'TypeError: Failed to fetch' });
  }, 60_000);
});
