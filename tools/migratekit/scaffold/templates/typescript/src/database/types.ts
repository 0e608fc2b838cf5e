// Table types for Kysely: add one interface per table your migrations create.
export interface SchemaMigrationsTable {
  version: string;
  applied_at: Date;
  checksum: string;
  execution_time_ms: number;
}

export interface Database {
  schema_migrations: SchemaMigrationsTable;
}
