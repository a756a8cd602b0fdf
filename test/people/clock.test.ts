import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { databaseTargets, type TestDatabase } from '../helpers/databases';
import { startServer, type TestServer } from '../helpers/server';

const FIELDS = 'email createdAt updatedAt version';
const CREATE = `mutation Create($input: CreatePersonInput!) { createPerson(input: $input) { ${FIELDS} } }`;
const UPDATE = `mutation Update($input: UpdatePersonInput!) { updatePerson(input: $input) { ${FIELDS} } }`;
const CHANGED_SINCE = `query Changed($since: DateTimeISO!) {
  people(first: 100, orderBy: EMAIL_ASC, filter: { updatedSince: $since }) { nodes { email version } }
}`;

interface Stamped {
  email: string;
  createdAt: string;
  updatedAt: string;
  version: number;
}

/**
 * Write times against clocks that are not monotonic: a clock stepped back by NTP while the
 * service runs (simulated with a fake `Date` in this process, which hosts the service), and a
 * row stamped by a clock that was ahead (another replica, or this one before a restart).
 */
describe.each(databaseTargets)('write times when a clock goes back, on $kind', (target) => {
  let database: TestDatabase;
  let server: TestServer;

  beforeAll(async () => {
    database = await target.create();
    server = await startServer(database.url);
  });

  afterAll(async () => {
    await server?.close();
    await database?.drop();
  });

  afterEach(() => {
    vi.useRealTimers();
  });

  async function write(query: string, input: Record<string, unknown>): Promise<Stamped> {
    const response = await server.gql(query, { input });
    expect(response.body.errors).toBeUndefined();
    return Object.values(response.body.data ?? {})[0] as Stamped;
  }

  it('a row stamped by a clock that was ahead: its next version keeps that time, never an earlier one', async () => {
    const email = 'ahead@example.com';
    await write(CREATE, { email });
    const ahead = '2099-01-01T00:00:00.000Z';
    await server.app.database.sql.all(
      "UPDATE person SET updated_at = $1, version = 2 WHERE email = 'ahead@example.com'",
      [ahead],
    );

    const next = await write(UPDATE, { email, team: 'Later' });
    expect(next).toMatchObject({ version: 3, updatedAt: ahead });
    const changed = await server.gql(CHANGED_SINCE, { since: ahead });
    expect(changed.body).toEqual({ data: { people: { nodes: [{ email, version: 3 }] } } });
  });

  // SQLite stamps with the service's clock, PostgreSQL with its own: each has its own test.
  if (target.kind === 'sqlite') {
    it("the service's clock stepped back a minute: no write after the step is stamped earlier than one before it", async () => {
      const before = await write(CREATE, { email: 'before-step@example.com' });
      const updatedBefore = await write(UPDATE, { email: 'before-step@example.com', team: 'One' });
      // What a poller following changes saw last, and will ask from.
      const since = updatedBefore.updatedAt;

      vi.useFakeTimers({ toFake: ['Date'], now: Date.parse(since) - 60_000 });
      const created = await write(CREATE, { email: 'after-step@example.com' });
      const updatedAfter = await write(UPDATE, { email: 'before-step@example.com', team: 'Two' });

      expect(created.createdAt >= since).toBe(true);
      expect(created.updatedAt).toBe(created.createdAt);
      expect(updatedAfter.updatedAt >= since).toBe(true);
      expect(updatedAfter.updatedAt >= before.createdAt).toBe(true);
      // The poller finds both writes made after the step (and the row stamped in 2099 above).
      const changed = await server.gql(CHANGED_SINCE, { since });
      expect(changed.body).toEqual({
        data: {
          people: {
            nodes: [
              { email: 'after-step@example.com', version: 1 },
              { email: 'ahead@example.com', version: 3 },
              { email: 'before-step@example.com', version: 3 },
            ],
          },
        },
      });
    });
  }

  if (target.kind === 'postgres') {
    it("creates and updates are stamped by the database's clock, whatever the replica's clock says", async () => {
      const [{ now }] = await server.app.database.sql.all<{ now: string }>(
        `SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS now`,
      );
      // This replica's clock is an hour behind the database's.
      vi.useFakeTimers({ toFake: ['Date'], now: Date.parse(now) - 3_600_000 });
      const created = await write(CREATE, { email: 'db-clock@example.com' });
      const updated = await write(UPDATE, { email: 'db-clock@example.com', team: 'Moved' });

      for (const time of [created.createdAt, created.updatedAt, updated.updatedAt]) {
        expect(Date.parse(time) - Date.parse(now)).toBeGreaterThanOrEqual(0);
        expect(Date.parse(time) - Date.parse(now)).toBeLessThan(60_000);
      }
      expect(created.updatedAt).toBe(created.createdAt);
      expect(updated.updatedAt >= created.updatedAt).toBe(true);
    });
  }
});
