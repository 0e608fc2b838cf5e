"""Every default, once, and who overrides it.

A service's settings (`ServiceSettings`, reached as `service.settings`) come from here, then workspace.yaml's
`defaults:`, then the service's own entry. A run's (`RunOptions`) come from here, then invoke.yaml's
`migratekit:` section (through `ns.configure`), then the flags. Every layer reads them from these two.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from migratekit.model.contract import SEED_TABLE
from migratekit.model.formats import AUTO

WORKSPACE_FILE = "workspace.yaml"
SERVICES_DIR = "services"  # discovery looks for <services_dir>/*/migrations
SERVICE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")  # a name that is an env variable's part and a Kubernetes one's
MIGRATIONS = "migrations"  # the seed's layout: a service's migrations directory, relative to the service
POSTGRES_IMAGE = "postgres:16"  # CI's service container and the throwaway databases' container: one server
POSTGRES_IMAGE_ENV = "MIGRATEKIT_POSTGRES_IMAGE"  # the throwaway databases' container image, where postgres:16 is not
EMBEDDED_ENV = "MIGRATEKIT_EMBEDDED"  # "1": services without a URL use the embedded PostgreSQL, even in CI
CONTAINER_CONNECT_WAIT = 30.0  # `python -m migratekit migrate`'s --wait: a container starts beside its database
DURATION = re.compile(r"^(?P<amount>\d+)\s*(?P<unit>us|ms|s|min|h|d)?$")  # PostgreSQL's, for the two timeouts
_UNIT_SECONDS = {"us": 1e-6, "ms": 1e-3, "s": 1, "min": 60, "h": 3600, "d": 86400, None: 1e-3}  # bare: milliseconds
RULE_CODE_TEXT = r"MK\d{3}"  # what a rule's code looks like, wherever it is written (an ignore, a flag)
RULE_CODE = re.compile(rf"^{RULE_CODE_TEXT}$")


def duration_seconds(duration: str) -> float:
    """A PostgreSQL duration (5s, 5min, 500ms; a bare number is milliseconds) in seconds; ValueError if not one."""
    match = DURATION.fullmatch(duration.strip())
    if match is None:
        raise ValueError(f"not a duration: {duration!r}")
    return int(match["amount"]) * _UNIT_SECONDS[match["unit"]]


@dataclass(frozen=True)
class ServiceSettings:
    """How one service's migrations are found, applied and recorded."""

    database_url_env: str = "{SERVICE}_DATABASE_URL"  # {SERVICE} is the service's name in upper case
    tracking_table: str = SEED_TABLE  # table or schema.table
    lock_timeout: str = "5s"
    statement_timeout: str = "5min"
    format: str = AUTO  # detected from the files; or one of formats.FORMATS
    migrations: str = MIGRATIONS  # unset in workspace.yaml: the first layout found on disk
    gaps: str = "check"  # "allow": the service numbers sparsely on purpose (no MK103)
    create_database: bool = False  # migrate creates the URL's database when the server lacks it
    type_advice: bool = False  # the audit's type advice (MK329-MK332: text, timestamptz, bigint, identity)


@dataclass(frozen=True)
class RunOptions:
    """How one run applies: the same for every service it migrates."""

    jobs: int = 4  # services migrating at once
    connect_wait: float = 0.0  # seconds to retry connecting while a database starts
    lock_wait: float = 60.0  # seconds to wait for another runner's migration lock
    retries: int = 3  # extra attempts after a lock timeout or deadlock
    allow_changed: bool = False  # record the new checksum of an applied file edited on purpose
    out_of_order: bool = False  # apply a pending file that sorts before the newest applied one
    dry_run: bool = False
    create_databases: bool = False  # --create-databases: every service's, beside its own create_database


SERVICE_DEFAULTS = ServiceSettings()
RUN_DEFAULTS = RunOptions()
# What workspace.yaml's `defaults:` may set besides `migrations` (a service's entry may also set gaps and
# create_database)
SERVICE_SETTINGS = ("database_url_env", "lock_timeout", "statement_timeout", "tracking_table", "format")
