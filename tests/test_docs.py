"""The README and docs/ are a user's manual that says what is true now: generated tables fresh, links that
resolve, tasks that exist, the README short with its quickstart near the top, and no development history."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from migratekit.cli.tasks import ns

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
PAGES = sorted([README, *(REPO / "docs").glob("*.md")])
# Pages other work writes: a link to one may be there before the page is.
WRITTEN_ELSEWHERE: set[str] = set()
MAX_README_WORDS = 3000
QUICKSTART_BY_LINE = 200

# Development history has no place in user docs (it is the git log): session numbers, issue numbers, targets and
# commit hashes. ALLOWED holds the legitimate uses of those words, matched in the line that holds one.
HISTORY = re.compile(
    r"\b(?:[Ss]ession \d+|(?:this|last|next|previous|earlier) session|issues? ?#?\d+|the \w+ issue|targets?|"
    r"lab notebook|(?=[0-9a-f]*[a-f])(?=[0-9a-f]*[0-9])[0-9a-f]{7,40})\b"
)
ALLOWED = (
    "a Makefile target",  # make's own word (wiring styles)
    "A Makefile's targets",  # the Layout section's line for checks/wiring/makefile.py
    "`target`",  # a compose build's key
    "a GitHub annotation",
)
CODE_BLOCK = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"\]\(([^)\s]+)\)")
TASK = re.compile(r"(?<!install )\binvoke ([a-z][a-z0-9-]*)")


def _prose(text: str) -> str:
    """The text less its code blocks (a `# heading` in a shell block is not a heading)."""
    return CODE_BLOCK.sub(lambda m: "\n" * m[0].count("\n"), text)


def _anchors(text: str) -> set[str]:
    """GitHub's anchors for a page's headings: lower case, punctuation dropped, spaces as '-', repeats numbered."""
    seen: dict[str, int] = {}
    anchors = set()
    for heading in re.findall(r"^#{1,6} (.+)$", _prose(text), re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def test_the_generated_sections_are_the_code_as_it_is() -> None:
    """Tables that mirror the code (tasks, flags, formats, rule families, ...) come from tools/docs.py.

    In a process of its own: Invoke's get_arguments pops a task's help lines, so after the tasks other tests
    run in this process the collection no longer holds them.
    """
    check = subprocess.run(
        [sys.executable, str(REPO / "tools" / "docs.py"), "--check"], capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_the_readme_is_short_with_its_quickstart_near_the_top() -> None:
    text = README.read_text()
    assert len(text.split()) < MAX_README_WORDS
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("## Quickstart"))
    end = next(i for i, line in enumerate(lines) if i > start and line.startswith("## "))
    assert end <= QUICKSTART_BY_LINE
    quickstart = "\n".join(lines[start:end])
    for step in ("pip install", "from migratekit.tasks import ns", "invoke init", "invoke adopt", "invoke baseline"):
        assert step in quickstart, step
    for step in ("invoke migrate-all", "invoke audit"):
        assert step in quickstart, step


def test_the_readmes_two_commands_are_what_ci_runs() -> None:
    """Each command of the README's "Two commands" block is a line of .ci/run, after its set-up."""
    text = README.read_text()
    section = text[text.index("## Two commands") :]
    block = CODE_BLOCK.search(section)
    assert block is not None
    commands = [line.split("#")[0].strip() for line in block[0].splitlines()[1:-1] if line.strip()]
    assert len(commands) == 2
    ci = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]
    assert ".ci/setup && .venv/bin/pytest" in ci
    for command in commands:
        assert command.startswith(".ci/setup && "), command
        assert command in ci or command.removeprefix(".ci/setup && ") in ci, command


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_no_development_history(page: Path) -> None:
    found = [
        f"{page.name}:{number}: {match[0]!r}"
        for number, line in enumerate(page.read_text().splitlines(), 1)
        for match in HISTORY.finditer(line)
        if not any(allowed in line for allowed in ALLOWED)
    ]
    assert found == []


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_and_anchor_resolves(page: Path) -> None:
    broken = []
    for target in LINK.findall(_prose(page.read_text())):
        if re.match(r"^[a-z]+:", target):
            continue  # https:, mailto:
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        where = str(linked.relative_to(REPO)) if linked.is_relative_to(REPO) else str(linked)
        if not linked.exists():
            if where not in WRITTEN_ELSEWHERE:
                broken.append(target)
            continue
        if anchor and anchor not in _anchors(linked.read_text()):
            broken.append(target)
    assert broken == []


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_task_named_is_a_task(page: Path) -> None:
    named = set(TASK.findall(page.read_text()))
    assert named - set(ns.task_names) == set()


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_script_named_exists(page: Path) -> None:
    """The benchmarks and tools the docs tell a reader to run (bench/migrate.py, tools/docs.py) are there."""
    named = set(re.findall(r"\b((?:bench|tools)/[a-z_]+\.py)\b", page.read_text()))
    assert {path for path in named if not (REPO / path).is_file()} == set()


def test_the_checks_catch_what_they_are_for() -> None:
    """The history pattern, the anchors and the task names find what they should (and not the allowed uses)."""
    assert HISTORY.search("measured in Session 8 against target 6")
    assert HISTORY.search("fixed in 9d0eadf")
    assert HISTORY.search("see issue #28")
    assert not HISTORY.search("a session advisory lock; 20261128; checksum 0123")
    assert _anchors("# A\n## How a database is migrated\n```\n# not one\n```\n## A\n") == {
        "a",
        "how-a-database-is-migrated",
        "a-1",
    }
    assert TASK.findall("invoke migrate-all, pip install invoke migratekit, invoke.yaml") == ["migrate-all"]
