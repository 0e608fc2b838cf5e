"""The dependency graph of services: waves that may run in parallel, a sorter for a scheduler, closures.

graphlib does the sorting; ties are broken by name, so every run is in the same order.
"""

from __future__ import annotations

import graphlib
from collections.abc import Mapping

from migratekit.errors import ConfigError
from migratekit.model.settings import WORKSPACE_FILE


def closure(start: set[str], edges: Mapping[str, set[str]]) -> set[str]:
    seen: set[str] = set()
    todo = list(start)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(edges.get(name, ()))
    return seen


def dependency_sorter(
    graph: Mapping[str, tuple[str, ...]], only: set[str] | None = None
) -> graphlib.TopologicalSorter[str]:
    """graphlib's sorter over `graph` (edges to names outside `only` dropped), prepared; a cycle is a ConfigError."""
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for name, deps in graph.items():
        sorter.add(name, *(d for d in deps if only is None or d in only))
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        cycle = " -> ".join(exc.args[1])
        raise ConfigError(f"{WORKSPACE_FILE}: depends_on forms a cycle: {cycle}; remove one of these edges") from None
    return sorter


def parallel_groups(graph: Mapping[str, tuple[str, ...]], only: set[str] | None = None) -> list[list[str]]:
    """Topological waves of `graph`, names sorted within a wave; a cycle is a ConfigError."""
    sorter = dependency_sorter(graph, only)
    groups: list[list[str]] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready())
        groups.append(ready)
        sorter.done(*ready)
    return groups


def critical_paths(graph: Mapping[str, tuple[str, ...]], weights: Mapping[str, float]) -> dict[str, float]:
    """For each node, its weight plus the heaviest chain of nodes that depend on it.

    A scheduler that starts the ready node with the longest such chain first finishes an uneven
    graph (one long chain beside many short services) close to the chain's own time.
    """
    dependents: dict[str, list[str]] = {name: [] for name in graph}
    for name, deps in graph.items():
        for dep in deps:
            if dep in dependents:
                dependents[dep].append(name)
    paths: dict[str, float] = {}
    for name in reversed([n for group in parallel_groups(graph) for n in group]):  # dependents first
        paths[name] = weights.get(name, 0) + max((paths[d] for d in dependents[name]), default=0)
    return paths
