"""Golden outputs of the example monorepo: what `--json` and the audit's renderings print, pinned.

A refactor must leave them byte-identical. After a deliberate change of output, regenerate with
`MIGRATEKIT_UPDATE_SNAPSHOTS=1 .venv/bin/pytest tests/test_snapshots.py` and review the diff.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from conftest import Monorepo, plain
from migratekit.model.secrets import redact

SNAPSHOTS = Path(__file__).parent / "snapshots"
VOLATILE = {"elapsed_ms", "execution_time_ms"}  # timings differ on every run
MOMENTS = {"applied_at"}  # and so do the times a row was recorded


def normalise(value: Any, repo: Monorepo) -> Any:
    """Timings zeroed; the checkout's path and each database URL replaced by a stable name."""
    if isinstance(value, dict):
        return {
            k: 0 if k in VOLATILE and isinstance(v, int) else "<time>" if k in MOMENTS and v else normalise(v, repo)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [normalise(v, repo) for v in value]
    if isinstance(value, str):
        for variable, url in sorted(repo.env.items(), key=lambda kv: -len(kv[1])):
            if variable.endswith("_DATABASE_URL"):  # as given, and as shown (a server's password redacted)
                value = value.replace(url, f"<{variable}>").replace(redact(url), f"<{variable}>")
        return value.replace(str(repo.root), "<root>")
    return value


def check(name: str, text: str) -> None:
    path = SNAPSHOTS / name
    if os.environ.get("MIGRATEKIT_UPDATE_SNAPSHOTS"):
        path.write_text(text)
    assert path.is_file(), f"{path} is missing: run with MIGRATEKIT_UPDATE_SNAPSHOTS=1 to write it"
    assert text == path.read_text(), f"{name} differs from its snapshot"


def check_json(name: str, repo: Monorepo, *args: str, code: int = 0) -> None:
    result = repo.invoke(*args, "--json")
    assert result.returncode == code, result.stdout + result.stderr
    check(name, json.dumps(normalise(json.loads(result.stdout), repo), indent=2) + "\n")


@pytest.mark.server_auth
def test_example_json_outputs_are_unchanged(example: Monorepo) -> None:
    check_json("services.json", example, "services")
    check_json("audit.json", example, "audit")
    check_json("migrate_all_dry_run.json", example, "migrate-all", "--dry-run")
    check_json("migrate_all.json", example, "migrate-all")
    check_json("migrate_all_up_to_date.json", example, "migrate-all")
    check_json("status.json", example, "status")
    check_json("drift.json", example, "drift")

    migrations = example.root / "services" / "battles" / "migrations"
    (migrations / "003_add_winner.sql").write_text("-- Migration: 003_add_winner\nSELECT 1/0;\n")
    edited = migrations / "002_add_battle_participants.sql"
    edited.write_text(edited.read_text() + "-- edited\n")
    check_json("drift_with_items.json", example, "drift", code=1)
    check_json("migrate_all_failed.json", example, "migrate-all", "--allow-changed", code=1)


def test_audit_renderings_are_unchanged(example: Monorepo) -> None:
    example.write(
        "services/authentication/migrations/004_add_email_index.sql",
        """
        -- Migration: 004_add_email_index
        CREATE INDEX idx_accounts_email ON accounts (email);
        INSERT INTO accounts (email) VALUES ('admin@example.com');
        """,
    )
    dockerfile = example.root / "services" / "battles" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("COPY --from=builder /app/migrations ./migrations\n", ""))
    text = example.invoke("audit")
    assert text.returncode == 1
    check("audit.txt", text.stdout)
    on_a_terminal = example.invoke("audit", terminal=80)  # the same findings, in colour, wrapped at 80 columns
    assert on_a_terminal.returncode == 1 and "\x1b[" in on_a_terminal.stdout
    check("audit.80.txt", plain(on_a_terminal.stdout))
    check_json("audit_findings.json", example, "audit", code=1)
    sarif = json.loads(example.invoke("audit", "--sarif").stdout)
    sarif["runs"][0]["tool"]["driver"]["version"] = "<version>"
    check("audit.sarif", json.dumps(normalise(sarif, example), indent=2) + "\n")
    github = example.invoke("audit", "--github").stdout
    check("audit.github.txt", re.sub(r"\r", "", github))


@pytest.fixture
def example(example_repo: Monorepo, new_db) -> Monorepo:
    auth, battles = new_db(), new_db()
    example_repo.env.update(
        AUTHENTICATION_DATABASE_URL=auth, BATTLES_DATABASE_URL=battles, ENRICHMENT_DATABASE_URL=battles
    )
    return example_repo
