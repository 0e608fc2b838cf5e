import { createDatabase } from './database/client';
import { runMigrations } from './database/migrate';
import { buildServer } from './server';
import { logger } from './lib/logger';

async function start() {
  try {
    const db = createDatabase();
    logger.info('Database connection established');

    // Run migrations BEFORE starting server
    await runMigrations(db);

    const server = buildServer({ db });
    await server.listen({ port: Number(process.env.PORT ?? 3008), host: '0.0.0.0' });
    logger.info('Server started');
  } catch (error) {
    logger.error({ err: error }, 'Failed to start server');
    process.exit(1); // Exit if migrations fail
  }
}

start();
