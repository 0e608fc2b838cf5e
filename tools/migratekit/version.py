"""migratekit's version, in a module of its own so that any layer may read it without importing the package."""

VERSION = "0.1.0"  # pyproject.toml's; the lint cache keys on it and SARIF reports it
