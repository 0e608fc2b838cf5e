"""Where `invoke audit` writes what it finds (--output, stdout in any locale) and the flags that cannot be met."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import Monorepo


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
