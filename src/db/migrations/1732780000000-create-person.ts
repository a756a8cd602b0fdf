import { Table, TableCheck, TableIndex, type MigrationInterface, type QueryRunner } from 'typeorm';

/** PostgreSQL compares ordered text byte-wise like SQLite, so both give the same order. */
function orderedText(queryRunner: QueryRunner) {
  return queryRunner.connection.options.type === 'postgres' ? { collation: 'C' } : {};
}

export class CreatePerson1732780000000 implements MigrationInterface {
  name = 'CreatePerson1732780000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    const ordered = orderedText(queryRunner);
    const text = (name: string) => ({ name, type: 'varchar', length: '200', isNullable: true });
    await queryRunner.createTable(
      new Table({
        name: 'person',
        columns: [
          { name: 'id', type: 'varchar', length: '36', isPrimary: true, ...ordered },
          { name: 'email', type: 'varchar', length: '254', ...ordered },
          text('first_name'),
          text('last_name'),
          text('organization'),
          text('business_unit'),
          text('department'),
          text('group_name'),
          text('team'),
          { name: 'created_at', type: 'varchar', length: '24', ...ordered },
          { name: 'updated_at', type: 'varchar', length: '24', ...ordered },
          { name: 'version', type: 'integer', default: 1 },
        ],
        // Emails are stored lower-cased, so this unique index makes them unique in any letter case.
        checks: [new TableCheck({ name: 'CHK_person_email_lower', expression: 'email = lower(email)' })],
        indices: [
          new TableIndex({ name: 'UQ_person_email', columnNames: ['email'], isUnique: true }),
          new TableIndex({ name: 'IDX_person_created_at_id', columnNames: ['created_at', 'id'] }),
          new TableIndex({ name: 'IDX_person_updated_at_id', columnNames: ['updated_at', 'id'] }),
        ],
      }),
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropTable('person');
  }
}
