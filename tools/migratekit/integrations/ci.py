"""`invoke ci-workflow`: a GitHub Actions workflow for the monorepo, written from workspace.yaml.

One job, because `migrate-all` already orders the services by `depends_on` and runs independent ones in
parallel: a job per dependency wave only added serial start-ups, and a failing leaf skipped every later wave.
The job checks out the whole history (the audit's history rules, MK120-MK122, compare with the pull request's
base), audits what changed since that base and uploads the SARIF to code scanning, migrates every service
once against one PostgreSQL service container (each service's database created, services that share a
database given one), proves a second run changes nothing, and writes the dependency graph and the results
table to the job summary. It fails at the end when the audit found errors, after the migrations have run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from migratekit.errors import ConfigError
from migratekit.model.identity import shared_databases, shared_tracking_tables
from migratekit.model.settings import POSTGRES_IMAGE
from migratekit.model.workspace import Workspace

PYTHON = "3.11"
SERVER = "postgresql://postgres@localhost:5432"  # the service container, trusted: no password in the file
SARIF = "migratekit.sarif"
# The commit the audit compares with: a pull request's base, or what a push replaced (all zeros for a new branch)
BASE = "${{ github.event.pull_request.base.sha || github.event.before }}"
AUDIT = """\
since=()
if [ -n "${BASE//0/}" ]; then since=(--changed-since "$BASE"); fi
status=0
invoke audit "${since[@]}" --format sarif --output migratekit.sarif || status=$?
invoke audit "${since[@]}" || true
exit "$status"
"""
MIGRATE = """\
invoke migrate-all --create-databases --wait 30 | tee "$RUNNER_TEMP/migrate-all.txt"
invoke migrate-all --wait 30
"""
SUMMARY = """\
{
  echo '### Services, in the waves migrate-all runs them in'
  echo '```mermaid'
  invoke graph --format mermaid
  echo '```'
  if [ -f "$RUNNER_TEMP/migrate-all.txt" ]; then
    echo '### migrate-all'
    echo '```text'
    cat "$RUNNER_TEMP/migrate-all.txt"
    echo '```'
  fi
} >> "$GITHUB_STEP_SUMMARY"
"""


@dataclass(frozen=True)
class CiDatabase:
    """One database of the service container, and the services that migrate into it."""

    name: str
    services: tuple[str, ...]


def ci_databases(workspace: Workspace, environ: Mapping[str, str] | None = None) -> list[CiDatabase]:
    """A database per group of services that share one (by their `database` key or by the URLs set here).

    Two services recording into one tracking table of one database would overwrite each other's rows: that is
    refused here as migrate-all refuses it, before a workflow is written.
    """
    services = [workspace.services[name] for name in workspace.order()]
    clashes = shared_tracking_tables(services, environ)
    if clashes:
        found, names = clashes[0]
        raise ConfigError(
            f"services {', '.join(names)} share the database {found.database} and the tracking table "
            f"{found.tracking_table}: give each its own tracking_table in workspace.yaml"
        )
    databases: list[CiDatabase] = []
    taken: set[str] = set()
    for found, names in shared_databases(services, environ):
        base = found.database.rsplit("/", 1)[-1] or names[0]
        name, n = base, 2
        while name in taken:  # one name on two servers here; the container has one server
            name, n = f"{base}_{n}", n + 1
        taken.add(name)
        databases.append(CiDatabase(name, tuple(names)))
    return databases


def github_workflow(
    workspace: Workspace,
    install: str,
    postgres_image: str = POSTGRES_IMAGE,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The workflow as data (the task writes it as YAML): one job, steps in the order they must run."""
    databases = ci_databases(workspace, environ)
    env = {
        workspace.services[service].settings.database_url_env: f"{SERVER}/{database.name}"
        for database in databases
        for service in database.services
    }
    job = {
        "name": "audit and migrate",
        "runs-on": "ubuntu-latest",
        # upload-sarif writes code scanning, and reads the run it attaches the analysis to (private repositories)
        "permissions": {"contents": "read", "security-events": "write", "actions": "read"},
        "defaults": {"run": {"shell": "bash"}},  # bash -eo pipefail: a failing migrate-all fails its tee
        "services": {
            "postgres": {
                "image": postgres_image,
                "env": {"POSTGRES_HOST_AUTH_METHOD": "trust"},
                "ports": ["5432:5432"],
                "options": "--health-cmd pg_isready --health-interval 2s --health-timeout 5s --health-retries 20",
            }
        },
        "env": dict(sorted(env.items())),
        "steps": [
            {"uses": "actions/checkout@v4", "with": {"fetch-depth": 0}},  # the history rules need the base
            {"uses": "actions/setup-python@v5", "with": {"python-version": PYTHON}},
            {"name": "Install migratekit", "run": install},
            {
                "name": "Audit what changed since the base",
                "id": "audit",
                "continue-on-error": True,
                "env": {"BASE": BASE},
                "run": AUDIT,
            },
            {
                "name": "Upload the audit to code scanning",
                "if": f"always() && hashFiles('{SARIF}') != ''",
                "continue-on-error": True,  # a fork's pull request may not write code scanning; the audit still gates
                "uses": "github/codeql-action/upload-sarif@v3",
                "with": {"sarif_file": SARIF, "category": "migratekit"},
            },
            {"name": "Migrate every service, then again to prove a re-run changes nothing", "run": MIGRATE},
            {"name": "Write the graph and the results to the job summary", "if": "always()", "run": SUMMARY},
            {
                "name": "Fail when the audit found errors",
                "if": "steps.audit.outcome == 'failure'",
                "run": "echo 'the audit found errors: see the Audit step and code scanning' >&2\nexit 1\n",
            },
        ],
    }
    return {
        "name": "migratekit",
        "on": {"pull_request": {}, "push": {"branches": ["main"]}},
        "permissions": {"contents": "read"},
        "jobs": {"migratekit": job},
    }
