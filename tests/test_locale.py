"""Every task under a locale that is ASCII alone (LC_ALL=C without Python's UTF-8 mode, as many CI images and
cron jobs have it), on a monorepo whose names, descriptions and server messages are not ASCII: a report for a
program (--json, --format mermaid) is UTF-8 whatever the locale, text for a person escapes what the terminal's
encoding cannot show, and nothing ends in a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import write_tree

ASCII_ONLY = {"PATH": "/usr/bin:/bin", "LC_ALL": "C", "PYTHONCOERCECLOCALE": "0", "PYTHONUTF8": "0"}
INIT = (
    "-- Migration: 001_init\n-- Description: la table des cafés — première\n"
    'CREATE TABLE "café" (id bigint); -- ünïcode\n'
)
FAILS = '-- Migration: 002_doppelt\nCREATE TABLE "größe" (id bigint);\nCREATE TABLE "größe" (id bigint);\n'


def task(root: Path, url: str, *args: str, variable: str = "SHOP_DATABASE_URL") -> subprocess.CompletedProcess[bytes]:
    """`invoke ARGS` in a process of its own under the ASCII-only locale, `url` in `variable`, its output as the
    bytes it wrote."""
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=root,
        capture_output=True,
        env={**ASCII_ONLY, variable: url},
        timeout=120,
    )


@pytest.fixture
def shop(tmp_path: Path, new_db: Callable[[], str]) -> tuple[Path, str]:
    root = write_tree(
        tmp_path / "repo",
        {
            "tasks.py": "from migratekit.tasks import ns\n",
            "services/shop/migrations/001_init.sql": INIT,
            "services/shop/migrations/002_doppelt.sql": FAILS,
        },
    )
    return root, new_db()


def test_the_python_here_is_ascii_alone_under_that_locale(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import sys; print(sys.stdout.encoding)"], capture_output=True, env=ASCII_ONLY
    )
    assert done.stdout.strip().lower() in (b"ascii", b"ansi_x3.4-1968"), done.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["migrate-all", "--json"],
        ["migrate", "shop", "--json"],
        ["status", "--json"],
        ["drift", "--json"],
        ["services", "--json"],
        ["rules", "--json"],
        ["graph", "--format", "json"],
    ],
    ids=lambda args: " ".join(args),
)
def test_a_json_report_is_utf_8_whatever_the_locale(shop: tuple[Path, str], args: list[str]) -> None:
    """`rules --json` stopped at the first ellipsis of a rule's text, `drift` at the runner template's first dash
    (read in the locale's encoding), and `migrate-all --json` at a server message naming "größe"."""
    root, url = shop
    done = task(root, url, *args)
    assert done.returncode in (0, 1) and b"Traceback" not in done.stderr, done.stderr.decode(errors="replace")
    report = json.loads(done.stdout.decode("utf-8"))
    assert report["schema_version"] == 1
    if args[0].startswith("migrate"):
        (service,) = report["services"]
        assert service["outcome"] == "failed" and "größe" in service["failure"]["message"], service


@pytest.mark.parametrize(
    "args",
    [["migrate-all"], ["status"], ["drift"], ["services"], ["rules"], ["graph"], ["audit"], ["db-url", "shop"]],
    ids=lambda args: " ".join(args),
)
def test_text_for_a_person_escapes_what_the_locale_cannot_show(shop: tuple[Path, str], args: list[str]) -> None:
    root, url = shop
    task(root, url, "migrate-all")  # applies 001_init, fails at 002
    done = task(root, url, *args)
    assert done.returncode in (0, 1) and b"Traceback" not in done.stderr, done.stderr.decode(errors="replace")
    assert done.stdout.isascii() and done.stdout.strip(), done.stdout
    if args == ["audit"]:
        assert b"CREATE TABLE caf\\xe9 without IF NOT EXISTS" in done.stdout  # the name escaped, not dropped


def test_new_migration_and_init_write_utf_8_whatever_the_locale(shop: tuple[Path, str]) -> None:
    root, url = shop
    done = task(root, url, "new-migration", "shop", "add straße")
    assert done.returncode == 0 and b"Traceback" not in done.stderr, done.stderr.decode(errors="replace")
    (written,) = (root / "services/shop/migrations").glob("003_*.sql")
    assert "-- Description: add straße" in written.read_text(encoding="utf-8")
    done = task(root, url, "init")
    assert done.returncode == 0 and b"Traceback" not in done.stderr, done.stderr.decode(errors="replace")
    assert "shop:" in (root / "workspace.yaml").read_text(encoding="utf-8")


@pytest.mark.parametrize("json_report", [True, False], ids=["json", "text"])
def test_the_images_runner_reports_a_message_in_any_language_whatever_the_locale(
    shop: tuple[Path, str], json_report: bool
) -> None:
    """`python -m migratekit migrate` in an image whose locale is ASCII alone: the failed migration's report."""
    root, url = shop
    done = subprocess.run(
        [sys.executable, "-m", "migratekit", "migrate", "--dir", "services/shop/migrations", "--url", url]
        + (["--json"] if json_report else []),
        cwd=root,
        capture_output=True,
        env=ASCII_ONLY,
        timeout=120,
    )
    assert done.returncode == 1 and b"Traceback" not in done.stderr, done.stderr.decode(errors="replace")
    if json_report:
        assert "größe" in json.loads(done.stdout.decode("utf-8"))["failure"]["message"]
    else:
        assert b"applied 001_init" in done.stdout and b"gr\\xf6\\xdfe" in done.stderr, done.stderr


def test_a_service_directory_named_with_accents_is_the_same_service_whatever_the_locale(
    tmp_path: Path, new_db: Callable[[], str]
) -> None:
    """`services/Café.API` was `cafe-api` under a UTF-8 locale but `caf-api` under an ASCII one (its name read as
    undecodable bytes, dropped): another service, reading $CAF_API_DATABASE_URL, so migrate-all, its
    $CAFE_API_DATABASE_URL unread, migrated the embedded PostgreSQL instead."""
    root = write_tree(
        tmp_path / "repo",
        {"tasks.py": "from migratekit.tasks import ns\n", "services/Café.API/migrations/001_init.sql": INIT},
    )
    done = task(root, new_db(), "services", "--json", variable="CAFE_API_DATABASE_URL")
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    (service,) = json.loads(done.stdout.decode("utf-8"))["services"]
    assert service["name"] == "cafe-api", service


@pytest.mark.parametrize("services_dir", ["[services/Café.API]", "[services/Café.*]"])
def test_a_services_dir_naming_accents_is_read_whatever_the_locale(
    tmp_path: Path, new_db: Callable[[], str], services_dir: str
) -> None:
    """`services_dir: services/Café.API` in workspace.yaml was a traceback under an ASCII locale (the path's é
    cannot be encoded there): it names the directory whose bytes are its UTF-8."""
    root = write_tree(
        tmp_path / "repo",
        {
            "tasks.py": "from migratekit.tasks import ns\n",
            "workspace.yaml": f"version: 1  # café\nservices_dir: {services_dir}\n",
            "services/Café.API/migrations/001_init.sql": INIT,
        },
    )
    done = task(root, new_db(), "services", "--json", variable="CAFE_API_DATABASE_URL")
    assert done.returncode == 0 and b"Traceback" not in done.stderr, done.stderr.decode(errors="replace")
    assert [s["name"] for s in json.loads(done.stdout.decode("utf-8"))["services"]] == ["cafe-api"]
