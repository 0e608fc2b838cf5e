"""`invoke graph`: the services, their dependencies and the waves, as a tree, Mermaid, DOT and JSON."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from conftest import Monorepo, write_tree

WORKSPACE = (
    "version: 1\nservices:\n  auth: {}\n  billing: {depends_on: [auth]}\n  search: {}\n"
    "  reports: {depends_on: [billing, search]}\n"
)


@pytest.fixture
def repo(monorepo) -> Monorepo:
    built: Monorepo = monorepo({name: {} for name in ("auth", "billing", "search", "reports")})
    files = {f"services/{n}/migrations/001_init.sql": "SELECT 1;\n" for n in ("auth", "billing", "search", "reports")}
    write_tree(built.root, {**files, "workspace.yaml": WORKSPACE})
    return built


@pytest.mark.parametrize("terminal", [None, 80, 200])
def test_the_tree_shows_each_wave_and_what_each_service_waits_for(repo: Monorepo, terminal: int | None) -> None:
    result = repo.invoke("graph", terminal=terminal)
    assert result.returncode == 0, result.stderr
    text = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout)
    assert text.splitlines()[0] == "4 service(s) in 3 wave(s), each after the ones above it"
    waves = re.findall(r"wave (\d)", text)
    assert waves == ["1", "2", "3"]
    assert "auth" in text.split("wave 2")[0] and "search" in text.split("wave 2")[0]
    assert re.search(r"billing\s+after auth", text) and re.search(r"reports\s+after billing, search", text)


def test_mermaid_is_a_flowchart_of_subgraphs_and_edges(repo: Monorepo) -> None:
    result = repo.invoke("graph", "--format", "mermaid")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "flowchart TD"
    grammar = re.compile(r'  subgraph wave\d+\["wave \d+"\]|    s\d+\["[a-z0-9_-]+"\]|  end|  s\d+ --> s\d+')
    assert all(grammar.fullmatch(line) for line in lines[1:]), lines
    ids = dict(re.findall(r'(s\d+)\["([a-z0-9_-]+)"\]', result.stdout))
    edges = {(ids[a], ids[b]) for a, b in re.findall(r"(s\d+) --> (s\d+)", result.stdout)}
    assert edges == {("auth", "billing"), ("billing", "reports"), ("search", "reports")}


def test_dot_is_what_graphviz_draws(repo: Monorepo) -> None:
    result = repo.invoke("graph", "--format", "dot")
    assert result.returncode == 0, result.stderr
    assert '"billing" -> "reports";' in result.stdout and "rank=same" in result.stdout
    if shutil.which("dot") is None:
        pytest.skip("graphviz's dot is not installed (apt-get install graphviz): the DOT is not drawn")
    drawn = subprocess.run(["dot", "-Tsvg"], input=result.stdout, capture_output=True, text=True, timeout=30)
    assert drawn.returncode == 0 and "<svg" in drawn.stdout, drawn.stderr


def test_json_and_services_json_carry_the_wave(repo: Monorepo) -> None:
    graph = json.loads(repo.invoke("graph", "--json").stdout)
    assert graph["waves"] == [["auth", "search"], ["billing"], ["reports"]]
    assert {s["name"]: s["wave"] for s in graph["services"]} == {"auth": 1, "search": 1, "billing": 2, "reports": 3}
    listed = json.loads(repo.invoke("services", "--json").stdout)["services"]
    assert {s["name"]: (s["wave"], s["format"]) for s in listed} == {
        "auth": (1, "seed"),
        "search": (1, "seed"),
        "billing": (2, "seed"),
        "reports": (3, "seed"),
    }


def test_changed_since_draws_the_changed_services_and_what_depends_on_them(repo: Monorepo) -> None:
    git = ["git", "-C", str(repo.root), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "base"], check=True)
    repo.migration("billing", "002_more.sql", "SELECT 2;\n")
    graph = json.loads(repo.invoke("graph", "--json", "--changed-since", "HEAD").stdout)
    assert graph["waves"] == [["billing"], ["reports"]]
    assert [s["depends_on"] for s in graph["services"]] == [[], ["billing"]]  # search is not drawn


def test_an_unknown_format_is_exit_2(repo: Monorepo) -> None:
    result = repo.invoke("graph", "--format", "png")
    assert result.returncode == 2 and "--format 'png': one of tree, mermaid, dot, json" in result.stderr
