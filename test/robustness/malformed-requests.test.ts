import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sqliteTarget, type TestDatabase } from '../helpers/databases';
import { printedAdminToken, startMain, type MainProcess } from '../helpers/main-process';
import { startServer, type TestServer } from '../helpers/server';
import { rawRequest, sendRaw, type HeaderValue, type RawExchange, type SendOptions } from './raw-http';

/**
 * A robustness run: more than 10,000 malformed requests over real sockets against one running
 * `node dist/main.js`. No 5xx, no request left unanswered, no internal error logged, the same
 * process throughout (with /healthz after each batch), and the heap back near its baseline.
 *
 * MALFORMED_SEED=<n> replays a run (the seed is printed with the figures).
 */
const SEED = process.env.MALFORMED_SEED ? Number(process.env.MALFORMED_SEED) : Math.floor(Math.random() * 0x7fffffff);
const WARM_UP = 1_000;
const REQUESTS = 10_500;
const BATCH = 500;
const CONCURRENCY = 12;
/** How far the heap may stay above its warmed-up baseline once garbage is collected. */
const HEAP_MARGIN_BYTES = 16 * 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// A seeded PRNG, so that a failing run can be replayed

type Rng = () => number;

function mulberry32(seed: number): Rng {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const int = (rng: Rng, min: number, max: number) => min + Math.floor(rng() * (max - min + 1));
const pick = <T>(rng: Rng, items: readonly T[]): T => items[Math.floor(rng() * items.length)];
const randomBytes = (rng: Rng, length: number) => Buffer.from(Array.from({ length }, () => int(rng, 0, 255)));
/** Random bytes that may stand in a header value or a request target (no controls, no space). */
const printableBytes = (rng: Rng, length: number) =>
  Buffer.from(Array.from({ length }, () => int(rng, 0x21, 0xff)).map((byte) => (byte === 0x7f ? 0x41 : byte)));
const randomText = (rng: Rng, length: number, alphabet: string) =>
  Array.from({ length }, () => alphabet[int(rng, 0, alphabet.length - 1)]).join('');
/** Any code point, lone surrogates and controls included. */
const randomUnicode = (rng: Rng, length: number) =>
  Array.from({ length }, () =>
    rng() < 0.2 ? String.fromCharCode(int(rng, 0, 0xffff)) : String.fromCodePoint(int(rng, 0, 0x10ffff)),
  ).join('');

/** An arbitrary JSON value: wrong types for any variable. */
function randomJson(rng: Rng, depth = 0): unknown {
  const choice = int(rng, 0, depth > 3 ? 5 : 7);
  switch (choice) {
    case 0:
      return null;
    case 1:
      return rng() < 0.5;
    case 2:
      return pick(rng, [0, -1, 1.5, 2 ** 31, -(2 ** 53), Number.MAX_VALUE, 1e-300, 25, 100, 101]);
    case 3:
      return randomUnicode(rng, int(rng, 0, 20));
    case 4:
      return pick(rng, ['', 'x@example.com', '25', 'EMAIL_ASC', 'null', '{}', 'pgk_']);
    case 5:
      return int(rng, -1000, 1000);
    case 6:
      return Array.from({ length: int(rng, 0, 4) }, () => randomJson(rng, depth + 1));
    default:
      return Object.fromEntries(
        Array.from({ length: int(rng, 0, 4) }, () => [
          pick(rng, ['email', 'first', 'search', 'team', 'a', '__proto__', 'constructor', '']),
          randomJson(rng, depth + 1),
        ]),
      );
  }
}

// ---------------------------------------------------------------------------------------------
// The malformed requests, by kind

interface Context {
  token: string;
}

interface Malformed {
  bytes: Buffer;
  options?: SendOptions;
  /** Node itself closes these without an answer (an aborted request, CONNECT with no handler). */
  mayGoUnanswered?: boolean;
}

const QUERIES = [
  'query Page($first: Int, $last: Int, $after: String, $filter: PeopleFilter, $orderBy: PeopleOrder) { people(first: $first, last: $last, after: $after, filter: $filter, orderBy: $orderBy) { totalCount nodes { email } pageInfo { endCursor } } }',
  'query Person($email: String!) { person(email: $email) { email firstName } }',
  'mutation Create($input: CreatePersonInput!) { createPerson(input: $input) { email } }',
  'mutation Update($input: UpdatePersonInput!) { updatePerson(input: $input) { email version } }',
  'query A { people(first: 1) { totalCount } } query B { people(first: 2) { totalCount } }',
  '{ people(first: 1) { totalCount } }',
];
const VARIABLE_NAMES = ['first', 'last', 'after', 'filter', 'orderBy', 'email', 'input'];

function authorization(rng: Rng, context: Context): [string, HeaderValue][] {
  const roll = rng();
  if (roll < 0.85) return [['Authorization', `Bearer ${context.token}`]];
  if (roll < 0.92) return [];
  return [['Authorization', pick(rng, ['Bearer', 'Bearer pgk_x', `Basic ${context.token}`, 'Bearer  '])]];
}

/** A POST to /graphql with ordinary headers around `body` (plus any `extra` headers). */
function post(rng: Rng, context: Context, body: string | Buffer, extra: [string, HeaderValue][] = []): Buffer {
  return rawRequest({
    headers: [
      ['Host', '127.0.0.1'],
      ['Connection', 'close'],
      ['Content-Type', 'application/json'],
      ...authorization(rng, context),
      ...extra,
    ],
    body,
  });
}

function validBody(rng: Rng): string {
  const variables: Record<string, unknown> = {};
  for (const name of VARIABLE_NAMES) if (rng() < 0.3) variables[name] = randomJson(rng);
  return JSON.stringify({ query: pick(rng, QUERIES), variables });
}

function nested(rng: Rng, depth: number): string {
  const shape = pick(rng, [
    ['[', ']'],
    ['{"a":', '}'],
    ['[{"a":', '}]'],
  ]);
  return `${shape[0].repeat(depth)}${pick(rng, ['1', '"x"', 'null', '[]', '{}'])}${shape[1].repeat(depth)}`;
}

const WRONG_SHAPES = [
  '[]',
  '"x"',
  '{"query": 5}',
  '{"variables": "x"}',
  'null',
  '{}',
  'true',
  '1e309',
  '{"query": null}',
  '{"query": ["{ people { totalCount } }"]}',
  '{"query": {"kind": "Document"}}',
  '{"query": "{ people(first: 1) { totalCount } }", "variables": []}',
  '{"query": "{ people(first: 1) { totalCount } }", "variables": 5}',
  '{"query": "{ people(first: 1) { totalCount } }", "variables": "{\\"first\\": 1}"}',
  '{"query": "{ people(first: 1) { totalCount } }", "extensions": "x"}',
  '{"query": "{ people(first: 1) { totalCount } }", "extensions": {"persistedQuery": {"version": 1, "sha256Hash": "abc"}}}',
  '{"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "abc"}}}',
  '{"query": "{ people(first: 1) { totalCount } }", "operationName": 5}',
  '{"query": "{ people(first: 1) { totalCount } }", "operationName": ["A"]}',
  '[{"query": "{ people(first: 1) { totalCount } }"}, {"query": "{ __typename }"}]',
  '{"query": ""}',
  '{"query": "   "}',
  '{"query": "{ people(first: 1) { totalCount } }", "query": "mutation { createPerson }"}',
  '\ufeff{"query": "{ people(first: 1) { totalCount } }"}',
  '{"query": "{ people(first: 1) { totalCount } }"} trailing',
  '{"__proto__": {"query": "{ __typename }"}}',
  '{"query": "{ __schema { types { name } } }"}',
  '{"query": "subscription { people { totalCount } }"}',
  '{"query": "mutation { createPerson(input: {}) { email } }"}',
  '{"query": "{ people(first: 1) { totalCount } }", "variables": {"__proto__": {"first": 1}}}',
];

const HUGE_NUMBERS = [
  '1e309',
  '-1e309',
  '9007199254740993',
  '9007199254740992',
  '2147483648',
  '-2147483649',
  '-0',
  '0',
  '1.5',
  '1e-400',
  '123456789012345678901234567890',
  '"NaN"',
  '"Infinity"',
  '"25"',
  'NaN',
  'Infinity',
  '0x10',
  '1E2',
  '25.0',
  '-25',
  '1e2',
  '00025',
];

const INVALID_UTF8 = [
  [0xff],
  [0xc3, 0x28],
  [0xc0, 0xaf],
  [0xed, 0xa0, 0x80],
  [0xf4, 0x90, 0x80, 0x80],
  [0xe2, 0x82],
  [0x80],
];

const GRAPHQL_TOKENS = (
  '{ } ( ) : $ ! ... @ [ ] = | & people person first last after filter totalCount nodes email query mutation ' +
  'subscription fragment on "x" """block""" 1 1.5 -0 true null #comment __schema __typename createPerson input Int String!'
).split(' ');

const METHODS = [
  'GET',
  'HEAD',
  'PUT',
  'DELETE',
  'PATCH',
  'OPTIONS',
  'TRACE',
  'PROPFIND',
  'FOO',
  'post',
  'Get',
  'M'.repeat(100),
];
const TARGETS = [
  '/',
  '/graphql/',
  '/GRAPHQL',
  '//graphql',
  '/graphql?',
  '/graphql#fragment',
  '/graphql%00',
  '/graphql/../graphql',
  '/../../etc/passwd',
  '*',
  'http://127.0.0.1/graphql',
  '/healthz',
  '/readyz?x=1',
  '/metrics',
  '/%',
  '/%zz',
  '/graphql;a=b',
];

type Kind = (rng: Rng, context: Context) => Malformed;

const KINDS: Record<string, Kind> = {
  'random bytes body': (rng, context) => ({ bytes: post(rng, context, randomBytes(rng, int(rng, 0, 4096))) }),

  'JSON-like garbage': (rng, context) => ({
    bytes: post(rng, context, randomText(rng, int(rng, 0, 512), '{}[]":,.-+eE0123456789 truefalsnul\\/u')),
  }),

  'truncated JSON': (rng, context) => {
    const body = validBody(rng);
    return { bytes: post(rng, context, body.slice(0, int(rng, 0, body.length - 1))) };
  },

  'valid JSON of the wrong shape': (rng, context) => ({ bytes: post(rng, context, pick(rng, WRONG_SHAPES)) }),

  'wrong types for variables': (rng, context) => ({ bytes: post(rng, context, validBody(rng)) }),

  'huge numbers for first/last': (rng, context) => {
    const name = pick(rng, ['first', 'last']);
    const body = `{"query": ${JSON.stringify(QUERIES[0])}, "variables": {"${name}": ${pick(rng, HUGE_NUMBERS)}}}`;
    return { bytes: post(rng, context, body) };
  },

  'deeply nested variables, extensions or query': (rng, context) => {
    const depth = rng() < 0.5 ? 10_000 : int(rng, 1_000, 40_000);
    const value = nested(rng, depth);
    const query = JSON.stringify(QUERIES[0]);
    const place = int(rng, 0, 6);
    const body = [
      `{"query": ${query}, "variables": {"filter": ${value}}}`,
      `{"query": ${query}, "variables": {"first": ${value}}}`,
      `{"query": ${query}, "variables": {"filter": {"search": ${value}}}}`,
      `{"query": ${JSON.stringify(QUERIES[2])}, "variables": {"input": {"email": "deep@example.com", "team": ${value}}}}`,
      `{"query": ${query}, "variables": {"undeclared": ${value}}}`,
      `{"query": ${query}, "extensions": ${value}}`,
      JSON.stringify({
        query: `{ people(first: 1) { ${'nodes { '.repeat(depth / 10)}email${' }'.repeat(depth / 10)} } }`,
      }),
    ][place];
    return { bytes: post(rng, context, body) };
  },

  'unknown or odd operationName': (rng, context) => {
    const operationName = pick(rng, [
      'C',
      '',
      'a'.repeat(5_000),
      '\u0000',
      'A B',
      randomUnicode(rng, 8),
      'Create',
      null,
    ]);
    const query = pick(rng, [QUERIES[4], QUERIES[0], 'fragment F on Person { email }', 'query A { x } query A { y }']);
    return { bytes: post(rng, context, JSON.stringify({ query, operationName, variables: {} })) };
  },

  'broken UTF-8': (rng, context) => {
    const body = Buffer.from(validBody(rng), 'utf8');
    const at = int(rng, 0, body.length);
    const bad = Buffer.from(pick(rng, INVALID_UTF8));
    return { bytes: post(rng, context, Buffer.concat([body.subarray(0, at), bad, body.subarray(at)])) };
  },

  'random GraphQL text': (rng, context) => {
    const query =
      rng() < 0.7
        ? Array.from({ length: int(rng, 1, 200) }, () => pick(rng, GRAPHQL_TOKENS)).join(pick(rng, [' ', '', '\n']))
        : randomUnicode(rng, int(rng, 1, 300));
    return { bytes: post(rng, context, JSON.stringify({ query })) };
  },

  'odd Content-Type': (rng, context) => {
    const variants: [string, HeaderValue][][] = [
      [
        ['Content-Type', 'application/json'],
        ['Content-Type', 'text/plain'],
      ],
      [['Content-Type', 'text/plain']],
      [],
      [['Content-Type', 'application/json; charset=utf-16']],
      [['Content-Type', 'APPLICATION/JSON']],
      [['Content-Type', 'application/graphql']],
      [['Content-Type', 'application/x-www-form-urlencoded']],
      [['Content-Type', 'multipart/form-data; boundary=----x']],
      [['Content-Type', 'application/json, text/plain']],
      [['Content-Type', 'application/json;;;;']],
      [['Content-Type', printableBytes(rng, 12)]],
      [['Content-Type', 'application/graphql-response+json']],
      [['Content-Type', '']],
    ];
    return {
      bytes: rawRequest({
        headers: [
          ['Host', '127.0.0.1'],
          ['Connection', 'close'],
          ...authorization(rng, context),
          ...pick(rng, variants),
        ],
        body: validBody(rng),
      }),
    };
  },

  'bogus Content-Length': (rng, context) => {
    const body = validBody(rng);
    const length = Buffer.byteLength(body);
    const variant = int(rng, 0, 8);
    const contentLength = [
      ['abc'],
      ['-1'],
      ['1e3'],
      ['0x10'],
      [String(length), String(length + 1)],
      [String(length + int(rng, 1, 500))],
      [String(Math.max(0, length - int(rng, 1, length)))],
      ['99999999999999999999'],
      [`+${length}`],
    ][variant];
    return {
      bytes: rawRequest({
        headers: [
          ['Host', '127.0.0.1'],
          ['Connection', 'close'],
          ['Content-Type', 'application/json'],
          ...authorization(rng, context),
          ...contentLength.map((value): [string, string] => ['Content-Length', value]),
        ],
        body,
        contentLength: false,
      }),
      // A body shorter than announced: the end of input must get an answer, not a hang.
      options: { halfClose: variant === 5 },
    };
  },

  'Transfer-Encoding games': (rng, context) => {
    const body = validBody(rng);
    const size = Buffer.byteLength(body).toString(16);
    const variants: { encoding: string[]; chunks: string; length?: boolean; incomplete?: boolean }[] = [
      { encoding: ['chunked'], chunks: `${size}\r\n${body}\r\n0\r\n\r\n` },
      { encoding: ['chunked'], chunks: `zz\r\n${body}\r\n0\r\n\r\n` },
      // A chunk of 2^64 - 1 bytes: the server waits for the rest, so the client ends its input.
      { encoding: ['chunked'], chunks: `ffffffffffffffff\r\n${body}\r\n0\r\n\r\n`, incomplete: true },
      { encoding: ['chunked'], chunks: `${size}\r\n${body}\r\n`, incomplete: true },
      { encoding: ['chunked'], chunks: `${size}\r\n${body}\r\n0\r\n\r\n`, length: true },
      { encoding: ['gzip, chunked'], chunks: `${size}\r\n${body}\r\n0\r\n\r\n` },
      { encoding: ['chunked, gzip'], chunks: `${size}\r\n${body}\r\n0\r\n\r\n` },
      { encoding: ['identity'], chunks: body },
      { encoding: ['xchunked'], chunks: `${size}\r\n${body}\r\n0\r\n\r\n` },
      { encoding: ['chunked', 'chunked'], chunks: `${size}\r\n${body}\r\n0\r\n\r\n` },
      { encoding: ['chunked'], chunks: `${size};${'a'.repeat(int(rng, 10, 20_000))}\r\n${body}\r\n0\r\n\r\n` },
      { encoding: ['chunked'], chunks: `${size}\r\n${body}\r\n0\r\nX-Trailer: 1\r\n\r\n` },
      { encoding: ['chunked'], chunks: `${size}\n${body}\n0\n\n` },
      { encoding: [' chunked'], chunks: `${size}\r\n${body}\r\n0\r\n\r\n` },
    ];
    const variant = pick(rng, variants);
    return {
      bytes: rawRequest({
        headers: [
          ['Host', '127.0.0.1'],
          ['Connection', 'close'],
          ['Content-Type', 'application/json'],
          ...authorization(rng, context),
          ...variant.encoding.map((value): [string, string] => ['Transfer-Encoding', value]),
          ...(variant.length ? [['Content-Length', '5'] as [string, string]] : []),
        ],
        body: variant.chunks,
        contentLength: false,
      }),
      // Only a request known to be incomplete is half-closed: node drops the answer to a complete
      // request whose client half-closed (it ends the socket on end of input).
      options: { halfClose: variant.incomplete ?? false },
    };
  },

  'odd Authorization': (rng, context) => {
    const values: HeaderValue[] = [
      `Bearer ${context.token.slice(0, 10)}\x01${context.token.slice(10)}`,
      `Bearer ${context.token}\x7f`,
      `Bearer \x00${context.token}`,
      `Bearer ${'A'.repeat(10_240)}`,
      `Bearer pgk_${randomText(rng, 10_236, 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789')}`,
      Buffer.from(`Bearer ${randomUnicode(rng, 20).replace(/[\r\n]/g, '')}`, 'utf8'),
      Buffer.from(`Bearer pgk_ü😀${context.token.slice(4)}`, 'utf8'),
      Buffer.from([0x42, 0x65, 0x61, 0x72, 0x65, 0x72, 0x20, 0xff, 0xfe]),
      'Bearer',
      'Bearer      ',
      `bearer ${context.token}`,
      `Bearer\t${context.token}`,
      `Bearer ${context.token}\t`,
      `Basic ${Buffer.from(`user:${context.token}`).toString('base64')}`,
      `Bearer ${context.token.repeat(200)}`,
      `Bearer ${context.token.slice(0, -1)}${context.token.at(-1) === 'A' ? 'B' : 'A'}`,
      `Digest username="x", response="${context.token}"`,
    ];
    const chosen = pick(rng, values);
    const headers: [string, HeaderValue][] = [['Authorization', chosen]];
    if (rng() < 0.2) headers.push(['Authorization', `Bearer ${context.token}`]);
    return {
      bytes: rawRequest({
        headers: [['Host', '127.0.0.1'], ['Connection', 'close'], ['Content-Type', 'application/json'], ...headers],
        body: validBody(rng),
      }),
    };
  },

  'huge or malformed headers': (rng, context) => {
    const variant = int(rng, 0, 5);
    const extra = (<[string, HeaderValue][][]>[
      [['X-Pad', 'x'.repeat(int(rng, 1_000, 20_000))]],
      Array.from({ length: int(rng, 50, 400) }, (_, index): [string, string] => [`X-H${index}`, 'v'.repeat(20)]),
      [['X Bad Name', '1']],
      [['X-Ctl\x01', '1']],
      [['X-Folded', 'a\r\n continued']],
      [['X-Request-Id', randomText(rng, int(rng, 1, 200), 'abc\x01\u00ff:._- ')]],
    ])[variant];
    return { bytes: post(rng, context, validBody(rng), extra) };
  },

  'random methods, paths and versions': (rng, context) => {
    const method = rng() < 0.8 ? pick(rng, METHODS) : randomText(rng, int(rng, 1, 12), 'ABCDEFGHIJKLMNOPQRSTUVWXYZ-_');
    const target = rng() < 0.7 ? pick(rng, TARGETS) : `/${printableBytes(rng, int(rng, 0, 300)).toString('latin1')}`;
    const version = pick(rng, ['HTTP/1.1', 'HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'HTTP/9.9', 'http/1.1', 'HTTP/1.1 x']);
    return {
      bytes: rawRequest({
        method,
        target,
        version,
        headers: [['Host', '127.0.0.1'], ['Connection', 'close'], ...authorization(rng, context)],
        body: rng() < 0.5 ? validBody(rng) : '',
      }),
    };
  },

  'GET with odd query strings': (rng, context) => {
    const parameters = [
      `query=${encodeURIComponent(pick(rng, [QUERIES[5], '{', 'mutation { createPerson(input: {email: "g@example.com"}) { email } }', randomUnicode(rng, 20).replace(/[\ud800-\udfff]/g, '')]))}`,
      `variables=${encodeURIComponent(pick(rng, ['{', '[]', '"x"', nested(rng, 2_000), '{"first": 1e309}']))}`,
      `operationName=${encodeURIComponent(pick(rng, ['', 'X', 'a'.repeat(3_000)]))}`,
      `extensions=${encodeURIComponent(pick(rng, ['{', '{"persistedQuery": 1}', nested(rng, 2_000)]))}`,
      `query=${QUERIES[5]}`,
      'query=%zz',
      'query',
      '&&&=&=',
    ];
    const chosen = parameters.filter(() => rng() < 0.5);
    return {
      bytes: rawRequest({
        method: pick(rng, ['GET', 'HEAD']),
        target: `/graphql?${chosen.join('&')}`,
        headers: [
          ['Host', '127.0.0.1'],
          ['Connection', 'close'],
          ['Accept', pick(rng, ['application/json', 'text/html', '*/*', 'application/xml', ''])],
          ...(rng() < 0.5 ? [['Apollo-Require-Preflight', 'true'] as [string, string]] : []),
          ...authorization(rng, context),
        ],
        contentLength: false,
      }),
    };
  },

  'pipelined requests': (rng, context) => {
    const first = rawRequest({
      headers: [['Host', '127.0.0.1'], ['Content-Type', 'application/json'], ...authorization(rng, context)],
      body: validBody(rng),
    });
    const variant = int(rng, 0, 2);
    const second = [randomBytes(rng, int(rng, 1, 200)), post(rng, context, validBody(rng)), Buffer.from('GET /')][
      variant
    ];
    return { bytes: Buffer.concat([first, second]), options: { halfClose: variant === 2 } };
  },

  'Expect and Upgrade': (rng, context) => {
    const extra = pick<[string, string][]>(rng, [
      [['Expect', '100-continue']],
      [['Expect', 'something-else']],
      [
        ['Upgrade', 'websocket'],
        ['Sec-WebSocket-Key', 'dGhlIHNhbXBsZSBub25jZQ=='],
        ['Sec-WebSocket-Version', '13'],
      ],
      [['Upgrade', 'h2c']],
      [['TE', 'trailers']],
    ]);
    const upgrade = extra.some(([name]) => name === 'Upgrade');
    return {
      bytes: rawRequest({
        method: upgrade ? 'GET' : 'POST',
        headers: [
          ['Host', '127.0.0.1'],
          ['Connection', upgrade ? 'Upgrade' : 'close'],
          ['Content-Type', 'application/json'],
          ...authorization(rng, context),
          ...extra,
        ],
        body: upgrade ? '' : validBody(rng),
      }),
      // With no 'upgrade' listener, node closes an Upgrade request's socket without an answer.
      mayGoUnanswered: upgrade,
    };
  },

  'client gone mid-body': (rng, context) => {
    const body = validBody(rng);
    const full = post(rng, context, `${body}${' '.repeat(2_000)}`);
    return {
      bytes: full.subarray(0, full.length - int(rng, 1, 2_000)),
      options: { abortAfterMs: int(rng, 1, 30) },
      mayGoUnanswered: true,
    };
  },
};

// ---------------------------------------------------------------------------------------------

interface Tally {
  sent: Map<string, number>;
  statuses: Map<string, number>;
  unanswered: Map<string, number>;
  fivexx: { kind: string; exchange: RawExchange }[];
  timeouts: { kind: string; exchange: RawExchange }[];
  unexpectedlyUnanswered: { kind: string; bytes: string }[];
}

const increment = (map: Map<string, number>, key: string) => map.set(key, (map.get(key) ?? 0) + 1);

async function run(
  port: number,
  context: Context,
  rng: Rng,
  count: number,
  tally: Tally,
  onBatch: () => Promise<void>,
) {
  const kinds = Object.entries(KINDS);
  let next = 0;
  let sinceBatch = 0;
  let batchGate: Promise<void> = Promise.resolve();
  const worker = async () => {
    while (next < count) {
      next += 1;
      sinceBatch += 1;
      if (sinceBatch >= BATCH) {
        sinceBatch = 0;
        batchGate = batchGate.then(onBatch);
      }
      await batchGate;
      const [kind, make] = kinds[int(rng, 0, kinds.length - 1)];
      const malformed = make(rng, context);
      const exchange = await sendRaw(port, malformed.bytes, malformed.options);
      increment(tally.sent, kind);
      for (const status of exchange.statuses) increment(tally.statuses, String(status));
      if (exchange.statuses.some((status) => status >= 500)) tally.fivexx.push({ kind, exchange });
      if (exchange.ending === 'timeout') {
        tally.timeouts.push({
          kind,
          exchange: { ...exchange, head: malformed.bytes.subarray(0, 300).toString('latin1') },
        });
      }
      if (exchange.statuses.length === 0) {
        increment(tally.unanswered, kind);
        if (!malformed.mayGoUnanswered && exchange.ending !== 'timeout') {
          tally.unexpectedlyUnanswered.push({ kind, bytes: malformed.bytes.subarray(0, 300).toString('latin1') });
        }
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
}

/** Loaded into the service with --require: on SIGUSR2, collects garbage and prints the heap. */
const MEMORY_PROBE = `
let probes = 0;
process.on('SIGUSR2', () => {
  globalThis.gc();
  globalThis.gc();
  const usage = process.memoryUsage();
  probes += 1;
  process.stdout.write(JSON.stringify({ memoryProbe: probes, heapUsed: usage.heapUsed, rss: usage.rss, pid: process.pid }) + '\\n');
});
`;

describe('a robustness run of malformed requests against node dist/main.js (sqlite)', () => {
  let database: TestDatabase;
  let main: MainProcess;
  let baseUrl: string;
  let port: number;
  let token: string;
  let probeDirectory: string;
  let probes = 0;

  async function heapAfterGc(): Promise<{ heapUsed: number; rss: number }> {
    const readings: { heapUsed: number; rss: number }[] = [];
    for (let i = 0; i < 3; i += 1) {
      probes += 1;
      const waiting = main.waitForStdout(new RegExp(`"memoryProbe":${probes},"heapUsed":(\\d+),"rss":(\\d+)`));
      main.child.kill('SIGUSR2');
      const [, heapUsed, rss] = await waiting;
      readings.push({ heapUsed: Number(heapUsed), rss: Number(rss) });
    }
    return readings.reduce((low, reading) => (reading.heapUsed < low.heapUsed ? reading : low));
  }

  async function expectAlive(): Promise<void> {
    expect(main.child.exitCode, main.stderr()).toBeNull();
    expect(main.child.signalCode).toBeNull();
    const health = await fetch(`${baseUrl}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
  }

  beforeAll(async () => {
    database = await sqliteTarget.create();
    probeDirectory = mkdtempSync(path.join(tmpdir(), 'people-graph-probe-'));
    const probe = path.join(probeDirectory, 'memory-probe.cjs');
    writeFileSync(probe, MEMORY_PROBE);
    const started = await startMain({
      DATABASE_URL: database.url,
      NODE_OPTIONS: `--expose-gc --require ${probe}`,
      // Rate limiting is item 3's concern: off here, so that every request reaches the deep paths.
      RATE_LIMIT_PER_SECOND: '0',
    });
    main = started.main;
    baseUrl = started.url;
    port = Number(new URL(baseUrl).port);
    token = await printedAdminToken(main);
  });

  afterAll(async () => {
    if (main && main.child.exitCode === null && main.child.signalCode === null) main.child.kill('SIGTERM');
    await main?.exited;
    await database?.drop();
    if (probeDirectory) rmSync(probeDirectory, { recursive: true, force: true });
  });

  it(`answers ${REQUESTS} malformed requests without a 5xx, stays up, and returns to its memory baseline`, async () => {
    const context = { token };
    const rng = mulberry32(SEED);
    const newTally = (): Tally => ({
      sent: new Map(),
      statuses: new Map(),
      unanswered: new Map(),
      fivexx: [],
      timeouts: [],
      unexpectedlyUnanswered: [],
    });
    const pid = main.child.pid;
    let healthChecks = 0;
    const onBatch = async () => {
      await expectAlive();
      healthChecks += 1;
    };

    // Warm up every path (JIT, lazily loaded modules, Apollo's caches), then take the baseline.
    const warmUp = newTally();
    await run(port, context, rng, WARM_UP, warmUp, onBatch);
    const baseline = await heapAfterGc();

    const tally = newTally();
    await run(port, context, rng, REQUESTS, tally, onBatch);
    await expectAlive();
    healthChecks += 1;
    // Let the server finish with the last sockets before measuring.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const after = await heapAfterGc();

    const logLines = main
      .stdout()
      .split('\n')
      .filter((line) => line.startsWith('{"level"'))
      .map((line) => JSON.parse(line) as { level: number; msg: string; err?: { message?: string } });
    const errorsLogged = logLines.filter((line) => line.level >= 50);
    const warnings = new Map<string, number>();
    for (const line of logLines.filter((entry) => entry.level === 40)) increment(warnings, line.msg);

    const sorted = (map: Map<string, number>) =>
      [...map].sort(([a], [b]) => a.localeCompare(b)).map(([key, value]) => `    ${key}: ${value}`);
    const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;
    process.stdout.write(
      [
        `malformed-requests.test.ts: MALFORMED_SEED=${SEED}`,
        `  sent ${[...tally.sent.values()].reduce((a, b) => a + b, 0)} malformed requests (after ${WARM_UP} to warm up), by kind:`,
        ...sorted(tally.sent),
        '  statuses that came back (all status lines, 100 Continue included):',
        ...sorted(tally.statuses),
        '  closed without any status line, by kind:',
        ...sorted(tally.unanswered),
        '  warnings the service logged:',
        ...sorted(warnings),
        `  errors the service logged: ${errorsLogged.length}`,
        `  /healthz checks: ${healthChecks}, all 200, same pid ${pid}`,
        `  heap after GC: baseline ${mb(baseline.heapUsed)}, after ${mb(after.heapUsed)}; RSS ${mb(baseline.rss)} -> ${mb(after.rss)}`,
        '',
      ].join('\n'),
    );

    expect([...tally.sent.values()].reduce((a, b) => a + b, 0)).toBe(REQUESTS);
    expect(tally.sent.size).toBe(Object.keys(KINDS).length);
    expect(tally.fivexx.map(({ kind, exchange }) => `${kind}: ${exchange.head}`)).toEqual([]);
    expect(tally.timeouts.map(({ kind, exchange }) => `${kind}: ${exchange.head}`)).toEqual([]);
    expect(tally.unexpectedlyUnanswered.slice(0, 5)).toEqual([]);
    expect(errorsLogged.slice(0, 5)).toEqual([]);
    expect(main.child.pid).toBe(pid);
    expect(main.stdout().match(/people-graph listening/g)).toHaveLength(1);
    expect(after.heapUsed).toBeLessThan(baseline.heapUsed + HEAP_MARGIN_BYTES);
  }, 240_000);
});

describe('a client that goes away in the middle of its body (sqlite)', () => {
  let database: TestDatabase;
  let server: TestServer;

  beforeAll(async () => {
    database = await sqliteTarget.create();
    server = await startServer(database.url);
  });

  afterAll(async () => {
    await server?.close();
    await database?.drop();
  });

  it('is logged as an aborted request, not as a failed one with an attempted 500', async () => {
    const body = JSON.stringify({ query: '{ people(first: 1) { totalCount } }' });
    const request = rawRequest({
      headers: [
        ['Host', '127.0.0.1'],
        ['Content-Type', 'application/json'],
        ['Authorization', `Bearer ${server.adminToken}`],
        ['Content-Length', String(Buffer.byteLength(body) + 100)],
      ],
      body,
      contentLength: false,
    });
    const port = Number(new URL(server.url).port);
    // Reset mid-body, and end of input mid-body (node answers that one 400 itself).
    const reset = await sendRaw(port, request, { abortAfterMs: 50 });
    const ended = await sendRaw(port, request, { halfClose: true });
    expect(reset.statuses).toEqual([]);
    expect(ended.statuses).toEqual([400]);

    const aborted = () => server.logs.filter((line) => String(line.msg).startsWith('request aborted'));
    for (let waited = 0; aborted().length < 2 && waited < 5_000; waited += 50) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(aborted()).toHaveLength(2);
    expect(server.logs.filter((line) => Number(line.level) >= 50)).toEqual([]);
    // And the service goes on answering.
    expect((await server.gql('{ people(first: 1) { totalCount } }')).status).toBe(200);
  });
});

describe('requests GraphQL itself refuses outside any field (sqlite)', () => {
  let database: TestDatabase;
  let server: TestServer;

  beforeAll(async () => {
    database = await sqliteTarget.create();
    server = await startServer(database.url);
  });

  afterAll(async () => {
    await server?.close();
    await database?.drop();
  });

  it.each([
    ['a subscription, which this schema has none of', { query: 'subscription { people { totalCount } }' }, 400],
    [
      'a persisted-query hash that does not match its query',
      {
        query: '{ people(first: 1) { totalCount } }',
        extensions: { persistedQuery: { version: 1, sha256Hash: 'abc' } },
      },
      400,
    ],
  ])('answers %s with BAD_REQUEST, not as an internal error', async (_label, body, status) => {
    const logsBefore = server.logs.length;
    const response = await fetch(server.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${server.adminToken}` },
      body: JSON.stringify(body),
    });
    expect(response.status).toBe(status);
    const answer = (await response.json()) as { errors: { message: string; extensions: { code: string } }[] };
    expect(answer.errors.map((error) => error.extensions.code)).toEqual(['BAD_REQUEST']);
    expect(answer.errors[0].message).not.toBe('Internal server error');
    expect(server.logs.slice(logsBefore).filter((line) => Number(line.level) >= 50)).toEqual([]);
  });
});
