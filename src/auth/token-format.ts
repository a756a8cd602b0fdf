import { hash, randomBytes, timingSafeEqual } from 'node:crypto';
import { crc32 } from 'node:zlib';

/**
 * Token format: `pgk_` + 32 base62 characters of randomness (190 bits) + 6 base62 characters of
 * CRC32 checksum. The prefix makes leaked tokens easy to find by secret scanners; the checksum
 * rejects typos and garbage without a database lookup.
 */
export const TOKEN_PREFIX = 'pgk_';
const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const BODY_LENGTH = 32;
const CHECKSUM_LENGTH = 6;
const TOKEN_PATTERN = new RegExp(`^${TOKEN_PREFIX}[0-9A-Za-z]{${BODY_LENGTH + CHECKSUM_LENGTH}}$`);

function toBase62(value: number, length: number): string {
  let out = '';
  let rest = value;
  for (let i = 0; i < length; i += 1) {
    out = BASE62[rest % 62] + out;
    rest = Math.floor(rest / 62);
  }
  return out;
}

function checksum(body: string): string {
  return toBase62(crc32(body), CHECKSUM_LENGTH);
}

function randomBody(): string {
  // Rejection sampling keeps every base62 character equally likely.
  let body = '';
  while (body.length < BODY_LENGTH) {
    for (const byte of randomBytes(BODY_LENGTH * 2)) {
      if (byte < 248 && body.length < BODY_LENGTH) body += BASE62[byte % 62];
    }
  }
  return body;
}

export function generateToken(): string {
  const body = randomBody();
  return `${TOKEN_PREFIX}${body}${checksum(body)}`;
}

/** True when the token has our shape and its checksum matches. */
export function isWellFormedToken(token: string): boolean {
  if (!TOKEN_PATTERN.test(token)) return false;
  const body = token.slice(TOKEN_PREFIX.length, TOKEN_PREFIX.length + BODY_LENGTH);
  return checksum(body) === token.slice(TOKEN_PREFIX.length + BODY_LENGTH);
}

/**
 * True for anything that carries the token prefix: such a value is never echoed in a message, a
 * log line or a header, since it may be a secret given where a name or an id belonged.
 */
export function looksLikeToken(value: string): boolean {
  return value.includes(TOKEN_PREFIX);
}

const PERCENT_ESCAPE = /%([0-9a-f]{2})/gi;
const TOKEN_PREFIX_ANY_CASE = new RegExp(TOKEN_PREFIX, 'i');

/**
 * Looser, for text that arrives encoded, such as a URL path: the prefix in any letter case, with
 * any of its characters percent-encoded (`%70gk_`, `pgk%5F`), even more than once (`%2570gk_`).
 */
export function mayHoldToken(text: string): boolean {
  let decoded = text;
  for (let round = 0; round < 3 && decoded.includes('%'); round += 1) {
    decoded = decoded.replace(PERCENT_ESCAPE, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
  }
  return TOKEN_PREFIX_ANY_CASE.test(decoded);
}

export function hashToken(token: string): string {
  return hash('sha256', token, 'hex');
}

/** Constant-time comparison of two hex digests. */
export function hashesEqual(a: string, b: string): boolean {
  const left = Buffer.from(a, 'hex');
  const right = Buffer.from(b, 'hex');
  return left.length === right.length && timingSafeEqual(left, right);
}
