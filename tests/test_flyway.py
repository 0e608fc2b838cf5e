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

from conftest import Monorepo, write_tree

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


def test_spring_boot_services_are_found_where_spring_boot_keeps_their_migrations(spring: Monorepo) -> None:
    listed = spring.invoke("services", "--json")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    services = {s["name"]: s for s in json.loads(listed.stdout)["services"]}
    assert sorted(services) == ["accounts", "orders"]
    assert services["accounts"]["format"] == "flyway"
    assert services["accounts"]["migrations_dir"].endswith("src/main/resources/db/migration")
    assert services["orders"]["migrations_dir"].endswith("src/main/resources/db/flyway")


def test_flyway_versions_order_as_flyway_orders_them_and_undo_and_baseline_never_run_forward(spring: Monorepo) -> None:
    from migratekit.model.migration import load_migrations

    migrations = load_migrations(spring.root / ACCOUNTS)
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
    spring: Monorepo,
) -> None:
    """No MK101 on Flyway's names, no MK105/MK106/MK111 (the seed's conventions), no MK401 (Spring Boot runs Flyway
    at start-up), no MK403/MK410 (the jar built from src/main/resources carries them); the two seeded defects."""
    audit = spring.invoke("audit", "--format", "json")
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


def test_flyway_turned_off_in_spring_boot_is_no_runner(spring: Monorepo) -> None:
    write_tree(
        spring.root,
        {"services/accounts/src/main/resources/application.yml": "spring:\n  flyway:\n    enabled: false\n"},
    )
    audit = spring.invoke("audit", "--format", "json")
    codes = {(f["code"], f["service"]) for f in json.loads(audit.stdout)["findings"]}
    assert ("MK401", "accounts") in codes and ("MK408", "accounts") in codes and ("MK401", "orders") not in codes
