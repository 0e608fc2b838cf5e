"""One Finding type for lint, audit and drift, and the Rule that produces it.

A rule's code is stable forever (a retired code is never reused); its docstring is its
documentation: the first line is the summary, then why, then a bad and a good example.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

SEVERITIES = ("error", "warning")


@dataclass(frozen=True)
class Finding:
    code: str
    severity: str
    service: str | None
    path: str | None  # relative to the monorepo root
    line: int | None
    message: str
    hint: str

    @property
    def location(self) -> str:
        if self.path and self.line:
            return f"{self.path}:{self.line}"
        return self.path or self.service or "workspace"


@dataclass(frozen=True)
class Rule:
    code: str
    severity: str
    summary: str
    hint: str
    doc: str

    def finding(
        self, service: str | None, path: str | None, line: int | None = None, message: str | None = None
    ) -> Finding:
        return Finding(self.code, self.severity, service, path, line, message or self.summary, self.hint)


def make_rule(code: str, severity: str, hint: str, doc: str | None) -> Rule:
    """A Rule from a checker's docstring; refuses what would make a bad rule."""
    if severity not in SEVERITIES:
        raise ValueError(f"{code}: severity must be one of {SEVERITIES}")
    if not doc or not doc.strip():
        raise ValueError(f"{code}: a rule needs a docstring (summary, why, bad and good example)")
    text = "\n".join(line.strip() for line in doc.strip().splitlines())
    return Rule(code, severity, text.splitlines()[0].rstrip("."), hint, text)


@dataclass(frozen=True)
class Checker:
    """A rule and the function that finds its hits; `kinds` narrows statement rules to node types."""

    rule: Rule
    check: Callable[..., Iterable[Any]]
    kinds: frozenset[str] = field(default=frozenset())


def registrar(registry: list[Checker]) -> Callable[..., Callable[[Callable[..., Any]], Callable[..., Any]]]:
    """`rule = registrar(RULES)`, then `@rule("MK201", "error", "fix hint")` over a documented checker.

    Each family module lists its rules in its own RULES, in code order, by decorating them.
    """

    def rule(code: str, severity: str, hint: str, kinds: Iterable[str] = ()) -> Callable[..., Any]:
        def register(check: Callable[..., Any]) -> Callable[..., Any]:
            registry.append(Checker(make_rule(code, severity, hint, check.__doc__), check, frozenset(kinds)))
            return check

        return register

    return rule
