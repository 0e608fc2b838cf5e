"""Every entry point: the Invoke tasks, `python -m migratekit`, the pre-commit hook, and rendering."""
