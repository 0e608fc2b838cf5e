"""Every embedded PostgreSQL that migratekit started on this machine, and which of them lost their checkout.

A cluster whose data lives outside its checkout (a root checkout the server's user cannot enter,
so under the temporary directory) keeps running after the checkout is deleted, with nothing left
that knows of it. Each cluster's directory holds a marker naming its checkout; the running
postmasters are read from /proc, so servers are found whoever started them.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from migratekit.files import staged

MARKER = "migratekit-checkout"  # beside the data directory: the checkout's path
# migratekit-<hash of the checkout's path>-<random> (tempfile.mkdtemp's); without the random part: older clusters
TEMP_CLUSTER = re.compile(r"^migratekit-[0-9a-f]{12}(-[a-z0-9_]{8})?$")
PROC = Path("/proc")


def mark(datadir: Path, checkout: Path) -> None:
    """Record which checkout a cluster belongs to (written at every start: cheap, and repairs old clusters).

    As root the directory belongs to the server's user: the marker is written to a new file (never through a
    link or a hard link left there) and renamed into place.
    """
    with contextlib.suppress(OSError), staged(datadir.parent / MARKER, new_mode=0o644) as handle:
        handle.write(str(checkout.resolve()) + "\n")


@dataclass(frozen=True)
class RunningServer:
    pid: int
    datadir: Path
    checkout: Path | None  # None: started by a migratekit too old to leave a marker

    @property
    def orphaned(self) -> bool:
        return self.checkout is None or not self.checkout.is_dir() or not self.datadir.is_dir()


def checkout_of(datadir: Path) -> Path | None:
    marker = datadir.parent / MARKER
    with contextlib.suppress(OSError):
        return Path(marker.read_text(encoding="utf-8").strip())
    parts = datadir.parts
    return Path(*parts[: parts.index(".migratekit")]) if ".migratekit" in parts else None


def _is_ours(datadir: Path) -> bool:
    return ".migratekit" in datadir.parts or bool(TEMP_CLUSTER.match(datadir.parent.name))


def running_servers() -> list[RunningServer]:
    """The postmasters of migratekit's clusters (data under .migratekit/ or /tmp/migratekit-<hash>-<random>/)."""
    found = []
    for proc in PROC.iterdir():
        datadir = _postmaster_datadir(int(proc.name)) if proc.name.isdigit() else None
        if datadir is not None and _is_ours(datadir):
            found.append(RunningServer(int(proc.name), datadir, checkout_of(datadir)))
    return sorted(found, key=lambda s: s.pid)


def _postmaster_datadir(pid: int) -> Path | None:
    """The data directory a postmaster was started on (its `-D`), None for any other process, or one gone."""
    try:
        argv = (PROC / str(pid) / "cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return None  # gone, or not ours to read
    if Path(argv[0]).name != "postgres" or "-D" not in argv[:-1]:
        return None  # children rewrite their argv ("postgres: checkpointer"), only the postmaster matches
    datadir = Path(argv[argv.index("-D") + 1])
    if datadir.is_absolute():
        return datadir
    try:
        return Path(os.readlink(PROC / str(pid) / "cwd")) / datadir
    except OSError:
        return None


def postmaster_of(datadir: Path) -> int | None:
    """The PID of the postmaster that serves `datadir` now, else None.

    Its postmaster.pid names a PID, but after a crash or a reboot that PID can be any process (of the
    cluster's user, even another PostgreSQL's): it counts only if /proc shows a postgres started on this
    very directory. Without /proc (not Linux), a live PID is all there is to go on.
    """
    try:
        pid = int((datadir / "postmaster.pid").read_text(encoding="utf-8").split("\n", 1)[0])
    except (OSError, ValueError):
        return None
    if pid <= 0 or not _alive(pid):
        return None
    if not PROC.joinpath("self").is_dir():
        return pid
    started_on = _postmaster_datadir(pid)
    try:
        return pid if started_on is not None and os.path.samefile(started_on, datadir) else None
    except OSError:
        return None


def _alive(pid: int) -> bool:
    """Whether process `pid` exists and has not exited (a zombie has, whatever /proc still shows)."""
    try:
        stat = (PROC / str(pid) / "stat").read_text(encoding="utf-8")
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True  # another user's
        return True
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def stop_orphans() -> list[RunningServer]:
    """Stop every running cluster whose checkout is gone, and remove its data when it lay outside the checkout."""
    stopped = []
    for server in running_servers():
        if server.orphaned:
            stop_postmaster(server.pid)
            if TEMP_CLUSTER.match(server.datadir.parent.name) and server.datadir.parent.is_relative_to(
                tempfile.gettempdir()
            ):
                shutil.rmtree(server.datadir.parent, ignore_errors=True)
            stopped.append(server)
    return stopped


def remove_stopped_orphans(temp: Path | None = None) -> list[Path]:
    """Remove the data of every stopped cluster under the temporary directory whose checkout is gone.

    A checkout deleted while its cluster was stopped (or a test run's) leaves tens of megabytes behind that
    nothing would ever start again. Only directories of migratekit's own naming, whose marker names a checkout
    that no longer exists, with no postmaster running on them, and owned by this user (or any, for root).
    """
    running = {s.datadir.parent for s in running_servers()}
    removed = []
    base = temp or Path(tempfile.gettempdir())
    for directory in sorted(base.glob("migratekit-*")):
        if not TEMP_CLUSTER.match(directory.name) or directory.is_symlink() or not directory.is_dir():
            continue
        checkout = checkout_of(directory / "data")
        owner_ok = os.geteuid() == 0 or directory.stat().st_uid == os.geteuid()
        if directory in running or checkout is None or checkout.is_dir() or not owner_ok:
            continue
        shutil.rmtree(directory, ignore_errors=True)
        removed.append(directory)
    return removed


def stop_postmaster(pid: int, wait: float = 15.0) -> bool:
    """Fast shutdown (SIGINT: roll back and disconnect), then immediate (SIGQUIT) if it lingers; False if it
    outlives both. `pid` must be a postmaster found just now (running_servers, postmaster_of)."""
    for sig, patience in ((signal.SIGINT, wait), (signal.SIGQUIT, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + patience
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not _alive(pid):
            return True
    return False
