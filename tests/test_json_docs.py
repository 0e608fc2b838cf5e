"""The JSON conventions (docs/json.md): a schema_version first, identifier values, repository paths, and a page
of fields generated from the dataclasses that stays fresh."""

from __future__ import annotations

import enum
import importlib.util
import json
import re
from pathlib import Path

import pytest

from migratekit.cli import render
from migratekit.database.drift import DriftState, EntryKind, ItemKind
from migratekit.database.results import Outcome

REPO = Path(__file__).resolve().parent.parent


def test_docs_json_md_is_generated_from_the_code() -> None:
    spec = importlib.util.spec_from_file_location("json_docs", REPO / "tools" / "json_docs.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (REPO / "docs" / "json.md").read_text() == module.json_markdown(), "stale: run python tools/docs.py"


@pytest.mark.parametrize("kind", [Outcome, EntryKind, DriftState, ItemKind], ids=lambda k: k.__name__)
def test_values_are_identifiers_and_each_has_its_words(kind: type[enum.StrEnum]) -> None:
    words = {
        Outcome: render.OUTCOME_LABEL,
        EntryKind: render.ENTRY_LABEL,
        DriftState: render.DRIFT_LABEL,
        ItemKind: render.ITEM_LABEL,
    }[kind]
    for member in kind:
        assert re.fullmatch(r"[a-z]+(_[a-z]+)*", member.value), f"{kind.__name__}.{member.name}: {member.value!r}"
        assert words.get(member.value), f"{kind.__name__}.{member.name} has no words in cli/render.py"


def test_every_pinned_output_starts_with_its_schema_version_and_has_no_absolute_path() -> None:
    pinned = sorted((REPO / "tests" / "snapshots").glob("*.json"))
    assert len(pinned) >= 8
    for path in pinned:
        data = json.loads(path.read_text())
        assert next(iter(data)) == "schema_version" and data["schema_version"] == render.SCHEMA_VERSION, path.name
        assert "<root>" not in path.read_text(), f"{path.name} carries the checkout's absolute path"


def test_a_json_output_is_an_object() -> None:
    assert json.loads(render.as_json({"services": []})) == {"schema_version": render.SCHEMA_VERSION, "services": []}
    with pytest.raises(TypeError):
        render.as_json([1, 2])
