"""The Invoke collection another monorepo's `tasks.py` imports: `from migratekit.tasks import ns`."""

from migratekit.cli.tasks import ns

__all__ = ["ns"]
