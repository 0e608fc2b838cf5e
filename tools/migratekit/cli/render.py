"""Rendering for people (rich tables, colour only on a terminal) and for machines (JSON).

The library returns dataclasses; this module is the only place that turns them into text. What comes
from users and servers (names, paths, SQL, messages) is always rich `Text`, styled by migratekit
around it, never read as markup: a table named `t[/]x` or `[bold]` is printed as written.
"""

from __future__ import annotations

import codecs
import contextlib
import dataclasses
import functools
import io
import json
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from migratekit.collector import collector_paused
from migratekit.database.results import Outcome, Result
from migratekit.version import VERSION

if TYPE_CHECKING:  # rich is imported where a table or a console is made: `--json` never loads it
    from rich.console import Console, RenderableType
    from rich.table import Table
    from rich.text import Text

    from migratekit.checks.rule import Finding, Rule
    from migratekit.checks.run import AuditReport
    from migratekit.database.drift import Applying, Entry, EntryKind, Matrix, ServiceDrift, ServiceStatus
    from migratekit.database.embedded import EmbeddedServer
    from migratekit.database.servers import RunningServer
    from migratekit.database.verify import ImageCheck, Verification
    from migratekit.model.inventory import ServiceGraph, ServiceInfo


def to_data(value: Any) -> Any:
    """Dataclasses, paths and tuples as plain JSON-able data."""
    if type(value) in _PLAIN or isinstance(value, str | int | float | None):  # most values: asked first
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        data = {}
        for name in _shown(type(value)):
            field = getattr(value, name)
            data[name] = field if type(field) in _PLAIN else to_data(field)  # a finding's: plain, most of them
        return data
    if isinstance(value, dict):
        return {str(k): to_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_data(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


_PLAIN = frozenset({str, int, float, bool, type(None)})


@functools.cache
def _shown(cls: type) -> tuple[str, ...]:
    """A dataclass's fields that its repr shows: asked once per class, not once per result."""
    return tuple(f.name for f in dataclasses.fields(cls) if f.repr)


# The shape of every --json output (docs/json.md): raised when a field is removed, renamed or changes its meaning;
# a field added keeps it.
SCHEMA_VERSION = 1


def as_json(value: Any) -> str:
    """A --json output: an object whose first key is its schema_version, then `value`'s fields."""
    out = io.StringIO()
    write_json(value, out)
    return out.getvalue()


def write_json(value: Any, out: TextIO) -> None:
    """as_json's text written into `out` as it is made: an audit's 50,000 findings are never held as text whole
    (as one string, then the copy printed, it was most of such an audit's memory)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {name: getattr(value, name) for name in _shown(type(value))}
    elif isinstance(value, dict):
        fields = {str(key): item for key, item in value.items()}
    else:
        raise TypeError(f"a --json output is an object, not {type(to_data(value)).__name__}")
    with collector_paused():  # a dict for each finding or result, none of them in a cycle
        _lines({"schema_version": SCHEMA_VERSION, **fields}, out)


def json_text(data: Any) -> str:
    """Data as JSON text, indented throughout (no schema_version: a SARIF document has its own version)."""
    return json.dumps(to_data(data), indent=2, ensure_ascii=False)


# One line per item, each written by json's C encoder: with an indent json falls back to its pure-Python
# encoder, which took a third of a warm audit of 10,000 findings.
_ONE_LINE = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": ")).encode


_BATCH = 500  # items written to the output at a time


def _lines(given: dict[str, Any], out: TextIO) -> None:
    """A --json object (docs/json.md, Layout): a key per line, and a list's items (a finding, a service's result)
    one per line, each item on its own line whole. Each item is made plain data and written as it comes: 10,000
    findings as dicts, then as lines, then joined, were most of an audit's memory at its end."""
    if not given:
        out.write("{}")
        return
    out.write("{\n")
    for number, (key, value) in enumerate(given.items()):
        out.write(f",\n  {_ONE_LINE(key)}: " if number else f"  {_ONE_LINE(key)}: ")
        if isinstance(value, list | tuple) and value:
            out.write("[\n    ")
            for start in range(0, len(value), _BATCH):  # a write each batch: one each item was slower than a copy
                items = value[start : start + _BATCH]
                out.write((",\n    " if start else "") + ",\n    ".join([_ONE_LINE(to_data(item)) for item in items]))
            out.write("\n  ]")
        else:
            out.write(_ONE_LINE(to_data(value)))
    out.write("\n}")


def rollback_data(result: Result) -> dict[str, Any]:
    """`rollback --json`: the result's fields named for what a rollback does (a dry run's `would_roll_back`)."""
    data = to_data(result)
    renamed = {"applied": "rolled_back", "already_applied": "still_applied", "pending": "would_roll_back"}
    return {renamed.get(key, key): value for key, value in data.items()}


def _text(*parts: str | tuple[str, str]) -> Text:
    """One piece of output: each string as written (never read as markup), each (string, style) styled."""
    from rich.text import Text

    return Text.assemble(*parts)


def _table(title: str, caption: str | None = None, **settings: Any) -> Table:
    """A table whose title and caption (they hold names and server messages) are text too."""
    from rich.table import Table
    from rich.text import Text

    return Table(
        title=Text(title, style="table.title"),
        caption=None if caption is None else Text(caption, style="table.caption"),
        **settings,
    )


SERVICE_COLUMNS = (
    "service",
    "format",
    "wave",
    "language",
    "depends on",
    "migrations",
    "in",
    "newest",
    "url variable",
    "database",
)


def _service_cells(row: ServiceInfo) -> list[str]:
    return [
        row.name,
        row.format,
        str(row.wave),
        row.language,
        ", ".join(row.depends_on) or "-",
        str(row.migrations),
        row.migrations_dir,
        row.newest or "-",
        row.url_variable,
        row.database,
    ]


def services_table(rows: Sequence[ServiceInfo], undeclared: Sequence[str] = (), width: int = 1000) -> RenderableType:
    """A table when it fits `width`; else a block per service, so that no name or version is ever cut to fit
    (a table of ten columns at 80 columns gave each about seven characters: `billin…`)."""
    from rich.console import Group

    flag = " (not in workspace.yaml)"
    cells = [_service_cells(row) for row in rows]
    flagged = [not row.declared and bool(undeclared) for row in rows]
    widths = [len(name) for name in SERVICE_COLUMNS]
    for row_cells, marked in zip(cells, flagged, strict=True):
        widths = [
            max(w, len(c) + (len(flag) if i == 0 and marked else 0))
            for i, (w, c) in enumerate(zip(widths, row_cells, strict=True))
        ]
    caption = "a service whose URL variable is unset uses the embedded server (invoke db-up)"
    if sum(widths) + 3 * len(widths) + 1 <= width:
        table = _table(title="services (dependency order)", caption=caption)
        for column in SERVICE_COLUMNS:
            table.add_column(column, justify="right" if column in ("migrations", "wave") else "left", no_wrap=True)
        for row_cells, marked in zip(cells, flagged, strict=True):
            name, *rest = row_cells
            table.add_row(_text(name, (flag, "yellow") if marked else ""), *(_text(c) for c in rest))
        return table
    lines: list[RenderableType] = [_text(("services (dependency order)", "bold"))]
    for row_cells, marked in zip(cells, flagged, strict=True):
        name, fmt, wave, language, after, count, where, newest, variable, database = row_cells
        lines += [
            _text((name, "bold"), (flag, "yellow") if marked else "", (f"  wave {wave}, {fmt}, {language}", "dim")),
            _text(f"  {count} migration(s), newest {newest}"),
            _text(f"  in {where}"),
            _text(f"  after {after}" if after != "-" else "  depends on none"),
            _text(f"  database {database} (from {variable})"),
        ]
    lines.append(_text((caption, "dim")))
    return Group(*lines)


GRAPH_FORMATS = ("tree", "mermaid", "dot", "json")


def graph_tree(graph: ServiceGraph) -> RenderableType:
    """The waves, and in each the services with what they depend on: the picture a person reads first."""
    from rich.tree import Tree

    count = len(graph.services)
    tree = Tree(_text(f"{count} service(s) in {len(graph.waves)} wave(s), each after the ones above it"))
    by_name = {node.name: node for node in graph.services}
    for number, wave in enumerate(graph.waves, 1):
        branch = tree.add(_text((f"wave {number}", "bold")))
        for name in wave:
            after = by_name[name].depends_on
            branch.add(_text(name, (f"  after {', '.join(after)}", "dim") if after else ""))
    return tree


def graph_mermaid(graph: ServiceGraph) -> str:
    """A Mermaid flowchart: a subgraph per wave, an arrow from each dependency to its dependent."""
    ids = {node.name: f"s{i}" for i, node in enumerate(graph.services)}
    lines = ["flowchart TD"]
    for number, wave in enumerate(graph.waves, 1):
        lines.append(f'  subgraph wave{number}["wave {number}"]')
        lines += [f'    {ids[name]}["{_mermaid_label(name)}"]' for name in wave]
        lines.append("  end")
    lines += [f"  {ids[dep]} --> {ids[node.name]}" for node in graph.services for dep in node.depends_on]
    return "\n".join(lines) + "\n"


def _mermaid_label(text: str) -> str:
    """Text inside a quoted Mermaid label: its own quotes and the markup characters as entity codes."""
    return "".join(f"#{ord(c)};" if c in '"#<>&' else c for c in text)


def graph_dot(graph: ServiceGraph) -> str:
    """A Graphviz digraph: each wave one rank, an edge from each dependency to its dependent."""
    lines = ["digraph services {", "  rankdir=TB;", '  node [shape=box, fontname="sans-serif"];']
    for number, wave in enumerate(graph.waves, 1):
        names = " ".join(_dot_id(name) + ";" for name in wave)
        lines.append(f'  subgraph "cluster_wave{number}" {{ label="wave {number}"; rank=same; {names} }}')
    lines += [f"  {_dot_id(dep)} -> {_dot_id(node.name)};" for node in graph.services for dep in node.depends_on]
    return "\n".join([*lines, "}"]) + "\n"


def _dot_id(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


OFF_TERMINAL_WIDTH = 1000  # a CI log or a pipe has no width to fit: print whole values, never "authent…"


def console(stderr: bool = False) -> Console:
    """stdout's (or stderr's) console. It reads no markup and no :emoji: codes in strings, so a message
    handed to its print as it is (a notice from the library, a path) is shown as written."""
    from rich.console import Console

    make = functools.partial(Console, stderr=stderr, highlight=False, markup=False, emoji=False)
    terminal = make()
    return terminal if terminal.is_terminal else make(width=OFF_TERMINAL_WIDTH)


def fit_stdout(machine: bool) -> None:
    """Make stdout able to take any name a report holds, whatever the locale: a C locale without Python's UTF-8
    coercion (or a Latin-1 one and a name in Japanese) stopped an audit's output at the first such name with a
    UnicodeEncodeError, and so did a file name that is not UTF-8 (held as surrogates) in any locale. A machine
    format is written as UTF-8 (JSON's and SARIF's encoding, and what --output writes), such a name's bytes as
    JSON's escapes of them (`\\udce9`); text for a person keeps the terminal's encoding, what it cannot show
    escaped (`caf\\xe9`)."""
    stream = sys.stdout
    if not isinstance(stream, io.TextIOWrapper):  # a stream put in its place (a test's, a tool's) takes str as it is
        return
    with contextlib.suppress(ValueError, OSError):  # closed, or not one Python can reconfigure: left as it is
        if machine:
            stream.reconfigure(encoding="utf-8", errors=UNENCODABLE)
        elif stream.errors == "strict" or codecs.lookup(stream.encoding).name != "utf-8":  # (a raw byte: kept)
            stream.reconfigure(errors=UNENCODABLE)


# How a report writes what its encoding cannot: a lone surrogate (a file name's undecodable byte) as `\\udce9`,
# which inside a JSON string is the escape that reads back as the same name.
UNENCODABLE = "backslashreplace"


# How each outcome looks, for every Outcome (tests/test_text_output.py fails for one added without a style).
OUTCOME_STYLE: dict[Outcome, str] = {
    Outcome.APPLIED: "green",
    Outcome.UP_TO_DATE: "green",
    Outcome.PLANNED: "cyan",
    Outcome.FAILED: "red",
    Outcome.SKIPPED: "yellow",
    Outcome.ROLLED_BACK: "green",
    Outcome.INTERRUPTED: "yellow",
}


# What each outcome is called where a person reads it (the JSON carries Outcome's identifier).
OUTCOME_LABEL: dict[Outcome, str] = {
    Outcome.APPLIED: "applied",
    Outcome.UP_TO_DATE: "up to date",
    Outcome.PLANNED: "planned",
    Outcome.FAILED: "failed",
    Outcome.SKIPPED: "skipped",
    Outcome.ROLLED_BACK: "rolled back",
    Outcome.INTERRUPTED: "interrupted",
}


def outcome_text(outcome: Outcome) -> Text:
    return _text((OUTCOME_LABEL[outcome], OUTCOME_STYLE.get(outcome, "")))


def results_table(results: Sequence[Result], title: str = "migrate-all") -> Table:
    table = _table(title=title)
    for column in ("service", "applied now", "already applied", "pending", "time", "outcome"):
        table.add_column(
            column,
            overflow="fold",
            no_wrap=column in ("service", "outcome"),  # a name is never folded: the headers wrap instead
            justify="right" if column in ("applied now", "already applied", "pending", "time") else "left",
        )
    for r in results:
        counts = [str(len(r.applied)), str(r.already_applied), str(len(r.pending)), duration(r.elapsed_ms / 1000)]
        if r.outcome is Outcome.SKIPPED:  # its database was never read: no counts to show
            counts = ["-"] * len(counts)
        table.add_row(_text(r.service), *counts, outcome_text(r.outcome))
    return table


def _why(r: Result) -> list[Text]:
    """Why a service stopped (its name in its outcome's colour) and what to do; then its notes."""
    lines = [_text((r.service, OUTCOME_STYLE.get(r.outcome, "")), f": {r.failure.describe()}")] if r.failure else []
    return lines + [_text(f"{r.service}: {note}") for note in r.notes]


def result_details(results: Sequence[Result]) -> list[Text]:
    """The lines under the table: what failed where and what to do, skips, notes, what a stopped run kept,
    the dry run's files."""
    lines = []
    for r in results:
        lines += _why(r)
        if r.applied and r.outcome in (Outcome.FAILED, Outcome.INTERRUPTED):
            lines.append(
                _text(f"{r.service}: applied {', '.join(a.version for a in r.applied)} before it stopped (kept)")
            )
        if r.pending:
            verb = "would apply" if r.outcome is Outcome.PLANNED else "still pending:"
            lines.append(_text(f"{r.service}: {verb} {', '.join(r.pending)}"))
    return lines


def totals_text(results: Sequence[Result], seconds: float, dry_run: bool = False) -> Text:
    """The run in one line, last: what a CI log's reader looks for (`migrated 12 services: 31 applied, …`)."""
    count = Counter(r.outcome for r in results)
    applied = sum(len(r.applied) for r in results)
    parts = [f"{sum(len(r.pending) for r in results)} would apply" if dry_run else f"{applied} applied"]
    shown = (Outcome.FAILED, Outcome.SKIPPED, Outcome.INTERRUPTED)  # "0 failed" too: what a CI log's reader checks
    parts += [f"{count[o]} {OUTCOME_LABEL[o]}" for o in shown if count[o] or (o is Outcome.FAILED and not dry_run)]
    verb = "planned" if dry_run else "migrated"
    return _text(f"{verb} {len(results)} service(s): {', '.join(parts)}, in {duration(seconds)}")


def duration(seconds: float) -> str:
    """2.5 s, 850 ms, 1 min 4 s: a time as a person reads it."""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    return f"{int(seconds // 60)} min {seconds % 60:.0f} s"


def rollback_text(result: Result, dry_run: bool) -> list[RenderableType]:
    """`invoke rollback`: its table, why it stopped, and which migrations it undid (or would undo)."""
    name = result.service
    table = _table(title=f"rollback {name}" + (" (dry run)" if dry_run else ""))
    for column in ("service", "would roll back" if dry_run else "rolled back", "time", "outcome"):
        named = column in ("service", "outcome")
        table.add_column(column, overflow="fold", no_wrap=named, justify="left" if named else "right")
    undone = result.pending if result.outcome is Outcome.PLANNED else tuple(a.version for a in result.applied)
    table.add_row(_text(name), str(len(undone)), duration(result.elapsed_ms / 1000), outcome_text(result.outcome))
    lines: list[RenderableType] = [table, *_why(result)]
    if result.outcome is Outcome.PLANNED:
        lines.append(
            _text(f"{name}: would roll back {', '.join(undone)}" if undone else f"{name}: nothing to roll back")
        )
    elif result.outcome is Outcome.ROLLED_BACK:
        what = f"rolled back {', '.join(undone)}" if undone else "nothing to roll back"
        lines.append(_text(f"{name}: {what}; {result.already_applied} still applied"))
    elif undone:
        lines.append(_text(f"{name}: rolled back {', '.join(undone)} before it stopped"))
    return lines


def audit_text(report: AuditReport) -> Iterator[Text]:
    """Findings grouped by service, each with its code, severity, place, sentence and fix: line by line, as they
    are printed (tens of thousands of findings are never all held as styled text)."""
    from migratekit.checks.rule import Severity  # the audit's: migrate's output never loads it

    current: object = object()
    for f in report.findings:
        if f.service != current:
            current = f.service
            yield _text((f.service or "workspace", "bold"))
        colour = "red" if f.severity is Severity.ERROR else "yellow"
        yield _text("  ", (f"{f.code} {f.severity}", colour), f" {f.location}: {f.message}")
        yield _text(f"      fix: {f.hint}")
    scope = f", changed since {report.changed_since}" if report.changed_since else ""
    yield _text(
        f"{len(report.services)} service(s) audited{scope}: {report.errors} error(s), {report.warnings} warning(s)"
    )
    if report.baseline is not None:
        fixed = f"; {report.fixed} accepted before are fixed: write it again to shrink it" if report.fixed else ""
        yield _text(f"{report.accepted} accepted finding(s) not listed (baseline {report.baseline}){fixed}")


def sarif(report: AuditReport, rules: Sequence[Rule]) -> dict:
    """SARIF 2.1.0, as GitHub code scanning and other viewers read it."""
    from urllib.parse import quote

    index = {r.code: i for i, r in enumerate(rules)}
    results = []
    for f in report.findings:
        # a URI reference, as SARIF has it: a path as written put a finding in `004 a#b.sql` on `004 a`, no file
        uri = quote(f.path.encode(errors="surrogateescape"), safe="/") if f.path else "workspace.yaml"
        location: dict = {"artifactLocation": {"uri": uri, "uriBaseId": "%SRCROOT%"}}
        if f.line:
            location["region"] = {"startLine": f.line}
        results.append(
            {
                "ruleId": f.code,
                "ruleIndex": index[f.code],
                "level": f.severity,
                "message": {"text": f"{f.message}. Fix: {f.hint}"},
                "locations": [{"physicalLocation": location}],
            }
        )
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "migratekit",
                        "version": VERSION,
                        "rules": [
                            {
                                "id": r.code,
                                "name": r.code,
                                "shortDescription": {"text": r.summary},
                                "fullDescription": {"text": r.doc},
                                "help": {"text": r.hint},
                                "defaultConfiguration": {"level": r.severity},
                                "properties": {"squawk": list(r.squawk)},
                            }
                            for r in rules
                        ],
                    }
                },
                "originalUriBaseIds": {"%SRCROOT%": {"uri": report.root.as_uri() + "/"}},
                "results": results,
            }
        ],
    }


def github_annotations(findings: Sequence[Finding]) -> Iterator[str]:
    """GitHub Actions workflow commands: one annotation per finding, on the file and line, as they are written."""

    def escape(text: str) -> str:
        return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")

    def escape_property(text: str) -> str:  # a property value also ends at "," or ":"
        return escape(text).replace(":", "%3A").replace(",", "%2C")

    for f in findings:
        where = f"file={escape_property(f.path)}" if f.path else ""
        if f.path and f.line:
            where += f",line={f.line}"
        props = ",".join(p for p in (where, f"title={f.code}") if p)
        yield f"::{f.severity} {props}::{escape(f'{f.message}. Fix: {f.hint}')}"


def rules_table(rules: Sequence[Rule]) -> Table:
    table = _table(title="rules")
    for column in ("code", "severity", "summary", "squawk"):
        table.add_column(column, overflow="fold")
    for r in rules:
        table.add_row(r.code, str(r.severity), _text(r.summary), squawk_names(r))
    return table


def squawk_names(rule: Rule) -> str:
    """The squawk rules that cover a rule's hazard, or "none" where migratekit checks what squawk does not."""
    return ", ".join(rule.squawk) or "none"


def rule_text(rule: Rule) -> Text:
    """`invoke rules --code`: one rule's documentation (its SQL examples as written) and its fix."""
    text = f" ({rule.severity}) {rule.doc}\n\nfix: {rule.hint}\nsquawk: {squawk_names(rule)}"
    return _text((rule.code, "bold"), text)


def verify_text(results: Sequence[Verification], images: Sequence[ImageCheck], origin: str) -> list[Text]:
    lines = [_text(f"throwaway databases from: {origin}")]
    for r in results:
        again = "each" if r.run_again is None else str(r.run_again)
        verdict = ("failed", "red") if not r.ok else ("idempotent", "green") if again != "0" else ("applied", "green")
        lines.append(_text(f"{r.service}: ", verdict, f" ({r.migrations} migrations applied, then {again} run again)"))
        said = [f"note: {n}" for n in r.notes]
        if r.first_run:
            said.append(f"first run failed: {r.first_run.describe()}")
        said += [f"second run failed: {f.describe()}" for f in r.second_run]
        said += [f"{file}: second run changed the schema: {d.describe()}" for file, d in r.schema_changes]
        said += [r.rollback] if r.rollback else []
        lines += [_text(f"  {line}") for line in said]
    for i in images:
        if i.skipped:
            lines.append(_text(f"{i.service} image: skipped ({i.skipped})"))
        else:
            found = "; ".join(i.problems) if i.problems else "migrations identical to the repository's"
            lines.append(_text(f"{i.service} image: {found}"))
    return lines


def drift_table(results: Sequence[ServiceDrift]) -> Table:
    table = _table(title="drift", caption="pending includes out-of-order files; schema: differences from a replay")
    for column in ("service", "applied", "newest", "pending", "changed", "missing", "schema", "state"):
        table.add_column(column, overflow="fold")
    for r in results:
        kinds = Counter(str(i.kind) for i in r.items)
        table.add_row(
            _text(r.service),
            str(r.applied),
            _text(r.newest_applied or "-"),
            str(kinds["pending"] + kinds["out_of_order"]),
            str(kinds["changed"]),
            str(kinds["missing_file"]),
            str(len(r.schema)),
            _text((DRIFT_LABEL[r.state], "red" if r.drifted else "green")),
        )
    return table


def drift_details(results: Sequence[ServiceDrift], across: Sequence[Finding]) -> list[Text]:
    lines = []
    for r in results:
        if r.message:
            lines.append(f"{r.service}: {r.message}")
        lines += [
            f"{r.service}: {i.version} {ITEM_LABEL[i.kind]}" + (f" ({i.detail})" if i.detail else "") for i in r.items
        ]
        lines += [f"{r.service}: schema: {d.describe()}" for d in r.schema]
    texts = [_text(line) for line in lines]
    if across:
        texts.append(_text(("across services", "bold")))
        texts += [_text(f"  {f.code} {f.location}: {f.message}; fix: {f.hint}") for f in across]
    return texts


def matrix_table(matrix: Matrix) -> Table:
    table = _table(title="versions by environment")
    table.add_column("service")
    for env in matrix.environments:
        table.add_column(_text(env), overflow="fold")
    for service, cells in matrix.rows:
        table.add_row(_text(service), *(_text(cell) for cell in cells))
    return table


def _checkout_text(server: RunningServer) -> str:
    if server.checkout is None:
        return "no checkout recorded (an older migratekit started it)"
    return f"its checkout {server.checkout} is gone"


def db_up_text(
    server: EmbeddedServer | None, rows: Sequence[dict[str, str]], orphans: Sequence[RunningServer]
) -> list[Text]:
    lines = [
        _text(
            ("a migratekit server still runs for a checkout that is gone", "yellow"),
            f": pid {o.pid}, {o.datadir} ({_checkout_text(o)}); invoke db-down --orphans stops it",
        )
        for o in orphans
    ]
    if server is not None:
        lines.append(
            _text(
                f"embedded PostgreSQL at {server.url()} ({server.binaries.source} binaries, data in {server.datadir})"
            )
        )
    lines += [_text(f"  {row['service']}: {row['database']}  (${row['url_variable']} overrides)") for row in rows]
    return lines


def orphans_stopped_text(stopped: Sequence[RunningServer]) -> list[str]:
    """Printed with print(): plain lines, never markup."""
    lines = [f"stopped pid {s.pid} ({s.datadir}): {_checkout_text(s)}" for s in stopped]
    return [*lines, f"{len(stopped)} orphaned server(s) stopped"]


# How status shows each kind of entry (database.drift.EntryKind, by its value: importing the status module here
# would load psycopg for every task): its mark, as dbmate's [X] / [ ], its colour and its words. The JSON carries
# the identifier; tests/test_text_output.py fails for a kind added without its rendering here.
ENTRY_MARK: dict[str, tuple[str, str]] = {
    "applied": ("[x]", "green"),
    "adopted": ("[x]", "green"),
    "baselined": ("[x]", "green"),
    "changed": ("[!]", "red"),
    "missing_file": ("[?]", "red"),
    "pending": ("[ ]", "yellow"),
    "out_of_order": ("[ ]", "red"),
}
ENTRY_LABEL: dict[str, str] = {
    "applied": "applied",
    "adopted": "adopted",
    "baselined": "baselined",
    "changed": "changed since applied",
    "missing_file": "file missing",
    "pending": "pending",
    "out_of_order": "pending, out of order",
}
READ_FAILED = {"not_created": "not created", "unreachable": "unreachable", "foreign_table": "foreign table"}
DRIFT_LABEL: dict[str, str] = {"up_to_date": "up to date", "drift": "drift", **READ_FAILED}  # DriftState's words
ITEM_LABEL: dict[str, str] = {  # ItemKind's
    "pending": "pending",
    "out_of_order": "out of order",
    "changed": "changed",
    "missing_file": "missing file",
}


def entry_label(kind: EntryKind, adopted_from: str | None = None) -> str:
    return f"adopted from {adopted_from}" if kind == "adopted" and adopted_from else ENTRY_LABEL[kind]


def _moment(applied_at: str | None) -> str:
    """A recorded time as a person reads it: to the minute, in UTC (the JSON has it whole)."""
    if applied_at is None:
        return ""
    from datetime import UTC, datetime

    return datetime.fromisoformat(applied_at).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _ms(value: int | None) -> str:
    return "" if value is None else duration(value / 1000)


def _counts(entries: Sequence[Entry]) -> str:
    """`3 applied (1 adopted, 1 baselined), 1 pending`: dbmate's Applied / Pending, and what else there is."""
    kinds: Counter[str] = Counter(str(e.state) for e in entries)
    how = [f"{kinds[k]} {k}" for k in ("adopted", "baselined") if kinds[k]]
    parts = [
        f"{kinds['applied'] + kinds['adopted'] + kinds['baselined']} applied" + (f" ({', '.join(how)})" if how else "")
    ]
    parts += [f"{kinds[k]} {ENTRY_LABEL[k]}" for k in ("changed", "missing_file") if kinds[k]]
    parts.append(f"{kinds['pending'] + kinds['out_of_order']} pending")
    if kinds["out_of_order"]:
        parts[-1] += f" ({kinds['out_of_order']} out of order)"
    return ", ".join(parts)


def _status_head(status: ServiceStatus) -> Text:
    state = ("up to date, " if status.up_to_date else "") + _counts(status.entries)
    if status.state in READ_FAILED:
        state = READ_FAILED[status.state] + (f", {_counts(status.entries)}" if status.entries else "")
    colour = "green" if status.up_to_date else "yellow" if status.readable else "red"
    return _text((status.service, "bold"), f" ({status.database}): ", (state, colour))


def status_text(statuses: Sequence[ServiceStatus], quiet: bool = False) -> list[RenderableType]:
    """`invoke status`: a block per service (its summary, then a line per migration with its mark and kind) and
    the total last; `quiet` keeps only the services and migrations that are not up to date."""
    from rich.padding import Padding

    out: list[RenderableType] = []
    for status in statuses:
        if quiet and status.up_to_date:
            continue
        out.append(_status_head(status))
        if status.message:
            out.append(_text(f"    {status.message}"))
        shown = [e for e in status.entries if not (quiet and e.state.done)]
        if not shown:
            continue
        rows = []
        for e in shown:
            mark, colour = ENTRY_MARK[e.state]
            rows.append(
                [
                    _text((mark, colour)),
                    _text(e.version),  # a version is never folded: the kind wraps at its spaces instead
                    _text((entry_label(e.state, e.adopted_from), colour)),
                    _text(_moment(e.applied_at)),
                    _text(_ms(e.execution_time_ms)),
                ]
            )
        out.append(Padding(_grid(rows, wraps=2, padding=2), (0, 0, 0, 2), expand=False))
        out += [_text(f"      {e.version}: {e.detail}") for e in shown if e.detail]
    out.append(status_totals(statuses))
    return out


def status_totals(statuses: Sequence[ServiceStatus]) -> Text:
    """The last line: how many services are up to date, and every migration counted by kind."""
    current = sum(s.up_to_date for s in statuses)
    unread = [s.service for s in statuses if not s.readable]
    line = f"{len(statuses)} service(s), {current} up to date: {_counts([e for s in statuses for e in s.entries])}"
    return _text(line + (f"; not read: {', '.join(unread)}" if unread else ""))


def timeline_text(rows: Sequence[Applying], since: str | None = None) -> list[RenderableType]:
    """`status --timeline`: what was recorded across services, newest first, one line each."""

    title = f"{len(rows)} migration(s) recorded" + (f" since {since}" if since else "") + ", newest first"
    if not rows:
        return [_text(title)]
    cells = [
        [
            _text(_moment(a.applied_at)),  # the time and the kind wrap at their spaces; a name or a version never
            _text(a.service),
            _text(a.version),
            _text((entry_label(a.state, a.adopted_from), ENTRY_MARK[a.state][1])),
            _text(_ms(a.execution_time_ms)),
        ]
        for a in rows
    ]
    return [_text(title), _grid(cells, wraps=(0, 3), padding=1)]  # five columns: two spaces each would not fit 80


def _grid(rows: list[list[Text]], wraps: int | tuple[int, ...], padding: int) -> Table:
    """Aligned columns without borders: only the columns `wraps` names wrap (at their spaces, never inside a
    word: each is as wide as its longest word), the last is right-aligned, and a column empty in every row is
    left out (rich would squeeze the others for it)."""
    from rich.table import Table

    wrapping = {wraps} if isinstance(wraps, int) else set(wraps)
    kept = [i for i in range(len(rows[0])) if any(row[i].plain for row in rows)]
    grid = Table.grid(padding=(0, padding))
    for i in kept:
        longest = max((len(word) for row in rows for word in row[i].plain.split()), default=0)
        last = i == len(rows[0]) - 1
        grid.add_column(no_wrap=i not in wrapping, min_width=longest, justify="right" if last else "left")
    for row in rows:
        grid.add_row(*(row[i] for i in kept))
    return grid
