"""The package's import graph, read from the source (every import, type-checking ones included):
no cycles, and the arrows run one way, from the entry points down through the layers. A module
may import its own layer and the layers listed for it in ALLOWED, nothing above."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "qa_seq2seq"
# the commands, and model_args: the arguments that decode and serve share
ENTRY_POINTS = {"train", "evaluate", "decode", "parameters", "export", "serve", "suggest", "__init__",
                "model_args"}
# imported by every layer; they import nothing but each other
BASE = {"errors", "registry", "configs", "compatibility", "reporting"}
LAYERS = ("data", "network", "decoding", "training", "deployment")
ALLOWED = {
    "base": {"base"},
    "data": {"base", "data"},
    "network": {"base", "network"},
    "decoding": {"base", "data", "network", "decoding"},
    "training": {"base", "data", "network", "decoding", "training"},
    "deployment": {"base", "data", "network", "decoding", "deployment"},
    "entry": {"base", *LAYERS, "entry"},
}


def import_graph() -> dict[str, set[str]]:
    """``{module: modules of the package it imports}``, by dotted name below the package
    (``network.rnn``, ``train``)."""
    graph = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and \
                    node.module.split(".")[0] == "qa_seq2seq":
                below = node.module.removeprefix("qa_seq2seq").lstrip(".")
                imported |= {f"{below}.{a.name}".lstrip(".") for a in node.names
                             if (PACKAGE / below.replace(".", "/") / f"{a.name}.py").exists()} \
                    or {below or "__init__"}
            elif isinstance(node, ast.Import):
                imported |= {a.name.removeprefix("qa_seq2seq.") for a in node.names
                             if a.name.startswith("qa_seq2seq.")}
        graph[name] = imported - {name}
    return graph


def layer(module: str) -> str:
    top = module.split(".")[0]
    if top in LAYERS:
        return top
    return "base" if module in BASE else "entry"


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


def upward_edges(graph: dict[str, set[str]]) -> set[tuple[str, str]]:
    return {(a, b) for a, targets in graph.items() for b in targets
            if layer(b) not in ALLOWED[layer(a)]}


def test_the_package_is_layered_without_cycles():
    graph = import_graph()
    assert {"network.model", "network.rnn", "train", "serve", "decoding.answerer"} <= graph.keys()
    assert set().union(*graph.values()) <= graph.keys(), "an import the graph does not resolve"
    assert {m for m in graph if layer(m) == "entry"} == ENTRY_POINTS
    assert cycle_edges(graph) == set()
    assert upward_edges(graph) == set()


def test_the_checks_find_a_cycle_and_an_upward_import():
    assert cycle_edges({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == {
        ("a", "b"), ("b", "c"), ("c", "a")}
    assert upward_edges({"network.rnn": {"errors", "data.tokenizer"},
                         "deployment.runtime": {"training.module", "decoding.answerer_base"},
                         "errors": {"network.rnn"}, "train": {"training.module"}}) == {
        ("network.rnn", "data.tokenizer"), ("deployment.runtime", "training.module"),
        ("errors", "network.rnn")}
