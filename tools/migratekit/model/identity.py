"""Where each service's database is, and which services share a database or a tracking table.

One resolver for every task and for the tests: the service's URL variable when it is set,
otherwise a database of the embedded cluster named after the service (or its `database` key).
Nothing here connects or starts anything; database.urls turns sources into URLs.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from migratekit.errors import ConfigError
from migratekit.model.contract import qualified
from migratekit.model.secrets import redact, url_params, url_problem
from migratekit.model.settings import EMBEDDED_ENV
from migratekit.model.workspace import Service


@dataclass(frozen=True)
class DatabaseSource:
    """Where one service's database is; `url` (which may hold a password) is never shown."""

    service: str
    kind: str  # "url": from the environment variable; "embedded": the toolkit's own cluster
    env_var: str
    database: str
    url: str | None = field(default=None, repr=False)

    def describe(self) -> str:
        if self.kind == "url" and self.url:
            return redact(self.url)
        return f"embedded/{self.database}"


def resolve(service: Service, environ: Mapping[str, str] | None = None) -> DatabaseSource:
    """The source of one service's database; pure, starts nothing."""
    url = (os.environ if environ is None else environ).get(service.settings.database_url_env, "").strip()
    if url:
        url = as_libpq(url, f"${service.settings.database_url_env} (service {service.name})")
        _validate(url, service)
        return DatabaseSource(service.name, "url", service.settings.database_url_env, service.database, url)
    return DatabaseSource(service.name, "embedded", service.settings.database_url_env, service.database)


@dataclass(frozen=True)
class DatabaseIdentity:
    """Which database a service's migrations go to, and which tracking table records them.

    Two services with one identity would write each other's rows; two with one `database` share a
    schema namespace and are replayed, verified and ordered together.
    """

    database: str  # host:port/dbname for a URL, embedded/<name> for the embedded cluster
    tracking_table: str  # always schema-qualified: schema_migrations is public.schema_migrations


TRUE = ("1", "true", "yes", "on")
FALSE = ("", "0", "false", "no", "off")
# What says "this runs in CI": CI itself (GitHub, GitLab, CircleCI, Travis, Buildkite, Woodpecker…, whatever its
# value but a false one), and the systems that set a variable of their own instead (Jenkins, Azure, CodeBuild, TeamCity)
CI_VARIABLES = ("CI", "JENKINS_URL", "TF_BUILD", "CODEBUILD_BUILD_ID", "TEAMCITY_VERSION")


def in_ci(environ: Mapping[str, str]) -> str | None:
    """The variable that says this runs in CI, or None."""
    return next((v for v in CI_VARIABLES if environ.get(v, "").strip().lower() not in FALSE), None)


def embedded_refusal(
    sources: Iterable[DatabaseSource], environ: Mapping[str, str], allowed: bool, beside: Iterable[DatabaseSource] = ()
) -> str | None:
    """Why services without a URL must not fall back to the embedded PostgreSQL here, or None when they may.

    On a laptop with no URL set, the embedded server is the default. In CI, or beside services of the workspace
    that do have URLs (`beside`: the others, for a command on one service), a missing variable is far more likely
    a misnamed secret than a wish for a throwaway local server: migrating into one would be a green run that
    migrated nothing.
    """
    missing = [s for s in sources if s.url is None]
    if not missing or allowed or environ.get(EMBEDDED_ENV, "").strip().lower() in TRUE:
        return None
    having = sorted({s.service for s in (*sources, *beside) if s.url})
    ci = in_ci(environ)
    if ci is not None:
        why = f"${ci} says this runs in CI"
    elif having:
        shown = ", ".join(having[:3]) + (" …" if len(having) > 3 else "")
        why = f"{shown} {'has' if len(having) == 1 else 'have'} one"
    else:
        return None
    variables = ", ".join(f"${s.env_var} ({s.service})" for s in missing)
    return (
        f"no database URL: {variables} not set, and {why}, so the embedded PostgreSQL is not used in its place; "
        f"set the variable, or ask for the embedded server: --embedded, {EMBEDDED_ENV}=1, or embedded: true in "
        "workspace.yaml"
    )


def identity(service: Service, environ: Mapping[str, str] | None = None) -> DatabaseIdentity:
    """The one definition of "the same database" and "the same tracking table", used by every task."""
    source = resolve(service, environ)
    table = qualified(service.settings.tracking_table)
    if source.url is None:
        return DatabaseIdentity(f"embedded/{source.database}", table)
    return DatabaseIdentity(_server_database(source.url), table)


@functools.lru_cache(maxsize=4096)
def _server_database(url: str) -> str:
    """host:port/dbname of a URL; parsed once per run (a run asks it for every service, more than once)."""
    params = url_params(url)
    host = str(params.get("host") or params.get("hostaddr") or "localhost")
    port = str(params.get("port") or "5432")
    return f"{host}:{port}/{params.get('dbname') or params.get('user') or ''}"


def shared_databases(
    services: Iterable[Service], environ: Mapping[str, str] | None = None
) -> list[tuple[DatabaseIdentity, list[str]]]:
    """Services grouped by database, in the order given (dependency order, when that is what was given)."""
    groups: dict[str, list[str]] = {}
    first: dict[str, DatabaseIdentity] = {}
    for service in services:
        found = identity(service, environ)
        groups.setdefault(found.database, []).append(service.name)
        first.setdefault(found.database, found)
    return [(first[database], names) for database, names in groups.items()]


def neighbours(services: Sequence[Service], environ: Mapping[str, str] | None = None) -> dict[str, tuple[str, ...]]:
    """Each service's neighbours: the tracking tables of the other services in its database (their history, not
    its own: see adopt.history_elsewhere)."""
    tables = {service.name: identity(service, environ).tracking_table for service in services}
    return {
        name: tuple(tables[other] for other in names if other != name)
        for _, names in shared_databases(services, environ)
        for name in names
    }


def shared_tracking_tables(
    services: Iterable[Service], environ: Mapping[str, str] | None = None
) -> list[tuple[DatabaseIdentity, list[str]]]:
    """Groups of two or more services that would record their migrations in one table of one database."""
    groups: dict[DatabaseIdentity, list[str]] = {}
    for service in services:
        groups.setdefault(identity(service, environ), []).append(service.name)
    return [(found, names) for found, names in groups.items() if len(names) > 1]


COMPOSE_FILE = re.compile(r"^(docker-)?compose([.-][\w.-]+)?\.ya?ml$")


@dataclass(frozen=True)
class Configured:
    """A database URL the repository's own configuration gives a service (a compose file's environment, the
    service's .env): where its database is when it runs, whatever this shell's variables say."""

    service: str
    database: str  # host:port/dbname, as identity() names it
    path: Path  # the file that says so
    variable: str


def configured_databases(root: Path, services: Iterable[Service]) -> dict[str, Configured]:
    """Each service's database from the repository's compose files (a compose service named as it is, or built from
    its directory, with a *DATABASE_URL variable in `environment:`) or from its own .env; a URL with ${…} in it, or
    one that is not a PostgreSQL URL, says nothing."""
    wanted = list(services)
    found: dict[str, Configured] = {}
    for service in wanted:
        env = service.path / ".env"
        for variable, value in _dotenv(env).items():
            _take(found, service.name, env, variable, value)
    composes = [p for d in (root, *(s.path for s in wanted)) if d.is_dir() for p in sorted(d.iterdir())]
    for path in (p for p in composes if COMPOSE_FILE.match(p.name) and p.is_file()):
        try:
            document = yaml.safe_load(path.read_text(encoding="utf-8", errors="replace"))
        except (yaml.YAMLError, OSError):
            continue
        entries = document.get("services") if isinstance(document, dict) else None
        for name, spec in (entries or {}).items() if isinstance(entries, dict) else ():
            if not isinstance(spec, dict):
                continue
            owner = next((s for s in wanted if _composes(s, str(name), spec, path.parent)), None)
            if owner is not None:
                for variable, value in _environment(spec.get("environment")).items():
                    _take(found, owner.name, path, variable, value)
    return found


def _composes(service: Service, name: str, spec: dict, where: Path) -> bool:
    build = spec.get("build")
    context = build.get("context") if isinstance(build, dict) else build
    if isinstance(context, str) and (where / context).resolve() == service.path.resolve():
        return True
    return name == service.name


def _environment(raw: object) -> dict[str, str]:
    if isinstance(raw, dict):
        return {str(k): str(v) for k, v in raw.items() if v is not None}
    if isinstance(raw, list):
        return dict(str(item).partition("=")[::2] for item in raw if "=" in str(item))
    return {}


def _dotenv(path: Path) -> dict[str, str]:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return {}
    pairs = (line.removeprefix("export ").partition("=") for line in lines if not line.lstrip().startswith("#"))
    return {k.strip(): v.strip().strip("'\"") for k, sep, v in pairs if sep}


def _take(found: dict[str, Configured], service: str, path: Path, variable: str, value: str) -> None:
    if not variable.endswith("DATABASE_URL") or "${" in value or url_problem(value) or service in found:
        return
    try:
        found[service] = Configured(service, _server_database(value), path, variable)
    except Exception:  # noqa: BLE001 (psycopg's parser: any error means it is not a URL to compare)
        return


def configured_sharing(
    root: Path, services: Iterable[Service], environ: Mapping[str, str] | None = None
) -> list[tuple[str, str, list[Configured]]]:
    """(database, tracking table, the services) for two or more services the repository's configuration puts in one
    database with one tracking table, where this shell's variables do not say otherwise (then identity() tells)."""
    environ = os.environ if environ is None else environ
    listed = [s for s in services if not environ.get(s.settings.database_url_env, "").strip()]
    configured = configured_databases(root, listed)
    groups: dict[tuple[str, str], list[Configured]] = {}
    for service in listed:
        if service.name in configured:
            key = (configured[service.name].database, qualified(service.settings.tracking_table))
            groups.setdefault(key, []).append(configured[service.name])
    return [(database, table, found) for (database, table), found in groups.items() if len(found) > 1]


# Prisma's own arguments of a PostgreSQL URL (prisma.io/docs, "Arguments"), which libpq refuses as unknown: a
# service's Prisma URL (`?schema=public`, the example of Prisma's docs) is the URL its deployment already has.
PRISMA_POOL = ("connection_limit", "pool_timeout", "socket_timeout", "statement_cache_size", "sslaccept")
PRISMA_REFUSED = {
    "pgbouncer": "it goes through PgBouncer's transaction pooling, where the migration lock (a session's advisory "
    "lock) and the timeouts set for each file do not hold; give the direct URL (Prisma's directUrl)",
    "sslidentity": "libpq reads no PKCS#12 identity; give the client certificate and key as sslcert and sslkey "
    "(sslpassword: the key's password)",
}
SIMPLE_SCHEMA = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")


def as_libpq(url: str, where: str) -> str:
    """`url` as libpq reads it: a Prisma URL's `schema` becomes the session's search_path (where Prisma creates and
    looks for the service's tables), its pool arguments are dropped (one connection here). A URL libpq reads is
    returned as it is. ConfigError, naming `where`, for an argument whose meaning cannot be kept."""
    from urllib.parse import quote, unquote, unquote_to_bytes, urlsplit, urlunsplit

    if "://" not in url or "?" not in url:
        return url
    parts = urlsplit(url)
    # Each argument as written, its name and value decoded as libpq decodes them (%XX only: a + is a +); the ones
    # kept go back as written, never decoded and encoded again.
    arguments = [(unquote(piece.partition("=")[0]), piece) for piece in parts.query.split("&")]
    names = {name for name, _ in arguments}
    if not names & {"schema", *PRISMA_POOL, *PRISMA_REFUSED}:
        return url

    def value(piece: str) -> str:
        return unquote(piece.partition("=")[2])

    for name, piece in arguments:
        if name in PRISMA_REFUSED and (name != "pgbouncer" or value(piece).lower() in ("true", "1")):
            shown = f"{name}={value(piece)}" if name == "pgbouncer" else name
            raise ConfigError(f"{where}: the URL's {shown}: {PRISMA_REFUSED[name]}")
    kept: list[tuple[str, str]] = []
    search_path = None
    for name, piece in arguments:
        if name == "schema":
            schema = value(piece)
            if not SIMPLE_SCHEMA.fullmatch(schema):
                raise ConfigError(
                    f"{where}: the URL's schema={schema!r} is not a plain schema name; set the search_path "
                    "with options=-c search_path=... instead"
                )
            search_path = schema if schema == schema.lower() else f'"{schema}"'  # Prisma's schema is as written
        elif name not in PRISMA_POOL and name != "pgbouncer":
            kept.append((name, piece))
    if search_path is not None:
        options = next((unquote_to_bytes(p.partition("=")[2]) for n, p in kept if n == "options"), b"")
        added = (options + f" -c search_path={search_path}".encode()).strip()
        kept = [(n, p) for n, p in kept if n != "options"]
        kept.append(("options", f"options={quote(added, safe='')}"))
    # Prisma reads no fragment; libpq would read it as part of the last argument (the search_path)
    return urlunsplit(parts._replace(query="&".join(p for _, p in kept), fragment=""))


def _validate(url: str, service: Service) -> None:
    problem = url_problem(url)
    if problem:
        raise ConfigError(
            f"${service.settings.database_url_env} (service {service.name}) is not a valid PostgreSQL URL "
            f"({redact(url)}): {problem}; use postgresql://user:password@host:5432/dbname"
        )


def with_database(url: str, database: str) -> str:
    """The same server and credentials, another database."""
    from psycopg.conninfo import make_conninfo

    return make_conninfo(url, dbname=database)
