"""migratekit as another monorepo gets it: a wheel and an sdist built from this checkout, the wheel installed into a
fresh virtual environment outside the checkout, and its tasks run in a two-service monorepo from a three-line
tasks.py (docs/install.md shows the same steps).

Offline and in seconds: the wheel is built without an isolated build environment (the test venv has setuptools
and build), and the fresh venv is given the test venv's dependencies (linked, the same versions pip resolved for
it) so that `pip install --no-index` resolves every requirement the wheel declares without a package index.
migratekit itself comes only from the wheel: the checkout is nowhere on the fresh venv's path.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import tarfile
import venv
import zipfile
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from conftest import REPO, write_tree

pytest.importorskip("build", reason="build is in the test extras: pip install -e '.[test]'")

OWN = ("migratekit", "__editable__", "pip")  # not linked: migratekit comes from what is installed, pip is ours
TASKS = 'from migratekit.tasks import ns\n\n__all__ = ["ns"]\n'


def built(outdir: Path) -> tuple[Path, Path]:
    """`python -m build`: the sdist, then the wheel built from the sdist (so the sdist is proved complete)."""
    done = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(outdir), str(REPO)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (sdist,) = outdir.glob("migratekit-*.tar.gz")
    (wheel,) = outdir.glob("migratekit-*-py3-none-any.whl")
    return sdist, wheel


def fresh_venv(where: Path) -> Path:
    """A new venv whose site-packages holds links to the test venv's dependencies, and no migratekit."""
    venv.EnvBuilder(with_pip=False).create(where)
    python = where / "bin" / "python"
    target = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    ours = Path(sysconfig.get_paths()["purelib"])
    for entry in ours.iterdir():
        if not entry.name.startswith(OWN) and entry.name != "__pycache__":
            (target / entry.name).symlink_to(entry)
    return python


def shop(tmp_path: Path) -> Path:
    """The other monorepo: two services, one after the other, and the three-line tasks.py."""
    return write_tree(
        tmp_path / "shop",
        {
            "tasks.py": TASKS,
            "workspace.yaml": "version: 1\nservices:\n  accounts: {}\n  orders: {depends_on: [accounts]}\n",
            "services/accounts/migrations/001_init.sql": "-- Migration: 001_init\n"
            "CREATE TABLE IF NOT EXISTS accounts (id BIGINT PRIMARY KEY);\n",
            "services/orders/migrations/001_init.sql": "-- Migration: 001_init\n"
            "CREATE TABLE IF NOT EXISTS orders (id BIGINT PRIMARY KEY, account_id BIGINT NOT NULL);\n",
        },
    )


def outside(python: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a shell with only the fresh venv on PATH: nothing of the checkout or the test venv."""
    kept = {k: v for k, v in os.environ.items() if not k.endswith("_DATABASE_URL") and k != "PYTHONPATH"}
    return {**kept, **(extra or {}), "PATH": f"{python.parent}{os.pathsep}/usr/bin:/bin"}


def test_the_wheel_installs_in_a_fresh_venv_and_migrates_another_monorepo(
    tmp_path: Path, new_db: Callable[[], str]
) -> None:
    sdist, wheel = built(tmp_path / "dist")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "migratekit/scaffold/templates/python/Dockerfile" in names and "migratekit/py.typed" in names
    assert "Provides-Extra: kubernetes" in metadata and not any(n.startswith("tests/") for n in names)
    with tarfile.open(sdist) as archive:
        assert any(n.endswith("/pyproject.toml") for n in archive.getnames())

    python = fresh_venv(tmp_path / "venv")
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-index", "--quiet", str(wheel)]
    installed = subprocess.run(pip, capture_output=True, text=True, timeout=120)
    assert installed.returncode == 0, installed.stdout + installed.stderr

    root = shop(tmp_path)
    urls = {"ACCOUNTS_DATABASE_URL": new_db(), "ORDERS_DATABASE_URL": new_db()}
    env = outside(python, urls)

    def run(*command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=120)

    where = run(str(python), "-c", "import migratekit; print(migratekit.__file__)")
    assert where.stdout.startswith(str(tmp_path / "venv")), where.stdout + where.stderr  # the wheel, not the checkout
    migrated = run(str(python), "-m", "invoke", "migrate-all")
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    assert "accounts" in migrated.stdout and "orders" in migrated.stdout
    with psycopg.connect(urls["ORDERS_DATABASE_URL"]) as conn:
        assert conn.execute("SELECT version FROM schema_migrations").fetchall() == [("001_init",)]
    again = run(str(python), "-m", "invoke", "migrate-all", "--json")
    assert again.returncode == 0, again.stderr
    assert [(s["service"], s["outcome"]) for s in json.loads(again.stdout)["services"]] == [
        ("accounts", "up_to_date"),
        ("orders", "up_to_date"),
    ]
    hook = run(str(python.parent / "migratekit-hook"), "files", "services/orders/migrations/001_init.sql")
    assert hook.returncode == 0, hook.stdout + hook.stderr  # the console scripts pre-commit runs


def test_a_git_install_is_the_install_step_ci_workflow_writes(tmp_path: Path) -> None:
    """pip install "migratekit @ git+URL@COMMIT" works, and ci-workflow, run by that install, writes that line."""
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
    line = f"migratekit @ git+file://localhost{REPO}@{head.stdout.strip()}"
    python = fresh_venv(tmp_path / "venv")
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-index", "--no-build-isolation"]
    installed = subprocess.run([*pip, "--quiet", line], capture_output=True, text=True, timeout=120)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    root = shop(tmp_path)
    wrote = subprocess.run(
        [str(python), "-m", "invoke", "ci-workflow"], cwd=root, env=outside(python), capture_output=True, text=True
    )
    assert wrote.returncode == 0, wrote.stdout + wrote.stderr
    assert f'  install step: pip install "{line}"\n' in wrote.stdout
    assert f'run: pip install "{line}"' in (root / ".github/workflows/migratekit.yml").read_text()
