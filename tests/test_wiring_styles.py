"""Fixture monorepos, one per way real services wire their migrations: tests/wiring/<style>.yml.

Each file is a small monorepo as data (`files`), the languages of its services (`services`), and
every finding `invoke audit --json` gives on it, pinned as [code, service, path, line, message]. A service
whose migrations the fixture does not write gets one clean seed-format migration and its README.
These are the patterns met in real public monorepos; each began as a false finding or a missed
defect, and an empty `findings` says the audit now reads that style right.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from invoke import Context, Exit

from conftest import write_tree
from migratekit.cli.check import audit

STYLES = Path(__file__).parent / "wiring"
FIRST_MIGRATION = (
    "-- Migration: 001_init\n"
    "CREATE TABLE IF NOT EXISTS schema_migrations (version TEXT PRIMARY KEY,"
    " applied_at TIMESTAMPTZ NOT NULL DEFAULT NOW(), checksum TEXT NOT NULL, execution_time_ms INTEGER NOT NULL);\n"
)


def build(root: Path, fixture: dict[str, Any]) -> None:
    """`workspace` (optional) adds top-level keys to workspace.yaml: another services_dir, a migrations default;
    `directories` (optional) names a service's directory where it is not `<services_dir>/<name>`."""
    services, extra = fixture["services"], fixture.get("workspace", {})
    lines = ["version: 1", *([yaml.safe_dump(extra).strip()] if extra else []), "services:"]
    lines += [f"  {name}: {{language: {lang}}}" for name, lang in services.items()]
    tree: dict[str, Any] = {"workspace.yaml": "\n".join(lines) + "\n"}
    base, layout = extra.get("services_dir", "services"), extra.get("defaults", {}).get("migrations", "migrations")
    for name in services:  # the fixture's own migrations directory (db/migrations…), or the layout's with one file
        directory = fixture.get("directories", {}).get(name, f"{base}/{name}")
        written = [
            k.rsplit("/", 1)[0] for k in fixture["files"] if k.startswith(f"{directory}/") and k.endswith(".sql")
        ]
        migrations = min(written, default=f"{directory}/{layout}")
        if not written:
            tree[f"{migrations}/001_init.sql"] = FIRST_MIGRATION
        tree[f"{migrations}/README.md"] = "How to add a migration; how to roll one back.\n"
    write_tree(root, {**tree, **fixture["files"]})


@pytest.mark.parametrize("style", sorted(p.stem for p in STYLES.glob("*.yml")))
def test_the_audit_reads_each_wiring_style(tmp_path: Path, style: str, capsys: pytest.CaptureFixture[str]) -> None:
    fixture = yaml.safe_load((STYLES / f"{style}.yml").read_text())
    build(tmp_path, fixture)
    code = 0
    try:
        audit.body(Context(), root=str(tmp_path), json=True, no_cache=True)  # `invoke audit --json`, in-process
    except Exit as stopped:
        code = stopped.code
    rendered = json.loads(capsys.readouterr().out)
    found = [[f["code"], f["service"], f["path"], f["line"], f["message"]] for f in rendered["findings"]]
    assert found == fixture["findings"]
    assert code == (1 if rendered["errors"] else 0)


def test_there_is_a_fixture_for_every_style_the_readme_lists() -> None:
    assert len(list(STYLES.glob("*.yml"))) >= 12


def test_every_sources_reading_comes_back_whole_from_the_cache(tmp_path: Path) -> None:
    """The wiring cache keeps what was read in each source file as JSON: every source file of every style, Go,
    TypeScript, JavaScript and Python, reads back equal to its reading."""
    from migratekit.checks.wiring.sources import SOURCE_SUFFIXES, Program, read_source

    languages = set()
    for style in sorted(STYLES.glob("*.yml")):
        for name, text in yaml.safe_load(style.read_text())["files"].items():
            path = tmp_path / name
            if path.suffix not in SOURCE_SUFFIXES or not isinstance(text, str):
                continue
            program, _ = read_source(path, text)
            if program is not None:
                assert Program.from_json(path, json.loads(json.dumps(program.as_json()))) == program, name
                languages.add(program.language)
    assert {"go", "typescript", "javascript", "python"} <= languages, languages


@pytest.mark.parametrize("separator", ["\x0c", "\u2028", "\x85", "\x1c"])
def test_a_python_comment_after_a_form_feed_or_a_unicode_line_separator_is_blanked_where_it_is(
    separator: str,
) -> None:
    """Python's tokenizer ends lines at \\n alone; str.splitlines also at a form feed (an Emacs page break, common
    in Python files), U+2028 and others: rows counted that way put every later comment's span on other bytes,
    blanking code and leaving the comment (an INSERT INTO a history table in it was taken for a runner's)."""
    from migratekit.checks.wiring.sources import code_only

    comment, after = "# INSERT INTO schema_migrations (version) é", "# ü"
    text = f'x = "{separator}é"\n{separator}\n{comment}\ny = "INSERT"  {after}\n'
    blank, blank_after = " " * len(comment.encode()), " " * len(after.encode())  # a comment's bytes, blanked
    assert code_only(Path("app.py"), text) == f'x = "{separator}é"\n{separator}\n{blank}\ny = "INSERT"  {blank_after}\n'


def test_a_go_embed_of_other_files_is_no_compiled_in_migrations_in_a_checkout_under_a_migrations_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`//go:embed templates/*` in a file inside migrations/ embeds them; elsewhere it embeds no SQL. Which
    directory a file is in was read from every part of its absolute path, so a repository checked out under
    ~/migrations/ (or in a service named migrations) took each such embed for compiled-in migrations: MK403 went."""
    main = (
        'package main\n\nimport "embed"\n\n//go:embed templates/*\nvar pages embed.FS\n\nfunc main() {\n'
        '\tm, err := migrate.New("file:///app/migrations", os.Getenv("DATABASE_URL"))\n'
        "\tif err != nil {\n\t\tlog.Fatal(err)\n\t}\n\tif err := m.Up(); err != nil {\n\t\tlog.Fatal(err)\n\t}\n"
        '\tlog.Fatal(http.ListenAndServe(":8080", nil))\n}\n'
    )
    dockerfile = (
        "FROM golang:1.23 AS build\nWORKDIR /src\nCOPY . .\nRUN go build -o /out/web .\n"
        'FROM gcr.io/distroless/static\nCOPY --from=build /out/web /web\nENTRYPOINT ["/web"]\n'
    )
    files = {
        "services/web/main.go": main,
        "services/web/templates/a.html": "hi\n",
        "services/web/Dockerfile": dockerfile,
    }
    found = {}
    for where in ("plain/repo", "migrations/repo"):
        root = tmp_path / where
        build(root, {"services": {"web": "go"}, "files": files})
        with contextlib.suppress(Exit):  # MK403 is an error
            audit.body(Context(), root=str(root), json=True, no_cache=True)
        found[where] = [(f["code"], f["line"]) for f in json.loads(capsys.readouterr().out)["findings"]]
    assert found["plain/repo"] == [("MK403", 5)]
    assert found["migrations/repo"] == found["plain/repo"]


def test_a_file_of_deeply_nested_calls_is_read_in_time() -> None:
    """Each call's scope and handler are found by climbing its parents, and tree-sitter finds a node's parent by
    descending from the root: 800 nested calls (a minified bundle's style) took 23 s, 3000 some twenty minutes,
    a cold audit that seemed to hang. Each parent is now found once a file."""
    import time

    from migratekit.checks.wiring.sources import read_source

    text = "f(" * 800 + ")" * 800 + "\n"
    started = time.perf_counter()
    program, _ = read_source(Path("bundle.js"), text)
    assert program is not None and len(program.calls) == 800
    assert time.perf_counter() - started < 5
