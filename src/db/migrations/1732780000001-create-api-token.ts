import { Table, TableIndex, type MigrationInterface, type QueryRunner } from 'typeorm';

export class CreateApiToken1732780000001 implements MigrationInterface {
  name = 'CreateApiToken1732780000001';

  async up(queryRunner: QueryRunner): Promise<void> {
    const timestamp = (name: string, isNullable: boolean) => ({ name, type: 'varchar', length: '24', isNullable });
    await queryRunner.createTable(
      new Table({
        name: 'api_token',
        columns: [
          { name: 'id', type: 'varchar', length: '36', isPrimary: true },
          { name: 'name', type: 'varchar', length: '100' },
          { name: 'token_hash', type: 'varchar', length: '64' },
          { name: 'scopes', type: 'varchar', length: '200' },
          timestamp('created_at', false),
          timestamp('expires_at', true),
          timestamp('revoked_at', true),
          timestamp('last_used_at', true),
        ],
        indices: [
          new TableIndex({ name: 'UQ_api_token_name', columnNames: ['name'], isUnique: true }),
          new TableIndex({ name: 'UQ_api_token_hash', columnNames: ['token_hash'], isUnique: true }),
        ],
      }),
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropTable('api_token');
  }
}
