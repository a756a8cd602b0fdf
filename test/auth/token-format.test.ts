import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { generateToken, hashesEqual, hashToken, isWellFormedToken, TOKEN_PREFIX } from '../../src/auth/token-format';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** The token with the character at `index` replaced by every other base62 character. */
function alterations(token: string, index: number): string[] {
  return [...BASE62]
    .filter((char) => char !== token[index])
    .map((char) => token.slice(0, index) + char + token.slice(index + 1));
}

describe('token format', () => {
  it('generates pgk_ followed by 38 base62 characters', () => {
    for (let i = 0; i < 50; i += 1) {
      const token = generateToken();
      expect(TOKEN_PREFIX).toBe('pgk_');
      expect(token).toMatch(/^pgk_[0-9A-Za-z]{38}$/);
      expect(token).toHaveLength(42);
    }
  });

  it('accepts every generated token as well formed', () => {
    for (let i = 0; i < 200; i += 1) expect(isWellFormedToken(generateToken())).toBe(true);
  });

  it('rejects a token with any single character of the body or checksum altered', () => {
    for (let round = 0; round < 3; round += 1) {
      const token = generateToken();
      const rejected: string[] = [];
      const accepted: string[] = [];
      for (let index = TOKEN_PREFIX.length; index < token.length; index += 1) {
        for (const altered of alterations(token, index)) {
          (isWellFormedToken(altered) ? accepted : rejected).push(altered);
        }
      }
      expect(accepted).toEqual([]);
      expect(rejected).toHaveLength(38 * 61);
    }
  });

  it('rejects an altered prefix, a changed case and a wrong length', () => {
    const token = generateToken();
    const body = token.slice(TOKEN_PREFIX.length);
    expect(isWellFormedToken(`pgx_${body}`)).toBe(false);
    expect(isWellFormedToken(`PGK_${body}`)).toBe(false);
    expect(isWellFormedToken(body)).toBe(false);
    expect(isWellFormedToken(token.slice(0, -1))).toBe(false);
    expect(isWellFormedToken(`${token}A`)).toBe(false);
    expect(isWellFormedToken(` ${token}`)).toBe(false);
    expect(isWellFormedToken(`${token}\n`)).toBe(false);
  });

  it.each([
    '',
    'pgk_',
    'garbage',
    'Bearer pgk_',
    `pgk_${'A'.repeat(38)}`,
    `pgk_${'0'.repeat(38)}`,
    `pgk_${'-'.repeat(38)}`,
    `pgk_${'é'.repeat(38)}`,
    'ghp_0123456789abcdefghijklmnopqrstuvwxyzAB',
  ])('rejects garbage %j', (garbage) => {
    expect(isWellFormedToken(garbage)).toBe(false);
  });

  it('hashes with SHA-256 as 64 lower-case hex characters', () => {
    const token = generateToken();
    const hash = hashToken(token);
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    expect(hash).toBe(createHash('sha256').update(token, 'utf8').digest('hex'));
    expect(hashToken('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(hashToken(generateToken())).not.toBe(hash);
  });

  it('compares hashes exactly', () => {
    const hash = hashToken(generateToken());
    expect(hashesEqual(hash, hash)).toBe(true);
    expect(hashesEqual(hash, hashToken(generateToken()))).toBe(false);
    expect(hashesEqual(hash, hash.slice(0, 62))).toBe(false);
  });

  it('generates distinct tokens', () => {
    const tokens = new Set(Array.from({ length: 10_000 }, () => generateToken()));
    expect(tokens.size).toBe(10_000);
    // The randomness reaches every position of the body: no character is fixed.
    const bodies = [...tokens].map((token) => token.slice(TOKEN_PREFIX.length, TOKEN_PREFIX.length + 32));
    for (let index = 0; index < 32; index += 1) {
      expect(new Set(bodies.map((body) => body[index])).size).toBeGreaterThan(50);
    }
  });
});
