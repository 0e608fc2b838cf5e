"""For contributors: `python tools/pg_builtins.py` rewrites checks/sql/builtins.json from a real PostgreSQL.

The cross-service reference rules (MK504, MK505) must know what a migration may use without any service
creating it: what PostgreSQL itself has (pg_catalog's functions, types and relations, information_schema's
views, the predefined pg_* roles) and what each extension of the server's contrib creates (so that
`citext` is known as the citext extension's type). Read from the server at $MIGRATEKIT_SCRATCH_URL: a
throwaway database is created, every available extension installed in it, and dropped.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from collections import defaultdict
from pathlib import Path

import psycopg
from psycopg.conninfo import make_conninfo

TARGET = Path(__file__).resolve().parent / "migratekit" / "checks" / "sql" / "builtins.json"
BUILT_IN = ("pg_catalog", "information_schema")

EXTENSION_OBJECTS = """
SELECT e.extname, 'function', p.proname FROM pg_depend d JOIN pg_extension e ON d.refobjid = e.oid
  JOIN pg_proc p ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid WHERE d.deptype = 'e'
UNION SELECT e.extname, 'type', t.typname FROM pg_depend d JOIN pg_extension e ON d.refobjid = e.oid
  JOIN pg_type t ON d.classid = 'pg_type'::regclass AND d.objid = t.oid WHERE d.deptype = 'e'
UNION SELECT e.extname, 'table', c.relname FROM pg_depend d JOIN pg_extension e ON d.refobjid = e.oid
  JOIN pg_class c ON d.classid = 'pg_class'::regclass AND d.objid = c.oid WHERE d.deptype = 'e'
"""


def read(conn: psycopg.Connection) -> dict[str, object]:
    one = conn.execute
    version = one("SHOW server_version").fetchone()[0]  # type: ignore[index]
    functions = [
        r[0] for r in one("SELECT DISTINCT proname FROM pg_proc WHERE pronamespace = 'pg_catalog'::regnamespace")
    ]
    types = [r[0] for r in one("SELECT DISTINCT typname FROM pg_type WHERE typnamespace = 'pg_catalog'::regnamespace")]
    tables: dict[str, list[str]] = defaultdict(list)
    for schema, name in one(
        "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = ANY(%s) AND c.relkind IN ('r', 'v', 'm', 'p', 'f', 'S')",
        (list(BUILT_IN),),
    ):
        tables[schema].append(name)
    roles = [r[0] for r in one("SELECT rolname FROM pg_roles WHERE rolname LIKE 'pg\\_%'")]
    available = [r[0] for r in one("SELECT name FROM pg_available_extensions ORDER BY name")]
    for name in available:
        try:
            with conn.transaction():
                one(f'CREATE EXTENSION IF NOT EXISTS "{name}" CASCADE')
        except psycopg.Error as exc:
            print(f"{name}: not installed ({str(exc).strip()})", file=sys.stderr)
    extensions: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for extension, kind, name in one(EXTENSION_OBJECTS):
        extensions[extension][kind].add(name)
    return {
        "postgresql": version,
        "functions": sorted(functions),
        "types": sorted(types),
        "tables": {schema: sorted(names) for schema, names in sorted(tables.items())},
        "roles": sorted(roles),
        "extensions": {
            ext: {kind: sorted(names) for kind, names in sorted(kinds.items())}
            for ext, kinds in sorted(extensions.items())
        },
    }


def main() -> int:
    url = os.environ.get("MIGRATEKIT_SCRATCH_URL")
    if not url:
        print("set MIGRATEKIT_SCRATCH_URL to a server where a database may be created and dropped", file=sys.stderr)
        return 2
    name = f"mk_builtins_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        with psycopg.connect(make_conninfo(url, dbname=name), autocommit=True) as conn:
            data = read(conn)
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
    TARGET.write_text(json.dumps(data, indent=0, sort_keys=False) + "\n")
    print(
        f"{TARGET.name}: PostgreSQL {data['postgresql']}, {len(data['functions'])} functions, "  # type: ignore[arg-type]
        f"{len(data['types'])} types, {len(data['extensions'])} extensions"
    )  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    sys.exit(main())
