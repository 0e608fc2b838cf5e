"""docs/json.md: every --json output's fields, generated from the dataclasses the commands print.

`python tools/docs.py` writes it with the other generated docs; tests/test_json_docs.py fails when it is
stale. Each object's fields, their types and their one-line meanings come from the dataclass (the comment after
a field is its meaning); the identifier values (outcomes, states, kinds) come from their enums, beside the words
the text output uses for them.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import re
import sys
import typing
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))

from migratekit.checks.rule import Finding, Rule, Scope, Severity  # noqa: E402
from migratekit.cli import render  # noqa: E402
from migratekit.database.drift import (  # noqa: E402
    Applying,
    DriftState,
    Entry,
    EntryKind,
    Item,
    ItemKind,
    Matrix,
    ServiceDrift,
    ServiceStatus,
)
from migratekit.database.results import Applied, Failure, Outcome, Result  # noqa: E402
from migratekit.database.schema import Difference  # noqa: E402
from migratekit.database.verify import ImageCheck, Verification  # noqa: E402
from migratekit.model.inventory import GraphNode, ServiceGraph, ServiceInfo  # noqa: E402

# Each command's --json object: its keys after schema_version, with their types and meanings.
COMMANDS: list[tuple[str, list[tuple[str, str, str]]]] = [
    (
        "services",
        [
            ("services", "list of [ServiceInfo](#serviceinfo)", "in dependency order"),
            ("undeclared", "list of string", "services found on disk that workspace.yaml does not declare"),
        ],
    ),
    (
        "graph --format json",
        [
            ("services", "list of [GraphNode](#graphnode)", "in dependency order"),
            ("waves", "list of list of string", "the services of each wave, wave 1 first"),
        ],
    ),
    (
        "migrate-all, migrate",
        [
            ("dry_run", "boolean", "true for --dry-run: nothing was changed"),
            ("services", "list of [Result](#result)", "one per selected service, in dependency order"),
        ],
    ),
    (
        "rollback",
        [
            ("...", "", "the fields of [Result](#result), three of them named for a rollback:"),
            ("rolled_back", "list of [Applied](#applied)", "Result's `applied`: the migrations undone, newest first"),
            ("still_applied", "integer", "Result's `already_applied`: how many stay applied"),
            ("would_roll_back", "list of string", "Result's `pending`: with --dry-run, what would be undone"),
        ],
    ),
    ("status", [("services", "list of [ServiceStatus](#servicestatus)", "in dependency order")]),
    (
        "status --timeline, status --since",
        [("timeline", "list of [Applying](#applying)", "every recorded migration, newest first")],
    ),
    (
        "drift",
        [
            ("services", "list of [ServiceDrift](#servicedrift)", "in dependency order"),
            ("across_services", "list of [Finding](#finding)", "the MK6xx findings between services"),
        ],
    ),
    ("drift --envs", [("...", "", "the fields of [Matrix](#matrix)")]),
    (
        "audit --format json",
        [
            ("services", "list of string", "the services audited"),
            ("errors", "integer", "findings of severity error"),
            ("warnings", "integer", "findings of severity warning"),
            ("findings", "list of [Finding](#finding)", "by service, then file and line"),
            ("baseline", "string or null", "the baseline file the findings were filtered by (repository path)"),
            ("accepted", "integer", "findings the baseline accepts, not listed"),
            ("fixed", "integer", "findings the baseline accepts that are gone"),
        ],
    ),
    ("rules", [("rules", "list of [Rule](#rule)", "every rule, by code")]),
    (
        "verify",
        [
            ("scratch", "string", "where the throwaway databases came from"),
            ("services", "list of [Verification](#verification)", ""),
            ("images", "list of [ImageCheck](#imagecheck)", "with --images"),
        ],
    ),
    (
        "db-up",
        [
            ("server", "object or null", "url (password hidden), datadir, binaries: the embedded server, if one runs"),
            ("services", "list of object", "service, database, url_variable: each service's embedded database"),
            ("orphaned_servers", "list of object", "servers still running for a checkout that is gone"),
        ],
    ),
    ("python -m migratekit migrate --json", [("...", "", "the fields of [Result](#result)")]),
]

OBJECTS: list[type] = [
    ServiceInfo,
    ServiceGraph,
    GraphNode,
    Result,
    Applied,
    Failure,
    ServiceStatus,
    Entry,
    Applying,
    ServiceDrift,
    Item,
    Difference,
    Matrix,
    Finding,
    Rule,
    Verification,
    ImageCheck,
]
ENUMS: list[tuple[type[enum.Enum], dict[str, str]]] = [
    (Outcome, {str(k): v for k, v in render.OUTCOME_LABEL.items()}),
    (EntryKind, render.ENTRY_LABEL),
    (DriftState, render.DRIFT_LABEL),
    (ItemKind, render.ITEM_LABEL),
    (Severity, {}),
    (Scope, {}),
]
PROSE = """\
# JSON output

Every reporting task prints JSON with `--json` (the audit with `--format json`): one object on stdout, and
nothing else there (progress and notices go to stderr). Its fields are listed below, generated from the code by
`python tools/docs.py`; do not edit them by hand.

## Conventions

- **`schema_version`** is the first key of every object printed, now `{version}`. It is raised when a field is
  removed, renamed or changes its meaning; a new field keeps it. A consumer should refuse a version it does not
  know. (SARIF, `audit --format sarif`, is its own standard and carries its own `version`.)
- **Layout**: each key of the object on its own line, and each item of a list (a finding, a service's result)
  on its own line, whole: `grep` and `diff` see one finding per line, and a consumer parses it as any JSON.
- **Values are identifiers**: outcomes, states and kinds are lower case with underscores (`up_to_date`,
  `rolled_back`, `out_of_order`), never words with spaces. The text output says them in words; both are listed
  under [Values](#values).
- **Paths are repository-relative** (`services/users/migrations/005_bad.sql`), with `/` on every system: a
  failure's `file`, a finding's `path`, a service's `migrations_dir`. No output carries the machine's absolute
  checkout path.
- **Times**: `applied_at` is ISO 8601 with its time zone; `*_ms` are milliseconds. Passwords never appear:
  database URLs are printed with the password hidden.
- **Exit codes** do not depend on `--json`: 0 clean, 1 findings or a failure, 2 a usage or configuration error,
  130/143 interrupted (the JSON is still printed whole).

## `status` and its exit code

`invoke status` prints a block per service: a summary line (`auth (…): up to date, 3 applied (1 adopted), 0
pending`), then one line per migration with its mark (`[x]` recorded, `[ ]` pending, `[!]` changed since applied,
`[?]` applied but its file is gone), its version, how it was recorded (`applied`, `adopted from dbmate`,
`baselined`), when, and how long it ran; the total comes last. `--quiet` keeps only what is not up to date (the
total line always), so a monorepo whose databases are all current prints one line. `--timeline` lists what was
recorded across services, newest first; `--since` (a date, a time, or an age such as `7d` or `12h`) keeps what
was recorded since then.

- Without `--exit-code`, status exits **0** whatever it finds: it reports, it does not judge.
- With `--exit-code`, it exits **1** when any migration is pending (out of order included), changed since it was
  applied, or recorded without its file, or when a database does not exist yet; otherwise 0.
- A database that cannot be read (unreachable, or its tracking table is another tool's) exits **1** either way;
  a usage or configuration error exits **2**.

A row recorded by `baseline` has `execution_time_ms` -1 (nothing ran); one recorded by `adopt` has 0, and status
names it `adopted` while the other tool's history table, which adopt keeps, still records that version.
"""


def _comments(cls: type) -> dict[str, str]:
    """Each field's meaning: the comment after it in the class's source."""
    source = inspect.getsource(cls)
    found = re.findall(r"^\s+(\w+): [^#\n]+#\s*(.+)$", source, re.MULTILINE)
    return {name: text.strip() for name, text in found}


def _type(hint: object) -> str:
    """A field's type as JSON says it."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (tuple, list):
        inner = [a for a in args if a is not Ellipsis]
        return "list of " + (" / ".join(_type(a) for a in inner) if len(inner) == 1 else "list")
    if origin in (typing.Union, __import__("types").UnionType):
        named = [_type(a) for a in args if a is not type(None)]
        return " or ".join(named) + (" or null" if type(None) in args else "")
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return f"[{hint.__name__}](#{hint.__name__.lower()}) value"
    if dataclasses.is_dataclass(hint):
        return f"[{hint.__name__}](#{hint.__name__.lower()})"  # type: ignore[union-attr]
    names = {str: "string", int: "integer", bool: "boolean", float: "number"}
    if hint in names:
        return names[hint]  # type: ignore[index]
    if getattr(hint, "__name__", "") == "Path":
        return "string (repository path)"
    return str(hint)


def _object(cls: type) -> list[str]:
    hints = typing.get_type_hints(cls)
    comments = _comments(cls)
    doc = (cls.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
    lines = [f"### {cls.__name__}", ""]
    if doc and not doc.startswith(f"{cls.__name__}("):
        lines += [doc, ""]
    lines += ["| field | type | meaning |", "| --- | --- | --- |"]
    for field in dataclasses.fields(cls):
        if field.repr:
            meaning = comments.get(field.name, "").replace("|", "\\|")
            lines.append(f"| `{field.name}` | {_type(hints[field.name])} | {meaning} |")
    return [*lines, ""]


def json_markdown() -> str:
    """docs/json.md."""
    lines = [PROSE.format(version=render.SCHEMA_VERSION), "## Commands", ""]
    for command, keys in COMMANDS:
        lines += [f"### `{command} --json`" if "json" not in command else f"### `{command}`", ""]
        lines += ["| key | type | meaning |", "| --- | --- | --- |", "| `schema_version` | integer | see above |"]
        lines += [f"| `{k}` | {t} | {m} |" if k != "..." else f"| … | | {m} |" for k, t, m in keys]
        lines.append("")
    lines += ["## Objects", ""]
    for cls in OBJECTS:
        lines += _object(cls)
    lines += ["## Values", ""]
    for kind, words in ENUMS:
        lines += [f"### {kind.__name__}", "", "| value | in the text output |", "| --- | --- |"]
        lines += [f"| `{member.value}` | {words.get(member.value, member.value)} |" for member in kind]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
