"""Atlas's integrity file, atlas.sum: computed and checked exactly as `atlas migrate hash` and `migrate apply` do.

Atlas hashes the directory's `*.sql` files (every one, a dot-file too, no subdirectory) in the byte order of their
names with one SHA-256 that runs on from file to file: each file's name, then its bytes (a file whose first line
says `atlas:sum ignore` adds only its name, and gets no line); after each file the hash so far, in standard
base64, is that file's line `<name> h1:<hash>`. The first line, `h1:<sum>`, is the SHA-256 of every line's name
and hash (without `h1:`) one after the other. The sum file is read line by line (a CRLF checkout of it reads the
same); a first line that is not the sum of the others means the file was edited by hand. Because the hash runs on,
an edit to one file changes the line of every file after it: the first line that differs names the file, and
whether it was edited (its name in its place), removed (its name gone) or added (another name in its place), as
Atlas's own `Validate` reports it. A file's bytes are hashed as they are: a checkout that turned LF into CRLF is an
edit, as Atlas sees it.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

SUM_FILE = "atlas.sum"
FIX = "run `atlas migrate hash` after checking the files, so that atlas.sum records them"
# Atlas's directive pattern, on the text's first line (Go's `[ -~]` and `\w` are ASCII; `.` stops at a newline)
_DIRECTIVE = re.compile(rb"^([ -~]*)atlas:(\w+)(?: +(.+))*")


@dataclass(frozen=True)
class SumMismatch:
    """Why a directory does not match its atlas.sum, as Atlas says it: `L<line>: <file> was <reason>`."""

    line: int  # the sum file's line where the mismatch is (its first line is the directory's sum)
    file: str  # the migration file concerned
    reason: str  # edited, added, removed; or "corrupt": the sum file cannot be read, and `file` says why

    @property
    def message(self) -> str:
        """What is wrong, the sum file's line left to the location (Atlas: `L3: 2_b.sql was edited`)."""
        if self.reason == "corrupt":
            return self.file
        return f"{self.file} was {self.reason} since atlas.sum was written"


def sql_files(directory: Path) -> dict[str, bytes]:
    """What Atlas's directory holds: every regular `*.sql` file (dot-files too), by name, in the byte order of
    the names."""
    try:
        with os.scandir(directory) as entries:
            names = sorted(e.name for e in entries if e.name.endswith(".sql") and e.is_file())
    except OSError:
        return {}
    found = {}
    for name in sorted(names, key=lambda n: n.encode("utf-8", "surrogateescape")):
        found[name] = (directory / name).read_bytes()
    return found


def directive(data: bytes, name: str) -> str | None:
    """The argument of an `atlas:<name>` directive on the first line of `data` (Atlas's reading), else None."""
    found = _DIRECTIVE.match(data)
    if found is None or found[2] != name.encode():
        return None
    return (found[3] or b"").decode("utf-8", "replace")


def hash_lines(files: Mapping[str, bytes]) -> list[tuple[str, str]]:
    """(name, hash) for each file as `atlas migrate hash` writes them, the files taken in their mapping's order."""
    running = hashlib.sha256()
    lines = []
    for name, data in files.items():
        running.update(name.encode("utf-8", "surrogateescape"))
        if directive(data, "sum") == "ignore":
            continue
        running.update(data)
        lines.append((name, base64.b64encode(running.copy().digest()).decode()))
    return lines


def total(lines: list[tuple[str, str]]) -> str:
    """The directory's sum: SHA-256 of every line's name and hash, base64."""
    digest = hashlib.sha256()
    for name, value in lines:
        digest.update(name.encode("utf-8", "surrogateescape"))
        digest.update(value.encode())
    return base64.b64encode(digest.digest()).decode()


def render(files: Mapping[str, bytes]) -> str:
    """atlas.sum's text for these files (what `atlas migrate hash` writes)."""
    lines = hash_lines(files)
    return f"h1:{total(lines)}\n" + "".join(f"{name} h1:{value}\n" for name, value in lines)


def parse(text: bytes) -> tuple[str, list[tuple[str, str]]] | SumMismatch:
    """(sum, lines) as Atlas reads atlas.sum (Go's line scanner: a trailing CR is dropped), or why it cannot be read."""
    rows = text.split(b"\n")
    if rows and rows[-1] == b"":
        rows.pop()
    rows = [r.removesuffix(b"\r") for r in rows]
    first = rows[0].decode("utf-8", "replace") if rows else ""
    lines = []
    for number, row in enumerate(rows[1:], start=2):
        name, separator, value = row.decode("utf-8", "surrogateescape").partition("h1:")
        if not separator:
            return SumMismatch(number, f"{row.decode('utf-8', 'replace')!r} is not '<file> h1:<hash>'", "corrupt")
        lines.append((name.strip(), value))
    if first.removeprefix("h1:") != total(lines):
        return SumMismatch(1, "its first line is not the sum of its lines: it was edited by hand", "corrupt")
    return first.removeprefix("h1:"), lines


def check(directory: Path) -> SumMismatch | None:
    """Whether the directory's files are those its atlas.sum records (Atlas's `Validate`); None when they are.

    A directory with .sql files and no atlas.sum fails as Atlas fails it (checksum file not found).
    """
    files = sql_files(directory)
    try:
        text = (directory / SUM_FILE).read_bytes()
    except FileNotFoundError:
        if not files:
            return None
        return SumMismatch(1, f"{SUM_FILE} is missing", "corrupt")
    parsed = parse(text)
    if isinstance(parsed, SumMismatch):
        return parsed
    recorded, lines = parsed
    expected = hash_lines(files)
    if recorded == total(expected):
        return None
    for index, (name, value) in enumerate(lines):
        if index < len(expected) and expected[index] == (name, value):
            continue
        names = [n for n, _ in expected]
        if name not in names:
            return SumMismatch(index + 2, name, "removed")
        if names.index(name) == index:
            return SumMismatch(index + 2, name, "edited")
        return SumMismatch(index + 2, expected[index][0], "added")
    return SumMismatch(len(lines) + 2, expected[len(lines)][0], "added")
