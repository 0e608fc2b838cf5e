"""How the Invoke tasks take their flags and report a user's mistake: shared by every task in `tasks`."""

from __future__ import annotations

import contextlib
import errno
import functools
import inspect
import math
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from invoke import Exit

from migratekit import interrupts
from migratekit.errors import ConfigError, Reported, reported
from migratekit.model.settings import RUN_DEFAULTS
from migratekit.model.workspace import Workspace
from migratekit.model.workspace_file import load_workspace

F = TypeVar("F", bound=Callable[..., Any])
ROOT_HELP = "monorepo root (default: found upwards from the current directory)"

# The flags `migrate` and `migrate-all` share, defined once: (default, help). A run default of
# None means "from the config": ns.configure below, which an invoke.yaml can override.
MIGRATE_FLAGS: dict[str, tuple[Any, str]] = {
    "root": (None, ROOT_HELP),
    "json": (False, "print the results as JSON"),
    "jobs": (None, f"how many independent services migrate at once (default {RUN_DEFAULTS.jobs})"),
    "dry_run": (False, "print the plan (order, pending files per service) and change nothing"),
    "fail_fast": (False, "after a failure, start no further service"),
    "allow_changed": (False, "record the new checksum of an applied file that was edited on purpose"),
    "out_of_order": (False, "apply a pending file that sorts before the newest applied one"),
    "on": ("local", "where migrations run: local (default), or kubernetes (a Job per service, wave by wave)"),
    "image_template": ("{service}:latest", "with --on kubernetes: each service's image ({service} is replaced)"),
    "namespace": ("default", "with --on kubernetes: the namespace of the Jobs"),
    "embedded": (False, "services without a URL use the embedded PostgreSQL, even in CI or beside services with one"),
    "create_databases": (False, "create a database that a URL names but its server lacks (same credentials)"),
    "wait": (
        None,
        f"seconds to keep retrying the connection while a database starts (default {RUN_DEFAULTS.connect_wait:g})",
    ),
    "lock_wait": (None, f"seconds to wait for another runner's migration lock (default {RUN_DEFAULTS.lock_wait:g})"),
}
MIGRATE_HELP = {name: text for name, (_, text) in MIGRATE_FLAGS.items()}


INTEGER = re.compile(r"[+-]?[0-9]+")  # what a flag's number may look like: plain ASCII digits, as a user types them
DECIMAL = re.compile(
    r"[+-]?(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|nan|inf)", re.IGNORECASE
)  # nan, inf: refused below
UNWRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS)  # a read-only checkout: the user's, not a bug
OUTPUT_LOST = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO)  # `> report.txt` on a full disk, a quota


def _stdout_to_nowhere() -> None:
    """Python flushes stdout once more at exit: what is left there would be a second error, after the message."""
    with contextlib.suppress(OSError, AttributeError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def typed(value: str) -> str:
    """Words the user typed, as typed: under a locale that is ASCII alone Python holds each byte of a UTF-8
    argument it cannot decode as a surrogate (`add stra\\udcc3\\udc9fe`), which no UTF-8 file can hold; those bytes
    are the terminal's UTF-8. An argument any other locale decoded is left as it is."""
    if not any("\udc80" <= character <= "\udcff" for character in value):
        return value
    return os.fsencode(value).decode("utf-8", errors="replace")


# --format values a program reads (its encoding is UTF-8 whatever the locale), not a person
MACHINE_FORMATS = frozenset({"json", "sarif", "github", "mermaid", "dot"})


def user_errors(func: F) -> F:
    """A Reported failure (bad input, an interrupt, the server unreachable, the lock held) becomes a message
    and its exit code, never a traceback: a Ctrl-C or a SIGTERM is exit 130 or 143 saying so, in every task
    (Invoke made a Ctrl-C exit 1 without a word where a task had no handler of its own). Before the task runs,
    stdout is made able to take any name or message it prints, whatever the locale (render.fit_stdout): an
    ASCII-only locale stopped `rules --json` at its first ellipsis and a failed migration's report at an error
    message in another language."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from migratekit.cli import render

        machine = (
            any(kwargs.get(flag) for flag in ("json", "sarif", "github")) or kwargs.get("format") in MACHINE_FORMATS
        )
        render.fit_stdout(machine=machine)
        try:
            try:
                with interrupts.handling(raise_now=True):  # a run of migrations holds its own (it stops between)
                    return func(*args, **kwargs)
            finally:  # what is still buffered is written here, where a full disk under it can be said
                if sys.stdout is not None:
                    sys.stdout.flush()
        except Reported as exc:
            message, code = reported(exc)
            raise Exit(message, code=code) from None
        except BrokenPipeError:  # `invoke services | head`: the reader has what it wanted; no traceback
            _stdout_to_nowhere()
            raise Exit(code=1) from None
        except OSError as exc:
            if exc.errno in OUTPUT_LOST and exc.filename is None:  # stdout's file: the task itself is done
                _stdout_to_nowhere()
                raise Exit(
                    f"migratekit: stdout could not be written ({exc.strerror}); the command ran to its end and its "
                    "report is lost: free space where the output goes, or send it elsewhere",
                    code=1,
                ) from None
            if exc.errno not in UNWRITABLE:
                raise
            where = exc.filename or "the checkout"
            raise Exit(
                f"migratekit: cannot write {where} ({exc.strerror}): this command writes into the checkout; run "
                "it where you may write (nothing else was changed)",
                code=2,
            ) from None

    return wrapper  # type: ignore[return-value]


def with_flags(flags: dict[str, tuple[Any, str]]) -> Callable[[F], F]:
    """Add `flags` to a task's signature (Invoke reads flags from it) so several tasks share one definition."""

    def decorate(func: F) -> F:
        own = [p for p in inspect.signature(func).parameters.values() if p.kind is not p.VAR_KEYWORD]
        shared = [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=d) for n, (d, _) in flags.items()]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return func(*args, **kwargs)

        wrapper.__signature__ = inspect.Signature(own + shared)  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate


def number(value: Any, flag: str, kind: type[int] | type[float], minimum: float, maximum: float = math.inf) -> Any:
    """A flag's number, or exit 2 naming the flag: Invoke passes what was typed as a string.

    NaN and infinity are refused: a wait of NaN seconds never ends (no deadline compares as passed).
    """
    try:
        if isinstance(value, str) and not (INTEGER if kind is int else DECIMAL).fullmatch(value):
            raise ValueError(value)  # int() and float() also read "1_0", " 3", other scripts' digits
        number = kind(value)
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(
            f"--{flag} {value!r}: give a number{'' if kind is float else ' without a fraction'}"
        ) from None
    if not math.isfinite(number):
        raise ConfigError(f"--{flag} {value}: give a finite number")
    if number < minimum:
        raise ConfigError(f"--{flag} {value}: must be at least {minimum:g}")
    if number > maximum:
        raise ConfigError(f"--{flag} {value}: must be at most {maximum:g}")
    return number


def workspace_at(root: str | None) -> Workspace:
    """The workspace of --root, or of the checkout around the current directory."""
    return load_workspace(Path(root) if root else None)
