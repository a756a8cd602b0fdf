import { GraphQLError, type GraphQLFormattedError } from 'graphql';
import { ApolloServerErrorCode, unwrapResolverError } from '@apollo/server/errors';
import type { Logger } from 'pino';
import type { ApolloServerPlugin, GraphQLRequestListener } from '@apollo/server';

/** The error catalogue: each client-visible code with the HTTP status it carries. */
export const ErrorCode = {
  BAD_USER_INPUT: 'BAD_USER_INPUT',
  UNAUTHENTICATED: 'UNAUTHENTICATED',
  FORBIDDEN: 'FORBIDDEN',
  NOT_FOUND: 'NOT_FOUND',
  CONFLICT: 'CONFLICT',
  PAYLOAD_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  RATE_LIMITED: 'RATE_LIMITED',
  INTERNAL_SERVER_ERROR: 'INTERNAL_SERVER_ERROR',
  SERVICE_UNAVAILABLE: 'SERVICE_UNAVAILABLE',
  /** The operation ran past OPERATION_TIMEOUT_MS and was cancelled (503 + Retry-After). */
  TIMEOUT: 'TIMEOUT',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Codes Apollo itself produces for malformed requests; they are safe to show as they are. */
const APOLLO_REQUEST_CODES = new Set([
  'GRAPHQL_PARSE_FAILED',
  'GRAPHQL_VALIDATION_FAILED',
  'BAD_REQUEST',
  'PERSISTED_QUERY_NOT_FOUND',
  'PERSISTED_QUERY_NOT_SUPPORTED',
  'OPERATION_RESOLUTION_FAILURE',
]);
const CLIENT_VISIBLE_CODES = new Set<string>([...Object.values(ErrorCode), ...APOLLO_REQUEST_CODES]);
/** Apollo's refusal of introspection, which names its own option rather than this service's. */
const APOLLO_NO_INTROSPECTION = /^GraphQL introspection is not allowed by Apollo Server\b.*/;
const NO_INTROSPECTION =
  'Introspection is turned off on this server (GRAPHQL_INTROSPECTION): the query contained __schema or __type';
/** Apollo codes the catalogue does not list, answered with the catalogue's code for that fault. */
const CATALOGUE_CODES = new Map([['OPERATION_RESOLUTION_FAILURE', 'BAD_REQUEST']]);

export const INTERNAL_ERROR_MESSAGE = 'Internal server error';
export const WWW_AUTHENTICATE_REALM = 'Bearer realm="people"';

function codedError(
  code: ErrorCode,
  message: string,
  http?: { status: number; headers?: Map<string, string> },
  extra: Record<string, unknown> = {},
): GraphQLError {
  return new GraphQLError(message, { extensions: { code, ...extra, ...(http ? { http } : {}) } });
}

export const badUserInput = (message: string, field?: string) =>
  codedError(ErrorCode.BAD_USER_INPUT, message, undefined, field ? { field } : {});

export const notFound = (message = 'Person not found') => codedError(ErrorCode.NOT_FOUND, message);

export const conflict = (message: string) => codedError(ErrorCode.CONFLICT, message);

export const unauthenticated = (message: string, tokenWasSent: boolean) =>
  codedError(ErrorCode.UNAUTHENTICATED, message, {
    status: 401,
    headers: new Map([
      ['www-authenticate', tokenWasSent ? `${WWW_AUTHENTICATE_REALM}, error="invalid_token"` : WWW_AUTHENTICATE_REALM],
    ]),
  });

export const forbidden = (message: string) => codedError(ErrorCode.FORBIDDEN, message, { status: 403 });

/** Over the token's rate: 429 with Retry-After in whole seconds (see src/http/rate-limit.ts). */
export const rateLimited = (message: string, retryAfterSeconds: number) =>
  codedError(ErrorCode.RATE_LIMITED, message, {
    status: 429,
    headers: new Map([['retry-after', String(retryAfterSeconds)]]),
  });

/** A field not run because its operation's time budget ran out (see OperationBudget). */
export const timeoutError = (budgetMs: number) =>
  codedError(ErrorCode.TIMEOUT, `Not run: the operation ran past its time budget of ${budgetMs} ms`);

/** The message of the request-level TIMEOUT answer: nothing of the operation was committed. */
export const timeoutMessage = (budgetMs: number) =>
  `The operation ran past its time budget of ${budgetMs} ms and was cancelled; nothing was changed`;

/** An operation type the schema has none of (a subscription): the request's fault, whatever the token. */
export const unsupportedOperation = (type: string) =>
  new GraphQLError(`This service has no ${type} operations: send a query or a mutation`, {
    extensions: { code: ApolloServerErrorCode.BAD_REQUEST, http: { status: 400 } },
  });

/** The database could not be reached; `cause` (the driver's error) is logged, not shown to the client. */
export const serviceUnavailable = (cause?: unknown) =>
  new GraphQLError('Service temporarily unavailable', {
    originalError: cause instanceof Error ? cause : undefined,
    extensions: { code: ErrorCode.SERVICE_UNAVAILABLE, http: { status: 503 } },
  });

/** A body for errors answered outside GraphQL execution (body too large, unknown route, ...). */
export function errorBody(code: string, message: string): string {
  return JSON.stringify({ errors: [{ message, extensions: { code } }] });
}

interface DriverError {
  code?: string;
  errno?: number;
  message?: string;
  driverError?: DriverError;
}

function driverErrorOf(error: unknown): DriverError | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const candidate = error as DriverError;
  return candidate.driverError ?? candidate;
}

/** The database's own unique violation: SQLite's constraint error or PostgreSQL's 23505. */
export function isUniqueViolation(error: unknown): boolean {
  const driverError = driverErrorOf(error);
  if (!driverError) return false;
  if (driverError.code === '23505') return true;
  return driverError.code === 'SQLITE_CONSTRAINT' && /UNIQUE constraint failed/.test(driverError.message ?? '');
}

const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EHOSTUNREACH',
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now
  '08000',
  '08003',
  '08006',
  '53300', // too_many_connections
  'ENETUNREACH',
  'EAI_AGAIN',
  '08001', // sqlclient_unable_to_establish_sqlconnection
  '08004', // sqlserver_rejected_establishment_of_sqlconnection
  // read_only_sql_transaction: a standby or a demoted primary, which takes no writes until the
  // service reaches the new primary; not a fault of the request.
  '25006',
]);

/** PostgreSQL cancelled a statement that ran past `statement_timeout` (the time budget). */
export function isStatementTimeout(error: unknown): boolean {
  const driverError = driverErrorOf(error);
  return driverError?.code === '57014' && /statement timeout/i.test(driverError.message ?? '');
}

/**
 * How an outage is logged: the driver's code and message, without a stack trace. An outage is
 * an expected condition, logged once per failed request, and a stack would say nothing more.
 */
export function outageOf(error: unknown): { code?: string; message: string } {
  const driverError = driverErrorOf(error);
  return {
    ...(driverError?.code ? { code: driverError.code } : {}),
    message: driverError?.message ?? String(error),
  };
}

/**
 * No pooled connection came free within the connect timeout: every one of the replica's
 * connections is busy (a burst, or statements held up by a lock). The database itself answers.
 */
function isPoolExhausted(error: unknown): boolean {
  return driverErrorOf(error)?.message === 'timeout exceeded when trying to connect';
}

/** Logs why a request got SERVICE_UNAVAILABLE: an outage, or (a warning) a busy replica. */
function logUnavailable(logger: Logger, cause: unknown): void {
  if (isPoolExhausted(cause)) {
    logger.warn({ dbError: outageOf(cause) }, 'no database connection came free in time: the pool is exhausted');
  } else {
    logger.error({ dbError: outageOf(cause) }, 'database unavailable');
  }
}

/** The database is down or unreachable, as opposed to refusing one statement. */
export function isDatabaseUnavailable(error: unknown): boolean {
  const driverError = driverErrorOf(error);
  if (!driverError) return false;
  if (driverError.code && UNAVAILABLE_CODES.has(driverError.code)) return true;
  // "Query read timeout": no answer within the query timeout (DATABASE_QUERY_TIMEOUT_MS).
  return /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error|Query read timeout/i.test(
    driverError.message ?? '',
  );
}

function codeOf(error: unknown): string | undefined {
  if (error instanceof GraphQLError) {
    const code = error.extensions?.code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}

/** What the request errors plugin needs of a request's context. */
export interface ErrorLoggingContext {
  /** The request's logger (made on first use): its lines carry the request id. */
  requestLogger: () => Logger;
}

/**
 * The logger of the request each error arose in. Apollo calls formatError without the request, so
 * this is how the lines formatError logs get the request id that the client was sent.
 */
const requestLoggers = new WeakMap<object, () => Logger>();

/** Ties an error to the request it arose in: formatError logs it with that request's id. */
export function attributeError(error: unknown, requestLogger: () => Logger): void {
  if (typeof error === 'object' && error !== null) requestLoggers.set(error, requestLogger);
}

/**
 * The logger of the error's request, made only when a line is logged (most errors are the
 * client's and log nothing); Apollo may have wrapped the error that was attributed.
 */
function loggerOf(error: unknown, fallback: Logger): () => Logger {
  const attributed = (candidate: unknown) =>
    typeof candidate === 'object' && candidate !== null ? requestLoggers.get(candidate) : undefined;
  const wrapped = error instanceof GraphQLError ? error.originalError : undefined;
  return attributed(error) ?? attributed(wrapped) ?? (() => fallback);
}

/**
 * Apollo's formatError: coded errors pass through, a database outage becomes SERVICE_UNAVAILABLE,
 * and anything else is logged in full and shown only as "Internal server error". Lines are logged
 * with the request's id when the error was attributed to its request (see attributeError).
 */
export function createFormatError(serviceLogger: Logger, includeStacktrace: boolean) {
  return (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
    const logger = loggerOf(error, serviceLogger);
    const original = unwrapResolverError(error);
    const code = codeOf(original) ?? (formatted.extensions?.code as string | undefined);
    const location = { path: formatted.path, locations: formatted.locations };

    if (code && code !== ErrorCode.INTERNAL_SERVER_ERROR && CLIENT_VISIBLE_CODES.has(code)) {
      const extensions: Record<string, unknown> = { ...formatted.extensions, code: CATALOGUE_CODES.get(code) ?? code };
      if (!includeStacktrace) delete extensions.stacktrace;
      // Apollo prefixes errors thrown while building the context; the client needs only ours.
      const message = formatted.message
        .replace(/^Context creation failed: /, '')
        .replace(APOLLO_NO_INTROSPECTION, NO_INTROSPECTION);
      if (code === ErrorCode.SERVICE_UNAVAILABLE) {
        logUnavailable(logger(), original instanceof GraphQLError ? original.originalError : original);
      }
      return { ...formatted, message, extensions };
    }
    if (isStatementTimeout(original)) {
      logger().warn({ err: original }, 'statement cancelled by statement_timeout');
      return {
        message: 'Not run: the operation ran past its time budget',
        ...location,
        extensions: { code: ErrorCode.TIMEOUT },
      };
    }
    if (isDatabaseUnavailable(original)) {
      logUnavailable(logger(), original);
      return {
        message: 'Service temporarily unavailable',
        ...location,
        extensions: { code: ErrorCode.SERVICE_UNAVAILABLE },
      };
    }
    // GraphQL itself refusing the request outside any field (an operation type the schema does not
    // have, a persisted-query hash that does not match its query): the request's fault. A failure
    // of the service always carries the error it wraps, or the path of the field that failed.
    if (error instanceof GraphQLError && !error.originalError && !error.path) {
      return { message: formatted.message, locations: formatted.locations, extensions: { code: 'BAD_REQUEST' } };
    }
    logger().error({ err: original }, 'unexpected error');
    return { message: INTERNAL_ERROR_MESSAGE, ...location, extensions: { code: ErrorCode.INTERNAL_SERVER_ERROR } };
  };
}

const requestErrors: GraphQLRequestListener<ErrorLoggingContext> = {
  async didEncounterErrors({ errors, contextValue }) {
    for (const error of errors) attributeError(error, contextValue.requestLogger);
  },
  async willSendResponse({ errors, response }) {
    if (!errors?.some((error) => isDatabaseUnavailable(unwrapResolverError(error)))) return;
    // Data, even partial, goes out with 200 and the field errors, as GraphQL over HTTP requires
    // (a client would drop the body of a 503, and with it what did succeed).
    if (response.body.kind === 'single' && response.body.singleResult.data == null) response.http.status = 503;
  },
};

/**
 * Ties every error of an operation to its request, for formatError's log lines, and makes a
 * database outage that left the operation without data a 503.
 */
export const requestErrorsPlugin: ApolloServerPlugin<ErrorLoggingContext> = {
  // The listener keeps no state of its own, so all requests share one.
  requestDidStart: async () => requestErrors,
};
