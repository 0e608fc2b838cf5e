"""A synthetic monorepo of N services x M migrations in the seed's shape, for the benchmarks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import yaml

INIT = """-- Migration: 001_init
-- Description: Tracking table and the shared trigger function
-- Created: 2025-11-25

CREATE TABLE IF NOT EXISTS schema_migrations (
  version TEXT PRIMARY KEY,
  applied_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
  checksum TEXT NOT NULL,
  execution_time_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_schema_migrations_applied_at ON schema_migrations(applied_at DESC);

CREATE OR REPLACE FUNCTION update_updated_at_column()
RETURNS TRIGGER AS $$
BEGIN
  NEW.updated_at = NOW();
  RETURN NEW;
END;
$$ LANGUAGE plpgsql;
"""

TABLE = """-- Migration: {version}
-- Description: Add {table}
-- Created: 2025-11-25

-- Enable required extensions
CREATE EXTENSION IF NOT EXISTS "uuid-ossp";

-- {table} belongs to {service}; created idempotently as the seed asks.
CREATE TABLE IF NOT EXISTS {table} (
  id UUID PRIMARY KEY DEFAULT uuid_generate_v4(),
  owner_id BIGINT NOT NULL,
  name TEXT NOT NULL,
  kind TEXT NOT NULL DEFAULT 'default',
  payload JSONB NOT NULL DEFAULT '{{}}'::jsonb,
  created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
  updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);

CREATE INDEX IF NOT EXISTS idx_{table}_owner_id ON {table}(owner_id);
CREATE INDEX IF NOT EXISTS idx_{table}_created_at ON {table}(created_at DESC);

ALTER TABLE {table} ADD COLUMN IF NOT EXISTS note TEXT;

CREATE OR REPLACE FUNCTION update_updated_at_column()
RETURNS TRIGGER AS $$
BEGIN
  NEW.updated_at = NOW();
  RETURN NEW;
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS update_{table}_updated_at ON {table};
CREATE TRIGGER update_{table}_updated_at
  BEFORE UPDATE ON {table}
  FOR EACH ROW
  EXECUTE FUNCTION update_updated_at_column();

INSERT INTO {table} (id, owner_id, name) VALUES
  ('550e8400-e29b-41d4-a716-446655440000', 1, 'seed')
ON CONFLICT (id) DO NOTHING;
"""


# The second shape: a golang-migrate pair, each table with an index and a foreign key to the one before.
GOLANG_UP = """CREATE TABLE IF NOT EXISTS t{n:06d} (
  id BIGSERIAL PRIMARY KEY,
  parent_id BIGINT{references},
  name TEXT NOT NULL,
  created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS idx_t{n:06d}_parent_id ON t{n:06d} (parent_id);
"""
GOLANG_DOWN = "DROP TABLE IF EXISTS t{n:06d};\n"
# Far lighter than any real migration: kept as an extra row, to show what the shape costs.
LIGHT = "-- Migration: {version}\nCREATE TABLE IF NOT EXISTS t{n} (id bigint PRIMARY KEY, note text);\n"
SHAPES = ("seed", "golang", "light")


def write_migrations(directory: Path, count: int, shape: str, service: str = "ledger", start: int = 1) -> None:
    """`count` migrations of one `shape` (SHAPES) into `directory`, numbered from `start`: what a long-lived
    service accumulates. Versions are six digits wide, so that later chunks sort after earlier ones."""
    directory.mkdir(parents=True, exist_ok=True)
    width = 6
    for n in range(start, start + count):
        if shape == "golang":
            references = f" REFERENCES t{n - 1:06d} (id)" if n > 1 else ""
            stem = f"{n:06d}_add_t{n:06d}"
            (directory / f"{stem}.up.sql").write_text(GOLANG_UP.format(n=n, references=references))
            (directory / f"{stem}.down.sql").write_text(GOLANG_DOWN.format(n=n))
        elif shape == "light":
            version = f"{n:0{width}d}_step"
            (directory / f"{version}.sql").write_text(LIGHT.format(version=version, n=n))
        elif n == 1:
            (directory / f"{n:0{width}d}_init.sql").write_text(INIT)
        else:
            version = f"{n:0{width}d}_add_t{n:0{width}d}"
            text = TABLE.format(version=version, table=f"t{n:0{width}d}", service=service)
            (directory / f"{version}.sql").write_text(text)


# A TypeScript service as the seed lays one out (the example's authentication service: its package.json,
# Dockerfile, index.ts that migrates before it listens, and the seed's runner), with `sources` route modules.
EXAMPLE_SERVICE = Path(__file__).resolve().parents[1] / "services" / "authentication"
ROUTE = """
export async function {name}(request: FastifyRequest<{{ Params: {{ id: string }} }}>, reply: FastifyReply) {{
  const {{ id }} = request.params;
  // one row of {table}, with its owner's score
  const row = await db.selectFrom('{table}').where('id', '=', id).selectAll().executeTakeFirst();
  if (!row) {{
    return reply.code(404).send({{ error: `{table} ${{id}} not found` }});
  }}
  const score = row.items.reduce((total: number, item: {{ score: number }}) => total + item.score, 0);
  logger.info({{ id, score }}, '{table} read');
  return {{ ...row, score, fetchedAt: new Date().toISOString() }};
}}
"""
ROUTES_HEAD = (
    "import type { FastifyReply, FastifyRequest } from 'fastify';\n"
    "import { db } from '../database/client';\nimport { logger } from '../lib/logger';\n"
)


def write_sources(service: Path, sources: int) -> None:
    """The example's TypeScript service around `service`'s migrations, with `sources` route modules of 20
    handlers (some 240 lines each)."""
    for relative in (
        "package.json",
        "Dockerfile",
        "tsconfig.json",
        "src/index.ts",
        "src/server.ts",
        "src/database/client.ts",
        "src/database/migrate.ts",
        "src/lib/logger.ts",
    ):
        source = EXAMPLE_SERVICE / relative
        if source.is_file():
            (service / relative).parent.mkdir(parents=True, exist_ok=True)
            (service / relative).write_text(source.read_text())
    for n in range(sources):
        handlers = "".join(ROUTE.format(name=f"read{n}_{h}", table=f"t{n:03d}_{h}") for h in range(20))
        (service / "src" / "routes").mkdir(parents=True, exist_ok=True)
        (service / "src" / "routes" / f"r{n:03d}.ts").write_text(ROUTES_HEAD + handlers)


def build(
    root: Path,
    services: int,
    migrations: int,
    names: list[str] | None = None,
    chain: Callable[[int], bool] = lambda i: i % 4 != 0,
    sources: int | None = None,
) -> list[str]:
    """Write the monorepo; service i depends on service i-1 where `chain(i)` (default: chains of 4). With
    `sources`, each service is the example's TypeScript service with that many route modules."""
    names = names or [f"svc{i:03d}" for i in range(services)]
    declared = {}
    for i, name in enumerate(names):
        mdir = root / "services" / name / "migrations"
        mdir.mkdir(parents=True)
        (mdir / "001_init.sql").write_text(INIT)
        for n in range(2, migrations + 1):
            version = f"{n:03d}_add_t{n:03d}"
            (mdir / f"{version}.sql").write_text(TABLE.format(version=version, table=f"t{n:03d}", service=name))
        if sources is not None:
            write_sources(mdir.parent, sources)
        language = "sql" if sources is None else "typescript"
        declared[name] = {"language": language, "depends_on": [names[i - 1]] if i and chain(i) else []}
    (root / "workspace.yaml").write_text(yaml.safe_dump({"version": 1, "services": declared}, sort_keys=False))
    (root / "tasks.py").write_text("from migratekit.tasks import ns\n")
    return names
