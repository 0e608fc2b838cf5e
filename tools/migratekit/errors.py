"""The failures a user can meet, and the one mapping from a failure to what the user reads and the exit code.

Every entry point (the Invoke tasks, `python -m migratekit`, the pre-commit hook) turns a Reported failure
into `migratekit: <message>` and its exit code through `reported`; anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations


class Reported(Exception):
    """A failure that is reported to the user as a message and an exit code, never as a traceback."""

    exit_code = 1

    @property
    def message(self) -> str:
        return str(self)


class MigratekitError(Reported):
    """A command could not do what it was asked (a history it cannot import, a refused baseline): exit code 1."""


class ConfigError(MigratekitError):
    """Bad input (configuration, arguments, files): nothing was changed; exit code 2.

    The message must name the file, line or service at fault and say what to do.
    """

    exit_code = 2


def reported(exc: Reported) -> tuple[str, int]:
    """What the user reads, and the exit code: one spelling for every entry point."""
    return f"migratekit: {exc.message}", exc.exit_code
