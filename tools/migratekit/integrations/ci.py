"""`invoke ci-workflow`: a GitHub Actions workflow for the monorepo, written from workspace.yaml.

On pull requests the audit runs and its SARIF goes to code scanning. Migrations run against a
PostgreSQL service container, one job per dependency wave (`needs:` follows the waves of
`depends_on`), one matrix leg per service, so a failure shows at the service that failed. Each leg
starts from an empty server and migrates its service with what it depends on first.
"""

from __future__ import annotations

from typing import Any

from migratekit.model.settings import POSTGRES_IMAGE
from migratekit.model.workspace import Workspace

PYTHON = "3.11"


def github_workflow(workspace: Workspace, install: str) -> dict[str, Any]:
    waves = workspace.groups()
    jobs: dict[str, Any] = {
        "audit": {
            "name": "audit",
            "runs-on": "ubuntu-latest",
            "permissions": {"contents": "read", "security-events": "write"},
            "steps": [
                *_setup(install),
                {"name": "Audit", "run": "invoke audit --sarif > migratekit.sarif || true"},
                {
                    "name": "Upload SARIF",
                    "if": "always()",
                    "uses": "github/codeql-action/upload-sarif@v3",
                    "with": {"sarif_file": "migratekit.sarif", "category": "migratekit"},
                },
                {"name": "Fail on errors", "run": "invoke audit"},
            ],
        }
    }
    previous = "audit"
    for number, wave in enumerate(waves, start=1):
        job = f"migrate-wave-{number}"
        needed = sorted(set().union(*(workspace.with_dependencies({name}) for name in wave)))
        env = {
            workspace.services[
                n
            ].settings.database_url_env: f"postgresql://postgres@localhost:5432/{workspace.services[n].database}"
            for n in needed
        }
        jobs[job] = {
            "name": f"migrate wave {number}: ${{{{ matrix.service }}}}",
            "needs": previous,
            "runs-on": "ubuntu-latest",
            "strategy": {"fail-fast": False, "matrix": {"service": list(wave)}},
            "services": {
                "postgres": {
                    "image": POSTGRES_IMAGE,
                    "env": {"POSTGRES_HOST_AUTH_METHOD": "trust"},
                    "ports": ["5432:5432"],
                    "options": "--health-cmd pg_isready --health-interval 2s --health-timeout 5s --health-retries 20",
                }
            },
            "env": dict(sorted(env.items())),
            "steps": [
                *_setup(install),
                {
                    "name": "Migrate (dependencies first, then again to prove a re-run is a no-op)",
                    "run": "invoke migrate ${{ matrix.service }} --with-deps --create-databases --wait 30\n"
                    "invoke migrate ${{ matrix.service }} --with-deps",
                },
            ],
        }
        previous = job
    return {
        "name": "migratekit",
        "on": {"pull_request": {}, "push": {"branches": ["main"]}},
        "permissions": {"contents": "read"},
        "jobs": jobs,
    }


def _setup(install: str) -> list[dict[str, Any]]:
    """Fresh step dicts for each job (shared ones would be written as YAML anchors, which Actions may refuse)."""
    return [
        {"uses": "actions/checkout@v4"},
        {"uses": "actions/setup-python@v5", "with": {"python-version": PYTHON}},
        {"name": "Install migratekit", "run": install},
    ]


def wave_services(workflow: dict[str, Any]) -> list[list[str]]:
    """The services of each migrate job, in order: what tests compare with workspace.groups()."""
    return [
        job["strategy"]["matrix"]["service"] for name, job in workflow["jobs"].items() if name.startswith("migrate")
    ]
