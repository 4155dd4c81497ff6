"""The package's import graph, read from the source (every import, type-checking ones included):
no cycles, and no library module imports an entry point. The edges listed in KNOWN are the ones
still to undo; the test fails on any other, and on a listed one that is gone (so the list only
shrinks)."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "qa_seq2seq"
ENTRY_POINTS = {"train", "evaluate", "decode", "inspect", "export", "serve"}
KNOWN: set[tuple[str, str]] = set()


def import_graph() -> dict[str, set[str]]:
    """``{module: modules of the package it imports}``, by module name (``model``, ``rnn``...)."""
    graph = {}
    for path in PACKAGE.glob("*.py"):
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and \
                    node.module.split(".")[0] == "qa_seq2seq":
                parts = node.module.split(".")
                imported |= {parts[1]} if len(parts) > 1 else {a.name for a in node.names}
            elif isinstance(node, ast.Import):
                imported |= {a.name.split(".")[1] for a in node.names
                             if a.name.startswith("qa_seq2seq.")}
        graph[path.stem] = imported - {path.stem}
    return graph


def cycle_edges(graph: dict[str, set[str]]) -> set[tuple[str, str]]:
    """The edges that lie on a cycle: a -> b where b reaches a."""
    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            node = todo.pop()
            if node == goal:
                return True
            if node not in seen:
                seen.add(node)
                todo += graph.get(node, ())
        return False

    return {(a, b) for a, targets in graph.items() for b in targets if reaches(b, a)}


def test_no_cycles_and_no_library_module_imports_an_entry_point():
    graph = import_graph()
    assert {"model", "rnn", "train", "serve"} <= graph.keys()
    upward = {(a, b) for a, targets in graph.items() for b in targets
              if b in ENTRY_POINTS and a != "__init__"}
    cycles = {edge for edge in cycle_edges(graph) if edge[::-1] not in KNOWN}
    assert (cycles | upward) - KNOWN == set()
    assert KNOWN - (cycles | upward) == set(), "a known edge is gone: remove it from KNOWN"


def test_the_check_finds_a_cycle():
    assert cycle_edges({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == {
        ("a", "b"), ("b", "c"), ("c", "a")}
