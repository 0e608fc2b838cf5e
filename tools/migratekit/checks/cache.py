"""A content-addressed cache of each service's lint findings, under `.migratekit/cache/lint/`, and of what the
wiring audit read in each source file, under `.migratekit/cache/sources/`.

Parsing SQL is most of an audit's time, and a second audit of unchanged files should not pay it again. The key
covers everything the lint reads: every file's name and checksum, the other names in the migrations directory
(README, strays), drizzle's journal, the service's settings, and the code of the lint itself (migratekit's and
pglast's versions and the rule modules' source, this module's format). A corrupt or foreign entry is ignored and
rewritten; anything at an entry's path that is not a regular file (a FIFO, a directory) is a miss, never a wait,
and a FIFO is replaced by the entry written next. Entries are written to a temporary file and renamed, so two
audits at once never read half an entry. A finding is stored as its code, path, line and message: its service is
the entry's, its severity and hint its rule's. A service's lint is written under both its keys at once, each entry
naming the content key, so that an audit knows each service's two live entries without reading its files (the stat
key's entry names the other), and removes the rest (keep_lint_of).

A source file's reading (its calls and where its comments are: tree-sitter's parse and a walk of its tree, or
Python's) is kept by a digest of the file's path and text, under the version of the readers: the wiring rules
themselves run on every audit, on what is read from the cache or parsed anew.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import re
import sys
import time
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

from migratekit.checks.rule import Finding, Rule, all_rules
from migratekit.checks.sql.context import ServiceObjects
from migratekit.files import STAGING, read_regular, staged
from migratekit.model.migration import DRIZZLE_JOURNAL, Migration
from migratekit.model.workspace import STATE_DIR, Service, state_dir
from migratekit.version import VERSION


@cache
def _code_version() -> str:
    """migratekit's version, the lint's source, and pglast's parser as installed (found, not imported: a warm
    audit never needs pglast itself)."""
    package = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256(VERSION.encode())
    checks, model = package / "checks", package / "model"
    lint = [checks / "run.py", checks / "rule.py", checks / "cache.py", *checks.glob("sql/*.py")]
    lint += checks.glob("rules/mk[123]*.py")
    lint += [checks / "sql" / "builtins.json"]  # which references are PostgreSQL's, not another service's
    for source in sorted([*lint, model / "migration.py", model / "formats.py"]):
        digest.update(source.read_bytes())
    _installed(digest, "pglast", "parser*")
    return digest.hexdigest()[:16]


def _installed(digest: Any, package: str, pattern: str) -> None:
    """An installed package's files matching `pattern`, by name, size and time (found, not imported)."""
    spec = importlib.util.find_spec(package)
    if spec is not None and spec.origin is not None:
        for binary in sorted(Path(spec.origin).parent.glob(pattern)):
            info = binary.stat()
            digest.update(f"{package}\0{binary.name}\0{info.st_size}\0{info.st_mtime_ns}".encode())


def _read_as(service: Service, relative_dir: str) -> bytes:
    """What the findings depend on besides the files: where they are shown from and how they are read."""
    settings = service.settings
    read_as = (relative_dir, service.name, settings.tracking_table, settings.format, settings.gaps)
    return json.dumps((*read_as, settings.type_advice)).encode()


# A name from the disk is encoded back to its bytes: one that is not UTF-8 (held as surrogates) stopped the audit
ON_DISK = "surrogateescape"


def key(service: Service, migrations: tuple[Migration, ...], relative_dir: str) -> str:
    digest = hashlib.sha256(_code_version().encode())
    digest.update(_read_as(service, relative_dir))
    for migration in migrations:
        digest.update(f"{migration.filename}\0{migration.checksum}\0".encode(errors=ON_DISK))
        if migration.down_data is not None:
            digest.update(hashlib.sha256(migration.down_data).digest())
    directory = service.migrations_dir
    # every name in the directory: a .down.sql without its .up.sql is no migration, yet MK115 names it
    names = sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []
    digest.update("\0".join(names).encode(errors=ON_DISK))
    journal = directory / DRIZZLE_JOURNAL  # drizzle's: what it lists and when (MK113 reads it)
    if journal.is_file():
        digest.update(hashlib.sha256(journal.read_bytes()).digest())
    return digest.hexdigest()


def stat_key(service: Service, relative_dir: str) -> str:
    """A key from each file's name, size, modification and change times: unchanged files are not even read.

    It stands for the content key of the same files. A file rewritten in place may keep its size and have its
    mtime set back (`touch -r`, a tool that restores times); its change time cannot be set, and moves on.
    """
    digest = hashlib.sha256(f"stat\0{_code_version()}".encode())
    digest.update(_read_as(service, relative_dir))
    try:
        with os.scandir(service.migrations_dir) as entries:  # one call per directory, no path objects
            stats = [
                (e.name, e.stat(follow_symlinks=False), e.path if e.is_dir(follow_symlinks=False) else "")
                for e in entries
            ]
        stats.sort(key=lambda stat: stat[0])
        listed = "".join([f"{n}\0{i.st_size}\0{i.st_mtime_ns}\0{i.st_ctime_ns}\0" for n, i, _ in stats])
        digest.update(listed.encode(errors=ON_DISK))
        for _, _, inside in stats:
            if inside:  # a file edited in place leaves its directory's time
                _stat_inside(digest, inside)
    except OSError:
        pass  # no directory: the key still names the service's settings
    return digest.hexdigest()


INSIDE = ("up.sql", "down.sql", "migration.sql", "_journal.json")  # Diesel's, drizzle-kit 1.0's, drizzle's journal


def _stat_inside(digest: Any, directory: str) -> None:
    """The files a migration directory (Diesel's, drizzle-kit 1.0's) or drizzle's meta/ holds, by size and times."""
    for name in INSIDE:
        try:
            info = os.stat(os.path.join(directory, name))
        except OSError:
            continue
        digest.update(f"{name}\0{info.st_size}\0{info.st_mtime_ns}\0{info.st_ctime_ns}\0".encode(errors=ON_DISK))


@cache
def _reader_version() -> str:
    """migratekit's version, the readers' source and the tree-sitter grammars as installed (found, not imported)."""
    package = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256(VERSION.encode())
    digest.update(sys.version.encode())  # Python's own ast and tokenize read its files
    for source in (
        "checks/wiring/sources.py",
        "checks/wiring/collect.py",  # how an entry holds a reading
        "checks/cache.py",
        "model/syntax.py",
        "model/runner_table.py",
    ):
        digest.update((package / source).read_bytes())
    for name in (
        "tree_sitter",
        "tree_sitter_typescript",
        "tree_sitter_javascript",
        "tree_sitter_go",
        "tree_sitter_bash",
    ):
        _installed(digest, name, "*.so")
    return digest.hexdigest()[:16]


def reading_key(path: Path, text: str) -> str:
    """A source file's key: its reading depends on its name (a test file, a migrations directory) and its text."""
    return hashlib.blake2b(f"{path}\0{text}".encode(errors="surrogatepass"), digest_size=16).hexdigest()


READINGS_ENTRY = re.compile(r"[0-9a-f]{32}\.json")  # what _readings_name() names: a 16-byte blake2b hex digest


def _readings_name(service: Path) -> str:
    return hashlib.blake2b(str(service).encode(errors=ON_DISK), digest_size=16).hexdigest() + ".json"


def _readings_path(root: Path, service: Path) -> Path:
    return state_dir(root) / "cache" / "sources" / _readings_name(service)


def readings(root: Path, service: Path) -> dict[str, Any]:
    """The readings kept for the source files of the service at `service`, by reading_key; {} when there are
    none or they cannot be trusted."""
    try:
        data = _read(_readings_path(root, service))
    except (OSError, ValueError):
        return {}
    if (
        not isinstance(data, dict)
        or data.get("version") != _reader_version()
        or not isinstance(data.get("files"), dict)
    ):
        return {}
    return data["files"]


def store_readings(root: Path, service: Path, files: dict[str, Any]) -> None:
    """Keep the readings of the service's source files as they are now (those of files since changed go)."""
    with contextlib.suppress(OSError):  # a cache that cannot be written (a read-only checkout) is only slower
        _write(_readings_path(root, service), {"version": _reader_version(), "files": files})


def keep_readings_of(root: Path, services: list[Path]) -> None:
    """Drop the readings of every service not at one of these paths (the workspace's, all of them): an entry is
    named by its service's absolute path, and a repository moved or a service renamed or removed would leave its
    entry behind for good."""
    _keep(root, "sources", {_readings_name(service) for service in services}, READINGS_ENTRY)


STAGING_KEPT = 3600.0  # seconds: no audit takes as long to write one entry
LINT_ENTRY = re.compile(r"[0-9a-f]{64}\.json")  # what key() and stat_key() name: a sha256 hex digest


def keep_lint_of(root: Path, entries: Iterable[str]) -> None:
    """Drop every lint entry but these (each service's stat and content keys as its files are now, all of the
    workspace's): an edit of a service's migrations writes two new entries, and those of its files before would
    stay for good, two more at every edit."""
    _keep(root, "lint", {f"{entry}.json" for entry in entries}, LINT_ENTRY)


def _keep(root: Path, kind: str, wanted: set[str], written: re.Pattern[str]) -> None:
    """Remove the entries in cache/<kind> not `wanted`: only names this module writes there (`written`), never
    another file, a directory, or a staging file under an hour old (another audit may be writing it; an older one
    was left by a worker stopped as it wrote, at a Ctrl-C). A cache directory that is
    not where it seems (a link on the way to it: .migratekit, its cache or cache/<kind> linked elsewhere) is
    read and written but never pruned: what is there is not the checkout's, and files of that name outside it
    were removed."""
    with contextlib.suppress(OSError):  # no cache to clean (a read-only checkout): the next audit is only slower
        directory = state_dir(root) / "cache" / kind
        # realpath, not resolve: a link loop there is a cache that cannot be read, not a RuntimeError
        if os.path.realpath(directory) != os.path.join(os.path.realpath(root), STATE_DIR, "cache", kind):
            return
        with os.scandir(directory) as entries:
            for entry in entries:
                if STAGING.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
                    if time.time() - entry.stat(follow_symlinks=False).st_mtime < STAGING_KEPT:
                        continue  # perhaps being written by another audit
                elif entry.name in wanted or not written.fullmatch(entry.name) or entry.is_dir(follow_symlinks=False):
                    continue
                with contextlib.suppress(FileNotFoundError):  # gone already: another audit removed it
                    os.unlink(entry.path)


def _read(path: Path) -> Any:
    """An entry's JSON, from a regular file alone (a FIFO at its path would wait for a writer for good): OSError
    when it cannot be read or is no file, ValueError when it is not JSON."""
    return json.loads(read_regular(path))


def _write(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with staged(path) as out:  # another audit reading it meanwhile sees no half entry
        json.dump(data, out)


def _path(root: Path, entry: str) -> Path:
    return state_dir(root) / "cache" / "lint" / f"{entry}.json"


@cache
def _rules() -> dict[str, Rule]:
    return {r.code: r for r in all_rules()}


class Lint(NamedTuple):
    """A service's findings and what its migrations create and use, with the lint entries that hold them (its
    stat key's and its content key's, none without the cache): what an audit keeps of cache/lint."""

    findings: list[Finding]
    objects: ServiceObjects
    entries: tuple[str, ...] = ()


def load(root: Path, entry: str, service: str) -> Lint | None:
    """`service`'s cached findings and what its migrations create and use, or None when there is no entry or it
    cannot be trusted: one that names another service (a KeyError traceback later, where the service was looked
    up), or a finding whose path, line or message is not of its type, is a miss, and written again."""
    try:
        data = _read(_path(root, entry))
        if not isinstance(data, dict) or data.get("key") != entry or not isinstance(data.get("findings"), list):
            return None
        if data["service"] not in (None, service):
            return None
        rules = _rules()
        findings = []
        for code, path, line, message in data["findings"]:
            if not (isinstance(path, str | None) and (line is None or type(line) is int) and type(message) is str):
                return None
            declared = rules[code]
            findings.append(Finding(code, declared.severity, service, path, line, sys.intern(message), declared.hint))
        content = data.get("content")  # the content key written with it (an entry of an older format names none)
        entries = (entry, content) if isinstance(content, str) and content != entry else (entry,)
        return Lint(findings, ServiceObjects.from_json(data["objects"]), entries)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def store(root: Path, quick: str, content: str, findings: list[Finding], objects: ServiceObjects) -> None:
    """Write one service's lint (findings of that service alone, each as its rule declares it) under its content
    key and its stat key, each entry naming the content key."""
    with contextlib.suppress(OSError):  # a cache that cannot be written (a read-only checkout) is only slower
        data = {
            "content": content,
            "service": findings[0].service if findings else None,
            "findings": [[f.code, f.path, f.line, f.message] for f in findings],
            "objects": objects.as_json(),
        }
        for entry in (content, quick):
            _write(_path(root, entry), {"key": entry, **data})
