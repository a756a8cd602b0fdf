import type { IncomingMessage, ServerResponse } from 'node:http';
import { HeaderMap, type ApolloServer, type BaseContext } from '@apollo/server';
import { errorBody } from '../errors';
import { BodyTooLargeError, MalformedBodyError, readBody } from './body';

function headerMapOf(request: IncomingMessage): HeaderMap {
  const headers = new HeaderMap();
  for (const [name, value] of Object.entries(request.headers)) {
    if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(', ') : value);
  }
  return headers;
}

function sendError(response: ServerResponse, status: number, code: string, message: string): void {
  response.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
  response.end(errorBody(code, message));
}

async function parseBody(request: IncomingMessage, bodyLimitBytes: number): Promise<unknown> {
  if (request.method !== 'POST') return undefined;
  const text = await readBody(request, bodyLimitBytes);
  const contentType = request.headers['content-type'] ?? '';
  if (!/^application\/(graphql-response\+)?json\b/i.test(contentType)) return text;
  try {
    return JSON.parse(text);
  } catch {
    throw new MalformedBodyError('The request body is not valid JSON');
  }
}

/**
 * A small node:http integration for Apollo Server: reads and parses the body within its limit,
 * then lets Apollo answer. `buildContext` runs inside Apollo so its coded errors keep their status.
 */
export async function handleGraphQL<TContext extends BaseContext>(
  apollo: ApolloServer<TContext>,
  request: IncomingMessage,
  response: ServerResponse,
  options: { bodyLimitBytes: number; buildContext: () => Promise<TContext> },
): Promise<void> {
  let body: unknown;
  try {
    body = await parseBody(request, options.bodyLimitBytes);
  } catch (error) {
    if (error instanceof BodyTooLargeError) {
      response.setHeader('connection', 'close');
      return sendError(response, 413, 'PAYLOAD_TOO_LARGE', `The request body is over ${options.bodyLimitBytes} bytes`);
    }
    if (error instanceof MalformedBodyError) return sendError(response, 400, 'BAD_REQUEST', error.message);
    throw error;
  }

  const url = new URL(request.url ?? '/', 'http://localhost');
  const result = await apollo.executeHTTPGraphQLRequest({
    httpGraphQLRequest: {
      method: request.method ?? 'GET',
      headers: headerMapOf(request),
      search: url.search,
      body,
    },
    context: options.buildContext,
  });

  for (const [name, value] of result.headers) response.setHeader(name, value);
  response.statusCode = result.status ?? 200;
  if (result.body.kind === 'complete') {
    response.end(result.body.string);
    return;
  }
  for await (const chunk of result.body.asyncIterator) response.write(chunk);
  response.end();
}
