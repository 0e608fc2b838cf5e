"""The Invoke collection: every task of migratekit, by concern (migrate, check, adoption, scaffold, platform).

Another monorepo adopts migratekit with a tasks.py of its own:

    from migratekit.tasks import ns

Task names are flat (`invoke migrate-all`); the run defaults are Invoke configuration under `migratekit:`, so an
invoke.yaml can change them for everyone (`migratekit: {jobs: 8}`) and a flag still wins.
"""

from __future__ import annotations

from invoke import Collection

from migratekit.cli.adoption import adopt, baseline, forget, init, status
from migratekit.cli.check import audit, drift, rules, verify
from migratekit.cli.migrate import migrate, migrate_all, rollback, services
from migratekit.cli.platform import ci_workflow, db_down, db_up, db_url, k8s_render
from migratekit.cli.scaffold import new_migration, new_service
from migratekit.model.settings import RUN_DEFAULTS

ns = Collection(
    services,
    migrate_all,
    migrate,
    rollback,
    audit,
    rules,
    verify,
    drift,
    init,
    new_service,
    new_migration,
    db_up,
    db_down,
    db_url,
    ci_workflow,
    k8s_render,
    status,
    forget,
    adopt,
    baseline,
)
ns.configure(
    {"migratekit": {"jobs": RUN_DEFAULTS.jobs, "wait": RUN_DEFAULTS.connect_wait, "lock_wait": RUN_DEFAULTS.lock_wait}}
)
