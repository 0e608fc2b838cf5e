"""What no single-file linter can see: one service's migrations using what another's create (MK504, MK505),
on copies of the example monorepo, and `invoke init` proposing depends_on from it."""

from __future__ import annotations

import json

import pytest

from conftest import Monorepo

WITHOUT_DEPENDS_ON = ("    depends_on: [battles]\n", "")


def _audit(repo: Monorepo, *args: str) -> tuple[int, list[dict]]:
    result = repo.invoke("audit", "--json", *args)
    return result.returncode, json.loads(result.stdout)["findings"]


def test_removing_enrichments_depends_on_fails_the_audit_naming_both_services(example_repo: Monorepo) -> None:
    config = example_repo.root / "workspace.yaml"
    config.write_text(config.read_text().replace(*WITHOUT_DEPENDS_ON))
    shown = example_repo.invoke("audit")
    assert shown.returncode == 1, shown.stdout
    assert (
        "MK504 error services/enrichment/migrations/001_init.sql:21: enrichment uses public.battles, a table battles "
        "creates, without depends_on: [battles]: `CREATE TABLE IF NOT EXISTS enrichment.battle_summaries (`"
    ) in shown.stdout
    code, findings = _audit(example_repo)
    assert [(f["code"], f["service"], f["path"], f["line"]) for f in findings] == [
        ("MK504", "enrichment", "services/enrichment/migrations/001_init.sql", 21),
        ("MK504", "enrichment", "services/enrichment/migrations/002_add_battle_value_view.sql", 6),
    ]
    assert "public.killmails" in findings[1]["message"]
    # From the cache (nothing parsed), and for enrichment alone (battles' side still counts): the same finding.
    assert _audit(example_repo)[1] == findings
    assert _audit(example_repo, "--service", "enrichment")[1] == findings


def test_init_without_a_workspace_yaml_proposes_what_the_migrations_use(example_repo: Monorepo) -> None:
    """enrichment's migrations use battles' tables, so init writes depends_on: [battles] and, since a table can
    only be used in its own database, database: battles with enrichment's own tracking table. battles needs
    authentication only at run time (its API): no migration shows it, so init proposes nothing there."""
    root = example_repo.root
    (root / "workspace.yaml").unlink()
    code, findings = _audit(example_repo)
    assert {(f["code"], f["path"], f["line"]) for f in findings if f["code"] == "MK504"} == {
        ("MK504", "services/enrichment/migrations/001_init.sql", 21),
        ("MK504", "services/enrichment/migrations/002_add_battle_value_view.sql", 6),
    }
    assert all("cannot reach another database's objects" in f["message"] for f in findings if f["code"] == "MK504")
    made = example_repo.invoke("init")
    assert made.returncode == 0, made.stderr
    assert (
        "workspace.yaml: enrichment: depends_on: [battles], database: battles, tracking_table: "
        "enrichment.schema_migrations (what its migrations use of the others')\n"
    ) in made.stdout
    written = (root / "workspace.yaml").read_text()
    assert "  battles: {language: typescript}\n" in written
    assert (
        "  enrichment: {language: python, depends_on: [battles], database: battles, tracking_table: "
        "enrichment.schema_migrations}\n"
    ) in written
    assert _audit(example_repo) == (0, [])


def test_init_update_adds_the_depends_on_a_declared_service_lacks_and_keeps_the_rest(
    example_repo: Monorepo,
) -> None:
    config = example_repo.root / "workspace.yaml"
    config.write_text(config.read_text().replace(*WITHOUT_DEPENDS_ON))
    made = example_repo.invoke("init", "--update")
    assert made.returncode == 0, made.stderr
    assert "enrichment: depends_on: [battles]" in made.stdout
    after = config.read_text()
    assert "# enrichment keeps its own schema inside the battles database" in after
    assert "depends_on: [battles]" in after and "battles: {language: typescript, depends_on: [authentication]}" in after
    assert _audit(example_repo) == (0, [])


@pytest.mark.parametrize(
    ("sql", "sequences"),
    [
        ("DO $$ BEGIN CREATE TABLE IF NOT EXISTS t (id serial PRIMARY KEY); END $$;", {"public.t_id_seq"}),
        (
            "DO $$ BEGIN CREATE TABLE IF NOT EXISTS t (id bigint GENERATED ALWAYS AS IDENTITY); END $$;",
            {"public.t_id_seq"},
        ),
        ("DO $$ BEGIN CREATE TABLE IF NOT EXISTS t (id bigint PRIMARY KEY); END $$;", set()),
    ],
)
def test_a_table_created_inside_a_do_block_brings_the_sequences_of_its_serial_columns(
    sql: str, sequences: set[str]
) -> None:
    """As at the top level: another service's `nextval('t_id_seq')` refers to what this block creates."""
    from migratekit.checks.sql.names import RELATION, objects
    from migratekit.model.migration import parse_statements

    (statement,) = parse_statements(sql)
    found = objects(statement.kind, statement.node, "public", statement.text)
    made = {name for (space, name), what in found.creates.items() if space == RELATION and what == "sequence"}
    assert ("public.t" in {name for _, name in found.creates}, made) == (True, sequences)
