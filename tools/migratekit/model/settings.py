"""Every default, once: workspace.yaml's `defaults:` override the per-service ones, flags the run ones.

The workspace model, the apply engine's Options, `python -m migratekit` and the Invoke tasks
(through `ns.configure`) all read them from here.
"""

from __future__ import annotations

from dataclasses import dataclass

WORKSPACE_FILE = "workspace.yaml"


@dataclass(frozen=True)
class Defaults:
    # per service: workspace.yaml `defaults:` or a service's own entry override these
    database_url_env: str = "{SERVICE}_DATABASE_URL"
    lock_timeout: str = "5s"
    statement_timeout: str = "5min"
    tracking_table: str = "schema_migrations"
    format: str = "auto"  # detected from the files; or seed, updown, dbmate, goose
    # per run: the tasks' flags (or invoke.yaml's `migratekit:` section) override these
    jobs: int = 4  # services migrating at once
    connect_wait: float = 0.0  # seconds to retry connecting while a database starts
    container_connect_wait: float = 30.0  # the same for `python -m migratekit migrate`: a container starts with its DB
    lock_wait: float = 60.0  # seconds to wait for another runner's migration lock
    retries: int = 3  # extra attempts after a lock timeout or deadlock


DEFAULTS = Defaults()
SERVICE_SETTINGS = ("database_url_env", "lock_timeout", "statement_timeout", "tracking_table", "format")
