"""data/arith.py: the generated arithmetic set is seeded, its answers are right, its splits share
no question, and the extrapolation split's operands (or chains) are longer than any in training."""

import json
import re
from decimal import Decimal

import pytest

from qa_seq2seq.data.arith import ADD, CHAIN, MAX_DIGITS, SUBTRACT, ensure_splits, generate
from qa_seq2seq.errors import ConfigError

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


CHAIN_SIZES = {"train": 600, "validation": 50, "test": 100, "extrapolation": 100}


def chain_terms(row: dict) -> list[Decimal]:
    """The signed terms of a chain question, read back from its text."""
    for template in sorted(CHAIN, key=len, reverse=True):  # "{chain}" alone reads anything
        pattern = re.escape(template).replace(r"\{chain\}", r"(?P<chain>.+?)")
        if m := re.fullmatch(pattern, row["question"]):
            first, *rest = re.findall(rf"(?:^|\s([+-])\s)({NUMBER})", m["chain"])
            return [Decimal(first[1])] + [Decimal(n) * (1 if s == "+" else -1) for s, n in rest]
    raise AssertionError(f"no chain phrasing reads {row['question']!r}")


def test_chains_add_up_have_their_term_counts_and_grow_longer_where_they_extrapolate():
    splits = generate(5, CHAIN_SIZES, terms=(2, 6), max_digits=4, decimals=False)
    assert splits == generate(5, CHAIN_SIZES, terms=(2, 6), max_digits=4, decimals=False)
    counts = {name: set() for name in splits}
    for name, rows in splits.items():
        for row in rows:
            terms = chain_terms(row)
            assert sum(terms) == Decimal(row["answer"]) and row["family"] == f"{len(terms)}_terms"
            assert all(t == t.to_integral() and 1 <= digits(str(t)) <= 4 for t in terms), row
            counts[name].add(len(terms))
    assert counts["train"] == counts["test"] == {2, 3, 4, 5, 6}
    assert counts["extrapolation"] == {7, 8, 9, 10}
    questions = [r["question"] for rows in splits.values() for r in rows]
    assert len(set(questions)) == len(questions)
    assert any(" - " in q and " + " in q for q in questions)  # mixed operators in one chain


def test_operands_without_signs_or_fractions_on_request():
    rows = generate(2, SIZES, decimals=False, negatives=False)["train"]
    for row in rows:
        assert all(not p.startswith("-") and "." not in p for p in operands(row)), row


@pytest.mark.parametrize("terms", [(1, 3), (4, 2), (2,), (2, 3, 4)])
def test_a_term_range_that_makes_no_chain_is_refused(tmp_path, terms):
    with pytest.raises(ConfigError, match=r"data.generate.terms=.*: give \[fewest, most\]"):
        ensure_splits(tmp_path, terms=terms)


def test_changing_a_setting_generates_the_splits_again(tmp_path):
    ensure_splits(tmp_path, terms=(2, 2))
    two = (tmp_path / "train.jsonl").read_text()
    ensure_splits(tmp_path, terms=(2, 4), max_digits=3)
    assert (tmp_path / "train.jsonl").read_text() != two
    assert json.loads((tmp_path / "generated.json").read_text())["terms"] == [2, 4]


def test_numbers_of_no_digits_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="data.generate.max_digits=0: give at least 1"):
        ensure_splits(tmp_path, max_digits=0)
