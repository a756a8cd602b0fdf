/**
 * The bare baseline for the benchmark: node:http + the same database driver + hand-written SQL +
 * JSON.stringify, answering the same JSON shapes as the GraphQL service, with no GraphQL, no
 * ORM and no authentication. It is what "as fast as the database allows" looks like here.
 *
 * Routes: GET /people?first=25 · GET /person?email=… · POST /people {email,…} · POST /entities {emails}
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { openStore, type Row, type Store } from './stores';

function readJson(request: IncomingMessage): Promise<Row> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as Row);
      } catch (error) {
        reject(error);
      }
    });
    request.on('error', reject);
  });
}

function send(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  response.end(text);
}

async function route(store: Store, request: IncomingMessage, response: ServerResponse): Promise<void> {
  const url = new URL(request.url ?? '/', 'http://localhost');
  if (request.method === 'GET' && url.pathname === '/people') {
    const nodes = await store.page(Number(url.searchParams.get('first') ?? 25));
    return send(response, 200, { data: { people: { nodes } } });
  }
  if (request.method === 'GET' && url.pathname === '/person') {
    const person = await store.person((url.searchParams.get('email') ?? '').trim().toLowerCase());
    return send(response, 200, { data: { person: person ?? null } });
  }
  if (request.method === 'POST' && url.pathname === '/people') {
    const input = await readJson(request);
    const now = new Date().toISOString();
    const person = {
      id: randomUUID(),
      email: String(input.email).trim().toLowerCase(),
      firstName: input.firstName ?? null,
      lastName: input.lastName ?? null,
      createdAt: now,
      updatedAt: now,
    };
    await store.create(person);
    return send(response, 200, { data: { createPerson: { ...person, version: 1 } } });
  }
  if (request.method === 'POST' && url.pathname === '/entities') {
    const emails = ((await readJson(request)).emails as string[]).map((email) => email.toLowerCase());
    const rows = await store.byEmails(emails);
    const byEmail = new Map(rows.map((row) => [row.email as string, row]));
    return send(response, 200, { data: { _entities: emails.map((email) => byEmail.get(email) ?? null) } });
  }
  send(response, 404, { error: 'not found' });
}

const store = openStore();
const server = http.createServer((request, response) => {
  route(store, request, response).catch((error: unknown) => send(response, 500, { error: String(error) }));
});
server.listen(Number(process.env.PORT ?? 4001), '127.0.0.1', () => process.stdout.write('baseline ready\n'));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
