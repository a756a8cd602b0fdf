import fc from 'fast-check';

/**
 * Generators of hostile text for the property tests, and the documented input rule written out
 * independently of src/ (README, "Input rules"): the tests hold the service to this oracle rather
 * than to its own code.
 */

export const TEXT_FIELDS = [
  'firstName',
  'lastName',
  'organization',
  'businessUnit',
  'department',
  'group',
  'team',
] as const;
export type TextField = (typeof TEXT_FIELDS)[number];

export const MAX_TEXT_CODE_POINTS = 200;
export const MAX_EMAIL_LENGTH = 254;

const fromCode = (code: number) => String.fromCharCode(code);

/** Any UTF-16 code unit, so lone high and low surrogates too (fast-check's 'binary' avoids them). */
const codeUnit = fc.integer({ min: 0, max: 0xffff }).map(fromCode);
const loneSurrogate = fc
  .oneof(fc.integer({ min: 0xd800, max: 0xdbff }), fc.integer({ min: 0xdc00, max: 0xdfff }))
  .map(fromCode);
/** C0 (including NUL, tab, newline, CR), DEL and C1 controls. */
const control = fc.oneof(fc.integer({ min: 0, max: 0x1f }), fc.integer({ min: 0x7f, max: 0x9f })).map(fromCode);

/** Hand-picked troublemakers: NUL, RTL marks and overrides, ZWJ sequences, BOM, U+FFFD, noncharacters. */
export const SPECIAL_PIECES = [
  '\u0000',
  '\t',
  '\n',
  '\r',
  '\r\n',
  '\u007f',
  '\u0085',
  '\u200f', // RIGHT-TO-LEFT MARK
  '\u202e', // RIGHT-TO-LEFT OVERRIDE
  '\u2066', // LEFT-TO-RIGHT ISOLATE
  '\u200d', // ZERO WIDTH JOINER, alone
  '\u200b', // ZERO WIDTH SPACE
  '\ufffd', // REPLACEMENT CHARACTER
  '\ufeff', // BYTE ORDER MARK
  '\uffff', // a noncharacter
  '\u{10ffff}',
  '\u2028',
  '\u00a0',
  '\u3000',
  '\ud800',
  '\udfff',
  '\udc00\ud800', // a low surrogate before a high one: two lone halves
  '👩‍👩‍👧‍👦',
  '🏳️‍🌈',
  '👍🏽',
  '🇺🇦',
  'e\u0301',
  'שלום',
  'مرحبا',
  'İ',
  'ß',
  '\u212a', // KELVIN SIGN, lower-cases to an ASCII k
  '%',
  '_',
  '\\',
  "'",
  '"',
  ' ',
] as const;
const special = fc.constantFrom(...SPECIAL_PIECES);

/** What JavaScript's trim() removes, which the email rule relies on. */
const WHITESPACE = [' ', '\t', '\n', '\r', '\u000b', '\u00a0', '\u2003', '\u3000', '\u2028', '\u2029', '\ufeff'];
/** Whitespace-only strings, with the zero-width space (not whitespace, but invisible) too. */
export const whitespaceOnly = fc.string({
  unit: fc.constantFrom(...WHITESPACE, '\u200b'),
  minLength: 1,
  maxLength: 12,
});

const piece = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 12 }),
  fc.string({ unit: 'grapheme-composite', maxLength: 12 }),
  fc.string({ unit: 'grapheme-ascii', maxLength: 12 }),
  fc.string({ unit: 'binary', maxLength: 12 }),
  fc.string({ unit: 'binary-ascii', maxLength: 12 }),
  fc.string({ unit: codeUnit, maxLength: 12 }),
  loneSurrogate,
  control,
  special,
  whitespaceOnly,
);

/** Concatenations of the pieces above: mixed scripts, controls and surrogates in any position. */
const mixed = fc.array(piece, { maxLength: 6 }).map((parts) => parts.join(''));

/** `count` code points taken from `unit` repeated (a ZWJ sequence may be cut: any code point goes). */
function codePoints(unit: string, count: number): string {
  const points = [...unit];
  return Array.from({ length: count }, (_, index) => points[index % points.length]).join('');
}

const repeatUnit = fc.oneof(
  fc.constantFrom('a', '😀', '\u200f', 'é', '\ufffd', '\ufeff', ' ', '\u0000', '\ud800', '👩‍👩‍👧‍👦', 'e\u0301'),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
);

/**
 * Text a client could send for a name or organisation field. With `long`, it includes strings of
 * 10,000 code points (still well within the 100 KB body limit, even JSON-escaped); without, at
 * most 1,000, so that several of them fit in one request.
 */
function textOf(long: boolean): fc.Arbitrary<string> {
  const counts = long ? [1, 199, 200, 201, 1_000, 10_000] : [1, 199, 200, 201, 1_000];
  const repeated = fc
    .record({ unit: repeatUnit, count: fc.constantFrom(...counts) })
    .map(({ unit, count }) => codePoints(unit, count));
  const length = long ? 10_000 : 1_000;
  /** Printable filler with one hostile character somewhere. */
  const withOne = fc
    .record({
      filler: fc.constantFrom('x', '😀', 'ש'),
      needle: fc.oneof(special, control, loneSurrogate),
      at: fc.nat(length - 1),
    })
    .map(({ filler, needle, at }) => {
      const points = [...codePoints(filler, length)];
      points[at] = needle;
      return points.join('');
    });
  return fc.oneof(
    { weight: 6, arbitrary: mixed },
    { weight: 1, arbitrary: fc.constant('') },
    { weight: 1, arbitrary: whitespaceOnly },
    { weight: 2, arbitrary: repeated },
    { weight: 1, arbitrary: withOne },
    { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 250 }) },
    { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 80 }) },
    { weight: 1, arbitrary: fc.string({ unit: codeUnit, maxLength: 40 }) },
  );
}

/** Any text for one field, 10,000-code-point strings included. */
export const hostileText = textOf(true);
/** The same without the 10,000-code-point strings, for requests that carry several values. */
export const hostileShortText = textOf(false);

/**
 * A search string of 2,500 to 30,000 code points, up to 60 KB of UTF-8 (as a LIKE pattern): longer
 * than any stored value, and at times past SQLite's 50,000-byte limit on LIKE patterns.
 */
export const longSearch = fc
  .record({ unit: fc.constantFrom('a', 'é', 'ש', '€', '😀', '%', '_'), size: fc.integer({ min: 10_000, max: 60_000 }) })
  .map(({ unit, size }) =>
    codePoints(unit, Math.floor(size / (Buffer.byteLength(unit) * (/[%_]/.test(unit) ? 2 : 1)))),
  );

/** Control characters other than tab and newline (C0, DEL, C1), or an unpaired UTF-16 surrogate. */
export function hasUnstorableCharacter(value: string): boolean {
  for (const character of value) {
    const code = character.codePointAt(0) as number;
    if (code <= 0x1f && code !== 0x09 && code !== 0x0a) return true;
    if (code >= 0x7f && code <= 0x9f) return true;
    if (code >= 0xd800 && code <= 0xdfff) return true;
  }
  return false;
}

/** The documented rule for a stored text value (README, "Input rules"). */
export function isStorableText(value: string): boolean {
  return [...value].length <= MAX_TEXT_CODE_POINTS && !hasUnstorableCharacter(value);
}

/** The documented normalisation of an email: trimmed (JavaScript's trim) and lower-cased. */
export const normalizedEmail = (email: string) => email.trim().toLowerCase();

/**
 * What is certainly not an address the service accepts: after normalisation it must be printable
 * ASCII, hold exactly one @ and be at most 254 characters (the full pattern is narrower still).
 */
export function isImpossibleEmail(email: string): boolean {
  const normalized = normalizedEmail(email);
  return (
    !/^[\x21-\x7e]+$/.test(normalized) || normalized.split('@').length !== 2 || normalized.length > MAX_EMAIL_LENGTH
  );
}

/** A valid address dressed up: random letter case and whitespace around it that trim() removes. */
export const paddedValidEmail: fc.Arbitrary<{ value: string; valid: true }> = fc
  .record({
    email: fc.mixedCase(fc.emailAddress()),
    before: fc.string({ unit: fc.constantFrom(...WHITESPACE), maxLength: 3 }),
    after: fc.string({ unit: fc.constantFrom(...WHITESPACE), maxLength: 3 }),
  })
  .map(({ email, before, after }) => ({ value: `${before}${email}${after}`, valid: true as const }));

/** Valid addresses, valid addresses with something hostile inserted, and arbitrary text. */
function emailOf(text: fc.Arbitrary<string>): fc.Arbitrary<{ value: string; valid: boolean }> {
  return fc.oneof(
    { weight: 2, arbitrary: paddedValidEmail },
    {
      weight: 2,
      arbitrary: fc
        .record({ email: fc.emailAddress(), insert: fc.oneof(piece, special), at: fc.nat() })
        .map(({ email, insert, at }) => {
          const position = at % (email.length + 1);
          return { value: email.slice(0, position) + insert + email.slice(position), valid: false };
        }),
    },
    { weight: 3, arbitrary: text.map((value) => ({ value, valid: false })) },
  );
}
export const hostileEmail = emailOf(hostileText);
export const hostileShortEmail = emailOf(hostileShortText);

/** A `valid: false` email may still happen to be valid; only `valid: true` ones must be accepted. */
export const mustAcceptEmail = (email: { value: string; valid: boolean }) =>
  email.valid && normalizedEmail(email.value).length <= MAX_EMAIL_LENGTH;

/** Only A-Z are case-folded by `search` (README): lower-cases ASCII letters and nothing else. */
export const asciiLower = (value: string) => value.replace(/[A-Z]/g, (letter) => letter.toLowerCase());

const escapeText = (text: string) =>
  text.replace(/[^\x20-\x7e\n]/g, (unit) => `\\u${unit.charCodeAt(0).toString(16).padStart(4, '0')}`);

/** JSON with long strings cut and every non-printable or non-ASCII character escaped. */
export function preview(value: unknown, maxLength = 2_000): string {
  const json =
    JSON.stringify(value, (_key, item: unknown) =>
      typeof item === 'string' && item.length > 120
        ? `${item.slice(0, 60)}...[${item.length} UTF-16 units]...${item.slice(-20)}`
        : item,
    ) ?? String(value);
  const escaped = escapeText(json).replace(/\n/g, '\\n');
  return escaped.length > maxLength ? `${escaped.slice(0, maxLength)}...` : escaped;
}

/**
 * fc.assert, but the report stays readable: a counterexample of 10,000 emoji is shown cut and
 * escaped, with the seed and path that replay it.
 */
export async function assertProperty<T>(property: fc.IAsyncProperty<T>, parameters: fc.Parameters<T>): Promise<void> {
  const details = await fc.check(property, parameters);
  if (!details.failed) return;
  const cause = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
  throw new Error(
    `Property failed after ${details.numRuns} run(s), shrunk ${details.numShrinks} time(s) ` +
      `(seed ${details.seed}, path "${details.counterexamplePath}")\n` +
      `Counterexample: ${preview(details.counterexample)}\nCause: ${escapeText(cause.slice(0, 3_000))}`,
  );
}
