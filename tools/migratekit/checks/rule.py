"""One Finding type for lint, audit and drift, one Rule protocol, and the registry every rule joins.

Every rule, whatever it inspects, is a documented function under `@rule(code, severity, hint,
scope)`. The docstring is the documentation: the first line is the summary, then why, then a
`Bad:` and a `Good:` example. A rule's code is stable forever (a retired code is never reused).
The list of rules is derived from the declarations: `all_rules()` imports every module of the
rule packages, and the registry refuses a duplicate, malformed or out-of-family code at import.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from typing import Any

from migratekit.model.settings import RULE_CODE


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


class Scope(StrEnum):
    """What a rule inspects; checks.run hands each scope's rules their input and turns every hit into a Finding.

    statement  check(Context, node)          -> (line | None, message | None)
    files      check(Directory)              -> (path, line | None, message | None)
    ignores    check(Iterable[StaleIgnore])  -> (service, path, line, message)
    history    check(ServiceHistory)         -> (path, line | None, message)
    wiring     check(Wiring)                 -> (path, line | None, message | None)
    workspace  check(Workspace, environ)     -> (service, path, line, message)
    objects    check(Workspace, {service: ServiceObjects}, environ) -> (service, path, line, message)
    across     check(Workspace)              -> (service, path, line, message)
    """

    STATEMENT = "statement"
    FILES = "files"
    IGNORES = "ignores"
    HISTORY = "history"
    WIRING = "wiring"
    WORKSPACE = "workspace"
    OBJECTS = "objects"  # what each service's migrations create and use, compared across services
    ACROSS = "across"


# The families a scope's codes may come from (DESIGN.md: MK1xx files, MK2xx idempotency, MK3xx
# safety, MK4xx wiring, MK5xx workspace, MK6xx across services).
FAMILIES: dict[Scope, tuple[str, ...]] = {
    Scope.STATEMENT: ("2", "3"),
    Scope.FILES: ("1",),
    Scope.IGNORES: ("1", "5"),
    Scope.HISTORY: ("1",),
    Scope.WIRING: ("4",),
    Scope.WORKSPACE: ("5",),
    Scope.OBJECTS: ("5",),
    Scope.ACROSS: ("6",),
}
SQUAWK_NAME = re.compile(r"^[a-z]+(?:-[a-z]+)*$")
RULE_PACKAGE = "migratekit.checks.rules"  # its modules, mk<family>_<concern>.py, declare every rule


@dataclass(frozen=True, slots=True)  # slots: 10,000s of them in an audit; each is smaller and made faster
class Finding:
    code: str  # the rule (MK302)
    severity: Severity  # error or warning
    service: str | None  # null: about the workspace
    path: str | None  # relative to the monorepo root
    line: int | None  # 1-based; null for a whole file or none
    message: str  # what is wrong, and its consequence
    hint: str  # what to do

    @property
    def location(self) -> str:
        if self.path and self.line:
            return f"{self.path}:{self.line}"
        return self.path or self.service or "workspace"


@dataclass(frozen=True)
class Rule:
    code: str  # stable forever (MK302)
    severity: Severity  # error or warning
    summary: str  # one sentence
    hint: str  # how to fix what it finds
    doc: str  # why, with a bad and a good example
    scope: Scope  # what it reads
    check: Callable[..., Iterable[Any]] = field(repr=False, compare=False)
    kinds: frozenset[str] = field(default=frozenset(), repr=False)  # statement rules: the node types
    squawk: tuple[str, ...] = ()  # the squawk rules that cover the same hazard; empty: squawk has none
    # statement rules: a cheap test of SQL text, False when no statement in it can be hit (see `rule`)
    may_hit: Callable[[str], bool] | None = field(default=None, repr=False, compare=False)

    def finding(
        self, service: str | None, path: str | None, line: int | None = None, message: str | None = None
    ) -> Finding:
        # One rule says the same sentence of many files: held once (an audit holds every finding to the end).
        return Finding(self.code, self.severity, service, path, line, sys.intern(message or self.summary), self.hint)


class RuleDeclarationError(ValueError):
    """A rule declared wrongly: raised at import, so a bad rule can never run or ship."""


_REGISTRY: dict[str, Rule] = {}


def rule(
    code: str,
    severity: str,
    hint: str,
    *,
    scope: Scope,
    kinds: Iterable[str] = (),
    squawk: Iterable[str] = (),
    may_hit: Callable[[str], bool] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`@rule("MK201", "error", "fix hint", scope=Scope.STATEMENT, kinds=("CreateStmt",))` over a documented check.

    A module whose rules share one scope binds it once: `rule = partial(declare_rule, scope=Scope.FILES)`.
    `squawk` names the squawk rules (sbdchd/squawk) that cover the same hazard, for teams that know them.
    `may_hit`, for a statement rule that looks for words in a statement's text before its tree: that test of
    SQL text, False when no statement in the text can be hit. The audit asks it once of each file and runs the
    rule on none of the file's statements when it is False (asking it of every statement of every file cost
    more than most rules), so it must be False of a text only when it is False of every part of it: a test
    for a word is, a test that a word is absent is not.
    """

    def register(check: Callable[..., Any]) -> Callable[..., Any]:
        declared = declaration(code, severity, hint, scope, check, kinds, squawk, may_hit)
        home = module_for(code)
        if check.__module__.startswith(RULE_PACKAGE) and check.__module__ != home:
            raise RuleDeclarationError(f"{code} ({check.__module__}): a rule with this code lives in {home}")
        known = _REGISTRY.get(code)
        if known is not None and known.check.__qualname__ != check.__qualname__:
            raise RuleDeclarationError(f"{code} is declared twice: {known.check.__qualname__} and {check.__qualname__}")
        _REGISTRY[code] = declared
        return check

    return register


def declaration(
    code: str,
    severity: str,
    hint: str,
    scope: Scope,
    check: Callable[..., Any],
    kinds: Iterable[str] = (),
    squawk: Iterable[str] = (),
    may_hit: Callable[[str], bool] | None = None,
) -> Rule:
    """The Rule for one declaration, or RuleDeclarationError saying what is wrong with it."""
    where = f"{code} ({check.__module__}.{check.__qualname__})"
    if not RULE_CODE.fullmatch(code) or not any(code[2] in families for families in FAMILIES.values()):
        raise RuleDeclarationError(f"{where}: a code is MK followed by three digits, family 1-6")
    if code[2] not in FAMILIES[scope]:
        families = ", ".join(f"MK{f}xx" for f in FAMILIES[scope])
        raise RuleDeclarationError(f"{where}: a {scope} rule's code belongs to {families}")
    if severity not in tuple(Severity):
        raise RuleDeclarationError(f"{where}: severity must be one of {', '.join(Severity)}")
    if not hint.strip():
        raise RuleDeclarationError(f"{where}: a rule needs a fix hint")
    doc = check.__doc__ or ""
    text = "\n".join(line.strip() for line in doc.strip().splitlines())
    if not text or "\nBad:" not in text or "\nGood:" not in text:
        raise RuleDeclarationError(f"{where}: the docstring needs a summary, why, a 'Bad:' and a 'Good:' example")
    if scope is Scope.STATEMENT and not kinds:
        raise RuleDeclarationError(f"{where}: a statement rule names the node types it reads (kinds=...)")
    summary = text.splitlines()[0].rstrip(".")
    names = tuple(squawk)
    if any(not SQUAWK_NAME.fullmatch(name) for name in names):
        raise RuleDeclarationError(f"{where}: squawk rules are named in kebab case, like prefer-robust-stmts")
    if may_hit is not None and scope is not Scope.STATEMENT:
        raise RuleDeclarationError(f"{where}: only a statement rule tests a file's text (may_hit=...)")
    return Rule(code, Severity(severity), summary, hint, text, scope, check, frozenset(kinds), names, may_hit)


@cache
def rule_modules() -> dict[str, str]:
    """The rule modules by the code prefix they hold: {"1": "...mk1_files", "12": "...mk12_history", ...}."""
    package = importlib.import_module(RULE_PACKAGE)
    found = {}
    for module in pkgutil.iter_modules(package.__path__):
        prefix = re.match(r"^mk(\d+)_", module.name)
        if prefix:
            found[prefix[1]] = f"{RULE_PACKAGE}.{module.name}"
    return found


def module_for(code: str) -> str:
    """Where a rule lives: the module of the longest prefix of its digits (MK122 in mk12_history, MK101 in
    mk1_files), so a code says its module and no table says it again."""
    digits = code[2:]
    modules = rule_modules()
    prefix = max((p for p in modules if digits.startswith(p)), key=len, default=None)
    if prefix is None:
        raise RuleDeclarationError(f"{code}: no module in {RULE_PACKAGE} holds the MK{digits[0]}xx family")
    return modules[prefix]


@cache
def all_rules() -> tuple[Rule, ...]:
    """Every declared rule, by code: what `invoke rules` lists, SARIF describes and the runners run."""
    for module in rule_modules().values():
        importlib.import_module(module)
    return tuple(sorted(_REGISTRY.values(), key=lambda r: r.code))


@cache
def rules_for(scope: Scope) -> tuple[Rule, ...]:
    """The rules of one scope, by code (asked once per service and scope: chosen once)."""
    return tuple(r for r in all_rules() if r.scope is scope)


@dataclass(frozen=True)
class StaleIgnore:
    """An ignore that silenced nothing: inline (`-- migratekit: ignore MKnnn`) or in workspace.yaml."""

    inline: bool
    service: str | None
    path: str | None
    line: int | None
    code: str
    files: str | None = None  # a per-file ignore's glob
