"""migratekit: numbered, idempotent PostgreSQL migrations for every service of a monorepo.

`run_migrations` is the runner a Python service calls at startup, before it serves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from migratekit.model.workspace import Service, Workspace
from migratekit.model.workspace_file import load_workspace
from migratekit.version import VERSION

if TYPE_CHECKING:
    from migratekit.database.apply import run_migrations
    from migratekit.database.results import MigrationFailed, Result

__all__ = ["MigrationFailed", "Result", "Service", "Workspace", "load_workspace", "run_migrations"]
__version__ = VERSION


def __getattr__(name: str) -> Any:
    """The runner's names load psycopg on first use, so database-free tasks (audit, rules) start fast."""
    if name in ("MigrationFailed", "Result", "run_migrations"):
        from migratekit.database import apply

        return getattr(apply, name)
    raise AttributeError(f"module 'migratekit' has no attribute {name!r}")
