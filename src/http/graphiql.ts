import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import Negotiator from 'negotiator';

/**
 * The browser IDE: a GraphiQL page served on GET /graphql to browsers (Accept: text/html).
 * `@graphql-yoga/render-graphiql` inlines every script, style, font and web worker into one HTML
 * document, so the page works with no internet. It is rendered, hashed and gzipped once per process
 * and then served from memory with a strong ETag.
 */

/** The subset of @graphql-yoga/render-graphiql's options this service sets. */
interface GraphiQLRenderOptions {
  title: string;
  endpoint: string;
  defaultQuery: string;
  headers: string;
  defaultEditorToolsVisibility: 'headers';
  isHeadersEditorEnabled: boolean;
  shouldPersistHeaders: boolean;
}

const IDE_EXAMPLE_QUERY = `# People Graph
# 1. Headers tab (below): replace pgk_...
#    with a token. To make one:
#    npm run token -- create --name me
#      --scopes people:read
# 2. The circular arrows (bottom left)
#    load the schema docs and
#    autocompletion.
# 3. Ctrl-Enter (or the pink button) runs
#    this query.
{
  people(first: 3) {
    totalCount
    nodes {
      email
      firstName
      lastName
      team
    }
  }
}
`;

const IDE_HEADERS_PLACEHOLDER = JSON.stringify({ Authorization: 'Bearer pgk_...' }, null, 2);

const RENDER_OPTIONS: GraphiQLRenderOptions = {
  title: 'People Graph',
  // Relative to the page: behind a reverse proxy that publishes the service under a path prefix
  // (/people/graphql), the IDE posts to where it was loaded from, not to the host's /graphql.
  endpoint: 'graphql',
  defaultQuery: IDE_EXAMPLE_QUERY,
  headers: IDE_HEADERS_PLACEHOLDER,
  defaultEditorToolsVisibility: 'headers',
  isHeadersEditorEnabled: true,
  // A bearer token in localStorage outlives the tab; the user pastes it again after a reload.
  shouldPersistHeaders: false,
};

interface Representation {
  body: Buffer;
  etag: string;
}

/**
 * True for a browser navigation: a GET or HEAD whose Accept header prefers HTML to GraphQL's JSON
 * (q-values honoured: `text/html;q=0`, or HTML ranked below JSON, is an API client's request).
 */
export function isBrowserNavigation(request: IncomingMessage): boolean {
  const { accept } = request.headers;
  if ((request.method !== 'GET' && request.method !== 'HEAD') || !accept) return false;
  const preferred = new Negotiator({ headers: { accept } }).mediaType([
    'application/json',
    'application/graphql-response+json',
    'text/html',
  ]);
  return preferred === 'text/html';
}

export interface GraphiQLPage {
  /** Answers with the page (200), or 304 when the client's If-None-Match matches. */
  serve(request: IncomingMessage, response: ServerResponse): void;
}

function sha256(data: string | Buffer, encoding: 'base64' | 'base64url'): string {
  return createHash('sha256').update(data).digest(encoding);
}

/**
 * Inline scripts and same-origin fetches only; the editor's web workers are blob: URLs the page
 * creates itself, and its fonts and icons are data: URLs. Nothing may be loaded from another host.
 */
function contentSecurityPolicy(html: string): string {
  const scriptHashes: string[] = [];
  for (const match of html.matchAll(/<script>([\s\S]*?)<\/script>/g)) {
    scriptHashes.push(`'sha256-${sha256(match[1], 'base64')}'`);
  }
  return [
    "default-src 'none'",
    `script-src ${scriptHashes.join(' ')}`,
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "font-src 'self' data:",
    "connect-src 'self'",
    'worker-src blob:',
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/** Whether the client takes `coding` (RFC 9110 Accept-Encoding: a listed coding or `*`, q > 0). */
function acceptsEncoding(header: string | undefined, coding: string): boolean {
  if (!header) return false;
  let wildcard = false;
  for (const part of header.split(',')) {
    const [name, ...parameters] = part.trim().toLowerCase().split(';');
    const q = parameters.map((p) => p.trim()).find((p) => p.startsWith('q='));
    const allowed = q === undefined || Number(q.slice(2)) > 0;
    if (name === coding) return allowed;
    if (name === '*') wildcard = allowed;
  }
  return wildcard;
}

/** If-None-Match uses the weak comparison: `W/"x"` matches `"x"`. */
function matchesIfNoneMatch(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  if (header.trim() === '*') return true;
  return header.split(',').some((tag) => tag.trim().replace(/^W\//, '') === etag);
}

async function renderPage(): Promise<GraphiQLPage> {
  // Loaded only when the IDE is enabled: the module is a 9 MB bundle. The specifier is not a literal
  // so that TypeScript does not load the package's typings: they import graphql-yoga's, which
  // augment graphql's GraphQLErrorExtensions in a way that conflicts with Apollo's `http` extension.
  const specifier: string = '@graphql-yoga/render-graphiql';
  const { renderGraphiQL } = (await import(specifier)) as {
    renderGraphiQL: (options: GraphiQLRenderOptions) => string;
  };
  const html = renderGraphiQL(RENDER_OPTIONS);
  const identity = Buffer.from(html, 'utf8');
  const hash = sha256(identity, 'base64url').slice(0, 27);
  const plain: Representation = { body: identity, etag: `"${hash}"` };
  // A strong ETag names one representation, so the gzipped bytes get their own.
  const gzipped: Representation = { body: await promisify(gzip)(identity), etag: `"${hash}-gzip"` };
  // Sent with 200 and 304 alike (RFC 9110 15.4.5); the same URL answers JSON to API clients.
  const cacheHeaders = { 'cache-control': 'no-cache', vary: 'Accept, Accept-Encoding' };
  // CORS may already vary the answer by Origin (allowCrossOrigin): that stays in the list.
  const varyOf = (response: ServerResponse) => {
    const earlier = response.getHeader('vary');
    return earlier === undefined ? cacheHeaders.vary : `${String(earlier)}, ${cacheHeaders.vary}`;
  };
  const pageHeaders = {
    ...cacheHeaders,
    'content-type': 'text/html; charset=utf-8',
    'content-security-policy': contentSecurityPolicy(html),
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
  };

  return {
    serve: (request, response) => {
      const useGzip = acceptsEncoding(request.headers['accept-encoding'], 'gzip');
      const chosen = useGzip ? gzipped : plain;
      if (matchesIfNoneMatch(request.headers['if-none-match'], chosen.etag)) {
        response.writeHead(304, { ...cacheHeaders, vary: varyOf(response), etag: chosen.etag });
        response.end();
        return;
      }
      response.writeHead(200, {
        ...pageHeaders,
        vary: varyOf(response),
        etag: chosen.etag,
        ...(useGzip ? { 'content-encoding': 'gzip' } : {}),
        'content-length': chosen.body.length,
      });
      if (request.method === 'HEAD') response.end();
      else response.end(chosen.body);
    },
  };
}

let page: Promise<GraphiQLPage> | undefined;

/** Renders the page on the first call; later calls (more apps in one process) share it. */
export function loadGraphiQLPage(): Promise<GraphiQLPage> {
  page ??= renderPage().catch((error: unknown) => {
    page = undefined;
    throw error;
  });
  return page;
}
