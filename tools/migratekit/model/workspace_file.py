"""workspace.yaml: read safely, every key's line remembered, validated against the services on disk.

workspace.yaml is optional; without it every directory below `<services_dir>` holding migrations in a
known layout (discovery.LAYOUTS) is a service with the defaults. Validation is strict because a typo in
a deploy tool's config (`depends-on` for `depends_on`) must fail loudly, not reorder runs; every error
names the file and line at fault.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml

from migratekit.errors import ConfigError
from migratekit.files import resolved
from migratekit.model.contract import MAX_TRACKING_NAME
from migratekit.model.discovery import LAYOUTS, base_of, discover, guess_language
from migratekit.model.formats import FORMATS
from migratekit.model.settings import (
    DURATION,
    MIGRATIONS,
    RULE_CODE,
    SERVICE_DEFAULTS,
    SERVICE_NAME,
    SERVICE_SETTINGS,
    SERVICES_DIR,
    WORKSPACE_FILE,
    ServiceSettings,
)
from migratekit.model.workspace import (
    LANGUAGES,
    QUALIFIED_TABLE,
    FileIgnore,
    Service,
    Workspace,
    env_name,
    relative,
)

MAX_WORKSPACE_BYTES = 1_000_000
MAX_ALIASES = 100


# libyaml's parser where PyYAML was built with it: every command reads this file first, and the
# pure-Python parser is several times slower. Its error messages are vaguer, so a file that fails
# is parsed again by the pure-Python parser for the message.
_FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_yaml(path: Path) -> tuple[dict[str, Any], dict[tuple[str, ...], int]]:
    if path.stat().st_size > MAX_WORKSPACE_BYTES:
        raise ConfigError(
            f"{path}: larger than {MAX_WORKSPACE_BYTES} bytes; a workspace file is a short list of services"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8") from None
    try:
        try:
            node, data = _parse_yaml(path, text, _FAST_LOADER)
        except yaml.YAMLError:
            node, data = _parse_yaml(path, text, yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f":{mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}{where}: invalid YAML: {exc.problem or exc.context}; fix the syntax") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None
    if data is None:
        return {}, {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}:1: the top level must be a mapping (version, services_dir, defaults, services)")
    lines: dict[tuple[str, ...], int] = {}
    _collect_lines(path, node, (), lines)
    return data, lines


def _parse_yaml(path: Path, text: str, loader_class: Any) -> tuple[yaml.Node | None, Any]:
    """The document's node tree (for line numbers) and its data, from one parse; aliases counted first."""
    aliases = sum(isinstance(event, yaml.AliasEvent) for event in yaml.parse(text, Loader=loader_class))
    if aliases > MAX_ALIASES:
        raise ConfigError(f"{path}: {aliases} YAML aliases; a workspace file needs few or none (alias bomb?)")
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
        return node, loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()


def _collect_lines(
    path: Path,
    node: yaml.Node | None,
    prefix: tuple[str, ...],
    out: dict[tuple[str, ...], int],
    seen: set[int] | None = None,
) -> None:
    """Record the line of every mapping key so errors can point into the file (each node once).

    A key given twice in one mapping is an error: YAML loaders keep the last without a word, so a service's
    first entry (its tracking_table, say) would silently stop applying. A key that overrides one merged in
    with `<<: *anchor` is how merge keys are meant to be used (the loader has copied the merged keys in).
    """
    seen = set() if seen is None else seen
    if isinstance(node, yaml.MappingNode) and id(node) not in seen:
        seen.add(id(node))
        here: dict[str, int] = {}
        for key_node, value_node in node.value:
            name, line = str(key_node.value), key_node.start_mark.line + 1
            merged = id(key_node) in seen  # a merge key's (<<: *common) copy: the mapping's own key overrides it
            seen.add(id(key_node))
            if merged:
                continue
            if name in here and name != "<<":
                dotted = ".".join((*prefix, name))
                raise ConfigError(
                    f"{path}:{line}: {dotted} is given twice (first on line {here[name]}); YAML would keep only "
                    "this one without a word: merge the two into one"
                )
            here[name] = line
            key = (*prefix, name)
            out[key] = line
            _collect_lines(path, value_node, key, out, seen)
    elif isinstance(node, yaml.SequenceNode) and id(node) not in seen:  # a list's items: `ignore: [{files: …}]`
        seen.add(id(node))
        for index, item in enumerate(node.value):
            out[(*prefix, str(index))] = item.start_mark.line + 1
            _collect_lines(path, item, (*prefix, str(index)), out, seen)


class Checker:
    """Validation helpers that turn a bad value into an error naming file, line and key (from read_yaml's lines)."""

    def __init__(self, path: Path | None, lines: dict[tuple[str, ...], int]):
        self.path = path
        self.lines = lines

    def fail(self, key: tuple[str, ...], problem: str) -> ConfigError:
        where = str(self.path or WORKSPACE_FILE) + self._line(key)
        dotted = ".".join(key)
        return ConfigError(f"{where}: {dotted}: {problem}" if dotted else f"{where}: {problem}")

    def _line(self, key: tuple[str, ...]) -> str:
        line = next((self.lines[key[:n]] for n in range(len(key), 0, -1) if key[:n] in self.lines), None)
        return f":{line}" if line else ""  # the key's own line, else (a key that is missing) its entry's

    def where(self, key: tuple[str, ...]) -> str:
        """The file's name and the key's line (workspace.yaml:3), for an error found after the file was read."""
        return (self.path.name if self.path else WORKSPACE_FILE) + self._line(key)

    def mapping(self, value: Any, key: tuple[str, ...], allowed: set[str]) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(key, f"must be a mapping, not {type(value).__name__}")
        for k in value:
            if not isinstance(k, str) or k not in allowed:
                raise self.fail((*key, str(k)), f"unknown key; allowed here: {', '.join(sorted(allowed))}")
        return value

    def string(self, value: Any, key: tuple[str, ...], pattern: re.Pattern[str] | None = None, hint: str = "") -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(key, f"must be a non-empty string, not {value!r}")
        if pattern is not None and not pattern.fullmatch(value):
            raise self.fail(key, f"{value!r} is not valid; {hint}")
        return value


FORMAT_NAME = re.compile(rf"^(?:auto|{'|'.join(FORMATS)})$")

TOP_KEYS = {"version", "services_dir", "defaults", "services", "environments", "embedded", "baseline"}
DEFAULT_KEYS = {*SERVICE_SETTINGS, "migrations", "type_advice"}  # migrations: unset, the first layout on disk
SERVICE_KEYS = DEFAULT_KEYS | {"language", "depends_on", "database", "ignore", "gaps", "create_database"}

BUILTIN_DEFAULTS: dict[str, str] = {key: getattr(SERVICE_DEFAULTS, key) for key in SERVICE_SETTINGS}


def find_root(start: Path | None = None) -> Path:
    """The monorepo root for `start` (default: the current directory).

    The nearest directory upwards holding workspace.yaml, else the nearest holding `services/`
    or `.git`, else `start` itself; so tasks work from any sub-directory of a checkout.
    """
    here = (start or Path.cwd()).resolve()
    for marker in (WORKSPACE_FILE, SERVICES_DIR, ".git"):
        for candidate in (here, *here.parents):
            if (candidate / marker).exists():
                return candidate
    return here


def load_workspace(root: Path | str | None = None) -> Workspace:
    """Read workspace.yaml (if any) under `root` and discover the services on disk."""
    if root is not None and not Path(root).is_dir():
        raise ConfigError(f"--root {root}: no such directory; pass the monorepo's root")
    root = find_root() if root is None else Path(root).resolve()
    config_path: Path | None = root / WORKSPACE_FILE
    raw: dict[str, Any] = {}
    lines: dict[tuple[str, ...], int] = {}
    if config_path is not None and config_path.is_file():
        raw, lines = read_yaml(config_path)
    else:
        config_path = None
    return build_workspace(root, raw, lines, config_path)


def build_workspace(
    root: Path, raw: dict[str, Any], lines: dict[tuple[str, ...], int], config_path: Path | None
) -> Workspace:
    """Validate parsed workspace.yaml data against the services on disk (pure apart from listing dirs)."""
    check = Checker(config_path, lines)
    top = check.mapping(raw, (), TOP_KEYS)
    version = top.get("version", 1)
    if version != 1:
        raise check.fail(("version",), f"unsupported version {version!r}; this migratekit reads version 1")
    services_dir, patterns = _services_dir(check, root, top.get("services_dir", SERVICES_DIR))

    defaults = dict(BUILTIN_DEFAULTS)
    advice = SERVICE_DEFAULTS.type_advice  # a flag, not a string: every service's unless its entry says
    for key, value in check.mapping(top.get("defaults"), ("defaults",), DEFAULT_KEYS).items():
        if key == "type_advice":
            advice = _flag(check, ("defaults", key), value)
        else:
            defaults[key] = _setting(check, ("defaults", key), key, value)

    raw_services = top.get("services")
    names = {str(k) for k in raw_services} if isinstance(raw_services, dict) else set()
    declared = check.mapping(raw_services, ("services",), names)
    try:
        on_disk = discover(
            root, services_dir, patterns, (defaults["migrations"],) if "migrations" in defaults else LAYOUTS
        )
    except ConfigError as exc:  # a line of workspace.yaml to name only where it sets services_dir
        raise (check.fail(("services_dir",), str(exc)) if "services_dir" in top else exc) from None

    services = {
        name: _service(check, root, on_disk.get(name, (services_dir / name, None)), name, declared, defaults, advice)
        for name in sorted(set(declared) | set(on_disk))
    }
    for name in declared:
        if not services[name].migrations_dir.is_dir():
            raise check.fail(
                ("services", name),
                f"declared, but {relative(root, services[name].migrations_dir)} does not exist; "
                "create it (invoke new-service), set migrations: to where its migrations are, or remove the entry",
            )
    readers: dict[str, str] = {}
    for name, svc in services.items():
        other = readers.setdefault(svc.settings.database_url_env, name)
        if other != name:
            raise check.fail(
                ("services", name),
                f"{other} and {name} both read ${svc.settings.database_url_env}, so they would share one database "
                "unknowingly; rename one, or give one its own database_url_env",
            )
    for name, svc in services.items():
        for dep in svc.depends_on:
            if dep == name:
                raise check.fail(("services", name, "depends_on"), f"{name} depends on itself; remove it")
            if dep not in services:
                raise check.fail(
                    ("services", name, "depends_on"),
                    f"{name} depends on unknown service {dep!r}; known: {', '.join(services)}",
                )
    environments = {}
    for env, template in check.mapping(
        top.get("environments"), ("environments",), set(top.get("environments") or ())
    ).items():
        environments[env] = _setting(check, ("environments", env), "database_url_env", template)
        _one_reader_each(check, env, environments[env], services)
    workspace = Workspace(
        root=root,
        config_path=config_path,
        services_dir=services_dir,
        services=services,
        environments=environments,
        embedded=_flag(check, ("embedded",), top.get("embedded", False)),
        migrations=defaults.get("migrations", MIGRATIONS),
        baseline=_baseline(check, root, top.get("baseline")),
        baseline_declared=check.where(("baseline",)) if "baseline" in top else None,
    )
    workspace.groups()  # raises on a cycle, naming it
    return workspace


def _one_reader_each(check: Checker, env: str, template: str, services: dict[str, Service]) -> None:
    """An environment's variable is each service's own: one for two (a template without {SERVICE}) and drift
    --envs read one database for both, each service's history judged against the other's."""
    readers: dict[str, str] = {}
    for name in services:
        variable = template.replace("{SERVICE}", env_name(name))
        other = readers.setdefault(variable, name)
        if other != name:
            raise check.fail(
                ("environments", env),
                f"{other} and {name} would both read ${variable} in {env}; put {{SERVICE}} in the variable's "
                f'name ("{{SERVICE}}_{env_name(env)}_DATABASE_URL")',
            )


def _baseline(check: Checker, root: Path, raw: Any) -> Path | None:
    """`baseline`: the audit's accepted findings, a file of the repository (written by --write-baseline)."""
    if raw is None:
        return None
    given = check.string(raw, ("baseline",))
    path = resolved(root / given)
    if path is None:
        raise check.fail(("baseline",), f"{given!r} is a link that leads back to itself; name the file")
    if Path(given).is_absolute() or not path.is_relative_to(root):
        raise check.fail(("baseline",), f"{given!r} points outside the repository; keep the baseline in it")
    return path


def on_disk(path: str) -> str:
    """A path written in workspace.yaml (UTF-8) as this process names files: under an ASCII locale `Café` is the
    directory whose bytes are its UTF-8, which Python spells with escapes (it could not encode the é: a traceback)."""
    return os.fsdecode(path.encode("utf-8", "surrogateescape"))


def _services_dir(check: Checker, root: Path, raw: Any) -> tuple[Path, list[str] | None]:
    """`services_dir`: one directory (the default layout below it) or a list of glob patterns."""
    patterns = raw if isinstance(raw, list) else None
    if patterns is not None and not all(isinstance(p, str) and p for p in patterns):
        raise check.fail(("services_dir",), "must be a directory or a list of glob patterns such as ['services/*']")
    patterns = None if patterns is None else [on_disk(p) for p in patterns]
    name = base_of(patterns[0]) if patterns else on_disk(check.string(raw, ("services_dir",)))
    for given in patterns or [name]:
        if ".." in Path(given).parts or Path(given).is_absolute():
            raise check.fail(("services_dir",), f"{given!r} points outside the repository")
    services_dir = (root / name).resolve()
    if not services_dir.is_relative_to(root):
        raise check.fail(("services_dir",), f"{name!r} points outside the repository")
    return services_dir, patterns


def _service(
    check: Checker,
    root: Path,
    found: tuple[Path, str | None],
    name: str,
    declared: dict[str, Any],
    defaults: dict[str, str],
    advice: bool = SERVICE_DEFAULTS.type_advice,
) -> Service:
    """One service from its entry (if declared), the defaults and its layout on disk; bad values name their line."""
    where = ("services", name)
    if not SERVICE_NAME.fullmatch(name):
        rule = "a service name is lower-case letters, digits, '-' and '_', starting with a letter, at most 63"
        if name in declared:
            raise check.fail(where, rule)
        raise ConfigError(  # found on disk: no line of workspace.yaml to name
            f"{relative(root, found[0])}: no service name comes of this directory's name ({rule}); rename the "
            "directory, or narrow services_dir in workspace.yaml to leave it out"
        )
    entry = check.mapping(declared.get(name), where, SERVICE_KEYS)
    path, layout = found
    key = (*where, "migrations")
    if "migrations" in entry:
        layout = _migrations_setting(check, key, entry["migrations"])
    migrations = layout or defaults.get("migrations", MIGRATIONS)
    for candidate in (path, path / migrations):
        if resolved(candidate) is None:
            shown = os.path.relpath(candidate, root)
            raise check.fail(where, f"{shown} is a symbolic link that leads back to itself; point it at a directory")
    if migrations != MIGRATIONS and not (path / migrations).resolve().is_relative_to(root):  # `..`, a linked db/
        raise check.fail(key, f"{migrations!r} points outside the repository")
    for candidate in (path, path / migrations):
        if candidate.is_symlink() and not candidate.resolve().is_relative_to(root):
            raise check.fail(
                where,
                f"{candidate.relative_to(root)} is a symbolic link to {candidate.resolve()}, outside the "
                "repository; migrations must live in it (copy them in, or use a git submodule)",
            )
    settings = {k: _setting(check, (*where, k), k, entry[k]) if k in entry else defaults[k] for k in SERVICE_SETTINGS}
    depends = entry.get("depends_on", [])
    if not isinstance(depends, list) or not all(isinstance(d, str) for d in depends):
        raise check.fail((*where, "depends_on"), "must be a list of service names")
    ignore, ignore_files = _ignores(check, (*where, "ignore"), entry.get("ignore", []))
    language = entry.get("language") or guess_language(path)
    if language not in LANGUAGES:
        raise check.fail((*where, "language"), f"unknown language {language!r}; one of {', '.join(LANGUAGES)}")
    database = check.string(
        entry.get("database", name),
        (*where, "database"),
        SERVICE_NAME,
        "a database name is lower-case letters, digits, '-' and '_'",
    )
    return Service(
        name=name,
        path=path,
        language=language,
        depends_on=tuple(depends),
        database=database,
        declared=name in declared,
        settings=ServiceSettings(
            database_url_env=settings["database_url_env"].replace("{SERVICE}", env_name(name)),
            tracking_table=settings["tracking_table"],
            lock_timeout=settings["lock_timeout"],
            statement_timeout=settings["statement_timeout"],
            format=settings["format"],
            migrations=migrations,
            gaps=_gaps(check, (*where, "gaps"), entry.get("gaps", SERVICE_DEFAULTS.gaps)),
            create_database=_flag(
                check, (*where, "create_database"), entry.get("create_database", SERVICE_DEFAULTS.create_database)
            ),
            type_advice=_flag(check, (*where, "type_advice"), entry.get("type_advice", advice)),
        ),
        ignore=ignore,
        ignore_files=ignore_files,
    )


IGNORE_HINT = "must be a list of rule codes such as [MK103, MK302], or of {files: GLOB, rules: [MK201]}"


def _ignores(check: Checker, key: tuple[str, ...], raw: Any) -> tuple[tuple[str, ...], tuple[FileIgnore, ...]]:
    """A service's ignores: codes for the whole service, and codes for some of its files (those applied long ago,
    which cannot be edited: their checksums are recorded)."""
    if not isinstance(raw, list):
        raise check.fail(key, IGNORE_HINT)
    codes: list[str] = []
    files: list[FileIgnore] = []
    for index, item in enumerate(raw):
        if isinstance(item, str) and RULE_CODE.fullmatch(item):
            codes.append(item)
            continue
        at = (*key, str(index))
        if not isinstance(item, dict):
            raise check.fail(at, f"{item!r}: {IGNORE_HINT}")
        entry = check.mapping(item, at, {"files", "rules"})
        pattern = check.string(entry.get("files"), (*at, "files"))
        if Path(pattern).is_absolute() or ".." in Path(pattern).parts:
            raise check.fail((*at, "files"), f"{pattern!r}: a glob relative to the service's directory")
        rules = entry.get("rules")
        if (
            not isinstance(rules, list)
            or not rules
            or not all(isinstance(c, str) and RULE_CODE.fullmatch(c) for c in rules)
        ):
            raise check.fail((*at, "rules"), "must be a non-empty list of rule codes such as [MK201]")
        while pattern.startswith("./"):  # ./migrations/001_*.sql: the same files as migrations/001_*.sql
            pattern = pattern[2:]
        files.append(FileIgnore(pattern, tuple(rules)))
    return tuple(codes), tuple(files)


def _flag(check: Checker, key: tuple[str, ...], value: Any) -> bool:
    if not isinstance(value, bool):
        raise check.fail(key, f"{value!r}: use true or false")
    return value


def _gaps(check: Checker, key: tuple[str, ...], value: Any) -> str:
    if value not in ("check", "allow"):
        raise check.fail(key, f"{value!r}: use allow (numbered sparsely on purpose) or check (the default)")
    return str(value)


def _setting(check: Checker, key: tuple[str, ...], name: str, value: Any) -> str:
    if name in ("lock_timeout", "statement_timeout"):
        if isinstance(value, int) and not isinstance(value, bool):
            value = f"{value}ms"
        return check.string(value, key, DURATION, "use a PostgreSQL duration such as 500ms, 5s, 5min")
    if name == "format":
        return check.string(value, key, FORMAT_NAME, f"use auto or one of {', '.join(FORMATS)}")
    if name == "tracking_table":
        table = check.string(value, key, QUALIFIED_TABLE, "use table or schema.table in lower case")
        if len(table.rsplit(".", 1)[-1]) > MAX_TRACKING_NAME:  # idx_<name>_applied_at must fit 63 characters
            raise check.fail(
                key,
                f"{table!r}: a table name over {MAX_TRACKING_NAME} characters makes its index name "
                f"idx_<name>_applied_at longer than PostgreSQL's 63, which it would silently truncate; "
                "use a shorter name",
            )
        return table
    if name == "migrations":  # in defaults: every service's, checked against each service's directory later
        return _migrations_setting(check, key, value)
    text = check.string(value, key)
    if name == "database_url_env" and not re.fullmatch(r"[A-Za-z_{}][A-Za-z0-9_{}]*", text):
        raise check.fail(key, f"{text!r} is not an environment variable name ({{SERVICE}} is replaced)")
    return text


def _migrations_setting(check: Checker, key: tuple[str, ...], value: Any) -> str:
    """A `migrations:` directory, relative to the service's (db/migrations); _service keeps it in the repository."""
    text = check.string(value, key)
    if not text.isprintable():
        raise check.fail(key, f"{value!r} holds a control character (a newline?); give the directory's name")
    if text.startswith("/") or "\\" in text:
        raise check.fail(key, f"{value!r}: give the directory relative to the service, with '/' (db/migrations)")
    return text.rstrip("/") or "."
