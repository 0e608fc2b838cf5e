"""`invoke k8s-render` and `migrate-all --on kubernetes`: Jobs per service, in the waves of depends_on, that would
succeed: each Job's container is run here as the cluster would run it, and records migrate-all's rows.

A container is run as a process of this machine: its command and environment as rendered (the Secret's URL in
DATABASE_URL), each volume a directory of its own, and the image's migrations where its Dockerfile puts them
(mapped to the checkout's directory). `python` is this interpreter, which has migratekit, as the image would.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from conftest import Monorepo, filled, read_only, write_tree
from migratekit.integrations import k8s
from migratekit.model.workspace_file import load_workspace

BIN = Path(sys.executable).parent
VALIDATE = shutil.which("kubernetes-validate", path=str(BIN)) or shutil.which("kubernetes-validate")
KUBECTL = shutil.which("kubectl")
NPM = shutil.which("npm")
FIXTURES = Path(__file__).parent / "k8s"
RUNNER_IMAGE = "registry.example.com/migratekit:1"
# The restricted Pod Security Standard (kubernetes.io/docs/concepts/security/pod-security-standards): these volume
# types only, and per container no privilege, no escalation, non-root, seccomp, every capability dropped.
RESTRICTED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim"}
RESTRICTED_VOLUMES |= {"projected", "secret"}


def rendered(repo: Monorepo, *flags: str) -> list[Path]:
    result = repo.invoke(
        "k8s-render", "--image-template", "registry.example.com/{service}:v3", "--namespace", "prod", *flags
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return sorted((repo.root / "k8s" / "migratekit").glob("*.yaml"))


def manifests(paths: list[Path]) -> dict[str, dict[str, Any]]:
    """Each rendered Job by its service."""
    jobs = [yaml.safe_load(p.read_text()) for p in paths]
    return {job["metadata"]["labels"][k8s.SERVICE_LABEL]: job for job in jobs}


def restricted_violations(job: dict[str, Any]) -> list[str]:
    """What keeps the Job's pod out of a namespace enforcing Pod Security "restricted", and out of what the
    issue asks beside it (a read-only root, resources, no service-account token)."""
    pod = job["spec"]["template"]["spec"]
    pod_context = pod.get("securityContext", {})
    problems = [f"pod: {key}" for key in ("hostNetwork", "hostPID", "hostIPC") if pod.get(key)]
    problems += [f"volume {v['name']}" for v in pod.get("volumes", []) if not set(v) - {"name"} <= RESTRICTED_VOLUMES]
    if pod.get("automountServiceAccountToken") is not False:
        problems.append("pod: the service-account token is mounted")
    for container in pod.get("initContainers", []) + pod["containers"]:
        context, name = container.get("securityContext", {}), container["name"]

        def inherited(key: str, context: dict[str, Any] = context) -> Any:
            return context.get(key, pod_context.get(key))

        capabilities = context.get("capabilities", {})
        checks = {
            "privileged": not context.get("privileged"),
            "allowPrivilegeEscalation false": context.get("allowPrivilegeEscalation") is False,
            "runAsNonRoot": inherited("runAsNonRoot") is True and inherited("runAsUser") != 0,
            "seccompProfile": (inherited("seccompProfile") or {}).get("type") in ("RuntimeDefault", "Localhost"),
            "drop ALL": "ALL" in capabilities.get("drop", []),
            "add only NET_BIND_SERVICE": set(capabilities.get("add", [])) <= {"NET_BIND_SERVICE"},
            "no hostPort": not any(port.get("hostPort") for port in container.get("ports", [])),
            "readOnlyRootFilesystem": context.get("readOnlyRootFilesystem") is True,
            "resources": {"requests", "limits"} <= set(container.get("resources", {})),
        }
        problems += [f"{name}: {check}" for check, ok in checks.items() if not ok]
    return problems


def validate(paths: list[Path]) -> None:
    if VALIDATE is None:
        pytest.skip("kubernetes-validate is not installed (it is in the test extras)")
    check = subprocess.run([VALIDATE, "--strict", *map(str, paths)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def run_container(
    container: dict[str, Any],
    image: Mapping[str, Path],
    volumes: Mapping[str, Path],
    secrets: Mapping[tuple[str, str], str],
    cwd: Path,
    extra_env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run one container of the Job as a process: its mounts over the image's paths, its env with the Secrets."""
    mounts = {m["mountPath"]: volumes[m["name"]] for m in container.get("volumeMounts", [])}
    places = sorted({**image, **mounts}.items(), key=lambda kv: -len(kv[0]))  # a mount hides the image's path

    def local(word: str) -> str:
        for inside, here in places:
            if word == inside or word.startswith(inside + "/"):
                return str(here) + word[len(inside) :]
        return word

    command = [local(word) for word in container["command"]]
    command[0] = sys.executable if command[0] == "python" else command[0]
    env = {"PATH": os.environ["PATH"], **(extra_env or {})}
    for variable in container.get("env", []):
        if "valueFrom" in variable:
            ref = variable["valueFrom"]["secretKeyRef"]
            env[variable["name"]] = secrets[(ref["name"], ref["key"])]
        else:
            env[variable["name"]] = local(variable["value"])
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def run_job(
    job: dict[str, Any],
    image: Mapping[str, Path],
    secrets: Mapping[tuple[str, str], str],
    scratch: Path,
    cwd: Path | None = None,
    extra_env: Mapping[str, str] | None = None,
) -> None:
    """The pod's init containers, then its container, as the kubelet runs them; each must exit 0."""
    pod = job["spec"]["template"]["spec"]
    volumes = {v["name"]: scratch / job["metadata"]["name"] / v["name"] for v in pod["volumes"]}
    for directory in volumes.values():
        directory.mkdir(parents=True)
    for container in pod.get("initContainers", []) + pod["containers"]:
        done = run_container(container, image, volumes, secrets, cwd or scratch, extra_env)
        assert done.returncode == 0, f"{container['name']} of {job['metadata']['name']}: {done.stdout}{done.stderr}"


def tracking_rows(url: str, table: str) -> list[tuple[str, str]]:
    with psycopg.connect(url) as conn:
        return conn.execute(f"SELECT version, checksum FROM {table} ORDER BY version").fetchall()


def url_env(urls: Mapping[str, str]) -> dict[str, str]:
    return {f"{name.upper()}_DATABASE_URL": url for name, url in urls.items()}


def twenty_services(tmp_path: Path) -> Monorepo:
    names = [f"s{i:02d}" for i in range(20)]
    deps = {n: [names[j] for j in range(i) if (i * 7 + j) % 5 == 0][:3] for i, n in enumerate(names)}
    workspace = "version: 1\nservices:\n" + "".join(f"  {n}: {{depends_on: {deps[n]}}}\n" for n in names)
    files = {f"services/{n}/migrations/001_init.sql": "SELECT 1;\n" for n in names}
    dockerfile = (
        "FROM python:3.12-slim\nRUN pip install --no-cache-dir 'migratekit[kubernetes]'\nCOPY migrations /srv\n"
    )
    files |= {f"services/{n}/Dockerfile": dockerfile for n in names}
    return Monorepo(
        write_tree(
            tmp_path / "repo", {**files, "workspace.yaml": workspace, "tasks.py": "from migratekit.tasks import ns\n"}
        ),
        {},
    )


def polyglot(tmp_path: Path) -> tuple[Monorepo, dict[str, Any]]:
    """tests/k8s/polyglot.yml's monorepo, with the Python scaffold's payments added by new-service."""
    fixture = yaml.safe_load((FIXTURES / "polyglot.yml").read_text())
    root = write_tree(
        tmp_path / "poly",
        {**fixture["files"], "workspace.yaml": fixture["workspace"], "tasks.py": "from migratekit.tasks import ns\n"},
    )
    repo = Monorepo(root, {})
    made = repo.invoke("new-service", "payments", "--lang", "python", "--depends-on", "orders")
    assert made.returncode == 0, made.stderr
    return repo, fixture["jobs"]


@pytest.mark.parametrize("which", ["example", "twenty services", "polyglot", "polyglot, helm", "example, argocd"])
def test_rendered_jobs_follow_the_waves_validate_and_meet_the_restricted_profile(
    example_repo: Monorepo, tmp_path: Path, which: str
) -> None:
    repo = twenty_services(tmp_path) if which == "twenty services" else example_repo
    flags = ("--hooks", which.split(", ")[1]) if ", " in which else ()
    if which.startswith("polyglot"):
        repo, _ = polyglot(tmp_path)
        flags += ("--runner-image", RUNNER_IMAGE)
    paths = rendered(repo, *flags)
    jobs = [yaml.safe_load(p.read_text()) for p in paths]
    assert k8s.waves_of(jobs) == load_workspace(repo.root).groups()
    for job in jobs:
        assert restricted_violations(job) == [], job["metadata"]["name"]
        assert job["spec"]["backoffLimit"] == 0 and job["metadata"]["namespace"] == "prod"
        assert len(job["metadata"]["name"]) <= 63
        pod = job["spec"]["template"]["spec"]
        for container in pod.get("initContainers", []) + pod["containers"]:
            url = next((e for e in container.get("env", []) if e["name"] == "DATABASE_URL"), None)
            assert url is None or set(url) == {"name", "valueFrom"} and "secretKeyRef" in url["valueFrom"]
            assert container["image"].startswith("registry.example.com/")
    text = "".join(p.read_text() for p in paths)
    assert "postgres://" not in text and "postgresql://" not in text and "password" not in text.lower()
    assert not re.search(r"[&*]id\d+", text), "the YAML holds anchors or aliases"
    validate(paths)


def test_a_job_without_the_hardening_fails_the_restricted_check(example_repo: Monorepo) -> None:
    """The check above is not vacuous: the Jobs as k8s-render wrote them before fail it, field by field."""
    (job,) = [j for j in manifests(rendered(example_repo)).values() if j["metadata"]["labels"][k8s.WAVE_LABEL] == "1"]
    pod = job["spec"]["template"]["spec"]
    for key in ("securityContext", "automountServiceAccountToken"):
        pod.pop(key)
    for key in ("securityContext", "resources"):
        pod["containers"][0].pop(key)
    assert restricted_violations(job) == [
        "pod: the service-account token is mounted",
        "migrate: allowPrivilegeEscalation false",
        "migrate: runAsNonRoot",
        "migrate: seccompProfile",
        "migrate: drop ALL",
        "migrate: readOnlyRootFilesystem",
        "migrate: resources",
    ]


def test_the_example_jobs_run_each_services_runner_with_its_tracking_table(example_repo: Monorepo) -> None:
    jobs = manifests(rendered(example_repo))
    containers = {name: job["spec"]["template"]["spec"]["containers"][0] for name, job in jobs.items()}
    for name in ("authentication", "battles"):  # the seed's runner, in the service's node image
        assert containers[name]["command"] == ["node", "-e", k8s.SEED_RUNNER]
        assert containers[name]["image"] == f"registry.example.com/{name}:v3"
    assert containers["enrichment"]["command"] == [
        *("python", "-m", "migratekit", "migrate", "--dir", "/app/migrations"),
        *("--tracking-table", "enrichment.schema_migrations", "--format", "seed"),
        *("--lock-timeout", "5s", "--statement-timeout", "5min"),
    ]
    assert containers["enrichment"]["image"] == "registry.example.com/enrichment:v3"  # it installs migratekit
    assert all("initContainers" not in job["spec"]["template"]["spec"] for job in jobs.values())


def test_the_migratekit_runners_job_records_migrate_alls_rows(example_repo: Monorepo, new_db) -> None:
    """enrichment's Job (migratekit's runner in its image) run for real, after what it depends on, against a
    database of its own; migrate-all on another: the same tracking table, versions and checksums."""
    by_migrate_all = {"authentication": new_db(), "battles": new_db()}
    by_migrate_all["enrichment"] = by_migrate_all["battles"]  # workspace.yaml: database: battles
    done = example_repo.invoke("migrate-all", env=url_env(by_migrate_all))
    assert done.returncode == 0, done.stdout + done.stderr
    by_job = {"authentication": new_db(), "battles": new_db()}
    by_job["enrichment"] = by_job["battles"]
    first = example_repo.invoke("migrate", "battles", "--with-deps", env=url_env(by_job))
    assert first.returncode == 0, first.stdout + first.stderr
    job = manifests(rendered(example_repo))["enrichment"]
    image = {"/app/migrations": example_repo.root / "services" / "enrichment" / "migrations"}  # its Dockerfile's COPY
    scratch = example_repo.root.parent / "pods"
    run_job(job, image, {("enrichment-db-credentials", "url"): by_job["enrichment"]}, scratch)
    rows = tracking_rows(by_job["enrichment"], "enrichment.schema_migrations")
    assert rows == tracking_rows(by_migrate_all["enrichment"], "enrichment.schema_migrations") and len(rows) == 2
    # and it wrote nothing into battles' table, which shares the database
    assert tracking_rows(by_job["battles"], "schema_migrations") == tracking_rows(
        by_migrate_all["battles"], "schema_migrations"
    )
    container = job["spec"]["template"]["spec"]["containers"][0]
    secretless = {**container, "env": [e for e in container["env"] if e["name"] != "DATABASE_URL"]}
    again = run_container(secretless, image, {"tmp": scratch}, {}, scratch)  # no URL: the runner says so, exit 2
    assert again.returncode == 2 and "no database URL" in again.stderr


@pytest.mark.skipif(NPM is None, reason="npm is not installed: the TypeScript services cannot be built")
def test_every_example_job_run_in_wave_order_records_migrate_alls_rows(
    example_repo: Monorepo, new_db, tmp_path: Path
) -> None:
    """All three Jobs, the seed's runner in the TypeScript services' built images too, wave by wave."""
    from test_typescript import as_url, build, install_node_modules  # the one npm install the TypeScript tests share

    modules = install_node_modules()
    by_migrate_all = {"authentication": new_db(), "battles": new_db()}
    by_migrate_all["enrichment"] = by_migrate_all["battles"]
    assert example_repo.invoke("migrate-all", env=url_env(by_migrate_all)).returncode == 0
    by_job = {"authentication": new_db(), "battles": new_db()}
    by_job["enrichment"] = by_job["battles"]
    jobs = manifests(rendered(example_repo))
    secrets = {(k8s.secret_name(name), "url"): as_url(url) for name, url in by_job.items()}
    for wave in load_workspace(example_repo.root).groups():
        for name in wave:
            service = example_repo.root / "services" / name
            if name == "enrichment":
                run_job(jobs[name], {"/app/migrations": service / "migrations"}, secrets, tmp_path / "pods")
                continue
            app = tmp_path / "images" / name  # the image's /app: dist, node_modules and migrations
            shutil.copytree(service, app, ignore=shutil.ignore_patterns("node_modules", "dist"))
            build(app, modules)
            run_job(jobs[name], {}, secrets, tmp_path / "pods", cwd=app)
    tables = {"authentication": "schema_migrations", "battles": "schema_migrations"}
    tables["enrichment"] = "enrichment.schema_migrations"
    for name, table in tables.items():
        assert tracking_rows(by_job[name], table) == tracking_rows(by_migrate_all[name], table), name


def test_polyglot_jobs_run_the_right_runner_on_the_images_paths_and_record_migrate_alls_rows(
    tmp_path: Path, new_db
) -> None:
    """tests/k8s/polyglot.yml: dbmate, golang-migrate pairs, a tracking table of its own, the Python scaffold;
    each Job is pinned, then run (the init container's copy, then migratekit's runner) and its rows compared."""
    repo, expected = polyglot(tmp_path)
    jobs = manifests(rendered(repo, "--runner-image", RUNNER_IMAGE))
    workspace = load_workspace(repo.root)
    for name, want in expected.items():
        pod = jobs[name]["spec"]["template"]["spec"]
        container = pod["containers"][0]
        assert container["command"] == want["command"], name
        assert container["image"] == (RUNNER_IMAGE if want["image"] == "runner" else f"registry.example.com/{name}:v3")
        env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
        assert {k: env[k] for k in want.get("env", {})} == want.get("env", {})
        if "copies" in want:
            (copy,) = pod["initContainers"]
            assert copy["image"] == f"registry.example.com/{name}:v3"
            assert copy["command"] == ["cp", "-R", f"{want['copies']}/.", k8s.COPY_DIR]
        else:
            assert "initContainers" not in pod
        assert ("activeDeadlineSeconds" in jobs[name]["spec"]) == (want.get("deadline", "set") is not None)
    by_migrate_all = {name: new_db() for name in workspace.services}
    done = repo.invoke("migrate-all", env=url_env(by_migrate_all))
    assert done.returncode == 0, done.stdout + done.stderr
    by_job = {name: new_db() for name in workspace.services}
    secrets = {(k8s.secret_name(name), "url"): url for name, url in by_job.items()}
    for wave in workspace.groups():
        for name in wave:
            service = workspace.services[name]
            image = {expected[name].get("copies", "/app/migrations"): service.migrations_dir}
            extra = {"PYTHONPATH": str(service.path / "src")}  # the scaffold's image pip-installs its package
            run_job(jobs[name], image, secrets, tmp_path / "pods", extra_env=extra)
    for name, service in workspace.services.items():
        table = service.settings.tracking_table
        rows = tracking_rows(by_job[name], table)
        assert rows == tracking_rows(by_migrate_all[name], table) and rows, name


def test_the_text_says_what_each_job_runs_and_how_to_order_them(example_repo: Monorepo) -> None:
    result = example_repo.invoke("k8s-render", "--namespace", "prod")
    assert result.returncode == 0 and result.stderr == ""
    assert re.sub(r"-[0-9a-f]{8}\n", "-<hash>\n", result.stdout) == (
        "wrote 3 Job(s) in k8s/migratekit (namespace prod), in 3 wave(s):\n"
        "  wave 1  authentication  migrate-authentication-<hash>\n"
        "    its own runner (the seed's runMigrations, node -e)\n"
        "    seed files at /app/migrations, into schema_migrations\n"
        "    deadline 5910 s: statement_timeout 5min for each of 19 statement(s), plus the runner's waits\n"
        "  wave 2  battles         migrate-battles-<hash>\n"
        "    its own runner (the seed's runMigrations, node -e)\n"
        "    seed files at /app/migrations, into schema_migrations\n"
        "    deadline 4110 s: statement_timeout 5min for each of 13 statement(s), plus the runner's waits\n"
        "  wave 3  enrichment      migrate-enrichment-<hash>\n"
        "    migratekit's runner in its image\n"
        "    seed files at /app/migrations, into enrichment.schema_migrations\n"
        "    deadline 1710 s: statement_timeout 5min for each of 5 statement(s), plus the runner's waits\n"
        "each Job reads DATABASE_URL from the Secret <service>-db-credentials (key url), which must exist\n"
        "apply them one wave at a time (label migratekit.dev/wave), each once the one before has completed,\n"
        "or let Helm or Argo CD order them: --hooks helm|argocd\n"
    )
    hooked = example_repo.invoke("k8s-render", "--hooks", "helm")
    assert hooked.stdout.splitlines()[-1] == (
        "Helm runs them wave by wave before the release's other resources: the Secrets cannot be among those"
    )


def test_names_change_with_each_revision_and_a_removed_services_job_goes(example_repo: Monorepo) -> None:
    """A Job's pod template is immutable: a new image or a changed migration is a new Job name."""
    first = {name: job["metadata"]["name"] for name, job in manifests(rendered(example_repo)).items()}
    assert first == {name: job["metadata"]["name"] for name, job in manifests(rendered(example_repo)).items()}
    assert all(re.fullmatch(rf"migrate-{name}-[0-9a-f]{{8}}", job) for name, job in first.items())
    example_repo.migration("battles", "003_add_winner.sql", "-- Migration: 003_add_winner\nSELECT 1;\n")
    second = {name: job["metadata"]["name"] for name, job in manifests(rendered(example_repo)).items()}
    assert [name for name in first if first[name] != second[name]] == ["battles"]
    retagged = example_repo.invoke("k8s-render", "--image-template", "registry.example.com/{service}:v4")
    assert retagged.returncode == 0
    third = manifests(sorted((example_repo.root / "k8s" / "migratekit").glob("*.yaml")))
    assert all(third[name]["metadata"]["name"] != second[name] for name in second)
    workspace = example_repo.root / "workspace.yaml"
    workspace.write_text(workspace.read_text().split("  # enrichment keeps")[0])
    shutil.rmtree(example_repo.root / "services" / "enrichment")
    result = example_repo.invoke("k8s-render")
    assert "removed migrate-enrichment.yaml: a Job of a service no longer in the workspace" in result.stdout
    assert sorted(p.name for p in (example_repo.root / "k8s" / "migratekit").iterdir()) == [
        "migrate-authentication.yaml",
        "migrate-battles.yaml",
    ]


def test_statement_timeout_0_means_no_deadline(example_repo: Monorepo) -> None:
    workspace = example_repo.root / "workspace.yaml"
    workspace.write_text(workspace.read_text().replace("statement_timeout: 5min", 'statement_timeout: "0"'))
    jobs = manifests(rendered(example_repo))
    assert [name for name, job in jobs.items() if "activeDeadlineSeconds" in job["spec"]] == []
    command = jobs["enrichment"]["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[command.index("--statement-timeout") + 1] == "0"


@pytest.mark.parametrize(
    ("hooks", "annotations"),
    [
        (
            "helm",
            {
                "helm.sh/hook": "pre-install,pre-upgrade",
                "helm.sh/hook-weight": "{wave}",
                "helm.sh/hook-delete-policy": "before-hook-creation",
            },
        ),
        (
            "argocd",
            {
                "argocd.argoproj.io/hook": "PreSync",
                "argocd.argoproj.io/sync-wave": "{wave}",
                "argocd.argoproj.io/hook-delete-policy": "BeforeHookCreation",
            },
        ),
    ],
)
def test_hooks_order_the_jobs_by_wave_as_the_audit_recognises(
    tmp_path: Path, hooks: str, annotations: dict[str, str]
) -> None:
    """The polyglot services migrate nothing at start-up: an unhooked Job is MK411 (nothing orders it), a hooked
    one is a route the audit counts as run before the server."""
    repo, _ = polyglot(tmp_path)

    def mk411() -> set[str]:
        found = json.loads(repo.invoke("audit", "--json").stdout)["findings"]
        return {f["service"] for f in found if f["code"] == "MK411"}

    assert repo.invoke("k8s-render", "--runner-image", RUNNER_IMAGE).returncode == 0
    assert mk411() == {"catalog", "orders", "ledger"}
    jobs = manifests(rendered(repo, "--runner-image", RUNNER_IMAGE, "--hooks", hooks))
    for job in jobs.values():
        wave = job["metadata"]["labels"][k8s.WAVE_LABEL]
        assert job["metadata"]["annotations"] == {k: v.format(wave=wave) for k, v in annotations.items()}
    assert mk411() == set()


def test_service_account_and_pull_secrets_are_set_and_the_token_never_mounted(example_repo: Monorepo) -> None:
    jobs = manifests(rendered(example_repo, "--service-account", "migrator", "--image-pull-secrets", "regcred,mirror"))
    for job in jobs.values():
        pod = job["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == "migrator" and pod["automountServiceAccountToken"] is False
        assert pod["imagePullSecrets"] == [{"name": "regcred"}, {"name": "mirror"}]


BAD_FLAGS: dict[str, tuple[list[str], str]] = {
    "hooks": (["--hooks", "flux"], "--hooks 'flux': helm or argocd"),
    "namespace": (["--namespace", "Prod"], "--namespace 'Prod': a namespace is at most 63 lower-case letters"),
    "template": (["--image-template", "{name}:v1"], "--image-template '{name}:v1': {service} is the only name"),
    "template space": (["--image-template", "a b/{service}"], "--image-template 'a b/{service}': not an image"),
    "account": (["--service-account", "Migrator"], "--service-account 'Migrator': not a Kubernetes name"),
    "secret": (["--image-pull-secrets", "regcred,bad_one"], "--image-pull-secrets 'bad_one': not a Kubernetes name"),
    "runner": (["--runner-image", "x {y}"], "--runner-image 'x {y}': not an image reference"),
}


@pytest.mark.parametrize("case", sorted(BAD_FLAGS))
def test_a_bad_flag_value_exits_2_with_a_message_and_writes_nothing(example_repo: Monorepo, case: str) -> None:
    flags, message = BAD_FLAGS[case]
    result = example_repo.invoke("k8s-render", *flags)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
    assert not (example_repo.root / "k8s").exists()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            {"services/orders/Dockerfile": "FROM gcr.io/distroless/static\nCOPY migrations /migrations\n"},
            "orders: its image (gcr.io/distroless/static) has no runner migratekit can run, and no cp to hand the "
            "migrations at /migrations to one",
        ),
        ({"services/orders/Dockerfile": None}, "orders: no Dockerfile in services/orders; k8s-render reads it"),
        (
            {"services/orders/Dockerfile": "FROM debian:12-slim\nCOPY cmd /app\n"},
            "orders: the final stage of services/orders/Dockerfile holds no migrations (the audit's MK403)",
        ),
    ],
)
def test_a_service_whose_job_could_not_succeed_is_named_and_nothing_is_written(
    tmp_path: Path, edit: dict[str, str | None], message: str
) -> None:
    repo, _ = polyglot(tmp_path)
    write_tree(repo.root, edit)
    result = repo.invoke("k8s-render", "--runner-image", RUNNER_IMAGE)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("migratekit: no Jobs written: 1 service(s) cannot have one that would succeed\n")
    assert message in result.stderr
    assert not (repo.root / "k8s").exists()
    without = repo.invoke("k8s-render")  # and the images that need --runner-image say so, each by name
    for name, image in (("catalog", "alpine:3.20"), ("ledger", "node:22-alpine")):
        assert f"  {name}: its image ({image}) has no runner migratekit can run" in without.stderr
    assert "ledger: its image (node:22-alpine) has no runner migratekit can run (its own runner writes " in (
        without.stderr
    )


def test_the_jobs_run_what_the_scaffolds_init_containers_run(example_repo: Monorepo) -> None:
    for lang in ("typescript", "python"):
        assert example_repo.invoke("new-service", f"pay-{lang[:2]}", "--lang", lang).returncode == 0
    workspace = load_workspace(example_repo.root)
    for name in ("pay-ty", "pay-py"):
        service = workspace.services[name]
        deployment = yaml.safe_load((service.path / "k8s" / "deployment.yaml").read_text())
        (init,) = deployment["spec"]["template"]["spec"]["initContainers"]
        job = k8s.job(service, 1, workspace.root).manifest
        (container,) = job["spec"]["template"]["spec"]["containers"]
        assert init["command"] == container["command"] == list(k8s.runner(service, workspace.root).command)
        assert init["env"][0]["valueFrom"] == container["env"][0]["valueFrom"]
    assert [f["code"] for f in json.loads(example_repo.invoke("audit", "--json").stdout)["findings"]] == []


def test_kubectl_accepts_the_jobs_in_a_client_dry_run(example_repo: Monorepo) -> None:
    if KUBECTL is None:
        pytest.skip("kubectl is not installed")
    paths = rendered(example_repo)
    result = subprocess.run(
        [KUBECTL, "apply", "--dry-run=client", "--validate=false", *[a for p in paths for a in ("-f", str(p))]],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0 and ("connection refused" in result.stderr or "couldn't get" in result.stderr):
        pytest.skip(f"kubectl needs a cluster even for a client dry run here: {result.stderr.strip()[:120]}")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("job.batch/migrate-") == len(paths)


def test_migrate_all_on_kubernetes_renders_the_same_jobs_first_and_says_why_it_cannot_run(
    example_repo: Monorepo,
) -> None:
    """Before any cluster is asked: bad flags exit 2; then a missing client or cluster is a message, exit 1."""
    bad = example_repo.invoke("migrate-all", "--on", "kubernetes", "--namespace", "Prod")
    assert bad.returncode == 2 and "--namespace 'Prod'" in bad.stderr and "Traceback" not in bad.stderr
    reason = k8s.cluster_unavailable_reason()
    if reason is None:
        pytest.skip("a cluster answers: the run itself is the test below")
    result = example_repo.invoke("migrate-all", "--on", "kubernetes")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip() == f"migratekit: --on kubernetes: {reason}"


@pytest.mark.skipif(k8s.cluster_unavailable_reason() is not None, reason=f"{k8s.cluster_unavailable_reason()}")
def test_migrate_all_on_a_cluster_runs_the_waves(example_repo: Monorepo) -> None:
    """On a real cluster: a Job per service, the summary and exit code of a local run (the images must exist)."""
    result = example_repo.invoke("migrate-all", "--on", "kubernetes", "--json")
    services = json.loads(result.stdout)["services"]
    assert [s["service"] for s in services] == load_workspace(example_repo.root).order()
    assert result.returncode == (0 if all(s["outcome"] == "applied" for s in services) else 1)


@pytest.mark.parametrize(
    ("dockerfile", "installed"),
    [
        ("FROM python:3.12-slim\nRUN pip install --no-cache-dir /opt/migratekit\n", True),
        ("FROM python:3.12-slim\nRUN python -m pip install 'migratekit[kubernetes]==1.0' psycopg\n", True),
        ("FROM python:3.12-slim\nRUN pip install ./dist/migratekit-0.1.0-py3-none-any.whl\n", True),
        ("FROM registry.example.com/migratekit:1\n", True),
        ("FROM python:3.12-slim\nRUN pip install flask && echo migratekit\n", False),
        ("FROM python:3.12-slim\nRUN pip install migratekit-plugins\n", False),
        ("FROM python:3.12 AS build\nRUN pip install migratekit\nFROM python:3.12-slim\n", False),  # not this stage
    ],
)
def test_migratekits_runner_runs_in_the_services_image_only_where_its_final_stage_installs_it(
    tmp_path: Path, dockerfile: str, installed: bool
) -> None:
    root = write_tree(
        tmp_path,
        {
            "workspace.yaml": "version: 1\nservices:\n  api: {language: python}\n",
            "services/api/migrations/001_init.sql": "SELECT 1;\n",
            "services/api/Dockerfile": dockerfile + "WORKDIR /srv\nCOPY migrations ./migrations\n",
        },
    )
    workspace = load_workspace(root)
    chosen = k8s.runner(workspace.services["api"], root, RUNNER_IMAGE)
    assert (chosen.image is None) == installed
    assert chosen.migrations == "/srv/migrations"
    assert chosen.command[chosen.command.index("--dir") + 1] == ("/srv/migrations" if installed else k8s.COPY_DIR)


# --- manifests that cannot be written: exit 2 naming the file, and the Jobs there as they were -------------------


def jobs_on_a_disk_of_their_own(repo: Monorepo, full_disk: Callable[..., Path]) -> tuple[Path, dict[str, bytes]]:
    directory = full_disk(repo.root / "k8s" / "migratekit", "1m")
    assert len(rendered(repo)) == 3
    return directory, {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


@pytest.mark.parametrize("keep", [0, 4096], ids=["nothing free", "room for one Job"])
def test_re_rendering_on_a_full_disk_is_exit_2_and_leaves_every_job_as_it_was(
    example_repo: Monorepo, full_disk: Callable[..., Path], keep: int
) -> None:
    """Each manifest was rewritten in place: a full disk left the first ones truncated (or new beside old ones of
    another revision) and a traceback. They are written beside, and renamed only once every one is whole."""
    directory, before = jobs_on_a_disk_of_their_own(example_repo, full_disk)
    filled(directory, keep)
    result = example_repo.invoke("k8s-render", "--image-template", LONG_IMAGE)  # each Job a page longer
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "No space left on device" in result.stderr and "as they were" in result.stderr, result.stderr
    assert "k8s/migratekit/migrate-" in result.stderr and "wrote" not in result.stdout, result.stderr
    (directory / "filler").unlink()
    assert {p.name: p.read_bytes() for p in sorted(directory.iterdir())} == before  # no .*.tmp either
    again = example_repo.invoke("k8s-render", "--image-template", LONG_IMAGE)
    assert (
        again.returncode == 0
        and LONG_IMAGE.format(service="battles") in (directory / "migrate-battles.yaml").read_text()
    )


# an image whose name makes each Job more than a page (4096 bytes) longer than with the default template
LONG_IMAGE = "registry.example.com/" + "/".join(f"team{i:03d}" for i in range(300)) + "/{service}:v4"


def test_rendering_into_a_read_only_directory_is_exit_2_and_changes_nothing(
    example_repo: Monorepo, full_disk: Callable[..., Path]
) -> None:
    directory, before = jobs_on_a_disk_of_their_own(example_repo, full_disk)
    read_only(directory)
    result = example_repo.invoke("k8s-render", "--image-template", "registry.example.com/{service}:v4")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "k8s/migratekit/migrate-" in result.stderr and "as they were" in result.stderr, result.stderr
    assert {p.name: p.read_bytes() for p in sorted(directory.iterdir())} == before


def test_a_directory_where_a_job_goes_is_exit_2_naming_it(example_repo: Monorepo) -> None:
    """It was IsADirectoryError, a traceback, with the Jobs before it rewritten."""
    directory = example_repo.root / "k8s" / "migratekit"
    (directory / "migrate-battles.yaml").mkdir(parents=True)
    result = example_repo.invoke("k8s-render")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "k8s/migratekit/migrate-battles.yaml" in result.stderr and "as they were" in result.stderr
    assert [p.name for p in directory.iterdir()] == ["migrate-battles.yaml"]


def test_jobs_that_cannot_be_written_into_a_new_directory_leave_none(
    example_repo: Monorepo, full_disk: Callable[..., Path]
) -> None:
    """--output's directories made for the Jobs go again when they cannot be written."""
    k8s_dir = full_disk(example_repo.root / "k8s", "1m")
    filled(k8s_dir)
    result = example_repo.invoke("k8s-render", "--output", "k8s/deploy/jobs")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert sorted(p.name for p in k8s_dir.iterdir()) == ["filler"]


def test_a_fifo_among_the_jobs_is_left_alone_not_waited_on_for_good(example_repo: Monorepo) -> None:
    """The Jobs of services gone were found by reading every *.yaml there with read_text: a FIFO among them kept
    k8s-render waiting for a writer for good."""
    directory = example_repo.root / "k8s" / "migratekit"
    directory.mkdir(parents=True)
    os.mkfifo(directory / "notes.yaml")
    done = subprocess.run(
        [sys.executable, "-m", "invoke", "k8s-render"],
        cwd=example_repo.root,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert (directory / "notes.yaml").is_fifo() and len(list(directory.glob("migrate-*.yaml"))) == 3


@pytest.mark.parametrize("what", ["a file", "a dangling link"])
def test_an_output_that_is_no_directory_is_exit_2_saying_so(example_repo: Monorepo, tmp_path: Path, what: str) -> None:
    """It said "cannot be written (File exists)" and the Jobs "in tasks.py" were as they were."""
    output = example_repo.root / "jobs"
    if what == "a file":
        output.write_text("notes\n")
    else:
        output.symlink_to(tmp_path / "nowhere")
    result = example_repo.invoke("k8s-render", "--output", "jobs")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "jobs: not a directory" in result.stderr and "nothing was written" in result.stderr, result.stderr
    assert output.is_symlink() or output.read_text() == "notes\n"


def test_the_jobs_of_more_services_than_files_a_process_may_open_are_rendered(tmp_path: Path) -> None:
    """Every Job was held open until all were whole: a monorepo with more services than the open-file limit (1024
    by default; 64 here) was exit 2, 'Too many open files'. Each is written and closed, then all take their place."""
    import resource

    names = [f"s{i:03d}" for i in range(80)]
    dockerfile = "FROM python:3.12-slim\nRUN pip install 'migratekit[kubernetes]'\nCOPY migrations /srv\n"
    files = {f"services/{n}/migrations/001_init.sql": "SELECT 1;\n" for n in names}
    files |= {f"services/{n}/Dockerfile": dockerfile for n in names}
    root = write_tree(tmp_path / "repo", {**files, "tasks.py": "from migratekit.tasks import ns\n"})

    def few_files() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))

    done = subprocess.run(
        [sys.executable, "-m", "invoke", "k8s-render", "--image-template", "registry.example.com/{service}:v3"],
        cwd=root,
        capture_output=True,
        text=True,
        preexec_fn=few_files,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert len(list((root / "k8s" / "migratekit").glob("migrate-*.yaml"))) == len(names)
    assert not list((root / "k8s" / "migratekit").glob(".*.tmp"))
