"""A Makefile's targets and their recipes as shell command lines, for the wiring audit.

Many Go monorepos migrate with `make migrate` (or a repository script looping over services).
Make has no parser on PyPI worth a dependency for this; what is read here is Make's own
structure: `NAME = value` / `NAME := value` / `NAME ?= value` assignments, `target:` lines, and
tab-indented recipe lines, with `$(NAME)` and `${NAME}` replaced by their values and the `@`, `-`
and `+` prefixes dropped. Conditionals, functions and pattern rules are left as they are.
"""

from __future__ import annotations

import re
from pathlib import Path

ASSIGNMENT = re.compile(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*(?:\?|:|::|\+)?=\s*(.*)$")
TARGET = re.compile(r"^([A-Za-z0-9_./%-]+(?:\s+[A-Za-z0-9_./%-]+)*)\s*::?(?!=)")
CONDITIONAL = re.compile(r"^\s*(ifn?def|ifn?eq|else|endif)\b")
REFERENCE = re.compile(r"\$[({]([A-Za-z_][A-Za-z0-9_]*)[)}]")


def makefile_in(directory: Path) -> Path | None:
    """The file `make` reads in `directory`: GNUmakefile, makefile, then Makefile, as GNU make looks for them."""
    return next((p for p in (directory / n for n in ("GNUmakefile", "makefile", "Makefile")) if p.is_file()), None)


def recipes(path: Path) -> dict[str, list[tuple[int, str]]]:
    """Each target's recipe lines as (line number, shell command), variables expanded."""
    variables: dict[str, str] = {}
    targets: dict[str, list[tuple[int, str]]] = {}
    current: list[tuple[int, str]] | None = None
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    for number, line in enumerate(lines, start=1):
        if line.startswith("\t"):
            if current is not None:
                command = line.strip().lstrip("@-+").strip()
                current.append((number, REFERENCE.sub(lambda m: variables.get(m[1], m[0]), command)))
            continue
        if CONDITIONAL.match(line):
            continue  # ifdef/ifeq/else/endif between a target and its recipe
        assignment = ASSIGNMENT.match(line)
        if assignment:
            variables[assignment[1]] = assignment[2].strip()
            current = None
            continue
        target = TARGET.match(line)
        if target and not line.startswith("."):
            current = []
            for name in target[1].split():
                targets[name] = current
        elif line.strip() and not line.startswith("#"):
            current = None
    return targets
