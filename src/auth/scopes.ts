import type { OperationTypeNode } from 'graphql';

export const SCOPES = ['people:read', 'people:write', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

export function isScope(value: string): value is Scope {
  return (SCOPES as readonly string[]).includes(value);
}

/** The scope an operation needs: queries (federation's included) read, mutations write. */
export function requiredScope(operation: OperationTypeNode | 'query' | 'mutation' | 'subscription'): Scope {
  return operation === 'query' ? 'people:read' : 'people:write';
}

/** `admin` covers everything; otherwise the exact scope is needed. */
export function grants(scopes: readonly Scope[], needed: Scope): boolean {
  return scopes.includes('admin') || scopes.includes(needed);
}
