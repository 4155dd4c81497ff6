"""data/arith.py: the generated arithmetic set is seeded, its answers are right, its splits share
no question, and the extrapolation split's operands are longer than any in training."""

import re
from decimal import Decimal

from qa_seq2seq.data.arith import ADD, MAX_DIGITS, SUBTRACT, generate

SIZES = {"train": 400, "validation": 50, "test": 50, "extrapolation": 50}
NUMBER = r"-?\d+(?:\.\d+)?"


def operands(row: dict) -> tuple[str, str]:
    """p and q as the question's phrasing places them ("What is q less than p?")."""
    for template in ADD if row["family"] == "add" else SUBTRACT:
        pattern = re.escape(template).replace(r"\{p\}", f"(?P<p>{NUMBER})").replace(
            r"\{q\}", f"(?P<q>{NUMBER})")
        if m := re.fullmatch(pattern, row["question"]):
            return m["p"], m["q"]
    raise AssertionError(f"no phrasing of {row['family']} reads {row['question']!r}")


def digits(value: str) -> int:
    return len(value.lstrip("-").replace(".", "").lstrip("0") or "0")


def test_seeded_right_disjoint_and_longer_where_it_extrapolates():
    splits = generate(3, SIZES)
    assert splits == generate(3, SIZES) != generate(4, SIZES)
    assert {name: len(rows) for name, rows in splits.items()} == SIZES
    questions = [r["question"] for rows in splits.values() for r in rows]
    assert len(set(questions)) == len(questions)
    for name, rows in splits.items():
        for row in rows:
            p, q = operands(row)
            want = Decimal(p) + Decimal(q) if row["family"] == "add" else Decimal(p) - Decimal(q)
            assert Decimal(row["answer"]) == want, row
            longest = max(digits(p), digits(q))
            assert (longest > MAX_DIGITS) == (name == "extrapolation"), row
