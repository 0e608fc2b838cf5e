"""The pre-commit hooks report what the staged files answer for: findings in those files, a service's wiring
findings only when one of its wiring files is staged, less what the workspace's findings baseline accepts."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, write_tree
from migratekit.checks import baseline as baselines
from migratekit.checks.run import audit
from migratekit.cli.hook import main
from migratekit.model.workspace_file import load_workspace

BIN = Path(sys.executable).parent
PRE_COMMIT = shutil.which("pre-commit", path=str(BIN)) or shutil.which("pre-commit")
INIT = "-- Migration: 001_init\nCREATE TABLE accounts (id int);\n"  # MK201 at line 2, MK111
SVC_INIT = "services/svc/migrations/001_init.sql"
SVC_MORE = "services/svc/migrations/002_more.sql"


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Two services without runners (MK401, a wiring error of each) and with a non-idempotent 001 each."""
    root = write_tree(
        tmp_path / "repo",
        {
            SVC_INIT: INIT,
            SVC_MORE: "-- Migration: 002_more\nCREATE TABLE IF NOT EXISTS more (id int);\n",
            "services/svc/Dockerfile": 'FROM python:3.12\nCOPY . /app\nCMD ["python", "-m", "svc"]\n',
            "services/other/migrations/001_init.sql": INIT.replace("accounts", "untouched"),
            "tasks.py": "from migratekit.tasks import ns\n",
        },
    )
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    monkeypatch.chdir(root)
    return root


def hook(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out + err


def test_a_clean_staged_file_passes_beside_a_dirty_sibling(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """002 is fine; 001 (MK201), the missing README (MK105) and the runner (MK401) are not this commit's."""
    code, out = hook(capsys, "audit", SVC_MORE)
    assert code == 0, out
    assert "MK" not in out and "0 error(s), 0 warning(s)" in out


def test_a_staged_file_gets_its_own_findings_only(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = hook(capsys, "audit", SVC_INIT)
    assert code == 1
    assert f"MK201 error {SVC_INIT}:2" in out and f"MK111 warning {SVC_INIT}" in out
    assert "MK401" not in out and "MK105" not in out and "services/other" not in out


def test_a_staged_wiring_file_brings_its_services_wiring_findings(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = hook(capsys, "audit", "services/svc/Dockerfile")
    assert code == 1
    assert "MK401 error services/svc: svc has migrations but nothing runs them" in out
    assert "MK201" not in out and "services/other" not in out  # wiring of svc only, no migration findings


def test_a_staged_repository_deploy_file_brings_every_services_wiring(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_tree(repo, {"docker-compose.yml": "services:\n  svc:\n    build: services/svc\n"})
    code, out = hook(capsys, "audit", "docker-compose.yml")
    assert code == 1
    assert "MK401 error services/svc:" in out and "MK401 error services/other:" in out
    assert "MK201" not in out


def test_the_file_hook_keeps_the_file_rules_of_the_staged_files(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_tree(repo, {"services/svc/migrations/3-AddEmail.sql": "-- Migration: 3-AddEmail\nSELECT 1;\n"})
    code, out = hook(capsys, "files", SVC_INIT, "services/svc/migrations/3-AddEmail.sql")
    assert code == 1
    assert "MK101 error services/svc/migrations/3-AddEmail.sql" in out and f"MK111 warning {SVC_INIT}" in out
    assert "MK201" not in out and "MK401" not in out  # no SQL rules, no wiring


def test_the_workspace_baseline_is_honoured(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The findings of 001 were accepted on adoption day; a new non-idempotent 003 is reported."""
    write_tree(
        repo, {"workspace.yaml": "version: 1\nbaseline: audit-baseline.json\nservices:\n  svc: {}\n  other: {}\n"}
    )
    accepted = audit(load_workspace(repo), use_cache=False).findings
    (repo / "audit-baseline.json").write_text(baselines.document(accepted))
    bad = "services/svc/migrations/003_bad.sql"
    write_tree(repo, {bad: "-- Migration: 003_bad\nCREATE TABLE bad (id int);\n"})
    code, out = hook(capsys, "audit", SVC_INIT, bad, "services/svc/Dockerfile")
    assert code == 1
    assert f"MK201 error {bad}:2" in out and SVC_INIT not in out and "MK401" not in out
    assert "3 accepted finding(s) not listed (baseline audit-baseline.json)" in out, out  # MK201, MK111, MK401
    assert "are fixed" not in out  # the rest of the service was not looked at: nothing to say about it
    code, out = hook(capsys, "audit", SVC_INIT)
    assert code == 0 and "MK" not in out, out


def test_files_outside_every_service_check_nothing(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_tree(repo, {"README.md": "# shop\n"})
    assert hook(capsys, "audit", "README.md") == (0, "")
    assert hook(capsys, "audit") == (0, "")


@pytest.mark.skipif(PRE_COMMIT is None, reason="pre-commit is not installed (it is in the test extras)")
def test_the_real_pre_commit_runs_both_hooks_on_the_staged_files(tmp_path: Path) -> None:
    """pre-commit itself installs this repository's hooks (one hook environment) and runs them on a monorepo."""
    root = write_tree(
        tmp_path / "repo",
        {
            SVC_INIT: INIT,
            "services/svc/migrations/3-AddEmail.sql": "-- Migration: 3-AddEmail\nSELECT 1;\n",
            "services/svc/migrations/004_later.sql": "-- Migration: 004_later\nCREATE TABLE later (id int);\n",
            "services/other/migrations/001_init.sql": INIT.replace("accounts", "untouched"),
        },
    )
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    changed = [SVC_INIT, "services/svc/migrations/3-AddEmail.sql"]
    result = subprocess.run(
        [PRE_COMMIT, "try-repo", str(REPO), "--files", *changed],
        cwd=root,
        capture_output=True,
        text=True,
        env={**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home")},
        timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    audited, files = output.split("migratekit naming and numbering", 1)
    assert f"MK201 error {SVC_INIT}:2" in audited
    assert "004_later" not in output and "services/other" not in output and "MK401" not in output
    assert "MK101 error services/svc/migrations/3-AddEmail.sql" in files and "MK201" not in files
