"""What applying migrations produces: each applied file, why a service stopped, the service's result."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from migratekit.errors import Reported


class Outcome(StrEnum):
    """How one service's run ended: identifiers, as the JSON carries them (cli/render says each in words)."""

    APPLIED = "applied"
    UP_TO_DATE = "up_to_date"
    PLANNED = "planned"
    FAILED = "failed"
    SKIPPED = "skipped"
    ROLLED_BACK = "rolled_back"  # invoke rollback undid what it was asked to
    INTERRUPTED = "interrupted"  # Ctrl-C or SIGTERM: what ran is kept, the migration in progress rolled back


@dataclass(frozen=True)
class Applied:
    version: str  # the file name without .sql (the tracking row's version)
    checksum: str  # first 16 hex characters of the file's SHA-256
    execution_time_ms: int  # as the server measured it (the tracking row's)
    transactional: bool  # false: run statement by statement (CONCURRENTLY and the like)


@dataclass(frozen=True)
class Failure:
    """Why a service stopped: the file and line where there is one, PostgreSQL's message, what to do."""

    message: str  # PostgreSQL's message, or migratekit's
    file: str | None = None  # the migration file, by its repository path
    line: int | None = None  # the line of that file where the failing statement is
    sqlstate: str | None = None  # PostgreSQL's error code (22012)
    hint: str = ""  # what to do
    statements_done: int | None = None  # non-transactional files: how many statements had run
    invalid_indexes: tuple[str, ...] = ()  # INVALID indexes a failed CONCURRENTLY build left

    def describe(self) -> str:
        where = f"{self.file}:{self.line}: " if self.file and self.line else f"{self.file}: " if self.file else ""
        state = f" (SQLSTATE {self.sqlstate})" if self.sqlstate else ""
        parts = [f"{where}{self.message}{state}"]
        if self.statements_done is not None:
            parts.append(
                f"{self.statements_done} statement(s) of this file ran and stay applied; the file is not "
                "recorded, so the next run repeats it (its idempotent form makes that safe)"
            )
        if self.invalid_indexes:
            parts.append(
                f"INVALID index(es) left by a failed CONCURRENTLY build: {', '.join(self.invalid_indexes)}; "
                "drop them (DROP INDEX CONCURRENTLY IF EXISTS) before re-running"
            )
        if self.hint:
            parts.append(self.hint)
        return "; ".join(parts)


class Stopped(Reported):
    """Raised inside the engine (and by the tracking-table reader) to stop one service with a Failure; a task
    that meets one outside a run (the server unreachable, the lock held) reports its Failure, exit code 1."""

    def __init__(self, failure: Failure):
        super().__init__(failure.message)
        self.failure = failure

    @property
    def message(self) -> str:
        return self.failure.describe()


@dataclass(frozen=True)
class Result:
    """What happened to one service's database."""

    service: str  # the service
    outcome: Outcome  # how its run ended
    applied: tuple[Applied, ...] = ()  # the migrations applied by this run, in order
    already_applied: int = 0  # how many were applied before this run
    pending: tuple[str, ...] = ()  # what is left to apply (a dry run: what would be applied)
    elapsed_ms: int = 0  # the service's run, connection included
    failure: Failure | None = None  # why it stopped, null when it did not
    notes: tuple[str, ...] = ()  # what else a person should know (a database created, why it was skipped)

    def located(self, directory: str) -> Result:
        """The same result, its failure's file named by its repository path (`directory` holds the migrations,
        relative to the repository's root), as the audit names files."""
        if self.failure is None or self.failure.file is None or "/" in self.failure.file:
            return self
        return replace(self, failure=replace(self.failure, file=f"{directory}/{self.failure.file}"))

    @property
    def ok(self) -> bool:
        return self.outcome in (Outcome.APPLIED, Outcome.UP_TO_DATE, Outcome.PLANNED, Outcome.ROLLED_BACK)


class MigrationFailed(Exception):
    """Raised by `run_migrations` so a service's startup can exit non-zero."""

    def __init__(self, result: Result):
        super().__init__(result.failure.describe() if result.failure else result.outcome.replace("_", " "))
        self.result = result
