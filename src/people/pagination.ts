import { badUserInput } from '../errors';
import type { Person } from './person.entity';
import { PeopleOrder } from './person.inputs';
import { isStorableId, tryNormalizeEmail } from './person.validation';

export const DEFAULT_PAGE_SIZE = 25;

type KeyProperty = 'email' | 'createdAt' | 'updatedAt' | 'id';

/**
 * The keyset of each order: the sort columns, ending in a unique one so that every row has
 * exactly one position. Each is served by an index (email unique; created_at+id; updated_at+id).
 */
const ORDER_KEYS: Record<PeopleOrder, { keys: KeyProperty[]; descending: boolean }> = {
  [PeopleOrder.EMAIL_ASC]: { keys: ['email'], descending: false },
  [PeopleOrder.EMAIL_DESC]: { keys: ['email'], descending: true },
  [PeopleOrder.CREATED_AT_ASC]: { keys: ['createdAt', 'id'], descending: false },
  [PeopleOrder.CREATED_AT_DESC]: { keys: ['createdAt', 'id'], descending: true },
  [PeopleOrder.UPDATED_AT_DESC]: { keys: ['updatedAt', 'id'], descending: true },
};

export interface PageArgs {
  first?: number | null;
  after?: string | null;
  last?: number | null;
  before?: string | null;
  orderBy: PeopleOrder;
}

/** A validated page request: which way to read, how many rows, and between which positions. */
export interface PageRequest {
  keys: KeyProperty[];
  /** Whether the order itself is descending. */
  descending: boolean;
  /** A page of the last rows (`last`, or `before` alone), read from the end of its window. */
  backward: boolean;
  size: number;
  /** Key values of the row the window starts after (`after`), if any. */
  after: string[] | null;
  /** Key values of the row the window ends before (`before`), if any. */
  before: string[] | null;
}

/** Cursors are opaque to clients: base64url of the order name and the row's key values. */
export function encodeCursor(order: PeopleOrder, person: Pick<Person, KeyProperty>): string {
  const values = ORDER_KEYS[order].keys.map((key) => person[key]);
  return Buffer.from(JSON.stringify([order, ...values])).toString('base64url');
}

const ORDER_NAMES = new Set<string>(Object.values(PeopleOrder));

/**
 * Timestamps are stored as Date#toISOString writes them for years 0000-9999: a real instant,
 * printed back the same in 24 characters (other years print as `+010000-…` or `-000001-…`).
 */
function isStoredTimestamp(value: string): boolean {
  const time = Date.parse(value);
  return value.length === 24 && !Number.isNaN(time) && new Date(time).toISOString() === value;
}

/** Whether a value has the form the service stores for a key, and so could be in a cursor it made. */
const IS_STORED_FORM: Record<KeyProperty, (value: string) => boolean> = {
  // Emails are stored normalised, and normalising a stored one changes nothing.
  email: (value) => tryNormalizeEmail(value) === value,
  createdAt: isStoredTimestamp,
  updatedAt: isStoredTimestamp,
  id: isStorableId,
};

function decodeCursor(cursor: string, order: PeopleOrder, argument: string): string[] {
  const invalid = () => badUserInput(`Invalid cursor in "${argument}"`, argument);
  let decoded: unknown;
  try {
    decoded = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw invalid();
  }
  if (!Array.isArray(decoded) || !decoded.every((value) => typeof value === 'string')) throw invalid();
  // Only what encodeCursor can have written: an order name, then that order's key values in the
  // forms the service stores. A value in any other form was never handed out (and a NUL in one
  // would make PostgreSQL refuse the parameter).
  const [cursorOrder, ...values] = decoded as string[];
  if (!ORDER_NAMES.has(cursorOrder)) throw invalid();
  const { keys } = ORDER_KEYS[cursorOrder as PeopleOrder];
  if (values.length !== keys.length || !values.every((value, index) => IS_STORED_FORM[keys[index]](value))) {
    throw invalid();
  }
  if (cursorOrder !== order) {
    throw badUserInput(`The cursor in "${argument}" was made for orderBy ${cursorOrder}, not ${order}`, argument);
  }
  return values;
}

function checkSize(size: number, argument: string, maxPageSize: number): number {
  if (!Number.isInteger(size) || size < 1 || size > maxPageSize) {
    throw badUserInput(`"${argument}" must be between 1 and ${maxPageSize}`, argument);
  }
  return size;
}

/**
 * As Relay's connection spec has it: `after` and `before` bound a window of the order (either,
 * both or neither), and `first` takes its first rows, `last` its last ones. With no size, a page
 * is the window's first rows, or its last when only `before` is given.
 */
export function toPageRequest(args: PageArgs, maxPageSize: number): PageRequest {
  const { first, after, last, before, orderBy } = args;
  if (first != null && last != null) throw badUserInput('Give either "first" or "last", not both', 'first');
  const backward = last != null || (first == null && before != null && after == null);
  const { keys, descending } = ORDER_KEYS[orderBy];
  return {
    keys,
    descending,
    backward,
    // The default never exceeds the configured maximum: a request that names no size is never refused.
    size: checkSize(
      (backward ? last : first) ?? Math.min(DEFAULT_PAGE_SIZE, maxPageSize),
      backward ? 'last' : 'first',
      maxPageSize,
    ),
    after: after == null ? null : decodeCursor(after, orderBy, 'after'),
    before: before == null ? null : decodeCursor(before, orderBy, 'before'),
  };
}
