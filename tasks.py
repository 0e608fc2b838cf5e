"""Invoke entry point for this monorepo: migratekit's tasks, nothing else."""

from migratekit.tasks import ns

__all__ = ["ns"]
