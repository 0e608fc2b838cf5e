"""Where `invoke audit` writes what it finds (--output, stdout in any locale) and the flags that cannot be met."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conftest import Monorepo, filled
from migratekit.cli import render

ACCOUNTS = """
-- Migration: 004_add_email_index
CREATE INDEX idx_accounts_email ON accounts (email);
INSERT INTO accounts (email) VALUES ('admin@example.com');
"""


def with_findings(repo: Monorepo) -> Monorepo:
    repo.write("services/authentication/migrations/004_add_email_index.sql", ACCOUNTS)
    return repo


def audit_process(root: Path, shape: str, environment: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    """`invoke audit --format SHAPE` in a process of its own with exactly this environment (its locale), output as
    bytes: what the process wrote, not what Python made of it."""
    return subprocess.run(
        [sys.executable, "-m", "invoke", "audit", "--format", shape],
        cwd=root,
        capture_output=True,
        env=environment,
        timeout=120,
    )


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


def stops_after_one_line(failure: BaseException) -> object:
    def lines(*_: object, **__: object) -> Iterator[str]:
        yield "::error title=MK000::the first line"
        raise failure

    return lines


@pytest.mark.parametrize(
    ("failure", "code", "says"),
    [
        (KeyboardInterrupt(), 1, ""),
        (OSError(errno.ENOSPC, "No space left on device"), 2, "cannot be written (No space left on device)"),
    ],
)
def test_an_audit_stopped_while_writing_its_output_leaves_the_file_as_it_was(
    example_repo: Monorepo, monkeypatch: pytest.MonkeyPatch, failure: BaseException, code: int, says: str
) -> None:
    """The output is written as it is made: a Ctrl-C or a full disk part-way left half a report at --output (a
    SARIF file code scanning then refused), where the report before had been."""
    root = with_findings(example_repo).root
    target = root / "reports" / "audit.txt"
    assert example_repo.invoke("audit", "--github", "--output", str(target)).returncode == 1
    before = target.read_bytes()
    monkeypatch.setattr(render, "github_annotations", stops_after_one_line(failure))
    result = example_repo.invoke("audit", "--github", "--output", str(target))
    assert result.returncode == code and says in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and "wrote" not in result.stderr
    assert target.read_bytes() == before
    assert [p.name for p in target.parent.iterdir()] == ["audit.txt"]  # no staging file left


def test_an_output_written_again_keeps_the_files_mode_and_a_new_one_gets_the_umasks(example_repo: Monorepo) -> None:
    root = example_repo.root
    target = root / "audit.json"
    assert example_repo.invoke("audit", "--json", "--output", str(target)).returncode == 0
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask
    target.chmod(0o640)
    assert example_repo.invoke("audit", "--json", "--output", str(target)).returncode == 0
    assert target.stat().st_mode & 0o777 == 0o640


def test_an_output_that_is_a_link_or_a_device_is_written_through(example_repo: Monorepo, tmp_path: Path) -> None:
    """A link is written through (its file replaced, the link kept); a device or a FIFO (/dev/stdout) as is."""
    root = example_repo.root
    real = tmp_path / "reports" / "real.json"
    real.parent.mkdir()
    real.write_text("old")
    (root / "link.json").symlink_to(real)
    assert example_repo.invoke("audit", "--json", "--output", "link.json").returncode == 0
    assert (root / "link.json").is_symlink() and json.loads(real.read_text())["errors"] == 0
    assert example_repo.invoke("audit", "--json", "--output", os.devnull).returncode == 0
    assert Path(os.devnull).is_char_device()


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


@pytest.mark.parametrize("shape", ["text", "json", "sarif", "github"])
def test_a_stdout_that_is_ascii_alone_gets_non_ascii_names_without_a_traceback(
    example_repo: Monorepo, shape: str
) -> None:
    """A C locale without Python's UTF-8 coercion (or a Latin-1 one and a name in Japanese): the output stopped
    at the first such name with a UnicodeEncodeError. The machine formats are UTF-8 whatever the locale (JSON's
    and SARIF's encoding, what a file holds); text escapes what the terminal cannot show."""
    root = example_repo.root
    example_repo.write(
        "services/authentication/migrations/004_names.sql",
        """
        -- Migration: 004_names
        CREATE TABLE café (id int);
        CREATE INDEX "名前" ON accounts (email);
        """,
    )
    environment = {"PATH": "/usr/bin:/bin", "LC_ALL": "C", "PYTHONCOERCECLOCALE": "0", "PYTHONUTF8": "0"}
    done = audit_process(root, shape, environment)
    assert done.returncode == 1 and b"Traceback" not in done.stderr, done.stderr.decode(errors="replace")
    if shape == "text":
        assert b"CREATE TABLE caf\\xe9 without IF NOT EXISTS" in done.stdout
        assert b"\\u540d\\u524d" in done.stdout and b"3 service(s) audited: " in done.stdout.splitlines()[-1]
    else:
        text = done.stdout.decode("utf-8")
        assert "CREATE TABLE café without IF NOT EXISTS" in text and "名前" in text
        if shape != "github":
            json.loads(text)


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


def test_a_migration_whose_name_is_not_utf8_is_named_in_every_format(example_repo: Monorepo) -> None:
    """Every machine format stopped at such a name, in any locale, on stdout and in --output's file. Each is UTF-8
    and names the file: JSON and SARIF with the escape that reads back as the name on disk."""
    root = example_repo.root
    (root / "services" / "authentication" / "migrations" / NOT_UTF8).write_text("-- Migration: 005_cafe\nSELECT 1;\n")
    found = json.loads(example_repo.invoke("audit", "--json").stdout)["findings"]
    path = next(f["path"] for f in found if f["code"] == "MK101")
    assert (root / path).is_file() and path.endswith(NOT_UTF8)
    environment = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "PYTHONUTF8": "0"}
    for shape in ("json", "sarif", "github"):
        printed = audit_process(root, shape, environment)
        assert printed.returncode == 1 and b"Traceback" not in printed.stderr, printed.stderr.decode()
        assert b"005_caf\\udce9.sql" in printed.stdout
        written = root / f"audit.{shape}"
        assert example_repo.invoke("audit", "--format", shape, "--output", str(written)).returncode == 1
        assert written.read_bytes() == printed.stdout


@pytest.mark.parametrize("shape", ["text", "json", "sarif", "github"])
def test_an_audit_with_stdout_closed_exits_as_its_findings_say_not_with_a_traceback(
    example_repo: Monorepo, shape: str
) -> None:
    """`invoke audit --json >&-` (a CI step that only wants the exit code): print() drops what it is given when
    there is no stdout, and the output written as it is made stopped with an AttributeError instead."""
    root = with_findings(example_repo).root
    done = subprocess.run(
        ["sh", "-c", 'exec "$@" >&-', "sh", sys.executable, "-m", "invoke", "audit", "--format", shape],
        cwd=root,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
        timeout=120,
    )
    assert (done.returncode, done.stderr) == (1, "")


def test_an_output_of_dev_stdout_into_a_pipe_is_the_report(example_repo: Monorepo) -> None:
    """/dev/stdout is a link to a pipe whose name resolves to no file: the report went to a file beside that name,
    which could not be made (exit 2), instead of into the pipe."""
    root = with_findings(example_repo).root
    done = subprocess.run(
        [sys.executable, "-m", "invoke", "audit", "--github", "--output", "/dev/stdout"],
        cwd=root,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
        timeout=120,
    )
    assert done.returncode == 1 and "wrote /dev/stdout: 3 error(s)" in done.stderr, done.stderr
    assert done.stdout.startswith("::error file=services/authentication/migrations/004_add_email_index.sql,")


def test_the_pre_commit_hook_with_a_stdout_that_is_ascii_alone_gets_non_ascii_names_without_a_traceback(
    example_repo: Monorepo,
) -> None:
    """`migratekit-hook audit` prints the audit's text as `invoke audit` does, and stopped at a name its locale
    could not encode."""
    root = example_repo.root
    staged = example_repo.write(
        "services/authentication/migrations/004_names.sql", "-- Migration: 004_names\nCREATE TABLE café (id int);\n"
    )
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    environment = {"PATH": "/usr/bin:/bin", "LC_ALL": "C", "PYTHONCOERCECLOCALE": "0", "PYTHONUTF8": "0"}
    done = subprocess.run(
        [sys.executable, "-m", "migratekit.cli.hook", "audit", str(staged.relative_to(root))],
        cwd=root,
        capture_output=True,
        env=environment,
        timeout=120,
    )
    assert done.returncode == 1 and b"Traceback" not in done.stderr, done.stderr.decode(errors="replace")
    assert b"CREATE TABLE caf\\xe9 without IF NOT EXISTS" in done.stdout


@pytest.mark.parametrize(
    "corrupt",
    [
        {"service": 3},
        {"service": "battles"},
        {"findings": [["MK202", "services/x.sql", "7", "a message"]]},
        {"findings": [["MK202", 5, 7, "a message"]]},
        {"findings": [["MK202", "services/x.sql", 7, None]]},
    ],
    ids=["service-a-number", "service-another", "line-a-string", "path-a-number", "message-none"],
)
def test_a_lint_entry_that_names_another_service_or_holds_bad_findings_is_a_miss(
    example_repo: Monorepo, corrupt: dict[str, object]
) -> None:
    """An entry under its right key whose findings were of another shape was trusted: a service that is not the
    entry's was a KeyError traceback, and a line or a path of another type was reported as it was."""
    root = with_findings(example_repo).root
    cold = example_repo.invoke("audit", "--json", "--no-cache").stdout
    assert example_repo.invoke("audit", "--json").stdout == cold
    for entry in (root / ".migratekit" / "cache" / "lint").glob("*.json"):
        data = json.loads(entry.read_text())
        if data["service"] == "authentication":
            entry.write_text(json.dumps({**data, **corrupt}))
    again = example_repo.invoke("audit", "--json")
    assert (again.returncode, again.stdout) == (1, cold), again.stderr
    assert example_repo.invoke("audit", "--json").stdout == cold  # rewritten


def test_a_sarif_location_is_a_uri_that_leads_to_the_file_whatever_its_name(example_repo: Monorepo) -> None:
    """SARIF's artifactLocation.uri is a URI reference: a path was written as it is, so a '#' began a fragment
    (code scanning put the finding on `004 a`, no file) and a space or a '%' made it no URI at all."""
    from urllib.parse import unquote, urljoin, urlsplit

    root = example_repo.root
    name = "004 a#b%c?d.sql"
    example_repo.write(f"services/authentication/migrations/{name}", "-- Migration: 004_a\nSELECT 1;\n")
    run = json.loads(example_repo.invoke("audit", "--sarif").stdout)["runs"][0]
    base = run["originalUriBaseIds"]["%SRCROOT%"]["uri"]
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in run["results"]}
    (uri,) = [u for u in uris if "004" in u]
    whole = urlsplit(urljoin(base, uri))
    assert (whole.fragment, whole.query) == ("", "")
    assert Path(unquote(whole.path)) == root / "services" / "authentication" / "migrations" / name


@pytest.mark.parametrize("looped", [".migratekit/cache/lint", ".migratekit/cache"])
def test_a_cache_directory_that_is_a_link_to_itself_is_audited_as_without_a_cache(
    example_repo: Monorepo, looped: str
) -> None:
    """A link loop where the cache is: the check that the cache is the checkout's (resolve) raised RuntimeError,
    a traceback after every finding had been made."""
    root = example_repo.root
    (root / looped).parent.mkdir(parents=True, exist_ok=True)
    (root / looped).symlink_to(Path(looped).name)
    cold = example_repo.invoke("audit", "--json", "--no-cache").stdout
    done = example_repo.invoke("audit", "--json")
    assert (done.returncode, done.stdout, done.stderr) == (0, cold, "")


def test_an_output_that_is_a_link_to_itself_is_exit_2_naming_it(example_repo: Monorepo) -> None:
    (example_repo.root / "loop.json").symlink_to("loop.json")
    result = example_repo.invoke("audit", "--json", "--output", "loop.json")
    assert result.returncode == 2 and "--output loop.json: a link that leads back to itself" in result.stderr
    assert "Traceback" not in result.stderr and (example_repo.root / "loop.json").is_symlink()


def test_an_output_on_a_full_disk_leaves_no_directory_made_for_it(
    example_repo: Monorepo, full_disk: Callable[..., Path]
) -> None:
    """The directories --output names were made before the report was written, and stayed when it could not be."""
    reports = full_disk(example_repo.root / "reports")
    filled(reports)
    result = example_repo.invoke("audit", "--json", "--output", "reports/ci/today/audit.json")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "--output reports/ci/today/audit.json: cannot be written (No space left on device)" in result.stderr
    assert sorted(p.name for p in reports.iterdir()) == ["filler"]
    (reports / "filler").unlink()
    assert example_repo.invoke("audit", "--json", "--output", "reports/ci/today/audit.json").returncode == 0
