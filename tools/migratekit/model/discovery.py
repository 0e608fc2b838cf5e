"""Which directories of a monorepo are services: those holding their migrations in a known layout.

By default, up to two levels below `services/` (`services/auth`, `services/payments/api`); or the
glob patterns of `services_dir` in workspace.yaml. Never inside node_modules, vendor, dist, build,
.git or a dot-directory, and never a directory inside another service. A nested service is named
by its path below its base with `-` for `/` (`services/payments/api` is `payments-api`, reading
`PAYMENTS_API_DATABASE_URL`), lower-cased (`services/Ordering.API` is `ordering-api`: see `name_of`).

The layouts are the tools' own: the seed's `migrations/`, dbmate's default `db/migrations/`,
Go's `internal/` for code and SQL alike, and Spring Boot's Flyway default
`src/main/resources/db/migration` (Maven's and Gradle's resources directory, on the classpath as
`db/migration`), and Prisma Migrate's `prisma/migrations` (beside `prisma/schema.prisma`). Without them
`services/auth/db/migrations` would be a service named `auth-db`, and
`services/billing/internal/db/migrations` no service at all. A Spring Boot service whose
application.yml/.properties sets `spring.flyway.locations` is read at its first location
(`classpath:db/flyway` is src/main/resources/db/flyway, `filesystem:sql` is sql/). A service whose atlas.hcl
migrates from `dir = "file://db/schema"` is read there.
"""

from __future__ import annotations

import glob as globbing
import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from migratekit.errors import ConfigError
from migratekit.model.settings import MIGRATIONS, SERVICE_NAME

if TYPE_CHECKING:
    from tree_sitter import Node

SKIP = {"node_modules", "vendor", "dist", "build", ".git", "__pycache__", "target"}
DEFAULT_DEPTH = 2
SPRING_RESOURCES = "src/main/resources"  # Maven's and Gradle's: the classpath's root in the jar
FLYWAY_LAYOUT = f"{SPRING_RESOURCES}/db/migration"  # Spring Boot's spring.flyway.locations default
# the first found wins
PRISMA_LAYOUT = "prisma/migrations"  # Prisma Migrate's, beside prisma/schema.prisma
DRIZZLE_LAYOUT = "drizzle"  # drizzle-kit's default `out`
LAYOUTS = (
    MIGRATIONS,
    "db/migrations",
    "internal/db/migrations",
    "internal/migrations",
    FLYWAY_LAYOUT,
    PRISMA_LAYOUT,
    DRIZZLE_LAYOUT,
)
DRIZZLE_CONFIGS = ("drizzle.config.ts", "drizzle.config.mts", "drizzle.config.js", "drizzle.config.mjs")


def discover(
    root: Path, base: Path, patterns: list[str] | None = None, layouts: tuple[str, ...] = LAYOUTS
) -> dict[str, tuple[Path, str]]:
    """name -> (service directory, its migrations directory relative to it), the first of `layouts` it has,
    for the default layout under `base` or for `patterns` (relative to root)."""
    if patterns is None:  # services/web/db holding migrations/ is web's dbmate layout, not a service "web-db"
        found = [(base, d) for depth in range(1, DEFAULT_DEPTH + 1) for d in sorted(base.glob("/".join(["*"] * depth)))]
        found = [
            (b, d)
            for b, d in found
            if d.parent == base or (d.name != MIGRATIONS and f"{d.name}/{MIGRATIONS}" not in LAYOUTS)
        ]
    else:
        found = [(root / _base_of(p), Path(d)) for p in patterns for d in sorted(globbing.glob(str(root / p)))]
    found = [(b, d) for b, d in found if not _skipped(d, root)]
    layout_of = {d: _layout(d, layouts) for _, d in found}
    services = sorted((b, d) for b, d in found if layout_of[d] is not None)
    outer = {d for _, d in services}
    names: dict[str, tuple[Path, str]] = {}
    for service_base, directory in services:
        if any(parent in outer for parent in directory.parents):
            continue  # inside another service: its migrations are that service's business
        name = name_of(directory.relative_to(service_base).parts)
        if name in names and names[name][0] != directory:
            raise ConfigError(
                f"{names[name][0].relative_to(root)} and {directory.relative_to(root)} are both named service "
                f"{name!r}; rename one directory, or narrow services_dir in workspace.yaml"
            )
        names[name] = (directory, str(layout_of[directory]))
    return names


def name_of(parts: tuple[str, ...]) -> str:
    """A service's name from its path below its base: the parts joined by `-`, lower-cased, accents dropped, and
    any other run of characters a name cannot hold as one `-` (`services/OrderService` is `orderservice`,
    `services/Ordering.API` is `ordering-api`): a directory named as Java's or .NET's monorepos name them is still
    a service, reading `ORDERING_API_DATABASE_URL`. What no name can come of (`services/2fa`) is returned as it is,
    and refused where the service is read, naming the directory."""
    joined = "-".join(parts)
    # the directory's name as its bytes say (UTF-8), not as the locale decodes them: under an ASCII one `café` is
    # `caf` and two undecodable bytes, and the service would be another, of another variable, there alone
    spelled = joined.encode("utf-8", "surrogateescape").decode("utf-8", errors="replace")
    ascii_only = unicodedata.normalize("NFKD", spelled).encode("ascii", "ignore").decode().lower()
    name = re.sub(r"[^a-z0-9_-]+", "-", ascii_only).strip("-")
    return name if SERVICE_NAME.fullmatch(name) else joined


def _layout(directory: Path, layouts: tuple[str, ...]) -> str | None:
    """The first of `layouts` holding SQL; else the first layout, even empty (a new service). Another layout
    without SQL is no service's: internal/migrations of Go code is a package, an empty db/migrations a leftover."""
    try:
        names = set(os.listdir(directory))  # one read of the directory, then a stat only where a layout can be
    except OSError:  # a file, or unreadable: no service
        return None
    if "src" in names and layouts == LAYOUTS:
        layouts = (*spring_flyway_locations(directory), *layouts)
    if ATLAS_CONFIG in names and layouts[-len(LAYOUTS) :] == LAYOUTS:
        layouts = (*atlas_migration_dirs(directory), *layouts)
    if layouts[-len(LAYOUTS) :] == LAYOUTS and names.intersection(DRIZZLE_CONFIGS):
        layouts = (*layouts, *drizzle_out(directory))
    existing = [m for m in layouts if m.split("/", 1)[0] in names and (directory / m).is_dir()]
    first = layouts[0] if existing[:1] == [layouts[0]] else None  # the only one that may be empty
    if existing == [first]:
        return first  # the common case: no other layout to compare with, its files not listed
    return next((m for m in existing if _holds_sql(directory / m)), first)


def _holds_sql(directory: Path) -> bool:
    """SQL files, or a directory per migration holding one (Prisma's and drizzle-kit 1.0's <name>/migration.sql, or
    Prisma's lock file alone before the first migration)."""
    if any(directory.glob("*.sql")):
        return True
    return (directory / "migration_lock.toml").is_file() or any(directory.glob("*/migration.sql"))


def drizzle_out(service: Path) -> tuple[str, ...]:
    """The `out` directory a service's drizzle.config.ts names (out: "./db/drizzle"), relative to the service, when
    its syntax tree gives it as a plain string inside the service; () otherwise (a config computed at run time)."""
    from migratekit.model.syntax import GRAMMARS, nodes, string_value, tree

    for name in DRIZZLE_CONFIGS:
        try:
            text = (service / name).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        pairs = nodes(tree(GRAMMARS[Path(name).suffix], text), {"pair"})
        values = [string_value(p.children[-1]) for p in pairs if p.children and _key(p.children[0]) == "out"]
        if not values or values[0] is None:
            return ()
        out = Path(values[0].strip())
        if out.is_absolute() or ".." in out.parts or not out.parts:
            return ()
        return (out.as_posix().removeprefix("./").strip("/"),)
    return ()


def _key(node: Node) -> str | None:
    """An object key as written: `out:` or `"out":`."""
    from migratekit.model.syntax import string_value

    return (node.text or b"").decode() if node.type == "property_identifier" else string_value(node)


SPRING_CONFIGS = ("application.yml", "application.yaml", "application.properties")


def spring_settings(service: Path) -> dict[str, str]:
    """A Spring Boot service's main settings, flattened (spring.flyway.enabled -> false), from
    src/main/resources/application.yml/.yaml/.properties (not a profile's); {} when it has none."""
    settings: dict[str, str] = {}
    for name in SPRING_CONFIGS:
        for key, value in spring_file_settings(service / SPRING_RESOURCES / name).items():
            settings.setdefault(key, value)
    return settings


def spring_file_settings(path: Path) -> dict[str, str]:
    """One Spring Boot configuration file's settings, flattened; {} when it is absent or does not read."""
    settings: dict[str, str] = {}
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return settings
    if path.suffix == ".properties":
        for line in text.splitlines():
            key, sep, value = line.strip().partition("=") if "=" in line else line.strip().partition(":")
            if sep and not key.startswith(("#", "!")):
                settings.setdefault(key.strip(), value.strip())
        return settings
    try:
        for document in yaml.safe_load_all(text):
            _flatten(document, "", settings)
    except yaml.YAMLError:
        return {}
    return settings


def _flatten(value: object, prefix: str, into: dict[str, str]) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _flatten(inner, f"{prefix}{key}.", into)
    elif prefix:
        text = ",".join(map(str, value)) if isinstance(value, list) else str(value)
        into.setdefault(prefix[:-1], text.lower() if isinstance(value, bool) else text)


def spring_flyway_locations(service: Path) -> tuple[str, ...]:
    """The directories, relative to the service, that `spring.flyway.locations` names (classpath: is below
    src/main/resources; filesystem: is relative to the service); () when it is not set."""
    settings = spring_settings(service)
    raw = settings.get("spring.flyway.locations") or settings.get("spring.flyway.location") or ""
    found = []
    for location in (part.strip() for part in raw.split(",")):
        if location.startswith("classpath:"):
            found.append(f"{SPRING_RESOURCES}/{location.removeprefix('classpath:').strip('/')}")
        elif location.startswith("filesystem:"):
            path = location.removeprefix("filesystem:").strip()
            if path and not Path(path).is_absolute() and ".." not in Path(path).parts:
                found.append(path.strip("/"))
        elif location and "{" not in location and ":" not in location:
            found.append(f"{SPRING_RESOURCES}/{location.strip('/')}")  # Flyway's default prefix is classpath:
    return tuple(found)


ATLAS_CONFIG = "atlas.hcl"


def atlas_migration_dirs(service: Path) -> tuple[str, ...]:
    """The directories, relative to the service, that its atlas.hcl's envs migrate from (`migration { dir =
    "file://…" }`, read with an HCL parser); () when it names none there (an absolute path, one leaving the service,
    or one built from a variable is not the service's layout). An atlas.hcl that does not parse is bad input."""
    path = service / ATLAS_CONFIG
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ()
    import hcl2  # only for a service with an atlas.hcl: its grammar takes a tenth of a second to load

    try:
        document = hcl2.loads(text)
    except Exception as exc:  # lark's errors, which name the line and column
        said = " ".join(str(exc).split())[:200]
        raise ConfigError(f"{path}: not HCL ({said}); atlas migrate refuses it too: correct it") from None
    found: list[str] = []
    for env in _blocks(document.get("env")):
        for migration in _blocks(env.get("migration")):
            value = str(migration.get("dir", "")).strip('"')
            if not value.startswith("file://") or "${" in value:
                continue
            directory = value.removeprefix("file://").split("?", 1)[0]
            relative = directory.strip().strip("/") if not directory.startswith("/") else ""
            if relative and ".." not in Path(relative).parts and relative not in found:
                found.append(relative)
    return tuple(found)


def _blocks(value: object) -> list[dict]:
    """python-hcl2's blocks of one type: a list of {label: body} (env "prod" {…}) or of bodies (migration {…})."""
    bodies: list[dict] = []
    for item in value if isinstance(value, list) else []:
        if isinstance(item, dict) and item.get("__is_block__"):
            bodies.append(item)
        elif isinstance(item, dict):
            bodies += [body for body in item.values() if isinstance(body, dict)]
    return bodies


def base_of(pattern: str) -> str:
    return _base_of(pattern)


def _base_of(pattern: str) -> str:
    """The leading part of a glob pattern that has no wildcard: where its services' names start."""
    parts = []
    for part in Path(pattern).parts:
        if globbing.has_magic(part):
            break
        parts.append(part)
    else:  # no wildcard (services_dir: [services/auth]): the directory is the service, named as its last part
        parts = parts[:-1]
    return "/".join(parts)


def _skipped(directory: Path, root: Path) -> bool:
    parts = directory.relative_to(root).parts if directory.is_relative_to(root) else directory.parts
    return not all(map(_kept, parts))


def _kept(name: str) -> bool:
    """A directory walked for services, migrations or sources: not vendored, built or hidden."""
    return name not in SKIP and not name.startswith(".")


# A Rust service's migration tool, from its Cargo.toml: its files' names alone are the seed's or golang-migrate's
CARGO_TOOLS = (("sqlx", re.compile(r"(?m)^\s*(?:sqlx\s*=|\[(?:[\w.-]+\.)?dependencies\.sqlx\])")),)


def build_format(service: Path) -> str | None:
    """The format a service's build says its migrations are in (a Cargo.toml depending on sqlx: sqlx), or None."""
    try:
        cargo = (service / "Cargo.toml").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    return next((tool for tool, pattern in CARGO_TOOLS if pattern.search(cargo)), None)


SOURCE_LANGUAGES = {".go": "go", ".ts": "typescript", ".py": "python", ".js": "javascript", ".rs": "rust"}


def guess_language(path: Path) -> str:
    """A service's language from its build manifest, else from most of its source files (one Go module at the
    monorepo's root has no go.mod per service); workspace.yaml's `language:` overrides it."""
    for marker, language in (
        ("tsconfig.json", "typescript"),
        ("package.json", "javascript"),
        ("pyproject.toml", "python"),
        ("requirements.txt", "python"),
        ("go.mod", "go"),
        ("Cargo.toml", "rust"),
        ("pom.xml", "java"),
    ):
        if (path / marker).exists():
            return language
    counts: dict[str, int] = {}
    seen = 0
    for _directory, subdirs, files in os.walk(path):
        subdirs[:] = filter(_kept, subdirs)
        for name in files[: 500 - seen]:  # enough to tell, however many migrations a service has
            found = SOURCE_LANGUAGES.get(os.path.splitext(name)[1])
            if found:
                counts[found] = counts.get(found, 0) + 1
        seen += len(files)
        if seen >= 500:
            break
    return max(counts, key=lambda k: counts[k]) if counts else "unknown"


@dataclass(frozen=True)
class Layout:
    """Where a monorepo that has no service in a known place keeps them: `invoke init` writes it down."""

    services_dir: str  # the directory above the services: internal/services
    migrations: str  # each service's migrations directory, relative to it: storage/migrations
    services: tuple[str, ...]  # the directories below services_dir that hold them
    others: tuple[str, ...] = ()  # migrations directories of another shape, left to the user


def migration_dirs(root: Path, depth: int = 6) -> list[str]:
    """Every directory named `migrations` (or Flyway's `db/migration`) holding `.sql` files, up to `depth` levels
    down (Maven's src/main/resources/db/migration: 5 below its module), relative to root; never inside
    node_modules, vendor, dist, build or a dot-directory."""
    found = []
    for directory, subdirs, files in os.walk(root):
        relative = Path(directory).relative_to(root)
        flyway = relative.as_posix().endswith(FLYWAY_LAYOUT)
        limit = depth + 3 if SPRING_RESOURCES in relative.as_posix() else depth
        subdirs[:] = [] if len(relative.parts) >= limit else sorted(filter(_kept, subdirs))
        if (relative.name == MIGRATIONS or flyway) and any(f.endswith(".sql") for f in files):
            found.append(relative.as_posix())
    return sorted(found)


def infer_layout(paths: list[str]) -> Layout | None:
    """The shape most of `paths` share, with one varying part: the service's directory.

    internal/services/users/storage/migrations and internal/services/chat/storage/migrations are two services
    below internal/services, each with storage/migrations. None when no two directories share a shape.
    """
    groups: dict[tuple[str, str], set[str]] = {}
    for path in paths:
        parts = path.split("/")
        for i in range(len(parts) - 1):
            key = ("/".join(parts[:i]) or ".", "/".join(parts[i + 1 :]))
            groups.setdefault(key, set()).add(parts[i])
    shared = [(len(names), -len(key[0]), key) for key, names in groups.items() if len(names) >= 2]
    if not shared:
        return None
    _, _, (services_dir, migrations) = max(shared)
    services = tuple(sorted(groups[services_dir, migrations]))
    prefix = "" if services_dir == "." else services_dir + "/"
    covered = {f"{prefix}{name}/{migrations}" for name in services}
    return Layout(services_dir, migrations, services, tuple(p for p in paths if p not in covered))
