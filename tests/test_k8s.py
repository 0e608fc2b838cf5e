"""`invoke k8s-render` and `migrate-all --on kubernetes`: Jobs per service, in the waves of depends_on."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import Monorepo, write_tree
from migratekit.integrations import k8s
from migratekit.model.workspace_file import load_workspace

BIN = Path(sys.executable).parent
VALIDATE = shutil.which("kubernetes-validate", path=str(BIN)) or shutil.which("kubernetes-validate")
KUBECTL = shutil.which("kubectl")


def rendered(repo: Monorepo) -> list[Path]:
    result = repo.invoke("k8s-render", "--image-template", "registry.example.com/{service}:v3", "--namespace", "prod")
    assert result.returncode == 0, result.stderr
    return sorted((repo.root / "k8s" / "migratekit").glob("*.yaml"))


def twenty_services(tmp_path: Path) -> Monorepo:
    names = [f"s{i:02d}" for i in range(20)]
    deps = {n: [names[j] for j in range(i) if (i * 7 + j) % 5 == 0][:3] for i, n in enumerate(names)}
    workspace = "version: 1\nservices:\n" + "".join(f"  {n}: {{depends_on: {deps[n]}}}\n" for n in names)
    files = {f"services/{n}/migrations/001_init.sql": "SELECT 1;\n" for n in names}
    return Monorepo(
        write_tree(
            tmp_path / "repo", {**files, "workspace.yaml": workspace, "tasks.py": "from migratekit.tasks import ns\n"}
        ),
        {},
    )


@pytest.mark.parametrize("which", ["example", "twenty services"])
def test_rendered_jobs_follow_the_waves_hold_no_secret_and_validate(
    example_repo: Monorepo, tmp_path: Path, which: str
) -> None:
    repo = example_repo if which == "example" else twenty_services(tmp_path)
    paths = rendered(repo)
    jobs = [yaml.safe_load(p.read_text()) for p in paths]
    assert k8s.waves_of(jobs) == load_workspace(repo.root).groups()
    for manifest in jobs:
        spec = manifest["spec"]
        assert (spec["backoffLimit"], spec["activeDeadlineSeconds"]) == (0, 300 + k8s.MARGIN_SECONDS)
        (container,) = spec["template"]["spec"]["containers"]
        url = next(e for e in container["env"] if e["name"] == "DATABASE_URL")
        assert set(url) == {"name", "valueFrom"} and "secretKeyRef" in url["valueFrom"]
        assert container["image"].startswith("registry.example.com/") and manifest["metadata"]["namespace"] == "prod"
    text = "".join(p.read_text() for p in paths)
    assert "postgres://" not in text and "postgresql://" not in text and "password" not in text.lower()
    if VALIDATE is None:
        pytest.skip("kubernetes-validate is not installed (it is in the test extras)")
    check = subprocess.run([VALIDATE, "--strict", *map(str, paths)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_the_jobs_run_what_the_scaffolds_init_containers_run(example_repo: Monorepo) -> None:
    for lang in ("typescript", "python"):
        assert example_repo.invoke("new-service", f"pay-{lang[:2]}", "--lang", lang).returncode == 0
    workspace = load_workspace(example_repo.root)
    for name in ("pay-ty", "pay-py"):
        deployment = yaml.safe_load((workspace.services[name].path / "k8s" / "deployment.yaml").read_text())
        (init,) = deployment["spec"]["template"]["spec"]["initContainers"]
        assert init["command"] == k8s.command(workspace.services[name])
        secret = init["env"][0]["valueFrom"]["secretKeyRef"]
        job = k8s.job(workspace.services[name], 1, init["image"], "default")
        job_env = job["spec"]["template"]["spec"]["containers"][0]["env"][0]["valueFrom"]["secretKeyRef"]
        assert job_env == secret
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


@pytest.mark.skipif(k8s.cluster_unavailable_reason() is not None, reason=f"{k8s.cluster_unavailable_reason()}")
def test_migrate_all_on_a_cluster_runs_the_waves(example_repo: Monorepo) -> None:
    """On a real cluster: a Job per service, the summary and exit code of a local run (the images must exist)."""
    result = example_repo.invoke("migrate-all", "--on", "kubernetes", "--json")
    services = json.loads(result.stdout)["services"]
    assert [s["service"] for s in services] == load_workspace(example_repo.root).order()
    assert result.returncode == (0 if all(s["outcome"] == "applied" for s in services) else 1)
