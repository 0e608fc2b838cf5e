import { promises as fs } from 'fs';
import path from 'path';
import crypto from 'crypto';
import { Kysely, sql } from 'kysely';
import { logger } from '../lib/logger';

// The seed's runner, with two repairs that keep its table and checksums unchanged:
// each migration and its tracking row commit together, and replicas starting at once
// take turns through an advisory lock (the same key migratekit uses).

interface Migration {
  version: string;
  filename: string;
  sql: string;
  checksum: string;
}

interface SchemaMigration {
  version: string;
  applied_at: Date;
  checksum: string;
  execution_time_ms: number;
}

const TRACKING_TABLE = 'schema_migrations';
const LOCK_WAIT_MS = 60_000;

export async function runMigrations(db: Kysely<any>): Promise<void> {
  const startTime = Date.now();
  logger.info('Starting database migrations...');

  try {
    await db.connection().execute(async (conn) => {
      await acquireLock(conn);
      try {
        await ensureMigrationsTable(conn);
        const migrations = await loadMigrations();
        logger.info(`Found ${migrations.length} migration files`);

        // Computed after the lock: another replica may have applied some meanwhile.
        const applied = await getAppliedMigrations(conn);
        const appliedVersions = new Set(applied.map((m) => m.version));
        const pending = migrations.filter((m) => !appliedVersions.has(m.version));

        if (pending.length === 0) {
          logger.info('All migrations up to date');
          return;
        }
        logger.info(`Applying ${pending.length} pending migrations`);
        for (const migration of pending) {
          await applyMigration(conn, migration);
        }
      } finally {
        await sql`
          SELECT pg_advisory_unlock(hashtextextended('migratekit:' || current_database() || ':' || ${TRACKING_TABLE}, 0))
        `.execute(conn);
      }
    });
    logger.info(`All migrations completed successfully in ${Date.now() - startTime}ms`);
  } catch (error) {
    logger.error({ err: error }, 'Migration failed');
    throw new Error(`Database migration failed: ${(error as Error).message}`);
  }
}

async function acquireLock(conn: Kysely<any>): Promise<void> {
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    const { rows } = await sql<{ locked: boolean }>`
      SELECT pg_try_advisory_lock(hashtextextended('migratekit:' || current_database() || ':' || ${TRACKING_TABLE}, 0)) AS locked
    `.execute(conn);
    if (rows[0]?.locked) return;
    if (Date.now() > deadline) {
      throw new Error(`another migration runner held the lock for ${LOCK_WAIT_MS}ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

async function ensureMigrationsTable(db: Kysely<any>): Promise<void> {
  await sql`
    CREATE TABLE IF NOT EXISTS schema_migrations (
      version TEXT PRIMARY KEY,
      applied_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
      checksum TEXT NOT NULL,
      execution_time_ms INTEGER NOT NULL
    )
  `.execute(db);

  await sql`
    CREATE INDEX IF NOT EXISTS idx_schema_migrations_applied_at
    ON schema_migrations(applied_at DESC)
  `.execute(db);
}

async function loadMigrations(): Promise<Migration[]> {
  const migrationsDir = path.join(__dirname, '../../migrations');

  try {
    const files = await fs.readdir(migrationsDir);
    const sqlFiles = files.filter((f) => f.endsWith('.sql')).sort(); // Alphabetical = numerical order

    const migrations: Migration[] = [];
    for (const filename of sqlFiles) {
      const sqlContent = await fs.readFile(path.join(migrationsDir, filename), 'utf-8');
      const checksum = crypto.createHash('sha256').update(sqlContent).digest('hex').substring(0, 16);
      migrations.push({ version: filename.replace('.sql', ''), filename, sql: sqlContent, checksum });
    }
    return migrations;
  } catch (error) {
    if ((error as any).code === 'ENOENT') {
      // A service image without its migrations must not start: see the Dockerfile.
      throw new Error(`Migrations directory not found: ${migrationsDir}`);
    }
    throw error;
  }
}

async function getAppliedMigrations(db: Kysely<any>): Promise<SchemaMigration[]> {
  const result = await sql<SchemaMigration>`
    SELECT version, applied_at, checksum, execution_time_ms
    FROM schema_migrations
    ORDER BY version ASC
  `.execute(db);
  return result.rows;
}

async function applyMigration(db: Kysely<any>, migration: Migration): Promise<void> {
  const startTime = Date.now();
  logger.info(`Applying migration: ${migration.filename}`);

  try {
    // The migration and its row commit together, or neither does.
    await db.transaction().execute(async (trx) => {
      await sql.raw(migration.sql).execute(trx);
      const executionTime = Date.now() - startTime;
      await sql`
        INSERT INTO schema_migrations (version, checksum, execution_time_ms)
        VALUES (${migration.version}, ${migration.checksum}, ${executionTime})
      `.execute(trx);
    });
    logger.info(`✓ Migration ${migration.filename} applied in ${Date.now() - startTime}ms`);
  } catch (error) {
    logger.error({ err: error }, `✗ Migration ${migration.filename} failed`);
    throw error;
  }
}
