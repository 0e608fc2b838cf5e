"""Flyway's SQL migrations in a Spring Boot monorepo: found where Spring Boot keeps them, read and ordered as Flyway
reads them, applied, undone and adopted from flyway_schema_history in Flyway's own DDL.

The fixture is two Spring Boot services as such a monorepo has them: a Maven one at Spring Boot's default location
(src/main/resources/db/migration) and a Gradle one whose application.properties moves it (spring.flyway.locations),
each with a Dockerfile that copies the jar the build made from src/main/resources.
"""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest
import yaml

from conftest import Monorepo, applied, write_tree

POM = """<project>
  <modelVersion>4.0.0</modelVersion>
  <parent><groupId>org.springframework.boot</groupId><artifactId>spring-boot-starter-parent</artifactId>
    <version>3.3.0</version></parent>
  <artifactId>accounts</artifactId>
  <dependencies>
    <dependency><groupId>org.springframework.boot</groupId><artifactId>spring-boot-starter-web</artifactId>
    </dependency>
    <dependency><groupId>org.flywaydb</groupId><artifactId>flyway-core</artifactId></dependency>
    <dependency><groupId>org.flywaydb</groupId><artifactId>flyway-database-postgresql</artifactId></dependency>
  </dependencies>
</project>
"""
GRADLE = """plugins {
    id("org.springframework.boot") version "3.3.0"
    java
}
dependencies {
    implementation("org.springframework.boot:spring-boot-starter-web")
    implementation("org.flywaydb:flyway-core")
    runtimeOnly("org.postgresql:postgresql")
}
"""
APPLICATION = """package com.example.{name};

import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;

@SpringBootApplication
public class Application {{
    public static void main(String[] args) {{
        SpringApplication.run(Application.class, args);
    }}
}}
"""
MAVEN_DOCKERFILE = """FROM maven:3.9-eclipse-temurin-21 AS build
WORKDIR /src
COPY pom.xml .
COPY src ./src
RUN mvn -q package -DskipTests

FROM eclipse-temurin:21-jre
COPY --from=build /src/target/*.jar /app/app.jar
CMD ["java", "-jar", "/app/app.jar"]
"""
GRADLE_DOCKERFILE = """FROM gradle:8-jdk21 AS build
WORKDIR /src
COPY . .
RUN gradle bootJar --no-daemon

FROM eclipse-temurin:21-jre
COPY --from=build /src/build/libs/*.jar /app/app.jar
ENTRYPOINT ["java", "-jar", "/app/app.jar"]
"""
ACCOUNTS = "services/accounts/src/main/resources/db/migration"
ORDERS = "services/orders/src/main/resources/db/flyway"
V1 = "CREATE TABLE IF NOT EXISTS accounts (id bigint PRIMARY KEY, name text NOT NULL);\n"
V1_1 = "ALTER TABLE accounts ADD COLUMN IF NOT EXISTS email text;\n"
V1_10 = "CREATE TABLE IF NOT EXISTS audit (id bigint PRIMARY KEY);\n"
V2 = "CREATE INDEX IF NOT EXISTS accounts_email_idx ON accounts (email);\n"
U2 = "DROP INDEX IF EXISTS accounts_email_idx;\n"
VIEWS = "CREATE OR REPLACE VIEW account_names AS SELECT id, name FROM accounts;\n"
FILES = {
    "tasks.py": "from migratekit.tasks import ns\n\n__all__ = ['ns']\n",
    "services/accounts/pom.xml": POM,
    "services/accounts/Dockerfile": MAVEN_DOCKERFILE,
    "services/accounts/src/main/java/com/example/accounts/Application.java": APPLICATION.format(name="accounts"),
    "services/accounts/src/main/resources/application.yml": "spring:\n  application:\n    name: accounts\n",
    f"{ACCOUNTS}/V1__create_accounts.sql": V1,
    f"{ACCOUNTS}/V1_1__Add_email.sql": V1_1,  # Flyway's underscore is a dot: 1.1, before 1.10
    f"{ACCOUNTS}/V1.10__audit.sql": V1_10,
    f"{ACCOUNTS}/V2__email_index.sql": V2,  # the seeded defect: MK302, an index built without CONCURRENTLY
    f"{ACCOUNTS}/U1__create_accounts.sql": "DROP TABLE IF EXISTS accounts;\n",
    f"{ACCOUNTS}/U1_1__Add_email.sql": "ALTER TABLE accounts DROP COLUMN IF EXISTS email;\n",
    f"{ACCOUNTS}/U1.10__audit.sql": "DROP TABLE IF EXISTS audit;\n",
    f"{ACCOUNTS}/U2__email_index.sql": U2,
    f"{ACCOUNTS}/R__account_names.sql": VIEWS,
    f"{ACCOUNTS}/B1_1__accounts_with_email.sql": V1 + V1_1,  # run by Flyway on an empty database only
    "services/orders/build.gradle.kts": GRADLE,
    "services/orders/settings.gradle.kts": 'rootProject.name = "orders"\n',
    "services/orders/Dockerfile": GRADLE_DOCKERFILE,
    "services/orders/src/main/java/com/example/orders/Application.java": APPLICATION.format(name="orders"),
    "services/orders/src/main/resources/application.properties": (
        "spring.application.name=orders\nspring.flyway.locations=classpath:db/flyway\n"
        "spring.flyway.enabled=${FLYWAY_ENABLED:true}\n"  # the seeded defect: MK408, a switch that skips them
    ),
    f"{ORDERS}/V1__create_orders.sql": "CREATE TABLE IF NOT EXISTS orders (id bigint PRIMARY KEY);\n",
}
# Flyway's own DDL of its history table (PostgreSQL's createMetaDataTable.sql), and its index
FLYWAY_DDL = """
CREATE TABLE "public"."flyway_schema_history" (
    "installed_rank" INT NOT NULL,
    "version" VARCHAR(50),
    "description" VARCHAR(200) NOT NULL,
    "type" VARCHAR(20) NOT NULL,
    "script" VARCHAR(1000) NOT NULL,
    "checksum" INTEGER,
    "installed_by" VARCHAR(100) NOT NULL,
    "installed_on" TIMESTAMP NOT NULL DEFAULT now(),
    "execution_time" INTEGER NOT NULL,
    "success" BOOLEAN NOT NULL
);
ALTER TABLE "public"."flyway_schema_history" ADD CONSTRAINT "flyway_schema_history_pk" PRIMARY KEY ("installed_rank");
CREATE INDEX "flyway_schema_history_s_idx" ON "public"."flyway_schema_history" ("success");
"""


@pytest.fixture
def spring(tmp_path: Path, new_db) -> Monorepo:
    root = write_tree(tmp_path / "repo", FILES)
    return Monorepo(root, {"ACCOUNTS_DATABASE_URL": new_db(), "ORDERS_DATABASE_URL": new_db()})


@pytest.fixture
def files(tmp_path: Path) -> Monorepo:
    """The fixture without databases, for what reads only files."""
    return Monorepo(write_tree(tmp_path / "repo", FILES), {})


def test_spring_boot_services_are_found_where_spring_boot_keeps_their_migrations(files: Monorepo) -> None:
    listed = files.invoke("services", "--json")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    services = {s["name"]: s for s in json.loads(listed.stdout)["services"]}
    assert sorted(services) == ["accounts", "orders"]
    assert services["accounts"]["format"] == "flyway"
    assert services["accounts"]["migrations_dir"].endswith("src/main/resources/db/migration")
    assert services["orders"]["migrations_dir"].endswith("src/main/resources/db/flyway")


def test_flyway_versions_order_as_flyway_orders_them_and_undo_and_baseline_never_run_forward(files: Monorepo) -> None:
    from migratekit.model.migration import load_migrations

    migrations = load_migrations(files.root / ACCOUNTS)
    assert [m.filename for m in migrations] == [
        "V1__create_accounts.sql",
        "V1_1__Add_email.sql",
        "V1.10__audit.sql",
        "V2__email_index.sql",
        "R__account_names.sql",  # repeatable: after every version
    ]
    assert migrations[3].down_sql == U2 and migrations[3].down_part().filename == "U2__email_index.sql"
    assert [m.repeatable for m in migrations] == [False] * 4 + [True]


def test_a_spring_boot_flyway_monorepo_audits_without_false_findings_and_finds_its_seeded_defects(
    files: Monorepo,
) -> None:
    """No MK101 on Flyway's names, no MK105/MK106/MK111 (the seed's conventions), no MK401 (Spring Boot runs Flyway
    at start-up), no MK403/MK410 (the jar built from src/main/resources carries them); the two seeded defects."""
    audit = files.invoke("audit", "--format", "json")
    findings = json.loads(audit.stdout)["findings"]
    assert sorted((f["code"], f["path"].rsplit("/", 1)[-1], f["message"]) for f in findings) == [
        (
            "MK302",
            "V2__email_index.sql",
            "index on existing table accounts without CONCURRENTLY blocks writes while it builds",
        ),
        ("MK408", "application.properties", "spring.flyway.enabled=${FLYWAY_ENABLED:true} can skip the migrations"),
    ]
    assert audit.returncode == 1, audit.stdout + audit.stderr


def test_flyway_turned_off_in_spring_boot_is_no_runner(files: Monorepo) -> None:
    write_tree(
        files.root,
        {"services/accounts/src/main/resources/application.yml": "spring:\n  flyway:\n    enabled: false\n"},
    )
    audit = files.invoke("audit", "--format", "json")
    codes = {(f["code"], f["service"]) for f in json.loads(audit.stdout)["findings"]}
    assert ("MK401", "accounts") in codes and ("MK408", "accounts") in codes and ("MK401", "orders") not in codes


def catalog(repo: Monorepo) -> dict:
    from migratekit.database.schema import snapshot

    with psycopg.connect(repo.env["ACCOUNTS_DATABASE_URL"]) as conn:
        return {k: v for k, v in snapshot(conn).items() if "schema_migrations" not in k[1]}


def test_migrate_rollback_migrate_leaves_an_equal_catalog_and_a_changed_repeatable_runs_again(
    spring: Monorepo,
) -> None:
    first = spring.invoke("migrate", "accounts", "--json")
    assert first.returncode == 0, first.stdout + first.stderr
    assert applied(first) == [
        "V1__create_accounts",
        "V1_1__Add_email",
        "V1.10__audit",
        "V2__email_index",
        "R__account_names",
    ]
    migrated = catalog(spring)
    back = spring.invoke("rollback", "accounts", "--steps", "2", "--json")  # the repeatable is never undone
    assert back.returncode == 0, back.stdout + back.stderr
    assert applied(back) == ["V2__email_index", "V1.10__audit"]
    assert spring.query("accounts", "SELECT to_regclass('audit'), to_regclass('accounts_email_idx')") == [(None, None)]
    again = spring.invoke("migrate", "accounts", "--json")
    assert applied(again) == ["V1.10__audit", "V2__email_index"], again.stdout
    assert catalog(spring) == migrated
    write_tree(spring.root, {f"{ACCOUNTS}/R__account_names.sql": VIEWS.replace("id, name", "id, name, email")})
    changed = spring.invoke("migrate", "accounts", "--json")
    assert applied(changed) == ["R__account_names"], changed.stdout
    assert spring.query("accounts", "SELECT count(*) FROM schema_migrations WHERE version = 'R__account_names'") == [
        (1,)
    ]
    assert spring.query(
        "accounts", "SELECT count(*) FROM information_schema.columns WHERE table_name = 'account_names'"
    ) == [(3,)]
    assert applied(spring.invoke("migrate", "accounts", "--json")) == []
    write_tree(spring.root, {f"{ACCOUNTS}/V3__more.sql": "CREATE TABLE IF NOT EXISTS more (id int);\n"})
    drift = spring.invoke("drift", "--service", "accounts", "--json")  # the applied R__ is no newest version
    assert "V3__more" in drift.stdout and "sorts before" not in drift.stdout, drift.stdout
    assert applied(spring.invoke("migrate", "accounts", "--json")) == ["V3__more"]


def flyway_rows(*rows: tuple) -> str:
    values = ", ".join(
        "({}, {}, '{}', '{}', '{}', {}, 'app', now(), 5, {})".format(
            rank,
            "NULL" if version is None else f"'{version}'",
            description,
            kind,
            script,
            "NULL" if checksum is None else checksum,
            success,
        )
        for rank, version, description, kind, script, checksum, success in rows
    )
    return f'INSERT INTO "public"."flyway_schema_history" VALUES {values};'


def test_adopt_records_exactly_what_flyway_vouches_for_and_migrate_before_adopt_stops(spring: Monorepo) -> None:
    """Flyway's own DDL, with odd rows: a failed run repaired (DELETE) then run again, a version undone, a
    repeatable run twice (its latest text is the file's); the baseline row counts, the undone version does not."""
    from migratekit.database.other_tools import flyway_checksum

    views = flyway_checksum(VIEWS.encode())
    history = FLYWAY_DDL + flyway_rows(
        (1, "1", "create accounts", "SQL", "V1__create_accounts.sql", 11, "true"),
        (2, "1.1", "Add email", "SQL", "V1_1__Add_email.sql", 12, "true"),
        (3, "1.10", "audit", "SQL", "V1.10__audit.sql", 13, "false"),
        (4, "1.10", "audit", "DELETE", "V1.10__audit.sql", 13, "true"),
        (5, "1.10", "audit", "SQL", "V1.10__audit.sql", 13, "true"),
        (6, "2", "email index", "SQL", "V2__email_index.sql", 14, "true"),
        (7, "2", "email index", "UNDO_SQL", "U2__email_index.sql", 15, "true"),
        (8, None, "account names", "SQL", "R__account_names.sql", views + 1, "true"),
        (9, None, "account names", "SQL", "R__account_names.sql", views, "true"),
    )
    with psycopg.connect(spring.env["ACCOUNTS_DATABASE_URL"], autocommit=True) as conn:
        conn.execute(V1 + V1_1 + V1_10 + VIEWS + history)
    stopped = spring.invoke("migrate", "accounts", "--json")
    assert stopped.returncode == 1, stopped.stdout
    assert "flyway's public.flyway_schema_history records 4 of these migrations" in stopped.stdout
    assert spring.query("accounts", "SELECT to_regclass('schema_migrations')") == [(None,)]
    adopted = spring.invoke("adopt", "accounts")
    assert adopted.returncode == 0, adopted.stdout + adopted.stderr
    assert sorted(spring.query("accounts", "SELECT version FROM schema_migrations")) == [
        ("R__account_names",),
        ("V1.10__audit",),
        ("V1_1__Add_email",),
        ("V1__create_accounts",),
    ]
    migrated = spring.invoke("migrate", "accounts", "--json")
    assert applied(migrated) == ["V2__email_index"], migrated.stdout
    drift = spring.invoke("drift", "--service", "accounts", "--schema", "--json")  # Flyway's table, kept, is no drift
    assert drift.returncode == 0, drift.stdout + drift.stderr


def test_a_repeatable_flyway_ran_as_other_text_runs_again_and_a_baseline_row_stands_for_the_versions_below(
    spring: Monorepo,
) -> None:
    history = FLYWAY_DDL + flyway_rows(
        (1, "1.1", "<< Flyway Baseline >>", "BASELINE", "<< Flyway Baseline >>", None, "true"),
        (2, "1.10", "audit", "SQL", "V1.10__audit.sql", 13, "true"),
        (3, None, "account names", "SQL", "R__account_names.sql", 42, "true"),
    )
    with psycopg.connect(spring.env["ACCOUNTS_DATABASE_URL"], autocommit=True) as conn:
        conn.execute(V1 + V1_1 + V1_10 + VIEWS + history)
    adopted = spring.invoke("adopt", "accounts")
    assert adopted.returncode == 0, adopted.stdout + adopted.stderr
    assert sorted(spring.query("accounts", "SELECT version FROM schema_migrations")) == [
        ("V1.10__audit",),
        ("V1_1__Add_email",),
        ("V1__create_accounts",),
    ]
    migrated = spring.invoke("migrate", "accounts", "--json")
    assert applied(migrated) == ["V2__email_index", "R__account_names"], migrated.stdout


def test_init_declares_every_spring_boot_service_with_its_format_wherever_the_modules_are(
    files: Monorepo, tmp_path: Path
) -> None:
    init = files.invoke("init")
    assert init.returncode == 0, init.stdout + init.stderr
    services = yaml.safe_load((files.root / "workspace.yaml").read_text())["services"]
    assert services["accounts"]["format"] == services["orders"]["format"] == "flyway"
    assert services["orders"]["migrations"] == "src/main/resources/db/flyway"
    # a Maven multi-module build: the modules at the repository's root, each at Spring Boot's default location
    modules = {
        name.replace("services/accounts/", "billing/").replace("services/orders/", "shipping/"): text
        for name, text in FILES.items()
        if name.startswith(("services/accounts/", "services/orders/src/main/java")) or name == "tasks.py"
    }
    modules["shipping/src/main/resources/db/migration/V1__create_shipments.sql"] = (
        "CREATE TABLE IF NOT EXISTS s (id int);\n"
    )
    root = write_tree(tmp_path / "modules", modules)
    repo = Monorepo(root, {})
    assert repo.invoke("services").returncode == 2
    init = repo.invoke("init")
    assert init.returncode == 0, init.stdout + init.stderr
    written = yaml.safe_load((root / "workspace.yaml").read_text())
    assert written["services_dir"] == "."
    assert written["defaults"] == {"migrations": "src/main/resources/db/migration"}
    assert {n: s["format"] for n, s in written["services"].items()} == {"billing": "flyway", "shipping": "flyway"}
    listed = repo.invoke("services", "--json")
    assert sorted(s["name"] for s in json.loads(listed.stdout)["services"]) == ["billing", "shipping"]
