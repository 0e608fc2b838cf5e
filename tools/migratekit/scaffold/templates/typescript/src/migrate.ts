// Separate migration entry point, for the Kubernetes init container (k8s/deployment.yaml):
// migrates, then exits 0, or 1 so the pod never starts on a half-migrated schema.
import { createDatabase } from './database/client';
import { runMigrations } from './database/migrate';
import { logger } from './lib/logger';

const db = createDatabase();
runMigrations(db)
  .then(() => db.destroy())
  .then(() => process.exit(0))
  .catch((error) => {
    logger.error({ err: error }, 'Migration failed');
    process.exit(1);
  });
