"""Which services a task works on: all, the named ones (and their dependencies), those changed since a git ref.

The "affected" mode of Nx and Turborepo: every task that takes --service or --changed-since selects here.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from migratekit.errors import ConfigError
from migratekit.model.workspace import Workspace


def git(root: Path, *args: str) -> list[str]:
    """Output lines of a git command in `root`; a failure is a ConfigError (a bad ref is bad input). Paths come
    as the file system names them, never quoted (git's default quotes every name that is not ASCII: a changed
    `002_añadir.sql` was no file of any service), and read whatever the locale."""
    result = subprocess.run(
        ["git", "-c", "core.quotePath=false", "-C", str(root), *args],
        capture_output=True,
        encoding="utf-8",
        errors="surrogateescape",  # a name that is not UTF-8: the str os.listdir gives for it
    )
    if result.returncode != 0:
        raise ConfigError(
            f"git {' '.join(args)} failed in {root}: {result.stderr.strip()}; "
            "pass a ref that exists (a branch, tag or commit)"
        )
    return [line for line in result.stdout.splitlines() if line]


def verify_ref(root: Path, ref: str) -> Path:
    """Check `ref` names a commit; return the repository's top directory."""
    git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    return Path(git(root, "rev-parse", "--show-toplevel")[0])


def changed_paths(root: Path, ref: str) -> set[Path]:
    """Files differing from `ref` in the working tree, committed or not, plus untracked ones."""
    top = verify_ref(root, ref)
    names = git(root, "diff", "--name-only", "--no-renames", ref, "--") + git(
        root, "ls-files", "--others", "--exclude-standard"
    )
    return {(top / name).resolve() for name in names}


def changed_services(workspace: Workspace, ref: str) -> set[str]:
    """Services with a migration file added, edited or deleted since `ref`."""
    paths = changed_paths(workspace.root, ref)
    directories = {name: service.migrations_dir.resolve() for name, service in workspace.services.items()}
    return {name for name, directory in directories.items() if any(p.is_relative_to(directory) for p in paths)}


def select(
    workspace: Workspace,
    names: list[str] | None = None,
    with_deps: bool = False,
    changed_since: str | None = None,
    with_dependents: bool = False,
) -> list[str]:
    """The selected services in dependency order; an unknown name is a ConfigError listing the known ones.

    `names` (plus, with_deps, what they depend on), else all; narrowed to the services changed since
    `changed_since` (plus, with_dependents, the services that depend on those: they must run again).
    """
    workspace.require_services()
    selected = set(workspace.services)
    if names:
        for name in names:
            workspace.get(name)
        selected = workspace.with_dependencies(set(names)) if with_deps else set(names)
    if changed_since:
        changed = changed_services(workspace, changed_since)
        selected &= workspace.with_dependents(changed) if with_dependents else changed
    return [name for name in workspace.order() if name in selected]
