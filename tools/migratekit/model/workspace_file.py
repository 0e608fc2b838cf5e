"""Read workspace.yaml safely and remember the line of every key, so errors can point into the file."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from migratekit.errors import ConfigError
from migratekit.model.settings import WORKSPACE_FILE

MAX_WORKSPACE_BYTES = 1_000_000
MAX_ALIASES = 100


# libyaml's parser where PyYAML was built with it: every command reads this file first, and
# the pure-Python parser took 12 ms for 40 services. Its error messages are vaguer, so a file
# that fails is parsed again by the pure-Python parser for the message.
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
    _collect_lines(node, (), lines)
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
    node: yaml.Node | None, prefix: tuple[str, ...], out: dict[tuple[str, ...], int], seen: set[int] | None = None
) -> None:
    """Record the line of every mapping key so errors can point into the file (each node once)."""
    seen = set() if seen is None else seen
    if isinstance(node, yaml.MappingNode) and id(node) not in seen:
        seen.add(id(node))
        for key_node, value_node in node.value:
            key = (*prefix, str(key_node.value))
            out[key] = key_node.start_mark.line + 1
            _collect_lines(value_node, key, out, seen)


class Checker:
    """Validation helpers that turn a bad value into an error naming file, line and key (from read_yaml's lines)."""

    def __init__(self, path: Path | None, lines: dict[tuple[str, ...], int]):
        self.path = path
        self.lines = lines

    def fail(self, key: tuple[str, ...], problem: str) -> ConfigError:
        where = str(self.path or WORKSPACE_FILE)
        line = self.lines.get(key)
        if line:
            where += f":{line}"
        dotted = ".".join(key)
        return ConfigError(f"{where}: {dotted}: {problem}" if dotted else f"{where}: {problem}")

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
        if pattern is not None and not pattern.match(value):
            raise self.fail(key, f"{value!r} is not valid; {hint}")
        return value
