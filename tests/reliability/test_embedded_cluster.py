"""The embedded cluster after a crash, a reboot or a hostile neighbour: it signals only its own postmaster, uses
only a server that has its data directory, and never follows a path that another user planted.

Every case runs real clusters (this checkout's and, where one is needed, another one on the port it recorded)
and leaves none behind, nor any directory under the temporary directory.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from conftest import Monorepo, write_tree
from migratekit.database.embedded import Embedded
from migratekit.database.servers import running_servers

SERVICE = "mkembedded"
ROOT_ONLY = pytest.mark.skipif(
    os.geteuid() != 0,
    reason="only as root does the cluster run as another user (initdb refuses root), with its data under the "
    "temporary directory when that user cannot enter the checkout",
)


def checkout(root: Path) -> Monorepo:
    write_tree(
        root,
        {
            f"services/{SERVICE}/migrations/001_init.sql": "CREATE TABLE IF NOT EXISTS e (id int);\n",
            "tasks.py": "from migratekit.tasks import ns\n\n__all__ = ['ns']\n",
        },
    )
    return Monorepo(root, {})


def state_of(root: Path) -> dict[str, object]:
    return dict(json.loads((root / ".migratekit" / "embedded.json").read_text()))


def datadir_of(root: Path) -> Path:
    return Path(str(state_of(root)["datadir"]))


def record_port(root: Path, port: int) -> None:
    state_file = root / ".migratekit" / "embedded.json"
    state_file.write_text(json.dumps({**state_of(root), "port": port}, indent=2) + "\n")


def databases(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        return {row[0] for row in conn.execute("SELECT datname FROM pg_database")}


def answering_directory(url: str) -> str:
    with psycopg.connect(url) as conn:
        row = conn.execute("SHOW data_directory").fetchone()
    assert row is not None
    return str(row[0])


@contextlib.contextmanager
def process_of(uid: int) -> Iterator[subprocess.Popen[bytes]]:
    """An unrelated live process of the cluster's user: what a reboot can leave behind a postmaster.pid's PID."""
    victim = subprocess.Popen(["sleep", "600"], user=uid if os.geteuid() == 0 else None, cwd="/")
    try:
        yield victim
    finally:
        victim.kill()
        victim.wait()


def stale_pid_file(datadir: Path, pid: int) -> None:
    pid_file = datadir / "postmaster.pid"
    pid_file.write_text(f"{pid}\n{datadir}\n")
    owner = datadir.stat()
    os.chown(pid_file, owner.st_uid, owner.st_gid)


def still_alive(process: subprocess.Popen[bytes]) -> bool:
    time.sleep(0.3)  # a signal already sent has landed by now
    return process.poll() is None


def stop_pid(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGINT)
    deadline = time.monotonic() + 30
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.fixture
def checkouts(tmp_path: Path) -> Iterator[list[Path]]:
    """Checkouts whose clusters are stopped, and whose data outside tmp_path is removed, when the test ends."""
    roots: list[Path] = []
    yield roots
    stop_clusters_of(roots)


def stop_clusters_of(roots: list[Path]) -> None:
    """Stop each checkout's postmaster (known by its marker or its recorded data directory); remove its /tmp data."""
    recorded = {}
    for root in roots:
        with contextlib.suppress(OSError, ValueError, KeyError):
            recorded[datadir_of(root)] = root
    for server in running_servers():
        if server.datadir in recorded or any(server.checkout == root.resolve() for root in roots):
            stop_pid(server.pid)
    temporary = Path(tempfile.gettempdir())
    for datadir in recorded:
        parent = datadir.parent
        if parent.parent == temporary and parent.name.startswith("migratekit-") and not parent.is_symlink():
            shutil.rmtree(parent, ignore_errors=True)


def started_and_stopped(root: Path, checkouts: list[Path]) -> Monorepo:
    repo = checkout(root)
    checkouts.append(root)
    up = repo.invoke("db-up")
    assert up.returncode == 0, up.stdout + up.stderr
    assert repo.invoke("db-down").stdout.strip() == "embedded PostgreSQL stopped"
    return repo


def test_db_down_never_signals_the_process_a_stale_pid_file_names(tmp_path: Path, checkouts: list[Path]) -> None:
    repo = started_and_stopped(tmp_path / "repo", checkouts)
    datadir = datadir_of(repo.root)
    with process_of(datadir.stat().st_uid) as victim:
        stale_pid_file(datadir, victim.pid)
        down = repo.invoke("db-down")
        assert (down.returncode, down.stdout.strip(), down.stderr) == (0, "embedded PostgreSQL was not running", "")
        assert still_alive(victim)


def test_a_stale_pid_file_naming_a_live_process_does_not_stop_migrate_all(
    tmp_path: Path, checkouts: list[Path]
) -> None:
    repo = started_and_stopped(tmp_path / "repo", checkouts)
    datadir = datadir_of(repo.root)
    with process_of(datadir.stat().st_uid) as victim:
        stale_pid_file(datadir, victim.pid)
        run = repo.invoke("migrate-all")
        assert run.returncode == 0, run.stdout + run.stderr
        assert "Traceback" not in run.stderr
        assert still_alive(victim)
    server = Embedded(repo.root).running()
    assert server is not None and server.datadir == datadir
    assert answering_directory(server.url()) == str(datadir)
    with psycopg.connect(server.url(SERVICE)) as conn:
        assert conn.execute("SELECT version FROM schema_migrations").fetchall() == [("001_init",)]


def test_another_postgres_on_the_recorded_port_is_left_alone(tmp_path: Path, checkouts: list[Path]) -> None:
    """After a reboot: postmaster.pid names a live process, and another server took the port (case I5)."""
    repo = started_and_stopped(tmp_path / "repo", checkouts)
    datadir, port = datadir_of(repo.root), int(str(state_of(repo.root)["port"]))
    other_root = tmp_path / "other"
    checkouts.append(other_root)
    other = Embedded(other_root)
    other.start()
    other.stop()
    record_port(other_root, port)
    other_server = other.start()
    assert other_server.port == port
    before = databases(other_server.url())
    with process_of(datadir.stat().st_uid) as victim:
        stale_pid_file(datadir, victim.pid)
        run = repo.invoke("migrate-all")
        assert run.returncode == 0, run.stdout + run.stderr
        assert still_alive(victim)
    assert databases(other_server.url()) == before  # the other server got no database, no table
    assert answering_directory(other_server.url()) == str(other_server.datadir)
    ours = Embedded(repo.root).running()
    assert ours is not None and ours.port != port  # this checkout's own cluster, on a free port
    assert answering_directory(ours.url()) == str(datadir)
    with psycopg.connect(ours.url(SERVICE)) as conn:
        assert conn.execute("SELECT version FROM schema_migrations").fetchall() == [("001_init",)]


def test_a_recorded_port_answered_by_another_server_is_refused(tmp_path: Path, checkouts: list[Path]) -> None:
    """The cluster runs, but embedded.json's port is another PostgreSQL's: nothing is done there (exit 2)."""
    repo = checkout(tmp_path / "repo")
    checkouts.append(repo.root)
    ours = Embedded(repo.root).start()
    other_root = tmp_path / "other"
    checkouts.append(other_root)
    other = Embedded(other_root).start()
    before = databases(other.url())
    record_port(repo.root, other.port)
    run = repo.invoke("migrate-all")
    assert run.returncode == 2, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    message = " ".join(run.stderr.split())
    assert message.startswith("migratekit: ")
    assert f"127.0.0.1:{other.port}" in message
    assert f"another PostgreSQL (data directory {other.datadir})" in message
    assert f"not this checkout's embedded cluster ({ours.datadir})" in message
    assert "invoke db-down" in message
    assert databases(other.url()) == before
    down = repo.invoke("db-down")  # stops this checkout's postmaster, whatever answers on the port
    assert (down.returncode, down.stdout.strip()) == (0, "embedded PostgreSQL stopped")
    assert Embedded(repo.root).running() is None
    assert answering_directory(other.url()) == str(other.datadir)  # the other one still runs


def postgres_user_cannot_enter(path: Path) -> bool:
    user = pwd.getpwnam("postgres")
    probe = subprocess.run(["test", "-x", str(path)], user=user.pw_uid, group=user.pw_gid, extra_groups=[], cwd="/")
    return probe.returncode != 0


@contextlib.contextmanager
def victim_directory() -> Iterator[Path]:
    """A directory of root's that the server's user can enter: what a planted link points at."""
    path = Path(tempfile.mkdtemp(prefix="mkrepro-victim-"))
    try:
        path.chmod(0o755)
        (path / "file").write_text("root's file\n")
        yield path
    finally:
        shutil.rmtree(path)


@contextlib.contextmanager
def planted_link(link: Path, target: Path) -> Iterator[None]:
    """Another local user (nobody) plants `link` -> `target`, as anyone may in the temporary directory."""
    subprocess.run(["ln", "-s", str(target), str(link)], user="nobody", check=True, cwd="/")
    try:
        yield
    finally:
        link.unlink()


def observed(path: Path) -> tuple[int, int, int, list[str]]:
    info = path.lstat()
    return info.st_uid, info.st_gid, info.st_mode, sorted(os.listdir(path))


@ROOT_ONLY
def test_as_root_a_link_planted_at_the_predictable_temporary_name_is_not_followed(
    tmp_path: Path, checkouts: list[Path]
) -> None:
    """Case I6: /tmp/migratekit-<hash of the checkout's path> planted as a link to a root-owned directory."""
    repo = checkout(tmp_path / "repo")
    checkouts.append(repo.root)
    assert postgres_user_cannot_enter(repo.root)  # tmp_path is private to root: the data goes to /tmp
    tag = hashlib.sha256(str((repo.root / ".migratekit").resolve()).encode()).hexdigest()[:12]
    planted = Path(tempfile.gettempdir()) / f"migratekit-{tag}"
    with victim_directory() as victim, planted_link(planted, victim):
        before = observed(victim)
        up = repo.invoke("db-up")
        assert up.returncode == 0, up.stdout + up.stderr
        assert observed(victim) == before  # not chowned to postgres, nothing written into it
        assert planted.is_symlink() and planted.readlink() == victim
        datadir = datadir_of(repo.root)
        assert not datadir.resolve().is_relative_to(victim)
        assert datadir.parent.parent == Path(tempfile.gettempdir())
        for directory in (datadir.parent, datadir):
            info = directory.lstat()
            assert not directory.is_symlink()
            assert (pwd.getpwuid(info.st_uid).pw_name, info.st_mode & 0o777) == ("postgres", 0o700)


@ROOT_ONLY
def test_as_root_a_recorded_temporary_directory_replaced_by_a_link_is_refused(
    tmp_path: Path, checkouts: list[Path]
) -> None:
    """After a reboot emptied /tmp, another user planted the name embedded.json records (`ls /tmp` shows it)."""
    repo = started_and_stopped(tmp_path / "repo", checkouts)
    recorded = datadir_of(repo.root).parent
    assert recorded.parent == Path(tempfile.gettempdir())
    shutil.rmtree(recorded)
    with victim_directory() as victim, planted_link(recorded, victim):
        before = observed(victim)
        up = repo.invoke("db-up")
        assert up.returncode == 2, up.stdout + up.stderr
        message = " ".join(up.stderr.split())
        assert f"{recorded} is a symbolic link" in message and "not a directory this cluster made" in message
        assert "embedded.json" in message
        assert observed(victim) == before
        assert [s for s in running_servers() if s.checkout == repo.root.resolve()] == []


@ROOT_ONLY
def test_as_root_a_recorded_temporary_directory_that_is_gone_is_not_made_again(
    tmp_path: Path, checkouts: list[Path]
) -> None:
    """A reboot emptied /tmp: the cluster is made anew under a new name, not under the one anybody could read."""
    repo = started_and_stopped(tmp_path / "repo", checkouts)
    recorded = datadir_of(repo.root).parent
    shutil.rmtree(recorded)
    up = repo.invoke("db-up")
    assert up.returncode == 0, up.stdout + up.stderr
    made = datadir_of(repo.root).parent
    assert made != recorded and made.name.startswith(recorded.name[: len("migratekit-") + 12])
    assert not os.path.lexists(recorded)


def test_the_marker_is_written_beside_a_link_left_in_its_place_not_through_it(
    tmp_path: Path, checkouts: list[Path]
) -> None:
    """As root the marker goes into a directory of the server's user: a link left at its name is replaced."""
    repo = started_and_stopped(tmp_path / "repo", checkouts)
    marker = datadir_of(repo.root).parent / "migratekit-checkout"
    target = tmp_path / "roots-own-file"
    target.write_text("root's own text\n")
    marker.unlink()
    marker.symlink_to(target)
    up = repo.invoke("db-up")
    assert up.returncode == 0, up.stdout + up.stderr
    assert target.read_text() == "root's own text\n"
    assert not marker.is_symlink() and marker.read_text() == f"{repo.root.resolve()}\n"


@ROOT_ONLY
def test_as_root_a_link_in_the_checkouts_state_directory_is_not_chowned_through() -> None:
    """A checkout the server's user can enter keeps its data in .migratekit/pg: a link there is refused."""
    shared = Path(tempfile.mkdtemp(prefix="mkrepro-shared-"))  # tmp_path's parents are private to root
    try:
        shared.chmod(0o755)
        repo = checkout(shared / "repo")
        assert not postgres_user_cannot_enter(repo.root)
        with victim_directory() as victim:
            before = observed(victim)
            (repo.root / ".migratekit").mkdir()
            (repo.root / ".migratekit" / "pg").symlink_to(victim)
            up = repo.invoke("db-up")
            assert up.returncode == 2, up.stdout + up.stderr
            assert f"{repo.root / '.migratekit' / 'pg'} is a symbolic link" in " ".join(up.stderr.split())
            assert observed(victim) == before
    finally:
        stop_clusters_of([shared / "repo"])
        shutil.rmtree(shared)


@contextlib.contextmanager
def unwritable(path: Path) -> Iterator[None]:
    """`path` (a directory) made unwritable: by its mode, or for root (whom modes do not stop) by chattr +i."""
    if os.geteuid() != 0:
        path.chmod(0o555)
        try:
            yield
        finally:
            path.chmod(0o755)
        return
    made = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"root ignores file modes, and chattr +i fails here: {made.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def test_a_checkout_nobody_may_write_in_gets_a_message_not_a_traceback(tmp_path: Path) -> None:
    """Case I10 (R15, the embedded database's part): no URL set, and the checkout cannot take .migratekit/."""
    repo = checkout(tmp_path / "repo")
    state = repo.root / ".migratekit"
    with unwritable(repo.root):
        for task in (("db-up",), ("db-url", SERVICE), ("migrate-all",)):
            result = repo.invoke(*task)
            assert result.returncode == 2, result.stdout + result.stderr
            message = " ".join(result.stderr.split())
            assert "Traceback" not in message
            assert message.startswith(f"migratekit: cannot write {state} (")
            assert "set the services' database URL variables" in message
        down = repo.invoke("db-down")
        assert (down.returncode, down.stdout.strip()) == (0, "embedded PostgreSQL was not running")
    assert not os.path.lexists(state)
