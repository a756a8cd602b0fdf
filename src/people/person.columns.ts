import type { FieldNode, FragmentDefinitionNode, GraphQLResolveInfo, SelectionSetNode } from 'graphql';
import type { Person } from './person.entity';

export type PersonField = keyof Person;

/** Each GraphQL field of Person and the column that stores it. */
const COLUMN_OF: Record<PersonField, string> = {
  id: 'id',
  email: 'email',
  firstName: 'first_name',
  lastName: 'last_name',
  organization: 'organization',
  businessUnit: 'business_unit',
  department: 'department',
  group: 'group_name',
  team: 'team',
  createdAt: 'created_at',
  updatedAt: 'updated_at',
  version: 'version',
};

export const ALL_PERSON_FIELDS = Object.keys(COLUMN_OF) as PersonField[];

export function columnOf(field: PersonField): string {
  return COLUMN_OF[field];
}

/** The SELECT list of each set of fields, by the set's bit mask: built once per distinct selection. */
const selectListsByMask = new Map<number, string>();

/** `first_name AS "firstName", …`: rows come back shaped like Person, in a stable order. */
export function selectList(fields: Iterable<PersonField>): string {
  const wanted = new Set(fields);
  let mask = 0;
  ALL_PERSON_FIELDS.forEach((field, index) => {
    if (wanted.has(field)) mask |= 1 << index;
  });
  let list = selectListsByMask.get(mask);
  if (list === undefined) {
    list = ALL_PERSON_FIELDS.filter((field) => wanted.has(field))
      .map((field) => (COLUMN_OF[field] === field ? field : `${COLUMN_OF[field]} AS "${field}"`))
      .join(', ');
    selectListsByMask.set(mask, list);
  }
  return list;
}

function isPersonField(name: string): name is PersonField {
  return Object.hasOwn(COLUMN_OF, name);
}

function collectFields(
  selectionSet: SelectionSetNode | undefined,
  fragments: Record<string, FragmentDefinitionNode>,
  into: FieldNode[],
): void {
  for (const selection of selectionSet?.selections ?? []) {
    if (selection.kind === 'Field') into.push(selection);
    else if (selection.kind === 'InlineFragment') collectFields(selection.selectionSet, fragments, into);
    else collectFields(fragments[selection.name.value]?.selectionSet, fragments, into);
  }
}

/**
 * What each field of each operation selects, keyed by the field's nodes (the same for every run of
 * a compiled operation): the selection is read from the query document once, not per request.
 */
const requestedByFieldNodes = new WeakMap<readonly FieldNode[], Map<string, Set<PersonField>>>();

/**
 * The Person fields a query selects below the current field, following `paths` (for `people`:
 * `nodes` and `edges.node`), so that only those columns are read.
 */
export function requestedPersonFields(info: GraphQLResolveInfo, paths: string[][] = [[]]): ReadonlySet<PersonField> {
  let byPaths = requestedByFieldNodes.get(info.fieldNodes);
  if (!byPaths) requestedByFieldNodes.set(info.fieldNodes, (byPaths = new Map()));
  const key = paths.map((path) => path.join('.')).join(',');
  let requested = byPaths.get(key);
  if (!requested) {
    requested = collectRequestedFields(info, paths);
    byPaths.set(key, requested);
  }
  return requested;
}

function collectRequestedFields(info: GraphQLResolveInfo, paths: string[][]): Set<PersonField> {
  const requested = new Set<PersonField>();
  for (const path of paths) {
    let level: FieldNode[] = [...info.fieldNodes];
    for (const name of path) {
      const children: FieldNode[] = [];
      for (const node of level) collectFields(node.selectionSet, info.fragments, children);
      level = children.filter((child) => child.name.value === name);
    }
    const leaves: FieldNode[] = [];
    for (const node of level) collectFields(node.selectionSet, info.fragments, leaves);
    for (const leaf of leaves) if (isPersonField(leaf.name.value)) requested.add(leaf.name.value);
  }
  return requested;
}
