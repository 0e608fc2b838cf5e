"""What applying migrations produces: each applied file, why a service stopped, the service's result."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from migratekit.errors import Reported


class Outcome(StrEnum):
    APPLIED = "applied"
    UP_TO_DATE = "up to date"
    PLANNED = "planned"
    FAILED = "failed"
    SKIPPED = "skipped"
    ROLLED_BACK = "rolled back"  # invoke rollback undid what it was asked to
    INTERRUPTED = "interrupted"  # Ctrl-C or SIGTERM: what ran is kept, the migration in progress rolled back


@dataclass(frozen=True)
class Applied:
    version: str
    checksum: str
    execution_time_ms: int
    transactional: bool


@dataclass(frozen=True)
class Failure:
    """Why a service stopped: the file and line where there is one, PostgreSQL's message, what to do."""

    message: str
    file: str | None = None
    line: int | None = None
    sqlstate: str | None = None
    hint: str = ""
    statements_done: int | None = None  # non-transactional files: how many statements had run
    invalid_indexes: tuple[str, ...] = ()

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

    service: str
    outcome: Outcome
    applied: tuple[Applied, ...] = ()
    already_applied: int = 0
    pending: tuple[str, ...] = ()
    elapsed_ms: int = 0
    failure: Failure | None = None
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.outcome in (Outcome.APPLIED, Outcome.UP_TO_DATE, Outcome.PLANNED, Outcome.ROLLED_BACK)


class MigrationFailed(Exception):
    """Raised by `run_migrations` so a service's startup can exit non-zero."""

    def __init__(self, result: Result):
        super().__init__(result.failure.describe() if result.failure else result.outcome)
        self.result = result
