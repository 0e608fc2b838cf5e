"""Where `invoke audit` writes what it finds (--output, stdout in any locale) and the flags that cannot be met."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import Monorepo

ACCOUNTS = """
-- Migration: 004_add_email_index
CREATE INDEX idx_accounts_email ON accounts (email);
INSERT INTO accounts (email) VALUES ('admin@example.com');
"""


def with_findings(repo: Monorepo) -> Monorepo:
    repo.write("services/authentication/migrations/004_add_email_index.sql", ACCOUNTS)
    return repo


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("services", "--output services: a directory; name a file"),
        ("tasks.py/audit.json", "--output tasks.py/audit.json: cannot be written: tasks.py is not a directory"),
        ("", "--output '': name a file"),
    ],
)
def test_an_output_that_cannot_be_a_file_is_exit_2_naming_it_not_a_traceback(
    example_repo: Monorepo, given: str, says: str
) -> None:
    result = example_repo.invoke("audit", "--json", "--output", given)
    assert result.returncode == 2 and says in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


@pytest.mark.parametrize("reads", ["baseline", "workspace.yaml"])
def test_an_output_naming_a_file_the_audit_reads_is_exit_2_and_leaves_that_file_as_it_was(
    example_repo: Monorepo, reads: str
) -> None:
    """`--baseline b.json --output b.json` wrote the report over the baseline: every later audit was exit 2."""
    root = with_findings(example_repo).root
    assert example_repo.invoke("audit", "--write-baseline", "base.json").returncode == 0
    target = "base.json" if reads == "baseline" else "workspace.yaml"
    before = (root / target).read_bytes()
    result = example_repo.invoke("audit", "--baseline", "base.json", "--json", "--output", target)
    assert result.returncode == 2, result.stderr
    assert f"--output {target}: " in result.stderr and "name another file" in result.stderr
    assert (root / target).read_bytes() == before
    assert example_repo.invoke("audit", "--baseline", "base.json").returncode == 0


def test_an_output_inside_migratekits_cache_is_exit_2(example_repo: Monorepo) -> None:
    """The audit removes files from .migratekit/cache: a report written there could be the next audit's to lose."""
    target = f".migratekit/cache/lint/{'e' * 64}.json"
    result = example_repo.invoke("audit", "--json", "--output", target)
    assert result.returncode == 2 and f"--output {target}: inside .migratekit/cache" in result.stderr, result.stderr
    assert not (example_repo.root / target).exists()


@pytest.mark.parametrize(
    "other", [["--output", "out.json"], ["--json"], ["--baseline", "base.json"], ["--all-findings"]]
)
def test_write_baseline_with_a_flag_it_ignores_is_exit_2_and_writes_nothing(
    example_repo: Monorepo, other: list[str]
) -> None:
    """--write-baseline writes the baseline alone: --output, a format or a baseline to read were silently dropped
    (no report at --output for a CI step to upload)."""
    root = example_repo.root
    result = example_repo.invoke("audit", "--write-baseline", "new.json", *other)
    assert result.returncode == 2 and f"--write-baseline and {other[0]}" in result.stderr, result.stderr
    assert not (root / "new.json").exists() and not (root / "out.json").exists()


@pytest.mark.parametrize(
    "flag", ["--service", "--changed-since", "--format", "--root", "--output", "--baseline", "--write-baseline"]
)
def test_an_empty_flag_value_is_exit_2_naming_the_flag_not_an_audit_of_everything(
    example_repo: Monorepo, flag: str
) -> None:
    """`--service "$SERVICE"` with the variable unset audited every service, and `--format ''` printed text."""
    result = example_repo.invoke("audit", flag, "")
    assert result.returncode == 2 and f"{flag} '': " in result.stderr, result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("linked", [".migratekit", ".migratekit/cache", ".migratekit/cache/lint"])
def test_a_lint_cache_linked_out_of_the_checkout_loses_no_file_there(
    example_repo: Monorepo, tmp_path: Path, linked: str
) -> None:
    """The audit pruned whatever its cache directory led to: files named like entries in a directory elsewhere
    were removed. There the cache is read and written, never pruned; the findings are those without it."""
    root = example_repo.root
    elsewhere = tmp_path / "elsewhere"
    theirs = elsewhere / "lint" if linked != ".migratekit/cache/lint" else elsewhere
    if linked == ".migratekit":
        theirs = elsewhere / "cache" / "lint"
    theirs.mkdir(parents=True)
    names = {f"{digit * 64}.json" for digit in "abc"}
    for name in names:
        (theirs / name).write_text("{}")
    (root / linked).parent.mkdir(parents=True, exist_ok=True)
    (root / linked).symlink_to(elsewhere)
    cold = example_repo.invoke("audit", "--json", "--no-cache").stdout
    assert example_repo.invoke("audit", "--json").stdout == cold
    assert example_repo.invoke("audit", "--json").stdout == cold  # read back from there
    assert names < {p.name for p in theirs.iterdir()}


NOT_UTF8 = os.fsdecode(b"005_caf\xe9.sql")  # as Python holds a name with a byte that is not UTF-8


def test_a_migration_whose_name_is_not_utf8_is_audited_from_the_cache_as_without_it(example_repo: Monorepo) -> None:
    """The cache's keys encoded each file's name as UTF-8: a name with another byte stopped every cached audit with
    a UnicodeEncodeError (--no-cache alone got through)."""
    root = example_repo.root
    migrations = root / "services" / "authentication" / "migrations"
    (migrations / NOT_UTF8).write_text("-- Migration: 005_cafe\nSELECT 1;\n")
    cold = example_repo.invoke("audit", "--json", "--no-cache")
    assert cold.returncode == 1 and f"{NOT_UTF8} is not NNN_snake_case.sql" in cold.stdout
    for _ in ("written", "read back"):
        cached = example_repo.invoke("audit", "--json")
        assert (cached.returncode, cached.stdout) == (1, cold.stdout), cached.stderr
