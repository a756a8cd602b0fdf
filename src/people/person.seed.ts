import { createHash } from 'node:crypto';
import type { Database } from '../db/database';

const SEED_EPOCH_MS = Date.parse('2024-01-01T00:00:00.000Z');
const COLUMNS = [
  'id',
  'email',
  'first_name',
  'last_name',
  'organization',
  'business_unit',
  'department',
  'group_name',
  'team',
  'created_at',
  'updated_at',
  'version',
] as const;
const ROWS_PER_STATEMENT = 500;
const ROWS_PER_TRANSACTION = 20_000;

/** A UUID v4 that is the same for person i on every run, so seeded data is reproducible. */
function seededUuid(index: number): string {
  const hex = createHash('sha256').update(`person-${index}`).digest('hex');
  const variant = ((parseInt(hex[16], 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

export function seedEmail(index: number): string {
  return `user${String(index).padStart(7, '0')}@example.com`;
}

/** Person i (1-based) of the design's deterministic data set. */
export function seededPersonRow(index: number): (string | number)[] {
  const timestamp = new Date(SEED_EPOCH_MS + index * 1000).toISOString();
  return [
    seededUuid(index),
    seedEmail(index),
    `First${index}`,
    `Last${index}`,
    `Org${index % 5}`,
    `BU${index % 7}`,
    `Dept${index % 11}`,
    `Group${index % 13}`,
    `Team${index % 10}`,
    timestamp,
    timestamp,
    1,
  ];
}

/**
 * Inserts people 1..count in batched multi-row statements and large transactions; people that
 * already exist are left as they are, so seeding twice is harmless. Returns how many it inserted.
 */
export async function seedPeople(
  database: Database,
  count: number,
  onProgress?: (done: number) => void,
): Promise<number> {
  let inserted = 0;
  for (let start = 1; start <= count; start += ROWS_PER_TRANSACTION) {
    const end = Math.min(count, start + ROWS_PER_TRANSACTION - 1);
    await database.write(async (sql) => {
      for (let first = start; first <= end; first += ROWS_PER_STATEMENT) {
        const last = Math.min(end, first + ROWS_PER_STATEMENT - 1);
        const values: (string | number)[] = [];
        const tuples: string[] = [];
        for (let index = first; index <= last; index += 1) {
          const row = seededPersonRow(index);
          tuples.push(`(${row.map((_, column) => `$${values.length + column + 1}`).join(', ')})`);
          values.push(...row);
        }
        inserted += await sql.run(
          `INSERT INTO person (${COLUMNS.join(', ')}) VALUES ${tuples.join(', ')} ON CONFLICT DO NOTHING`,
          values,
        );
      }
    });
    onProgress?.(end);
  }
  return inserted;
}
