"""A findings baseline: the audit's findings accepted on the day a monorepo with history adopts migratekit.

Files already applied in production cannot be edited to satisfy a rule (their checksums are recorded), so a
team adopting migratekit accepts what is there and fails only on what is new. A finding is keyed by its
service, file, rule and message, never its line: moving a statement, or editing another file, does not bring
an accepted finding back. Each key keeps a count, so a second identical finding in the same file is new
(the way PHPStan's and RuboCop's baselines count). A file renamed is another file: a migration renamed is
another version to every runner, which applies it again, so what was accepted in it is new under its new name.

The baseline is a file of the repository, committed beside the code it accepts: one outside it, a directory,
or another tool's file is refused (exit 2) before anything is written.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from migratekit.checks.rule import Finding
from migratekit.errors import ConfigError
from migratekit.files import NotAFile, made, read_regular, resolved, staged

BASELINE_VERSION = 1

Key = tuple[str | None, str | None, str, str]  # service, repository path, rule code, message


def key(finding: Finding) -> Key:
    return (finding.service, finding.path, finding.code, finding.message)


@dataclass(frozen=True)
class Baseline:
    path: Path
    accepted: Counter[Key]

    @property
    def size(self) -> int:
        return sum(self.accepted.values())


@dataclass(frozen=True)
class Filtered:
    """What the baseline lets through, and how much of it is accepted or already fixed."""

    new: tuple[Finding, ...]
    accepted: int  # findings the baseline holds that are still there
    fixed: int  # accepted findings that are gone: writing the baseline again shrinks it


def read(path: Path, shown: str | None = None, named_by: str | None = None) -> Baseline:
    """The baseline in `path` (`shown` as the user wrote it; `named_by` the workspace.yaml line that names it);
    an unreadable or malformed one is the user's to fix, never ignored."""
    shown = shown or str(path)
    try:
        data = json.loads(_text_of(path, shown))
    except FileNotFoundError:
        if named_by is not None:
            raise ConfigError(
                f"{named_by}: baseline: {shown} does not exist: write it with `invoke audit --write-baseline "
                f"{shown}` (and commit it), or remove the key"
            ) from None
        raise ConfigError(
            f"{shown}: no such baseline; write one with `invoke audit --write-baseline {shown}`"
        ) from None
    except IsADirectoryError:
        raise ConfigError(f"{shown}: a directory, not a baseline file; name the file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ConfigError(
            f"{shown}: not a migratekit baseline ({error}); write it again with --write-baseline"
        ) from None
    entries = data.get("findings") if isinstance(data, dict) else None
    if not isinstance(data, dict) or data.get("version") != BASELINE_VERSION or not isinstance(entries, list):
        raise ConfigError(
            f"{shown}: not a migratekit baseline (version {BASELINE_VERSION} with a findings list); "
            "write it again with --write-baseline"
        )
    accepted: Counter[Key] = Counter()
    for index, entry in enumerate(entries):
        if not _entry_ok(entry):
            raise ConfigError(
                f"{shown}: findings[{index}] needs service, path, code, message and a positive count; "
                "write the baseline again with --write-baseline"
            )
        accepted[(entry["service"], entry["path"], entry["code"], entry["message"])] += entry.get("count", 1)
    return Baseline(path, accepted)


def _text_of(path: Path, shown: str) -> str:
    """A baseline's text, from a regular file alone: read_text waited for good on a FIFO at its path."""
    try:
        return read_regular(path).decode("utf-8")
    except NotAFile:
        raise ConfigError(f"{shown}: not a regular file (a FIFO or a device); name the baseline file") from None


def inside(path: Path, root: Path, flag: str, given: str) -> None:
    """A baseline is the repository's (its paths are repository-relative, and it is committed with the code)."""
    whole = resolved(path)
    if whole is None:
        raise ConfigError(f"{flag} {given}: a link that leads back to itself; name the baseline file")
    if not whole.is_relative_to(root.resolve()):
        raise ConfigError(f"{flag} {given}: outside the repository; keep the baseline in it")


def writable(path: Path, root: Path, given: str) -> Baseline | None:
    """Where --write-baseline will write, checked before anything is written (init writes workspace.yaml
    first): a file of the repository that is a baseline already (returned: its other services' entries stay)
    or nothing yet, in a directory that can be made and written."""
    flag = "--write-baseline"
    inside(path, root, flag, given)
    if path.is_dir():
        raise ConfigError(f"{flag} {given}: a directory; name a file")
    if path.exists():
        try:
            kept = read(path, given)
        except ConfigError:
            raise ConfigError(
                f"{given} exists and is not a migratekit baseline: not overwritten; name another file (or remove "
                "this one)"
            ) from None
        if not os.access(path, os.W_OK):
            raise ConfigError(f"{flag} {given}: cannot be written: the file is read-only")
        return kept
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    where = ancestor.resolve().relative_to(root.resolve()).as_posix()
    if not ancestor.is_dir():
        raise ConfigError(f"{flag} {given}: cannot be written: {where} is not a directory")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise ConfigError(f"{flag} {given}: cannot be written: {where or 'the checkout'} is read-only")
    return None


def write(path: Path, text: str, given: str) -> None:
    """Write a baseline that `writable` accepted (an error the checks could not foresee still names the file),
    whole or not at all: a full disk or a Ctrl-C part-way leaves the baseline before as it was, never a truncated
    one that the next audit refuses. Written through a link, as the user's editor would."""
    try:
        with made(path.parent), staged(resolved(path) or path) as out:  # no directory made for it stays
            out.write(text)
    except OSError as error:
        reason = error.strerror or str(error)
        raise ConfigError(
            f"--write-baseline {given}: cannot be written ({reason}); the file there is as it was"
        ) from None


def _entry_ok(entry: object) -> bool:
    if not isinstance(entry, dict) or not {"service", "path", "code", "message"} <= entry.keys():
        return False
    texts = all(entry[k] is None or isinstance(entry[k], str) for k in ("service", "path"))
    count = entry.get("count", 1)
    return texts and isinstance(entry["code"], str) and isinstance(entry["message"], str) and _positive(count)


def _positive(count: object) -> bool:
    return isinstance(count, int) and not isinstance(count, bool) and count > 0


def apply(baseline: Baseline, findings: Iterable[Finding], audited: Sequence[str]) -> Filtered:
    """The findings the baseline does not accept; of each key the first `count` (in file order) are accepted."""
    left = Counter(baseline.accepted)
    new = []
    for finding in findings:
        k = key(finding)
        if left[k] > 0:
            left[k] -= 1
        else:
            new.append(finding)
    scope = set(audited)
    fixed = sum(n for (service, *_), n in left.items() if n > 0 and (service is None or service in scope))
    in_scope = sum(n for (service, *_), n in baseline.accepted.items() if service is None or service in scope)
    return Filtered(tuple(new), in_scope - fixed, fixed)


def document(findings: Iterable[Finding], keep: Baseline | None = None, audited: Sequence[str] = ()) -> str:
    """The baseline file for `findings`: sorted and one finding per entry, so that its diffs review well.

    With `keep`, the entries of services this audit did not look at stay as they were, so that baselining one
    service does not forget the others'.
    """
    counts: Counter[Key] = Counter(key(f) for f in findings)
    if keep is not None:
        scope = set(audited)
        for k, n in keep.accepted.items():
            if k[0] is not None and k[0] not in scope:
                counts[k] += n
    entries = [
        {"service": s, "path": p, "code": c, "message": m, "count": n}
        for (s, p, c, m), n in sorted(counts.items(), key=lambda item: tuple(x or "" for x in item[0]))
    ]
    return json.dumps({"version": BASELINE_VERSION, "findings": entries}, indent=2, ensure_ascii=False) + "\n"
