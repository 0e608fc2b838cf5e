"""Every rule against its fixture file, tests/rules/<CODE>.yml: named failing and passing cases.

A case is a small monorepo described as data: the base service of tests/rules/base.yml plus the
case's `files` (null deletes one) or `sql` (the body of services/svc/migrations/002_case.sql).
`clones` adds services that are copies of svc. `history` files are committed first and the audit
compares against that commit (MK12x). A failing case pins every finding of its rule as
[path, line, message] ([line, message] for `sql` cases); a passing case expects none, and its SQL
must parse. MK6xx cases run drift's cross-service check.
"""

from __future__ import annotations

import importlib.util
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import REPO, write_tree
from migratekit.checks.rule import Finding, Rule, Scope, all_rules, rules_for
from migratekit.checks.run import across_services, audit
from migratekit.model.workspace_file import load_workspace

RULES_DIR = Path(__file__).parent / "rules"
BASE: dict[str, str] = yaml.safe_load((RULES_DIR / "base.yml").read_text())
CASE_KEYS = {"sql", "files", "base", "clones", "history", "env", "findings"}
CASE_PATH = "services/svc/migrations/002_case.sql"


def fixtures() -> dict[str, dict[str, dict[str, Any]]]:
    return {p.stem: yaml.safe_load(p.read_text()) for p in sorted(RULES_DIR.glob("MK*.yml"))}


def cases() -> list[Any]:
    return [
        pytest.param(code, name, case, id=f"{code}-{name}")
        for code, named in fixtures().items()
        for name, case in named.items()
    ]


def run_case(root: Path, rule: Rule, case: dict[str, Any]) -> list[Finding]:
    root.mkdir()
    write_tree(root, {} if case.get("base") is False else BASE)
    for clone in case.get("clones", []):  # more services like svc
        svc = "services/svc/"
        write_tree(root, {f"services/{clone}/{k.removeprefix(svc)}": v for k, v in BASE.items() if k.startswith(svc)})
    ref = None
    if "history" in case:
        write_tree(root, case["history"])
        git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t"]
        subprocess.run([*git, "init", "-q"], check=True)
        subprocess.run([*git, "add", "-A"], check=True)
        subprocess.run([*git, "commit", "-qm", "the ref"], check=True)
        ref = "HEAD"
    write_tree(root, case.get("files", {}))
    if "sql" in case:
        write_tree(root, {CASE_PATH: f"-- Migration: 002_case\n{case['sql']}"})
    workspace = load_workspace(root)
    if rule.scope is Scope.ACROSS:
        return across_services(workspace)
    return list(audit(workspace, changed_since=ref, environ=case.get("env", {})).findings)


@pytest.mark.parametrize(("code", "name", "case"), cases())
def test_rule_case(tmp_path: Path, code: str, name: str, case: dict[str, Any]) -> None:
    assert set(case) <= CASE_KEYS, f"unknown keys {set(case) - CASE_KEYS}"
    rule = {r.code: r for r in all_rules()}[code]
    found = run_case(tmp_path / "repo", rule, case)
    mine = [[f.path, f.line, f.message] for f in found if f.code == code]
    expected = [[CASE_PATH, *e] if "sql" in case and len(e) == 2 else e for e in case.get("findings", [])]
    assert mine == expected
    if not expected:
        assert not [f for f in found if f.code == "MK110"], "a passing case must parse"


def test_every_rule_has_a_failing_and_a_passing_case() -> None:
    named = fixtures()
    codes = [r.code for r in all_rules()]
    assert sorted(named) == codes, "each rule has tests/rules/<CODE>.yml, and each file names a rule"
    for code, by_name in named.items():
        assert any(c.get("findings") for c in by_name.values()), f"{code} has no failing case"
        assert any(not c.get("findings") for c in by_name.values()), f"{code} has no passing case"


def test_statement_rules_have_six_cases_at_the_median() -> None:
    """Two cases test that a rule fires, not where its edges are: inside and outside a transaction, a
    table of this file, of an earlier migration or of no migration, quoted and qualified names, the fix."""
    named = fixtures()
    counts = {r.code: len(named[r.code]) for r in rules_for(Scope.STATEMENT)}
    assert statistics.median(counts.values()) >= 6, sorted(counts.items(), key=lambda item: item[1])
    assert min(counts.values()) >= 4, "every statement rule has a few cases beyond one failing and one passing"


def test_the_rules_reference_is_generated_from_the_declarations() -> None:
    spec = importlib.util.spec_from_file_location("new_rule", REPO / "tools" / "new_rule.py")
    assert spec is not None and spec.loader is not None
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    expected = tool.rules_markdown()
    assert (REPO / "docs" / "rules.md").read_text() == expected, "stale: run python tools/new_rule.py --docs"


@pytest.mark.parametrize(
    ("code", "scope", "module"),
    [
        ("MK399", "statement", "checks/rules/mk3_safety.py"),
        ("MK499", "wiring", "checks/rules/mk4_wiring.py"),
        ("MK129", "history", "checks/rules/mk12_history.py"),
    ],
)
def test_new_rule_writes_a_declared_stub_its_fixture_and_its_documentation(
    tmp_path: Path, code: str, scope: str, module: str
) -> None:
    copy = tmp_path / "repo"
    shutil.copytree(REPO / "tools", copy / "tools", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    shutil.copytree(REPO / "tests" / "rules", copy / "tests" / "rules")
    (copy / "docs").mkdir()
    summary = "A thing that should not be"
    result = subprocess.run(
        [sys.executable, str(copy / "tools" / "new_rule.py"), code, "--scope", scope, "--summary", summary],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert f'@rule("{code}", "warning"' in (copy / "tools" / "migratekit" / module).read_text()
    fixture = yaml.safe_load((copy / "tests" / "rules" / f"{code}.yml").read_text())
    assert set(fixture) == {"fail_example", "pass_example"} and fixture["fail_example"]["findings"]
    assert f"## {code}: {summary}" in (copy / "docs" / "rules.md").read_text()
    listed = subprocess.run(  # the copy's registry declares it: a well-formed rule
        [sys.executable, "-c", "from migratekit.checks.rule import all_rules; print([r.code for r in all_rules()])"],
        env={"PYTHONPATH": str(copy / "tools")},
        capture_output=True,
        text=True,
    )
    assert code in listed.stdout, listed.stderr
    again = subprocess.run(
        [sys.executable, str(copy / "tools" / "new_rule.py"), code, "--scope", scope, "--summary", summary],
        capture_output=True,
        text=True,
    )
    assert again.returncode == 2 and f"{code} is taken" in again.stderr


def test_every_scope_has_its_families_its_signature_and_rules() -> None:
    """Rule scopes are a closed set: a new one without the families its codes come from, the signature
    tools/new_rule.py writes, or a rule that uses it fails here."""
    from migratekit.checks.rule import FAMILIES, Scope, module_for, rule_modules

    spec = importlib.util.spec_from_file_location("new_rule", REPO / "tools" / "new_rule.py")
    assert spec is not None and spec.loader is not None
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert set(FAMILIES) == set(Scope)
    assert set(tool.SIGNATURES) == set(Scope) - {Scope.IGNORES}  # ignores rules are written with the runner
    assert {r.scope for r in all_rules()} == set(Scope)
    assert {module_for(r.code) for r in all_rules()} == set(rule_modules().values())  # no module without a rule
    assert all(r.check.__module__ == module_for(r.code) for r in all_rules())
