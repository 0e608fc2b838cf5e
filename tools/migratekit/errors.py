"""The two kinds of failure a user can meet, and the exit code each maps to."""

from __future__ import annotations


class MigratekitError(Exception):
    """A failure that is reported to the user as a message, never as a traceback."""

    exit_code = 1


class ConfigError(MigratekitError):
    """Bad input (configuration, arguments, files): nothing was changed; exit code 2.

    The message must name the file, line or service at fault and say what to do.
    """

    exit_code = 2
