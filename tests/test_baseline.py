"""The findings baseline and per-file ignores: a monorepo with history accepts what its applied files hold
(they cannot be edited: their checksums are recorded) and fails only on what is new."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import Monorepo, filled, write_tree

INIT = """\
-- Migration: 001_init
CREATE TABLE IF NOT EXISTS schema_migrations (version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE accounts (id bigint);
CREATE INDEX accounts_id ON accounts (id);
"""
MORE = "-- Migration: 00{n}_more\nCREATE TABLE more_{n} (id bigint);\nCREATE INDEX more_{n}_id ON more_{n} (id);\n"
OTHER = "-- Migration: 001_init\nCREATE TABLE IF NOT EXISTS t (id bigint);\n"


@pytest.fixture
def adopted(tmp_path: Path) -> Monorepo:
    """Two services whose applied files break rules, as a monorepo that already has history does."""
    root = tmp_path / "repo"
    write_tree(
        root,
        {
            "tasks.py": "from migratekit.tasks import ns\n",
            "services/a/migrations/001_init.sql": INIT,
            "services/b/migrations/001_init.sql": OTHER,
        },
    )
    return Monorepo(root, {})


def findings(repo: Monorepo, *args: str) -> tuple[int, list[tuple[str, str | None, int | None]]]:
    done = repo.invoke("audit", "--json", *args)
    data = json.loads(done.stdout)
    return done.returncode, [(f["code"], f["path"], f["line"]) for f in data["findings"]]


def test_an_adopted_monorepo_audits_clean_against_its_baseline_and_a_new_finding_fails(adopted: Monorepo) -> None:
    assert adopted.invoke("audit").returncode == 1
    written = adopted.invoke("audit", "--write-baseline", "migratekit-baseline.json")
    assert written.returncode == 0, written.stderr
    assert "wrote migratekit-baseline.json: 9 finding(s) of 2 service(s) accepted" in written.stderr
    assert "add `baseline: migratekit-baseline.json` to workspace.yaml" in written.stderr
    entries = json.loads((adopted.root / "migratekit-baseline.json").read_text())["findings"]
    assert {(e["service"], e["code"]) for e in entries} >= {("a", "MK201"), ("a", "MK202"), ("b", "MK111")}
    assert all("line" not in e for e in entries)  # moving a statement must not bring its finding back

    clean = adopted.invoke("audit", "--baseline", "migratekit-baseline.json")
    assert clean.returncode == 0, clean.stdout
    assert clean.stdout.splitlines()[-2:] == [
        "2 service(s) audited: 0 error(s), 0 warning(s)",
        "9 accepted finding(s) not listed (baseline migratekit-baseline.json)",
    ]

    adopted.write("services/a/migrations/002_more.sql", "-- Migration: 002_more\nCREATE TABLE more (id bigint);\n")
    code, found = findings(adopted, "--baseline", "migratekit-baseline.json")
    assert (code, found) == (1, [("MK201", "services/a/migrations/002_more.sql", 2)])


def test_moving_lines_or_editing_another_file_keeps_findings_accepted(adopted: Monorepo) -> None:
    adopted.invoke("audit", "--write-baseline", "base.json")
    init = adopted.root / "services/a/migrations/001_init.sql"
    init.write_text(INIT.replace("-- Migration: 001_init\n", "-- Migration: 001_init\n-- a note\n\n\n"))
    other = adopted.root / "services/b/migrations/001_init.sql"
    other.write_text(OTHER + "CREATE TABLE IF NOT EXISTS u (id bigint);\n")
    assert findings(adopted, "--baseline", "base.json") == (0, [])


def test_a_second_identical_finding_in_the_same_file_is_new(adopted: Monorepo) -> None:
    adopted.invoke("audit", "--write-baseline", "base.json")
    init = adopted.root / "services/a/migrations/001_init.sql"
    init.write_text(INIT + "CREATE INDEX accounts_id ON accounts (id);\n")
    assert findings(adopted, "--baseline", "base.json") == (1, [("MK202", "services/a/migrations/001_init.sql", 5)])


def test_a_fixed_finding_is_counted_so_the_baseline_can_shrink(adopted: Monorepo) -> None:
    adopted.invoke("audit", "--write-baseline", "base.json")
    init = adopted.root / "services/a/migrations/001_init.sql"
    init.write_text(INIT.replace("CREATE TABLE accounts", "CREATE TABLE IF NOT EXISTS accounts"))
    done = adopted.invoke("audit", "--baseline", "base.json")
    assert done.returncode == 0
    assert done.stdout.splitlines()[-1] == (
        "8 accepted finding(s) not listed (baseline base.json); 1 accepted before are fixed: write it again to "
        "shrink it"
    )
    data = json.loads(adopted.invoke("audit", "--json", "--baseline", "base.json").stdout)
    assert (data["baseline"], data["accepted"], data["fixed"]) == ("base.json", 8, 1)
    adopted.invoke("audit", "--write-baseline", "base.json")
    assert len(json.loads((adopted.root / "base.json").read_text())["findings"]) == 8


def test_workspace_yaml_names_the_baseline_for_every_audit_and_all_findings_shows_everything(
    adopted: Monorepo,
) -> None:
    adopted.invoke("audit", "--write-baseline", "audit/baseline.json")
    adopted.write("workspace.yaml", "version: 1\nbaseline: audit/baseline.json\nservices: {a: {}, b: {}}\n")
    assert findings(adopted) == (0, [])
    code, everything = findings(adopted, "--all-findings")
    assert code == 1 and len(everything) == 9
    both = adopted.invoke("audit", "--baseline", "audit/baseline.json", "--all-findings")
    assert both.returncode == 2 and "--baseline and --all-findings contradict each other" in both.stderr


def test_baselining_one_service_keeps_the_others_entries(adopted: Monorepo) -> None:
    adopted.invoke("audit", "--write-baseline", "base.json")
    (adopted.root / "services/b/migrations/001_init.sql").write_text(OTHER.replace("IF NOT EXISTS ", ""))
    adopted.invoke("audit", "--service", "a", "--write-baseline", "base.json")
    entries = json.loads((adopted.root / "base.json").read_text())["findings"]
    assert sum(e["count"] for e in entries if e["service"] == "b") == 4  # b's as first written, not re-read
    code, found = findings(adopted, "--baseline", "base.json")
    assert code == 1 and found == [("MK201", "services/b/migrations/001_init.sql", 2)]


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (None, "no such baseline; write one with `invoke audit --write-baseline"),
        ("{not json", "not a migratekit baseline (Expecting property name"),
        ('{"version": 9, "findings": []}', "not a migratekit baseline (version 1 with a findings list)"),
        ("[1, 2]", "not a migratekit baseline (version 1 with a findings list)"),
        ('{"version": 1, "findings": [{"code": "MK201"}]}', "findings[0] needs service, path, code, message"),
        (
            '{"version": 1, "findings": [{"service": "a", "path": null, "code": "MK201", "message": "m", "count": 0}]}',
            "findings[0] needs service, path, code, message and a positive count",
        ),
        (
            '{"version": 1, "findings": [{"service": "a", "path": null, "code": "MK201", "message": "m", '
            '"count": true}]}',
            "a positive count",
        ),
    ],
)
def test_a_bad_baseline_is_exit_2_naming_the_file(adopted: Monorepo, content: str | None, says: str) -> None:
    if content is not None:
        (adopted.root / "base.json").write_text(content)
    done = adopted.invoke("audit", "--baseline", "base.json")
    assert done.returncode == 2, done.stdout
    assert "base.json: " in done.stderr and says in done.stderr
    assert done.stdout == ""


def test_a_baseline_outside_the_repository_is_refused_by_line(adopted: Monorepo) -> None:
    adopted.write("workspace.yaml", "version: 1\nbaseline: ../elsewhere.json\n")
    done = adopted.invoke("audit")
    assert done.returncode == 2
    assert "workspace.yaml:2" in done.stderr and "points outside the repository" in done.stderr


def test_per_file_ignores_silence_only_the_files_they_name(adopted: Monorepo) -> None:
    adopted.write(
        "workspace.yaml",
        """
        version: 1
        services:
          a:
            ignore:
              - MK401
              - {files: "migrations/001_*.sql", rules: [MK201]}
              - {files: "./migrations/001_*.sql", rules: [MK202]}
          b: {}
        """,
    )
    adopted.write("services/a/migrations/002_more.sql", "-- Migration: 002_more\nCREATE TABLE more (id bigint);\n")
    _, found = findings(adopted, "--service", "a")
    assert ("MK201", "services/a/migrations/002_more.sql", 2) in found
    assert not [f for f in found if f[1] == "services/a/migrations/001_init.sql" and f[0] in ("MK201", "MK202")]
    assert "MK401" not in {f[0] for f in found}


def test_a_per_file_ignore_that_silences_nothing_is_mk503_naming_its_glob(adopted: Monorepo) -> None:
    adopted.write(
        "workspace.yaml",
        'version: 1\nservices:\n  a:\n    ignore: [{files: "migrations/0*.sql", rules: [MK201, MK302]}]\n  b: {}\n',
    )
    done = adopted.invoke("audit", "--service", "a")
    assert "ignore MK302 in migrations/0*.sql for a silences nothing" in done.stdout
    assert "ignore MK201 in" not in done.stdout


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ("[{files: '*.sql'}]", "must be a non-empty list of rule codes"),
        ("[{files: '*.sql', rules: []}]", "must be a non-empty list of rule codes"),
        ("[{files: '*.sql', rules: [nope]}]", "must be a non-empty list of rule codes"),
        ("[{rules: [MK201]}]", "must be a non-empty string"),
        ("[{files: '../x/*.sql', rules: [MK201]}]", "a glob relative to the service's directory"),
        ("[{files: '*.sql', rules: [MK201], why: x}]", "unknown key"),
        ("[MK2]", "or of {files: GLOB, rules: [MK201]}"),
        ("MK201", "must be a list of rule codes"),
    ],
)
def test_a_malformed_ignore_is_exit_2_naming_its_line(adopted: Monorepo, entry: str, says: str) -> None:
    adopted.write("workspace.yaml", f"version: 1\nservices:\n  a:\n    ignore: {entry}\n")
    done = adopted.invoke("audit")
    assert done.returncode == 2, done.stdout
    assert "workspace.yaml:4" in done.stderr and says in done.stderr


def test_init_on_a_monorepo_with_history_offers_the_baseline_and_writes_it(adopted: Monorepo) -> None:
    offered = adopted.invoke("init")
    assert offered.returncode == 0, offered.stderr
    assert offered.stdout.splitlines()[-1] == (
        "the audit finds 4 error(s) and 5 warning(s) in the files already here; to accept them (files already "
        "applied cannot be edited) and fail only on new ones: invoke init --update --write-baseline "
        "migratekit-baseline.json"
    )
    assert not (adopted.root / "migratekit-baseline.json").exists()
    (adopted.root / "workspace.yaml").write_text(
        (adopted.root / "workspace.yaml").read_text() + "# kept: a comment of the team's\n"
    )
    taken = adopted.invoke("init", "--update", "--write-baseline", "migratekit-baseline.json")
    assert taken.returncode == 0, taken.stderr
    assert taken.stdout.splitlines()[-1] == (
        "migratekit-baseline.json: accepted 9 finding(s); workspace.yaml names it as the audit's baseline"
    )
    text = (adopted.root / "workspace.yaml").read_text()
    assert "baseline: migratekit-baseline.json\n" in text and "# kept: a comment of the team's" in text
    assert adopted.invoke("audit").returncode == 0


def test_init_with_a_baseline_outside_the_repository_changes_nothing(adopted: Monorepo) -> None:
    done = adopted.invoke("init", "--write-baseline", "../outside.json")
    assert done.returncode == 2 and "--write-baseline ../outside.json: outside the repository" in done.stderr
    assert not (adopted.root / "workspace.yaml").exists()


def test_a_baseline_on_a_full_disk_leaves_no_directory_made_for_it(
    adopted: Monorepo, full_disk: Callable[..., Path]
) -> None:
    """The directories --write-baseline names were made first, and stayed when the baseline could not be written."""
    kept = full_disk(adopted.root / "ci")
    filled(kept)
    done = adopted.invoke("audit", "--write-baseline", "ci/deep/base.json")
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "--write-baseline ci/deep/base.json: cannot be written (No space left on device)" in done.stderr
    assert sorted(p.name for p in kept.iterdir()) == ["filler"]
    (kept / "filler").unlink()
    assert adopted.invoke("audit", "--write-baseline", "ci/deep/base.json").returncode == 0


@pytest.mark.parametrize("update", [False, True], ids=["init", "init --update"])
def test_init_whose_baseline_cannot_be_written_leaves_workspace_yaml_as_it_was(
    adopted: Monorepo, full_disk: Callable[..., Path], update: bool
) -> None:
    """workspace.yaml was written, and "declared a, b" said, before the baseline was: a baseline that could not be
    written (a full disk) was exit 2 with workspace.yaml changed all the same, and `init --write-baseline` again
    then refused, workspace.yaml being there."""
    if update:
        adopted.write("workspace.yaml", "version: 1\nservices:\n  a: {}\n")
    before = (adopted.root / "workspace.yaml").read_bytes() if update else None
    kept = full_disk(adopted.root / "ci")
    filled(kept)
    done = adopted.invoke("init", *(["--update"] if update else []), "--write-baseline", "ci/base.json")
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "--write-baseline ci/base.json: cannot be written (No space left on device)" in done.stderr, done.stderr
    assert "workspace.yaml is as it was" in done.stderr and "declared" not in done.stdout, done.stdout
    if update:
        assert (adopted.root / "workspace.yaml").read_bytes() == before
    else:
        assert not (adopted.root / "workspace.yaml").exists()
    assert not [p.name for p in adopted.root.iterdir() if p.name.endswith(".tmp")]
    assert sorted(p.name for p in kept.iterdir()) == ["filler"]
    (kept / "filler").unlink()
    again = adopted.invoke("init", *(["--update"] if update else []), "--write-baseline", "ci/base.json")
    assert again.returncode == 0, again.stderr
    assert "baseline: ci/base.json" in (adopted.root / "workspace.yaml").read_text()


def test_init_whose_baseline_cannot_be_named_in_workspace_yaml_removes_the_baseline_and_workspace_yaml(
    adopted: Monorepo, full_disk: Callable[..., Path]
) -> None:
    """workspace.yaml (a link into a disk with one page free) is written once, and cannot be written again to
    name the baseline: the baseline written meanwhile went on being there, and workspace.yaml without its name."""
    conf = full_disk(adopted.root / "conf")
    (adopted.root / "workspace.yaml").symlink_to("conf/workspace.yaml")
    filled(conf, keep=4096)
    done = adopted.invoke("init", "--write-baseline", "base.json")
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "workspace.yaml: cannot be written (No space left on device)" in done.stderr, done.stderr
    assert "declared" not in done.stdout and not (adopted.root / "base.json").exists()
    assert sorted(p.name for p in conf.iterdir()) == ["filler"]
    assert (adopted.root / "workspace.yaml").is_symlink()
    (conf / "filler").unlink()
    assert adopted.invoke("init", "--write-baseline", "base.json").returncode == 0
    assert "baseline: base.json" in (conf / "workspace.yaml").read_text()


def test_init_on_a_new_monorepo_offers_nothing(tmp_path: Path) -> None:
    root = write_tree(
        tmp_path / "new", {"tasks.py": "from migratekit.tasks import ns\n", "services/a/migrations/.keep": ""}
    )
    (root / "services/a/migrations/.keep").unlink()
    done = Monorepo(root, {}).invoke("init")
    assert done.returncode == 0 and "accept" not in done.stdout


def test_a_missing_baseline_named_in_workspace_yaml_names_its_line_and_the_way_out(adopted: Monorepo) -> None:
    adopted.write("workspace.yaml", "version: 1\nservices: {a: {}, b: {}}\nbaseline: audit/baseline.json\n")
    done = adopted.invoke("audit")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.strip() == (
        "migratekit: workspace.yaml:3: baseline: audit/baseline.json does not exist: write it with "
        "`invoke audit --write-baseline audit/baseline.json` (and commit it), or remove the key"
    )
    written = adopted.invoke("audit", "--write-baseline", "audit/baseline.json")  # the way out works
    assert written.returncode == 0 and "add `baseline:" not in written.stderr
    assert adopted.invoke("audit").returncode == 0


@pytest.mark.parametrize(
    ("target", "says"),
    [
        ("../outside.json", "--write-baseline ../outside.json: outside the repository; keep the baseline in it"),
        ("services", "--write-baseline services: a directory; name a file"),
        ("tasks.py", "tasks.py exists and is not a migratekit baseline: not overwritten; name another file"),
        ("tasks.py/base.json", "--write-baseline tasks.py/base.json: cannot be written: tasks.py is not a directory"),
    ],
)
def test_a_baseline_that_cannot_be_written_is_exit_2_and_nothing_changes(
    adopted: Monorepo, target: str, says: str
) -> None:
    before = sorted(p.relative_to(adopted.root.parent) for p in adopted.root.parent.rglob("*"))
    for command in (["audit", "--write-baseline", target], ["init", "--update", "--write-baseline", target]):
        done = adopted.invoke(*command)
        assert done.returncode == 2, done.stdout + done.stderr
        assert says in done.stderr and "Traceback" not in done.stderr
        assert sorted(p.relative_to(adopted.root.parent) for p in adopted.root.parent.rglob("*")) == before
    assert (adopted.root / "tasks.py").read_text() == "from migratekit.tasks import ns\n"


def test_a_baseline_outside_the_repository_is_refused_as_a_flag_too(adopted: Monorepo) -> None:
    adopted.invoke("audit", "--write-baseline", "base.json")
    (adopted.root.parent / "elsewhere.json").write_text((adopted.root / "base.json").read_text())
    done = adopted.invoke("audit", "--baseline", "../elsewhere.json")
    assert (done.returncode, done.stdout) == (2, "")
    assert "--baseline ../elsewhere.json: outside the repository; keep the baseline in it" in done.stderr
    (adopted.root.parent / "elsewhere.json").unlink()


def test_audit_output_to_a_file_says_how_many_the_baseline_accepted(adopted: Monorepo) -> None:
    adopted.invoke("audit", "--write-baseline", "base.json")
    done = adopted.invoke("audit", "--baseline", "base.json", "--format", "sarif", "--output", "audit.sarif")
    assert done.returncode == 0
    assert done.stderr == "wrote audit.sarif: 0 error(s), 0 warning(s); 9 accepted by the baseline base.json\n"
    assert json.loads((adopted.root / "audit.sarif").read_text())["runs"][0]["results"] == []


def test_a_renamed_file_brings_its_findings_back_as_new(adopted: Monorepo) -> None:
    """A finding is keyed by its file: a migration renamed is another version to every runner (it runs again),
    so what the baseline accepted in the old name is new in the new one, and the old entries count as fixed."""
    adopted.invoke("audit", "--write-baseline", "base.json")
    init = adopted.root / "services/a/migrations/001_init.sql"
    init.rename(init.with_name("001_initial.sql"))
    code, found = findings(adopted, "--baseline", "base.json")
    assert code == 1 and {(c, p) for c, p, _ in found} == {
        ("MK106", "services/a/migrations/001_initial.sql"),
        ("MK201", "services/a/migrations/001_initial.sql"),
        ("MK202", "services/a/migrations/001_initial.sql"),
    }
    assert adopted.invoke("audit", "--baseline", "base.json").stdout.splitlines()[-1] == (
        "7 accepted finding(s) not listed (baseline base.json); 2 accepted before are fixed: write it again to "
        "shrink it"
    )


@pytest.mark.parametrize("flag", ["--baseline", "--write-baseline"])
def test_a_baseline_path_holding_a_fifo_is_exit_2_not_an_audit_that_waits_for_good(
    adopted: Monorepo, flag: str
) -> None:
    """The baseline was read with read_text, which waits for a writer for good on a FIFO at its path."""
    import os
    import subprocess
    import sys

    os.mkfifo(adopted.root / "base.json")
    done = subprocess.run(
        [sys.executable, "-m", "invoke", "audit", flag, "base.json"],
        cwd=adopted.root,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
        timeout=30,
    )
    says = "base.json: not a regular file" if flag == "--baseline" else "base.json exists and is not a migratekit"
    assert done.returncode == 2 and says in done.stderr, done.stderr
    assert (adopted.root / "base.json").is_fifo()


@pytest.mark.parametrize("flag", ["--baseline", "--write-baseline"])
def test_a_baseline_path_that_is_a_link_to_itself_is_exit_2_naming_it(adopted: Monorepo, flag: str) -> None:
    """Path.resolve raises RuntimeError on a link loop: a traceback before anything was audited."""
    (adopted.root / "loop.json").symlink_to("loop.json")
    done = adopted.invoke("audit", flag, "loop.json")
    assert done.returncode == 2 and f"{flag} loop.json: a link that leads back to itself" in done.stderr, done.stderr
    assert (adopted.root / "loop.json").is_symlink()


def test_a_workspace_baseline_that_is_a_link_to_itself_is_exit_2_naming_the_line(adopted: Monorepo) -> None:
    (adopted.root / "loop.json").symlink_to("loop.json")
    (adopted.root / "workspace.yaml").write_text("version: 1\nbaseline: loop.json\nservices:\n  a: {}\n  b: {}\n")
    done = adopted.invoke("audit")
    assert done.returncode == 2 and "workspace.yaml:2" in done.stderr and "leads back to itself" in done.stderr, (
        done.stderr
    )


def test_a_baseline_written_again_on_a_full_disk_is_exit_2_and_the_old_one_is_as_it_was(
    adopted: Monorepo, full_disk: Callable[..., Path]
) -> None:
    """The baseline was written in place: a disk that filled part-way left it truncated, and every later audit
    exit 2 on a baseline that is not JSON. It is written beside and renamed: the old one stays whole."""
    kept = full_disk(adopted.root / "ci")
    assert adopted.invoke("audit", "--write-baseline", "ci/base.json").returncode == 0
    before = (kept / "base.json").read_bytes()
    write_tree(adopted.root, {f"services/a/migrations/00{n}_more.sql": MORE.format(n=n) for n in range(2, 9)})
    filled(kept)
    done = adopted.invoke("audit", "--write-baseline", "ci/base.json")
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr == (
        "migratekit: --write-baseline ci/base.json: cannot be written (No space left on device); the file there is "
        "as it was\n"
    )
    assert (kept / "base.json").read_bytes() == before
    assert sorted(p.name for p in kept.iterdir()) == ["base.json", "filler"]  # no staging file left
    (kept / "filler").unlink()
    assert adopted.invoke("audit", "--write-baseline", "ci/base.json").returncode == 0
    assert len((kept / "base.json").read_bytes()) > len(before)
    assert adopted.invoke("audit", "--baseline", "ci/base.json").returncode == 0
