"""For contributors: `python tools/new_rule.py MK310 --summary "..."` writes a new rule's three places.

1. the rule's stub at the end of the module its code names (MK3xx: checks/rules/mk3_*.py), with the
   signature its scope's runner calls and a docstring to complete (why, Bad:, Good:);
2. tests/rules/<CODE>.yml with one failing and one passing case to fill in;
3. docs/rules.md, regenerated from every declaration (`python tools/new_rule.py --docs` alone
   regenerates it; tests/test_rules.py fails when it is stale).

The new rule's failing case fails until the check finds what it describes: write the check, then
pin the finding's line and message in the fixture.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))

from migratekit.checks.rule import FAMILIES, RULE_CODE, Scope, all_rules, module_for  # noqa: E402

SIGNATURES = {
    Scope.STATEMENT: ("ctx: Context, node: dict", "Iterable[Hit]"),
    Scope.FILES: ("d: Directory", "Iterable[FileHit]"),
    Scope.HISTORY: ("h: ServiceHistory", "Iterable[HistoryHit]"),
    Scope.WIRING: ("w: Wiring", "Iterable[WiringHit]"),
    Scope.WORKSPACE: ("ws: Workspace, environ: Mapping[str, str]", "Iterable[WorkspaceHit]"),
    Scope.OBJECTS: (
        "ws: Workspace, objects: Mapping[str, ServiceObjects], environ: Mapping[str, str]",
        "Iterable[WorkspaceHit]",
    ),
    Scope.ACROSS: ("ws: Workspace", "Iterable[AcrossHit]"),
}
FIXTURE = {
    Scope.STATEMENT: "fail_example:\n  sql: {bad}\n  findings:\n  - [2, {summary}]\npass_example:\n  sql: {good}\n",
}
MONOREPO_FIXTURE = (
    "fail_example:\n  files:\n    {path}: |\n      {bad}\n  findings:\n  - [{path}, null, {summary}]\n"
    "pass_example:\n  files:\n    {path}: |\n      {good}\n"
)


def stub(code: str, severity: str, scope: Scope, name: str, summary: str, hint: str, kinds: str) -> str:
    arguments, returns = SIGNATURES[scope]
    kinds_arg = f", kinds=({', '.join(repr(k) for k in kinds.split(','))},)" if scope is Scope.STATEMENT else ""
    return (
        f'\n\n@rule("{code}", "{severity}", "{hint}"{kinds_arg})\n'
        f"def {name}({arguments}) -> {returns}:\n"
        f'    """{summary}.\n\n    Why it matters, in one sentence.\n    Bad: …\n    Good: …\n    """\n'
        "    return ()  # the check: yield one hit per place that breaks the rule\n"
    )


def rules_markdown() -> str:
    """docs/rules.md: every rule, by family, from the declarations."""
    lines = [
        "# Rules",
        "",
        "Generated from the rule declarations by `python tools/new_rule.py --docs`; do not edit by hand.",
        "`invoke rules --code MKnnn` prints the same text. Each rule's cases are in `tests/rules/MKnnn.yml`.",
    ]
    for rule in all_rules():
        why, bad, good = _sections(rule.doc)
        lines += ["", f"## {rule.code}: {rule.summary}", ""]
        lines += [f"*{rule.severity}*, {rule.scope} rule. {why}".rstrip(), ""]
        lines += [f"- Bad: `{bad}`", f"- Good: `{good}`", f"- Fix: {rule.hint}"]
        lines += [f"- squawk: {', '.join(f'`{name}`' for name in rule.squawk) or 'none'}"]
    return "\n".join(lines) + "\n"


def _sections(doc: str) -> tuple[str, str, str]:
    body = doc.split("\n", 1)[1] if "\n" in doc else ""
    why = " ".join(line for line in body.split("\nBad:")[0].splitlines() if line.strip())
    bad = re.search(r"^Bad:\s*(.*)$", doc, re.MULTILINE)
    good = re.search(r"^Good:\s*(.*(?:\n(?!Bad:|Good:)\S.*)*)", doc, re.MULTILINE)
    return why, bad[1].strip() if bad else "", " ".join(good[1].split()) if good else ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("code", nargs="?", help="the new code, e.g. MK310")
    parser.add_argument("--scope", choices=[s.value for s in Scope if s is not Scope.IGNORES], default="statement")
    parser.add_argument("--severity", choices=["error", "warning"], default="warning")
    parser.add_argument("--name", help="the check function's name (default: from the summary)")
    parser.add_argument("--summary", help="one line: what is wrong")
    parser.add_argument("--hint", default="say what to do instead", help="one line: what to do")
    parser.add_argument("--kinds", default="*", help="statement rules: node types, comma-separated")
    parser.add_argument("--docs", action="store_true", help="regenerate docs/rules.md")
    args = parser.parse_args()
    if args.code:
        code, scope = args.code.upper(), Scope(args.scope)
        if not RULE_CODE.match(code) or code[2] not in FAMILIES[scope]:
            parser.error(f"{code}: a {scope} rule's code is MK{'/'.join(FAMILIES[scope])}nn")
        if code in {r.code for r in all_rules()}:
            parser.error(f"{code} is taken; `invoke rules` lists the codes in use")
        if not args.summary:
            parser.error("--summary is required")
        name = args.name or re.sub(r"\W+", "_", args.summary.lower()).strip("_")[:40]
        module = REPO / "tools" / Path(*module_for(code).split(".")).with_suffix(".py")
        module.write_text(
            module.read_text().rstrip("\n")
            + "\n"
            + stub(code, args.severity, scope, name, args.summary, args.hint, args.kinds)
        )
        template = FIXTURE.get(scope, MONOREPO_FIXTURE)
        fixture = REPO / "tests" / "rules" / f"{code}.yml"
        fixture.write_text(
            f"# {code} ({args.severity}, {scope}): {args.summary}.\n"
            + template.format(
                bad="SELECT 1;  -- what breaks the rule",
                good="SELECT 1;",
                summary=args.summary,
                path="services/svc/migrations/002_case.sql",
            )
        )
        print(f"wrote the stub in {module.relative_to(REPO)} and {fixture.relative_to(REPO)}")
        return subprocess.run([sys.executable, __file__, "--docs"]).returncode  # a fresh process sees the stub
    if not args.docs:
        parser.error("give a CODE, or --docs")
    (REPO / "docs" / "rules.md").write_text(rules_markdown())
    print("wrote docs/rules.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
