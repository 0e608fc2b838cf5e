"""How the Invoke tasks take their flags and report a user's mistake: shared by every task in `tasks`."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from invoke import Exit

from migratekit.errors import ConfigError, MigratekitError

F = TypeVar("F", bound=Callable[..., Any])


def user_errors(func: F) -> F:
    """A MigratekitError becomes a message and its exit code, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except MigratekitError as exc:
            raise Exit(f"migratekit: {exc}", code=exc.exit_code) from None

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


def number(value: Any, flag: str, kind: type[int] | type[float], minimum: float) -> Any:
    """A flag's number, or exit 2 naming the flag: Invoke passes what was typed as a string."""
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"--{flag} {value!r}: give a number{'' if kind is float else ' without a fraction'}"
        ) from None
    if number < minimum:
        raise ConfigError(f"--{flag} {value}: must be at least {minimum:g}")
    return number
