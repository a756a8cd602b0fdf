import type { IncomingMessage, ServerResponse } from 'node:http';
import { HeaderMap, type ApolloServer, type BaseContext } from '@apollo/server';
import Negotiator from 'negotiator';
import type { Logger } from 'pino';
import { errorBody, timeoutMessage } from '../errors';
import { OperationBudget } from '../operation-budget';
import { BodyTooLargeError, MalformedBodyError, readBody } from './body';

/** The methods /graphql answers: GET and POST (GraphQL), HEAD (the IDE page, or GET without a body), OPTIONS. */
const ALLOW = 'GET, POST, HEAD, OPTIONS';
/** The only request body type: JSON (GraphQL over HTTP). */
const JSON_CONTENT_TYPE = /^\s*application\/(graphql-response\+)?json\s*(;|$)/i;
/** Request bodies are read as UTF-8, which GraphQL over HTTP requires servers to take. */
const CHARSET = /;\s*charset\s*=\s*"?([^";\s]*)/i;
const UTF8 = /^utf-?8$/i;
/** The charset a Content-Type names, when it is not UTF-8. */
function otherCharset(contentType: string): string | undefined {
  const charset = CHARSET.exec(contentType)?.[1];
  return charset === undefined || UTF8.test(charset) ? undefined : charset;
}
/** Request bodies are read as sent: no Content-Encoding, or `identity`. */
const IDENTITY_ENCODING = /^\s*identity\s*$/i;
const isEncoded = (contentEncoding: string | undefined) =>
  contentEncoding !== undefined && !IDENTITY_ENCODING.test(contentEncoding);

function headerMapOf(request: IncomingMessage): HeaderMap {
  const headers = new HeaderMap();
  for (const [name, value] of Object.entries(request.headers)) {
    if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(', ') : value);
  }
  return headers;
}

const JSON_RESPONSE = 'application/json; charset=utf-8';
const GRAPHQL_RESPONSE = 'application/graphql-response+json; charset=utf-8';

/**
 * The media type Apollo answers a request with (GraphQL over HTTP): application/json unless the
 * client prefers application/graphql-response+json. The errors this handler answers itself follow
 * it, so that a client sees one media type whoever refused its request.
 */
function negotiatedContentType(request: IncomingMessage): string {
  const { accept } = request.headers;
  if (!accept) return JSON_RESPONSE;
  const preferred = new Negotiator({ headers: { accept } }).mediaType([JSON_RESPONSE, GRAPHQL_RESPONSE]);
  return preferred === GRAPHQL_RESPONSE ? GRAPHQL_RESPONSE : JSON_RESPONSE;
}

function sendError(
  response: ServerResponse,
  status: number,
  code: string,
  message: string,
  headers: Record<string, string> = {},
): void {
  response.writeHead(status, { ...headers, 'content-type': negotiatedContentType(response.req) });
  response.end(errorBody(code, message));
}

/**
 * Refuses what is not a GraphQL request before anything is read: methods other than GET, POST,
 * HEAD and OPTIONS (405), and POST bodies that are not JSON (415; form posts and text/plain are
 * also how cross-site requests arrive, so they never reach the server at all), in a charset other
 * than UTF-8, or compressed (415). Returns true when it answered. The unread body is thrown away
 * once the answer is sent (app.ts does it for every early answer), so the connection can be reused.
 */
function refuseProtocol(request: IncomingMessage, response: ServerResponse): boolean {
  const method = request.method ?? 'GET';
  const charset = method === 'POST' ? otherCharset(request.headers['content-type'] ?? '') : undefined;
  if (method === 'OPTIONS') {
    response.writeHead(204, { allow: ALLOW });
    response.end();
  } else if (method !== 'GET' && method !== 'HEAD' && method !== 'POST') {
    sendError(
      response,
      405,
      'BAD_REQUEST',
      `Method ${method} is not allowed on /graphql: use POST (or GET for queries)`,
      {
        allow: ALLOW,
      },
    );
  } else if (method === 'POST' && !JSON_CONTENT_TYPE.test(request.headers['content-type'] ?? '')) {
    const given = request.headers['content-type'];
    const problem = given ? `Unsupported Content-Type "${given.slice(0, 100)}"` : 'No Content-Type';
    sendError(response, 415, 'BAD_REQUEST', `${problem}: POST requests to /graphql must be application/json`);
  } else if (charset !== undefined) {
    // Decoded as UTF-8, a body in another charset would only fail later as "not JSON", or worse,
    // be stored with its characters mangled.
    sendError(
      response,
      415,
      'BAD_REQUEST',
      `Unsupported charset "${charset.slice(0, 100)}": send the request body as UTF-8`,
    );
  } else if (method === 'POST' && isEncoded(request.headers['content-encoding'])) {
    // Read as it is, a compressed body would only fail later as "not valid UTF-8" or "not JSON".
    const given = (request.headers['content-encoding'] ?? '').slice(0, 100);
    sendError(
      response,
      415,
      'BAD_REQUEST',
      `Unsupported Content-Encoding "${given}": send the request body uncompressed`,
    );
  } else {
    return false;
  }
  return true;
}

async function parseBody(request: IncomingMessage, bodyLimitBytes: number): Promise<unknown> {
  if (request.method !== 'POST') return undefined;
  const text = await readBody(request, bodyLimitBytes);
  try {
    return JSON.parse(text);
  } catch {
    throw new MalformedBodyError('The request body is not valid JSON');
  }
}

// GraphQL over HTTP: an empty operationName is the same as none. Apollo would look for an
// operation named "" and refuse the request, so an empty one is dropped from the query string
// and from the body.
const EMPTY_OPERATION_NAME = /[?&]operationName=(&|$)/;

function searchWithoutEmptyOperationName(search: string): string {
  if (!EMPTY_OPERATION_NAME.test(search)) return search;
  const params = new URLSearchParams(search);
  params.delete('operationName', '');
  return `?${params.toString()}`;
}

function bodyWithoutEmptyOperationName(body: unknown): unknown {
  if (typeof body !== 'object' || body === null || (body as { operationName?: unknown }).operationName !== '') {
    return body;
  }
  const { operationName: _empty, ...rest } = body as Record<string, unknown>;
  return rest;
}

/**
 * A small node:http integration for Apollo Server: refuses what is not a GraphQL request, reads and
 * parses the body within its limit, then lets Apollo answer within the operation's time budget.
 * `buildContext` runs inside Apollo so its coded errors keep their status; it receives the budget,
 * which the database work of the operation checks.
 */
export async function handleGraphQL<TContext extends BaseContext>(
  apollo: ApolloServer<TContext>,
  request: IncomingMessage,
  response: ServerResponse,
  options: {
    bodyLimitBytes: number;
    operationTimeoutMs: number;
    /** The request's logger, made on first use (most requests log nothing). */
    requestLogger: () => Logger;
    buildContext: (budget: OperationBudget) => Promise<TContext>;
  },
): Promise<void> {
  // Answers carry a token's data (or say whether a token works): no cache may keep them, the
  // browser's own included, which `Authorization` alone does not keep out. (Apollo would send
  // this from its cache-control plugin, which the service turns off.) Only GET answers can be
  // stored at all: a POST's never is without explicit freshness.
  if (request.method === 'GET' || request.method === 'HEAD') response.setHeader('cache-control', 'no-store');
  if (refuseProtocol(request, response)) return;
  let body: unknown;
  try {
    body = await parseBody(request, options.bodyLimitBytes);
  } catch (error) {
    if (error instanceof BodyTooLargeError) {
      return sendError(response, 413, 'PAYLOAD_TOO_LARGE', `The request body is over ${options.bodyLimitBytes} bytes`);
    }
    if (error instanceof MalformedBodyError) return sendError(response, 400, 'BAD_REQUEST', error.message);
    // The client went away in the middle of its body: nobody is left to answer, and it is no
    // failure of the service (the request is logged as aborted when its connection closes).
    if (request.destroyed) return;
    throw error;
  }
  if (Array.isArray(body)) {
    return sendError(
      response,
      400,
      'BAD_REQUEST',
      'Batched requests (a JSON array) are not supported: send one operation per request',
    );
  }

  const target = request.url ?? '/';
  const queryStart = target.indexOf('?');
  const search = queryStart === -1 ? '' : target.slice(queryStart);
  const { operationTimeoutMs } = options;
  const budget = new OperationBudget(operationTimeoutMs);
  let timedOut = false;
  budget.onExpired(() => {
    // Nothing of the operation committed, and nothing will: its remaining database work refuses
    // to start (see OperationBudget). The client is answered now; the operation's eventual outcome
    // is nobody's any more.
    timedOut = true;
    options.requestLogger().warn({ operationTimeoutMs }, 'operation ran past its time budget');
    const retryAfter = String(Math.max(1, Math.ceil(operationTimeoutMs / 1000)));
    sendError(response, 503, 'TIMEOUT', timeoutMessage(operationTimeoutMs), { 'retry-after': retryAfter });
  });
  let result;
  try {
    result = await apollo.executeHTTPGraphQLRequest({
      httpGraphQLRequest: {
        // HEAD is GET without the response body (node leaves the body out).
        method: request.method === 'HEAD' ? 'GET' : (request.method ?? 'GET'),
        headers: headerMapOf(request),
        search: searchWithoutEmptyOperationName(search),
        body: bodyWithoutEmptyOperationName(body),
      },
      context: () => options.buildContext(budget),
    });
  } catch (error) {
    // Apollo answers failures itself; should it still fail after TIMEOUT was answered, nobody is
    // left to tell.
    if (timedOut) return;
    throw error;
  } finally {
    budget.dispose();
  }
  if (timedOut) return;

  for (const [name, value] of result.headers) response.setHeader(name, value);
  response.statusCode = result.status ?? 200;
  if (result.body.kind === 'complete') {
    response.end(result.body.string);
    return;
  }
  for await (const chunk of result.body.asyncIterator) response.write(chunk);
  response.end();
}
