"""drizzle-kit's migrations in a TypeScript monorepo: its `drizzle/` directory found (drizzle.config.ts's `out` too),
applied in the order of meta/_journal.json's entries, adopted from drizzle's "drizzle"."__drizzle_migrations" in its
own DDL (rows matched to files by drizzle's SHA-256 hash and the journal's `when`), and drizzle's migrator called
before the server listens taken as the service's runner.

The fixture is one service, `orders`, as drizzle-kit generate leaves it: plain CREATE TABLE statements separated by
`--> statement-breakpoint`, a journal and its snapshots, and an image that copies drizzle/ beside the built server.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import psycopg
import pytest

from conftest import Monorepo, plain, write_tree

SERVICE = "services/orders"
OUT = f"{SERVICE}/drizzle"
BREAK = "--> statement-breakpoint\n"
CUSTOMERS = (
    'CREATE TABLE "customers" (\n\t"id" serial PRIMARY KEY NOT NULL,\n\t"email" text NOT NULL,\n'
    '\tCONSTRAINT "customers_email_unique" UNIQUE("email")\n);\n'
)
ORDERS = (
    'CREATE TABLE "orders" (\n\t"id" serial PRIMARY KEY NOT NULL,\n\t"customer_id" integer NOT NULL,\n'
    '\t"total_cents" integer NOT NULL,\n\t"created_at" timestamp DEFAULT now() NOT NULL\n);\n'
)
ORDERS_FK = (
    'ALTER TABLE "orders" ADD CONSTRAINT "orders_customer_id_customers_id_fk" FOREIGN KEY ("customer_id") '
    'REFERENCES "public"."customers"("id") ON DELETE no action ON UPDATE no action;'
)
ORDERS_INDEX = 'CREATE INDEX "orders_customer_id_idx" ON "orders" USING btree ("customer_id");'
NOTE = 'ALTER TABLE "orders" ADD COLUMN "note" text;'
REFUNDS = 'CREATE TABLE "refunds" (\n\t"id" serial PRIMARY KEY NOT NULL,\n\t"reason" text\n);\n'
TAGS = ["0000_brave_wolverine", "0001_quiet_nova", "0002_sharp_refunds"]
SQL = {
    TAGS[0]: CUSTOMERS + BREAK + ORDERS + BREAK + ORDERS_FK + BREAK + ORDERS_INDEX,
    TAGS[1]: NOTE,
    TAGS[2]: REFUNDS,
}
WHEN = [1717000000000, 1718000000000, 1719000000000]


def journal(tags: list[str], when: list[int]) -> str:
    entries = [
        {"idx": i, "version": "7", "when": w, "tag": t, "breakpoints": True}
        for i, (t, w) in enumerate(zip(tags, when, strict=True))
    ]
    return json.dumps({"version": "7", "dialect": "postgresql", "entries": entries}, indent=2)


INDEX_TS = """import { createServer } from "node:http";
import { drizzle } from "drizzle-orm/node-postgres";
import { migrate } from "drizzle-orm/node-postgres/migrator";
import { Pool } from "pg";

async function main(): Promise<void> {
  const pool = new Pool({ connectionString: process.env.ORDERS_DATABASE_URL });
  const db = drizzle(pool);
  await migrate(db, { migrationsFolder: "./drizzle" });
  createServer((_req, res) => res.end("ok")).listen(8080);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
"""
PACKAGE = {
    "name": "orders",
    "private": True,
    "scripts": {
        "build": "tsc",
        "start": "node dist/index.js",
        "db:generate": "drizzle-kit generate",
        "db:migrate": "drizzle-kit migrate",
    },
    "dependencies": {"drizzle-orm": "^0.44.0", "pg": "^8.12.0"},
    "devDependencies": {"drizzle-kit": "^0.31.0", "typescript": "^5.5.0"},
}
DOCKERFILE = """FROM node:20-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY . .
RUN npm run build

FROM node:20-slim
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY drizzle ./drizzle
CMD ["node", "dist/index.js"]
"""
FILES = {
    "tasks.py": "from migratekit.tasks import ns\n\n__all__ = ['ns']\n",
    f"{SERVICE}/package.json": json.dumps(PACKAGE, indent=2),
    f"{SERVICE}/package-lock.json": '{"name": "orders", "lockfileVersion": 3, "packages": {}}\n',
    f"{SERVICE}/tsconfig.json": '{"compilerOptions": {"outDir": "dist", "strict": true}}\n',
    f"{SERVICE}/drizzle.config.ts": 'import { defineConfig } from "drizzle-kit";\n\nexport default defineConfig({\n'
    '  dialect: "postgresql",\n  schema: "./src/schema.ts",\n  out: "./drizzle",\n'
    "  dbCredentials: { url: process.env.ORDERS_DATABASE_URL! },\n});\n",
    f"{SERVICE}/src/index.ts": INDEX_TS,
    f"{SERVICE}/Dockerfile": DOCKERFILE,
    f"{OUT}/meta/_journal.json": journal(TAGS, WHEN),
    **{f"{OUT}/meta/{t[:4]}_snapshot.json": '{"version": "7", "dialect": "postgresql"}\n' for t in TAGS},
    **{f"{OUT}/{tag}.sql": text for tag, text in SQL.items()},
}
# drizzle's own DDL of its table (drizzle-orm's pg-core dialect, migrate())
DRIZZLE_DDL = """CREATE SCHEMA IF NOT EXISTS "drizzle";
CREATE TABLE IF NOT EXISTS "drizzle"."__drizzle_migrations" (
    id SERIAL PRIMARY KEY,
    hash text NOT NULL,
    created_at bigint
);
"""


def drizzle_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def repo(tmp_path: Path, new_db) -> Monorepo:
    return Monorepo(write_tree(tmp_path / "repo", FILES), {"ORDERS_DATABASE_URL": new_db()})


def applied(result) -> list[str]:
    (service,) = json.loads(result.stdout)["services"]
    return [a["version"] if isinstance(a, dict) else a for a in service["applied"]]


def test_explore(repo: Monorepo) -> None:
    listed = repo.invoke("services", "--json")
    print(listed.stdout, listed.stderr)
    audit = repo.invoke("audit")
    print(audit.stdout, audit.stderr)
    m = repo.invoke("migrate", "orders")
    print(m.stdout, m.stderr)
    m = repo.invoke("migrate", "orders")
    print(m.stdout, m.stderr)
    assert False
