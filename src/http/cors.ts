import type { IncomingMessage, ServerResponse } from 'node:http';

/** The origins whose pages may call the API from a browser (CORS_ORIGINS): a list, or any (`*`). */
export type CorsOrigins = readonly string[] | '*';

/** What a browser app sends besides the CORS-safelisted headers. */
const ALLOWED_HEADERS =
  'authorization, content-type, accept, apollo-require-preflight, x-apollo-operation-name, x-request-id, ' +
  // Apollo Client sends these when given a name and version.
  'apollographql-client-name, apollographql-client-version';
/** Response headers a page's script may read: the request id, and those of 401, 429 and 503. */
const EXPOSED_HEADERS = 'x-request-id, retry-after, www-authenticate';
/** How long a browser may reuse a preflight's answer (Chromium caps it at 2 hours). */
const PREFLIGHT_MAX_AGE_SECONDS = '600';

/**
 * Lets pages of the configured origins call /graphql from a browser. Only Bearer tokens
 * authenticate, never cookies, so no credentials are allowed: a page must hold a token to use the
 * API, and a foreign page cannot act with a visitor's. Origins not listed get no CORS headers, and
 * the browser keeps the answer from them. Requests are unchanged either way: CSRF prevention (JSON
 * POSTs, Apollo's preflight header on GET) still applies.
 */
export function allowCrossOrigin(request: IncomingMessage, response: ServerResponse, origins: CorsOrigins): void {
  if (origins !== '*' && origins.length === 0) return;
  // The answer depends on the Origin header whenever CORS is on, listed or not.
  response.setHeader('vary', 'origin');
  const { origin } = request.headers;
  // One origin only: Node joins repeated Origin headers with commas, which no origin contains.
  if (!origin || origin.includes(',') || (origins !== '*' && !origins.includes(origin))) return;
  response.setHeader('access-control-allow-origin', origin);
  if (request.method === 'OPTIONS' && request.headers['access-control-request-method']) {
    response.setHeader('access-control-allow-methods', 'GET, POST');
    response.setHeader('access-control-allow-headers', ALLOWED_HEADERS);
    response.setHeader('access-control-max-age', PREFLIGHT_MAX_AGE_SECONDS);
  } else {
    response.setHeader('access-control-expose-headers', EXPOSED_HEADERS);
  }
}
