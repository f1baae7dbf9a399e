import type { Kysely } from 'kysely';

export async function up (db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('todo')
    .addColumn('id', 'serial', (col) => col.primaryKey())
    .addColumn('title', 'varchar(60)', (col) => col.notNull())
    .addColumn('done', 'boolean', (col) => col.notNull())
    .addColumn('priority', 'integer', (col) => col.notNull())
    .execute();
}

export async function down (db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('todo').execute();
}
