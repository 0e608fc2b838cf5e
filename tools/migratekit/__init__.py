"""migratekit: numbered, idempotent PostgreSQL migrations for every service of a monorepo.

`run_migrations` is the runner a Python service calls at startup, before it serves.
"""

from migratekit.apply import MigrationFailed, Result, run_migrations
from migratekit.workspace import Service, Workspace, load_workspace

__all__ = ["MigrationFailed", "Result", "Service", "Workspace", "load_workspace", "run_migrations"]
__version__ = "0.1.0"
