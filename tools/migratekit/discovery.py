"""Which directories of a monorepo are services: those holding a `migrations/` directory.

By default, up to two levels below `services/` (`services/auth`, `services/payments/api`); or the
glob patterns of `services_dir` in workspace.yaml. Never inside node_modules, vendor, dist, build,
.git or a dot-directory, and never a directory inside another service. A nested service is named
by its path below its base with `-` for `/` (`services/payments/api` is `payments-api`, reading
`PAYMENTS_API_DATABASE_URL`).
"""

from __future__ import annotations

import glob as globbing
from pathlib import Path

from migratekit.errors import ConfigError

SKIP = {"node_modules", "vendor", "dist", "build", ".git", "__pycache__", "target"}
DEFAULT_DEPTH = 2


def discover(root: Path, base: Path, patterns: list[str] | None = None) -> dict[str, Path]:
    """name -> service directory, for the default layout under `base` or for `patterns` (relative to root)."""
    if patterns is None:
        found = [(base, d) for depth in range(1, DEFAULT_DEPTH + 1) for d in sorted(base.glob("/".join(["*"] * depth)))]
    else:
        found = [(root / _base_of(p), Path(d)) for p in patterns for d in sorted(globbing.glob(str(root / p)))]
    services = sorted((b, d) for b, d in found if (d / "migrations").is_dir() and not _skipped(d, root))
    outer = {d for _, d in services}
    names: dict[str, Path] = {}
    for service_base, directory in services:
        if any(parent in outer for parent in directory.parents):
            continue  # inside another service: its migrations are that service's business
        name = "-".join(directory.relative_to(service_base).parts)
        if name in names and names[name] != directory:
            raise ConfigError(
                f"{names[name].relative_to(root)} and {directory.relative_to(root)} are both named service "
                f"{name!r}; rename one directory, or narrow services_dir in workspace.yaml"
            )
        names[name] = directory
    return names


def base_of(pattern: str) -> str:
    return _base_of(pattern)


def _base_of(pattern: str) -> str:
    """The leading part of a glob pattern that has no wildcard: where its services' names start."""
    parts = []
    for part in Path(pattern).parts:
        if globbing.has_magic(part):
            break
        parts.append(part)
    return "/".join(parts)


def _skipped(directory: Path, root: Path) -> bool:
    parts = directory.relative_to(root).parts if directory.is_relative_to(root) else directory.parts
    return any(p in SKIP or p.startswith(".") for p in parts)
