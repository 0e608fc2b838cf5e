"""Where each service's database comes from, and how a URL is shown without its password.

One resolver for every task and for the tests: the service's URL variable when it is set,
otherwise a database of the embedded cluster named after the service (or its `database` key).
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from migratekit.errors import ConfigError
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
    url = (os.environ if environ is None else environ).get(service.database_url_env, "").strip()
    if url:
        _validate(url, service)
        return DatabaseSource(service.name, "url", service.database_url_env, service.database, url)
    return DatabaseSource(service.name, "embedded", service.database_url_env, service.database)


@dataclass(frozen=True)
class DatabaseIdentity:
    """Which database a service's migrations go to, and which tracking table records them.

    Two services with one identity would write each other's rows; two with one `database` share a
    schema namespace and are replayed, verified and ordered together.
    """

    database: str  # host:port/dbname for a URL, embedded/<name> for the embedded cluster
    tracking_table: str  # always schema-qualified: schema_migrations is public.schema_migrations


def identity(service: Service, environ: Mapping[str, str] | None = None) -> DatabaseIdentity:
    """The one definition of "the same database" and "the same tracking table", used by every task."""
    source = resolve(service, environ)
    table = service.tracking_table if "." in service.tracking_table else f"public.{service.tracking_table}"
    if source.url is None:
        return DatabaseIdentity(f"embedded/{source.database}", table)
    return DatabaseIdentity(_server_database(source.url), table)


@functools.lru_cache(maxsize=4096)
def _server_database(url: str) -> str:
    """host:port/dbname of a URL; parsed once per run (a run asks it for every service, more than once)."""
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(url)
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


def connection_urls(
    root: Path,
    services: Iterable[Service],
    environ: Mapping[str, str] | None = None,
    create: bool = True,
    notify: Callable[[str], None] | None = None,
) -> dict[str, str | None]:
    """A URL for every service, starting the embedded cluster and creating databases only if needed.

    With create=False nothing is started or created: an embedded database that does not exist
    yet maps to None (a dry run treats it as empty). `notify` hears that the embedded cluster was
    started (it keeps running), or that it is stopped, so nobody is surprised by either.
    """
    from migratekit.database.embedded import Embedded  # psycopg is loaded only by tasks that use a database

    urls: dict[str, str | None] = {}
    embedded = Embedded(root, environ=environ)
    embedded_services = []
    for service in services:
        source = resolve(service, environ)
        if source.url:
            urls[service.name] = source.url
        else:
            embedded_services.append(source)
    if not embedded_services:
        return urls
    was_running = embedded.running() is not None
    for source in embedded_services:
        if create:
            urls[source.service] = embedded.ensure_database(source.database)
        else:
            urls[source.service] = embedded.existing_database(source.database) if was_running else None
    if notify and not was_running:
        server = embedded.running()
        if create and server is not None:
            notify(
                f"started the embedded PostgreSQL at {server.url()} ({server.binaries.source} binaries, data in "
                f"{server.datadir}); it keeps running between commands: invoke db-down stops it"
            )
        elif not create:
            notify("the embedded PostgreSQL is not running (invoke db-up starts it): its databases are read as empty")
    return urls


def existing_url(root: Path, service: Service, needed_for: str) -> str:
    """The URL of a database a command reads history from: never created, refused when absent."""
    url = connection_urls(root, [service], create=False)[service.name]
    if url is None:
        raise ConfigError(f"{service.name}'s database does not exist yet: {needed_for}")
    return url


def _validate(url: str, service: Service) -> None:
    problem = url_problem(url)
    if problem:
        raise ConfigError(
            f"${service.database_url_env} (service {service.name}) is not a valid PostgreSQL URL "
            f"({redact(url)}): {problem}; use postgresql://user:password@host:5432/dbname"
        )


@functools.lru_cache(maxsize=4096)
def url_problem(url: str) -> str | None:
    """Why libpq would refuse `url` (None when it would not): its scheme, syntax or port. Never the password."""
    from psycopg.conninfo import conninfo_to_dict

    if "://" in url and not re.match(r"^postgres(?:ql)?://", url):
        return f"the scheme {url.split('://', 1)[0]}:// is not postgresql://"
    try:
        params = conninfo_to_dict(url)
    except Exception as exc:  # psycopg raises ProgrammingError with libpq's reason, which may quote the password
        reason = str(exc).strip()
        for secret in _passwords(url):
            reason = reason.replace(secret, "***")
        return redact(reason)
    for port in str(params.get("port") or "5432").split(","):
        if not port.isdigit() or not 0 < int(port) < 65536:
            return f"port {port!r} is not a number from 1 to 65535"
    return None


def with_database(url: str, database: str) -> str:
    """The same server and credentials, another database."""
    from psycopg.conninfo import make_conninfo

    return make_conninfo(url, dbname=database)


_KEYWORD_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|[^&\s]+)", re.IGNORECASE)
# user:password@ after a scheme (postgresql://, jdbc:postgresql://, mysql://…), the start, or a space:
# everything up to the last @ of the token is the password, however it is escaped (or not).
_USERINFO = re.compile(r"((?:^|://|\s)[^\s:/@]*:)(?!//)(?![^\s@]*://)\S*@")


def _passwords(text: str) -> list[str]:
    """The password parts of `text`, longest first, as `redact` would hide them."""
    found = [m[0][len(m[1]) : -1] for m in _USERINFO.finditer(text)]
    found += [m[2].strip("'") for m in _KEYWORD_PASSWORD.finditer(text)]
    return sorted((f for f in found if f), key=len, reverse=True)


def redact(text: str) -> str:
    """`text` with every password replaced by `***`: any string, URL or not, well-formed or not."""
    return _USERINFO.sub(r"\1***@", _KEYWORD_PASSWORD.sub(r"\1***", text))
