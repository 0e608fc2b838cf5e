"""How another machine installs the migratekit that runs here: the requirement a CI job's `pip install` needs.

migratekit is not on a package index, so "pip install migratekit" fails on a fresh runner. pip writes down
where each distribution came from (PEP 610's direct_url.json): a git URL and commit, a local directory, or an
archive such as a wheel. From that record the same code can be installed elsewhere: the git URL at the exact
commit; a directory or a wheel inside the monorepo by its path from the root (the runner checks it out); a
directory outside it by its own git remote and commit. What cannot be reproduced (a wheel on this laptop, a
checkout with no remote) is said, never guessed: the user then passes the install step themselves.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from migratekit.errors import ConfigError

DISTRIBUTION = "migratekit"
SCP_REMOTE = re.compile(r"(?P<user>[\w.-]+)@(?P<host>[\w.-]+):(?P<path>[^/].*)")  # git@github.com:org/repo.git


@dataclass(frozen=True)
class Installed:
    """Where this migratekit came from, as pip recorded it."""

    version: str
    record: Mapping[str, Any] | None  # direct_url.json, or None when pip installed it from an index


def installed() -> Installed:
    """The running migratekit's install record (read, never changed)."""
    try:
        distribution = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        raise ConfigError(
            "migratekit runs from a source tree that pip did not install, so the CI install step cannot be "
            "derived: pass it, e.g. --install 'pip install \"migratekit @ git+https://host/migratekit.git@REV\"'"
        ) from None
    text = distribution.read_text("direct_url.json")
    return Installed(distribution.version, json.loads(text) if text else None)


def requirement(found: Installed, root: Path) -> str:
    """The `pip install` line that installs the same migratekit on a runner that checked out `root`'s repository.

    Exit 2 (ConfigError) naming the record and what to pass instead when nothing reproducible is recorded.
    """
    record = found.record
    if record is None:  # from an index: the same version from the same kind of index
        return f'pip install "migratekit=={found.version}"'
    url = str(record.get("url", ""))
    extra = str(record.get("subdirectory") or "")
    vcs = record.get("vcs_info")
    if isinstance(vcs, Mapping) and vcs.get("vcs") == "git":
        return _git_line(url, str(vcs.get("commit_id") or vcs.get("requested_revision") or ""), extra)
    parsed = urlparse(url)
    if parsed.scheme in ("http", "https"):
        return f'pip install "migratekit @ {url}"'
    if parsed.scheme != "file":
        raise _unknown(f"an install from {url!r}")
    local = Path(unquote(parsed.path))
    inside = _inside(local, root)
    if inside is not None:
        return f"pip install ./{inside}" if inside != "." else "pip install ."
    if "dir_info" in record:  # a checkout elsewhere on this machine: its remote, at the commit it is on
        remote, commit = _git_origin(local)
        if remote and commit:
            return _git_line(remote, commit, extra)
        raise _unknown(f"the directory {local}, which has no git remote to install from")
    raise _unknown(f"{local}, outside the repository; commit the wheel into the repository and install it from there")


def _git_line(url: str, commit: str, subdirectory: str) -> str:
    """pip's form of a git source; a remote in scp form (git@host:org/repo.git) becomes ssh://, which pip reads."""
    scp = SCP_REMOTE.fullmatch(url)
    if scp:
        url = f"ssh://{scp['user']}@{scp['host']}/{scp['path']}"
    elif url.startswith("file:///"):  # pip's URL check wants a host: file://localhost/… is the same place
        url = "file://localhost/" + url.removeprefix("file:///")
    source = url if url.startswith("git+") else f"git+{url}"
    at = f"@{commit}" if commit else ""
    sub = f"#subdirectory={subdirectory}" if subdirectory else ""
    return f'pip install "migratekit @ {source}{at}{sub}"'


def _inside(path: Path, root: Path) -> str | None:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return None


def _git_origin(directory: Path) -> tuple[str | None, str | None]:
    """The fetch URL of the checkout's first remote (origin first) and its HEAD commit; (None, None) when absent."""

    def git(*args: str) -> str | None:
        try:
            command = ["git", "-C", str(directory), *args]
            done = subprocess.run(command, capture_output=True, encoding="utf-8", errors="replace", timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() or None if done.returncode == 0 else None

    remotes = (git("remote") or "").split()
    if not remotes:
        return None, None
    name = "origin" if "origin" in remotes else remotes[0]
    return git("remote", "get-url", name), git("rev-parse", "HEAD")


def _unknown(what: str) -> ConfigError:
    return ConfigError(
        f"cannot tell how a CI runner should install migratekit: pip installed this one from {what}; pass the "
        "step with --install, e.g. --install 'pip install \"migratekit @ git+https://host/migratekit.git@REV\"' "
        "(docs/install.md lists the ways)"
    )
