"""Every public class and function of the package opens its docstring with a summary line."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "qa_seq2seq"


def test_every_public_class_and_function_has_a_summary_line():
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and \
                    not node.name.startswith("_"):
                doc = ast.get_docstring(node) or ""
                if not doc.strip() or doc.lstrip().startswith("Args:"):
                    missing.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name}")
    assert missing == []
