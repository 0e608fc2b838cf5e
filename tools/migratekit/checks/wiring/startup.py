"""What a service runs when it starts, followed step by step: does a migration come before the server?

A start command (an image's ENTRYPOINT and CMD, a package.json script, a compose or Kubernetes
command) is read as shell with tree-sitter's grammar and followed through `sh -c`, scripts,
`npm run`/`pnpm`/`yarn` scripts (with their `pre` scripts), interpreters running a source file,
and `exec`. Each command becomes a step: it migrates (a migration CLI, a program that migrates,
a subcommand named migrate), it serves, or neither.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from migratekit.checks.wiring.shell import Command, parse_script
from migratekit.checks.wiring.sources import Call, Program, is_listen_call, is_migration_call
from migratekit.model.settings import MIGRATIONS

SHELLS = {"sh", "bash", "ash", "dash", "zsh"}
WRAPPERS = {"exec", "dumb-init", "tini", "nohup", "time", "npx", "bunx", "env", "--"}
WRAPPERS_WITH_ARGUMENT = {"gosu", "su-exec", "chpst"}
INTERPRETERS = {"node", "ts-node", "tsx", "bun", "deno", "python", "python3", "go"}
PACKAGE_MANAGERS = {"npm", "pnpm", "yarn", "bun"}
NEUTRAL = {"echo", "set", "cd", "export", "sleep", "wait-for-it", "wait-for-it.sh", "test", "[", "printf", "mkdir"}
NEUTRAL |= {"chown", "chmod", "cp", "rm", "ls", "cat", "true", ":", "trap", "until", "pg_isready", "exit", "unset"}
MIGRATION_CLIS: dict[str, tuple[str, ...]] = {
    # tool: words one of which must follow it for the command to apply migrations
    "migrate": ("up",),  # golang-migrate
    "dbmate": ("up", "migrate"),
    "goose": ("up", "up-to", "up-by-one"),
    "flyway": ("migrate",),
    "atlas": ("apply",),
    "sqlx": ("run",),
    "prisma": ("deploy",),
    "knex": ("migrate:latest", "migrate:up"),
    "node-pg-migrate": ("up",),
    "migratekit": ("migrate", "migrate-all"),
    "alembic": ("upgrade",),
    "sequelize": ("db:migrate",),
    "sequelize-cli": ("db:migrate",),
    "typeorm": ("migration:run",),
    "drizzle-kit": ("migrate",),
    "diesel": ("run",),
    "tern": ("migrate",),
    "db-migrate": ("up",),
    "mikro-orm": ("migration:up",),
    "kysely": ("migrate:latest", "migrate:up"),
    "graphile-migrate": ("migrate",),
    "liquibase": ("update",),
    "sqitch": ("deploy",),
}
# Migration CLIs whose every other command is a build or development step, never the server: `prisma generate`
# builds the client, `prisma migrate dev` (it may reset a drifted database) and `prisma db push` (it skips the
# migrations) are development commands that apply no migration as `migrate deploy` does.
TOOLS_ONLY = {"prisma"}
# tool: the command group that must come first (`atlas schema apply` applies a declared schema, not the migrations)
MIGRATION_GROUPS = {"atlas": "migrate"}
SUBCOMMAND = re.compile(r"^-{0,2}(db:)?migrat(e|ions?)([:=_-]?(up|run|latest|deploy))?$", re.IGNORECASE)
NOT_APPLYING = re.compile(r"create|generate|make|new|revert|down|rollback|status|undo|reset|drop|fresh", re.IGNORECASE)


def applies_migrations(script: str) -> bool:
    """A package script's name that says it applies migrations: migrate, db:migrate, start:migration, migration:run
    (not migration:generate, migrate:down, migrate:status)."""
    return "migrat" in script.lower() and not NOT_APPLYING.search(script)


@dataclass(frozen=True)
class Step:
    kind: str  # "migrate", "serve" or "other"
    path: Path | None  # the file the command is written in
    line: int | None
    stops: bool | None  # a failure of this step stops the start
    what: str  # the command, for messages


@dataclass
class Tree:
    """The files of one service that a start command can reach."""

    directory: Path
    scripts: dict[str, str] = field(default_factory=dict)  # package.json "scripts"
    programs: dict[Path, Program] = field(default_factory=dict)
    files: tuple[Path, ...] = ()
    migrating: frozenset[str] = frozenset()  # names of the service's functions that (transitively) migrate
    listening: frozenset[str] = frozenset()
    scopes: dict[str, list[Call]] = field(default_factory=dict)  # every named function's calls, in order
    migrations_at: Path | None = None  # the service's migrations directory, when not directory/migrations

    @property
    def migrations(self) -> Path:
        return self.migrations_at or self.directory / MIGRATIONS

    def find(self, written: str) -> Path | None:
        """The service file a path in a command means: `/app/dist/migrate.js` -> src/migrate.ts."""
        parts = [p for p in posixpath.normpath(written).split("/") if p not in ("", ".", "..")]
        for length in range(len(parts), 0, -1):
            tail = "/".join(parts[-length:])
            for candidate in _compiled_sources(tail):
                found = [f for f in self.files if f.as_posix().endswith("/" + candidate)]
                if found:
                    return min(found, key=lambda f: len(f.parts))
        return None


def _compiled_sources(tail: str) -> list[str]:
    """A compiled file's path and the sources it may come from (dist/x.js <- src/x.ts)."""
    out = [tail]
    stem, dot, suffix = tail.rpartition(".")
    if dot and suffix in ("js", "mjs", "cjs"):
        source = re.sub(r"^(dist|build|out|lib)/", "src/", stem)
        out += [f"{stem}.ts", f"{source}.ts", f"{source}.js"]
    return out


def load_scripts(package_json: Path) -> dict[str, str]:
    try:
        scripts = json.loads(package_json.read_text(encoding="utf-8", errors="replace")).get("scripts") or {}
    except (ValueError, AttributeError):
        return {}
    return {str(k): str(v) for k, v in scripts.items()} if isinstance(scripts, Mapping) else {}


def follow(text: str, tree: Tree, origin: Path | None, first_line: int = 1, depth: int = 0) -> list[Step]:
    """The steps a shell command line or script runs, in order, up to the `exec` that replaces it."""
    steps: list[Step] = []
    if depth > 6:
        return steps
    for command in parse_script(text, first_line):
        steps += _steps(command, tree, origin, depth)
        if command.replaces_shell:
            break
    return steps


def _unwrap(words: tuple[str, ...]) -> tuple[str, ...]:
    while words:
        first = posixpath.basename(words[0])
        if first in WRAPPERS or ("=" in words[0] and not words[0].startswith("-")):
            words = words[1:]
        elif first in WRAPPERS_WITH_ARGUMENT:
            words = words[2:]
        else:
            break
    return words


def _steps(command: Command, tree: Tree, origin: Path | None, depth: int) -> list[Step]:
    words = _unwrap(command.words)
    if not words:
        return []
    name = posixpath.basename(words[0])

    def step(kind: str) -> list[Step]:
        return [Step(kind, origin, command.line, command.stops, " ".join(words))]

    if name in SHELLS:
        if "-c" in words[1:-1]:
            return _inherit(follow(words[words.index("-c") + 1], tree, origin, command.line, depth + 1), command)
        script = next((w for w in words[1:] if not w.startswith("-")), None)
        return _inherit(_script(script, tree, depth), command) if script else step("other")
    if name in PACKAGE_MANAGERS and len(words) > 1:
        scripted = _inherit(_package_script(words, tree, depth), command)
        binary = tuple(w for w in words[1:] if w not in ("exec", "dlx", "x", "run"))  # yarn node-pg-migrate up
        migrating = bool(binary) and (is_migration_command(binary) or applies_migrations(binary[0]))
        return scripted or step("migrate" if migrating else "other")
    if is_migration_command(words):
        return step("migrate")
    if name in NEUTRAL or name in TOOLS_ONLY:
        return step("other")
    if name in INTERPRETERS:
        return _interpreted(words, tree, command, origin)
    path = tree.find(words[0]) if "/" in words[0] or words[0].endswith(".sh") else None
    if path is not None and (path.suffix in (".sh", ".bash") or (not path.suffix and _shebang(path))):
        return _inherit(_script(words[0], tree, depth), command)
    subcommand = any(SUBCOMMAND.match(posixpath.basename(w)) for w in words)  # ./server migrate, /app --migrate
    return step("migrate" if subcommand or applies_migrations(name) else "serve")  # or /bin/migrator


def _shebang(path: Path) -> bool:
    with path.open("rb") as file:
        return file.read(2) == b"#!"


def _inherit(steps: list[Step], command: Command) -> list[Step]:
    """A script or package script ends with its last step's status: when the command that runs it stops on
    failure, so does that last step."""
    if not command.stops or not steps:
        return steps
    last = steps[-1]
    return [*steps[:-1], Step(last.kind, last.path, last.line, True, last.what)]


def _script(written: str, tree: Tree, depth: int) -> list[Step]:
    path = tree.find(written)
    if path is None or not path.is_file():
        kind = "migrate" if "migrat" in posixpath.basename(written).lower() else "other"
        return [Step(kind, None, None, None, written)]
    return follow(path.read_text(encoding="utf-8", errors="replace"), tree, path, 1, depth + 1)


def _package_script(words: tuple[str, ...], tree: Tree, depth: int) -> list[Step]:
    args = [w for w in words[1:] if not w.startswith("-")]
    if args[:1] in (["run"], ["run-script"]):
        args = args[1:]
    if not args or (words[0] == "npm" and args[0] not in ("start", "test") and words[1] not in ("run", "run-script")):
        return []
    name = args[0]
    steps: list[Step] = []
    for script in (f"pre{name}", name):
        if script in tree.scripts:
            found = follow(tree.scripts[script], tree, tree.directory / "package.json", 1, depth + 1)
            if script != name:  # npm does not run the script when its pre script exits non-zero
                found = _inherit(found, Command((), 0, False, True))
            steps += found
    return steps


def _interpreted(words: tuple[str, ...], tree: Tree, command: Command, origin: Path | None) -> list[Step]:
    rest = [w for w in words[1:] if w not in ("run", "--")]
    if "-m" in rest[:-1]:
        module = rest[rest.index("-m") + 1]
        arguments = rest[rest.index("-m") + 2 :]
        if is_migration_command((module, *arguments)):  # python -m alembic upgrade head, -m migratekit migrate
            return [Step("migrate", origin, command.line, command.stops, " ".join(words))]
        written = module.replace(".", "/") + ".py"
    else:
        files = [w for w in rest if not w.startswith("-")]
        written, arguments = (files[0], files[1:]) if files else ("", [])
    path = tree.find(written) if written else None
    if any(SUBCOMMAND.match(a) for a in arguments) or (path is None and "migrat" in written.lower()):
        return [Step("migrate", origin, command.line, command.stops, " ".join(words))]
    program = tree.programs.get(path) if path is not None else None
    kinds = flow(program, tree) if program is not None else ["serve"]
    if "serve" in kinds:
        kinds = ["serve"]  # a program that migrates in-process is the in-process route's, not the command's
    return [Step(kind, origin, command.line, command.stops, " ".join(words)) for kind in kinds or ["serve"]]


def migrates_in(text: str, tree: Tree, origin: Path | None = None) -> bool:
    """Does this command line or script apply migrations at any of its steps?"""
    return any(s.kind == "migrate" for s in follow(text, tree, origin))


def flow(program: Program, tree: Tree) -> list[str]:
    """What running this file does, in order: ["migrate", "serve"], ["serve"], ["migrate"] or []."""
    entry = [c for c in program.calls if c.scope == program.entry] if program.entry is not None else []
    return _kinds(entry, tree, set())


def _kinds(calls: list[Call], tree: Tree, seen: set[str]) -> list[str]:
    """The order in which these calls migrate and serve, looking into the service's own functions when one
    call does both (main() that migrates, then listens)."""
    kinds: list[str] = []
    for call in calls:
        migrating, listening = applies(call, tree), listens(call.callee, tree)
        if migrating and listening and call.name in tree.scopes and call.name not in seen:
            inner = _kinds(tree.scopes[call.name], tree, seen | {call.name})
        else:
            inner = ["migrate"] * migrating + ["serve"] * listening
        kinds += [k for k in inner if k not in kinds]
    return kinds


def applies(call: Call, tree: Tree, through_functions: bool = True) -> bool:
    """This call applies migrations: a runner's call, a hand-written runner's own step (it records a file in its
    history table), or (`through_functions`) one of the service's functions that migrates."""
    return call.records or migrates(call.callee, tree, through_functions)


def migrates(callee: str, tree: Tree, through_functions: bool = True) -> bool:
    return is_migration_call(callee) or (through_functions and callee.rpartition(".")[2] in tree.migrating)


def listens(callee: str, tree: Tree, through_functions: bool = True) -> bool:
    return is_listen_call(callee) or (through_functions and callee.rpartition(".")[2] in tree.listening)


def is_migration_command(words: tuple[str, ...] | list[str]) -> bool:
    """golang-migrate's `migrate ... up`, `dbmate up`, `goose ... up`, `prisma migrate deploy`, `atlas migrate
    apply`..."""
    name = posixpath.basename(words[0])
    wanted = MIGRATION_CLIS.get(name)
    if wanted is None:
        return False
    group = MIGRATION_GROUPS.get(name)
    rest = list(words[1:])
    if group is not None:
        rest = rest[rest.index(group) + 1 :] if group in rest else []
    return any(w in wanted for w in rest)
