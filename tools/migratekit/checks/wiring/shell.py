"""Shell scripts as the commands they run, parsed with tree-sitter's Bash grammar.

Each simple command keeps its words unquoted, whether `exec` runs it, and whether its failure
stops the script: `set -e` in effect, `&&` after it, `|| exit`, an `if ! cmd` that exits, or a
`$?` test that exits right after it.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from tree_sitter import Node

from migratekit.checks.wiring.sources import text_of
from migratekit.model.syntax import parser_for


@dataclass(frozen=True)
class Command:
    """One simple command of a shell script, its words unquoted."""

    words: tuple[str, ...]
    line: int
    replaces_shell: bool  # run with `exec`: nothing after it in the script runs
    stops: bool  # a failure stops the script: set -e in effect, `&&` after it, or `|| exit`


def parse_script(text: str, first_line: int = 1) -> list[Command]:
    """The simple commands of a shell script in the order they run."""
    root = parser_for("shell").parse(text.encode()).root_node
    errexit = bool(re.match(r"#!\S+(\s+\S+)?\s+-\w*e", text))
    commands: list[Command] = []
    stack = [root]
    while stack:
        node = stack.pop()
        if node.type == "command":
            words = tuple(_word(w) for w in node.named_children if w.type != "variable_assignment")
            if words[:1] == ("set",):
                errexit = _errexit(words[1:], errexit)
            line = node.start_point[0] + first_line
            stops = errexit or _stopped_by_list(node)
            commands.append(Command(tuple(w for w in words if w != "exec"), line, words[:1] == ("exec",), stops))
            continue
        if node.type in ("function_definition", "heredoc_body", "comment"):
            continue
        stack.extend(reversed(node.named_children))
    return commands


def _errexit(arguments: tuple[str, ...], current: bool) -> bool:
    """`set -e`, `set -euo pipefail`, `set -o errexit` turn it on; `set +e`, `set +o errexit` turn it off."""
    for before, word in zip(("", *arguments), arguments, strict=False):
        if re.fullmatch(r"[-+][a-zA-Z]*e[a-zA-Z]*", word):
            current = word.startswith("-")
        elif word == "errexit" and before in ("-o", "+o"):
            current = before == "-o"
    return current


def _word(node: Node) -> str:
    text = text_of(node)
    if node.type == "command_name":
        text = text_of(node.named_children[0]) if node.named_children else text
    try:
        parts = shlex.split(text)
    except ValueError:
        return text
    return parts[0] if len(parts) == 1 else text


def _stopped_by_list(node: Node) -> bool:
    """`cmd && next`, `cmd || exit 1`, `if ! cmd; then exit 1; fi`, `cmd` then `if [ $? -ne 0 ]; then exit 1; fi`:
    a failure of cmd stops the script."""
    following = node.next_named_sibling
    if following is not None and following.type == "if_statement":
        if "$?" in text_of(following.child_by_field_name("condition")) and "exit" in text_of(following):
            return True
    child, parent = node, node.parent
    while parent is not None and parent.type in ("list", "negated_command", "if_statement", "pipeline"):
        if parent.type == "if_statement":
            return child == parent.child_by_field_name("condition") and "exit" in text_of(parent)
        if parent.type == "list":
            after = child.next_sibling
            if after is not None and after.type == "&&":
                return True
            if after is not None and after.type == "||":
                return bool(re.match(r"[{(\s]*(exit|return|false)\b", text_of(after.next_named_sibling)))
        child, parent = parent, parent.parent
    return False
