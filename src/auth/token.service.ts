import { randomUUID } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { Database } from '../db/database';
import { isUniqueViolation } from '../errors';
import { ApiToken } from './token.entity';
import { generateToken, hashesEqual, hashToken, isWellFormedToken, looksLikeToken, TOKEN_PREFIX } from './token-format';
import { isScope, SCOPES, type Scope } from './scopes';

export interface TokenIdentity {
  id: string;
  name: string;
  scopes: readonly Scope[];
}

export interface CreatedToken extends TokenIdentity {
  token: string;
  expiresAt: string | null;
}

export type Authentication =
  { ok: true; identity: TokenIdentity } | { ok: false; reason: 'malformed' | 'unknown' | 'expired' | 'revoked' };

export class TokenError extends Error {}

const TOKEN_BY_HASH = `SELECT id, name, token_hash AS "tokenHash", scopes, expires_at AS "expiresAt",
  revoked_at AS "revokedAt", last_used_at AS "lastUsedAt" FROM api_token WHERE token_hash = $1`;

const UUID_SHAPE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Recording every use would turn each read into a write; once a minute is precise enough. */
const LAST_USED_RESOLUTION_MS = 60_000;

/** Enough for every token a deployment uses at once; the least recently used go first. */
const MAX_CACHED_TOKENS = 10_000;

export interface TokenServiceOptions {
  /**
   * How long a token looked up in the database is trusted without looking again (0: never). A
   * revocation made elsewhere (the CLI, another replica) takes effect within this time; one made
   * through this service, at once. Expiry is always checked against the clock.
   */
  cacheTtlMs?: number;
  now?: () => Date;
}

/** A verified token, with what every request needs of it worked out once. */
interface VerifiedToken {
  record: ApiToken;
  fetchedAt: number;
  expiresAtMs: number | null;
  lastUsedMs: number | null;
  /** The answer for a valid use: shared by every request of the token, so frozen. */
  accepted: Authentication;
}

function verified(record: ApiToken, fetchedAt: number): VerifiedToken {
  const identity: TokenIdentity = Object.freeze({
    id: record.id,
    name: record.name,
    scopes: Object.freeze(record.scopes.split(',').filter(isScope)),
  });
  return {
    record,
    fetchedAt,
    expiresAtMs: record.expiresAt ? Date.parse(record.expiresAt) : null,
    lastUsedMs: record.lastUsedAt ? Date.parse(record.lastUsedAt) : null,
    accepted: Object.freeze({ ok: true, identity }),
  };
}

export function parseScopes(list: string): Scope[] {
  const scopes = list
    .split(',')
    .map((scope) => scope.trim())
    .filter(Boolean);
  if (scopes.length === 0) throw new TokenError(`At least one scope is needed (${SCOPES.join(', ')})`);
  for (const scope of scopes) {
    if (!isScope(scope)) {
      // A token value is a secret: never echoed, even when given where a scope belongs.
      const shown = looksLikeToken(scope) ? 'that looks like a token value' : `"${scope}"`;
      throw new TokenError(`Unknown scope ${shown}; scopes are ${SCOPES.join(', ')}`);
    }
  }
  return [...new Set(scopes)] as Scope[];
}

export class TokenService {
  private readonly now: () => Date;
  private readonly cacheTtlMs: number;
  /** Keyed by the token's SHA-256, so that no token value is kept in memory. */
  private readonly cache = new LRUCache<string, VerifiedToken>({ max: MAX_CACHED_TOKENS });

  constructor(
    private readonly database: Database,
    options: TokenServiceOptions = {},
  ) {
    this.now = options.now ?? (() => new Date());
    this.cacheTtlMs = options.cacheTtlMs ?? 0;
  }

  private get repository() {
    return this.database.manager.getRepository(ApiToken);
  }

  async create(name: string, scopes: Scope[], expiresAt: Date | null = null): Promise<CreatedToken> {
    // Refused, never trimmed: a name is stored as given or not at all.
    if (!/^[\w.:@-]{1,100}$/.test(name)) {
      throw new TokenError('A token name is 1-100 letters, digits or . _ : @ - (no spaces)');
    }
    // `revoke` takes a name or an id: a name shaped like an id could mean another token.
    if (UUID_SHAPE.test(name)) throw new TokenError('A token name may not look like a token id (a UUID)');
    // Names are listed and logged; one that holds a token value would put the secret there.
    if (looksLikeToken(name))
      throw new TokenError(`A token name may not contain "${TOKEN_PREFIX}": it would look like a token`);
    const token = generateToken();
    const record: ApiToken = {
      id: randomUUID(),
      name,
      tokenHash: hashToken(token),
      scopes: scopes.join(','),
      createdAt: this.now().toISOString(),
      expiresAt: expiresAt?.toISOString() ?? null,
      revokedAt: null,
      lastUsedAt: null,
    };
    try {
      await this.database.write((sql) =>
        sql.run(
          `INSERT INTO api_token (id, name, token_hash, scopes, created_at, expires_at, revoked_at, last_used_at)
           VALUES ($1, $2, $3, $4, $5, $6, NULL, NULL)`,
          [record.id, record.name, record.tokenHash, record.scopes, record.createdAt, record.expiresAt],
        ),
      );
    } catch (error) {
      if (isUniqueViolation(error)) throw new TokenError(`A token named "${name}" already exists`);
      throw error;
    }
    return { id: record.id, name: record.name, token, scopes, expiresAt: record.expiresAt };
  }

  list(): Promise<ApiToken[]> {
    return this.repository.find({ order: { createdAt: 'ASC' } });
  }

  async count(): Promise<number> {
    return this.repository.count();
  }

  /** Revokes by id or by name; revoking twice keeps the first revocation time. */
  async revoke(idOrName: string): Promise<ApiToken> {
    const token = await this.repository.findOne({ where: [{ id: idOrName }, { name: idOrName }] });
    if (!token) {
      // A token's value is a secret: never echoed, even when given where a name belongs.
      if (looksLikeToken(idOrName)) {
        throw new TokenError(
          'No token with that id or name: it looks like a token value; revoke by name or id ("list")',
        );
      }
      throw new TokenError(`No token with id or name "${idOrName}"`);
    }
    if (!token.revokedAt) {
      const revokedAt = this.now().toISOString();
      await this.database.write((sql) =>
        sql.run('UPDATE api_token SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL', [revokedAt, token.id]),
      );
      token.revokedAt = revokedAt;
    }
    for (const [hash, cached] of this.cache.entries()) {
      if (cached.record.id === token.id) this.cache.delete(hash);
    }
    return token;
  }

  async authenticate(presented: string): Promise<Authentication> {
    const presentedHash = hashToken(presented);
    const now = this.now().getTime();
    let token = this.fromCache(presentedHash, now);
    if (!token) {
      // Garbage and typos are refused by their shape and checksum, without a database lookup.
      if (!isWellFormedToken(presented)) return { ok: false, reason: 'malformed' };
      token = await this.lookUp(presentedHash, now);
      if (!token) return { ok: false, reason: 'unknown' };
    }
    if (token.record.revokedAt) return { ok: false, reason: 'revoked' };
    if (token.expiresAtMs !== null && token.expiresAtMs <= now) return { ok: false, reason: 'expired' };
    this.recordUse(token, now);
    return token.accepted;
  }

  private fromCache(hash: string, now: number): VerifiedToken | undefined {
    const cached = this.cache.get(hash);
    if (cached && now - cached.fetchedAt < this.cacheTtlMs) return cached;
    return undefined;
  }

  /** Unknown tokens are not cached: a token created elsewhere must work at once. */
  private async lookUp(hash: string, now: number): Promise<VerifiedToken | undefined> {
    const [record] = await this.database.sql.all<ApiToken>(TOKEN_BY_HASH, [hash]);
    if (!record || !hashesEqual(record.tokenHash, hash)) return undefined;
    const token = verified(record, now);
    if (this.cacheTtlMs > 0) this.cache.set(hash, token);
    return token;
  }

  private recordUse(token: VerifiedToken, now: number): void {
    if (token.lastUsedMs !== null && now - token.lastUsedMs < LAST_USED_RESOLUTION_MS) return;
    // The cached token remembers it too, so that the next minute of requests does not write.
    token.lastUsedMs = now;
    const lastUsedAt = new Date(now).toISOString();
    const { id } = token.record;
    // Not awaited: the request should not wait for bookkeeping, and a failure here is harmless.
    this.database
      .write((sql) => sql.run('UPDATE api_token SET last_used_at = $1 WHERE id = $2', [lastUsedAt, id]))
      .catch(() => undefined);
  }
}

/** `90d`, `12h`, `30m` from now; `never` for no expiry. */
export function parseExpiry(value: string, now = new Date()): Date | null {
  if (value === 'never') return null;
  const match = /^(\d{1,6})([dhm])$/.exec(value);
  if (!match) throw new TokenError(`Cannot read expiry "${value}"; use e.g. 90d, 12h, 30m or never`);
  // A token dead on arrival is a typo, not a wish.
  if (Number(match[1]) === 0) throw new TokenError(`Expiry "${value}" is no time at all; use at least 1m, or never`);
  const unitMs = { d: 86_400_000, h: 3_600_000, m: 60_000 }[match[2] as 'd' | 'h' | 'm'];
  return new Date(now.getTime() + Number(match[1]) * unitMs);
}
