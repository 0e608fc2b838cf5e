"""With a real Docker engine: every example service's image builds and carries its migrations (`verify --image`),
a failed build is a clear finding, and the migratekit image migrates a service exactly as `migrate-all` does.

Marked `engine`: without an engine these skip, saying why. `.ci/run` starts one (docs/containers.md).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from conftest import REPO, Monorepo
from migratekit.database.scratch import ScratchServer, scratch_server

pytestmark = pytest.mark.engine

SERVICES = ("authentication", "battles", "enrichment")


@pytest.fixture(scope="module")
def client() -> Iterator[object]:
    import docker  # type: ignore[import-untyped]

    engine = docker.from_env()
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def migratekit_image(client) -> str:
    """The migratekit image, built from this checkout's root Dockerfile (the root .dockerignore keeps .venv out)."""
    image, _ = client.images.build(path=str(REPO), rm=True, tag="migratekit:test")
    return image.id


def test_every_example_service_image_builds_and_carries_its_migrations(example_repo: Monorepo) -> None:
    result = example_repo.invoke("verify", "--image")
    assert result.returncode == 0, result.stdout + result.stderr
    for name in SERVICES:
        assert f"{name}: idempotent" in result.stdout
        assert f"{name} image: migrations identical to the repository's" in result.stdout, result.stdout


def test_a_failed_build_is_a_finding_with_the_step_and_the_command_to_repeat_it(example_repo: Monorepo) -> None:
    dockerfile = example_repo.root / "services/enrichment/Dockerfile"
    text = dockerfile.read_text()
    dockerfile.write_text(text.replace("WORKDIR /app\n", "WORKDIR /app\nRUN exit 7\n", 1))
    result = example_repo.invoke("verify", "--service", "enrichment", "--image")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert "enrichment image: the image did not build: Step 3/" in result.stdout
    assert "RUN exit 7: The command '/bin/sh -c exit 7' returned a non-zero code: 7" in result.stdout
    assert "(to see it: docker build -f services/enrichment/Dockerfile .)" in result.stdout
    as_json = json.loads(example_repo.invoke("verify", "--service", "enrichment", "--image", "--json").stdout)
    assert as_json["images"][0]["problems"][0].startswith("the image did not build: Step 3/")


def test_the_scratch_server_is_a_container_from_the_configured_image(tmp_path: Path, pg_server: ScratchServer) -> None:
    if pg_server.origin != "container":
        pytest.skip(f"the tests' server is {pg_server.origin}; .ci/run's engine phase runs them on a container")
    assert scratch_server(tmp_path, {}).origin == "container"
    with psycopg.connect(pg_server.admin_url) as conn:  # testcontainers' server: scram, with a password
        assert conn.info.password
        assert conn.execute("SHOW password_encryption").fetchone() == ("scram-sha-256",)


def rows(url: str, table: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(f"SELECT version, checksum FROM {table} ORDER BY version").fetchall()


def test_the_migratekit_image_records_what_migrate_all_records(
    client, migratekit_image: str, example_repo: Monorepo, new_db
) -> None:
    repo = example_repo
    auth, battles = new_db(), new_db()
    repo.env.update(AUTHENTICATION_DATABASE_URL=auth, BATTLES_DATABASE_URL=battles, ENRICHMENT_DATABASE_URL=battles)
    migrated = repo.invoke("migrate-all")
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr

    # The same services through the image, as a Job or an init container runs it: one directory, one URL,
    # the tracking table workspace.yaml gives (enrichment keeps its own inside battles' database)
    image_auth, image_battles = new_db(), new_db()
    runs = [
        ("authentication", image_auth, "schema_migrations"),
        ("battles", image_battles, "schema_migrations"),
        ("enrichment", image_battles, "enrichment.schema_migrations"),
    ]
    for name, url, table in runs:
        output = client.containers.run(
            migratekit_image,
            ["migrate", "--dir", "/migrations", "--tracking-table", table],
            environment={"DATABASE_URL": url},
            volumes={str(repo.root / "services" / name / "migrations"): {"bind": "/migrations", "mode": "ro"}},
            network_mode="host",  # the engine's own network, where the test server's port is
            read_only=True,  # as under Pod Security "restricted": nothing written, as user 65532
            remove=True,
            stderr=True,
        ).decode()
        assert "up to date" in output or "applied" in output, output
    assert rows(image_auth, "schema_migrations") == rows(auth, "schema_migrations") != []
    assert rows(image_battles, "schema_migrations") == rows(battles, "schema_migrations") != []
    assert rows(image_battles, "enrichment.schema_migrations") == rows(battles, "enrichment.schema_migrations") != []

    again = client.containers.run(
        migratekit_image,
        ["migrate", "--dir", "/migrations", "--json"],
        environment={"DATABASE_URL": image_auth},
        volumes={str(repo.root / "services/authentication/migrations"): {"bind": "/migrations", "mode": "ro"}},
        network_mode="host",
        read_only=True,
        remove=True,
    )
    assert json.loads(again)["outcome"] == "up_to_date"
    assert client.images.get(migratekit_image).attrs["Config"]["User"] == "65532:65532"
