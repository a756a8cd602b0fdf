import type { ApolloServerPlugin, GraphQLRequestListener } from '@apollo/server';
import { OperationTypeNode } from 'graphql';
import {
  forbidden,
  isDatabaseUnavailable,
  serviceUnavailable,
  unauthenticated,
  unsupportedOperation,
  type ErrorLoggingContext,
} from '../errors';
import { grants, requiredScope } from './scopes';
import type { TokenIdentity, TokenService } from './token.service';

export interface RequestContext extends ErrorLoggingContext {
  identity: TokenIdentity;
}

const FAILURE_MESSAGES = {
  malformed: 'Invalid token',
  unknown: 'Invalid token',
  expired: 'Token expired',
  revoked: 'Token revoked',
} as const;

/**
 * Resolves the Bearer token of a request (the values of its Authorization headers) to its
 * identity, or throws a coded 401.
 */
export async function authenticateRequest(
  tokens: TokenService,
  authorizations: readonly string[] | undefined,
): Promise<TokenIdentity> {
  const [authorization] = authorizations ?? [];
  if (!authorization) throw unauthenticated('Authentication required: send "Authorization: Bearer <token>"', false);
  // Node keeps only the first of several; a proxy that added its own would then disagree with the
  // service about which token the request carries.
  if (authorizations && authorizations.length > 1)
    throw unauthenticated('Send one Authorization header, not several', true);
  const match = /^Bearer +(\S+) *$/i.exec(authorization);
  if (!match) throw unauthenticated('Malformed Authorization header; expected "Bearer <token>"', true);
  let result;
  try {
    result = await tokens.authenticate(match[1]);
  } catch (error) {
    if (isDatabaseUnavailable(error)) throw serviceUnavailable(error);
    throw error;
  }
  if (!result.ok) throw unauthenticated(FAILURE_MESSAGES[result.reason], true);
  return result.identity;
}

const scopeCheck: GraphQLRequestListener<RequestContext> = {
  async didResolveOperation({ contextValue, operation, schema }) {
    const type = operation?.operation ?? OperationTypeNode.QUERY;
    if (!schema.getRootType(type)) throw unsupportedOperation(type);
    const needed = requiredScope(type);
    if (!grants(contextValue.identity.scopes, needed)) {
      throw forbidden(`This operation needs the "${needed}" scope`);
    }
  },
};

/**
 * Refuses a whole operation, before any resolver runs, when the token lacks its scope; one of a
 * type the schema has none of (a subscription) is a bad request for any token.
 */
export const scopePlugin: ApolloServerPlugin<RequestContext> = {
  // The listener keeps no state of its own, so all requests share one.
  requestDidStart: async () => scopeCheck,
};
