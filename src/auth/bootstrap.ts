import { TokenError, type CreatedToken, type TokenService } from './token.service';

export const BOOTSTRAP_TOKEN_NAME = 'bootstrap-admin';

/**
 * On an empty token table, creates one admin token so a new user can start at once. Returns
 * null when tokens already exist, or when another replica created it first.
 */
export async function createFirstAdminToken(tokens: TokenService): Promise<CreatedToken | null> {
  if ((await tokens.count()) > 0) return null;
  try {
    return await tokens.create(BOOTSTRAP_TOKEN_NAME, ['admin']);
  } catch (error) {
    if (error instanceof TokenError) return null;
    throw error;
  }
}
