/**
 * `npm run bench`: seeds N people, then measures the GraphQL service and the bare baseline
 * (bench/baseline.ts) on the same data and machine, alternating service, baseline, service, …
 * for each workload, and prints req/s (median of rounds), p50/p99 and the ratio service/baseline.
 *
 * Options: --count N (100000) --depth-count N (1000000; 0 skips the depth workload)
 *          --connections C (50) --duration S (10) --rounds R (3) --warmup S (2) --database-url URL
 *          --only NAME,… (workloads whose name starts with one of these, e.g. people,person)
 *          --quick (tiny N, 1 s rounds, 1 round, no warm-up unless given: proves the harness works)
 *          --out FILE (bench/RESULTS.md)
 *          --apollo-alone (also measure Apollo Server alone on the read workloads: bench/apollo-alone.ts)
 */
import 'reflect-metadata';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { TokenService } from '../src/auth/token.service';
import { Database } from '../src/db/database';
import { seedEmail, seedPeople } from '../src/people/person.seed';

// Compiled to build/bench/bench/run.js; the project root is three levels up.
const root = path.resolve(__dirname, '..', '..', '..');

const { values: options } = parseArgs({
  options: {
    count: { type: 'string', default: '100000' },
    'depth-count': { type: 'string', default: '1000000' },
    connections: { type: 'string', default: '50' },
    duration: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '3' },
    warmup: { type: 'string' },
    'database-url': { type: 'string' },
    only: { type: 'string' },
    quick: { type: 'boolean', default: false },
    out: { type: 'string' },
    'apollo-alone': { type: 'boolean', default: false },
  },
});

const quick = options.quick;
const count = quick ? 500 : Number(options.count);
const depthCount = quick ? 2000 : Number(options['depth-count']);
const connections = quick ? 4 : Number(options.connections);
const duration = quick ? 1 : Number(options.duration);
const rounds = quick ? 1 : Number(options.rounds);
/** Unmeasured load before a workload's rounds, on each target: JIT tiers and caches settle first. */
const warmup = Number(options.warmup ?? (quick ? 0 : 2));
const apolloAloneWanted = options['apollo-alone'];
const dataDir = path.join(root, 'bench', 'data');

interface Sample {
  requestsPerSecond: number;
  p50: number;
  p99: number;
  errors: number;
}

interface Target {
  name: 'service' | 'baseline' | 'apollo alone';
  url: string;
  process: ChildProcess;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

async function waitForReady(url: string, child: ChildProcess): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt += 1) {
    if (child.exitCode !== null) throw new Error(`${url}: the process exited with code ${child.exitCode}`);
    try {
      if ((await fetch(url)).status < 500) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${url} did not become ready`);
}

async function start(
  name: Target['name'],
  script: string,
  databaseUrl: string,
  env: Record<string, string>,
): Promise<Target> {
  const port = await freePort();
  const child = spawn(process.execPath, [script], {
    cwd: root,
    env: { ...process.env, ...env, DATABASE_URL: databaseUrl, PORT: String(port), HOST: '127.0.0.1' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  // Any answer under 500 means the target listens (Apollo alone answers a bare GET with 400).
  const readiness = { service: '/healthz', baseline: '/people?first=1', 'apollo alone': '/' };
  await waitForReady(`${url}${readiness[name]}`, child);
  return { name, url, process: child };
}

async function stop(target: Target): Promise<void> {
  const exited = new Promise((resolve) => target.process.once('exit', resolve));
  target.process.kill('SIGTERM');
  await exited;
}

/** Peak resident set size of a process, from Linux's VmHWM. */
function peakRssMb(pid: number): number {
  const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) / 1024 : Number.NaN;
}

interface Workload {
  name: string;
  /** Requests for the GraphQL service and for the baseline, built per request. */
  service: () => { method: 'POST'; path: string; body: string };
  baseline: () => { method: 'GET' | 'POST'; path: string; body?: string };
  /** Also measured on Apollo alone, with the service's own requests (same schema shape). */
  apolloAlone?: true;
}

const randomIndex = (n: number) => 1 + Math.floor(Math.random() * n);
const graphql = (query: string, variables?: Record<string, unknown>) => ({
  method: 'POST' as const,
  path: '/graphql',
  body: JSON.stringify({ query, variables }),
});
const PAGE_FIELDS = 'id email firstName lastName organization team updatedAt';
const PERSON_FIELDS =
  'id email firstName lastName organization businessUnit department group team createdAt updatedAt version';

function cursorFor(email: string): string {
  return Buffer.from(JSON.stringify(['EMAIL_ASC', email])).toString('base64url');
}

function workloads(n: number): Workload[] {
  const runId = randomUUID().slice(0, 8);
  let created = 0;
  return [
    {
      name: 'people(first: 25)',
      service: () => graphql(`{ people(first: 25) { nodes { ${PAGE_FIELDS} } } }`),
      baseline: () => ({ method: 'GET', path: '/people?first=25' }),
      apolloAlone: true,
    },
    {
      name: 'person(email)',
      service: () =>
        graphql(`query($e: String!) { person(email: $e) { ${PERSON_FIELDS} } }`, { e: seedEmail(randomIndex(n)) }),
      baseline: () => ({ method: 'GET', path: `/person?email=${encodeURIComponent(seedEmail(randomIndex(n)))}` }),
      apolloAlone: true,
    },
    {
      name: 'createPerson',
      service: () => {
        created += 1;
        return graphql(`mutation($i: CreatePersonInput!) { createPerson(input: $i) { ${PERSON_FIELDS} } }`, {
          i: { email: `bench-${runId}-s${created}@example.com`, firstName: 'Bench', lastName: 'Mark' },
        });
      },
      baseline: () => {
        created += 1;
        return {
          method: 'POST',
          path: '/people',
          body: JSON.stringify({
            email: `bench-${runId}-b${created}@example.com`,
            firstName: 'Bench',
            lastName: 'Mark',
          }),
        };
      },
    },
    {
      name: '_entities x 100',
      service: () =>
        graphql(`query($r: [_Any!]!) { _entities(representations: $r) { ... on Person { ${PERSON_FIELDS} } } }`, {
          r: Array.from({ length: 100 }, () => ({ __typename: 'Person', email: seedEmail(randomIndex(n)) })),
        }),
      baseline: () => ({
        method: 'POST',
        path: '/entities',
        body: JSON.stringify({ emails: Array.from({ length: 100 }, () => seedEmail(randomIndex(n))) }),
      }),
    },
  ];
}

function requestHeaders(token: string | null): Record<string, string> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  return headers;
}

/**
 * Sends one request of a workload and refuses to time a target that does not answer it: a
 * GraphQL error arrives with status 200, which autocannon alone would count as a success.
 */
async function checkAnswer(
  target: Target,
  token: string | null,
  next: () => { method: string; path: string; body?: string },
): Promise<void> {
  const { method, path: requestPath, body } = next();
  const response = await fetch(`${target.url}${requestPath}`, { method, headers: requestHeaders(token), body });
  const text = await response.text();
  let answer: { data?: unknown; errors?: unknown } | undefined;
  try {
    answer = JSON.parse(text) as typeof answer;
  } catch {
    // reported below
  }
  if (response.status !== 200 || !answer?.data || answer.errors) {
    throw new Error(`${target.name} did not answer ${method} ${requestPath}: ${response.status} ${text.slice(0, 300)}`);
  }
}

async function measure(
  url: string,
  token: string | null,
  next: () => { method: string; path: string; body?: string },
  seconds = duration,
): Promise<Sample> {
  const headers = requestHeaders(token);
  const result = await autocannon({
    url,
    connections,
    duration: seconds,
    headers,
    requests: [
      {
        setupRequest: (request) => {
          const built = next();
          return { ...request, method: built.method, path: built.path, body: built.body };
        },
      },
    ],
  } as autocannon.Options);
  return {
    requestsPerSecond: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.non2xx + result.timeouts,
  };
}

const median = (numbers: number[]) => {
  const sorted = [...numbers].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
};

async function prepareDatabase(databaseUrl: string, n: number): Promise<string> {
  const database = await Database.open(databaseUrl);
  try {
    // Seeding is idempotent but a million-row pass takes a while: skip it when person N is there.
    const [seeded] = await database.dataSource.query(
      `SELECT COUNT(*) AS n FROM person WHERE email = ${database.dialect === 'postgres' ? '$1' : '?'}`,
      [seedEmail(n)],
    );
    if (Number(seeded.n) === 0) await seedPeople(database, n);
    const tokens = new TokenService(database);
    return (await tokens.create(`bench-${randomUUID().slice(0, 8)}`, ['admin'])).token;
  } finally {
    await database.close();
  }
}

function defaultDatabaseUrl(n: number): string {
  mkdirSync(dataDir, { recursive: true });
  return `sqlite:${path.join(dataDir, `bench-${n}.sqlite`)}`;
}

const SERVICE_ENV = {
  NODE_ENV: 'production',
  LOG_LEVEL: 'warn',
  // The benchmark sends far more than the default per-token rate: the limiter runs, never refuses.
  RATE_LIMIT_PER_SECOND: '1000000',
  RATE_LIMIT_BURST: '1000000',
};

async function main(): Promise<void> {
  const databaseUrl = options['database-url'] ?? defaultDatabaseUrl(count);
  process.stderr.write(`seeding ${count} people into ${databaseUrl} …\n`);
  const token = await prepareDatabase(databaseUrl, count);

  const service = await start('service', path.join(root, 'dist', 'main.js'), databaseUrl, SERVICE_ENV);
  const baseline = await start('baseline', path.join(root, 'build', 'bench', 'bench', 'baseline.js'), databaseUrl, {});
  const apolloAlone = apolloAloneWanted
    ? await start('apollo alone', path.join(root, 'build', 'bench', 'bench', 'apollo-alone.js'), databaseUrl, {})
    : undefined;
  const rows: string[] = [];
  try {
    const only = options.only?.split(',').map((prefix) => prefix.trim());
    for (const workload of workloads(count)) {
      if (only && !only.some((prefix) => workload.name.startsWith(prefix))) continue;
      const samples: Record<Target['name'], Sample[]> = { service: [], baseline: [], 'apollo alone': [] };
      // Apollo alone gets the service's requests, token included: the same bytes on the wire.
      const alone = workload.apolloAlone ? apolloAlone : undefined;
      await checkAnswer(service, token, workload.service);
      await checkAnswer(baseline, null, workload.baseline);
      if (alone) await checkAnswer(alone, token, workload.service);
      if (warmup > 0) {
        await measure(service.url, token, workload.service, warmup);
        await measure(baseline.url, null, workload.baseline, warmup);
        if (alone) await measure(alone.url, token, workload.service, warmup);
      }
      for (let round = 0; round < rounds; round += 1) {
        samples.service.push(await measure(service.url, token, workload.service));
        samples.baseline.push(await measure(baseline.url, null, workload.baseline));
        if (alone) samples['apollo alone'].push(await measure(alone.url, token, workload.service));
      }
      rows.push(tableRow(workload.name, samples));
      process.stderr.write(`${rows.at(-1)}\n`);
    }
  } finally {
    const rss = peakRssMb(service.process.pid as number);
    await stop(service);
    await stop(baseline);
    if (apolloAlone) await stop(apolloAlone);
    rows.push(`\nPeak RSS of the service at N = ${count}: ${rss.toFixed(0)} MB`);
  }

  const depthLines =
    depthCount > 0 ? await measureDepth(options['database-url'] ?? defaultDatabaseUrl(depthCount), depthCount) : [];
  const report = renderReport(databaseUrl, rows, depthLines);
  process.stdout.write(report);
  if (!quick || options.out) writeFileSync(options.out ?? path.join(root, 'bench', 'RESULTS.md'), report);
}

function summarize(samples: Sample[]) {
  return {
    rps: median(samples.map((s) => s.requestsPerSecond)),
    p50: median(samples.map((s) => s.p50)),
    p99: median(samples.map((s) => s.p99)),
    errors: samples.reduce((sum, s) => sum + s.errors, 0),
  };
}

const ratioOf = (a: number, b: number) => (b > 0 ? (a / b).toFixed(2) : 'n/a');

function tableRow(name: string, samples: Record<Target['name'], Sample[]>): string {
  const service = summarize(samples.service);
  const baseline = summarize(samples.baseline);
  const cells = [
    name,
    service.rps.toFixed(0),
    `${service.p50} / ${service.p99}`,
    baseline.rps.toFixed(0),
    `${baseline.p50} / ${baseline.p99}`,
    ratioOf(service.rps, baseline.rps),
    `${service.errors} / ${baseline.errors}`,
  ];
  if (apolloAloneWanted) {
    if (samples['apollo alone'].length > 0) {
      const alone = summarize(samples['apollo alone']);
      cells.push(
        alone.rps.toFixed(0),
        ratioOf(alone.rps, baseline.rps),
        ratioOf(service.rps, alone.rps),
        String(alone.errors),
      );
    } else {
      cells.push('-', '-', '-', '-');
    }
  }
  return `| ${cells.join(' | ')} |`;
}

/** Latency of the first page vs a page at depth N/2 (keyset cursor), on N people. */
async function measureDepth(databaseUrl: string, n: number): Promise<string[]> {
  process.stderr.write(`seeding ${n} people into ${databaseUrl} for the depth workload …\n`);
  const token = await prepareDatabase(databaseUrl, n);
  const service = await start('service', path.join(root, 'dist', 'main.js'), databaseUrl, SERVICE_ENV);
  try {
    const query = `query($after: String) { people(first: 25, after: $after) { nodes { ${PAGE_FIELDS} } } }`;
    if (warmup > 0) await measure(service.url, token, () => graphql(query), warmup);
    const first = await measure(service.url, token, () => graphql(query));
    const deep = await measure(service.url, token, () =>
      graphql(query, { after: cursorFor(seedEmail(Math.floor(n / 2))) }),
    );
    const rss = peakRssMb(service.process.pid as number);
    return [
      `Page latency at N = ${n}: first page p50 ${first.p50} ms / p99 ${first.p99} ms (${first.requestsPerSecond.toFixed(0)} req/s); ` +
        `page at depth N/2 p50 ${deep.p50} ms / p99 ${deep.p99} ms (${deep.requestsPerSecond.toFixed(0)} req/s); ` +
        `ratio deep/first (p50) ${(deep.p50 / Math.max(first.p50, 0.001)).toFixed(2)}, req/s first/deep ${(first.requestsPerSecond / Math.max(deep.requestsPerSecond, 1)).toFixed(2)}`,
      `Peak RSS of the service at N = ${n} under load: ${rss.toFixed(0)} MB`,
    ];
  } finally {
    await stop(service);
  }
}

function renderReport(databaseUrl: string, rows: string[], depthLines: string[]): string {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  return [
    '# Benchmark results',
    '',
    `Command: \`npm run bench -- ${process.argv.slice(2).join(' ')}\``.replace(' -- `', '`'),
    '',
    `Machine: ${cpu}, ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ${os.type()} ${os.release()}`,
    `Database: ${databaseUrl.startsWith('sqlite:') ? 'SQLite (WAL, synchronous=FULL)' : 'PostgreSQL'}; N = ${count}; ` +
      `${connections} connections, ${duration} s per round after ${warmup} s of unmeasured warm-up, ${rounds} rounds, service and baseline${apolloAloneWanted ? ' (and Apollo alone, on the read workloads)' : ''} alternating.`,
    '',
    '| workload | service req/s | service p50/p99 ms | baseline req/s | baseline p50/p99 ms | ratio | errors (svc/base) |' +
      (apolloAloneWanted
        ? ' Apollo alone req/s | Apollo alone / baseline | service / Apollo alone | Apollo alone errors |'
        : ''),
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |' + (apolloAloneWanted ? ' ---: | ---: | ---: | ---: |' : ''),
    ...rows,
    ...depthLines.map((line) => `\n${line}`),
    '',
  ].join('\n');
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
