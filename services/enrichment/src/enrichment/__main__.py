"""Entry point: migrate, then serve. If migrations fail the service must not start."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from migratekit import MigrationFailed, run_migrations

from enrichment.server import build_server

log = logging.getLogger("enrichment")
MIGRATIONS_DIR = Path(os.environ.get("MIGRATIONS_DIR", Path(__file__).resolve().parents[2] / "migrations"))


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    conninfo = os.environ.get("DATABASE_URL") or os.environ.get("ENRICHMENT_DATABASE_URL")
    if not conninfo:
        log.error("DATABASE_URL is not set")
        return 1
    try:
        # Run migrations BEFORE starting the server.
        result = run_migrations(conninfo, MIGRATIONS_DIR, tracking_table="enrichment.schema_migrations")
    except MigrationFailed as exc:
        log.error("Failed to start: %s", exc)
        return 1  # exit if migrations fail
    log.info("migrations: %d applied, %d already applied", len(result.applied), result.already_applied)
    server = build_server(conninfo, int(os.environ.get("PORT", "3009")))
    log.info("listening on port %d", server.server_port)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
