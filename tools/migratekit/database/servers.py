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

MARKER = "migratekit-checkout"  # beside the data directory: the checkout's path
TEMP_CLUSTER = re.compile(r"^migratekit-[0-9a-f]{12}$")


def mark(datadir: Path, checkout: Path) -> None:
    """Record which checkout a cluster belongs to (written at every start: cheap, and repairs old clusters)."""
    with contextlib.suppress(OSError):
        (datadir.parent / MARKER).write_text(str(checkout.resolve()) + "\n")


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
        return Path(marker.read_text().strip())
    parts = datadir.parts
    return Path(*parts[: parts.index(".migratekit")]) if ".migratekit" in parts else None


def _is_ours(datadir: Path) -> bool:
    return ".migratekit" in datadir.parts or bool(TEMP_CLUSTER.match(datadir.parent.name))


def running_servers() -> list[RunningServer]:
    """The postmasters of migratekit's clusters (a data directory under .migratekit/ or migratekit-<tag>/)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue  # gone, or not ours to read
        if Path(argv[0]).name != "postgres" or "-D" not in argv[:-1]:
            continue  # children rewrite their argv ("postgres: checkpointer"), only the postmaster matches
        datadir = Path(argv[argv.index("-D") + 1])
        if _is_ours(datadir):
            found.append(RunningServer(int(proc.name), datadir, checkout_of(datadir)))
    return sorted(found, key=lambda s: s.pid)


def stop_orphans() -> list[RunningServer]:
    """Stop every running cluster whose checkout is gone, and remove its data when it lay outside the checkout."""
    stopped = []
    for server in running_servers():
        if server.orphaned:
            _stop(server.pid)
            if TEMP_CLUSTER.match(server.datadir.parent.name) and server.datadir.parent.is_relative_to(
                tempfile.gettempdir()
            ):
                shutil.rmtree(server.datadir.parent, ignore_errors=True)
            stopped.append(server)
    return stopped


def _stop(pid: int, wait: float = 15.0) -> None:
    """Fast shutdown (SIGINT: roll back and disconnect), then immediate (SIGQUIT) if it lingers."""
    for sig, patience in ((signal.SIGINT, wait), (signal.SIGQUIT, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + patience
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not Path(f"/proc/{pid}").exists():
            return
