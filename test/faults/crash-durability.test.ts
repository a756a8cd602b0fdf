import { afterEach, describe, expect, it } from 'vitest';
import { sqliteTarget, type TestDatabase } from '../helpers/databases';
import { printedAdminToken, startMain, stopMain, type MainProcess, killMain } from '../helpers/main-process';
import { openSqliteFile } from '../helpers/sqlite-file';

const ROUNDS = 3;
const CLIENTS = 20;
/** `kill -9` goes out once this many creates of the round have been acknowledged. */
const ACKNOWLEDGED_BEFORE_KILL = 200;

const FIELDS =
  'id email firstName lastName organization businessUnit department group team createdAt updatedAt version';
const CREATE = `mutation Create($input: CreatePersonInput!) { createPerson(input: $input) { ${FIELDS} } }`;

type TextField = 'firstName' | 'lastName' | 'organization' | 'businessUnit' | 'department' | 'group' | 'team';
type Person = Record<TextField | 'id' | 'email' | 'createdAt' | 'updatedAt', string | null> & { version: number };

/** What every field of the person with this email must hold: derived from the email alone. */
function expectedFields(email: string): Record<TextField, string | null> {
  const local = email.split('@')[0];
  return {
    firstName: `First ${local}`,
    lastName: `Last ${local} ✓ é 中`,
    organization: `Org ${local.length % 5}`,
    businessUnit: local.endsWith('0') ? null : `BU ${local}`,
    department: `Dept ${local}`.repeat(8),
    group: `Group ${local}`,
    team: `Team ${local}`,
  };
}

const COLUMNS = `id, email, first_name AS "firstName", last_name AS "lastName", organization,
  business_unit AS "businessUnit", department, group_name AS "group", team, created_at AS "createdAt",
  updated_at AS "updatedAt", version`;

async function graphql(graphqlUrl: string, token: string, query: string, variables: Record<string, unknown>) {
  const response = await fetch(graphqlUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  return {
    status: response.status,
    body: (await response.json()) as { data?: Record<string, unknown>; errors?: unknown },
  };
}

describe('kill -9 while 20 clients create people (node dist/main.js on sqlite)', () => {
  let database: TestDatabase | undefined;
  let main: MainProcess | undefined;

  afterEach(async () => {
    await killMain(main);
    await database?.drop();
  });

  it(`keeps every acknowledged create, complete, over ${ROUNDS} crashes, with integrity_check ok`, async () => {
    database = await sqliteTarget.create();
    const acknowledged = new Map<string, Person>();
    let token = '';
    const figures: string[] = [];

    for (let round = 1; round <= ROUNDS; round += 1) {
      const started = await startMain({ DATABASE_URL: database.url });
      main = started.main;
      if (round === 1) token = await printedAdminToken(main);

      let killed = false;
      let acknowledgedThisRound = 0;
      let inFlightAtKill = 0;
      let inFlight = 0;
      const failures: string[] = [];
      const kill = () => {
        if (killed) return;
        killed = true;
        inFlightAtKill = inFlight;
        main?.child.kill('SIGKILL');
      };

      // Each client creates people in a loop until the process is killed under it.
      const client = async (c: number) => {
        for (let n = 0; !killed; n += 1) {
          const email = `crash-r${round}-c${c}-${n}@example.com`;
          inFlight += 1;
          let answer;
          try {
            answer = await graphql(started.graphqlUrl, token, CREATE, { input: { email, ...expectedFields(email) } });
          } catch {
            // The connection died with the process: this create was not acknowledged.
            if (!killed) failures.push(`${email}: request failed before the kill`);
            return;
          } finally {
            inFlight -= 1;
          }
          if (answer.status !== 200 || answer.body.errors) {
            failures.push(`${email}: ${answer.status} ${JSON.stringify(answer.body)}`);
            return;
          }
          acknowledged.set(email, answer.body.data?.createPerson as Person);
          acknowledgedThisRound += 1;
          if (acknowledgedThisRound >= ACKNOWLEDGED_BEFORE_KILL) kill();
        }
      };
      await Promise.all(Array.from({ length: CLIENTS }, (_, c) => client(c)));
      expect(failures).toEqual([]);
      expect(await main.exited).toBe('SIGKILL');

      // Straight after the crash, on the file itself: intact, and holding every acknowledged create.
      const file = await openSqliteFile(database.url);
      let rows: Person[];
      try {
        expect(await file.all('PRAGMA integrity_check')).toEqual([{ integrity_check: 'ok' }]);
        rows = await file.all<Person>(`SELECT ${COLUMNS} FROM person WHERE email LIKE 'crash-%'`);
      } finally {
        await file.close();
      }
      const stored = new Map(rows.map((row) => [row.email as string, row]));
      const missing = [...acknowledged.keys()].filter((email) => !stored.has(email));
      expect(missing).toEqual([]);
      for (const [email, person] of acknowledged) expect(stored.get(email)).toEqual(person);
      // No row is half-written: each one, acknowledged or caught in flight, is complete.
      for (const row of rows) {
        expect(row).toMatchObject({ ...expectedFields(row.email as string), version: 1, updatedAt: row.createdAt });
        expect(row.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      }
      figures.push(
        `round ${round}: ${acknowledgedThisRound} acknowledged, ${inFlightAtKill} in flight at the kill, ` +
          `${rows.length - acknowledged.size} committed but unacknowledged so far`,
      );
    }

    // The service starts again on the crashed file and serves exactly what the file holds.
    const restarted = await startMain({ DATABASE_URL: database.url });
    main = restarted.main;
    const served = new Map<string, Person>();
    let after: string | null = null;
    for (;;) {
      const page = await graphql(
        restarted.graphqlUrl,
        token,
        `query All($after: String) { people(first: 100, after: $after, filter: { search: "crash-" }) {
          nodes { ${FIELDS} } pageInfo { hasNextPage endCursor } } }`,
        { after },
      );
      expect(page.body.errors).toBeUndefined();
      const people = page.body.data?.people as {
        nodes: Person[];
        pageInfo: { hasNextPage: boolean; endCursor: string | null };
      };
      for (const node of people.nodes) served.set(node.email as string, node);
      if (!people.pageInfo.hasNextPage) break;
      after = people.pageInfo.endCursor;
    }
    for (const [email, person] of acknowledged) expect(served.get(email)).toEqual(person);
    expect(await stopMain(main)).toBe(0);

    console.warn(
      `[faults] crash durability: ${ROUNDS} kill -9 with ${CLIENTS} clients creating; ` +
        `${acknowledged.size} creates acknowledged, ${acknowledged.size} verified field by field in the file ` +
        `and through the restarted service, 0 lost, 0 half-written (${served.size} rows in all). ${figures.join('; ')}.`,
    );
  }, 120_000); // a safety net: each round starts the service, which is slow on a loaded machine
});
