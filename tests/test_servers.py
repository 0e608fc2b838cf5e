"""No orphaned servers: throwaway clusters stop with their command, and ones whose checkout is gone are found."""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from conftest import Monorepo, filled, write_tree
from migratekit.database.embedded import Embedded
from migratekit.database.servers import running_servers


def servers_of(checkout: Path) -> list[int]:
    return [s.pid for s in running_servers() if s.checkout == checkout.resolve()]


def test_verify_in_a_temporary_checkout_leaves_no_server_behind(example_repo: Monorepo) -> None:
    result = example_repo.invoke("verify", "--service", "authentication", env={"MIGRATEKIT_SCRATCH_URL": ""})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "authentication: idempotent" in result.stdout
    assert servers_of(example_repo.root) == []


def test_a_server_held_by_db_up_keeps_running_after_verify(example_repo: Monorepo) -> None:
    env = {"MIGRATEKIT_SCRATCH_URL": ""}
    try:
        assert example_repo.invoke("db-up", env=env).returncode == 0
        held = servers_of(example_repo.root)
        assert len(held) == 1
        assert example_repo.invoke("verify", "--service", "battles", env=env).returncode == 0
        assert servers_of(example_repo.root) == held
    finally:
        example_repo.invoke("db-down", env=env)
    assert servers_of(example_repo.root) == []


def test_a_server_whose_checkout_is_gone_is_reported_and_stopped(tmp_path: Path) -> None:
    gone = tmp_path / "deleted-checkout"
    gone.mkdir()
    server = Embedded(gone).start()
    pid = next(s.pid for s in running_servers() if s.checkout == gone.resolve())
    shutil.rmtree(gone)
    other = write_tree(
        tmp_path / "other",
        {"services/a/migrations/001_init.sql": "SELECT 1;\n", "tasks.py": "from migratekit.tasks import ns\n"},
    )
    repo = Monorepo(other, {"A_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/a"})  # db-up starts nothing here
    up = repo.invoke("db-up", "--json")
    assert up.returncode == 0, up.stderr
    orphans = json.loads(up.stdout)["orphaned_servers"]
    assert {"pid": pid, "datadir": str(server.datadir), "checkout": str(gone.resolve())} in orphans
    assert "a migratekit server still runs for a checkout that is gone" in repo.invoke("db-up").stdout
    down = repo.invoke("db-down", "--orphans")
    assert down.returncode == 0 and f"stopped pid {pid} ({server.datadir}): its checkout" in down.stdout
    assert pid not in [s.pid for s in running_servers()]
    assert not server.datadir.exists()


def test_db_down_orphans_removes_the_data_of_stopped_clusters_whose_checkout_is_gone(tmp_path: Path) -> None:
    """A stopped cluster under /tmp whose checkout was deleted is tens of MB nothing will start again."""
    from migratekit.database.servers import MARKER, remove_stopped_orphans

    temp = tmp_path / "tmp"
    gone, kept, alive_checkout = (
        temp / "migratekit-0123456789ab-abcdefgh",
        temp / "migratekit-0123456789ab-kept0000",
        tmp_path / "here",
    )
    alive_checkout.mkdir()
    for directory, checkout in ((gone, tmp_path / "deleted"), (kept, alive_checkout)):
        (directory / "data").mkdir(parents=True)
        (directory / MARKER).write_text(str(checkout))
    (temp / "migratekit-notours").mkdir()  # another name: never touched
    assert remove_stopped_orphans(temp) == [gone]
    assert not gone.exists() and kept.is_dir() and (temp / "migratekit-notours").is_dir()


def tag_of(root: Path) -> str:
    """The part of its temporary data directory's name (`migratekit-<tag>-<random>`) that names the checkout."""
    return hashlib.sha256(str((root / ".migratekit").resolve()).encode()).hexdigest()[:12]


def test_db_up_on_a_full_disk_is_exit_2_naming_the_record_it_cannot_write(
    tmp_path: Path, full_disk: Callable[..., Path]
) -> None:
    """The embedded cluster's record is written before initdb: on a full disk, a traceback (exit 1)."""
    root = write_tree(
        full_disk(tmp_path / "repo", "1m"),
        {
            "services/a/migrations/001_init.sql": "SELECT 1;\n",
            "tasks.py": "from migratekit.tasks import ns\n",
            ".migratekit/.gitignore": "*\n",
        },
    )
    filled(root)
    up = Monorepo(root, {}).invoke("db-up", env={"MIGRATEKIT_SCRATCH_URL": "", "A_DATABASE_URL": ""})
    assert up.returncode == 2 and "Traceback" not in up.stderr, up.stderr
    assert "embedded.json: cannot be written (No space left on device)" in up.stderr, up.stderr
    assert not [p for p in root.rglob("*.tmp")] and servers_of(root) == []
    assert not list(Path(tempfile.gettempdir()).glob(f"migratekit-{tag_of(root)}-*"))  # no data directory made for it
