"""What a person reads: each command's text output, piped (as in CI) and on terminals 80 and 200 columns wide.

User text (names, paths, SQL, server messages) is shown as written, never read as rich markup, and every
outcome a run can end in has its rendering.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

import pytest

from conftest import Monorepo, plain
from migratekit.cli import render
from migratekit.database.results import Applied, Failure, Outcome, Result

WIDTHS = [None, 80, 200]  # piped, then two terminals


def seen(output: str) -> str:
    """What the text says, whatever the width: colours out, lines joined (a terminal wraps long ones)."""
    return " ".join(plain(output).split())


@pytest.fixture
def updown(monorepo: Callable[..., Monorepo]) -> Monorepo:
    """A service `g` in golang-migrate's layout with three migrations applied."""
    repo = monorepo({"g": {"language": "go"}})
    for n, name in enumerate(("one", "two", "three"), start=1):
        repo.migration("g", f"00{n}_{name}.up.sql", f"CREATE TABLE IF NOT EXISTS t{n} (id int);\n")
        repo.migration("g", f"00{n}_{name}.down.sql", f"DROP TABLE IF EXISTS t{n};\n")
    assert repo.invoke("migrate-all").returncode == 0
    return repo


def test_a_rollback_says_what_it_rolled_back(updown: Monorepo) -> None:
    said = {}
    for args, terminal in [
        (("--steps", "2", "--dry-run"), None),
        (("--steps", "2"), 80),
        (("--to", "001_one"), 200),  # nothing after it is applied any more
        ((), None),
    ]:
        done = updown.invoke("rollback", "g", *args, terminal=terminal)
        assert done.returncode == 0 and "Traceback" not in done.stderr, done.stdout + done.stderr
        assert ("\x1b[" in done.stdout) is (terminal is not None)  # colour only on a terminal
        (row,) = [line for line in plain(done.stdout).splitlines() if line.startswith("│ g ")]
        said[args] = (row.split("│")[-2].strip(), seen(done.stdout).split(" g: ", 1)[1])
    assert said == {
        ("--steps", "2", "--dry-run"): ("planned", "would roll back 003_three, 002_two"),
        ("--steps", "2"): ("rolled back", "rolled back 003_three, 002_two; 1 still applied"),
        ("--to", "001_one"): ("rolled back", "nothing to roll back; 1 still applied"),
        (): ("rolled back", "rolled back 001_one; 0 still applied"),
    }
    assert updown.query("g", "SELECT count(*) FROM schema_migrations") == [(0,)]


def test_a_failed_rollback_names_the_file_and_line(updown: Monorepo) -> None:
    updown.migration("g", "003_three.down.sql", "DELETE FROM t3;\nSELECT 1/0;\n")
    failed = updown.invoke("rollback", "g", terminal=80)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "g: 003_three.down.sql:2: rolling back: division by zero (SQLSTATE 22012)" in seen(failed.stdout)
    assert len(updown.query("g", "SELECT version FROM schema_migrations")) == 3


def printed(renderables: Iterable[Any], terminal: int | None, monkeypatch: pytest.MonkeyPatch, capsys) -> str:
    """What the tasks' own console (render.console) prints for `renderables`, piped or on a terminal that wide."""
    for variable in ("FORCE_COLOR", "NO_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(variable, raising=False)
    if terminal is not None:
        monkeypatch.setenv("TTY_COMPATIBLE", "1")
        monkeypatch.setenv("TERM", "xterm-256color")
        monkeypatch.setenv("COLUMNS", str(terminal))
    capsys.readouterr()
    out = render.console()
    for renderable in renderables:
        out.print(renderable)
    return capsys.readouterr().out


@pytest.mark.parametrize("outcome", list(Outcome))
def test_every_outcome_has_its_rendering(outcome: Outcome, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from rich.style import Style

    style = render.OUTCOME_STYLE.get(outcome)
    assert style, f"Outcome.{outcome.name} has no style: add it to OUTCOME_STYLE in tools/migratekit/cli/render.py"
    Style.parse(style)  # a style rich knows
    failure = Failure("it stopped") if outcome in (Outcome.FAILED, Outcome.INTERRUPTED) else None
    result = Result("svc", outcome, applied=(Applied("001_a", "0" * 16, 1, True),), failure=failure)
    for terminal in WIDTHS:
        for shown in (
            [render.results_table([result]), *render.result_details([result])],
            render.rollback_text(result, dry_run=outcome is Outcome.PLANNED),
        ):
            out = printed(shown, terminal, monkeypatch, capsys)
            (row,) = [line for line in plain(out).splitlines() if line.startswith("│ svc ")]
            assert row.split("│")[-2].strip() == str(outcome)
            if terminal:  # in its colour
                assert re.search(r"\x1b\[[0-9;]+m" + re.escape(str(outcome)) + r"\x1b\[0m", out), repr(out)
