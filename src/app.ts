import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { ApolloServer } from '@apollo/server';
import {
  ApolloServerPluginCacheControlDisabled,
  ApolloServerPluginInlineTraceDisabled,
  ApolloServerPluginLandingPageDisabled,
} from '@apollo/server/plugin/disabled';

import type { DestinationStream, Logger } from 'pino';
import { authenticateRequest, scopePlugin } from './auth/context';
import { looksLikeToken, mayHoldToken } from './auth/token-format';
import { TokenService, type TokenIdentity } from './auth/token.service';
import { ConfigError, type Config } from './config';
import { Database } from './db/database';
import {
  attributeError,
  createFormatError,
  errorBody,
  isDatabaseUnavailable,
  outageOf,
  requestErrorsPlugin,
} from './errors';
import { jitExecution } from './graphql-executor';
import { discardBody, isDiscardingBody } from './http/body';
import { answerClientError } from './http/client-errors';
import { allowCrossOrigin } from './http/cors';
import { isBrowserNavigation, loadGraphiQLPage } from './http/graphiql';
import { handleGraphQL } from './http/graphql-handler';
import { createRateLimiter, enforceRateLimit } from './http/rate-limit';
import { createLogger } from './logger';
import { hideSuggestionsPlugin, operationLimits } from './operation-limits';
import { PersonLoaders } from './people/person.loaders';
import type { PeopleContext } from './people/person.resolver';
import { PersonService } from './people/person.service';
import { buildPeopleSchema } from './schema';

export interface App {
  readonly config: Config;
  readonly logger: Logger;
  readonly database: Database;
  readonly tokens: TokenService;
  readonly people: PersonService;
  readonly server: http.Server;
  /** Starts listening; resolves to the base URL, e.g. http://127.0.0.1:4000. */
  listen(): Promise<string>;
  /** Stops accepting connections, lets in-flight requests finish, then closes the database. */
  close(): Promise<void>;
}

/**
 * How long idle keep-alive connections stay open once shutdown starts (at most
 * SHUTDOWN_TIMEOUT_MS): long enough for a request a client sent right after its last answer to
 * arrive and be answered, rather than be reset with the connection.
 */
const IDLE_GRACE_MS = 250;

const REQUEST_ID_PATTERN = /^[\w.:-]{1,64}$/;

/**
 * The request's path as logged: without the query string, and with every segment that holds a
 * token (sent there by mistake, say `/graphql/${token}`) replaced by `[redacted]`.
 */
function loggedPath(request: IncomingMessage): string {
  const path = (request.url ?? '').split('?')[0];
  if (!mayHoldToken(path)) return path;
  return path
    .split('/')
    .map((segment) => (mayHoldToken(segment) ? '[redacted]' : segment))
    .join('/');
}

/**
 * A response's 'prefinish' listener (one function for all, so nothing is made per request). A
 * request answered before its body was read (a refusal, /healthz, a 404, a GET with a body) has
 * the rest thrown away within its limit, and is not answered again. On 'prefinish', before Node's
 * own 'finish' handler would discard the body unseen and unbounded.
 */
function discardUnreadBody(this: ServerResponse): void {
  if (!this.req.complete) discardBody(this.req);
}

function sendJson(response: ServerResponse, status: number, body: string): void {
  response.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
  response.end(body);
}

/** A listen failure the configuration explains is told as such, naming PORT or HOST. */
function listenError(error: NodeJS.ErrnoException, config: Config): Error {
  const where = `PORT ${config.port} on HOST ${config.host}`;
  const reasons: Record<string, string> = {
    EADDRINUSE: `${where} is already in use`,
    EACCES: `${where} needs privileges this process does not have`,
    EADDRNOTAVAIL: `HOST ${config.host} is not an address of this machine`,
    ENOTFOUND: `HOST ${config.host} does not resolve`,
  };
  const reason = error.code === undefined ? undefined : reasons[error.code];
  return reason ? new ConfigError(`Invalid configuration: ${reason}`) : error;
}

/** Builds the whole service (database, schema, Apollo, HTTP routes) without listening. */
export async function createApp(config: Config, options: { logDestination?: DestinationStream } = {}): Promise<App> {
  const logger = createLogger(config, options.logDestination);
  // On PostgreSQL the server itself also cancels any statement that outlives an operation's budget,
  // or the client's wait for it: a statement the client gave up on would otherwise hold its
  // server session (and locks) after the client dropped the connection and opened another.
  const database = await Database.open(config.databaseUrl, {
    statementTimeoutMs: Math.min(config.operationTimeoutMs, config.databaseQueryTimeoutMs),
    queryTimeoutMs: config.databaseQueryTimeoutMs,
    poolSize: config.databasePoolSize,
    migrationEvents: {
      onLockWait: () => logger.info('waiting for another process to finish migrating the database'),
      onApplied: (names) => {
        if (names.length > 0) logger.info({ migrations: names }, 'applied database migrations');
      },
    },
  });
  const tokens = new TokenService(database, { cacheTtlMs: config.tokenCacheTtlMs });
  const people = new PersonService(database, config.maxPageSize);
  // Token buckets per API token: in memory, or shared through Redis when REDIS_URL is set.
  const rateLimiter = await createRateLimiter(config.rateLimit, logger);

  const limits = operationLimits(config.limits, config.maxPageSize);
  const jit = jitExecution(await buildPeopleSchema());
  const apollo = new ApolloServer<PeopleContext>({
    gateway: jit.gateway,
    parseOptions: limits.parseOptions,
    validationRules: limits.validationRules,
    introspection: config.introspection,
    includeStacktraceInErrorResponses: config.stacktraces,
    formatError: createFormatError(logger, config.stacktraces),
    logger,
    nodeEnv: config.production ? 'production' : 'development',
    // main.ts owns SIGTERM/SIGINT: it drains the HTTP server first and stops Apollo last. Apollo's
    // own handlers would stop it at once and fail every request still in flight with a 500.
    stopOnTerminationSignals: false,
    plugins: [
      // The cache-control plugin wraps every field resolver; this service sets no cache hints.
      ApolloServerPluginCacheControlDisabled(),
      ApolloServerPluginLandingPageDisabled(),
      // Federated tracing is for Apollo's hosted reporting, which this service does not use.
      ApolloServerPluginInlineTraceDisabled(),
      // Runs operations on graphql-jit (see jitExecution). First: Apollo asks the plugins for a
      // response one after the other, and this is the one that answers.
      jit.plugin,
      scopePlugin,
      requestErrorsPlugin,
      // "Did you mean ...?" reveals the schema: hidden in production or without introspection.
      ...(config.production || !config.introspection ? [hideSuggestionsPlugin] : []),
    ],
  });
  await apollo.start();
  // The browser IDE (GraphiQL, self-contained): rendered once, only when enabled.
  const ide = config.ide ? await loadGraphiQLPage() : undefined;

  let closing = false;
  /** Responses not yet finished: those still unsent when shutdown starts get `Connection: close`. */
  const inFlight = new Set<ServerResponse>();

  async function route(
    request: IncomingMessage,
    response: ServerResponse,
    requestLogger: () => Logger,
    identify: (identity: TokenIdentity) => void,
  ): Promise<void> {
    const path = (request.url ?? '/').split('?')[0];
    if (path === '/healthz') return sendJson(response, 200, '{"status":"ok"}');
    if (path === '/readyz') {
      try {
        await database.ping();
        return sendJson(response, 200, '{"status":"ready"}');
      } catch (error) {
        const cause = isDatabaseUnavailable(error) ? { dbError: outageOf(error) } : { err: error };
        requestLogger().warn(cause, 'readiness check failed');
        return sendJson(response, 503, errorBody('SERVICE_UNAVAILABLE', 'Database unavailable'));
      }
    }
    if (path === '/graphql') {
      allowCrossOrigin(request, response, config.corsOrigins);
      if (isBrowserNavigation(request)) {
        if (ide) return ide.serve(request, response);
        // Without this, a browser would be shown Apollo's CSRF refusal, which explains nothing.
        return sendJson(
          response,
          400,
          errorBody(
            'BAD_REQUEST',
            'The browser IDE is off on this server (GRAPHQL_IDE); send GraphQL requests as POST with Content-Type: application/json',
          ),
        );
      }
      return handleGraphQL(apollo, request, response, {
        bodyLimitBytes: config.bodyLimitBytes,
        operationTimeoutMs: config.operationTimeoutMs,
        requestLogger,
        buildContext: async (budget) => {
          let identity;
          try {
            identity = await authenticateRequest(tokens, request.headersDistinct.authorization);
            identify(identity);
            // Every operation of an authenticated token is charged; unauthenticated ones got 401 above.
            await enforceRateLimit(rateLimiter, config.rateLimit, identity.id);
          } catch (error) {
            // Apollo's plugins never see a failed context: its error is tied to the request here.
            attributeError(error, requestLogger);
            throw error;
          }
          return {
            identity,
            requestLogger,
            people,
            personLoaders: new PersonLoaders(people, budget),
            budget,
          };
        },
      });
    }
    return sendJson(response, 404, errorBody('NOT_FOUND', `No route ${path}; GraphQL is served at /graphql`));
  }

  const server = http.createServer(
    {
      requestTimeout: config.requestTimeoutMs,
      headersTimeout: Math.min(config.requestTimeoutMs, 60_000),
      // Node checks the timeouts above on this period, not with a timer per request.
      connectionsCheckingInterval: Math.min(config.requestTimeoutMs / 4, 30_000),
    },
    (request, response) => {
      const started = process.hrtime.bigint();
      const given = request.headers['x-request-id'];
      // A plain id is kept; anything else (and a token sent by mistake) is replaced, never logged.
      const requestId =
        typeof given === 'string' && REQUEST_ID_PATTERN.test(given) && !looksLikeToken(given) ? given : randomUUID();
      // Most requests log nothing: their child logger is made on first use.
      let child: Logger | undefined;
      // Once authenticated, the request's lines name its token (id and name, never the secret),
      // so that an operator can tell which client sent what.
      let tokenFields: { tokenId: string; tokenName: string } | undefined;
      const requestLogger = () => (child ??= logger.child({ reqId: requestId, ...tokenFields }));
      const identify = (identity: TokenIdentity) => {
        tokenFields = { tokenId: identity.id, tokenName: identity.name };
        child = child?.child(tokenFields);
      };
      response.setHeader('x-request-id', requestId);
      if (closing) response.setHeader('connection', 'close');
      inFlight.add(response);
      // The access log line (info): not even listened for when the level leaves it out.
      if (logger.isLevelEnabled('info')) {
        response.on('finish', () => {
          requestLogger().info(
            {
              method: request.method,
              path: loggedPath(request),
              status: response.statusCode,
              ms: Number(process.hrtime.bigint() - started) / 1e6,
            },
            'request',
          );
        });
      }
      // A request whose connection closed before its response was sent (client gone, or the drain
      // timed out): logged, so that no accepted request disappears without a trace.
      response.on('close', () => {
        inFlight.delete(response);
        if (!response.writableFinished) {
          requestLogger().warn(
            { method: request.method, path: loggedPath(request) },
            'request aborted: the connection closed before the response was sent',
          );
        }
      });
      response.on('prefinish', discardUnreadBody);
      route(request, response, requestLogger, identify).catch((error: unknown) => {
        requestLogger().error({ err: error }, 'request failed');
        if (!response.headersSent) sendJson(response, 500, errorBody('INTERNAL_SERVER_ERROR', 'Internal server error'));
        else response.destroy();
      });
    },
  );

  server.on('clientError', (error: NodeJS.ErrnoException, socket) =>
    answerClientError(error, socket, {
      requestTimeoutMs: config.requestTimeoutMs,
      responseStarted:
        isDiscardingBody(socket) ||
        [...inFlight].some((response) => response.socket === socket && response.headersSent),
    }),
  );

  return {
    config,
    logger,
    database,
    tokens,
    people,
    server,
    listen: () =>
      new Promise((resolve, reject) => {
        server.once('error', (error: NodeJS.ErrnoException) => reject(listenError(error, config)));
        server.listen(config.port, config.host, () => {
          const { port } = server.address() as AddressInfo;
          const host = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host;
          // An IPv6 address is bracketed in a URL.
          resolve(`http://${host.includes(':') ? `[${host}]` : host}:${port}`);
        });
      }),
    close: async () => {
      closing = true;
      // Requests already read are answered, on connections that then close rather than idle.
      for (const response of inFlight) if (!response.headersSent) response.setHeader('connection', 'close');
      // Stop listening, but leave idle keep-alive connections open for IDLE_GRACE_MS: a request
      // arriving on one meanwhile is answered (with `Connection: close`). http.Server's close()
      // would close them at once, hence net.Server's own; the http one runs when the grace ends.
      const drained = new Promise<void>((resolve) => net.Server.prototype.close.call(server, () => resolve()));
      // Unref'd and left to run: once the grace is over, it also stops Node's timeout checks.
      setTimeout(() => server.close(), Math.min(IDLE_GRACE_MS, config.shutdownTimeoutMs)).unref();
      const forceClose = setTimeout(() => {
        logger.warn(
          { shutdownTimeoutMs: config.shutdownTimeoutMs },
          'drain timeout: closing the remaining connections',
        );
        server.closeAllConnections();
      }, config.shutdownTimeoutMs);
      await drained;
      clearTimeout(forceClose);
      await apollo.stop();
      await rateLimiter.close();
      await database.close();
    },
  };
}
