"""`invoke audit` on the example monorepo, a broken copy of it, and the wiring styles real monorepos use."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conftest import REPO, Monorepo, write_tree
from migratekit.checks.run import audit
from migratekit.model.workspace_file import load_workspace


def invoke(root: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=root,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "200"},
        timeout=timeout,
    )


def codes(root: Path, service: str | None = None) -> list[tuple[str, str | None, int | None]]:
    report = audit(load_workspace(root), [service] if service else None)
    return [(f.code, f.path, f.line) for f in report.findings]


def test_the_example_monorepo_audits_clean_in_every_format(example_repo: Monorepo) -> None:
    root = example_repo.root
    human = invoke(root, "audit")
    assert human.returncode == 0, human.stdout + human.stderr
    assert human.stdout.strip().endswith("3 service(s) audited: 0 error(s), 0 warning(s)")
    data = json.loads(invoke(root, "audit", "--json").stdout)
    assert (data["errors"], data["warnings"], data["findings"]) == (0, 0, [])
    sarif = json.loads(invoke(root, "audit", "--sarif").stdout)
    assert sarif["version"] == "2.1.0" and sarif["runs"][0]["results"] == []
    assert {r["id"] for r in sarif["runs"][0]["tool"]["driver"]["rules"]} >= {"MK101", "MK201", "MK302", "MK403"}


def test_a_broken_copy_gets_exactly_the_expected_codes(example_repo: Monorepo) -> None:
    root = example_repo.root
    auth = root / "services" / "authentication"
    example_repo.write(
        "services/authentication/migrations/004_add_email_index.sql",
        """
        -- Migration: 004_add_email_index
        CREATE INDEX idx_accounts_email ON accounts (email);
        INSERT INTO accounts (email) VALUES ('admin@example.com');
        """,
    )
    dockerfile = (auth / "Dockerfile").read_text().replace("COPY --from=builder /app/migrations ./migrations\n", "")
    (auth / "Dockerfile").write_text(dockerfile)
    result = invoke(root, "audit", "--json")
    assert result.returncode == 1
    found = [(f["code"], f["path"], f["line"]) for f in json.loads(result.stdout)["findings"]]
    migration = "services/authentication/migrations/004_add_email_index.sql"
    assert found == [
        ("MK403", "services/authentication/Dockerfile", 15),
        ("MK202", migration, 2),
        ("MK302", migration, 2),
        ("MK209", migration, 3),
    ]
    human = invoke(root, "audit").stdout
    assert "MK403 error services/authentication/Dockerfile:15: the final stage has no COPY of migrations/" in human
    assert "fix: COPY migrations into the final stage" in human
    assert human.strip().endswith("3 service(s) audited: 4 error(s), 0 warning(s)")
    github = invoke(root, "audit", "--github").stdout.splitlines()
    assert github[0].startswith("::error file=services/authentication/Dockerfile,line=15,title=MK403::")
    sarif = json.loads(invoke(root, "audit", "--sarif").stdout)["runs"][0]
    assert [(r["ruleId"], r["locations"][0]["physicalLocation"]["region"]["startLine"]) for r in sarif["results"]] == [
        ("MK403", 15),
        ("MK202", 2),
        ("MK302", 2),
        ("MK209", 3),
    ]


def test_audit_of_one_service_and_of_an_unknown_one(example_repo: Monorepo) -> None:
    root = example_repo.root
    assert (
        invoke(root, "audit", "--service", "battles")
        .stdout.strip()
        .endswith("1 service(s) audited: 0 error(s), 0 warning(s)")
    )
    unknown = invoke(root, "audit", "--service", "ghost")
    assert unknown.returncode == 2 and "unknown service 'ghost'" in unknown.stderr


def test_audit_root_works_on_another_checkout_without_workspace_yaml(example_repo: Monorepo) -> None:
    root = example_repo.root
    (root / "workspace.yaml").unlink()
    result = subprocess.run(
        [sys.executable, "-m", "invoke", "-r", str(REPO), "audit", "--root", str(root), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    findings = json.loads(result.stdout)["findings"]
    # enrichment's tracking table is declared only in workspace.yaml: without it, 001_init no longer creates it;
    # and its database: enrichment's migrations use battles' tables, which are now in another database (MK504).
    assert [(f["code"], f["service"]) for f in findings] == [
        ("MK111", "enrichment"),
        ("MK504", "enrichment"),
        ("MK504", "enrichment"),
    ]


# --- wiring styles -------------------------------------------------------------------------

INIT = """
-- Migration: 001_init
CREATE TABLE IF NOT EXISTS schema_migrations (version TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
  checksum TEXT NOT NULL, execution_time_ms INTEGER NOT NULL);
"""


def service(root: Path, name: str = "svc", **files: str) -> Path:
    """A service with a clean 001_init and README plus `files` (`__` stands for `/` in their names)."""
    base = {"migrations/001_init.sql": INIT, "migrations/README.md": "how to add; how to roll back\n"}
    tree = {
        f"services/{name}/{k.replace('__', '/')}": textwrap.dedent(v).lstrip() for k, v in {**base, **files}.items()
    }
    return write_tree(root, tree)


PY_MAIN = """
import sys
from migratekit import MigrationFailed, run_migrations

def main():
    try:
        run_migrations(URL, "migrations")
    except MigrationFailed:
        return 1
    serve_forever_app()
    server.serve_forever()

sys.exit(main())
"""
PY_DOCKERFILE = """
FROM python:3.11-slim
WORKDIR /app
COPY . .
CMD ["python", "main.py"]
"""


@pytest.mark.parametrize(
    ("style", "files"),
    [
        ("python runner, whole service copied", {"main.py": PY_MAIN, "Dockerfile": PY_DOCKERFILE}),
        (
            "entrypoint script migrates then execs",
            {
                "docker-entrypoint.sh": "#!/bin/sh\nset -eu\npython -m migratekit migrate --dir /app/migrations\n"
                "exec gunicorn app:wsgi\n",
                "Dockerfile": "FROM python:3.11-slim\nWORKDIR /app\nCOPY migrations /app/migrations\n"
                'COPY docker-entrypoint.sh app.py ./\nENTRYPOINT ["./docker-entrypoint.sh"]\n',
                "app.py": "wsgi = None\n",
            },
        ),
        (
            "migrate && start command",
            {
                "dist__index.js": "// built\n",
                "Dockerfile": "FROM node:22-alpine\nWORKDIR /srv\nCOPY migrations/*.sql ./migrations/\n"
                "COPY dist ./dist\n"
                'CMD ["sh", "-c", "npx node-pg-migrate up && node dist/index.js"]\n',
            },
        ),
        (
            "kubernetes init container with the same image",
            {
                "Dockerfile": 'FROM node:22-alpine\nWORKDIR /app\nCOPY . .\nCMD ["node", "dist/index.js"]\n',
                "k8s__deployment.yaml": """
                apiVersion: apps/v1
                kind: Deployment
                metadata: {name: svc}
                spec:
                  template:
                    spec:
                      initContainers:
                        - {name: migrate, image: "acme/svc:v3", command: [node, dist/migrate.js]}
                      containers:
                        - {name: svc, image: "acme/svc:v3"}
                """,
            },
        ),
        (
            "go binary with embedded migrations",
            {
                "main.go": "package main\n\n//go:embed migrations/*.sql\nvar fs embed.FS\n\nfunc main() {\n"
                '\tm, _ := migrate.NewWithInstance("iofs", d, "pg", drv)\n'
                '\tif err := m.Up(); err != nil { log.Fatal(err) }\n\thttp.ListenAndServe(":8080", nil)\n}\n',
                "Dockerfile": "FROM golang:1.23 AS build\nWORKDIR /src\nCOPY . .\nRUN go build -o /svc\n"
                'FROM gcr.io/distroless/base\nCOPY --from=build /svc /svc\nCMD ["/svc"]\n',
            },
        ),
        (
            "shared runner package, root build context",
            {
                "src__index.ts": "import { runMigrations } from '@acme/db-migrate';\n"
                "async function start() {\n  try {\n    await runMigrations(db);\n"
                "    await app.listen({ port: 3000 });\n  } catch (e) {\n    process.exit(1);\n  }\n}\n",
                "Dockerfile": "# docker build -f services/svc/Dockerfile .\n"
                "FROM node:22-alpine AS build\nWORKDIR /app\n"
                "COPY services/svc/ ./\nRUN npm ci && npm run build\nFROM node:22-alpine\nWORKDIR /app\n"
                "COPY --from=build /app/dist ./dist\nCOPY --from=build /app/migrations ./migrations\n",
            },
        ),
    ],
)
def test_wiring_styles_that_pass(tmp_path: Path, style: str, files: dict[str, str]) -> None:
    assert codes(service(tmp_path, **files)) == [], style


SEED_INDEX = (REPO / "services/authentication/src/index.ts").read_text()
SEED_RUNNER = (REPO / "services/authentication/src/database/migrate.ts").read_text()
SEED_DOCKERFILE = (REPO / "services/authentication/Dockerfile").read_text()


def seed_service(root: Path, **overrides: str) -> Path:
    files = {
        "src__index.ts": SEED_INDEX,
        "src__database__migrate.ts": SEED_RUNNER,
        "Dockerfile": SEED_DOCKERFILE,
        "package.json": "{}\n",  # what the Dockerfile copies must be in the build context (MK410)
        "tsconfig.json": "{}\n",
    }
    return service(root, **{**files, **overrides})


def test_the_seed_wiring_passes(tmp_path: Path) -> None:
    assert codes(seed_service(tmp_path)) == []


@pytest.mark.parametrize(
    ("code", "overrides", "where"),
    [
        (
            "MK401",
            {"src__database__migrate.ts": "export {}\n", "src__index.ts": "app.listen({ port: 3000 });\n"},
            ("services/svc", None),
        ),
        ("MK402", {"Dockerfile": None}, ("services/svc/Dockerfile", None)),
        (
            "MK403",
            {"Dockerfile": SEED_DOCKERFILE.replace("COPY --from=builder /app/migrations ./migrations\n", "")},
            ("services/svc/Dockerfile", 15),
        ),
        ("MK404", {".dockerignore": "node_modules\n*.sql\n"}, ("services/svc/.dockerignore", 2)),
        (
            "MK405",
            {"src__database__migrate.ts": SEED_RUNNER.replace("'../../migrations'", "'../migrations'")},
            ("services/svc/src/database/migrate.ts", None),
        ),
        (
            "MK406",
            {
                "src__index.ts": SEED_INDEX.replace("    await runMigrations(db);\n", "").replace(
                    "logger.info('Server started');", "logger.info('Server started');\n    await runMigrations(db);"
                )
            },
            ("services/svc/src/index.ts", 14),
        ),
        (
            "MK407",
            {"src__index.ts": SEED_INDEX.replace("process.exit(1); // Exit if migrations fail", "")},
            ("services/svc/src/index.ts", 12),
        ),
        (
            "MK408",
            {
                "src__index.ts": SEED_INDEX.replace(
                    "await runMigrations(db);", "if (!process.env.SKIP_MIGRATIONS) await runMigrations(db);"
                )
            },
            ("services/svc/src/index.ts", 12),
        ),
    ],
)
def test_wiring_rules_fail_where_the_pattern_breaks(
    tmp_path: Path, code: str, overrides: dict[str, str | None], where: tuple[str, int | None]
) -> None:
    root = seed_service(tmp_path, **{k: v for k, v in overrides.items() if v is not None})
    for relative, text in overrides.items():
        if text is None:
            (root / "services" / "svc" / relative.replace("__", "/")).unlink()
    found = codes(root)
    assert [c for c, _, _ in found] == [code], found
    path, line = where
    assert found[0][1] == path
    if line is not None:
        assert found[0][2] == line


# Each rule's own failing and passing cases are in tests/rules/<CODE>.yml (test_rules.py).


def test_changed_since_checks_history(tmp_path: Path) -> None:
    root = service(tmp_path, **{"main.py": PY_MAIN, "Dockerfile": PY_DOCKERFILE})
    write_tree(
        root,
        {
            "services/svc/migrations/002_add_users.sql": "-- Migration: 002_add_users\nSELECT 1;\n",
            "services/svc/migrations/003_add_roles.sql": "-- Migration: 003_add_roles\nSELECT 1;\n",
        },
    )
    service(root, "other", **{"main.py": PY_MAIN, "Dockerfile": PY_DOCKERFILE})
    git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "main"], check=True)
    write_tree(
        root,
        {
            "services/svc/migrations/002_add_users.sql": "-- Migration: 002_add_users\nSELECT 2;\n",
            "services/svc/migrations/003_add_roles.sql": None,
            "services/svc/migrations/003_add_phone.sql": "-- Migration: 003_add_phone\nSELECT 3;\n",
        },
    )
    report = audit(load_workspace(root), changed_since="HEAD")
    assert report.services == ("svc",)
    assert sorted((f.code, f.path.rsplit("/", 1)[-1]) for f in report.findings) == [
        ("MK120", "002_add_users.sql"),
        ("MK121", "003_add_roles.sql"),
        ("MK122", "003_add_phone.sql"),
    ]


def test_changed_since_sees_files_whose_names_are_not_ascii(tmp_path: Path) -> None:
    """git quotes every path that is not ASCII ("services/svc/migrations/002_a\\303\\261adir.sql"): a changed
    002_añadir.sql was no file of any service, so --changed-since audited nothing and MK120 never fired."""
    root = service(tmp_path, **{"main.py": PY_MAIN, "Dockerfile": PY_DOCKERFILE})
    service(root, "other", **{"main.py": PY_MAIN, "Dockerfile": PY_DOCKERFILE})
    write_tree(root, {"services/svc/migrations/002_añadir.sql": "-- Migration: 002_añadir\nSELECT 1;\n"})
    git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "main"], check=True)
    write_tree(root, {"services/svc/migrations/002_añadir.sql": "-- Migration: 002_añadir\nSELECT 2;\n"})
    report = audit(load_workspace(root), changed_since="HEAD")
    assert report.services == ("svc",)
    assert ("MK120", "services/svc/migrations/002_añadir.sql") in [(f.code, f.path) for f in report.findings]


def test_rules_lists_every_code_and_documents_one(example_repo: Monorepo) -> None:
    root = example_repo.root
    listed = json.loads(invoke(root, "rules", "--json").stdout)["rules"]
    assert len({r["code"] for r in listed}) == len(listed) >= 45
    one = invoke(root, "rules", "--code", "MK302").stdout
    assert "Bad:" in one and "Good:" in one and "CONCURRENTLY" in one
    assert "squawk: require-concurrent-index-creation" in one
    assert "squawk: none" in invoke(root, "rules", "--code", "MK301").stdout  # what migratekit adds
    by_code = {r["code"]: r for r in listed}
    assert by_code["MK312"]["squawk"] == ["adding-foreign-key-constraint", "constraint-missing-not-valid"]
    table = invoke(root, "rules").stdout
    assert "squawk" in table.splitlines()[1] + table.splitlines()[2] and "prefer-robust-stmts" in table
    assert invoke(root, "rules", "--code", "MK999").returncode == 2


def test_a_migration_edited_in_place_to_the_same_size_and_time_is_linted_again(example_repo: Monorepo) -> None:
    """The quick key reads each file's name, size and times, not its text: an edit that keeps the size, with its
    modification time put back (`touch -r`, a tool that restores times, a checkout of the same second), returned
    the findings of the text before. A file's change time cannot be set back: it is in the key too."""
    root = example_repo.root
    migration = root / "services/authentication/migrations/002_add_characters_table.sql"
    first = invoke(root, "audit", "--json").stdout
    before = migration.stat()
    text = migration.read_text()
    edited = text.replace("IF NOT EXISTS", " " * 13, 1)  # same size, not idempotent any more
    assert edited != text and len(edited) == len(text)
    migration.write_text(edited)
    os.utime(migration, ns=(before.st_atime_ns, before.st_mtime_ns))
    warm = invoke(root, "audit", "--json").stdout
    assert warm == invoke(root, "audit", "--json", "--no-cache").stdout
    assert warm != first


def test_the_lint_cache_is_reused_checked_and_bypassed(example_repo: Monorepo) -> None:
    root = example_repo.root
    first = invoke(root, "audit", "--json").stdout
    entries = sorted((root / ".migratekit" / "cache" / "lint").glob("*.json"))
    assert len(entries) == 6  # per service: by content, and by name, size and mtime
    assert invoke(root, "audit", "--json").stdout == first

    def rewrite(change) -> None:
        for path in entries:
            data = json.loads(path.read_text())
            path.write_text(change(data))

    rewrite(lambda d: json.dumps({**d, "findings": [["MK101", None, None, "a forged finding"]]}))
    assert "a forged finding" in invoke(root, "audit", "--json").stdout  # a valid entry under its key is read back
    rewrite(lambda d: json.dumps({**d, "findings": [["MK999", None, None, "no such rule"]]}))
    assert invoke(root, "audit", "--json").stdout == first  # a finding of no rule: the entry is not trusted
    assert invoke(root, "audit", "--json", "--no-cache").stdout == first  # --no-cache parses again
    rewrite(lambda d: json.dumps({**d, "key": "someone else's"}))  # foreign entries: ignored, rewritten
    assert invoke(root, "audit", "--json").stdout == first
    rewrite(lambda d: "{not json")  # corrupt entries: ignored, rewritten
    assert invoke(root, "audit", "--json").stdout == first
    assert all(json.loads(p.read_text())["key"] == p.stem for p in entries)
    example_repo.write(
        "services/battles/migrations/003_add_x.sql", "-- Migration: 003_add_x\nCREATE TABLE x (id int);\n"
    )
    assert "MK201" in invoke(root, "audit", "--json").stdout  # a changed directory is linted again


def test_what_the_wiring_read_in_each_source_is_reused_and_an_edited_file_is_read_again(
    example_repo: Monorepo,
) -> None:
    """A source file's calls and comments are kept by its name and text: the next audit reads them from the cache,
    an edit (or a cache entry that cannot be trusted) has the file parsed again, and --no-cache keeps nothing."""
    root, index = example_repo.root, "services/authentication/src/index.ts"
    sources = root / ".migratekit" / "cache" / "sources"
    assert invoke(root, "audit", "--json", "--no-cache").returncode == 0
    assert not sources.exists()  # --no-cache reads every file anew and keeps nothing
    first = invoke(root, "audit", "--json").stdout
    entries = sorted(sources.glob("*.json"))
    assert len(entries) == 3  # one a service
    assert invoke(root, "audit", "--json").stdout == first
    original = (root / index).read_text()
    example_repo.write(index, original.replace("    await runMigrations(db);\n", ""))  # the server no longer migrates
    edited = json.loads(invoke(root, "audit", "--json").stdout)
    assert {(f["code"], f["service"]) for f in edited["findings"]} == {("MK406", "authentication")}, edited
    example_repo.write(index, original.replace("// Run migrations BEFORE", "// runMigrations(db) BEFORE"))
    assert invoke(root, "audit", "--json").stdout == first  # a call in a comment is still no call
    for entry in entries:
        entry.write_text("{not json")  # corrupt: read anew, rewritten
    assert invoke(root, "audit", "--json").stdout == first
    assert all(json.loads(entry.read_text())["files"] for entry in entries)
    forged = json.loads(entries[0].read_text())
    for key in forged["files"]:
        forged["files"][key] = [{"language": "typescript"}, []]  # not as this version writes it: read anew
    entries[0].write_text(json.dumps(forged))
    assert invoke(root, "audit", "--json").stdout == first


def test_a_cached_reading_that_cannot_be_trusted_is_rewritten_not_parsed_again_on_every_audit(
    example_repo: Monorepo,
) -> None:
    """An entry whose readings are not as this version writes them (its keys still the files') is read anew
    and rewritten: kept as it was, every later audit parsed those files again."""
    root = example_repo.root
    assert invoke(root, "audit", "--json").returncode == 0
    entry = max((root / ".migratekit" / "cache" / "sources").glob("*.json"), key=lambda p: p.stat().st_size)
    whole = json.loads(entry.read_text())
    forged = {**whole, "files": {key: [{"language": "typescript"}, []] for key in whole["files"]}}
    entry.write_text(json.dumps(forged))
    assert invoke(root, "audit", "--json").returncode == 0
    assert json.loads(entry.read_text()) == whole


def test_the_readings_of_a_service_no_longer_at_its_path_are_dropped(example_repo: Monorepo, tmp_path: Path) -> None:
    """Readings are kept by the service's absolute path: a repository moved (a CI checkout per job), a service
    renamed or removed left its entry behind for good, one more a service at every move."""
    import shutil

    moved = tmp_path / "moved"
    assert invoke(example_repo.root, "audit", "--json").returncode == 0
    shutil.copytree(example_repo.root, moved)  # its .migratekit too
    sources = moved / ".migratekit" / "cache" / "sources"
    before = {p.name for p in sources.glob("*.json")}
    assert len(before) == 3
    assert invoke(moved, "audit", "--json").returncode == 0
    after = {p.name for p in sources.glob("*.json")}
    assert len(after) == 3 and not after & before
    assert (
        invoke(moved, "audit", "--json", "--service", "enrichment").returncode == 0
    )  # one service audited: the others stay
    assert {p.name for p in sources.glob("*.json")} == after


def lint_entries(root: Path) -> set[str]:
    return {p.name for p in (root / ".migratekit" / "cache" / "lint").iterdir()}


def new_migration(repo: Monorepo, service: str, number: int) -> None:
    repo.write(
        f"services/{service}/migrations/{number:03}_add_t{number}.sql",
        f"-- Migration: {number:03}_add_t{number}\nCREATE TABLE IF NOT EXISTS t{number} (id int);\n",
    )


def test_a_service_edited_again_and_again_leaves_only_its_current_lint_entries(example_repo: Monorepo) -> None:
    """Each edit of a service's migrations wrote two new lint entries (by content, and by names, sizes and times)
    and the two before stayed for good: a busy monorepo's .migratekit/cache/lint grew without bound. An entry is
    kept while it is a service's as its files are now; --no-cache keeps nothing and removes nothing."""
    root = example_repo.root
    assert invoke(root, "audit", "--json").returncode == 0
    first = lint_entries(root)
    assert len(first) == 6  # per service: by content, and by name, size and times
    for number in (3, 4, 5):
        new_migration(example_repo, "battles", number)
        assert invoke(root, "audit", "--json").returncode == 0
    edited = lint_entries(root)
    assert len(edited) == 6 and len(edited & first) == 4  # authentication's and enrichment's, as they were
    init = root / "services/authentication/migrations/001_init.sql"
    os.utime(init, ns=(init.stat().st_atime_ns, init.stat().st_mtime_ns + 10**9))  # touched, not changed
    new_migration(example_repo, "battles", 6)
    assert invoke(root, "audit", "--json", "--no-cache").returncode in (0, 1)
    assert lint_entries(root) == edited  # nothing written, nothing removed
    cold = invoke(root, "audit", "--json", "--no-cache").stdout
    assert invoke(root, "audit", "--json").stdout == cold
    touched = lint_entries(root)
    assert len(touched) == 6 and len(touched & first) == 3  # enrichment's two, authentication's by content
    assert invoke(root, "audit", "--json").stdout == cold
    assert lint_entries(root) == touched


def test_a_service_removed_from_the_workspace_leaves_no_lint_entries(example_repo: Monorepo) -> None:
    import shutil

    root = example_repo.root
    assert invoke(root, "audit", "--json").returncode == 0
    before = lint_entries(root)
    shutil.rmtree(root / "services" / "enrichment")
    workspace = (root / "workspace.yaml").read_text()
    (root / "workspace.yaml").write_text(workspace[: workspace.index("  # enrichment keeps")])
    assert invoke(root, "audit", "--json").returncode == 0
    after = lint_entries(root)
    assert len(after) == 4 and after < before


@pytest.mark.parametrize("narrowed", [["--service", "enrichment"], ["--changed-since", "HEAD"]])
def test_an_audit_of_some_services_keeps_the_lint_entries_of_all_of_them_as_they_are(
    example_repo: Monorepo, narrowed: list[str]
) -> None:
    """The services not audited are read all the same (what they create is what the audited ones are judged
    against): their entries as their files are now stay, those of their files before go."""
    root = example_repo.root
    git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "ref"], check=True)
    assert invoke(root, "audit", "--json").returncode == 0
    first = lint_entries(root)
    new_migration(example_repo, "battles", 3)
    assert invoke(root, "audit", "--json", *narrowed).returncode in (0, 1)
    narrow = lint_entries(root)
    assert len(narrow) == 6 and len(narrow & first) == 4
    assert invoke(root, "audit", "--json").returncode in (0, 1)
    assert lint_entries(root) == narrow  # the whole workspace's audit finds the same entries live


def test_a_lint_cache_that_is_not_migratekits_alone_loses_only_migratekits_stale_entries(
    example_repo: Monorepo,
) -> None:
    """Only the entries migratekit writes there (a digest's hex digits, .json) are removed: another file, another
    audit's staging file, or a directory under an entry's name is left as it is, and does not stop the rest."""
    root = example_repo.root
    lint = root / ".migratekit" / "cache" / "lint"
    assert invoke(root, "audit", "--json").returncode == 0
    foreign = ["README", "notes.json", f".{'0' * 8}.tmp", f"{'A' * 64}.json", f"{'0' * 63}.json"]
    for name in foreign:
        (lint / name).write_text("{}")
    (lint / f"{'0' * 64}.json").mkdir()
    foreign.append(f"{'0' * 64}.json")
    first = lint_entries(root)
    new_migration(example_repo, "battles", 3)
    assert invoke(root, "audit", "--json").returncode in (0, 1)
    after = lint_entries(root)
    assert set(foreign) < after and len(after - set(foreign)) == 6 and len(after & first) == len(foreign) + 4


def test_a_staging_file_a_stopped_audit_left_is_removed_once_it_is_an_hour_old(example_repo: Monorepo) -> None:
    """An audit's worker stopped by a Ctrl-C may leave the file it was writing an entry into: one an hour old is
    no write in progress, and goes; a newer one may be another audit's, and stays."""
    root = example_repo.root
    assert invoke(root, "audit", "--json").returncode == 0
    for kind in ("lint", "sources"):
        directory = root / ".migratekit" / "cache" / kind
        old, new = directory / ".k3j_x9a2.tmp", directory / ".p0q_ab12.tmp"
        old.write_text('{"key": "')
        new.write_text('{"key": "')
        os.utime(old, (time.time() - 3700, time.time() - 3700))
        assert invoke(root, "audit", "--json").returncode == 0
        assert not old.exists() and new.exists(), kind


def test_the_readings_cache_loses_only_migratekits_stale_entries(example_repo: Monorepo) -> None:
    """Every *.json in .migratekit/cache/sources not a service's was removed, another tool's or a person's file
    too, and a directory of that name stopped the removal of the rest."""
    root = example_repo.root
    sources = root / ".migratekit" / "cache" / "sources"
    assert invoke(root, "audit", "--json").returncode == 0
    live = {p.name for p in sources.iterdir()}
    stale = f"{'f' * 32}.json"  # as a service at another path left it
    foreign = ["notes.json", f"{'A' * 32}.json", f"{'0' * 64}.json"]
    (sources / f"{'0' * 32}.json").mkdir()  # a directory under an entry's name: left, and the rest still go
    for name in [*foreign, stale]:
        (sources / name).write_text("{}")
    assert invoke(root, "audit", "--json").returncode == 0
    assert {p.name for p in sources.iterdir()} == live | {*foreign, f"{'0' * 32}.json"}


def test_a_lint_cache_that_cannot_be_written_keeps_its_entries_and_the_audit_is_as_without_it(
    example_repo: Monorepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cache directory that cannot be changed (a read-only file system: root ignores permissions) keeps what it
    holds, stale entries too: the audit is only slower."""
    import errno

    root = example_repo.root
    lint = root / ".migratekit" / "cache" / "lint"
    assert invoke(root, "audit", "--json").returncode == 0
    new_migration(example_repo, "battles", 3)
    expected = audit(load_workspace(root), use_cache=False).findings
    before = lint_entries(root)
    real_unlink, real_open = os.unlink, os.open

    def unlink(path: str | Path, *args: object, **kwargs: object) -> None:
        if Path(path).parent == lint:
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        real_unlink(path, *args, **kwargs)  # type: ignore[arg-type]

    def open_(path: str | Path, flags: int, *args: object, **kwargs: object) -> int:
        if Path(path).parent == lint and flags & os.O_CREAT:
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, flags, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "unlink", unlink)
    monkeypatch.setattr(os, "open", open_)
    assert audit(load_workspace(root)).findings == expected
    assert lint_entries(root) == before


@pytest.mark.parametrize("kind", ["lint", "sources"])
@pytest.mark.parametrize("shape", ["fifo", "directory"])
def test_a_fifo_or_a_directory_at_a_cache_entrys_path_is_a_miss_not_a_hung_audit(
    example_repo: Monorepo, kind: str, shape: str
) -> None:
    """An entry was read with read_text, which waits for good on a FIFO with no writer: anything at an entry's path
    that is not a regular file is now a miss. The entry as written next replaces a FIFO (a directory stays: the
    audit is only slower)."""
    root = example_repo.root
    cold = invoke(root, "audit", "--json", "--no-cache").stdout
    assert invoke(root, "audit", "--json").stdout == cold
    entries = sorted((root / ".migratekit" / "cache" / kind).glob("*.json"))
    for entry in entries:
        entry.unlink()
        if shape == "fifo":
            os.mkfifo(entry)
        else:
            entry.mkdir()
    assert invoke(root, "audit", "--json", timeout=30).stdout == cold
    assert all(entry.is_file() if shape == "fifo" else entry.is_dir() for entry in entries)
    assert invoke(root, "audit", "--json", timeout=30).stdout == cold


def test_a_checkout_where_the_cache_cannot_be_written_is_audited_as_without_it(
    example_repo: Monorepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read-only checkout (root ignores permissions: the file system says so) is only slower with the cache."""
    from migratekit.checks import cache

    expected = audit(load_workspace(example_repo.root), use_cache=False).findings

    def read_only(root: Path) -> Path:
        raise OSError(30, "Read-only file system", str(root / ".migratekit"))

    monkeypatch.setattr(cache, "state_dir", read_only)
    assert audit(load_workspace(example_repo.root)).findings == expected


@pytest.mark.parametrize("failure", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_a_cache_entry_that_fails_to_be_written_leaves_no_staging_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: BaseException
) -> None:
    """An entry is written to a temporary file, then renamed: a full disk or a Ctrl-C while it is written left the
    temporary file in .migratekit/cache for good, one more at every such audit."""
    from migratekit.checks import cache

    def fails(*_: object, **__: object) -> None:
        raise failure

    monkeypatch.setattr(cache.json, "dump", fails)
    with pytest.raises(KeyboardInterrupt) if isinstance(failure, KeyboardInterrupt) else contextlib.nullcontext():
        cache.store_readings(tmp_path, tmp_path / "services" / "api", {"key": [None, []]})
    assert [p.name for p in (tmp_path / ".migratekit" / "cache" / "sources").iterdir()] == []


@pytest.mark.parametrize(
    ("workspace", "new", "expected"),
    [
        ("", {"002_c.sql": "SELECT 1;\n"}, ["002_c.sql"]),
        (
            "version: 1\nservices:\n  svc: {language: python, format: updown}\n",
            {"002_c.up.sql": "SELECT 1;\n", "002_c.down.sql": "SELECT 1;\n"},
            ["002_c.up.sql"],  # a pair is one migration: named once, by the file applied forward
        ),
        (
            "version: 1\nservices:\n  svc: {language: python, format: dbmate}\n",
            {"20240102_c.sql": "-- migrate:up\nSELECT 1;\n-- migrate:down\nSELECT 1;\n"},
            ["20240102_c.sql"],
        ),
        ("", {"003_c.sql": "SELECT 1;\n"}, []),  # after the ref's highest: no clash
    ],
)
def test_a_new_migration_numbered_at_or_below_the_refs_highest_is_reported_in_every_format(
    tmp_path: Path, workspace: str, new: dict[str, str], expected: list[str]
) -> None:
    """MK122 reads versions as the service's format names them (a golang-migrate pair, dbmate's timestamps)."""
    root = tmp_path / "repo"
    migrations = "services/svc/migrations"
    pair = ".up.sql" in next(iter(new))
    dated = next(iter(new)).startswith("2024")
    first = ["20240101_init", "20240102_b"] if dated else ["001_init", "002_b"]
    files = {}
    for version in first:
        if pair:
            files[f"{migrations}/{version}.up.sql"] = "SELECT 1;\n"
            files[f"{migrations}/{version}.down.sql"] = "SELECT 1;\n"
        elif dated:
            files[f"{migrations}/{version}.sql"] = "-- migrate:up\nSELECT 1;\n-- migrate:down\nSELECT 1;\n"
        else:
            files[f"{migrations}/{version}.sql"] = "SELECT 1;\n"
    write_tree(root, {**files, **({"workspace.yaml": workspace} if workspace else {})})
    git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "ref"], check=True)
    write_tree(root, {f"{migrations}/{name}": text for name, text in new.items()})
    report = audit(load_workspace(root), changed_since="HEAD")
    assert [f.path.rsplit("/", 1)[-1] for f in report.findings if f.code == "MK122"] == expected


@pytest.mark.parametrize("shape", ["text", "json", "sarif", "github"])
def test_the_audit_writes_any_of_its_formats_to_a_file(example_repo: Monorepo, shape: str) -> None:
    target = example_repo.root / "reports" / f"audit.{shape}"
    result = example_repo.invoke("audit", "--format", shape, "--output", str(target))
    assert result.returncode in (0, 1), result.stderr
    assert result.stdout == "" and f"wrote {target}:" in result.stderr
    written = target.read_text()
    printed = example_repo.invoke("audit", "--format", shape).stdout
    assert written == printed and "\x1b[" not in written  # the same text, and no colours in a file
    if shape in ("json", "sarif"):
        json.loads(written)


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--json", "--sarif"], "give one, not json, sarif"),
        (["--sarif", "--format", "github"], "give one, not github, sarif"),
        (["--format", "html"], "--format 'html': one of text, json, sarif, github"),
    ],
)
def test_two_output_choices_or_an_unknown_one_are_exit_2(example_repo: Monorepo, flags: list[str], says: str) -> None:
    result = example_repo.invoke("audit", *flags)
    assert result.returncode == 2 and says in result.stderr, result.stderr


def test_workers_and_the_cache_give_the_findings_of_one_process(
    example_repo: Monorepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The audit parses services in worker processes above a size, and reads unchanged ones from the cache: the
    findings, and their order, are those of one process parsing everything."""
    from migratekit.checks import run

    root = example_repo.root
    for name in ("ledger", "mailer", "quotas"):
        example_repo.write(
            f"services/{name}/migrations/001_init.sql",
            f"""
            -- Migration: 001_init
            CREATE TABLE {name}_items (id SERIAL PRIMARY KEY, owner uuid DEFAULT uuid_generate_v4());
            CREATE INDEX idx_{name}_owner ON {name}_items (owner);
            CREATE EXTENSION IF NOT EXISTS "uuid-ossp";
            ALTER TABLE accounts ADD COLUMN {name}_note text;
            """,
        )

    def findings(parallel_from: int, use_cache: bool) -> tuple[tuple[str, str | None, int | None, str], ...]:
        monkeypatch.setattr(run, "PARALLEL_FROM", parallel_from)
        report = audit(load_workspace(root), use_cache=use_cache)
        return tuple((f.code, f.path, f.line, f.message) for f in report.findings)

    one_process = findings(10**6, use_cache=False)
    assert len({path for _, path, _, _ in one_process}) > 3  # findings in several services
    if (os.cpu_count() or 1) < 2:
        pytest.skip("one core: the audit never starts a worker")
    assert findings(1, use_cache=False) == one_process
    assert findings(1, use_cache=True) == one_process  # the cache filled by the workers
    kept = lint_entries(root)
    assert len(kept) == 12  # the workers' entries, two a service, kept by the parent's audit
    assert findings(1, use_cache=True) == one_process  # read back in the parent
    assert lint_entries(root) == kept


# Facts of the whole service that rules read from other files: an index a later file creates (MK309), a
# function called anywhere (MK311), a column's earlier type (MK307), a volatile function (its default), and
# files that do not parse or hold nothing.
WHOLE_SERVICE = {
    "001_init.sql": 'CREATE EXTENSION IF NOT EXISTS "uuid-ossp";\n'
    "CREATE TABLE IF NOT EXISTS accounts (id uuid PRIMARY KEY DEFAULT uuid_generate_v4(), name varchar(50));\n",
    "002_orders.sql": "CREATE TABLE IF NOT EXISTS orders (id bigint PRIMARY KEY, account_id uuid REFERENCES accounts)"
    ";\n",
    "003_wider.sql": "ALTER TABLE accounts ALTER COLUMN name TYPE varchar(100);\n",
    "004_narrower.sql": "ALTER TABLE accounts ALTER COLUMN name TYPE varchar(20);\n",
    "005_broken.sql": "CREAT TABLE nope (id int);\n",
    "006_nothing.sql": "-- to be written\n",
    "007_index.sql": "CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_orders_account ON orders (account_id);\n",
    "008_stamp.sql": "CREATE OR REPLACE FUNCTION stamp() RETURNS timestamptz LANGUAGE sql AS 'SELECT now()';\n"
    "ALTER TABLE orders ADD COLUMN IF NOT EXISTS made timestamptz DEFAULT stamp();\n",
    "009_more.sql": "CREATE TABLE IF NOT EXISTS notes (id uuid DEFAULT uuid_generate_v4(), body text);\n",
}


def test_a_service_of_many_migrations_is_linted_one_files_trees_at_a_time_with_the_same_findings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From BOUNDED_FROM migrations in a service, each file's trees are dropped once it is read and read anew
    where needed: the findings are those of the audit that holds them all, and none is held at the end."""
    from migratekit.checks import run

    write_tree(tmp_path, {f"services/svc/migrations/{name}": text for name, text in WHOLE_SERVICE.items()})

    def lint(bounded_from: int) -> tuple[list[tuple[str, str | None, int | None, str]], list[bool]]:
        monkeypatch.setattr(run, "BOUNDED_FROM", bounded_from)
        service = load_workspace(tmp_path).services["svc"]
        migrations = service.load_migrations(mixed=True)
        found, _ = run.lint_service("svc", service.migrations_dir, migrations, tmp_path, "schema_migrations")
        return [(f.code, f.path, f.line, f.message) for f in found], ["statements" in m.__dict__ for m in migrations]

    held, kept = lint(10**9)
    bounded, kept_bounded = lint(1)
    assert bounded == held
    assert (sum(kept), sum(kept_bounded)) == (len(WHOLE_SERVICE) - 1, 0)  # all but the broken one, or none
    codes = {code for code, *_ in held}
    assert {"MK110", "MK109", "MK307", "MK311"} <= codes, codes  # the cross-file facts were asked of
