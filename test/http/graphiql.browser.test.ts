import { existsSync, mkdirSync } from 'node:fs';
import http, { type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sqliteTarget, type TestDatabase } from '../helpers/databases';
import { httpRequest } from '../helpers/http-request';
import { startServer, withServer, type TestServer } from '../helpers/server';

const CHROMIUM = '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) {
  console.warn(
    `${CHROMIUM} does not exist: the headless-browser test of the GraphiQL IDE is SKIPPED ` +
      '(install Debian\'s "chromium" package, as .ci/run does, to run it).',
  );
}

const ARTIFACTS = path.join(__dirname, '..', 'artifacts');
/** Set UPDATE_DOCS_SCREENSHOT=1 to refresh the README's docs/graphiql.png from this test. */
const DOCS_SCREENSHOT = path.join(__dirname, '..', '..', 'docs', 'graphiql.png');

/** A plain node:http GET, so that no client adds or strips Accept-Encoding behind the test's back. */
const rawGet = (url: string, headers: Record<string, string>) => httpRequest(url, { method: 'GET', headers });

const BROWSER_ACCEPT = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';
const INTROSPECTION = '{ __schema { types { name } } }';

async function isIdePage(server: TestServer): Promise<boolean> {
  const response = await rawGet(server.graphqlUrl, { accept: BROWSER_ACCEPT });
  expect(response.status).toBeLessThan(500);
  return response.status === 200 && /^text\/html/.test(response.headers['content-type'] ?? '');
}

describe('GET /graphql from a browser serves the GraphiQL page', () => {
  let database: TestDatabase;
  let server: TestServer;

  beforeAll(async () => {
    database = await sqliteTarget.create();
    server = await startServer(database.url);
  });

  afterAll(async () => {
    await server?.close();
    await database?.drop();
  });

  it('answers HTML with a strong ETag, a CSP and 304 on If-None-Match; needs no token', async () => {
    const response = await rawGet(server.graphqlUrl, { accept: BROWSER_ACCEPT });
    expect(response.status).toBe(200);
    expect(response.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(response.headers['content-encoding']).toBeUndefined();
    expect(response.headers.vary).toMatch(/Accept-Encoding/);
    const html = response.body.toString('utf8');
    expect(html).toMatch(/^\s*<!doctype html>/i);
    expect(html).toContain('<div id="root"></div>');
    expect(html).toContain('YogaGraphiQL.renderYogaGraphiQL');
    expect(Number(response.headers['content-length'])).toBe(response.body.length);

    const etag = response.headers.etag ?? '';
    expect(etag).toMatch(/^"[\w-]+"$/); // strong: no W/ prefix

    const csp = response.headers['content-security-policy'] ?? '';
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).toContain('worker-src blob:');
    expect(csp).toMatch(/script-src 'sha256-[\w+/=]+'/);
    expect(csp).not.toMatch(/https?:/);

    const revalidated = await rawGet(server.graphqlUrl, { accept: BROWSER_ACCEPT, 'if-none-match': etag });
    expect(revalidated.status).toBe(304);
    expect(revalidated.body.length).toBe(0);
    expect(revalidated.headers.etag).toBe(etag);

    const changed = await rawGet(server.graphqlUrl, { accept: BROWSER_ACCEPT, 'if-none-match': '"something-else"' });
    expect(changed.status).toBe(200);
    expect(changed.body.equals(response.body)).toBe(true);
  });

  it('gzips the page for clients that accept gzip, as its own representation', async () => {
    const plain = await rawGet(server.graphqlUrl, { accept: BROWSER_ACCEPT });
    const gzipped = await rawGet(server.graphqlUrl, { accept: BROWSER_ACCEPT, 'accept-encoding': 'gzip, deflate, br' });
    expect(gzipped.status).toBe(200);
    expect(gzipped.headers['content-encoding']).toBe('gzip');
    expect(gzipped.body.length).toBeLessThan(plain.body.length / 2);
    expect(gunzipSync(gzipped.body).equals(plain.body)).toBe(true);
    expect(gzipped.headers.etag).not.toBe(plain.headers.etag);

    const revalidated = await rawGet(server.graphqlUrl, {
      accept: BROWSER_ACCEPT,
      'accept-encoding': 'gzip',
      'if-none-match': gzipped.headers.etag ?? '',
    });
    expect(revalidated.status).toBe(304);

    const refused = await rawGet(server.graphqlUrl, { accept: BROWSER_ACCEPT, 'accept-encoding': 'gzip;q=0' });
    expect(refused.headers['content-encoding']).toBeUndefined();
  });

  it('loads nothing from another host: no http(s) URL in any src, href, url() or @import', async () => {
    const html = (await rawGet(server.graphqlUrl, { accept: BROWSER_ACCEPT })).body.toString('utf8');
    // Markup attributes that make a browser fetch (script src, link href, img src, ...).
    const attributes = [...html.matchAll(/\b(?:src|href|srcset|poster|data)\s*=\s*["']?\s*(https?:)?\/\//gi)];
    expect(attributes.map((match) => match[0])).toEqual([]);
    // CSS fetches: url(...) and @import (fonts, images, style sheets).
    const cssUrls = [...html.matchAll(/url\(\s*["']?\s*(https?:)?\/\//gi)].map((match) => match[0]);
    expect(cssUrls).toEqual([]);
    expect(html).not.toMatch(/@import\s+(url\()?\s*["']?\s*(https?:)?\/\//i);
    // Worker scripts and module loads from elsewhere.
    expect(html).not.toMatch(/importScripts\(\s*["'`]\s*(https?:)?\/\//);
    expect(html).not.toMatch(/\bimport\(\s*["'`]\s*(https?:)?\/\//);
    // And the known CDNs are absent altogether.
    expect(html).not.toMatch(/unpkg\.com|jsdelivr\.net|cdnjs|fonts\.googleapis|fonts\.gstatic|embeddable-sandbox/);
  });

  it('opens with the headers editor prefilled with the Authorization header and an example query', async () => {
    const html = (await rawGet(server.graphqlUrl, { accept: BROWSER_ACCEPT })).body.toString('utf8');
    const options = /renderYogaGraphiQL\(\s*window\.document\.querySelector\('#root'\),\s*(\{.*\}),\s*\)/s.exec(html);
    expect(options).not.toBeNull();
    const parsed = JSON.parse(options?.[1] ?? '{}') as Record<string, unknown>;
    expect(JSON.parse(String(parsed.headers))).toEqual({ Authorization: 'Bearer pgk_...' });
    expect(parsed.defaultEditorToolsVisibility).toBe('headers');
    expect(parsed.isHeadersEditorEnabled).toBe(true);
    // Relative, so that the IDE posts to the URL it was loaded from, behind a path prefix too.
    expect(parsed.endpoint).toBe('graphql');
    expect(String(parsed.defaultQuery)).toMatch(/people\(first: 3\) \{\s+totalCount\s+nodes \{\s+email\s+firstName/);
  });

  it('leaves API requests to Apollo: JSON GETs, POSTs, and HEAD/other paths are unchanged', async () => {
    const url = `${server.graphqlUrl}?query=${encodeURIComponent('{ people(first: 1) { totalCount } }')}`;
    const get = await rawGet(url, {
      accept: 'application/json',
      authorization: `Bearer ${server.adminToken}`,
      'apollo-require-preflight': 'true',
    });
    expect(get.status).toBe(200);
    expect(get.headers['content-type']).toMatch(/^application\/json/);
    expect(JSON.parse(get.body.toString('utf8'))).toEqual({ data: { people: { totalCount: 0 } } });

    const post = await server.gql('{ people(first: 1) { totalCount } }');
    expect(post.status).toBe(200);
    expect(post.body.data).toEqual({ people: { totalCount: 0 } });

    // The page needs no token, but its queries do.
    const anonymous = await server.gql('{ people(first: 1) { totalCount } }', undefined, null);
    expect(anonymous.status).toBe(401);
  });

  it.each([
    'text/html;q=0, application/json',
    'application/graphql-response+json, application/json, text/html;q=0.1',
    'application/json, text/html',
    '*/*',
  ])('a GET whose Accept (%s) does not prefer HTML gets GraphQL, not the page', async (accept) => {
    const url = `${server.graphqlUrl}?query=${encodeURIComponent('{ people(first: 1) { totalCount } }')}`;
    const response = await rawGet(url, {
      accept,
      authorization: `Bearer ${server.adminToken}`,
      'apollo-require-preflight': 'true',
    });
    expect(response.status).toBe(200);
    expect(response.headers['content-type']).toMatch(/^application\/(graphql-response\+)?json/);
    expect(JSON.parse(response.body.toString('utf8'))).toEqual({ data: { people: { totalCount: 0 } } });
  });
});

describe('GRAPHQL_IDE and GRAPHQL_INTROSPECTION', () => {
  it('GRAPHQL_IDE=false: a browser GET gets no IDE and no 500', async () => {
    await withServer({ GRAPHQL_IDE: 'false' }, async (server) => {
      expect(await isIdePage(server)).toBe(false);
      const response = await rawGet(server.graphqlUrl, { accept: BROWSER_ACCEPT });
      expect(response.status).toBe(400);
      // Told that the IDE is off, not accused of cross-site request forgery.
      expect(JSON.parse(response.body.toString('utf8'))).toEqual({
        errors: [
          {
            message:
              'The browser IDE is off on this server (GRAPHQL_IDE); send GraphQL requests as POST with Content-Type: application/json',
            extensions: { code: 'BAD_REQUEST' },
          },
        ],
      });
    });
  });

  it('production: no IDE and no introspection by default', async () => {
    await withServer({ NODE_ENV: 'production' }, async (server) => {
      expect(server.app.config.production).toBe(true);
      expect(await isIdePage(server)).toBe(false);
      const introspection = await server.gql(INTROSPECTION);
      expect(introspection.status).toBe(400);
      expect(introspection.body.errors).toEqual([
        {
          message:
            'Introspection is turned off on this server (GRAPHQL_INTROSPECTION): the query contained __schema or __type',
          locations: [{ line: 1, column: 3 }],
          extensions: { code: 'GRAPHQL_VALIDATION_FAILED', validationErrorCode: 'INTROSPECTION_DISABLED' },
        },
      ]);
      // Ordinary queries still work.
      const people = await server.gql('{ people(first: 1) { totalCount } }');
      expect(people.status).toBe(200);
    });
  });

  it('production with GRAPHQL_IDE=true and GRAPHQL_INTROSPECTION=true: both on', async () => {
    await withServer({ NODE_ENV: 'production', GRAPHQL_IDE: 'true', GRAPHQL_INTROSPECTION: 'true' }, async (server) => {
      expect(await isIdePage(server)).toBe(true);
      const introspection = await server.gql(INTROSPECTION);
      expect(introspection.status).toBe(200);
      const types = (introspection.body.data?.__schema as { types: { name: string }[] }).types.map((t) => t.name);
      expect(types).toContain('Person');
    });
  });

  it('production with GRAPHQL_IDE=true only: the page, but introspection stays off', async () => {
    await withServer({ NODE_ENV: 'production', GRAPHQL_IDE: 'true' }, async (server) => {
      expect(await isIdePage(server)).toBe(true);
      const introspection = await server.gql(INTROSPECTION);
      expect(introspection.status).toBe(400);
      expect(introspection.body.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
    });
  });

  it('outside production with GRAPHQL_INTROSPECTION=false: introspection off, IDE still served', async () => {
    await withServer({ GRAPHQL_INTROSPECTION: 'false' }, async (server) => {
      expect(await isIdePage(server)).toBe(true);
      const introspection = await server.gql(INTROSPECTION);
      expect(introspection.status).toBe(400);
      expect(introspection.body.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
    });
  });
});

/** The little of the DOM that editorText uses (the tests compile without the DOM library). */
interface DomNode {
  textContent: string | null;
  getAttribute(name: string): string | null;
  querySelectorAll(selector: string): ArrayLike<DomNode>;
}

/** The text of a Monaco editor, line by line in display order (Monaco positions lines absolutely). */
async function editorText(page: Page, editorSelector: string): Promise<string> {
  return page.locator(`${editorSelector} .view-lines`).evaluate((element: DomNode) =>
    Array.from(element.querySelectorAll('.view-line'), (line) => ({
      top: Number(/top:\s*([\d.]+)px/.exec(line.getAttribute('style') ?? '')?.[1] ?? 0),
      text: (line.textContent ?? '').replace(/\u00a0/g, ' '),
    }))
      .sort((a, b) => a.top - b.top)
      .map((line) => line.text)
      .join('\n'),
  );
}

/** Replaces the whole content of a Monaco editor as a user would: focus, select all, type. */
async function replaceEditorText(page: Page, editorSelector: string, text: string): Promise<void> {
  await page.locator(`${editorSelector} .view-lines`).click();
  await page.keyboard.press('ControlOrMeta+A');
  await page.keyboard.press('Delete');
  // One line through insertText arrives as one input event: the editor auto-closes no bracket or quote
  // (it does for typed keys and for text with line breaks, so callers pass one line).
  await page.keyboard.insertText(text);
}

/**
 * A reverse proxy that publishes the service under `/people/`: `/people/graphql` here is
 * `/graphql` there, and any other path is the proxy's own 404.
 */
async function startPrefixProxy(target: string): Promise<{ url: string; close: () => Promise<void> }> {
  const proxy: Server = http.createServer((request, response) => {
    const url = request.url ?? '/';
    if (!url.startsWith('/people/')) {
      response.writeHead(404, { 'content-type': 'text/plain' }).end(`proxy: no route ${url}`);
      return;
    }
    const upstream = http.request(
      new URL(url.slice('/people'.length), target),
      { method: request.method, headers: request.headers },
      (answer) => {
        response.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(response);
      },
    );
    request.pipe(upstream);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const { port } = proxy.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve) => {
        proxy.closeAllConnections();
        proxy.close(() => resolve());
      }),
  };
}

const QUERY_EDITOR = '.graphiql-query-editor .monaco-editor';
const HEADERS_EDITOR = '.monaco-editor[data-uri$="headers.json"]';
const RESPONSE_EDITOR = '.graphiql-response .monaco-editor';

describe.skipIf(!hasChromium)('the GraphiQL IDE in headless Chromium', () => {
  const people = [
    { email: 'grace.hopper@example.com', firstName: 'Grace', lastName: 'Hopper', team: 'Compilers' },
    { email: 'alan.turing@example.com', firstName: 'Alan', lastName: 'Turing', team: 'Foundations' },
    { email: 'edsger.dijkstra@example.com', firstName: 'Edsger', lastName: 'Dijkstra', team: 'Algorithms' },
    { email: 'ada.lovelace@example.com', firstName: 'Ada', lastName: 'Lovelace', team: 'Engines' },
    { email: 'barbara.liskov@example.com', firstName: 'Barbara', lastName: 'Liskov', team: 'Abstractions' },
  ];
  const firstThreeByEmail = people
    .map((person) => person.email)
    .sort()
    .slice(0, 3);

  let database: TestDatabase;
  let server: TestServer;
  let browser: Browser;

  beforeAll(async () => {
    database = await sqliteTarget.create();
    server = await startServer(database.url);
    for (const person of people) {
      const created = await server.gql(
        'mutation Create($input: CreatePersonInput!) { createPerson(input: $input) { email } }',
        { input: person },
      );
      expect(created.body.errors).toBeUndefined();
    }
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-quic',
        '--no-first-run',
        '--disable-component-update',
        '--disable-sync',
        // No internet for the page: every host name but the test server's fails to resolve.
        '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
      ],
    });
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await database?.drop();
  });

  it('sets the Authorization header, loads the schema docs, runs a query and shows the result, offline', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    const requests: string[] = [];
    const problems: string[] = [];
    page.on('request', (request) => requests.push(request.url()));
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error' && /Content Security Policy|Refused to/i.test(message.text())) {
        problems.push(`console: ${message.text()}`);
      }
    });

    await page.goto(server.graphqlUrl);

    // The page opens with the example query and the headers editor showing the Authorization placeholder.
    await expect.poll(() => editorText(page, QUERY_EDITOR)).toContain('people(first: 3)');
    await expect.poll(() => editorText(page, HEADERS_EDITOR)).toContain('"Authorization": "Bearer pgk_..."');

    await replaceEditorText(page, HEADERS_EDITOR, JSON.stringify({ Authorization: `Bearer ${server.adminToken}` }));
    await expect
      .poll(async () => JSON.parse(await editorText(page, HEADERS_EDITOR)) as unknown)
      .toEqual({ Authorization: `Bearer ${server.adminToken}` });

    // The schema (introspection) loads with the token: re-fetch it, then browse the docs to Query.people.
    const introspected = page.waitForResponse(
      (response) => response.url() === server.graphqlUrl && /__schema/.test(response.request().postData() ?? ''),
    );
    await page.getByRole('button', { name: /Re-fetch GraphQL schema/ }).click();
    expect((await introspected).status()).toBe(200);
    await page.getByRole('button', { name: 'Show Documentation Explorer' }).click();
    const docs = page.locator('.graphiql-doc-explorer');
    await docs.getByText('Query', { exact: true }).first().click();
    await expect.poll(() => docs.innerText()).toMatch(/\bpeople\b[\s\S]*\bperson\b/);
    await expect.poll(() => docs.innerText()).toContain('PersonConnection');
    // Closed again so the result pane is wide enough not to wrap lines (the test reads its text).
    await page.getByRole('button', { name: 'Hide Documentation Explorer' }).click();

    const query = '{ people(first: 3) { nodes { email } } }';
    await replaceEditorText(page, QUERY_EDITOR, query);
    await expect.poll(() => editorText(page, QUERY_EDITOR)).toBe(query);
    // Prettify lays out the query (and the headers) on several lines; the content stays the same.
    await page.getByRole('button', { name: /Prettify query/ }).click();
    await expect
      .poll(async () => (await editorText(page, QUERY_EDITOR)).trimEnd())
      .toBe('{\n  people(first: 3) {\n    nodes {\n      email\n    }\n  }\n}');
    expect(JSON.parse(await editorText(page, HEADERS_EDITOR))).toEqual({
      Authorization: `Bearer ${server.adminToken}`,
    });

    const answered = page.waitForResponse(
      (response) => response.url() === server.graphqlUrl && (response.request().postData() ?? '').includes('people'),
    );
    await page.getByRole('button', { name: /Execute query/ }).click();
    const answer = await answered;
    expect(answer.status()).toBe(200);
    expect(answer.request().headers().authorization).toBe(`Bearer ${server.adminToken}`);

    // The result pane shows exactly the first three people in email order.
    const expected = { data: { people: { nodes: firstThreeByEmail.map((email) => ({ email })) } } };
    await expect
      .poll(async () => JSON.parse((await editorText(page, RESPONSE_EDITOR)) || 'null') as unknown)
      .toEqual(expected);
    const shown = (await editorText(page, RESPONSE_EDITOR)).match(/[\w.]+@example\.com/g);
    expect(shown).toEqual(firstThreeByEmail);

    // Scroll the headers editor back to its start, so the screenshot shows the header's name.
    await page.locator(`${HEADERS_EDITOR} .view-lines`).click();
    await page.keyboard.press('ControlOrMeta+Home');
    mkdirSync(ARTIFACTS, { recursive: true });
    const screenshot = await page.screenshot({ path: path.join(ARTIFACTS, 'graphiql.png') });
    expect(screenshot.length).toBeGreaterThan(10_000);
    if (process.env.UPDATE_DOCS_SCREENSHOT) await page.screenshot({ path: DOCS_SCREENSHOT });

    // Every request went to this server (or stayed in the page: blob: workers, data: fonts and icons).
    const origin = new URL(server.url).origin;
    expect(requests.some((url) => url === server.graphqlUrl)).toBe(true);
    const elsewhere = requests.filter((url) => !/^(blob|data):/.test(url) && new URL(url).origin !== origin);
    expect(elsewhere).toEqual([]);
    expect(problems).toEqual([]);
    await context.close();
  }, 120_000);

  it('works behind a reverse proxy that publishes it under a path prefix: it posts where it was loaded from', async () => {
    const proxy = await startPrefixProxy(server.url);
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      const pageUrl = `${proxy.url}/people/graphql`;
      // On load the IDE fetches the schema; with the placeholder token the service answers 401.
      const introspected = page.waitForResponse((response) => response.request().method() === 'POST');
      await page.goto(pageUrl);
      const answer = await introspected;
      expect([answer.url(), answer.status()]).toEqual([pageUrl, 401]);
      expect(await answer.json()).toMatchObject({ errors: [{ extensions: { code: 'UNAUTHENTICATED' } }] });
    } finally {
      await context.close();
      await proxy.close();
    }
  }, 60_000);
});
