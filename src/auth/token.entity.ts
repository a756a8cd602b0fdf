import { Column, Entity, PrimaryColumn } from 'typeorm';

/** An API token's metadata. The secret itself is never stored, only its SHA-256. */
@Entity({ name: 'api_token' })
export class ApiToken {
  @PrimaryColumn({ type: 'varchar', length: 36 })
  id!: string;

  @Column({ type: 'varchar', length: 100 })
  name!: string;

  @Column({ name: 'token_hash', type: 'varchar', length: 64 })
  tokenHash!: string;

  /** Comma-separated scopes, e.g. `people:read,people:write`. */
  @Column({ type: 'varchar', length: 200 })
  scopes!: string;

  @Column({ name: 'created_at', type: 'varchar', length: 24 })
  createdAt!: string;

  @Column({ name: 'expires_at', type: 'varchar', length: 24, nullable: true })
  expiresAt!: string | null;

  @Column({ name: 'revoked_at', type: 'varchar', length: 24, nullable: true })
  revokedAt!: string | null;

  @Column({ name: 'last_used_at', type: 'varchar', length: 24, nullable: true })
  lastUsedAt!: string | null;
}
