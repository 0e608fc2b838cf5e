"""With a real Docker engine: every example service's image builds and carries its migrations (`verify --image`),
a failed build is a clear finding, the migratekit image migrates a service exactly as `migrate-all` does, and
each Job `k8s-render` writes runs in its service's image (or the migratekit image, fed by its init container) as
the kubelet would run it, recording `migrate-all`'s rows.

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
from migratekit.integrations import k8s
from migratekit.model.dockerfile import analyse
from migratekit.model.workspace_file import load_workspace

# one worker runs them all, in order: the migratekit image is built once (a module fixture), no two builds at once
pytestmark = [pytest.mark.engine, pytest.mark.xdist_group("engine")]

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


def run_job(client, job: dict, secrets: dict[tuple[str, str], str], scratch: Path) -> tuple[int, str]:
    """The Job's pod as the kubelet runs it: its init containers, then its container, each with its image, command
    and args, its env with the Secret's value, its user and group, a read-only root, every capability dropped, no
    privilege escalation and its memory limit; each emptyDir volume a directory writable by any user (as the
    kubelet makes it) that the pod's containers share. Returns the exit code of the first that fails, else 0, and
    the logs."""
    pod = job["spec"]["template"]["spec"]
    volumes = {}
    for volume in pod.get("volumes", []):
        assert "emptyDir" in volume, f"only emptyDir volumes: {volume}"
        volumes[volume["name"]] = directory = scratch / job["metadata"]["name"] / volume["name"]
        directory.mkdir(parents=True)
        directory.chmod(0o1777)
    logs = []
    for container in pod.get("initContainers", []) + pod["containers"]:
        context = {**pod.get("securityContext", {}), **container.get("securityContext", {})}
        env = {}
        for variable in container.get("env", []):
            if "valueFrom" in variable:
                ref = variable["valueFrom"]["secretKeyRef"]
                env[variable["name"]] = secrets[(ref["name"], ref["key"])]
            else:
                env[variable["name"]] = variable["value"]
        mounts = {
            str(volumes[m["name"]]): {"bind": m["mountPath"], "mode": "ro" if m.get("readOnly") else "rw"}
            for m in container.get("volumeMounts", [])
        }
        memory = container["resources"]["limits"]["memory"]
        assert memory.endswith("Mi"), memory
        run = client.containers.run(
            container["image"],
            container.get("args"),  # docker's command is Kubernetes' args, and its entrypoint Kubernetes' command
            entrypoint=container["command"],
            environment=env,
            user=f"{context['runAsUser']}:{context['runAsGroup']}",
            read_only=context["readOnlyRootFilesystem"],
            cap_drop=list(context["capabilities"]["drop"]),
            security_opt=[] if context["allowPrivilegeEscalation"] else ["no-new-privileges"],
            mem_limit=f"{memory[:-2]}m",
            volumes=mounts,
            working_dir=container.get("workingDir"),
            network_mode="host",  # the engine's own network, where the test server's port is
            detach=True,
        )
        try:
            code = run.wait(timeout=120)["StatusCode"]
            logs.append(f"{container['name']}: {run.logs().decode(errors='replace')}")
        finally:
            run.remove(force=True)
        if code != 0:
            return code, "\n".join(logs)
    return 0, "\n".join(logs)


# enrichment's image as a Go or dbmate service's often is: its migrations and a shell, no runner migratekit knows
MIGRATIONS_ONLY = """\
FROM local/debian:bookworm
COPY services/enrichment/migrations /srv/db/migrations
"""


@pytest.mark.parametrize("images", ["their own", "a runner image for enrichment"])
def test_each_rendered_job_runs_in_its_image_and_records_what_migrate_all_records(
    client, example_repo: Monorepo, new_db, tmp_path: Path, images: str, request: pytest.FixtureRequest
) -> None:
    """k8s-render's Jobs, each run in its service's image built from the service's Dockerfile, wave by wave, with
    the Secret's URL in DATABASE_URL: the same tracking rows as migrate-all, and a second run changes nothing.
    With a runner image, enrichment's Job copies its migrations out of its image (an init container) into the
    migratekit image's."""
    from test_k8s import manifests, url_env
    from test_typescript import as_url

    repo = example_repo
    flags = []
    if images != "their own":
        (repo.root / "services/enrichment/Dockerfile").write_text(MIGRATIONS_ONLY)
        flags = ["--runner-image", request.getfixturevalue("migratekit_image")]
    workspace = load_workspace(repo.root)
    for name, service in workspace.services.items():  # the layers verify --image built: cached
        dockerfile = service.path / "Dockerfile"
        context = analyse(dockerfile, service.path, repo.root, migrations_dir=service.migrations_dir).context
        dockerfile = dockerfile.relative_to(context)
        client.images.build(path=str(context), dockerfile=str(dockerfile), rm=True, tag=f"migratekit-job-{name}:test")
    by_migrate_all = {"authentication": new_db(), "battles": new_db()}
    by_migrate_all["enrichment"] = by_migrate_all["battles"]  # workspace.yaml: database: battles
    done = repo.invoke("migrate-all", env=url_env(by_migrate_all))
    assert done.returncode == 0, done.stdout + done.stderr
    by_job = {"authentication": new_db(), "battles": new_db()}
    by_job["enrichment"] = by_job["battles"]
    output = tmp_path / "jobs"
    template = "migratekit-job-{service}:test"
    result = repo.invoke("k8s-render", "--image-template", template, "--output", str(output), *flags)
    assert result.returncode == 0, result.stdout + result.stderr
    jobs = manifests(sorted(output.glob("*.yaml")))
    assert set(jobs) == set(workspace.services)
    fed = {name for name, job in jobs.items() if "initContainers" in job["spec"]["template"]["spec"]}
    assert fed == (set() if images == "their own" else {"enrichment"})
    secrets = {(k8s.secret_name(name), "url"): as_url(url) for name, url in by_job.items()}

    def applied(name: str) -> list[tuple]:
        table = workspace.services[name].settings.tracking_table
        with psycopg.connect(by_job[name]) as conn:
            return conn.execute(f"SELECT version, checksum, applied_at FROM {table} ORDER BY version").fetchall()

    pods = tmp_path / "pods"
    for wave in workspace.groups():
        for name in wave:
            code, log = run_job(client, jobs[name], secrets, pods / "first")
            assert code == 0, f"{name}'s Job exited {code}:\n{log}"
    first = {name: applied(name) for name in workspace.services}
    for name, service in workspace.services.items():
        table = service.settings.tracking_table
        assert rows(by_job[name], table) == rows(by_migrate_all[name], table) != [], name
    for name in workspace.order():  # the Job run again (a retried or re-applied Job): nothing to do
        code, log = run_job(client, jobs[name], secrets, pods / "again")
        assert code == 0, f"{name}'s Job exited {code} the second time:\n{log}"
        assert "up to date" in log, log
        assert applied(name) == first[name], name
